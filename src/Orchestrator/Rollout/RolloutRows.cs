using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Rollout;

/// <summary>One immutable version of an artifact (<c>prompts</c>, <c>policies</c> or <c>routing</c>): <c>v{Number}</c>.</summary>
public sealed class ArtifactVersion
{
    public long Id { get; set; }
    public string Kind { get; set; } = "";
    public int Number { get; set; }

    /// <summary>SHA-256 of <see cref="Content"/>; one content has one version per kind (unique).</summary>
    public string ContentHash { get; set; } = "";

    /// <summary>The artifact as compact JSON (its canonical text: what is hashed).</summary>
    public string Content { get; set; } = "";

    public DateTime CreatedAt { get; set; }
    public string CreatedBy { get; set; } = "";

    /// <summary>Why it exists: <c>shipped</c> (imported from the shipped files at start) or <c>api</c>.</summary>
    public string Source { get; set; } = "";
}

/// <summary>The rollout of one kind: its stable version, the candidate if any, the mode and share, and what a rollback returns to.</summary>
public sealed class RolloutRow
{
    public string Kind { get; set; } = "";
    public int Stable { get; set; }
    public int? Candidate { get; set; }

    /// <summary><c>canary</c>, <c>ab</c> or <c>shadow</c>; null without a candidate.</summary>
    public string? Mode { get; set; }

    /// <summary>Share of subjects (0..100) assigned the candidate.</summary>
    public double Percent { get; set; }

    /// <summary>The stable before the last change of stable; a rollback returns to it once (then it is null: a second rollback is a no-op).</summary>
    public int? PreviousStable { get; set; }

    /// <summary>Raised by one on every change; a change names the revision it read, so of two concurrent changes one wins.</summary>
    public long Revision { get; set; }

    public DateTime UpdatedAt { get; set; }
    public string UpdatedBy { get; set; } = "";
}

/// <summary>One change of a rollout, kept as its history.</summary>
public sealed class RolloutEvent
{
    public long Id { get; set; }
    public string Kind { get; set; } = "";
    public DateTime At { get; set; }

    /// <summary><c>start</c>, <c>update</c>, <c>promote</c>, <c>rollback</c>, <c>auto-rollback</c>.</summary>
    public string Action { get; set; } = "";

    public int Stable { get; set; }
    public int? Candidate { get; set; }
    public string? Mode { get; set; }
    public double Percent { get; set; }
    public string By { get; set; } = "";
    public string? Reason { get; set; }
}

internal sealed class ArtifactVersionConfiguration : IEntityTypeConfiguration<ArtifactVersion>
{
    public void Configure(EntityTypeBuilder<ArtifactVersion> artifact)
    {
        artifact.ToTable("ArtifactVersions");
        artifact.HasKey(a => a.Id);
        artifact.Property(a => a.Kind).HasMaxLength(20);
        artifact.Property(a => a.ContentHash).HasMaxLength(64);
        artifact.Property(a => a.CreatedBy).HasMaxLength(200);
        artifact.Property(a => a.Source).HasMaxLength(20);
        // Two nodes importing the shipped files at once, or two operators posting: the store decides who got the number.
        artifact.HasIndex(a => new { a.Kind, a.Number }).IsUnique();
        artifact.HasIndex(a => new { a.Kind, a.ContentHash }).IsUnique();
    }
}

internal sealed class RolloutRowConfiguration : IEntityTypeConfiguration<RolloutRow>
{
    public void Configure(EntityTypeBuilder<RolloutRow> rollout)
    {
        rollout.ToTable("Rollouts");
        rollout.HasKey(r => r.Kind);
        rollout.Property(r => r.Kind).HasMaxLength(20);
        rollout.Property(r => r.Mode).HasMaxLength(10);
        rollout.Property(r => r.UpdatedBy).HasMaxLength(200);
        rollout.Property(r => r.Revision).IsConcurrencyToken();
    }
}

internal sealed class RolloutEventConfiguration : IEntityTypeConfiguration<RolloutEvent>
{
    public void Configure(EntityTypeBuilder<RolloutEvent> change)
    {
        change.ToTable("RolloutEvents");
        change.HasKey(e => e.Id);
        change.Property(e => e.Kind).HasMaxLength(20);
        change.Property(e => e.Action).HasMaxLength(20);
        change.Property(e => e.Mode).HasMaxLength(10);
        change.Property(e => e.By).HasMaxLength(200);
        change.Property(e => e.Reason).HasMaxLength(2000);
        change.HasIndex(e => new { e.Kind, e.Id });
    }
}
