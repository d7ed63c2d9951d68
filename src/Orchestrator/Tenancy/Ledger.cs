using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Orchestrator.Storage;

namespace Orchestrator.Tenancy;

/// <summary>
/// One counter of a tenant (<see cref="Scope"/> empty) or of one principal in it, for one period: requests in a UTC minute,
/// tokens or cost (micro-USD) in a UTC day, refusals by code in a day. <see cref="Used"/> is what was spent or counted;
/// <see cref="Held"/> is what admitted jobs reserved and have not settled yet.
/// </summary>
public sealed class UsageCounter
{
    public string Tenant { get; set; } = "";

    /// <summary>Empty for the tenant as a whole, else the principal.</summary>
    public string Scope { get; set; } = "";

    /// <summary><c>requests</c>, <c>tokens</c>, <c>cost</c>, or <c>rejected:{code}</c>.</summary>
    public string Kind { get; set; } = "";

    /// <summary><c>yyyy-MM-ddTHH:mm</c> for a minute, <c>yyyy-MM-dd</c> for a day (UTC).</summary>
    public string Period { get; set; } = "";

    public long Used { get; set; }
    public long Held { get; set; }
}

/// <summary>What one admitted job holds of its day's budgets until it settles: its worst case, priced when admitted.</summary>
public sealed class BudgetHold
{
    public string JobId { get; set; } = "";
    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";
    public string Period { get; set; } = "";
    public long Tokens { get; set; }
    public long Micros { get; set; }
}

internal sealed class UsageCounterConfiguration : IEntityTypeConfiguration<UsageCounter>
{
    public void Configure(EntityTypeBuilder<UsageCounter> counter)
    {
        counter.ToTable("UsageCounters");
        counter.HasKey(c => new { c.Tenant, c.Scope, c.Kind, c.Period });
        counter.Property(c => c.Tenant).HasMaxLength(100);
        counter.Property(c => c.Scope).HasMaxLength(200);
        counter.Property(c => c.Kind).HasMaxLength(64);
        counter.Property(c => c.Period).HasMaxLength(16);
    }
}

internal sealed class BudgetHoldConfiguration : IEntityTypeConfiguration<BudgetHold>
{
    public void Configure(EntityTypeBuilder<BudgetHold> hold)
    {
        hold.ToTable("BudgetHolds");
        hold.HasKey(h => h.JobId);
        hold.Property(h => h.JobId).HasMaxLength(40);
        hold.Property(h => h.Tenant).HasMaxLength(100);
        hold.Property(h => h.Principal).HasMaxLength(200);
        hold.Property(h => h.Period).HasMaxLength(16);
    }
}

/// <summary>Kinds of counter and the limit each enforces.</summary>
public static class CounterKinds
{
    public const string Requests = "requests";
    public const string Tokens = "tokens";
    public const string Cost = "cost";
    public const string RejectedPrefix = "rejected:";
}

/// <summary>
/// One take from a counter inside a transaction: raise it by an amount unless that would pass the limit. A single
/// conditional upsert, so any number of nodes taking at once serialize on the counter's row and none sees a stale count:
/// <c>INSERT ... ON CONFLICT DO UPDATE SET Used = Used + @u WHERE Used + Held + @u &lt;= @limit AND Used + Held &lt; @limit</c>.
/// The second condition makes spend equal to a limit refuse every further request, however small.
/// </summary>
public sealed record CounterTake(string Tenant, string Scope, string Kind, string Period, long Used, long Held, long Limit)
{
    /// <summary><c>tenant</c> or <c>principal</c>: the scope a refusal names.</summary>
    public string ScopeName => Scope.Length == 0 ? "tenant" : "principal";

    /// <summary>True when the take cannot pass whatever the counter holds (its amount alone is over the limit).</summary>
    public bool Impossible => Limit <= 0 || Used + Held > Limit;

