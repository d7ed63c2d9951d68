using System.Globalization;
using Orchestrator.Storage;

namespace Orchestrator.Memory;

/// <summary>A new item for a memory write: kind, role and text; the write stamps who, where and when.</summary>
public sealed record NewMemoryItem(string Kind, string Role, string Text);

/// <summary>An item as a summariser reads it: its id, role and text.</summary>
public sealed record MemoryText(string Id, string Role, string Text);

/// <summary>
/// Turns due to be folded into a summary: the items of the oldest turns (tool calls with their results, so a pair is
/// folded whole or not at all) and the summary they join, if the session has one.
/// </summary>
public sealed record SummaryDue(IReadOnlyList<MemoryText> Turns, MemoryText? Previous);

/// <summary>
/// What a memory write did: the items it wrote, how many it evicted to stay within the caps, the session's totals
/// after it (when the session has caps: they are counted anyway), and whether a summary is due.
/// </summary>
public sealed record MemoryWritten(IReadOnlyList<string> ItemIds, int Evicted, MemoryTotals? Totals, SummaryDue? SummaryDue);

/// <summary>How much one session keeps: items and bytes of text.</summary>
public sealed record MemoryTotals(long Items, long Bytes);

/// <summary>
/// The statements memory writes share, written once for both stores. Every statement names the tenant and the
/// principal; rows are chosen by them first and only then by session or sequence number.
/// </summary>
internal static class MemorySql
{
    static (Type, string, string) P(string property, string name) => (typeof(MemoryItem), property, name);

