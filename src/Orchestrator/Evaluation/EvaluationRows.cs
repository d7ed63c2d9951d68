using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Evaluation;

/// <summary>
/// An evaluation: its frozen plan, who asked (its tenant), its state and lease (any node may run it; one at a time),
/// and its verdict once done. The candidate's policy content hash is kept beside the verdict, so a rollout can ask
/// whether a passing evaluation of that exact content exists.
/// </summary>
public sealed class EvaluationRun
{
    public string Id { get; set; } = "";
    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";
    public bool Operator { get; set; }

    /// <summary><c>accepted</c>, <c>running</c>, <c>completed</c>, <c>failed</c>, <c>canceled</c>.</summary>
    public string Status { get; set; } = EvaluationStatus.Accepted;

    public string Suite { get; set; } = "";
    public string SuiteHash { get; set; } = "";
    public string BaselineHash { get; set; } = "";
    public string CandidateHash { get; set; } = "";
    public long Seed { get; set; }

    /// <summary>The plan as JSON (<see cref="EvaluationPlan"/>).</summary>
    public string Plan { get; set; } = "";

    /// <summary><c>pass</c> or <c>fail</c> once completed.</summary>
    public string? Verdict { get; set; }

    /// <summary>The verdict as JSON (<see cref="Evaluation.Verdict"/>).</summary>
    public string? Result { get; set; }

    public string? Error { get; set; }
    public bool CancelRequested { get; set; }
    public string? Owner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public long Epoch { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
}

public static class EvaluationStatus
{
    public const string Accepted = "accepted";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static bool IsTerminal(string status) => status is Completed or Failed or Canceled;
}

/// <summary>One run of one case on one side: the job it was, what it measured and how its assertions went. Written once; a resumed evaluation skips it.</summary>
public sealed class EvaluationCaseRun
{
    public string EvaluationId { get; set; } = "";
    public string CaseId { get; set; } = "";
    public int Repeat { get; set; }

    /// <summary><c>baseline</c> or <c>candidate</c>.</summary>
    public string Arm { get; set; } = "";

    public string? JobId { get; set; }
    public string? TraceId { get; set; }
    public string Status { get; set; } = "";
    public string? ErrorCode { get; set; }
    public bool Passed { get; set; }
    public double? Score { get; set; }
    public double? LatencyMs { get; set; }
    public double CostUsd { get; set; }
    public double JudgeCostUsd { get; set; }
    public string? Model { get; set; }

    /// <summary>Each assertion's outcome as JSON (a list of <see cref="AssertionOutcome"/>).</summary>
    public string Assertions { get; set; } = "[]";

    public string? Output { get; set; }
    public DateTime CreatedAt { get; set; }
}

internal sealed class EvaluationRunConfiguration : IEntityTypeConfiguration<EvaluationRun>
{
    public void Configure(EntityTypeBuilder<EvaluationRun> run)
    {
        run.ToTable("Evaluations");
        run.HasKey(e => e.Id);
        run.Property(e => e.Id).HasMaxLength(40);
        run.Property(e => e.Tenant).HasMaxLength(100);
        run.Property(e => e.Principal).HasMaxLength(200);
        run.Property(e => e.Status).HasMaxLength(20);
        run.Property(e => e.Suite).HasMaxLength(200);
        run.Property(e => e.SuiteHash).HasMaxLength(64);
        run.Property(e => e.BaselineHash).HasMaxLength(64);
        run.Property(e => e.CandidateHash).HasMaxLength(64);
        run.Property(e => e.Verdict).HasMaxLength(10);
        run.Property(e => e.Owner).HasMaxLength(200);
        run.HasIndex(e => new { e.Tenant, e.Id });
        // A rollout asks: is there a passing evaluation of this content hash?
        run.HasIndex(e => new { e.CandidateHash, e.Verdict });
        run.HasIndex(e => e.Status).HasFilter("\"Status\" IN ('accepted', 'running')");
    }
}

internal sealed class EvaluationCaseRunConfiguration : IEntityTypeConfiguration<EvaluationCaseRun>
{
    public void Configure(EntityTypeBuilder<EvaluationCaseRun> run)
    {
        run.ToTable("EvaluationCaseRuns");
        run.HasKey(r => new { r.EvaluationId, r.CaseId, r.Repeat, r.Arm });
        run.Property(r => r.EvaluationId).HasMaxLength(40);
        run.Property(r => r.CaseId).HasMaxLength(16);
        run.Property(r => r.Arm).HasMaxLength(10);
        run.Property(r => r.JobId).HasMaxLength(40);
        run.Property(r => r.TraceId).HasMaxLength(32);
        run.Property(r => r.Status).HasMaxLength(20);
        run.Property(r => r.ErrorCode).HasMaxLength(64);
        run.Property(r => r.Model).HasMaxLength(200);
        run.HasOne<EvaluationRun>().WithMany().HasForeignKey(r => r.EvaluationId).OnDelete(DeleteBehavior.Cascade);
    }
}
