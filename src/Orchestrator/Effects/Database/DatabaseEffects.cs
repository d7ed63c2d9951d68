using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;
using Orchestrator.Storage;

namespace Orchestrator.Effects.Database;

/// <summary>What <c>db/query</c> and <c>db/write</c> share: the tenant's database, the limits, and the text check of a call's statement.</summary>
internal sealed class DatabaseEffects(TenantDatabase database, IOptions<DatabaseOptions> options, IDbContextFactory<OrchestratorDb> store)
{
    readonly Lazy<IReadOnlySet<string>> _storeTables = new(() =>
    {
        using var db = store.CreateDbContext();
        var names = db.Model.GetEntityTypes().Select(e => e.GetTableName()).OfType<string>().Append("__EFMigrationsHistory");
        return new HashSet<string>(names, StringComparer.Ordinal);
    });

    public TenantDatabase Database => database;

    public DatabaseOptions Options => options.Value;

    public static JsonElement Schema(string what) => EffectJson.Schema($$$"""
        {"type":"object","properties":{
          "sql":{"type":"string","description":"{{{what}}}"},
          "params":{"description":"Values bound to the statement: an array for $1, $2, ... or an object for @name","oneOf":[{"type":"array"},{"type":"object"}]}},
         "required":["sql"]}
        """);

    /// <summary>The call's statement and parameters, checked: one statement, of a kind the capability runs.</summary>
    public (string Sql, JsonElement Parameters, SqlKind Kind) Check(EffectCall call, bool write)
    {
        var sql = EffectJson.Required(call.Arguments, "sql");
        var parameters = call.Arguments.TryGetProperty("params", out var p) ? p : default;
        if (parameters.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.Array or JsonValueKind.Object))
            throw new EffectRefusedException(Problems.EffectFailed, "'params' must be a JSON array (bound to $1, $2, ...) or an object (bound to @name).");
        var kind = SqlRules.Check(sql, database.IsPostgres, _storeTables.Value, options.Value.MaxSqlLength);
        if (!write && kind != SqlKind.Read)
            throw new EffectRefusedException(Problems.CapabilityDenied, "The statement is not allowed: db/query only reads; use db/write to change data.", "db.read-only");
        if (kind == SqlKind.Ddl && !options.Value.AllowsDdl(call.Tenant))
            throw new EffectRefusedException(Problems.CapabilityDenied,
                "The statement is not allowed: changing the schema is not allowed for this tenant (Orchestrator:Effects:Database:DdlTenants).", "db.ddl");
        return (sql, parameters, kind);
    }
}

/// <summary>Reads the tenant's own database: one statement, rows as JSON objects. Read-only to the engine, whatever the text.</summary>
internal sealed class DbQuery(DatabaseEffects db) : IEffect
{
    public string Capability => Capabilities.DbQuery;
    public string Description => "Run one read-only SQL statement (SELECT) on the tenant's own database; values go in params, never in the text. Answers rows as JSON objects.";
    public JsonElement Schema { get; } = DatabaseEffects.Schema("One SELECT statement; placeholders $1, $2 ... or @name");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.ReadOnly;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        db.Check(call, write: false);
        return Task.FromResult(EffectPlan.None);
    }

    public Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var (sql, parameters, _) = db.Check(call, write: false);
        return db.Database.QueryAsync(call, sql, parameters, cancellationToken);
    }
}

/// <summary>
/// Changes the tenant's own database with one statement, exactly once: the statement commits with a journal row keyed by
/// the effect's <c>{jobId}/{nodeId}</c>, so a run resumed after a crash finds it applied (and its answer) or not applied.
/// </summary>
internal sealed class DbWrite(DatabaseEffects db) : IEffect
{
    public string Capability => Capabilities.DbWrite;
    public string Description => "Run one SQL statement that changes the tenant's own database (INSERT, UPDATE, DELETE; CREATE TABLE where allowed); values go in params. Applied exactly once.";
    public JsonElement Schema { get; } = DatabaseEffects.Schema("One INSERT, UPDATE or DELETE (RETURNING rows are answered), or DDL where allowed; placeholders $1, $2 ... or @name");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.NonIdempotent;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        db.Check(call, write: true);
        return Task.FromResult(EffectPlan.None);
    }

    public Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var (sql, parameters, kind) = db.Check(call, write: true);
        return db.Database.WriteAsync(call, sql, parameters, kind, cancellationToken);
    }

    public async Task<Reconciliation> ReconcileAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken) =>
        (await SettleAsync(call, plan, cancellationToken)).Verdict;

    /// <summary>The journal decides: the row is there (with the answer the write gave) or the write never committed.</summary>
    public async Task<Settlement> SettleAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken) =>
        await db.Database.RecordedAsync(call, cancellationToken) is { } recorded
            ? new Settlement(Reconciliation.Applied, new EffectResult(true, recorded))
            : new Settlement(Reconciliation.NotApplied, null);
}