    internal bool Take(StoreSession session)
    {
        var statement = session.Command("counter:take", sql =>
        {
            string C(string property) => sql.Column<UsageCounter>(property);
            var table = sql.Table<UsageCounter>();
            var key = $"{C(nameof(UsageCounter.Tenant))}, {C(nameof(UsageCounter.Scope))}, {C(nameof(UsageCounter.Kind))}, {C(nameof(UsageCounter.Period))}";
            var used = $"{table}.{C(nameof(UsageCounter.Used))}";
            var held = $"{table}.{C(nameof(UsageCounter.Held))}";
            return $"INSERT INTO {table} ({key}, {C(nameof(UsageCounter.Used))}, {C(nameof(UsageCounter.Held))}) " +
                   $"VALUES ({sql.Parameter("t")}, {sql.Parameter("s")}, {sql.Parameter("k")}, {sql.Parameter("p")}, {sql.Parameter("u")}, {sql.Parameter("h")}) " +
                   $"ON CONFLICT ({key}) DO UPDATE SET {C(nameof(UsageCounter.Used))} = {used} + {sql.Parameter("u")}, {C(nameof(UsageCounter.Held))} = {held} + {sql.Parameter("h")} " +
                   $"WHERE {used} + {held} + {sql.Parameter("u")} + {sql.Parameter("h")} <= {sql.Parameter("limit")} AND {used} + {held} < {sql.Parameter("limit")}";
        }, Parameters);
        Bind(statement, Used, Held);
        statement.Bind(6, Limit);
        return statement.Command.ExecuteNonQuery() > 0;
    }

    /// <summary>Takes each in order; at the first that does not pass, gives back those before it and answers it (null: all passed).</summary>
    internal static CounterTake? TakeEach(IReadOnlyList<CounterTake> takes, StoreSession session)
    {
        for (var i = 0; i < takes.Count; i++)
        {
            if (takes[i].Take(session))
                continue;
            for (var j = i - 1; j >= 0; j--)
                takes[j].GiveBack(session);
            return takes[i];
        }
        return null;
    }

    /// <summary>Gives the take back (a later check refused the request, in the same transaction).</summary>
    internal void GiveBack(StoreSession session) => Ledger.Adjust(session, Tenant, Scope, Kind, Period, -Used, -Held);

    static readonly (Type, string, string)[] Parameters =
    [
        (typeof(UsageCounter), nameof(UsageCounter.Tenant), "t"), (typeof(UsageCounter), nameof(UsageCounter.Scope), "s"),
        (typeof(UsageCounter), nameof(UsageCounter.Kind), "k"), (typeof(UsageCounter), nameof(UsageCounter.Period), "p"),
        (typeof(UsageCounter), nameof(UsageCounter.Used), "u"), (typeof(UsageCounter), nameof(UsageCounter.Held), "h"),
        (typeof(UsageCounter), nameof(UsageCounter.Used), "limit"),
    ];

    internal void Bind(StoreSession.Statement statement, long used, long held)
    {
        statement.Bind(0, Tenant);
        statement.Bind(1, Scope);
        statement.Bind(2, Kind);
        statement.Bind(3, Period);
        statement.Bind(4, used);
        statement.Bind(5, held);
    }
}

/// <summary>
/// The counters' periods and their statements: adjusting a counter, and settling a job's hold (the actual usage moves
/// from held to used, the rest is released), each inside the writer's transaction.
/// </summary>
public static class Ledger
{
    public const long MicrosPerUsd = 1_000_000;

