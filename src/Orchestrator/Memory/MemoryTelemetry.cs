using System.Diagnostics;
using System.Diagnostics.Metrics;
using Orchestrator.Telemetry;

namespace Orchestrator.Memory;

/// <summary>Memory's metrics, and the same counts in the per-principal ledger <c>GET /v1/diag/telemetry</c> reads (<c>memory.evicted</c>, ...).</summary>
internal sealed class MemoryTelemetry(OrchestratorTelemetry telemetry)
{
    readonly Counter<long> _written = telemetry.Counter("orchestrator.memory.written", "{item}", "Memory items written (turns, summaries, facts).");
    readonly Counter<long> _evicted = telemetry.Counter("orchestrator.memory.evicted", "{item}", "Memory items evicted to keep a session or principal within its caps.");
    readonly Counter<long> _recalled = telemetry.Counter("orchestrator.memory.recalled", "{item}", "Memory items injected into a model's conversation.");
    readonly Counter<long> _forgotten = telemetry.Counter("orchestrator.memory.forgotten", "{item}", "Memory items removed by a forget call.");
    readonly Histogram<double> _recallTime = telemetry.Histogram("orchestrator.memory.recall_time", "ms", "Time to recall a session's memory.");

    public void Recalled(MemoryKey key, MemoryRecall recall, double ms)
    {
        _recalled.Add(recall.Items.Count);
        _recallTime.Record(ms);
        telemetry.Count(key.Tenant, key.Principal, "memory.recalled", recall.Items.Count);
        telemetry.Count(key.Tenant, key.Principal, "memory.recall_dropped", recall.Dropped);
        telemetry.Latency(key.Tenant, key.Principal, "memory.recall", ms);
    }

    public void Written(MemoryKey key, int items, int evicted, double ms)
    {
        _written.Add(items);
        telemetry.Count(key.Tenant, key.Principal, "memory.written", items);
        telemetry.Latency(key.Tenant, key.Principal, "memory.write", ms);
        Evicted(key, evicted);
    }

    public void Summarized(MemoryKey key, MemorySummarized summarized)
    {
        var kept = summarized.SummaryId is null ? "memory.summaries_empty" : "memory.summaries";
        telemetry.Count(key.Tenant, key.Principal, kept);
        var written = (summarized.SummaryId is null ? 0 : 1) + summarized.FactIds.Count;
        _written.Add(written);
        telemetry.Count(key.Tenant, key.Principal, "memory.written", written);
        Evicted(key, summarized.Evicted);
    }

    public void Forgot(string tenant, string principal, int removed)
    {
        _forgotten.Add(removed);
        telemetry.Count(tenant, principal, "memory.forgotten", removed);
    }

    void Evicted(MemoryKey key, int evicted)
    {
        if (evicted == 0)
            return;
        _evicted.Add(evicted, new TagList { { "tenant", key.Tenant } });
        telemetry.Count(key.Tenant, key.Principal, "memory.evicted", evicted);
    }
}