    /// <summary>Inserts one item; a row already written by the same node at the same place answers nothing (a resumed run).</summary>
    public static long? Insert(StoreSession session, MemoryItem item)
    {
        var statement = session.Command("memory:insert", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            string[] columns = [nameof(MemoryItem.Tenant), nameof(MemoryItem.Principal), nameof(MemoryItem.Session), nameof(MemoryItem.Kind),
                nameof(MemoryItem.Role), nameof(MemoryItem.Text), nameof(MemoryItem.JobId), nameof(MemoryItem.NodeId), nameof(MemoryItem.Ordinal),
                nameof(MemoryItem.CreatedAt), nameof(MemoryItem.ExpiresAt), nameof(MemoryItem.Bytes)];
            return $"INSERT INTO {sql.Table<MemoryItem>()} ({string.Join(", ", columns.Select(C))}) " +
                   $"VALUES ({string.Join(", ", columns.Select((_, i) => sql.Parameter("p" + i)))}) ON CONFLICT DO NOTHING RETURNING {C(nameof(MemoryItem.Seq))}";
        },
        P(nameof(MemoryItem.Tenant), "p0"), P(nameof(MemoryItem.Principal), "p1"), P(nameof(MemoryItem.Session), "p2"), P(nameof(MemoryItem.Kind), "p3"),
        P(nameof(MemoryItem.Role), "p4"), P(nameof(MemoryItem.Text), "p5"), P(nameof(MemoryItem.JobId), "p6"), P(nameof(MemoryItem.NodeId), "p7"),
        P(nameof(MemoryItem.Ordinal), "p8"), P(nameof(MemoryItem.CreatedAt), "p9"), P(nameof(MemoryItem.ExpiresAt), "p10"), P(nameof(MemoryItem.Bytes), "p11"));
        object?[] values = [item.Tenant, item.Principal, item.Session, item.Kind, item.Role, item.Text, item.JobId, item.NodeId, item.Ordinal,
            item.CreatedAt, item.ExpiresAt, item.Bytes];
        for (var i = 0; i < values.Length; i++)
            statement.Bind(i, values[i]);
        return statement.Command.ExecuteScalar() is { } seq and not DBNull ? Convert.ToInt64(seq, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>The items a node already wrote (a resumed run), by their place.</summary>
    public static List<long> WrittenBy(StoreSession session, string jobId, string nodeId)
    {
        var statement = session.Command("memory:written-by", sql =>
            $"SELECT {sql.Column<MemoryItem>(nameof(MemoryItem.Seq))} FROM {sql.Table<MemoryItem>()} " +
            $"WHERE {sql.Column<MemoryItem>(nameof(MemoryItem.JobId))} = {sql.Parameter("j")} AND {sql.Column<MemoryItem>(nameof(MemoryItem.NodeId))} = {sql.Parameter("n")} " +
            $"ORDER BY {sql.Column<MemoryItem>(nameof(MemoryItem.Ordinal))}",
            P(nameof(MemoryItem.JobId), "j"), P(nameof(MemoryItem.NodeId), "n"));
        statement.Bind(0, jobId);
        statement.Bind(1, nodeId);
        var seqs = new List<long>();
        using var reader = statement.Command.ExecuteReader();
        while (reader.Read())
            seqs.Add(reader.GetInt64(0));
        return seqs;
    }

    /// <summary>Removes the session's expired items: what TTL hides on read is also gone before the caps are counted.</summary>
    public static int DeleteExpired(StoreSession session, MemoryKey key, DateTime now)
    {
        var statement = session.Command("memory:delete-expired", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"DELETE FROM {sql.Table<MemoryItem>()} WHERE {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")} " +
                   $"AND {C(nameof(MemoryItem.Session))} = {sql.Parameter("s")} AND {C(nameof(MemoryItem.ExpiresAt))} IS NOT NULL AND {C(nameof(MemoryItem.ExpiresAt))} <= {sql.Parameter("now")}";
        }, P(nameof(MemoryItem.Tenant), "t"), P(nameof(MemoryItem.Principal), "p"), P(nameof(MemoryItem.Session), "s"), P(nameof(MemoryItem.ExpiresAt), "now"));
        statement.Bind(0, key.Tenant);
        statement.Bind(1, key.Principal);
        statement.Bind(2, key.Session);
        statement.Bind(3, now);
        return statement.Command.ExecuteNonQuery();
    }

    /// <summary>A row as the caps count it.</summary>
    public sealed record Row(long Seq, string Session, string JobId, string Kind, int Bytes);

    /// <summary>
    /// Every item of the session (or, with no session, of the principal), oldest first, without its text; only those
    /// of <paramref name="kind"/> when given. Read only where the caps or the summary bound how many there are.
    /// </summary>
    public static List<Row> Rows(StoreSession session, string tenant, string principal, string? sessionId, string? kind = null)
    {
        var statement = session.Command($"memory:rows:{(sessionId is null ? "principal" : "session")}:{kind is not null}", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"SELECT {C(nameof(MemoryItem.Seq))}, {C(nameof(MemoryItem.Session))}, {C(nameof(MemoryItem.JobId))}, {C(nameof(MemoryItem.Kind))}, {C(nameof(MemoryItem.Bytes))} " +
                   $"FROM {sql.Table<MemoryItem>()} WHERE {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")}" +
                   (sessionId is null ? "" : $" AND {C(nameof(MemoryItem.Session))} = {sql.Parameter("s")}") +
                   (kind is null ? "" : $" AND {C(nameof(MemoryItem.Kind))} = {sql.Parameter("k")}") +
                   $" ORDER BY {C(nameof(MemoryItem.Seq))}";
        }, [P(nameof(MemoryItem.Tenant), "t"), P(nameof(MemoryItem.Principal), "p"),
            .. sessionId is null ? Array.Empty<(Type, string, string)>() : [P(nameof(MemoryItem.Session), "s")],
            .. kind is null ? Array.Empty<(Type, string, string)>() : [P(nameof(MemoryItem.Kind), "k")]]);
        var index = 0;
        statement.Bind(index++, tenant);
        statement.Bind(index++, principal);
        if (sessionId is not null)
            statement.Bind(index++, sessionId);
        if (kind is not null)
            statement.Bind(index, kind);
        var rows = new List<Row>();
        using var reader = statement.Command.ExecuteReader();
        while (reader.Read())
            rows.Add(new Row(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
        return rows;
    }

    /// <summary>One item's role and text, if it is still there and the principal's.</summary>
    public static MemoryText? Text(StoreSession session, string tenant, string principal, long seq)
    {
        var statement = session.Command("memory:text", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"SELECT {C(nameof(MemoryItem.Role))}, {C(nameof(MemoryItem.Text))} FROM {sql.Table<MemoryItem>()} " +
                   $"WHERE {C(nameof(MemoryItem.Seq))} = {sql.Parameter("q")} AND {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")}";
        }, P(nameof(MemoryItem.Seq), "q"), P(nameof(MemoryItem.Tenant), "t"), P(nameof(MemoryItem.Principal), "p"));
        statement.Bind(0, seq);
        statement.Bind(1, tenant);
        statement.Bind(2, principal);
        using var reader = statement.Command.ExecuteReader();
        return reader.Read() ? new MemoryText(Id(seq), reader.GetString(0), reader.GetString(1)) : null;
    }

    /// <summary>The facts a session keeps, by who said them and their text, in one read.</summary>
    public static HashSet<(string Role, string Text)> FactTexts(StoreSession session, MemoryKey key)
    {
        var statement = session.Command("memory:fact-texts", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"SELECT {C(nameof(MemoryItem.Role))}, {C(nameof(MemoryItem.Text))} FROM {sql.Table<MemoryItem>()} " +
                   $"WHERE {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")} " +
                   $"AND {C(nameof(MemoryItem.Session))} = {sql.Parameter("s")} AND {C(nameof(MemoryItem.Kind))} = {sql.Parameter("k")}";
        }, P(nameof(MemoryItem.Tenant), "t"), P(nameof(MemoryItem.Principal), "p"), P(nameof(MemoryItem.Session), "s"), P(nameof(MemoryItem.Kind), "k"));
        statement.Bind(0, key.Tenant);
        statement.Bind(1, key.Principal);
        statement.Bind(2, key.Session);
        statement.Bind(3, MemoryKinds.Fact);
        var facts = new HashSet<(string, string)>();
        using var reader = statement.Command.ExecuteReader();
        while (reader.Read())
            facts.Add((reader.GetString(0), reader.GetString(1)));
        return facts;
    }

    /// <summary>Removes one item of the principal (its search entry goes with it: a trigger on SQLite, the row itself on PostgreSQL).</summary>
    public static int Delete(StoreSession session, string tenant, string principal, long seq)
    {
        var statement = session.Command("memory:delete", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"DELETE FROM {sql.Table<MemoryItem>()} WHERE {C(nameof(MemoryItem.Seq))} = {sql.Parameter("q")} " +
                   $"AND {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")}";
        }, P(nameof(MemoryItem.Seq), "q"), P(nameof(MemoryItem.Tenant), "t"), P(nameof(MemoryItem.Principal), "p"));
        statement.Bind(0, seq);
        statement.Bind(1, tenant);
        statement.Bind(2, principal);
        return statement.Command.ExecuteNonQuery();
    }

    public static string Id(long seq) => seq.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The items to evict so that <paramref name="rows"/> fit the caps: the oldest first, a turn (its user words, tool
    /// calls and results, reply) as one, and never the newest summary of a session (it stands for everything before it).
    /// </summary>
    public static List<long> Evictions(List<Row> rows, int? maxItems, long? maxBytes)
    {
        if (maxItems is null && maxBytes is null)
            return [];
        var count = (long)rows.Count;
        var bytes = rows.Sum(r => (long)r.Bytes);
        if (count <= (maxItems ?? long.MaxValue) && bytes <= (maxBytes ?? long.MaxValue))
            return [];
        var kept = rows.Where(r => r.Kind == MemoryKinds.Summary).GroupBy(r => r.Session).Select(g => g.Max(r => r.Seq)).ToHashSet();
        var evicted = new List<long>();
        foreach (var unit in rows.Where(r => !kept.Contains(r.Seq))
                     .GroupBy(r => r.Kind == MemoryKinds.Turn ? "turn\u001f" + r.Session + "\u001f" + r.JobId : "item\u001f" + Id(r.Seq))
                     .OrderBy(g => g.Min(r => r.Seq)))
        {
            if (count <= (maxItems ?? long.MaxValue) && bytes <= (maxBytes ?? long.MaxValue))
                break;
            foreach (var row in unit)
            {
                evicted.Add(row.Seq);
                count--;
                bytes -= row.Bytes;
            }
        }
        return evicted;
    }
}

