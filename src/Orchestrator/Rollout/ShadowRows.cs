using System.ComponentModel.DataAnnotations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Rollout;

/// <summary>
/// One shadow run: the candidate of a <c>shadow</c> rollout walked on a copy of a completed stable job's request. A row in
/// the store, so any node can take it (under a lease that a crashed node's successor re-claims once it expires).
/// </summary>
public sealed class ShadowRun
{
    public long Id { get; set; }
    public string Kind { get; set; } = "";

    /// <summary>The candidate walked and the stable the primary job ran (version numbers of <see cref="Kind"/>).</summary>
    public int Candidate { get; set; }

    public int Stable { get; set; }

    /// <summary>The stable job whose request was copied; one shadow run per job and kind (unique).</summary>
    public string PrimaryJobId { get; set; } = "";

    public string Tenant { get; set; } = "";

    /// <summary><c>pending</c>, <c>running</c>, <c>completed</c>, <c>failed</c> or <c>skipped</c>.</summary>
    public string Status { get; set; } = ShadowStatus.Pending;

    /// <summary>Why it failed or was skipped (a problem code, e.g. <c>shadow_budget_exhausted</c>).</summary>
    public string? Reason { get; set; }

    public string? ErrorMessage { get; set; }

    /// <summary>The node running it and until when it holds it; an expired lease is claimed again.</summary>
    public string? Owner { get; set; }

    public DateTime? LeaseUntil { get; set; }
    public int Attempts { get; set; }

    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }

    /// <summary>The candidate's answer (never returned to the caller).</summary>
    public string? Output { get; set; }

    /// <summary>Whether it answered as the primary did: same status, same text and same path.</summary>
    public bool? Identical { get; set; }

    /// <summary>The comparison as JSON (<see cref="ShadowComparison"/>).</summary>
    public string? Comparison { get; set; }

    public long? LatencyMs { get; set; }
    public long? PrimaryLatencyMs { get; set; }

    /// <summary>What the candidate's model calls cost, in micro-USD: charged to the shadow budget, never to the tenant.</summary>
    public long CostMicros { get; set; }

    public long? PrimaryCostMicros { get; set; }
}

public static class ShadowStatus
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Skipped = "skipped";
}

/// <summary>Section <c>Orchestrator:Rollout:Shadow</c>.</summary>
public sealed class ShadowOptions
{
    /// <summary>What shadow runs may cost per UTC day, over every node (summed from the rows); beyond it runs are skipped.</summary>
    [Range(typeof(decimal), "0", "1000000")]
    public decimal BudgetUsdPerDay { get; set; } = 5m;

    /// <summary>Whether this node runs shadow runs (every node may; each run is leased).</summary>
    public bool Run { get; set; } = true;

    /// <summary>How long a node holds a shadow run it took; a run whose node died is taken again after it.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often a node looks for jobs to mirror and runs to do.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A run that failed by its node dying this many times is given up (<c>failed</c>, <c>shadow_attempts_exhausted</c>).</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Most rows the view reads (newest first).</summary>
    [Range(10, 1_000_000)]
    public int MaxRunsRead { get; set; } = 20_000;
}

/// <summary>How a shadow run compared with its primary job.</summary>
public sealed record ShadowComparison(
    bool SameStatus, bool SameOutput, Replay.PathDiff Path, string PrimaryStatus, string Status,
    IReadOnlyList<ShadowSource> Sources);

/// <summary>How one of the shadow's effect, approval or memory nodes was answered: <c>recorded</c> (the primary's), <c>stubbed</c>, <c>refused</c> or <c>live-read</c>.</summary>
public sealed record ShadowSource(string Node, string Kind, string Source);

internal sealed class ShadowRunConfiguration : IEntityTypeConfiguration<ShadowRun>
{
    public void Configure(EntityTypeBuilder<ShadowRun> run)
    {
        run.ToTable("ShadowRuns");
        run.HasKey(r => r.Id);
        run.Property(r => r.Kind).HasMaxLength(20);
        run.Property(r => r.PrimaryJobId).HasMaxLength(40);
        run.Property(r => r.Tenant).HasMaxLength(100);
        run.Property(r => r.Status).HasMaxLength(20);
        run.Property(r => r.Reason).HasMaxLength(64);
        run.Property(r => r.ErrorMessage).HasMaxLength(2000);
        run.Property(r => r.Owner).HasMaxLength(200);
        // Two nodes mirroring the same job at once: the store keeps one run.
        run.HasIndex(r => new { r.PrimaryJobId, r.Kind }).IsUnique();
        run.HasIndex(r => new { r.Status, r.LeaseUntil });
        run.HasIndex(r => new { r.Kind, r.Candidate, r.Stable });
        run.HasIndex(r => r.CompletedAt);
    }
}
