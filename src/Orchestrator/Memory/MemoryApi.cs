using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Hosting;
using Orchestrator.Tenancy;

namespace Orchestrator.Memory;

/// <summary>
/// <c>/v1/sessions/{session}/memory</c>, <c>/v1/memory/search</c> and the two forget calls. Whose memory is always
/// the caller's tenant and principal; nothing in the request can name another.
/// </summary>
public static class MemoryApi
{
    public const int MaxSessionLength = 200;
    public const int MaxQueryLength = 1000;
    const int MaxList = 1000;
    const int MaxSearch = 100;

    public static RouteGroupBuilder MapMemory(this IEndpointRouteBuilder app)
    {
        var memory = app.MapGroup("/v1").WithTags("Memory");
        memory.MapGet("/sessions/{session}/memory", List)
            .WithSummary("What this session remembers (the caller's own): turns, summary and facts, oldest first, with totals.");
        memory.MapGet("/memory/search", Search)
            .WithSummary("The caller's own memory items matching q, best first, each with its score and source.");
        memory.MapDelete("/sessions/{session}", ForgetSession)
            .WithSummary("Forget the session: its items and their search entries are gone when this answers.");
        memory.MapDelete("/memory", ForgetAll)
            .WithSummary("Forget everything the caller's principal remembers, in every session.");
        return memory;
    }

    /// <remarks>
    /// An operator may read another principal's session by naming <c>tenant</c> and <c>principal</c>; every such read
    /// is an audit entry (<c>memory.read</c>) before it is answered. Nobody else can name whose memory to read.
    /// </remarks>
    static async Task<Results<Ok<SessionMemoryView>, ProblemHttpResult>> List(
        string session, int? limit, string? tenant, string? principal, Caller caller, MemoryStore store, AuditTrail audit,
        CancellationToken cancellationToken)
    {
        var other = tenant is not null || principal is not null;
        if (other && !caller.IsOperator)
            return Problems.For(Problems.Forbidden, "Only an operator may read another principal's memory (tenant and principal).");
        var errors = new Dictionary<string, string[]>();
        CheckSession(session, errors);
        if (limit is < 1 or > MaxList)
            errors["limit"] = [$"limit must be between 1 and {MaxList}."];
        if (other && (!Identifiers.IsValid(tenant) || string.IsNullOrWhiteSpace(principal) || principal.Length > 200))
            errors["principal"] = ["An operator's read names both a valid tenant and a principal."];
        if (errors.Count > 0)
            return Problems.Validation(errors);
        var key = other ? new MemoryKey(tenant!, principal!, session) : new MemoryKey(caller.Tenant, caller.Principal, session);
        if (other)
            await audit.RecordAsync(caller, "memory.read", $"sessions/{session}/memory", allowed: true,
                details: new { tenant, principal, session }, tenant: tenant);
        var (items, totals) = await store.ListAsync(key, limit ?? MaxList, cancellationToken);
        return TypedResults.Ok(new SessionMemoryView(session, items.Select(MemoryItemView.Of).ToList(), totals));
    }

    static async Task<Results<Ok<MemorySearchView>, ProblemHttpResult>> Search(
        string? q, string? session, int? limit, Caller caller, MemoryStore store, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(q) || q.Length > MaxQueryLength)
            errors["q"] = [$"q must be 1-{MaxQueryLength} characters of text to search for."];
        else if (MemorySearch.Terms(q).Count == 0)
            errors["q"] = ["q holds no word to search for (letters or digits, not only common words)."];
        if (session is not null)
            CheckSession(session, errors);
        if (limit is < 1 or > MaxSearch)
            errors["limit"] = [$"limit must be between 1 and {MaxSearch}."];
        if (errors.Count > 0)
            return Problems.Validation(errors);
        var hits = await store.SearchAsync(caller.Tenant, caller.Principal, session, q!, limit ?? 10, cancellationToken);
        return TypedResults.Ok(new MemorySearchView(q!, session, hits.Select(h => MemoryHitView.Of(h.Item, h.Score)).ToList()));
    }

    static async Task<Results<NoContent, ProblemHttpResult>> ForgetSession(string session, Caller caller, MemoryStore store)
    {
        var errors = new Dictionary<string, string[]>();
        CheckSession(session, errors);
        if (errors.Count > 0)
            return Problems.Validation(errors);
        await store.ForgetAsync(caller.Tenant, caller.Principal, session);
        return TypedResults.NoContent();
    }

    static async Task<NoContent> ForgetAll(Caller caller, MemoryStore store)
    {
        await store.ForgetAsync(caller.Tenant, caller.Principal, null);
        return TypedResults.NoContent();
    }

    static void CheckSession(string session, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(session) || session.Length > MaxSessionLength)
            errors["session"] = [$"session must be 1-{MaxSessionLength} characters."];
    }
}

/// <summary>Where an item came from: the job and the memory node that wrote it.</summary>
public sealed record MemorySourceView(string JobId, string NodeId);

public sealed record MemoryItemView(string Id, string Kind, string Role, string Text, DateTime CreatedAt, DateTime? ExpiresAt, MemorySourceView Source)
{
    internal static MemoryItemView Of(MemoryItem i) =>
        new(i.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), i.Kind, i.Role, i.Text, i.CreatedAt, i.ExpiresAt, new MemorySourceView(i.JobId, i.NodeId));
}

/// <summary><c>GET /v1/sessions/{session}/memory</c>.</summary>
public sealed record SessionMemoryView(string Session, IReadOnlyList<MemoryItemView> Items, MemoryTotals Totals);

public sealed record MemoryHitView(
    string Id, string Session, string Kind, string Role, string Text, double Score, DateTime CreatedAt, DateTime? ExpiresAt, MemorySourceView Source)
{
    internal static MemoryHitView Of(MemoryItem i, double score) =>
        new(i.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), i.Session, i.Kind, i.Role, i.Text, score, i.CreatedAt, i.ExpiresAt,
            new MemorySourceView(i.JobId, i.NodeId));
}

/// <summary><c>GET /v1/memory/search</c>.</summary>
public sealed record MemorySearchView(string Q, string? Session, IReadOnlyList<MemoryHitView> Items);