/// <summary>
/// Remembers one turn in one transaction: removes the session's expired items, inserts the new ones (once, however
/// often the node runs), evicts the oldest to stay within the session's and the principal's caps, and says whether
/// the session is due a summary.
/// </summary>
internal sealed class RememberItems(
    MemoryKey key, string jobId, string nodeId, IReadOnlyList<NewMemoryItem> items, MemoryPolicy policy, DateTime now) : StoreWrite
{
    public override object? Entity => null;

    public MemoryWritten? Result { get; private set; }

    public override int Execute(StoreSession session)
    {
        var (tenant, principal) = (key.Tenant, key.Principal);
        // Expired items are hidden from every read; a capped session also drops them here, before its caps are
        // counted (the cap bounds that scan). An uncapped one leaves them to the sweep.
        if (policy.Retention is { MaxItems: not null } or { MaxBytes: not null })
            MemorySql.DeleteExpired(session, key, now);
        var seqs = new List<long>();
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            var seq = MemorySql.Insert(session, new MemoryItem
            {
                Tenant = tenant, Principal = principal, Session = key.Session, Kind = item.Kind, Role = item.Role, Text = item.Text,
                JobId = jobId, NodeId = nodeId, Ordinal = i, CreatedAt = now, ExpiresAt = now + policy.Retention.Ttl,
                Bytes = System.Text.Encoding.UTF8.GetByteCount(item.Text),
            });
            if (seq is { } s)
                seqs.Add(s);
        }
        if (seqs.Count < items.Count)
            seqs = MemorySql.WrittenBy(session, jobId, nodeId);

        var (evicted, totals) = MemoryEviction.Enforce(session, key, policy.Retention);
        Result = new MemoryWritten(seqs.Select(MemorySql.Id).ToList(), evicted, totals, Due(session));
        return 1;
    }

    /// <summary>
    /// The oldest turns to fold once the session holds more than the policy allows unsummarised; the newest
    /// <c>recent</c> turns stay as said. Reads the session's turns only, which summaries keep few.
    /// </summary>
    SummaryDue? Due(StoreSession session)
    {
        if (policy.Summarize is not { } summarize)
            return null;
        var turns = MemorySql.Rows(session, key.Tenant, key.Principal, key.Session, MemoryKinds.Turn)
            .GroupBy(r => r.JobId).OrderBy(g => g.Min(r => r.Seq)).ToList();
        var tokens = turns.Sum(t => t.Sum(r => (r.Bytes + 3) / 4));
        var due = (summarize.AfterTurns is { } n && turns.Count > n) || (summarize.AfterTokens is { } t && tokens > t);
        var fold = turns.Take(Math.Max(0, turns.Count - policy.Recall.Recent)).SelectMany(g => g).OrderBy(r => r.Seq).ToList();
        if (!due || fold.Count == 0)
            return null;
        var texts = fold.Select(r => MemorySql.Text(session, key.Tenant, key.Principal, r.Seq)).OfType<MemoryText>().ToList();
        var summaries = MemorySql.Rows(session, key.Tenant, key.Principal, key.Session, MemoryKinds.Summary);
        var previous = summaries.Count > 0 ? MemorySql.Text(session, key.Tenant, key.Principal, summaries[^1].Seq) : null;
        return new SummaryDue(texts, previous);
    }
}

