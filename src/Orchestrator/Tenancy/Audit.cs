using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Orchestrator.Storage;

namespace Orchestrator.Tenancy;

/// <summary>
/// One entry of the audit trail: who did what to which resource, what was decided and why. Entries are append-only
/// and hash-chained: each <see cref="Hash"/> covers the entry and the hash before it, so an edited, inserted or
/// deleted row breaks the chain at that row (<c>GET /v1/audit/verify</c>).
/// </summary>
public sealed class AuditEntry
{
    /// <summary>1, 2, 3, ... with no gaps: a missing number is a deleted entry.</summary>
    public long Seq { get; set; }
    public DateTime At { get; set; }
    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";

    /// <summary>A dotted name: <c>model.quarantine</c>, <c>act.refused</c>, ...</summary>
    public string Action { get; set; } = "";
    public string? Resource { get; set; }

    /// <summary><c>allowed</c> or <c>denied</c>.</summary>
    public string Decision { get; set; } = "";
    public string? Reason { get; set; }
    public string? TraceId { get; set; }

    /// <summary>What else the decision rested on, as a JSON object.</summary>
    public string? Details { get; set; }
    public string Hash { get; set; } = "";

    /// <summary>The chained hash of this entry after <paramref name="previous"/> (empty for the first).</summary>
    internal string ComputeHash(string previous)
    {
        var canonical = string.Join('\u001f', Seq.ToString(System.Globalization.CultureInfo.InvariantCulture),
            At.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture),
            Tenant, Principal, Action, Resource ?? "", Decision, Reason ?? "", TraceId ?? "", Details ?? "", previous);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }
}

internal sealed class AuditEntryConfiguration : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> entry)
    {
        entry.ToTable("AuditEntries");
        entry.HasKey(e => e.Seq);
        entry.Property(e => e.Seq).ValueGeneratedNever();
        entry.Property(e => e.Tenant).HasMaxLength(100);
        entry.Property(e => e.Principal).HasMaxLength(200);
        entry.Property(e => e.Action).HasMaxLength(100);
        entry.Property(e => e.Resource).HasMaxLength(300);
        entry.Property(e => e.Decision).HasMaxLength(20);
        entry.Property(e => e.TraceId).HasMaxLength(32);
        entry.Property(e => e.Hash).HasMaxLength(64);
        entry.HasIndex(e => new { e.Tenant, e.Seq });
    }
}

/// <summary>
/// Appends one entry at the head of the chain, inside the writer's transaction: reads the last entry, numbers and
/// hashes this one after it. On PostgreSQL a transaction-scoped advisory lock serializes appends of all nodes, so the
/// chain never forks; SQLite has one writer.
/// </summary>
internal sealed class AppendAudit(AuditEntry entry) : StoreWrite
{
    /// <summary>Any constant that no other part of the service uses for an advisory lock.</summary>
    const long ChainLock = 0x4f52_4348_4155_4454;

    public override object? Entity => null;

    public AuditEntry Entry => entry;

    public override int Execute(StoreSession session)
    {
        if (!session.IsSqlite)
        {
            var lockStatement = session.Command("audit:lock", _ => $"SELECT pg_advisory_xact_lock({ChainLock})");
            lockStatement.Command.ExecuteScalar();
        }
        var last = session.Command("audit:last", sql =>
            $"SELECT {sql.Column<AuditEntry>(nameof(AuditEntry.Seq))}, {sql.Column<AuditEntry>(nameof(AuditEntry.Hash))} FROM {sql.Table<AuditEntry>()} " +
            $"ORDER BY {sql.Column<AuditEntry>(nameof(AuditEntry.Seq))} DESC LIMIT 1");
        long seq = 0;
        var previous = "";
        using (var reader = last.Command.ExecuteReader())
        {
            if (reader.Read())
            {
                seq = reader.GetInt64(0);
                previous = reader.GetString(1);
            }
        }
        entry.Seq = seq + 1;
        entry.Hash = entry.ComputeHash(previous);
        return session.Insert(entry, null);
    }
}

/// <summary>Writes the audit trail. Who acted always comes from the caller's key, never from the request.</summary>
internal sealed class AuditTrail(StoreWriter writer, TimeProvider time, ILogger<AuditTrail> log)
{
    /// <summary>Appends an entry and waits until it is committed.</summary>
    public async Task RecordAsync(Caller caller, string action, string? resource, bool allowed, string? reason = null,
        string? traceId = null, object? details = null, string? tenant = null)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var entry = new AuditEntry
        {
            // Microseconds: what PostgreSQL keeps, so the hash reads back the same on both stores.
            At = StoreTime.Microseconds(now),
            Tenant = tenant ?? caller.Tenant,
            Principal = caller.Principal,
            Action = action,
            Resource = resource,
            Decision = allowed ? "allowed" : "denied",
            Reason = reason,
            TraceId = traceId ?? System.Diagnostics.Activity.Current?.TraceId.ToHexString(),
            Details = details is null ? null : JsonSerializer.Serialize(details, details.GetType(), AuditDetails.Options),
        };
        if (!await writer.WriteAsync(new AppendAudit(entry)))
            log.LogError("Audit entry {Action} on {Resource} by {Principal} was not stored", action, resource, caller.Principal);
    }

    /// <summary>Appends without waiting (a refusal on the hot path); a failure is logged.</summary>
    public void Record(Caller caller, string action, string? resource, bool allowed, string? reason = null, string? traceId = null, object? details = null) =>
        _ = RecordQuietlyAsync(caller, action, resource, allowed, reason, traceId, details);

    async Task RecordQuietlyAsync(Caller caller, string action, string? resource, bool allowed, string? reason, string? traceId, object? details)
    {
        try
        {
            await RecordAsync(caller, action, resource, allowed, reason, traceId, details);
        }
        catch (Exception error)
        {
            log.LogError(error, "Audit entry {Action} on {Resource} by {Principal} was not stored", action, resource, caller.Principal);
        }
    }
}

internal static class AuditDetails
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}

/// <summary>Checks the chain from the first entry: numbers without gaps, every hash recomputed.</summary>
internal sealed class AuditVerifier(IDbContextFactory<OrchestratorDb> dbs)
{
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var previous = "";
        long expected = 1, checkedCount = 0;
        await foreach (var entry in db.Set<AuditEntry>().AsNoTracking().OrderBy(e => e.Seq).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            if (entry.Seq != expected)
                return new AuditVerification(false, checkedCount, expected, $"entry {expected} is missing");
            if (entry.ComputeHash(previous) != entry.Hash)
                return new AuditVerification(false, checkedCount, entry.Seq, $"entry {entry.Seq} does not match its hash");
            previous = entry.Hash;
            expected++;
            checkedCount++;
        }
        return new AuditVerification(true, checkedCount, null, null);
    }
}

/// <summary><c>GET /v1/audit/verify</c>: <c>ok</c>, how many entries were checked, and the first broken one.</summary>
public sealed record AuditVerification(bool Ok, long Checked, long? BrokenAt, string? Reason);
