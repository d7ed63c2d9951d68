using System.Diagnostics;
using System.Diagnostics.Metrics;
using Orchestrator.Telemetry;

namespace Orchestrator.Gateway;

/// <summary>
/// The gateway's metrics. Every call is tagged with its model and, when it failed, its failure class and
/// kind: <c>transport</c> (the provider was unwell: timeout, 429, 5xx, connection) or <c>quality</c> (the
/// model answered with something unusable), so the two are told apart per model.
/// </summary>
internal sealed class GatewayTelemetry
{
    readonly Counter<long> _calls;
    readonly Histogram<double> _latency;
    readonly Counter<long> _circuit;
    readonly Counter<long> _fallbacks;
    readonly Counter<long> _hedges;
    readonly Counter<long> _retries;
    long _circuitEvents;

    public GatewayTelemetry(OrchestratorTelemetry telemetry)
    {
        _calls = telemetry.Counter("orchestrator.model.calls", "{call}", "Model call attempts by model, outcome, failure class and kind.");
        _latency = telemetry.Histogram("orchestrator.model.latency", "ms", "Latency of model call attempts.");
        _circuit = telemetry.Counter("orchestrator.model.circuit_transitions", "{transition}", "Circuit breaker transitions by model and state.");
        _fallbacks = telemetry.Counter("orchestrator.model.fallbacks", "{call}", "Calls that moved to the next candidate after a model failed.");
        _hedges = telemetry.Counter("orchestrator.model.hedges", "{call}", "Hedged calls sent, by the model hedged to.");
        _retries = telemetry.Counter("orchestrator.model.retries", "{call}", "Retries of a model call on the same model.");
    }

    public long CircuitEvents => Interlocked.Read(ref _circuitEvents);

    public void Call(string model, ModelFailureClass? failure, double ms)
    {
        var tags = new TagList { { "model", model }, { "outcome", failure is null ? "succeeded" : "failed" } };
        if (failure is { } f)
        {
            tags.Add("class", ModelFailureClasses.Of(f));
            tags.Add("kind", f switch
            {
                ModelFailureClass.Malformed => "quality",
                ModelFailureClass.Rejected => "request",
                _ => "transport",
            });
        }
        _calls.Add(1, tags);
        _latency.Record(ms, new KeyValuePair<string, object?>("model", model));
    }

    public void Circuit(string model, string state)
    {
        Interlocked.Increment(ref _circuitEvents);
        _circuit.Add(1, new TagList { { "model", model }, { "state", state } });
    }

    public void Fallback(string from) => _fallbacks.Add(1, new KeyValuePair<string, object?>("model", from));

    public void Hedge(string to) => _hedges.Add(1, new KeyValuePair<string, object?>("model", to));

    public void Retry(string model) => _retries.Add(1, new KeyValuePair<string, object?>("model", model));
}