/// <summary>
/// The caps, enforced inside a write's transaction; evictions are counted by the caller. A capped session's rows are
/// read (the cap bounds them); an uncapped one is not, so a write costs the same however much the session holds.
/// </summary>
internal static class MemoryEviction
{
    public static (int Evicted, MemoryTotals? Totals) Enforce(StoreSession session, MemoryKey key, MemoryRetentionPolicy retention)
    {
        var evicted = 0;
        MemoryTotals? totals = null;
        if (retention.MaxItems is not null || retention.MaxBytes is not null)
        {
            var rows = MemorySql.Rows(session, key.Tenant, key.Principal, key.Session);
            var gone = MemorySql.Evictions(rows, retention.MaxItems, retention.MaxBytes).ToHashSet();
            foreach (var seq in gone)
                evicted += MemorySql.Delete(session, key.Tenant, key.Principal, seq);
            var kept = rows.Where(r => !gone.Contains(r.Seq)).ToList();
            totals = new MemoryTotals(kept.Count, kept.Sum(r => (long)r.Bytes));
        }
        if (retention.MaxPrincipalItems is { } maxPrincipal)
        {
            foreach (var seq in MemorySql.Evictions(MemorySql.Rows(session, key.Tenant, key.Principal, null), maxPrincipal, null))
                evicted += MemorySql.Delete(session, key.Tenant, key.Principal, seq);
        }
        return (evicted, totals);
    }
}

/// <summary>What storing a summary did: the summary's id (null when it was empty and the turns were kept), facts added, items it replaced, evictions.</summary>
public sealed record MemorySummarized(string? SummaryId, IReadOnlyList<string> FactIds, int Replaced, int Evicted, string? KeptBecause);

