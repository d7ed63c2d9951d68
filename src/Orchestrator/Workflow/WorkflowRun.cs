using Orchestrator.Gateway;
using Orchestrator.Storage;

namespace Orchestrator.Workflow;

/// <summary>
/// What the workflow needs of the job it runs, and no more: who asked, what, and a way to write under the run's
/// lease. The job side (<c>Jobs.JobRun</c>) implements it; the workflow never reads the job row itself.
/// </summary>
internal interface IWorkflowRun
{
    string JobId { get; }
    string TraceId { get; }
    string Tenant { get; }
    string Principal { get; }
    string Intent { get; }

    /// <summary>Content hash of the policy the job was admitted under: the run walks that policy, even when it is not the catalog's.</summary>
    string? PolicyHash { get; }
    /// <summary>The job's deadline: an approval it waits for ends with it.</summary>
    DateTime DeadlineAt { get; }

    /// <summary>The admitted request, as it was frozen at admission.</summary>
    ActRequest Request { get; }

    /// <summary>True on a job's first attempt in the process that admitted it: the store holds no nodes for it yet.</summary>
    bool Fresh { get; }

    /// <summary>Completes true once the run's claim is committed, false when it was lost: nothing with a side effect runs before.</summary>
    Task<bool> Claimed { get; }

    /// <summary>The job's execution graph once loaded.</summary>
    JobGraph? Graph { get; set; }

    /// <summary>Queues a write of this run, fenced by its lease; a write that finds another owner stops the run.</summary>
    Task<bool> WriteAsync(StoreWrite write);

    /// <summary>The run moved to another node of its graph (the job view's <c>currentNode</c>).</summary>
    void MovedTo(string nodeId);
}

/// <summary>How a run ended: the answer, the path, the last model, the usage and routing of every model call, or the failure.</summary>
internal sealed record WorkflowResult(
    string? Text, IReadOnlyList<string> Path, string? Model, TokenUsage Usage, IReadOnlyList<NodeRouting> Routing, StepFailure? Failure);
