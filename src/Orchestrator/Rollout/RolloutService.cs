using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Evaluation;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>The changes of artifacts and rollouts: each in the store first (rows shared by every node), then audited, then read back here at once.</summary>
internal sealed class RolloutService(
    IDbContextFactory<OrchestratorDb> dbs,
    RolloutState state,
    IntentCatalog catalog,
    AuditTrail audit,
    TimeProvider time,
    ILogger<RolloutService> log)
{
    internal static readonly Caller System = new("_system", "rollout", true) { Roles = [Roles.Operator] };

    /// <summary>Imports the shipped files as versions (v1 on a new store) and starts each kind's rollout on it; idempotent, safe on two nodes at once.</summary>
    public async Task ImportShippedAsync(CancellationToken cancellationToken)
    {
        var shipped = catalog.Shipped;
        foreach (var (kind, content) in new[]
                 {
                     (ArtifactKinds.Policies, ArtifactContent.ShippedPolicies(shipped)),
                     (ArtifactKinds.Prompts, ArtifactContent.ShippedPrompts(shipped)),
                     (ArtifactKinds.Routing, ArtifactContent.ShippedRouting(shipped)),
                 })
        {
            var (version, created) = await StoreAsync(kind, content, "shipped", System.Principal, cancellationToken);
            if (created)
                log.LogInformation("Imported the shipped {Kind} as {Version}", kind, ArtifactKinds.Name(version.Number));
            await StartAsync(kind, version.Number, cancellationToken);
        }
    }

    /// <summary>The first rollout row of a kind: stable on the shipped version. A row that exists is left alone (an operator's state survives deploys).</summary>
    async Task StartAsync(string kind, int number, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Set<RolloutRow>().AnyAsync(r => r.Kind == kind, cancellationToken))
            return;
        var now = time.GetUtcNow().UtcDateTime;
        db.Add(new RolloutRow { Kind = kind, Stable = number, Revision = 1, UpdatedAt = now, UpdatedBy = System.Principal });
        db.Add(new RolloutEvent { Kind = kind, At = now, Action = "start", Stable = number, By = System.Principal, Reason = "shipped files" });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
        {
            // Another node started it at the same moment.
        }
    }

    /// <summary>Stores content as the next version of its kind, or answers the version that already holds it.</summary>
    async Task<(ArtifactVersion Version, bool Created)> StoreAsync(string kind, string content, string source, string by, CancellationToken cancellationToken)
    {
        var hash = Hashes.Of(content);
        for (var attempt = 0; ; attempt++)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            if (await db.Set<ArtifactVersion>().AsNoTracking().FirstOrDefaultAsync(a => a.Kind == kind && a.ContentHash == hash, cancellationToken) is { } known)
                return (known, false);
            var next = (await db.Set<ArtifactVersion>().Where(a => a.Kind == kind).MaxAsync(a => (int?)a.Number, cancellationToken) ?? 0) + 1;
            var row = new ArtifactVersion
            {
                Kind = kind, Number = next, ContentHash = hash, Content = content, Source = source, CreatedBy = by,
                CreatedAt = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime),
            };
            db.Add(row);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return (row, true);
            }
            catch (DbUpdateException error) when (attempt < 20 && error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
            {
                // Another node took this number (or stored this content) first: read again.
            }
        }
    }

    public async Task<(ArtifactVersion? Version, bool Created, Dictionary<string, string[]>? Errors)> CreateAsync(
        string kind, JsonElement body, Caller caller, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var node = JsonNode.Parse(body.GetRawText());
        if (node is null)
            return (null, false, new() { [kind] = ["The body must be a JSON object."] });
        var content = ArtifactContent.Canonical(node);
        await state.RefreshAsync(cancellationToken);
        ArtifactContent.Read(kind, 0, content, errors, state.Models, state.StablePolicies, state.Shipped, catalog.DefaultIntent);
        if (errors.Count > 0)
            return (null, false, errors);
        var (version, created) = await StoreAsync(kind, content, "api", caller.Principal, cancellationToken);
        if (created)
            await audit.RecordAsync(caller, "artifact.create", $"{kind}/{ArtifactKinds.Name(version.Number)}", allowed: true,
                details: new { kind, version = ArtifactKinds.Name(version.Number), contentHash = version.ContentHash });
        await state.RefreshAsync(cancellationToken);
        return (version, created, null);
    }

    /// <summary>PUT: sets stable, candidate, mode and percent. A change of stable keeps the old one for a rollback.</summary>
    /// <summary>The longest reason a change keeps (the history's column), as the approvals' reasons.</summary>
    public const int MaxReason = 2000;

    static Dictionary<string, string[]>? ReasonErrors(string? reason) =>
        reason is { Length: > MaxReason } || reason?.Contains('\0') == true
            ? new() { ["reason"] = [$"reason is at most {MaxReason} characters, without NUL characters."] }
            : null;

    public async Task<RolloutOutcome> SetAsync(string kind, RolloutUpdate update, Caller caller, CancellationToken cancellationToken)
    {
        var errors = ReasonErrors(update.Reason) ?? new Dictionary<string, string[]>();
        await state.RefreshAsync(cancellationToken);
        int? Version(string field, string? name, bool required)
        {
            if (name is null)
            {
                if (required)
                    errors[field] = [$"{field} is required (a version of {kind}, e.g. v1)."];
                return null;
            }
            if (ArtifactKinds.ParseVersion(name) is { } n && state.Find(kind, n) is not null)
                return n;
            errors[field] = [$"Unknown {kind} version '{name}'; known: {string.Join(", ", state.VersionsOf(kind).Select(a => a.Version))}."];
            return null;
        }
        var current = state.Rollouts.GetValueOrDefault(kind);
        var stable = update.Stable is null ? current?.Stable : Version("stable", update.Stable, true);
        var candidate = Version("candidate", update.Candidate, false);
        // A candidate named without a mode is a canary (at 0% until a percent is given).
        var mode = update.Mode ?? (update.Candidate is not null ? RolloutModes.Canary : null);
        var percent = update.Percent ?? (mode == RolloutModes.Ab ? 50 : 0);
        if (candidate is not null)
        {
            if (mode is null || !RolloutModes.All.Contains(mode))
                errors["mode"] = [$"mode must be one of {string.Join(", ", RolloutModes.All)} when a candidate is given."];
            if (double.IsNaN(percent) || percent is < 0 or > 100)
                errors["percent"] = ["percent must be between 0 and 100."];
            if (candidate == stable)
                errors["candidate"] = ["The candidate must differ from the stable version."];
        }
        else if (mode is not null || update.Percent is not null)
            errors["candidate"] = ["mode and percent need a candidate."];
        if (errors.Count > 0)
            return RolloutOutcome.Invalid(errors);

        return await ChangeAsync(kind, caller, "update", update.Reason, row =>
        {
            if (row.Stable != stable!.Value)
                row.PreviousStable = row.Stable;
            row.Stable = stable!.Value;
            row.Candidate = candidate;
            row.Mode = candidate is null ? null : mode;
            row.Percent = candidate is null ? 0 : percent;
            return null;
        }, cancellationToken);
    }

    public async Task<RolloutOutcome> PromoteAsync(string kind, bool force, string? reason, Caller caller, CancellationToken cancellationToken)
    {
        if (ReasonErrors(reason) is { } invalid)
            return RolloutOutcome.Invalid(invalid);
        await state.RefreshAsync(cancellationToken);
        if (state.Rollouts.GetValueOrDefault(kind) is not { Candidate: { } candidate })
            return RolloutOutcome.Refused(Problems.Conflict, $"The {kind} rollout has no candidate to promote.");
        var artifact = state.Find(kind, candidate)!;
        string? evaluation = null;
        if (!force)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            evaluation = await db.Set<EvaluationRun>().AsNoTracking()
                .Where(e => e.CandidateHash == artifact.Hash && e.Verdict == "pass")
                .OrderByDescending(e => e.Id).Select(e => e.Id).FirstOrDefaultAsync(cancellationToken);
            if (evaluation is null)
            {
                await audit.RecordAsync(caller, "rollout.promote", kind, allowed: false,
                    $"No passing evaluation of {kind} {artifact.Version} (contentHash {artifact.Hash}).", details: new { kind, candidate = artifact.Version });
                return RolloutOutcome.Refused(Problems.Conflict,
                    $"Promoting {kind} {artifact.Version} needs a passing evaluation of its contentHash {artifact.Hash} " +
                    "(GET /v1/admin/evaluations?candidateHash=...&verdict=pass), or force: true.");
            }
        }
        return await ChangeAsync(kind, caller, "promote", reason ?? (force ? "forced" : $"evaluation {evaluation} passed"), row =>
        {
            if (row.Candidate != candidate)
                return "The candidate changed meanwhile; read the rollout again.";
            row.PreviousStable = row.Stable;
            row.Stable = candidate;
            row.Candidate = null;
            row.Mode = null;
            row.Percent = 0;
            return null;
        }, cancellationToken, new { force, evaluation });
    }

    /// <summary>
    /// One step back: a candidate in progress loses its traffic, and a stable set by the last promotion (or update) gives way
    /// to the one before it. Then nothing is left to undo: a second call changes nothing (200, <c>changed: false</c>).
    /// </summary>
    public async Task<RolloutOutcome> RollbackAsync(string kind, string? reason, Caller caller, CancellationToken cancellationToken,
        string action = "rollback", object? details = null)
    {
        if (ReasonErrors(reason) is { } invalid)
            return RolloutOutcome.Invalid(invalid);
        await state.RefreshAsync(cancellationToken);
        return await ChangeAsync(kind, caller, action, reason, row =>
        {
            if (row.Candidate is null && row.PreviousStable is null)
                return "";
            if (row.PreviousStable is { } previous)
                row.Stable = previous;
            row.PreviousStable = null;
            row.Candidate = null;
            row.Mode = null;
            row.Percent = 0;
            return null;
        }, cancellationToken, details);
    }

    /// <summary>The automatic rollback: the failing candidate loses its traffic; the stable stays (it was not the one failing).</summary>
    public Task<RolloutOutcome> RollbackCandidateAsync(string kind, int candidate, string reason, RolloutAnalysisView analysis, CancellationToken cancellationToken) =>
        ChangeAsync(kind, System, "auto-rollback", reason, row =>
        {
            if (row.Candidate != candidate)
                return "";
            row.Candidate = null;
            row.Mode = null;
            row.Percent = 0;
            return null;
        }, cancellationToken, analysis);

    /// <summary>Applies a change to the row guarded on its revision, with its history event and its audit entry. <paramref name="apply"/>: null = changed, "" = nothing to do, text = conflict.</summary>
    async Task<RolloutOutcome> ChangeAsync(string kind, Caller caller, string action, string? reason, Func<RolloutRow, string?> apply,
        CancellationToken cancellationToken, object? details = null)
    {
        var auditAction = action switch { "promote" => "rollout.promote", "rollback" or "auto-rollback" => "rollout.rollback", _ => "rollout.update" };
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Set<RolloutRow>().FirstOrDefaultAsync(r => r.Kind == kind, cancellationToken) is not { } row)
            return RolloutOutcome.Refused(Problems.Conflict, $"The {kind} rollout has not started (the shipped files are imported at start).");
        var before = new { stable = ArtifactKinds.Name(row.Stable), candidate = row.Candidate is { } c ? ArtifactKinds.Name(c) : null, row.Mode, row.Percent };
        switch (apply(row))
        {
            case "" when ReferenceEquals(caller, System):
                return RolloutOutcome.Unchanged();
            case "":
                await audit.RecordAsync(caller, auditAction, kind, allowed: true, reason ?? "nothing to roll back",
                    details: new { kind, changed = false, before });
                return RolloutOutcome.Unchanged();
            case { } conflict:
                return RolloutOutcome.Refused(Problems.Conflict, conflict);
        }
        var now = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
        row.Revision++;
        row.UpdatedAt = now;
        row.UpdatedBy = caller.Principal;
        db.Add(new RolloutEvent { Kind = kind, At = now, Action = action, Stable = row.Stable, Candidate = row.Candidate, Mode = row.Mode, Percent = row.Percent, By = caller.Principal, Reason = reason });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            return RolloutOutcome.Refused(Problems.Conflict, $"The {kind} rollout changed at the same moment; read it and try again.");
        }
        var after = new { stable = ArtifactKinds.Name(row.Stable), candidate = row.Candidate is { } c2 ? ArtifactKinds.Name(c2) : null, row.Mode, row.Percent };
        await audit.RecordAsync(caller, auditAction, kind, allowed: true, reason, details: new { kind, action, changed = true, before, after, extra = details });
        await state.RefreshAsync(cancellationToken);
        return RolloutOutcome.Changed();
    }

    public async Task<List<RolloutEvent>> HistoryAsync(string kind, int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<RolloutEvent>().AsNoTracking().Where(e => e.Kind == kind).OrderByDescending(e => e.Id).Take(limit).ToListAsync(cancellationToken);
    }
}

public sealed record RolloutUpdate(string? Stable, string? Candidate, string? Mode, double? Percent, string? Reason);

internal sealed record RolloutOutcome(bool Done, bool WasChanged, Dictionary<string, string[]>? Errors, string? Code, string? Detail)
{
    public static RolloutOutcome Changed() => new(true, true, null, null, null);
    public static RolloutOutcome Unchanged() => new(true, false, null, null, null);
    public static RolloutOutcome Invalid(Dictionary<string, string[]> errors) => new(false, false, errors, Problems.ValidationFailed, null);
    public static RolloutOutcome Refused(string code, string detail) => new(false, false, null, code, detail);
}