/// <summary>
/// Replaces folded turns by their summary, in one transaction: inserts the summary and the facts found in the turns
/// (verbatim, each with the role of who said it, without repeating a fact the session already keeps), then removes
/// the folded turns and the previous summary. An empty summary replaces nothing.
/// </summary>
internal sealed class StoreSummary(
    MemoryKey key, string jobId, string nodeId, string summary, IReadOnlyList<NewMemoryItem> facts, IReadOnlyList<string> replaces,
    MemoryPolicy policy, DateTime now) : StoreWrite
{
    public override object? Entity => null;

    public MemorySummarized? Result { get; private set; }

    public override int Execute(StoreSession session)
    {
        if (string.IsNullOrWhiteSpace(summary))
        {
            Result = new MemorySummarized(null, [], 0, 0, "The summary was empty; the turns stay as they were.");
            return 1;
        }
        var known = MemorySql.FactTexts(session, key);
        var written = new List<NewMemoryItem> { new(MemoryKinds.Summary, MemoryRoles.System, summary) };
        written.AddRange(facts.Where(f => known.Add((f.Role, f.Text))));
        var seqs = new List<long>();
        for (var i = 0; i < written.Count; i++)
        {
            var item = written[i];
            if (MemorySql.Insert(session, new MemoryItem
                {
                    Tenant = key.Tenant, Principal = key.Principal, Session = key.Session, Kind = item.Kind, Role = item.Role, Text = item.Text,
                    JobId = jobId, NodeId = nodeId, Ordinal = i, CreatedAt = now, ExpiresAt = now + policy.Retention.Ttl,
                    Bytes = System.Text.Encoding.UTF8.GetByteCount(item.Text),
                }) is { } seq)
                seqs.Add(seq);
        }
        if (seqs.Count < written.Count)
            seqs = MemorySql.WrittenBy(session, jobId, nodeId);
        var replaced = 0;
        foreach (var id in replaces)
            if (long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) && !seqs.Contains(seq))
                replaced += MemorySql.Delete(session, key.Tenant, key.Principal, seq);
        var (evicted, _) = MemoryEviction.Enforce(session, key, policy.Retention);
        Result = new MemorySummarized(seqs.Count > 0 ? MemorySql.Id(seqs[0]) : null, seqs.Skip(1).Select(MemorySql.Id).ToList(), replaced, evicted, null);
        return 1;
    }
}

/// <summary>Forgets a session of the principal, or (no session) everything the principal remembers, with its search entries.</summary>
internal sealed class ForgetMemory(string tenant, string principal, string? sessionId) : StoreWrite
{
    public override object? Entity => null;

    public int Removed { get; private set; }

    public override int Execute(StoreSession session)
    {
        var statement = session.Command(sessionId is null ? "memory:forget-principal" : "memory:forget-session", sql =>
        {
            string C(string p) => sql.Column<MemoryItem>(p);
            return $"DELETE FROM {sql.Table<MemoryItem>()} WHERE {C(nameof(MemoryItem.Tenant))} = {sql.Parameter("t")} AND {C(nameof(MemoryItem.Principal))} = {sql.Parameter("p")}" +
                   (sessionId is null ? "" : $" AND {C(nameof(MemoryItem.Session))} = {sql.Parameter("s")}");
        }, sessionId is null
            ? [(typeof(MemoryItem), nameof(MemoryItem.Tenant), "t"), (typeof(MemoryItem), nameof(MemoryItem.Principal), "p")]
            : [(typeof(MemoryItem), nameof(MemoryItem.Tenant), "t"), (typeof(MemoryItem), nameof(MemoryItem.Principal), "p"), (typeof(MemoryItem), nameof(MemoryItem.Session), "s")]);
        statement.Bind(0, tenant);
        statement.Bind(1, principal);
        if (sessionId is not null)
            statement.Bind(2, sessionId);
        Removed = statement.Command.ExecuteNonQuery();
        return 1;
    }
}

/// <summary>Removes every expired item (TTL already hides them on read; this frees their space).</summary>
internal sealed class SweepExpiredMemory(DateTime now) : StoreWrite
{
    public override object? Entity => null;

    public int Removed { get; private set; }

    public override int Execute(StoreSession session)
    {
        var statement = session.Command("memory:sweep", sql =>
            $"DELETE FROM {sql.Table<MemoryItem>()} WHERE {sql.Column<MemoryItem>(nameof(MemoryItem.ExpiresAt))} IS NOT NULL " +
            $"AND {sql.Column<MemoryItem>(nameof(MemoryItem.ExpiresAt))} <= {sql.Parameter("now")}",
            (typeof(MemoryItem), nameof(MemoryItem.ExpiresAt), "now"));
        statement.Bind(0, now);
        Removed = statement.Command.ExecuteNonQuery();
        return 1;
    }
}
