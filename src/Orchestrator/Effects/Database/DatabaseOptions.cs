namespace Orchestrator.Effects.Database;

/// <summary>Section <c>Orchestrator:Effects:Database</c>: limits and switches of <c>db/query</c> and <c>db/write</c>.</summary>
public sealed class DatabaseOptions
{
    public const string Section = "Orchestrator:Effects:Database";

    /// <summary>Most rows one call hands back (the rest is cut, and the result says <c>truncated</c>).</summary>
    public int MaxRows { get; set; } = 500;

    /// <summary>Most bytes of JSON one call's rows take; rows past it are cut like rows past <see cref="MaxRows"/>.</summary>
    public int MaxResultBytes { get; set; } = 256 * 1024;

    /// <summary>Longest statement text accepted, in characters.</summary>
    public int MaxSqlLength { get; set; } = 64 * 1024;

    /// <summary>Most time one statement may run; it is stopped by the engine past it.</summary>
    public TimeSpan StatementTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Tenants whose statements may change the schema (create, alter or drop tables, indexes, views, triggers); <c>*</c>: every
    /// tenant. Empty (the default): no tenant may, and such statements fail <c>capability_denied</c> (rule <c>db.ddl</c>).
    /// </summary>
    public List<string> DdlTenants { get; set; } = [];

    /// <summary>
    /// PostgreSQL: the key each tenant's login role password is derived from (HMAC-SHA256 of database and tenant).
    /// Unset: the store's own password is the key, so every node derives the same passwords with no shared state.
    /// </summary>
    public string? RoleSecret { get; set; }

    /// <summary>PostgreSQL: connections one node keeps per tenant (and the tenant role's connection limit per node).</summary>
    public int MaxConnectionsPerTenant { get; set; } = 4;

    public bool AllowsDdl(string tenant) => DdlTenants.Contains("*") || DdlTenants.Contains(tenant);
}
