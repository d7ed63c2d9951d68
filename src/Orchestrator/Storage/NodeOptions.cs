using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Storage;

/// <summary>Section <c>Orchestrator:Node</c>: this node among several that share one store.</summary>
public sealed class NodeOptions
{
    public const string Section = "Orchestrator:Node";

    /// <summary>This node's name among several. Default: host name and process id.</summary>
    [MaxLength(200, ErrorMessage = "Orchestrator:Node:Id must be at most 200 characters.")]
    public string? Id { get; set; }

    /// <summary>How long a node's claim on a running job lasts without renewal; the owner renews at a third of it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Within how many milliseconds a change made on one node (a cancel, a quarantine, a release) holds on every node:
    /// shared state is read from the store at least this often.
    /// </summary>
    [Range(50, 60_000, ErrorMessage = "Orchestrator:Node:PropagationMs must be between 50 and 60000.")]
    public int PropagationMs { get; set; } = 1000;

    /// <summary>How often a node with idle workers looks in the store for due jobs (retries come due, jobs of a lost node, jobs accepted elsewhere).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal TimeSpan Propagation => TimeSpan.FromMilliseconds(PropagationMs);
}

/// <summary>This process as one node of the service: its name and when it started.</summary>
public sealed class ThisNode(Microsoft.Extensions.Options.IOptions<NodeOptions> options, TimeProvider time)
{
    public string Id { get; } = options.Value.Id is { Length: > 0 } id ? id : $"{Environment.MachineName}-{Environment.ProcessId}";

    public DateTime StartedAt { get; } = time.GetUtcNow().UtcDateTime;
}
