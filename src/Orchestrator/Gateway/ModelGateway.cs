using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Orchestrator.Jobs;

namespace Orchestrator.Gateway;

/// <summary>Routes a model call to a model of the catalog and accounts its cost.</summary>
internal sealed class ModelGateway(ModelClients clients, IOptions<ModelOptions> options, TimeProvider time)
{
    readonly IReadOnlyList<ModelEntry> _catalog = options.Value.Catalog;

    public IReadOnlyList<ModelEntry> Catalog => _catalog;

    public async Task<ModelReply> CompleteAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var candidates = _catalog
            .Where(m => call.Routing.Models is not { Count: > 0 } allow || allow.Contains(m.Id))
            .Where(m => call.Routing.Requires is null || m.Quality >= call.Routing.Requires.MinQuality)
            .ToList();
        var ranked = candidates.Select((m, i) => new RoutingCandidate(m.Id, 1.0, "healthy", i + 1, "in catalog order")).ToList();
        var attempts = new List<RoutingAttempt>();
        ModelCallException? rejected = null;
        foreach (var model in candidates)
        {
            var started = time.GetTimestamp();
            try
            {
                var response = await clients[model.Id].GetResponseAsync(call.Messages, ChatOptionsFor(call), cancellationToken);
                attempts.Add(new RoutingAttempt(model.Id, "succeeded", Elapsed(started)));
                return new ModelReply(response.Messages[^1], model.Id, UsageOf(model, response.Usage),
                    new RoutingDecision(call.Routing.Strategy, model.Id, ranked, attempts));
            }
            catch (ModelCallException error)
            {
                attempts.Add(new RoutingAttempt(model.Id, "failed", Elapsed(started), ModelFailureClasses.Of(error.Failure)));
                if (error.Failure == ModelFailureClass.Rejected)
                    rejected ??= error;
            }
        }
        // Every model refused the request itself: another model or a later try would refuse it too.
        if (rejected is not null && attempts.All(a => a.Failure == ModelFailureClasses.Of(ModelFailureClass.Rejected)))
            throw rejected;
        throw new ModelUnavailableException(
            candidates.Count == 0 ? "No model in the catalog matches the request." : "Every candidate model failed.",
            TimeSpan.FromSeconds(1),
            new RoutingDecision(call.Routing.Strategy, null, ranked, attempts));
    }

    static ChatOptions ChatOptionsFor(ModelCall call) => new()
    {
        Tools = call.Tools,
        Seed = call.Seed,
        AllowMultipleToolCalls = true,
    };

    long Elapsed(long started) => (long)time.GetElapsedTime(started).TotalMilliseconds;

    internal static JobUsage UsageOf(ModelEntry model, UsageDetails? usage)
    {
        var input = usage?.InputTokenCount ?? 0;
        var output = usage?.OutputTokenCount ?? 0;
        return new JobUsage(input, output,
            Math.Round((input * model.CostPer1kInputUsd + output * model.CostPer1kOutputUsd) / 1000m, 8));
    }
}
