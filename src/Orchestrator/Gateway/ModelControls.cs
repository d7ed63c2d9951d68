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

    /// <summary>Quarantines or releases a model on every node: committed (one statement, so any number of operators and
    /// nodes at once each get a version of their own), then applied here at once.</summary>
    public async Task SetAsync(CatalogModel model, bool quarantined, string by, CancellationToken cancellationToken)
    {
        var change = new SetModelControl(new ModelControl
        {
            ModelId = model.Id, Quarantined = quarantined, ChangedBy = by, ChangedAt = time.GetUtcNow().UtcDateTime,
        });
        await writer.WriteAsync(change);
        await ApplyAsync(model, change.Row);
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

/// <summary>
/// Sets a model's control row in one step: creates it if missing, then raises its version and sets the operator's
/// choice, answering the version given. A row lock, not a read-then-write, so concurrent changes never conflict.
/// </summary>
internal sealed class SetModelControl(ModelControl row) : StoreWrite
{
    public override object? Entity => null;

    public ModelControl Row => row;

    public override int Execute(StoreSession session)
    {
        session.Insert(new ModelControl { ModelId = row.ModelId, ChangedAt = row.ChangedAt }, null);
        var update = session.Command("model-control:set", sql =>
        {
            string C(string property) => sql.Column<ModelControl>(property);
            return $"UPDATE {sql.Table<ModelControl>()} SET {C(nameof(ModelControl.Quarantined))} = {sql.Parameter("q")}, " +
                   $"{C(nameof(ModelControl.Version))} = {C(nameof(ModelControl.Version))} + 1, {C(nameof(ModelControl.ChangedBy))} = {sql.Parameter("by")}, " +
                   $"{C(nameof(ModelControl.ChangedAt))} = {sql.Parameter("at")} WHERE {C(nameof(ModelControl.ModelId))} = {sql.Parameter("id")} " +
                   $"RETURNING {C(nameof(ModelControl.Version))}, {C(nameof(ModelControl.WaitUntil))}";
        }, (typeof(ModelControl), nameof(ModelControl.Quarantined), "q"), (typeof(ModelControl), nameof(ModelControl.ChangedBy), "by"),
           (typeof(ModelControl), nameof(ModelControl.ChangedAt), "at"), (typeof(ModelControl), nameof(ModelControl.ModelId), "id"));
        update.Bind(0, row.Quarantined);
        update.Bind(1, row.ChangedBy);
        update.Bind(2, row.ChangedAt);
        update.Bind(3, row.ModelId);
        using var reader = update.Command.ExecuteReader();
        if (!reader.Read())
            return 0;
        row.Version = reader.GetInt64(0);
        return 1;
    }
}
