using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Gateway;

/// <summary>
/// What every node must agree on about a model, as a row: an operator's quarantine or release (each change a new
/// <see cref="Version"/>), and until when its provider asked not to be called (<c>Retry-After</c>). Health scores
/// and circuits stay per node: they measure what that node sees.
/// </summary>
public sealed class ModelControl
{
    public string ModelId { get; set; } = "";

    public bool Quarantined { get; set; }

    /// <summary>Raised by one on every operator change; nodes apply each version once.</summary>
    public long Version { get; set; }

    public string? ChangedBy { get; set; }

    public DateTime ChangedAt { get; set; }

    /// <summary>The provider's <c>Retry-After</c>: no node calls the model before this time.</summary>
    public DateTime? WaitUntil { get; set; }
}

internal sealed class ModelControlConfiguration : IEntityTypeConfiguration<ModelControl>
{
    public void Configure(EntityTypeBuilder<ModelControl> control)
    {
        control.ToTable("ModelControls");
        control.HasKey(c => c.ModelId);
        control.Property(c => c.ModelId).HasMaxLength(100);
        control.Property(c => c.ChangedBy).HasMaxLength(200);
    }
}

/// <summary>
/// Shares model controls between nodes: an operator's quarantine or release is committed as a row before it is
/// answered, and every node reads the rows each propagation interval and applies what changed, so the change holds
/// on every node within <c>Orchestrator:Node:PropagationMs</c>.
/// </summary>
internal sealed class ModelControls(
    ModelCatalog catalog,
    StoreWriter writer,
    IDbContextFactory<OrchestratorDb> dbs,
    IOptions<NodeOptions> options,
    TimeProvider time,
    ILogger<ModelControls> log) : BackgroundService
{
    readonly Dictionary<string, long> _applied = new(StringComparer.Ordinal);
    readonly Lock _gate = new();

    /// <summary>Quarantines or releases a model on every node: committed, then applied here at once.</summary>
    public async Task SetAsync(CatalogModel model, bool quarantined, string by, CancellationToken cancellationToken)
    {
        for (var round = 0; ; round++)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var current = await db.Set<ModelControl>().AsNoTracking().FirstOrDefaultAsync(c => c.ModelId == model.Id, cancellationToken);
            var next = new ModelControl
            {
                ModelId = model.Id, Quarantined = quarantined, Version = (current?.Version ?? 0) + 1, ChangedBy = by,
                ChangedAt = time.GetUtcNow().UtcDateTime, WaitUntil = current?.WaitUntil,
            };
            // Insert the first version, or move from the version read to the next: two operators at once both land, in turn.
            var written = current is null
                ? await writer.WriteAsync(new Insert<ModelControl>(next))
                : await writer.WriteAsync(new GuardedUpdate<ModelControl>(next, [new Guard(nameof(ModelControl.Version), current.Version)],
                    [nameof(ModelControl.Quarantined), nameof(ModelControl.Version), nameof(ModelControl.ChangedBy), nameof(ModelControl.ChangedAt)]));
            if (written)
            {
                await ApplyAsync(model, next);
                return;
            }
            if (round >= 5)
                throw new InvalidOperationException($"Model {model.Id}'s control row kept changing while it was being set.");
        }
    }

    /// <summary>Shares a provider's <c>Retry-After</c> with every node (the latest one wins).</summary>
    public void ShareWait(CatalogModel model)
    {
        if (model.WaitUntil is not { } until)
            return;
        var row = new ModelControl { ModelId = model.Id, ChangedAt = time.GetUtcNow().UtcDateTime, WaitUntil = until.UtcDateTime };
        _ = ShareWaitAsync(row);
    }

    async Task ShareWaitAsync(ModelControl row)
    {
        try
        {
            if (!await writer.WriteAsync(new GuardedUpdate<ModelControl>(row, [], [nameof(ModelControl.WaitUntil)])))
                await writer.WriteAsync(new Insert<ModelControl>(row));
        }
        catch (Exception error)
        {
            log.LogWarning(error, "Could not share model {Model}'s Retry-After with the other nodes", row.ModelId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Propagation, time);
        try
        {
            do
            {
                try
                {
                    await using var db = await dbs.CreateDbContextAsync(stoppingToken);
                    foreach (var row in await db.Set<ModelControl>().AsNoTracking().ToListAsync(stoppingToken))
                        if (catalog.All.FirstOrDefault(m => m.Id == row.ModelId) is { } model)
                            await ApplyAsync(model, row);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogWarning(error, "Reading model controls from the store failed; trying again");
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task ApplyAsync(CatalogModel model, ModelControl row)
    {
        if (row.WaitUntil is { } until && until > time.GetUtcNow().UtcDateTime)
            model.WaitUntilAtLeast(new DateTimeOffset(until, TimeSpan.Zero));
        lock (_gate)
        {
            if (_applied.TryGetValue(model.Id, out var applied) && applied >= row.Version)
                return;
            _applied[model.Id] = row.Version;
        }
        if (row.Version == 0)
            return;
        if (row.Quarantined)
        {
            model.QuarantinedByOperator = true;
            await model.Control.IsolateAsync();
            log.LogWarning("Model {Model} quarantined by {Principal}", model.Id, row.ChangedBy);
        }
        else
        {
            model.QuarantinedByOperator = false;
            await model.Control.CloseAsync();
            model.OpenUntil = null;
            log.LogWarning("Model {Model} released by {Principal}", model.Id, row.ChangedBy);
        }
    }
}
