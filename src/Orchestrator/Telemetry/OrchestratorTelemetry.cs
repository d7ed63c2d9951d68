using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Orchestrator.Telemetry;

/// <summary>
/// The service's own meter and activity source, plus an in-process ledger of the same counters per
/// tenant and principal that <c>GET /v1/diag/telemetry</c> reads (OpenTelemetry exporters see the meter).
/// </summary>
public sealed class OrchestratorTelemetry : IDisposable
{
    public const string Name = "Orchestrator";
    public static readonly ActivitySource Source = new(Name);

    readonly Meter _meter;
    readonly ConcurrentDictionary<(string Tenant, string Principal), Ledger> _ledgers = new();

    public OrchestratorTelemetry(IMeterFactory meters)
    {
        _meter = meters.Create(Name);
        Accepted = _meter.CreateCounter<long>("orchestrator.jobs.accepted", "{job}", "Jobs admitted by /v1/act.");
        Rejected = _meter.CreateCounter<long>("orchestrator.jobs.rejected", "{request}", "Acts refused at admission, by code.");
        Completed = _meter.CreateCounter<long>("orchestrator.jobs.completed", "{job}", "Jobs that completed.");
        Failed = _meter.CreateCounter<long>("orchestrator.jobs.failed", "{job}", "Jobs that failed, by code.");
        Canceled = _meter.CreateCounter<long>("orchestrator.jobs.canceled", "{job}", "Jobs canceled.");
        Retries = _meter.CreateCounter<long>("orchestrator.jobs.retries", "{attempt}", "Job attempts retried after a transient failure.");
        LeasesLost = _meter.CreateCounter<long>("orchestrator.leases.lost", "{run}", "Runs stopped because another node took their job's lease.");
        Claimed = _meter.CreateCounter<long>("orchestrator.jobs.claimed", "{job}", "Jobs this node claimed from the store (due retries, jobs of a lost node, jobs accepted elsewhere).");
        Breaches = _meter.CreateCounter<long>("orchestrator.jobs.sla_breaches", "{job}", "Jobs that ended after their deadline or failed it.");
        QueueWait = _meter.CreateHistogram<double>("orchestrator.jobs.queue_wait", "ms", "Time from admission to start.");
        RunTime = _meter.CreateHistogram<double>("orchestrator.jobs.run_time", "ms", "Time from start to end.");
    }

    public Counter<long> Accepted { get; }
    public Counter<long> Rejected { get; }
    public Counter<long> Completed { get; }
    public Counter<long> Failed { get; }
    public Counter<long> Canceled { get; }
    public Counter<long> Retries { get; }
    public Counter<long> LeasesLost { get; }
    public Counter<long> Claimed { get; }
    public Counter<long> Breaches { get; }
    public Histogram<double> QueueWait { get; }
    public Histogram<double> RunTime { get; }

    /// <summary>Registers an observable gauge on the service meter (queue depth, model health...).</summary>
    public void ObserveGauge<T>(string name, Func<IEnumerable<Measurement<T>>> observe, string unit, string description)
        where T : struct => _meter.CreateObservableGauge(name, observe, unit, description);

    public Counter<long> Counter(string name, string unit, string description) =>
        _meter.CreateCounter<long>(name, unit, description);

    public Histogram<double> Histogram(string name, string unit, string description) =>
        _meter.CreateHistogram<double>(name, unit, description);

    /// <summary>Counts <paramref name="name"/> in the diag ledger of this tenant and principal.</summary>
    public void Count(string tenant, string principal, string name, long by = 1) =>
        LedgerOf(tenant, principal).Counters.AddOrUpdate(name, by, (_, v) => v + by);

    public void Latency(string tenant, string principal, string name, double ms) =>
        LedgerOf(tenant, principal).Latencies.GetOrAdd(name, _ => new LatencySummary()).Record(ms);

    Ledger LedgerOf(string tenant, string principal) => _ledgers.GetOrAdd((tenant, principal), _ => new Ledger());

    /// <summary>Sums every ledger that matches the filters (null matches all).</summary>
    public (SortedDictionary<string, long> Counters, SortedDictionary<string, LatencyView> Latencies) Read(string? tenant, string? principal)
    {
        var counters = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var latencies = new Dictionary<string, List<LatencySummary>>();
        foreach (var ((t, p), ledger) in _ledgers)
        {
            if ((tenant is not null && t != tenant) || (principal is not null && p != principal))
                continue;
            foreach (var (name, value) in ledger.Counters)
                counters[name] = counters.GetValueOrDefault(name) + value;
            foreach (var (name, summary) in ledger.Latencies)
                (latencies.TryGetValue(name, out var list) ? list : latencies[name] = []).Add(summary);
        }
        return (counters, new SortedDictionary<string, LatencyView>(
            latencies.ToDictionary(l => l.Key, l => LatencySummary.View(l.Value)), StringComparer.Ordinal));
    }

    public void Dispose() => _meter.Dispose();

    sealed class Ledger
    {
        public ConcurrentDictionary<string, long> Counters { get; } = new(StringComparer.Ordinal);
        public ConcurrentDictionary<string, LatencySummary> Latencies { get; } = new(StringComparer.Ordinal);
    }
}
