using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Hosting;
using Orchestrator.Tenancy;

namespace Orchestrator.Rollout;

/// <summary><c>/v1/admin/artifacts/{kind}</c> and <c>/v1/admin/rollouts/{kind}</c> (operator): versions, rollout state and history, promote, rollback.</summary>
public static class RolloutApi
{
    public static IEndpointConventionBuilder MapRollout(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").WithTags("Rollout")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapGet("/artifacts/{kind}", ListArtifacts).WithSummary("The versions of an artifact kind (prompts, policies, routing), oldest first, with their content hashes.");
        admin.MapGet("/artifacts/{kind}/{version}", GetArtifact).WithSummary("One version with its content.");
        admin.MapPost("/artifacts/{kind}", CreateArtifact).WithSummary("Store a new version (201), or answer the version that already holds this content (200).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        admin.MapGet("/rollouts/{kind}", GetRollout).WithSummary("The rollout of a kind: stable, candidate, mode, percent, the comparison of its arms, and its history.");
        admin.MapPut("/rollouts/{kind}", PutRollout).WithSummary("Set stable, candidate, mode (canary, ab, shadow) and percent.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/rollouts/{kind}/promote", Promote).WithSummary("Make the candidate stable; needs a passing evaluation of its content hash unless force.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/rollouts/{kind}/rollback", Rollback).WithSummary("One step back to the previous stable (the candidate loses its traffic); a second call is a no-op.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return admin;
    }

    static ProblemHttpResult UnknownKind(string kind) =>
        Problems.For(Problems.NotFound, $"Unknown artifact kind '{kind}'; kinds: {string.Join(", ", ArtifactKinds.All)}.");

    static Results<Ok<ArtifactList>, ProblemHttpResult> ListArtifacts(string kind, RolloutState state)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        var row = state.Rollouts.GetValueOrDefault(kind);
        return TypedResults.Ok(new ArtifactList(kind, [.. state.VersionsOf(kind).Select(a => Summary(a, row))]));
    }

    static ArtifactSummary Summary(Artifact a, RolloutRow? row) => new(a.Kind, a.Version, a.Hash,
        row?.Stable == a.Number ? "stable" : row?.Candidate == a.Number ? "candidate" : null);

    static async Task<Results<Ok<ArtifactView>, ProblemHttpResult>> GetArtifact(string kind, string version, RolloutState state, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        var number = ArtifactKinds.ParseVersion(version);
        if (number is null || state.Find(kind, number.Value) is null)
            await state.RefreshAsync(cancellationToken);
        if (number is null || state.Find(kind, number.Value) is not { } artifact)
            return Problems.For(Problems.NotFound, $"No {kind} version '{version}'.");
        return TypedResults.Ok(View(artifact, state));
    }

    static ArtifactView View(Artifact a, RolloutState state) =>
        new(a.Kind, a.Version, a.Hash, JsonDocument.Parse(a.Content).RootElement.Clone(), Summary(a, state.Rollouts.GetValueOrDefault(a.Kind)).Role);

    static async Task<Results<Ok<ArtifactView>, Created<ArtifactView>, ProblemHttpResult>> CreateArtifact(
        string kind, JsonElement body, Caller caller, RolloutService service, RolloutState state, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        if (body.ValueKind != JsonValueKind.Object)
            return Problems.Validation(kind, $"The body is a {kind} artifact: a JSON object (see doc/rollout.md).");
        var (version, created, errors) = await service.CreateAsync(kind, body, caller, cancellationToken);
        if (version is null)
            return Problems.Validation(errors!);
        var view = View(state.Find(kind, version.Number)!, state);
        return created ? TypedResults.Created($"/v1/admin/artifacts/{kind}/{view.Version}", view) : TypedResults.Ok(view);
    }

    static async Task<Results<Ok<RolloutView>, ProblemHttpResult>> GetRollout(
        string kind, int? limit, RolloutState state, RolloutService service, RolloutAnalysis analysis, ShadowReport shadow, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        await state.RefreshAsync(cancellationToken);
        if (limit is < 1 or > 500)
            return Problems.Validation("limit", "limit (history entries) is from 1 to 500.");
        if (state.Rollouts.GetValueOrDefault(kind) is not { } row)
            return Problems.For(Problems.NotFound, $"The {kind} rollout has not started.");
        var history = await service.HistoryAsync(kind, limit ?? 50, cancellationToken);
        var compared = row.Candidate is null ? null : await analysis.AnalyseAsync(row, cancellationToken);
        return TypedResults.Ok(RolloutView.Of(row, state, compared, history) with { Shadow = await ShadowOfAsync(row, shadow, cancellationToken) });
    }

    static async Task<Results<Ok<RolloutView>, ProblemHttpResult>> PutRollout(
        string kind, RolloutUpdate update, Caller caller, RolloutState state, RolloutService service, RolloutAnalysis analysis, ShadowReport shadow, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        var outcome = await service.SetAsync(kind, update, caller, cancellationToken);
        return await AnswerAsync(kind, outcome, state, service, analysis, shadow, cancellationToken);
    }

    static async Task<Results<Ok<RolloutView>, ProblemHttpResult>> Promote(
        string kind, PromoteRequest? request, Caller caller, RolloutState state, RolloutService service, RolloutAnalysis analysis, ShadowReport shadow, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        var outcome = await service.PromoteAsync(kind, request?.Force ?? false, request?.Reason, caller, cancellationToken);
        return await AnswerAsync(kind, outcome, state, service, analysis, shadow, cancellationToken);
    }

    static async Task<Results<Ok<RolloutView>, ProblemHttpResult>> Rollback(
        string kind, RollbackRequest? request, Caller caller, RolloutState state, RolloutService service, RolloutAnalysis analysis, ShadowReport shadow, CancellationToken cancellationToken)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return UnknownKind(kind);
        var outcome = await service.RollbackAsync(kind, request?.Reason, caller, cancellationToken);
        return await AnswerAsync(kind, outcome, state, service, analysis, shadow, cancellationToken);
    }

