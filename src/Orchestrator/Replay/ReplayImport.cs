using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Replay;

/// <summary>A replay package brought in from elsewhere (<c>POST /v1/replays</c>), e.g. from production onto a laptop.</summary>
public sealed class ReplayImport
{
    public string TraceId { get; set; } = "";
    public string Tenant { get; set; } = "";
    public string JobId { get; set; } = "";
    public string ImportedBy { get; set; } = "";
    public DateTime ImportedAt { get; set; }

    /// <summary>The package as JSON, scrubbed again on the way in.</summary>
    public string Package { get; set; } = "";
}

internal sealed class ReplayImportConfiguration : IEntityTypeConfiguration<ReplayImport>
{
    public void Configure(EntityTypeBuilder<ReplayImport> import)
    {
        import.ToTable("ReplayImports");
        import.HasKey(i => i.TraceId);
        import.Property(i => i.TraceId).HasMaxLength(32);
        import.Property(i => i.Tenant).HasMaxLength(100);
        import.Property(i => i.JobId).HasMaxLength(40);
        import.Property(i => i.ImportedBy).HasMaxLength(200);
        import.HasIndex(i => i.ImportedAt);
    }
}

/// <summary>Section <c>Orchestrator:Replay</c>.</summary>
public sealed class ReplayOptions
{
    public const string Section = "Orchestrator:Replay";

    /// <summary>How long a finished job's recorded nodes (and imported packages) are kept; after it the replay is gone.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often expired replay data is removed.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}
