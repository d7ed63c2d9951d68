using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Hosting;
using Orchestrator.Tenancy;

namespace Orchestrator.Gateway;

/// <summary><c>GET /v1/models</c> and the operator's quarantine and release.</summary>
public static class ModelsApi
{
    public static RouteGroupBuilder MapModels(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/v1").WithTags("Models");
        models.MapGet("/models", List).WithSummary("Every configured model with its live health, circuit and prices.");
        var admin = models.MapGroup("/admin/models").RequireAuthorization(TenancySetup.OperatorPolicy);
        admin.MapPost("/{id}/quarantine", Quarantine).WithSummary("Take a model out of rotation until released.");
        admin.MapPost("/{id}/release", Release).WithSummary("Bring a model back: clears an operator's quarantine and closes its circuit.");
        return models;
    }

    static Ok<ModelList> List(ModelGateway gateway) => TypedResults.Ok(new ModelList(gateway.Models.Select(ModelView.Of).ToList()));

    internal static Task<Results<Ok<ModelView>, ProblemHttpResult>> Quarantine(string id, ModelGateway gateway, ModelControls controls, AuditTrail audit, Caller caller, CancellationToken cancellationToken) =>
        SetAsync(id, quarantined: true, gateway, controls, audit, caller, cancellationToken);

    internal static Task<Results<Ok<ModelView>, ProblemHttpResult>> Release(string id, ModelGateway gateway, ModelControls controls, AuditTrail audit, Caller caller, CancellationToken cancellationToken) =>
        SetAsync(id, quarantined: false, gateway, controls, audit, caller, cancellationToken);

    /// <summary>Committed to the store before it is answered, so every node applies it within the propagation interval.</summary>
    static async Task<Results<Ok<ModelView>, ProblemHttpResult>> SetAsync(
        string id, bool quarantined, ModelGateway gateway, ModelControls controls, AuditTrail audit, Caller caller, CancellationToken cancellationToken)
    {
        if (gateway.Models.FirstOrDefault(m => m.Id == id) is not { } model)
            return Problems.For(Problems.NotFound, $"No model '{id}' in the catalog.");
        await controls.SetAsync(model, quarantined, caller.Principal, cancellationToken);
        await audit.RecordAsync(caller, quarantined ? "model.quarantine" : "model.release", $"models/{id}", allowed: true);
        return TypedResults.Ok(ModelView.Of(model));
    }
}

/// <summary>
/// The catalog. <c>items</c> follows this API's list convention; <c>object</c>/<c>data</c> repeat it in the
/// shape OpenAI-compatible clients expect of a <c>/v1/models</c> answer, so both kinds of client read it.
/// </summary>
public sealed record ModelList(IReadOnlyList<ModelView> Items)
{
    public string Object => "list";

    public IReadOnlyList<ModelView> Data => Items;
}

/// <summary>A model as <c>GET /v1/models</c> shows it (API.md, Models).</summary>
public sealed record ModelView(
    string Id,
    string Provider,
    string Model,
    string Status,
    double Score,
    double? LatencyP50Ms,
    double? LatencyP95Ms,
    double? LatencyEwmaMs,
    double ErrorRate,
    IReadOnlyDictionary<string, int> ErrorsByClass,
    string Circuit,
    DateTime? CircuitOpenUntil,
    bool QuarantinedByOperator,
    decimal CostPer1kInputUsd,
    decimal CostPer1kOutputUsd,
    double Quality,
    IReadOnlyList<string> Tags,
    long Calls,
    long Failures,
    long CanceledCalls)
{
    /// <summary>Whether both prices are configured (or the model is simulated): a tenant with a cost budget reaches only priced models.</summary>
    public bool Priced { get; init; }

    internal static ModelView Of(CatalogModel model)
    {
        var health = model.Health.Snapshot();
        var status = model.Status(health);
        return new ModelView(
            model.Id, model.Entry.Provider, model.Entry.ModelName, status,
            status == "quarantined" ? 0 : health.Score,
            Round(health.P50Ms), Round(health.P95Ms), Round(health.EwmaMs),
            Math.Round(health.ErrorRate, 4), health.ErrorsByClass, model.CircuitName,
            model.CircuitName == "open" ? model.OpenUntil?.UtcDateTime : null, model.QuarantinedByOperator,
            model.Entry.CostPer1kInputUsd, model.Entry.CostPer1kOutputUsd, model.Entry.Quality, model.Entry.Tags,
            health.TotalCalls, health.TotalFailures, health.TotalCanceled)
        {
            Priced = model.Entry.Priced,
        };
    }

    static double? Round(double? value) => value is { } v ? Math.Round(v, 1) : null;
}