    /// <summary>The shadow runs of a shadow rollout's current candidate; null in the other modes.</summary>
    static async Task<ShadowView?> ShadowOfAsync(RolloutRow row, ShadowReport shadow, CancellationToken cancellationToken) =>
        row is { Mode: RolloutModes.Shadow, Candidate: not null } ? await shadow.ReadAsync(row, cancellationToken) : null;

    static async Task<Results<Ok<RolloutView>, ProblemHttpResult>> AnswerAsync(
        string kind, RolloutOutcome outcome, RolloutState state, RolloutService service, RolloutAnalysis analysis, ShadowReport shadow, CancellationToken cancellationToken)
    {
        if (outcome.Errors is not null)
            return Problems.Validation(outcome.Errors);
        if (!outcome.Done)
            return Problems.For(outcome.Code!, outcome.Detail!);
        var row = state.Rollouts[kind];
        var history = await service.HistoryAsync(kind, 50, cancellationToken);
        var compared = row.Candidate is null ? null : await analysis.AnalyseAsync(row, cancellationToken);
        return TypedResults.Ok(RolloutView.Of(row, state, compared, history) with { Changed = outcome.WasChanged, Shadow = await ShadowOfAsync(row, shadow, cancellationToken) });
    }
}

public sealed record ArtifactList(string Kind, IReadOnlyList<ArtifactSummary> Versions);

/// <summary>A version; <c>role</c>: <c>stable</c>, <c>candidate</c> or null.</summary>
public sealed record ArtifactSummary(string Kind, string Version, string ContentHash, string? Role);

public sealed record ArtifactView(string Kind, string Version, string ContentHash, JsonElement Content, string? Role);

public sealed record PromoteRequest(bool? Force, string? Reason);

public sealed record RollbackRequest(string? Reason);

public sealed record RolloutVersionRef(string Version, string ContentHash);

public sealed record RolloutHistoryItem(DateTime At, string Action, string Stable, string? Candidate, string? Mode, double Percent, string By, string? Reason);

public sealed record RolloutView(
    string Kind, RolloutVersionRef Stable, RolloutVersionRef? Candidate, string? Mode, double Percent, string? PreviousStable,
    long Revision, DateTime UpdatedAt, string UpdatedBy, RolloutAnalysisView? Analysis, IReadOnlyList<RolloutHistoryItem> History)
{
    /// <summary>In <c>shadow</c> mode: the candidate's shadow runs against the stable (doc/rollout.md).</summary>
    public ShadowView? Shadow { get; init; }

    /// <summary>On a change: whether it changed anything (a second rollback does not).</summary>
    public bool? Changed { get; init; }

    internal static RolloutView Of(RolloutRow row, RolloutState state, RolloutAnalysisView? analysis, IEnumerable<RolloutEvent> history)
    {
        RolloutVersionRef Ref(int n) => new(ArtifactKinds.Name(n), state.Find(row.Kind, n)?.Hash ?? "");
        return new RolloutView(row.Kind, Ref(row.Stable), row.Candidate is { } c ? Ref(c) : null, row.Mode, row.Percent,
            row.PreviousStable is { } p ? ArtifactKinds.Name(p) : null, row.Revision, row.UpdatedAt, row.UpdatedBy, analysis,
            [.. history.Select(e => new RolloutHistoryItem(e.At, e.Action, ArtifactKinds.Name(e.Stable), e.Candidate is { } ec ? ArtifactKinds.Name(ec) : null, e.Mode, e.Percent, e.By, e.Reason))]);
    }
}
