using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;

namespace Orchestrator.Memory;

/// <summary>
/// Ranked text search over a principal's items: SQLite FTS5 (<c>MemorySearch</c>, kept by triggers on
/// <c>MemoryItems</c>, ranked by bm25) or PostgreSQL full-text search (the generated <c>Search</c> tsvector column with
/// a GIN index, ranked by ts_rank). Both index the text split on everything but letters and digits, and a query is
/// its words OR-ed, so the two stores find the same items. Tenant and principal are always in the statement.
/// </summary>
internal static partial class MemorySearch
{
    public const int MaxTerms = 16;

    /// <summary>
    /// Recall ranks the newest this many matches, not all: scoring every match is what grows with a principal's items
    /// (bench/memory.sh: recall p50 3.4-3.6x slower at 100,000 items than at 100, ~1,600 matches of a 4-word query).
    /// Older facts still come back through the summary's facts, which recall reads by kind, not by search.
    /// </summary>
    public const int RecallWindow = 256;

    static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "did", "do", "does", "for", "from", "had", "has", "have", "he",
        "her", "his", "how", "i", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our", "she", "so", "that", "the",
        "their", "them", "then", "there", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who",
        "why", "will", "with", "you", "your", "can", "could", "would", "should", "tell", "please", "about", "again", "remember",
    };

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex Word();

    /// <summary>The words a query searches for: letters and digits, lower-cased, without common words, at most <see cref="MaxTerms"/>.</summary>
    public static IReadOnlyList<string> Terms(string query) =>
        Word().Matches(query).Select(m => m.Value.ToLowerInvariant())
            .Where(w => (w.Length > 1 || char.IsDigit(w[0])) && !StopWords.Contains(w))
            .Distinct(StringComparer.Ordinal).Take(MaxTerms).ToList();

    /// <summary>
    /// The best <paramref name="limit"/> live items of this principal (of one session, or all when null) matching any
    /// term, best first, with their scores (higher is better). Summaries are left out when <paramref name="withSummaries"/> is false.
    /// With a <paramref name="window"/>, only the newest that many matches are ranked (recall's bound, see <see cref="RecallWindow"/>).
    /// </summary>
    public static async Task<List<(MemoryItem Item, double Score)>> FindAsync(
        OrchestratorDb db, string tenant, string principal, string? session, IReadOnlyList<string> terms, int limit, DateTime now,
        bool withSummaries, CancellationToken cancellationToken, int? window = null)
    {
        if (terms.Count == 0 || limit < 1)
            return [];
        var summary = withSummaries ? "" : MemoryKinds.Summary;
        var anySession = session is null;
        var sessionValue = session ?? "";
        List<Hit> hits;
        if (db.Database.IsSqlite())
        {
            // CROSS JOIN fixes the order (SQLite never reorders it): the index finds the matches, then each is checked
            // against its row. Left to the planner, the same query without ORDER BY was seen to walk the principal's
            // rows and probe the index for each: 6.5 s instead of 7 ms at 100,000 items.
            var match = string.Join(" OR ", terms.Select(t => "\"" + t + "\""));
            // Newest first, the index hands out matches in rowid order and the LIMIT stops it: bm25 runs for the window only.
            hits = window is { } newest
                ? await db.Database.SqlQuery<Hit>($"""
                SELECT "Seq", "Score" FROM (
                  SELECT m."Seq" AS "Seq", -bm25("MemorySearch") AS "Score"
                  FROM "MemorySearch" CROSS JOIN "MemoryItems" AS m ON m."Seq" = "MemorySearch".rowid
                  WHERE "MemorySearch" MATCH {match} AND m."Tenant" = {tenant} AND m."Principal" = {principal}
                    AND ({anySession} OR m."Session" = {sessionValue}) AND m."Kind" <> {summary}
                    AND (m."ExpiresAt" IS NULL OR m."ExpiresAt" > {now})
                  ORDER BY "MemorySearch".rowid DESC
                  LIMIT {newest})
                ORDER BY "Score" DESC, "Seq" DESC
                LIMIT {limit}
                """).ToListAsync(cancellationToken)
                : await db.Database.SqlQuery<Hit>($"""
                SELECT m."Seq" AS "Seq", -bm25("MemorySearch") AS "Score"
                FROM "MemorySearch" CROSS JOIN "MemoryItems" AS m ON m."Seq" = "MemorySearch".rowid
                WHERE "MemorySearch" MATCH {match} AND m."Tenant" = {tenant} AND m."Principal" = {principal}
                  AND ({anySession} OR m."Session" = {sessionValue}) AND m."Kind" <> {summary}
                  AND (m."ExpiresAt" IS NULL OR m."ExpiresAt" > {now})
                ORDER BY bm25("MemorySearch"), m."Seq" DESC
                LIMIT {limit}
                """).ToListAsync(cancellationToken);
        }
        else
        {
            var query = string.Join(" | ", terms);
            hits = window is { } newest
                ? await db.Database.SqlQuery<Hit>($"""
                SELECT "Seq", "Score" FROM (
                  SELECT m."Seq" AS "Seq", ts_rank(m."Search", q)::float8 AS "Score"
                  FROM "MemoryItems" AS m, to_tsquery('simple', {query}) AS q
                  WHERE m."Search" @@ q AND m."Tenant" = {tenant} AND m."Principal" = {principal}
                    AND ({anySession} OR m."Session" = {sessionValue}) AND m."Kind" <> {summary}
                    AND (m."ExpiresAt" IS NULL OR m."ExpiresAt" > {now})
                  ORDER BY m."Seq" DESC
                  LIMIT {newest}) AS newest
                ORDER BY "Score" DESC, "Seq" DESC
                LIMIT {limit}
                """).ToListAsync(cancellationToken)
                : await db.Database.SqlQuery<Hit>($"""
                SELECT m."Seq" AS "Seq", ts_rank(m."Search", q)::float8 AS "Score"
                FROM "MemoryItems" AS m, to_tsquery('simple', {query}) AS q
                WHERE m."Search" @@ q AND m."Tenant" = {tenant} AND m."Principal" = {principal}
                  AND ({anySession} OR m."Session" = {sessionValue}) AND m."Kind" <> {summary}
                  AND (m."ExpiresAt" IS NULL OR m."ExpiresAt" > {now})
                ORDER BY "Score" DESC, m."Seq" DESC
                LIMIT {limit}
                """).ToListAsync(cancellationToken);
        }
        if (hits.Count == 0)
            return [];
        var seqs = hits.Select(h => h.Seq).ToList();
        var items = await db.Set<MemoryItem>().AsNoTracking()
            .Where(i => seqs.Contains(i.Seq) && i.Tenant == tenant && i.Principal == principal)
            .ToDictionaryAsync(i => i.Seq, cancellationToken);
        return hits.Where(h => items.ContainsKey(h.Seq)).Select(h => (items[h.Seq], h.Score)).ToList();
    }

    sealed class Hit
    {
        public long Seq { get; set; }
        public double Score { get; set; }
    }
}
