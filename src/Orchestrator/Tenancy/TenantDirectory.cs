using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Tenancy;

/// <summary>
/// Every tenant's limits as this node applies them: the rows of <c>Tenants</c>, read from the store every propagation
/// interval (and at once after a change made here), or the configured defaults for a tenant without a row. Admission
/// reads it on every request, so a lookup is a dictionary read.
/// </summary>
internal sealed class TenantDirectory(
    IDbContextFactory<OrchestratorDb> dbs,
    StoreWriter writer,
    IOptions<TenancyOptions> options,
    TimeProvider time)
{
    readonly ConcurrentDictionary<string, TenantDocument> _rows = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, TenantDocument> _defaults = new(StringComparer.Ordinal);

    /// <summary>The tenant's document as it applies now: its row, or the defaults (version 0).</summary>
    public TenantDocument Find(string tenant) =>
        _rows.TryGetValue(tenant, out var row) ? row : _defaults.GetOrAdd(tenant, static (t, d) => d.For(t), options.Value.Defaults);

    /// <summary>The limits that bind <paramref name="principal"/> inside its tenant, if any are set for it.</summary>
    public static TenantLimits? PrincipalLimits(TenantDocument document, string principal) =>
        document.Principals is { } principals && principals.TryGetValue(principal, out var limits) ? limits : null;

    /// <summary>Every tenant with a row, as the store holds them now.</summary>
    public async Task<IReadOnlyList<TenantDocument>> ListAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await db.Set<TenantRow>().AsNoTracking().OrderBy(r => r.Tenant).ToListAsync(cancellationToken);
        return rows.Select(Read).ToList();
    }

    /// <summary>The tenant as the store holds it now (not the cache): what a GET answers and a PUT compares with.</summary>
    public async Task<TenantDocument> GetAsync(string tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await db.Set<TenantRow>().AsNoTracking().FirstOrDefaultAsync(r => r.Tenant == tenant, cancellationToken);
        return row is null ? options.Value.Defaults.For(tenant) : Read(row);
    }

    /// <summary>
    /// Replaces the tenant's document. With <paramref name="expectedVersion"/> (from <c>If-Match</c>) it applies only to
    /// that version; without, to whatever version is current. Null when the expected version is not the current one.
    /// </summary>
    public async Task<TenantDocument?> PutAsync(string tenant, TenantDocument document, long? expectedVersion, bool anyExisting, string by, CancellationToken cancellationToken)
    {
        while (true)
        {
            var current = await GetAsync(tenant, cancellationToken);
            if ((expectedVersion is { } expected && expected != current.Version) || (anyExisting && current.Version == 0))
                return null;
            var stored = document with { Tenant = null, Version = 0, UpdatedAt = null, UpdatedBy = null };
            var row = new TenantRow
            {
                Tenant = tenant,
                Document = JsonSerializer.Serialize(stored, TenancyJson.Default.TenantDocument),
                Version = current.Version + 1,
                UpdatedAt = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime),
                UpdatedBy = by,
            };
            var written = current.Version == 0
                ? await writer.WriteAsync(new Insert<TenantRow>(row))
                : await writer.WriteAsync(new GuardedUpdate<TenantRow>(row, [new Guard(nameof(TenantRow.Version), current.Version)],
                    [nameof(TenantRow.Document), nameof(TenantRow.Version), nameof(TenantRow.UpdatedAt), nameof(TenantRow.UpdatedBy)]));
            if (written)
            {
                var applied = Read(row);
                Apply(applied);
                return applied;
            }
            // Another operator (on any node) changed it first: a conditional PUT has lost; an unconditional one goes on the newer version.
            if (expectedVersion is not null || anyExisting)
                return null;
        }
    }

    /// <summary>Reads every row's version, then the documents of those newer than what this node holds.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var versions = await db.Set<TenantRow>().AsNoTracking().Select(r => new { r.Tenant, r.Version }).ToListAsync(cancellationToken);
        var changed = versions.Where(v => !_rows.TryGetValue(v.Tenant, out var held) || held.Version < v.Version).Select(v => v.Tenant).ToList();
        foreach (var batch in changed.Chunk(100))
            foreach (var row in await db.Set<TenantRow>().AsNoTracking().Where(r => batch.Contains(r.Tenant)).ToListAsync(cancellationToken))
                Apply(Read(row));
    }

    void Apply(TenantDocument document)
    {
        var tenant = document.Tenant!;
        _rows.AddOrUpdate(tenant, document, (_, held) => held.Version >= document.Version ? held : document);
    }

    static TenantDocument Read(TenantRow row)
    {
        var document = JsonSerializer.Deserialize(row.Document, TenancyJson.Default.TenantDocument) ?? new TenantDocument();
        // One shape whether the limits came from a row or from the defaults: limits and principals are always objects.
        return document with
        {
            Tenant = row.Tenant, Version = row.Version, UpdatedAt = row.UpdatedAt, UpdatedBy = row.UpdatedBy,
            Limits = document.Limits ?? new TenantLimits(), Principals = document.Principals ?? [],
        };
    }
}

/// <summary>
/// Reads the tenants and the managed API keys from the store at start (before the host serves a request) and every
/// propagation interval after, so a change made on any node holds on this one within <c>Orchestrator:Node:PropagationMs</c>.
/// </summary>
internal sealed class TenancyRefresh(
    TenantDirectory tenants,
    ManagedKeys keys,
    StoreWriter writer,
    IOptions<NodeOptions> options,
    TimeProvider time,
    ILogger<TenancyRefresh> log) : BackgroundService
{
    DateTime _swept;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Propagation, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                await RefreshAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            await tenants.RefreshAsync(cancellationToken);
            await keys.RefreshAsync(cancellationToken);
            // Per-minute request counters are of no use once their minute is over: drop those older than an hour, hourly.
            var now = time.GetUtcNow().UtcDateTime;
            if (now - _swept >= TimeSpan.FromHours(1))
            {
                _swept = now;
                await writer.WriteAsync(new SweepMinuteCounters(Ledger.Minute(now.AddHours(-1))));
            }
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            log.LogWarning(error, "Reading tenants and API keys from the store failed; trying again at the next interval");
        }
    }
}

/// <summary>Deletes request counters of minutes before <paramref name="before"/> (any node may; it is idempotent).</summary>
internal sealed class SweepMinuteCounters(string before) : StoreWrite
{
    public override object? Entity => null;

    public override int Execute(StoreSession session)
    {
        var statement = session.Command("counters:sweep", sql =>
            $"DELETE FROM {sql.Table<UsageCounter>()} WHERE {sql.Column<UsageCounter>(nameof(UsageCounter.Kind))} = '{CounterKinds.Requests}' " +
            $"AND {sql.Column<UsageCounter>(nameof(UsageCounter.Period))} < {sql.Parameter("before")}",
            (typeof(UsageCounter), nameof(UsageCounter.Period), "before"));
        statement.Bind(0, before);
        return statement.Command.ExecuteNonQuery();
    }
}
