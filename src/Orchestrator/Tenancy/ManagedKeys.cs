using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Orchestrator.Storage;

namespace Orchestrator.Tenancy;

/// <summary>
/// An API key made through <c>POST /v1/admin/keys</c>. Only the key's SHA-256 is stored: a key is 256 random bits, so a
/// plain hash cannot be reversed or guessed, and checking one costs a hash and a lookup on every request (a slow password
/// hash such as bcrypt guards low-entropy secrets, which these are not).
/// </summary>
public sealed class ManagedKey
{
    public string Id { get; set; } = "";

    /// <summary>Lower-case hex SHA-256 of the key.</summary>
    public string Hash { get; set; } = "";

    /// <summary>The key's first characters, to tell keys apart in a list without revealing them.</summary>
    public string Prefix { get; set; } = "";

    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";

    /// <summary>Comma-separated roles.</summary>
    public string Roles { get; set; } = "";

    public DateTime CreatedAt { get; set; }
    public string CreatedBy { get; set; } = "";
    public DateTime? ExpiresAt { get; set; }
    public bool Revoked { get; set; }
    public DateTime? RevokedAt { get; set; }
    public string? RevokedBy { get; set; }

    internal IReadOnlyList<string> RoleList => Roles.Split(',', StringSplitOptions.RemoveEmptyEntries);
}

internal sealed class ManagedKeyConfiguration : IEntityTypeConfiguration<ManagedKey>
{
    public void Configure(EntityTypeBuilder<ManagedKey> key)
    {
        key.ToTable("ApiKeys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(40);
        key.Property(k => k.Hash).HasMaxLength(64);
        key.Property(k => k.Prefix).HasMaxLength(16);
        key.Property(k => k.Tenant).HasMaxLength(100);
        key.Property(k => k.Principal).HasMaxLength(200);
        key.Property(k => k.Roles).HasMaxLength(200);
        key.Property(k => k.CreatedBy).HasMaxLength(200);
        key.Property(k => k.RevokedBy).HasMaxLength(200);
        key.HasIndex(k => k.Hash).IsUnique();
        key.HasIndex(k => k.Tenant);
    }
}

/// <summary>
/// The managed API keys this node accepts: every key not revoked, by hash, read from the store at start and every
/// propagation interval (a key revoked on another node stops working here within that interval; on this node at once; a
/// key made on another node works here at once, see <see cref="FindAsync"/>).
/// Expiry is checked on every request against the clock, so an expired key never passes between two reads.
/// </summary>
internal sealed class ManagedKeys(IDbContextFactory<OrchestratorDb> dbs, StoreWriter writer, TimeProvider time, Microsoft.Extensions.Options.IOptions<NodeOptions> options)
{
    const string KeyPrefix = "ork_";

    volatile Dictionary<string, (ManagedKey Row, AuthenticationTicket Ticket)> _byHash = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, bool> _revokedHere = new(StringComparer.Ordinal);

    /// <summary>
    /// The key's principal, or null. A key this node has not read yet (made on another node since its last read) is
    /// looked up in the store once, so a new key works at once on every node; a key found nowhere is not looked up again
    /// for a propagation interval, so unknown keys cannot turn into a query each.
    /// </summary>
    public async ValueTask<AuthenticationTicket?> FindAsync(string key)
    {
        if (!key.StartsWith(KeyPrefix, StringComparison.Ordinal))
            return null;
        var hash = HashOf(key);
        var now = time.GetUtcNow().UtcDateTime;
        if (!_byHash.TryGetValue(hash, out var entry))
        {
            if (_misses.TryGetValue(hash, out var until) && until > now)
                return null;
            await using var db = await dbs.CreateDbContextAsync();
            if (await db.Set<ManagedKey>().AsNoTracking().FirstOrDefaultAsync(k => k.Hash == hash && !k.Revoked) is not { } row)
            {
                if (_misses.Count > 10_000)
                    _misses.Clear();
                _misses[hash] = now + options.Value.Propagation;
                return null;
            }
            Index([row]);
            entry = (row, TicketOf(row));
        }
        if (_revokedHere.ContainsKey(entry.Row.Id))
            return null;
        return entry.Row.ExpiresAt is { } expires && expires <= now ? null : entry.Ticket;
    }

