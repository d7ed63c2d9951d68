using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Hosting;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Replay;

/// <summary><c>/v1/replays</c>: the recorded package of a run, its rerun from recorded outputs, comparison, and import.</summary>
public static class ReplayApi
{
    public static RouteGroupBuilder MapReplay(this IEndpointRouteBuilder app)
    {
        var replays = app.MapGroup("/v1/replays").WithTags("Replay");
        replays.MapGet("/{traceId}", Get).WithSummary("The replay package of a run: request, versions, routing decisions, every node's input and output, timings.");
        replays.MapPost("/{traceId}/rerun", Rerun).WithSummary("Re-execute the run from its recorded outputs (no model called, no effect applied), optionally with another policy or prompts.");
        replays.MapGet("/{traceId}/diff", Diff).WithSummary("Compare two runs: path, routing, output, timing.");
        replays.MapPost("/", Import).RequireAuthorization(TenancySetup.OperatorPolicy)
            .WithSummary("Import a package exported from another deployment.");
        return replays;
    }

    internal static async Task<Results<Ok<ReplayPackage>, ProblemHttpResult>> Get(
        string traceId, bool? download, Caller caller, ReplayStore store, HttpContext http, CancellationToken cancellationToken)
    {
        var found = await store.FindAsync(caller, traceId, cancellationToken);
        if (found.Package is not { } package)
            return Missing(traceId, found);
        if (download == true)
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"replay-{traceId}.json\"";
        return TypedResults.Ok(package);
    }

    internal static async Task<Results<Ok<RerunReport>, ProblemHttpResult>> Rerun(
        string traceId, RerunRequest? request, Caller caller, ReplayStore store, IntentCatalog intents, CancellationToken cancellationToken)
    {
        var found = await store.FindAsync(caller, traceId, cancellationToken);
        if (found.Package is not { } package)
            return Missing(traceId, found);

        IntentPolicy policy;
        string source;
        if (request?.Policy is { } inline)
        {
            try
            {
                policy = IntentCatalog.Parse(inline.GetRawText());
            }
            catch (InvalidDataException error)
            {
                return Problems.Validation("policy", "The policy " + error.Message);
            }
            if (policy.Intent != package.Intent)
                return Problems.Validation("policy", $"The policy is for '{policy.Intent}' but the run was '{package.Intent}'.");
            source = "request";
        }
        else
        {
            var wanted = request?.Versions?.Policy ?? "recorded";
            if (wanted is not ("recorded" or "current"))
                return Problems.Validation("versions.policy", "versions.policy must be 'recorded' or 'current' (versioned artifacts are not kept here yet).");
            if (wanted == "current")
            {
                if (intents.Find(package.Intent) is not { } current)
                    return Problems.Validation("versions.policy", $"No policy for '{package.Intent}' is loaded here.");
                policy = current;
                source = "current";
            }
            else
            {
                policy = package.Policy with { ContentHash = package.Versions.Policy.Hash ?? "" };
                source = "recorded";
            }
        }
        var prompts = request?.Versions?.Prompts ?? "recorded";
        if (prompts is not ("recorded" or "current"))
            return Problems.Validation("versions.prompts", "versions.prompts must be 'recorded' or 'current'.");
        if (prompts == "current" && intents.Find(package.Intent) is { } withPrompts)
        {
            policy = WithPrompts(policy, withPrompts);
            source += "+current-prompts";
        }
        return TypedResults.Ok(await ReplayEngine.RerunAsync(package, policy, source, cancellationToken));
    }

    internal static async Task<Results<Ok<RunDiff>, ProblemHttpResult>> Diff(
        string traceId, string? against, Caller caller, ReplayStore store, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(against))
            return Problems.Validation("against", "Name the run to compare with: ?against={traceId}.");
        var a = await store.FindAsync(caller, traceId, cancellationToken);
        if (a.Package is null)
            return Missing(traceId, a);
        var b = await store.FindAsync(caller, against, cancellationToken);
        if (b.Package is null)
            return Missing(against, b);
        return TypedResults.Ok(RunDiff.Of(a.Package, b.Package));
    }

    static async Task<Results<Created<ImportedReplay>, ProblemHttpResult>> Import(
        JsonElement body, Caller caller, ReplayStore store, AuditTrail audit, CancellationToken cancellationToken)
    {
        ReplayPackage? package;
        try
        {
            package = body.Deserialize(ReplayJson.Default.ReplayPackage);
        }
        catch (JsonException error)
        {
            // The serializer's message names .NET types; the caller gets the field and what is wrong with it.
            return error.Path?.TrimStart('$', '.') is { Length: > 0 } field
                ? Problems.Validation(field, $"This is not a replay package: '{field}' is missing, null or of the wrong type.")
                : Problems.Validation("body", "This is not a replay package: a required field is missing or null.");
        }
        if (package is null || package.Format != ReplayPackage.CurrentFormat)
            return Problems.Validation("format", $"A replay package has format '{ReplayPackage.CurrentFormat}'.");
        if (ReplayEngine.Invalid(package) is { } invalid)
            return Problems.Validation(invalid.Field, invalid.Message);
        if (!await store.ImportAsync(package, caller, cancellationToken))
            return Problems.For(Problems.Conflict, $"A run with trace id {package.TraceId} is already here.");
        await audit.RecordAsync(caller, "replay.import", $"replays/{package.TraceId}", allowed: true, traceId: package.TraceId,
            details: new { jobId = package.JobId, intent = package.Intent }, tenant: package.Tenant);
        return TypedResults.Created($"/v1/replays/{package.TraceId}", new ImportedReplay(package.TraceId, package.JobId, package.Tenant, package.Intent));
    }

    static ProblemHttpResult Missing(string traceId, ReplayFind found) => found.IsExpired
        ? Problems.For(Problems.NotFound, $"The replay of {traceId} is past its retention and was removed.")
        : Problems.For(Problems.NotFound, $"No run with trace id {traceId} here.");

    /// <summary>The policy with each node's prompt (and role) taken from <paramref name="prompts"/> where the node ids match.</summary>
    internal static IntentPolicy WithPrompts(IntentPolicy policy, IntentPolicy prompts)
    {
        var byId = prompts.Nodes.ToDictionary(n => n.Id);
        return policy with
        {
            Nodes = policy.Nodes.Select(n => byId.TryGetValue(n.Id, out var p) ? n with { Prompt = p.Prompt, Role = p.Role ?? n.Role } : n).ToList(),
        };
    }
}

/// <summary>The body of a rerun: an edited policy, or which versions to walk with (<c>recorded</c> or <c>current</c>).</summary>
public sealed record RerunRequest(JsonElement? Policy, RerunVersions? Versions);

public sealed record RerunVersions(string? Policy, string? Prompts, string? Routing);

public sealed record ImportedReplay(string TraceId, string JobId, string Tenant, string Intent);
