using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Gateway;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>
/// This node's copy of the artifacts and rollouts, read from the store at start and every propagation interval (and at
/// once after a change made here), so a change made on any node holds on every node within
/// <c>Orchestrator:Node:PropagationMs</c>. Chooses each new job's versions from it, and publishes the stable policies
/// to the intent catalog.
/// </summary>
internal sealed class RolloutState(
    IDbContextFactory<OrchestratorDb> dbs,
    IntentCatalog catalog,
    ModelGateway gateway,
    SnapshotPolicies snapshots,
    IOptions<RolloutOptions> options,
    TimeProvider time,
    ILogger<RolloutState> log) : IVersionChooser
{
    readonly ConcurrentDictionary<(string Kind, int Number), Artifact> _artifacts = new();
    readonly ConcurrentDictionary<(string Intent, int P, int Q, int R), IntentPolicy?> _composed = new();
    readonly ConcurrentDictionary<string, bool> _stored = new(StringComparer.Ordinal);
    readonly SemaphoreSlim _refreshing = new(1, 1);
    volatile IReadOnlyDictionary<string, RolloutRow> _rollouts = new Dictionary<string, RolloutRow>();
    long _lastId;
    Dictionary<string, IntentPolicy>? _shipped;

    /// <summary>Shipped policies by their canonical text: a version that holds one unchanged keeps the file's hash.</summary>
    internal IReadOnlyDictionary<string, IntentPolicy> Shipped => _shipped ??= catalog.Shipped
        .GroupBy(p => ArtifactContent.Parse(p.Source)!.ToJsonString(), StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

    public IReadOnlyDictionary<string, RolloutRow> Rollouts => _rollouts;

    public Artifact? Find(string kind, int number) => _artifacts.GetValueOrDefault((kind, number));

    public IEnumerable<Artifact> VersionsOf(string kind) => _artifacts.Values.Where(a => a.Kind == kind).OrderBy(a => a.Number);

    /// <summary>The stable policies by intent (the catalog's until the first read).</summary>
    public IReadOnlyDictionary<string, IntentPolicy> StablePolicies =>
        _rollouts.GetValueOrDefault(ArtifactKinds.Policies) is { } row && Find(ArtifactKinds.Policies, row.Stable) is { } stable
            ? stable.Policies
            : catalog.All.ToDictionary(p => p.Intent, StringComparer.Ordinal);

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var added = await db.Set<ArtifactVersion>().AsNoTracking().Where(a => a.Id > _lastId).OrderBy(a => a.Id).ToListAsync(cancellationToken);
            foreach (var row in added)
            {
                var errors = new Dictionary<string, string[]>();
                var artifact = ArtifactContent.Read(row.Kind, row.Number, row.Content, errors, null, null, Shipped);
                if (errors.Count > 0)
                    log.LogError("Artifact {Kind} v{Number} in the store does not read: {Errors}", row.Kind, row.Number, string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value[0]}")));
                _artifacts[(row.Kind, row.Number)] = artifact;
                _lastId = Math.Max(_lastId, row.Id);
            }
            _rollouts = (await db.Set<RolloutRow>().AsNoTracking().ToListAsync(cancellationToken)).ToDictionary(r => r.Kind, StringComparer.Ordinal);
        }
        finally
        {
            _refreshing.Release();
        }
        await PublishAsync(cancellationToken);
    }

    /// <summary>Puts the stable versions in force in the catalog (what chat completions, reruns on "current" and the runner read).</summary>
    async Task PublishAsync(CancellationToken cancellationToken)
    {
        if (StableOf(ArtifactKinds.Policies) is not { } p || StableOf(ArtifactKinds.Prompts) is not { } q || StableOf(ArtifactKinds.Routing) is not { } r)
            return;
        var policies = p.Policies.Keys.Select(intent => ComposeCached(intent, p, q, r)).OfType<IntentPolicy>().ToList();
        foreach (var policy in policies)
            await EnsureStoredAsync(policy, cancellationToken);
        catalog.Publish(policies);
    }

    Artifact? StableOf(string kind) => _rollouts.GetValueOrDefault(kind) is { } row ? Find(kind, row.Stable) : null;

    IntentPolicy? ComposeCached(string intent, Artifact p, Artifact q, Artifact r) =>
        _composed.GetOrAdd((intent, p.Number, q.Number, r.Number), _ => ArtifactContent.Compose(intent, p, q, r));

    public VersionChoice? Choose(string intent, string tenant, string principal, string? session, ActVersions? pins, out string? field, out string? error) =>
        Choose(intent, tenant, principal, session, pins, assign: true, out field, out error);

    public VersionChoice? Pinned(string intent, ActVersions pins, out string? field, out string? error)
    {
        var choice = Choose(intent, "", "", null, pins, assign: false, out field, out error);
        if (choice is null && field is null)
            error = $"No versions are read on this node yet, or intent '{intent}' has no policy.";
        return choice;
    }

    VersionChoice? Choose(string intent, string tenant, string principal, string? session, ActVersions? pins, bool assign, out string? field, out string? error)
    {
        field = null;
        error = null;
        var subject = options.Value.StickyBy == "session" && session is not null ? "session:" + session : principal;
        var chosen = new (Artifact Artifact, string Reason)[3];
        string[] kinds = [ArtifactKinds.Prompts, ArtifactKinds.Policies, ArtifactKinds.Routing];
        string?[] pinned = [pins?.Prompts, pins?.Policy, pins?.Routing];
        string[] fields = ["versions.prompts", "versions.policy", "versions.routing"];
        for (var i = 0; i < kinds.Length; i++)
        {
            var kind = kinds[i];
            if (_rollouts.GetValueOrDefault(kind) is not { } row || Find(kind, row.Stable) is not { } stable)
                return null; // not read yet: the catalog's policy, no versions
            if (pinned[i] is { } pin)
            {
                if (ArtifactKinds.ParseVersion(pin) is not { } number || Find(kind, number) is not { } artifact)
                {
                    field = fields[i];
                    error = $"Unknown {kind} version '{pin}'; known: {string.Join(", ", VersionsOf(kind).Select(a => a.Version))}.";
                    return null;
                }
                chosen[i] = (artifact, "pinned");
            }
            else if (assign && row.Candidate is { } c && row.Mode is RolloutModes.Canary or RolloutModes.Ab && Find(kind, c) is { } candidate &&
                     Buckets.InCandidate(Buckets.Of(options.Value.Salt, kind, tenant, subject), row.Percent))
                chosen[i] = (candidate, "rollout");
            else
                chosen[i] = (stable, "stable");
        }
        var policy = ComposeCached(intent, chosen[1].Artifact, chosen[0].Artifact, chosen[2].Artifact);
        if (policy is null && chosen[1].Reason == "pinned")
        {
            field = "versions.policy";
            error = $"Policies version {chosen[1].Artifact.Version} has no policy for intent '{intent}'.";
            return null;
        }
        if (policy is null)
        {
            // The candidate's policies lack this intent: it runs on the stable ones.
            chosen[1] = (Find(ArtifactKinds.Policies, _rollouts[ArtifactKinds.Policies].Stable)!, "stable");
            policy = ComposeCached(intent, chosen[1].Artifact, chosen[0].Artifact, chosen[2].Artifact);
            if (policy is null)
                return null;
        }
        VersionUsed Used(int i) => new(chosen[i].Artifact.Version, chosen[i].Artifact.Hash, chosen[i].Reason);
        return new VersionChoice(policy, new JobVersions(Used(0), Used(1), Used(2)));
    }

    /// <summary>
    /// What a shadow run of <paramref name="candidate"/> walks: the versions a job ran with, the one of <paramref name="kind"/>
    /// replaced by the candidate (reason <c>shadow</c>). Null when a version is not read here yet or the candidate lacks the intent.
    /// </summary>
    public VersionChoice? ShadowOf(string intent, JobVersions used, string kind, int candidate)
    {
        Artifact? Of(string k, VersionUsed v) => k == kind ? Find(k, candidate) : ArtifactKinds.ParseVersion(v.Version) is { } n ? Find(k, n) : null;
        if (Of(ArtifactKinds.Prompts, used.Prompts) is not { } q || Of(ArtifactKinds.Policies, used.Policy) is not { } p || Of(ArtifactKinds.Routing, used.Routing) is not { } r)
            return null;
        if (ComposeCached(intent, p, q, r) is not { } policy)
            return null;
        VersionUsed Used(string k, Artifact a, VersionUsed v) => k == kind ? new VersionUsed(a.Version, a.Hash, "shadow") : v;
        return new VersionChoice(policy, new JobVersions(
            Used(ArtifactKinds.Prompts, q, used.Prompts), Used(ArtifactKinds.Policies, p, used.Policy), Used(ArtifactKinds.Routing, r, used.Routing)));
    }

    public async ValueTask EnsureStoredAsync(IntentPolicy policy, CancellationToken cancellationToken)
    {
        if (_stored.ContainsKey(policy.ContentHash))
            return;
        await snapshots.StoreAsync(policy, time.GetUtcNow().UtcDateTime, cancellationToken);
        _stored[policy.ContentHash] = true;
    }

    /// <summary>The models of the gateway catalog, for checking what an artifact names.</summary>
    public IReadOnlyList<CatalogModel> Models => gateway.Models;
}

public static class RolloutModes
{
    public const string Canary = "canary";
    public const string Ab = "ab";
    public const string Shadow = "shadow";

    public static readonly string[] All = [Canary, Ab, Shadow];
}
