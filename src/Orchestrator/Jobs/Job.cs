using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary>A request admitted by <c>/v1/act</c>: the durable row the queue, the workers and every view derive from.</summary>
public sealed class Job : ILeased
{
    public string Id { get; set; } = "";
    public string TraceId { get; set; } = "";
    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";
    public string Intent { get; set; } = "";
    public JobStatus Status { get; set; }
    public JobPriority Priority { get; set; }
    public bool Sync { get; set; }
    public string? IdempotencyKey { get; set; }
    public string? Session { get; set; }

    /// <summary>The admitted request, frozen as JSON: what the runner executes and replay reproduces.</summary>
    public string Request { get; set; } = "";

    /// <summary>Content hashes of the policy and routing configuration the job ran with (see <c>Replay.Snapshot</c>).</summary>
    public string? PolicyHash { get; set; }

    public string? RoutingHash { get; set; }

    /// <summary>
    /// The artifact versions the job runs with and why, as JSON (<see cref="Workflow.JobVersions"/>); chosen once at
    /// admission, so a job that waits (approval, retry, a crash) resumes on the versions it started with.
    /// </summary>
    public string? Versions { get; set; }

    public int DeadlineMs { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime DeadlineAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
    public int Attempts { get; set; }
    public DateTime? NextAttemptAt { get; set; }
    public bool CancelRequested { get; set; }

    /// <summary>The node that runs the job, or last ran it (<c>node</c> in the job view).</summary>
    public string? Owner { get; set; }

    /// <summary>Raised by one on every claim; every write of a run is fenced by the epoch it claimed.</summary>
    public long Epoch { get; set; }

    /// <summary>Until when <see cref="Owner"/> holds the job unless it renews; null when no node holds it.</summary>
    public DateTime? LeaseUntil { get; set; }

    /// <summary>Node the workflow is on (or stopped at), for the job view.</summary>
    public string? CurrentNode { get; set; }

    /// <summary>The job's output as JSON (<see cref="JobOutput"/>).</summary>
    public string? Output { get; set; }
    /// <summary>The gateway's routing decisions, one per model call, as JSON (<see cref="Workflow.NodeRouting"/>).</summary>
    public string? Routing { get; set; }

    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public long? QueueMs { get; set; }
    public long? RunMs { get; set; }
    public bool Breached { get; set; }

    /// <summary>What the job holds of its tenant's daily budgets until it ends (its worst case); null when no budget applied.</summary>
    public long? HeldTokens { get; set; }

    /// <summary>The held cost in micro-USD.</summary>
    public long? HeldMicros { get; set; }

    /// <summary>What the job's model calls used, once it ended (usage and budgets).</summary>
    public long? InputTokens { get; set; }

    public long? OutputTokens { get; set; }

    /// <summary>What the job's model calls cost, in micro-USD.</summary>
    public long? CostMicros { get; set; }

    /// <summary>The admitted request while the admitting process still holds it (not stored; <see cref="Request"/> is).</summary>
    public Workflow.ActRequest? Admitted { get; set; }

    /// <summary>True when this node leased the job (a claim from the store) and holds it at <see cref="Epoch"/> (not stored).</summary>
    internal bool LeasedHere { get; set; }

    /// <summary>A copy of the row as it is now, for a write that must not see later changes.</summary>
    internal Job Snapshot() => (Job)MemberwiseClone();

    public bool IsTerminal => Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Canceled;
}

public enum JobStatus { Accepted, Running, AwaitingApproval, Completed, Failed, Canceled }

public enum JobPriority { High, Normal, Low }

internal sealed class JobConfiguration : IEntityTypeConfiguration<Job>
{
    public void Configure(EntityTypeBuilder<Job> job)
    {
        job.ToTable("Jobs");
        job.HasKey(j => j.Id);
        job.Property(j => j.Id).HasMaxLength(40);
        job.Property(j => j.TraceId).HasMaxLength(32);
        job.Property(j => j.Tenant).HasMaxLength(100);
        job.Property(j => j.Principal).HasMaxLength(200);
        job.Property(j => j.Intent).HasMaxLength(100);
        // Status guards every transition: an UPDATE names the status it expects, so two
        // writers (two workers, a worker and a cancel) can never both win.
        job.Property(j => j.Status).HasConversion(WireNames.StatusConverter).HasMaxLength(20).IsConcurrencyToken();
        job.Property(j => j.Priority).HasConversion(WireNames.PriorityConverter).HasMaxLength(10);
        job.Property(j => j.IdempotencyKey).HasMaxLength(200);
        job.Property(j => j.Session).HasMaxLength(200);
        job.Property(j => j.CurrentNode).HasMaxLength(200);
        job.Property(j => j.PolicyHash).HasMaxLength(64);
        job.Property(j => j.RoutingHash).HasMaxLength(64);
        job.Property(j => j.ErrorCode).HasMaxLength(64);
        job.Property(j => j.Owner).HasMaxLength(200);
        job.Property(j => j.Versions).HasMaxLength(1000);
        job.Ignore(j => j.IsTerminal);
        job.Ignore(j => j.Admitted);
        job.Ignore(j => j.LeasedHere);

        job.HasIndex(j => new { j.Tenant, j.IdempotencyKey }).IsUnique().HasFilter("\"IdempotencyKey\" IS NOT NULL");
        job.HasIndex(j => new { j.Tenant, j.Id });
        job.HasIndex(j => j.TraceId);
        // A job's graph nodes go with it (configured here: jobs know their nodes, the workflow does not know jobs).
        job.HasMany<Workflow.JobNode>().WithOne().HasForeignKey(n => n.JobId).OnDelete(DeleteBehavior.Cascade);
        // Only unfinished jobs are looked up by status (recovery at start-up), so only they are indexed:
        // the index stays as small as the work in flight, and finished rows leave it.
        job.HasIndex(j => j.Status).HasFilter("\"Status\" IN ('accepted', 'running', 'awaiting_approval')");
    }
}