    public static string Minute(DateTime at) => at.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture);

    public static string Day(DateTime at) => at.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static DateTime NextMinute(DateTime at) => new DateTime(at.Year, at.Month, at.Day, at.Hour, at.Minute, 0, DateTimeKind.Utc).AddMinutes(1);

    public static DateTime NextDay(DateTime at) => at.Date.AddDays(1);

    /// <summary>Micro-USD, rounded up: a hold or a limit in whole micro-dollars never under-reserves.</summary>
    public static long MicrosUp(decimal usd) => (long)Math.Ceiling(usd * MicrosPerUsd);

    /// <summary>A budget in micro-USD, rounded down, so the store's limit is never above the one configured.</summary>
    public static long MicrosDown(decimal usd) => (long)Math.Floor(usd * MicrosPerUsd);

    internal static void Adjust(StoreSession session, string tenant, string scope, string kind, string period, long used, long held)
    {
        var statement = session.Command("counter:adjust", sql =>
        {
            string C(string property) => sql.Column<UsageCounter>(property);
            return $"UPDATE {sql.Table<UsageCounter>()} SET {C(nameof(UsageCounter.Used))} = {C(nameof(UsageCounter.Used))} + {sql.Parameter("u")}, " +
                   $"{C(nameof(UsageCounter.Held))} = {C(nameof(UsageCounter.Held))} + {sql.Parameter("h")} " +
                   $"WHERE {C(nameof(UsageCounter.Tenant))} = {sql.Parameter("t")} AND {C(nameof(UsageCounter.Scope))} = {sql.Parameter("s")} " +
                   $"AND {C(nameof(UsageCounter.Kind))} = {sql.Parameter("k")} AND {C(nameof(UsageCounter.Period))} = {sql.Parameter("p")}";
        },
        (typeof(UsageCounter), nameof(UsageCounter.Used), "u"), (typeof(UsageCounter), nameof(UsageCounter.Held), "h"),
        (typeof(UsageCounter), nameof(UsageCounter.Tenant), "t"), (typeof(UsageCounter), nameof(UsageCounter.Scope), "s"),
        (typeof(UsageCounter), nameof(UsageCounter.Kind), "k"), (typeof(UsageCounter), nameof(UsageCounter.Period), "p"));
        statement.Bind(0, used);
        statement.Bind(1, held);
        statement.Bind(2, tenant);
        statement.Bind(3, scope);
        statement.Bind(4, kind);
        statement.Bind(5, period);
        statement.Command.ExecuteNonQuery();
    }

    /// <summary>
    /// Settles the job's hold, if it has one: takes the hold row (so a job settles once, whoever ends it) and moves the
    /// actual usage to used and the whole hold out of held, on the tenant's and the principal's counters.
    /// </summary>
    internal static void Settle(StoreSession session, string jobId, long tokens, long micros)
    {
        var take = session.Command("hold:take", sql =>
        {
            string C(string property) => sql.Column<BudgetHold>(property);
            return $"DELETE FROM {sql.Table<BudgetHold>()} WHERE {C(nameof(BudgetHold.JobId))} = {sql.Parameter("j")} " +
                   $"RETURNING {C(nameof(BudgetHold.Tenant))}, {C(nameof(BudgetHold.Principal))}, {C(nameof(BudgetHold.Period))}, " +
                   $"{C(nameof(BudgetHold.Tokens))}, {C(nameof(BudgetHold.Micros))}";
        }, (typeof(BudgetHold), nameof(BudgetHold.JobId), "j"));
        take.Bind(0, jobId);
        string tenant, principal, period;
        long heldTokens, heldMicros;
        using (var reader = take.Command.ExecuteReader())
        {
            if (!reader.Read())
                return;
            tenant = reader.GetString(0);
            principal = reader.GetString(1);
            period = reader.GetString(2);
            heldTokens = reader.GetInt64(3);
            heldMicros = reader.GetInt64(4);
        }
        foreach (var scope in (string[])["", principal])
        {
            Adjust(session, tenant, scope, CounterKinds.Tokens, period, tokens, -heldTokens);
            Adjust(session, tenant, scope, CounterKinds.Cost, period, micros, -heldMicros);
        }
    }
}

/// <summary>
/// A job's end (or any write that ends it) together with the settling of its budget hold, in one transaction: the hold
/// is settled only when the end applied, so a lost lease or a lost race never settles, and the winner settles once.
/// </summary>
internal sealed class SettledEnd : StoreWrite
{
    readonly StoreWrite _end;
    readonly string _jobId;
    readonly long _tokens;
    readonly long _micros;

    internal SettledEnd(StoreWrite end, string jobId, long tokens, long micros)
    {
        _end = end;
        _jobId = jobId;
        _tokens = tokens;
        _micros = micros;
        Fence = end.Fence;
    }

    /// <summary>Null: a write of two tables is a step of its own, never merged with writes of the job's row.</summary>
    public override object? Entity => null;

    public override int Execute(StoreSession session)
    {
        _end.Fence = Fence;
        var applied = _end.Execute(session);
        if (applied > 0)
            Ledger.Settle(session, _jobId, _tokens, _micros);
        return applied;
    }

    /// <summary>Wraps <paramref name="end"/> so that it settles the job's hold with its actual usage.</summary>
    public static StoreWrite Of(StoreWrite end, string jobId, long tokens, decimal costUsd) =>
        new SettledEnd(end, jobId, tokens, Ledger.MicrosUp(costUsd));
}

/// <summary>Counts an event (a refusal, by code) for the tenant and the principal, without waiting for the commit.</summary>
internal sealed class CountEvent(string tenant, string principal, string kind, string period) : StoreWrite
{
    public override object? Entity => null;

    public override int Execute(StoreSession session)
    {
        new CounterTake(tenant, "", kind, period, 1, 0, long.MaxValue).Take(session);
        new CounterTake(tenant, principal, kind, period, 1, 0, long.MaxValue).Take(session);
        return 1;
    }
}

internal static class CounterWrites
{
    public static void Count(this StoreWriter writer, string tenant, string principal, string kind, string period) =>
        _ = writer.WriteAsync(new CountEvent(tenant, principal, kind, period));
}
