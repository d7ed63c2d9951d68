using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Hosting;

namespace Orchestrator.Effects.Database;

/// <summary>
/// A tenant's own database, as <c>db/query</c> and <c>db/write</c> reach it: on SQLite a file in the tenant's workspace, on
/// PostgreSQL a schema of the store's database reached through a login role of the tenant's own. Each call is one
/// statement in one transaction; a write commits with its journal row (<see cref="JournalTable"/>, keyed by the effect's
/// <c>{jobId}/{nodeId}</c>), so after a crash the journal says whether it happened and what it answered.
/// </summary>
internal abstract class TenantDatabase(DatabaseOptions options)
{
    /// <summary>The journal of applied writes in each tenant's database: key, the result the call answered, when.</summary>
    public const string JournalTable = SqlRules.ReservedPrefix + "effects";

    protected DatabaseOptions Options => options;

    public abstract bool IsPostgres { get; }

    /// <summary>Whether db/* can run here at all, and why not: what <c>/health/ready</c> reports as its <c>database</c> entry.</summary>
    public abstract Task<(bool Available, string Description)> StateAsync(CancellationToken cancellationToken);

    /// <summary>Runs a read-only statement; the engine refuses a write whatever the text.</summary>
    public abstract Task<EffectResult> QueryAsync(EffectCall call, string sql, JsonElement parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Runs a write once per <see cref="EffectCall.IdempotencyKey"/>: with the journal row in its transaction, or, when the
    /// journal already holds the key, not at all (the recorded answer comes back).
    /// </summary>
    public abstract Task<EffectResult> WriteAsync(EffectCall call, string sql, JsonElement parameters, SqlKind kind, CancellationToken cancellationToken);

    /// <summary>The answer the write with this key recorded when it committed, or null when it never committed.</summary>
    public abstract Task<string?> RecordedAsync(EffectCall call, CancellationToken cancellationToken);

    /// <summary>Binds <c>params</c>: an array binds <c>$1</c>, <c>$2</c> ... (SQLite also <c>?1</c>), an object binds <c>@name</c> / <c>:name</c> / <c>$name</c>.</summary>
    protected static IEnumerable<(string Name, object Value)> Parameters(JsonElement parameters)
    {
        switch (parameters.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                yield break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var value in parameters.EnumerateArray())
                    yield return ((++i).ToString(System.Globalization.CultureInfo.InvariantCulture), Value(value));
                break;
            case JsonValueKind.Object:
                foreach (var property in parameters.EnumerateObject())
                {
                    if (property.Name.Length == 0 || !property.Name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                        throw new EffectRefusedException(Problems.EffectFailed, $"Parameter name '{property.Name}' must be letters, digits and '_'.");
                    yield return (property.Name, Value(property.Value));
                }
                break;
            default:
                throw new EffectRefusedException(Problems.EffectFailed, "'params' must be a JSON array (bound to $1, $2, ...) or an object (bound to @name).");
        }
    }

    static object Value(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Number => value.TryGetInt64(out var whole) ? whole : value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => DBNull.Value,
        _ => value.GetRawText(),
    };

    /// <summary>Reads a statement's rows (at most <c>MaxRows</c> and <c>MaxResultBytes</c>) into the answer the model reads.</summary>
    protected async Task<JsonObject> ReadAsync(DbDataReader reader, bool write, CancellationToken cancellationToken)
    {
        var columns = new JsonArray();
        var names = new string[reader.FieldCount];
        for (var i = 0; i < reader.FieldCount; i++)
        {
            names[i] = reader.GetName(i);
            columns.Add(names[i]);
        }
        var rows = new JsonArray();
        var bytes = 0;
        var truncated = false;
        while (await reader.ReadAsync(cancellationToken))
        {
            if (rows.Count >= options.MaxRows)
            {
                truncated = true;
                break;
            }
            var row = new JsonObject();
            for (var i = 0; i < names.Length; i++)
                row[names[i]] = Json(reader.IsDBNull(i) ? null : reader.GetValue(i));
            bytes += row.ToJsonString(Relaxed).Length;
            if (bytes > options.MaxResultBytes)
            {
                truncated = true;
                break;
            }
            rows.Add(row);
        }
        // The rest of a cut result is not read: the statement has done its work (RETURNING rows are all written).
        await reader.CloseAsync();
        var result = new JsonObject { ["columns"] = columns, ["rows"] = rows, ["rowCount"] = rows.Count, ["truncated"] = truncated };
        if (write)
            result["rowsAffected"] = Math.Max(reader.RecordsAffected, 0);
        return result;
    }

    static JsonNode? Json(object? value) => value switch
    {
        null or DBNull => null,
        string s => s,
        bool b => b,
        long l => l,
        int i => i,
        short s => s,
        byte b => b,
        decimal m => m,
        double d when double.IsFinite(d) => d,
        float f when float.IsFinite(f) => f,
        byte[] blob => Convert.ToBase64String(blob),
        DateTime t => t.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        DateTimeOffset t => t.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
    };

    protected string TimeoutMessage =>
        $"The statement ran past its time limit of {(long)Options.StatementTimeout.TotalMilliseconds} ms (Orchestrator:Effects:Database:StatementTimeout) and was stopped; nothing it changed was kept.";

    protected static EffectRefusedException Denied(string why, string rule) => new(Problems.CapabilityDenied, $"The statement is not allowed: {why}.", rule);

    /// <summary>Quotes and apostrophes stay as they are (the model reads the text), still valid JSON.</summary>
    static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    protected static EffectResult Answer(JsonObject result) => new(true, result.ToJsonString(Relaxed));
}
