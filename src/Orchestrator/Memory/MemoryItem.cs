using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Memory;

/// <summary>
/// One remembered thing: a turn (what the user said, what the assistant answered, a tool call with its result), a
/// summary of earlier turns, or a fact found in them. Keyed by tenant and principal from the caller's key, never by
/// the session id alone, so the same session id of another principal is another, empty session.
/// </summary>
public sealed class MemoryItem
{
    /// <summary>Given by the store on insert; its order is the order things were remembered in (oldest is evicted first).</summary>
    public long Seq { get; set; }

    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";
    public string Session { get; set; } = "";

    /// <summary><c>turn</c>, <c>summary</c> or <c>fact</c>.</summary>
    public string Kind { get; set; } = "";

    /// <summary>Who said it: <c>user</c>, <c>assistant</c>, <c>tool</c> (a call and its result), <c>system</c> (a summary).</summary>
    public string Role { get; set; } = "";

    public string Text { get; set; } = "";

    /// <summary>The job that remembered it; the items of one turn share it, so a turn is kept, summarised or evicted whole.</summary>
    public string JobId { get; set; } = "";

    /// <summary>The memory node that wrote it.</summary>
    public string NodeId { get; set; } = "";

    /// <summary>Its place among the items its node wrote: a node written twice (a resumed run) inserts nothing new.</summary>
    public int Ordinal { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>After this it is never recalled, listed or found, whether or not a sweep removed it yet.</summary>
    public DateTime? ExpiresAt { get; set; }

    /// <summary>UTF-8 size of <see cref="Text"/>, what <c>maxBytes</c> counts.</summary>
    public int Bytes { get; set; }
}

public static class MemoryKinds
{
    public const string Turn = "turn";
    public const string Summary = "summary";
    public const string Fact = "fact";
}

public static class MemoryRoles
{
    public const string User = "user";
    public const string Assistant = "assistant";
    public const string Tool = "tool";
    public const string System = "system";
}

internal sealed class MemoryItemConfiguration : IEntityTypeConfiguration<MemoryItem>
{
    public void Configure(EntityTypeBuilder<MemoryItem> item)
    {
        item.ToTable("MemoryItems");
        item.HasKey(i => i.Seq);
        item.Property(i => i.Seq).ValueGeneratedOnAdd();
        item.Property(i => i.Tenant).HasMaxLength(100);
        item.Property(i => i.Principal).HasMaxLength(200);
        item.Property(i => i.Session).HasMaxLength(200);
        item.Property(i => i.Kind).HasMaxLength(20);
        item.Property(i => i.Role).HasMaxLength(20);
        item.Property(i => i.JobId).HasMaxLength(40);
        item.Property(i => i.NodeId).HasMaxLength(200);
        // Recall reads the newest items of one kind (the summary, facts, turns) of a session or of the principal: with
        // the kind in the index each is a short range scan, however many items of other kinds the session holds.
        item.HasIndex(i => new { i.Tenant, i.Principal, i.Session, i.Kind, i.Seq });
        item.HasIndex(i => new { i.Tenant, i.Principal, i.Kind, i.Seq });
        // Listing, caps and forgetting read a session's (or the principal's) items in the order they were written.
        item.HasIndex(i => new { i.Tenant, i.Principal, i.Session, i.Seq });
        item.HasIndex(i => new { i.Tenant, i.Principal, i.Seq });
        item.HasIndex(i => new { i.JobId, i.NodeId, i.Ordinal }).IsUnique();
        item.HasIndex(i => i.ExpiresAt);
    }
}
