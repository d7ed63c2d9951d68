using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Orchestrator.Gateway;
using Orchestrator.Storage;
using Orchestrator.Workflow;

namespace Orchestrator.Replay;

/// <summary>
/// A frozen artifact a run depended on (a policy file, the routing configuration), stored once per content
/// hash; jobs name the hashes they ran with, so a replay knows exactly which versions decided it.
/// </summary>
public sealed class Snapshot
{
    public string Hash { get; set; } = "";

    /// <summary><c>policy</c> or <c>routing</c>.</summary>
    public string Kind { get; set; } = "";

    /// <summary>The intent of a policy; null for routing.</summary>
    public string? Name { get; set; }

    public string? Version { get; set; }

    /// <summary>The content as it was (policy file text, or the routing configuration as JSON).</summary>
    public string Content { get; set; } = "";

    public DateTime CreatedAt { get; set; }
}

internal sealed class SnapshotConfiguration : IEntityTypeConfiguration<Snapshot>
{
    public void Configure(EntityTypeBuilder<Snapshot> snapshot)
    {
        snapshot.ToTable("Snapshots");
        snapshot.HasKey(s => s.Hash);
        snapshot.Property(s => s.Hash).HasMaxLength(64);
        snapshot.Property(s => s.Kind).HasMaxLength(20);
        snapshot.Property(s => s.Name).HasMaxLength(100);
        snapshot.Property(s => s.Version).HasMaxLength(50);
    }
}

/// <summary>Policy snapshots read back by content hash, for jobs admitted under a policy that is not the catalog's.</summary>
internal sealed class SnapshotPolicies(IDbContextFactory<OrchestratorDb> dbs) : IPolicySnapshots
{
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, IntentPolicy> _read = new(StringComparer.Ordinal);

    public async Task<IntentPolicy?> FindAsync(string contentHash, CancellationToken cancellationToken)
    {
        if (_read.TryGetValue(contentHash, out var known))
            return known;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var content = await db.Set<Snapshot>().AsNoTracking().Where(s => s.Hash == contentHash && s.Kind == "policy")
            .Select(s => s.Content).FirstOrDefaultAsync(cancellationToken);
        if (content is null)
            return null;
        var policy = IntentCatalog.Parse(content);
        return _read.GetOrAdd(contentHash, policy);
    }

    /// <summary>Stores a policy's snapshot (once per content hash) so any node can run a job admitted under it.</summary>
    public async Task StoreAsync(IntentPolicy policy, DateTime now, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Set<Snapshot>().AnyAsync(s => s.Hash == policy.ContentHash, cancellationToken))
            return;
        db.Add(new Snapshot { Hash = policy.ContentHash, Kind = "policy", Name = policy.Intent, Version = policy.Version, Content = policy.Source, CreatedAt = now });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
        {
            // Stored at the same moment by another evaluation or node: the same content.
        }
    }
}

internal static class SnapshotSetup
{
    /// <summary>Stores the snapshots of the policies and routing in force (once per content hash) at start-up.</summary>
    public static async Task RecordSnapshotsAsync(this WebApplication app)
    {
        var policies = app.Services.GetRequiredService<IntentCatalog>();
        var routing = app.Services.GetRequiredService<RoutingSnapshot>();
        var now = app.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime;
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        var wanted = policies.All
            .Select(p => new Snapshot { Hash = p.ContentHash, Kind = "policy", Name = p.Intent, Version = p.Version, Content = p.Source, CreatedAt = now })
            .Append(new Snapshot { Hash = routing.Hash, Kind = "routing", Content = routing.Content, CreatedAt = now })
            .DistinctBy(s => s.Hash)
            .ToList();
        var hashes = wanted.Select(s => s.Hash).ToList();
        var known = await db.Set<Snapshot>().Where(s => hashes.Contains(s.Hash)).Select(s => s.Hash).ToListAsync();
        db.AddRange(wanted.Where(s => !known.Contains(s.Hash)));
        try
        {
            await db.SaveChangesAsync();
        }
        catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
        {
            // Another node starting at the same moment stored the same snapshots: a content hash names one content.
        }
    }
}
