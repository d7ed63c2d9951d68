using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Orchestrator.Storage;

namespace Orchestrator.Workflow;

/// <summary>
/// One node of a job's execution graph, persisted with its input, its output checkpoint, attempts and
/// timings. For an effect, the row is also its journal: <c>running</c> means the intent was committed and
/// the effect may have happened; <c>succeeded</c> means its result was committed.
/// </summary>
public sealed class JobNode
{
    public string JobId { get; set; } = "";
    public string NodeId { get; set; } = "";

    /// <summary>Order of creation within the job; the path is the succeeded nodes in this order.</summary>
    public int Seq { get; set; }

    /// <summary><c>model</c>, <c>effect</c>, <c>memory</c> or <c>approval</c>.</summary>
    public string Kind { get; set; } = "";

    /// <summary>The node's role (model) or capability (effect).</summary>
    public string Name { get; set; } = "";

    public NodeStatus Status { get; set; }

    /// <summary>Ids of the nodes this one follows, comma-separated (the graph's edges).</summary>
    public string? Parents { get; set; }

    public int Attempts { get; set; }

    /// <summary>What the node was given, as JSON: the model call's messages, or the effect's call and plan.</summary>
    public string? Input { get; set; }

    /// <summary>The checkpoint, as JSON: the model's reply and routing decision, or the effect's result.</summary>
    public string? Output { get; set; }

    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? CompletedAt { get; set; }

    internal JobNode Snapshot() => (JobNode)MemberwiseClone();

    public IEnumerable<string> ParentIds => Parents is null ? [] : Parents.Split(',', StringSplitOptions.RemoveEmptyEntries);
}

public enum NodeStatus { Pending, Running, Succeeded, Failed, Skipped }

public static class NodeStatuses
{
    public static string Of(NodeStatus status) => status switch
    {
        NodeStatus.Pending => "pending",
        NodeStatus.Running => "running",
        NodeStatus.Succeeded => "succeeded",
        NodeStatus.Failed => "failed",
        NodeStatus.Skipped => "skipped",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    static NodeStatus Parse(string value) => value switch
    {
        "pending" => NodeStatus.Pending,
        "running" => NodeStatus.Running,
        "succeeded" => NodeStatus.Succeeded,
        "failed" => NodeStatus.Failed,
        "skipped" => NodeStatus.Skipped,
        _ => throw new InvalidDataException($"Unknown node status '{value}' in the store."),
    };

    internal static readonly ValueConverter<NodeStatus, string> Converter = new(s => Of(s), s => Parse(s));
}

internal sealed class JobNodeConfiguration : IEntityTypeConfiguration<JobNode>
{
    public void Configure(EntityTypeBuilder<JobNode> node)
    {
        node.ToTable("JobNodes");
        node.HasKey(n => new { n.JobId, n.NodeId });
        node.Property(n => n.JobId).HasMaxLength(40);
        node.Property(n => n.NodeId).HasMaxLength(200);
        node.Property(n => n.Kind).HasMaxLength(20);
        node.Property(n => n.Name).HasMaxLength(100);
        node.Property(n => n.Status).HasConversion(NodeStatuses.Converter).HasMaxLength(20).IsConcurrencyToken();
        node.Property(n => n.ErrorCode).HasMaxLength(64);
        node.Ignore(n => n.ParentIds);
    }
}

/// <summary>A node's transitions, each guarded on the status it expects and holding its own snapshot; the run fences them by its lease.</summary>
internal static class NodeWrites
{
    public static StoreWrite Add(JobNode node) => new Insert<JobNode>(node.Snapshot());

    public static StoreWrite Start(JobNode node, NodeStatus expected) => Update(node, expected,
        nameof(JobNode.Status), nameof(JobNode.Attempts), nameof(JobNode.Input), nameof(JobNode.StartedAt),
        nameof(JobNode.CompletedAt), nameof(JobNode.ErrorCode), nameof(JobNode.ErrorMessage));

    public static StoreWrite End(JobNode node, NodeStatus expected) => Update(node, expected,
        nameof(JobNode.Status), nameof(JobNode.Output), nameof(JobNode.CompletedAt), nameof(JobNode.ErrorCode), nameof(JobNode.ErrorMessage));

    static GuardedUpdate<JobNode> Update(JobNode node, NodeStatus expected, params string[] properties) =>
        new(node.Snapshot(), [new Guard(nameof(JobNode.Status), expected)], properties);
}
