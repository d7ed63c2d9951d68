using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;

namespace Orchestrator.Console;

/// <summary>
/// The data protection key ring that encrypts and signs the console's cookie and antiforgery tokens, kept in the store
/// (table <c>DataProtectionKeys</c>, both providers) under one application name: every node of one store reads the same
/// keys, so a sign-in on one node is valid on the others and survives restarts. Optionally the keys are encrypted at rest
/// with a certificate (<c>Orchestrator:Console:KeyCertificate</c>); without one, whoever reads the table can forge cookies.
/// </summary>
internal static class ConsoleKeys
{
    public const string ApplicationName = "Orchestrator";
    public const string CertificatePath = "Orchestrator:Console:KeyCertificate:Path";
    public const string CertificatePassword = "Orchestrator:Console:KeyCertificate:Password";

    /// <summary>The advisory lock nodes take while they make sure a key exists (any constant nothing else uses).</summary>
    const long KeyLock = 0x4f52_4348_4b45_5953;

    /// <summary>A new key's lifetime; data protection makes the next one before it ends, and keeps old ones to read old cookies.</summary>
    static readonly TimeSpan Lifetime = TimeSpan.FromDays(90);

    public static WebApplicationBuilder AddConsoleKeys(this WebApplicationBuilder builder)
    {
        var protection = builder.Services.AddDataProtection()
            .SetApplicationName(ApplicationName)
            .PersistKeysToDbContext<OrchestratorDb>();
        if (builder.Configuration[CertificatePath] is { Length: > 0 } path)
        {
            // The certificate encrypts new keys and decrypts stored ones; every node needs the same certificate (with its private key).
            var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, builder.Configuration[CertificatePassword]);
            if (!certificate.HasPrivateKey)
                throw new InvalidOperationException($"{CertificatePath}: {path} holds no private key; the key ring could not be read back.");
            protection.ProtectKeysWithCertificate(certificate);
        }
        return builder;
    }

    /// <summary>
    /// Makes sure the store holds a key valid now, before the node serves anything. On PostgreSQL nodes take an advisory lock
    /// in turn, so nodes starting together on an empty store make one key, not one each: a key made by another node after this
    /// one read its key ring would be unknown here until the ring's next refresh (up to 24 hours), and that node's cookies
    /// refused. SQLite is one node, no lock needed. Data protection keeps its own wall clock, so this does too.
    /// </summary>
    public static async Task PrepareConsoleKeysAsync(this WebApplication app)
    {
        var manager = app.Services.GetRequiredService<IKeyManager>();
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        var locked = db.Database.IsNpgsql();
        if (locked)
        {
            await db.Database.OpenConnectionAsync();
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({KeyLock})");
        }
        try
        {
            var now = TimeProvider.System.GetUtcNow();
            if (!manager.GetAllKeys().Any(k => !k.IsRevoked && k.ActivationDate <= now && k.ExpirationDate > now))
            {
                manager.CreateNewKey(now, now + Lifetime);
                app.Logger.LogInformation("Created the console's data protection key in the store");
            }
        }
        finally
        {
            if (locked)
            {
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({KeyLock})");
                await db.Database.CloseConnectionAsync();
            }
        }
    }
}
