using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;

namespace Orchestrator.Memory;

/// <summary>
/// Session and principal memory: recall within a budget, writes of turns and summaries (through the store's writer,
/// each one transaction with its evictions), listing, search and forgetting. Every read filters by tenant and
/// principal and hides expired items, so TTL holds whether or not a sweep ran.
/// </summary>
internal sealed class MemoryStore(IDbContextFactory<OrchestratorDb> dbs, StoreWriter writer, MemoryTelemetry telemetry, TimeProvider time)
{
    /// <summary>Most items a recent-turns read looks at; a turn with more tool calls than this is recalled in part.</summary>
    const int ItemsPerTurn = 8;

    public async Task<MemoryRecall> RecallAsync(MemoryKey key, MemoryPolicy policy, string query, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        // One connection for the four reads below, instead of one from the pool for each.
        await db.Database.OpenConnectionAsync(cancellationToken);
        var live = Live(db, key.Tenant, key.Principal, now);
        var inSession = live.Where(i => i.Session == key.Session);
        var scoped = policy.Scope == MemoryScopes.Principal ? live : inSession;

        MemoryItem? summary = null;
        var facts = new List<MemoryItem>();
        if (policy.Recall.Summary)
        {
            summary = await inSession.Where(i => i.Kind == MemoryKinds.Summary).OrderByDescending(i => i.Seq).FirstOrDefaultAsync(cancellationToken);
            facts = await scoped.Where(i => i.Kind == MemoryKinds.Fact).OrderByDescending(i => i.Seq).Take(200).ToListAsync(cancellationToken);
        }
        var recent = new List<IReadOnlyList<MemoryItem>>();
        if (policy.Recall.Recent > 0)
        {
            var rows = await inSession.Where(i => i.Kind == MemoryKinds.Turn).OrderByDescending(i => i.Seq)
                .Take(policy.Recall.Recent * ItemsPerTurn).ToListAsync(cancellationToken);
            recent = rows.GroupBy(i => i.JobId).Select(g => (IReadOnlyList<MemoryItem>)g.OrderBy(i => i.Seq).ToList())
                .Take(policy.Recall.Recent).ToList();
        }
        var relevant = policy.Recall.Relevant > 0
            ? await MemorySearch.FindAsync(db, key.Tenant, key.Principal, policy.Scope == MemoryScopes.Principal ? null : key.Session,
                MemorySearch.Terms(query), policy.Recall.Relevant + policy.Recall.Recent * 2, now, withSummaries: false, cancellationToken,
                MemorySearch.RecallWindow)
            : [];
        var recentSeqs = recent.SelectMany(t => t).Select(i => i.Seq).ToHashSet();
        var recall = RecallBudget.Fit(key, policy, summary, facts, recent,
            relevant.Where(r => !recentSeqs.Contains(r.Item.Seq)).Take(policy.Recall.Relevant).ToList());
        telemetry.Recalled(key, recall, time.GetElapsedTime(started).TotalMilliseconds);
        return recall;
    }

    /// <summary>Writes a turn's items and enforces the caps; evictions are counted in telemetry and in the answer.</summary>
    public async Task<MemoryWritten> RememberAsync(
        MemoryKey key, string jobId, string nodeId, IReadOnlyList<NewMemoryItem> items, MemoryPolicy policy)
    {
        var started = time.GetTimestamp();
        var write = new RememberItems(key, jobId, nodeId, items, policy, time.GetUtcNow().UtcDateTime);
        await Committed(write);
        var result = write.Result!;
        telemetry.Written(key, result.ItemIds.Count, result.Evicted, time.GetElapsedTime(started).TotalMilliseconds);
        return result;
    }

    /// <summary>Stores a summary with its facts in place of the turns it folded; an empty summary replaces nothing.</summary>
    public async Task<MemorySummarized> SummarizeAsync(
        MemoryKey key, string jobId, string nodeId, string summary, IReadOnlyList<NewMemoryItem> facts, IReadOnlyList<string> replaces, MemoryPolicy policy)
    {
        var write = new StoreSummary(key, jobId, nodeId, summary, facts, replaces, policy, time.GetUtcNow().UtcDateTime);
        await Committed(write);
        var result = write.Result!;
        telemetry.Summarized(key, result);
        return result;
    }

    /// <summary>Forgets a session (or everything, with no session) of this principal only; done once this returns.</summary>
    public async Task<int> ForgetAsync(string tenant, string principal, string? session)
    {
        var write = new ForgetMemory(tenant, principal, session);
        await Committed(write);
        telemetry.Forgot(tenant, principal, write.Removed);
        return write.Removed;
    }

    public async Task<int> SweepAsync()
    {
        var write = new SweepExpiredMemory(time.GetUtcNow().UtcDateTime);
        await Committed(write);
        return write.Removed;
    }

    /// <summary>The newest <paramref name="limit"/> live items of a session, oldest first, and the session's totals.</summary>
    public async Task<(List<MemoryItem> Items, MemoryTotals Totals)> ListAsync(MemoryKey key, int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var session = Live(db, key.Tenant, key.Principal, time.GetUtcNow().UtcDateTime).Where(i => i.Session == key.Session);
        var items = await session.OrderByDescending(i => i.Seq).Take(limit).ToListAsync(cancellationToken);
        items.Reverse();
        var count = await session.LongCountAsync(cancellationToken);
        var bytes = await session.SumAsync(i => (long)i.Bytes, cancellationToken);
        return (items, new MemoryTotals(count, bytes));
    }

    /// <summary>The caller's live items matching <paramref name="query"/>, best first (of one session, or all).</summary>
    public async Task<List<(MemoryItem Item, double Score)>> SearchAsync(
        string tenant, string principal, string? session, string query, int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await MemorySearch.FindAsync(db, tenant, principal, session, MemorySearch.Terms(query), limit, time.GetUtcNow().UtcDateTime,
            withSummaries: true, cancellationToken);
    }

    static IQueryable<MemoryItem> Live(OrchestratorDb db, string tenant, string principal, DateTime now) =>
        db.Set<MemoryItem>().AsNoTracking()
            .Where(i => i.Tenant == tenant && i.Principal == principal && (i.ExpiresAt == null || i.ExpiresAt > now));

    async Task Committed(StoreWrite write)
    {
        if (!await writer.WriteAsync(write))
            throw new InvalidOperationException("A memory write was not applied.");
    }
}