    readonly ConcurrentDictionary<string, DateTime> _misses = new(StringComparer.Ordinal);

    public async Task<(ManagedKey Row, string Key)> CreateAsync(string tenant, string principal, IReadOnlyList<string> roles, DateTime? expiresAt, string by)
    {
        var key = KeyPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var row = new ManagedKey
        {
            Id = "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10)),
            Hash = HashOf(key),
            Prefix = key[..12],
            Tenant = tenant,
            Principal = principal,
            Roles = string.Join(',', roles),
            CreatedAt = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime),
            CreatedBy = by,
            ExpiresAt = expiresAt is { } at ? StoreTime.Microseconds(at.ToUniversalTime()) : null,
        };
        if (!await writer.WriteAsync(new Insert<ManagedKey>(row)))
            throw new InvalidOperationException("A new API key collided with an existing one.");
        Index([row]);
        return (row, key);
    }

    public async Task<IReadOnlyList<ManagedKey>> ListAsync(string? tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var query = db.Set<ManagedKey>().AsNoTracking();
        if (tenant is not null)
            query = query.Where(k => k.Tenant == tenant);
        return await query.OrderBy(k => k.Id).ToListAsync(cancellationToken);
    }

    public async Task<ManagedKey?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<ManagedKey>().AsNoTracking().FirstOrDefaultAsync(k => k.Id == id, cancellationToken);
    }

    /// <summary>Revokes the key: committed, then refused here at once; other nodes drop it at their next read.</summary>
    public async Task<bool> RevokeAsync(ManagedKey row, string by)
    {
        _revokedHere[row.Id] = true;
        var revoked = new ManagedKey
        {
            Id = row.Id, Revoked = true, RevokedAt = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime), RevokedBy = by,
        };
        return await writer.WriteAsync(new GuardedUpdate<ManagedKey>(revoked, [new Guard(nameof(ManagedKey.Revoked), false)],
            [nameof(ManagedKey.Revoked), nameof(ManagedKey.RevokedAt), nameof(ManagedKey.RevokedBy)]));
    }

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await db.Set<ManagedKey>().AsNoTracking().Where(k => !k.Revoked).ToListAsync(cancellationToken);
        var next = new Dictionary<string, (ManagedKey, AuthenticationTicket)>(StringComparer.Ordinal);
        var current = _byHash;
        foreach (var row in rows)
            next[row.Hash] = current.TryGetValue(row.Hash, out var held) && held.Row.Id == row.Id ? held : (row, TicketOf(row));
        _byHash = next;
    }

    void Index(IEnumerable<ManagedKey> rows)
    {
        var next = new Dictionary<string, (ManagedKey, AuthenticationTicket)>(_byHash, StringComparer.Ordinal);
        foreach (var row in rows)
            next[row.Hash] = (row, TicketOf(row));
        _byHash = next;
    }

    internal static AuthenticationTicket TicketOf(ManagedKey row) => ApiKeyDirectory.TicketFor(row.Tenant, row.Principal, row.RoleList);

    static string HashOf(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>A managed key as <c>GET /v1/admin/keys</c> lists it: never the key or its hash.</summary>
public sealed record KeyView(
    string Id, string Prefix, string Tenant, string Principal, IReadOnlyList<string> Roles, DateTime CreatedAt, string CreatedBy,
    DateTime? ExpiresAt, bool Revoked, DateTime? RevokedAt)
{
    internal static KeyView Of(ManagedKey k) =>
        new(k.Id, k.Prefix, k.Tenant, k.Principal, k.RoleList, k.CreatedAt, k.CreatedBy, k.ExpiresAt, k.Revoked, k.RevokedAt);
}

/// <summary>The answer of <c>POST /v1/admin/keys</c>: the key itself, shown this once.</summary>
public sealed record CreatedKey(string Id, string Key, string Tenant, string Principal, IReadOnlyList<string> Roles, DateTime? ExpiresAt);

/// <summary>The body of <c>POST /v1/admin/keys</c>.</summary>
public sealed record KeyRequest
{
    public string? Tenant { get; init; }
    public string? Principal { get; init; }
    public IReadOnlyList<string>? Roles { get; init; }
    public DateTime? ExpiresAt { get; init; }
}

public sealed record KeyPage(IReadOnlyList<KeyView> Items);
