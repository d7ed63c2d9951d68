using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Storage;
using Orchestrator.Tests.Approvals;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Console;

/// <summary>
/// The console's data protection key ring lives in the store: a sign-in on one node is valid on another node of the same
/// store, a form's token issued by one node is accepted by the other, and a cookie survives a restart.
/// </summary>
public sealed class ConsoleKeysTests
{
    static readonly Dictionary<string, string> Sim = new()
    {
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
    };

    /// <summary>
    /// Two real nodes start at once on an empty PostgreSQL store, each with a home folder of its own (as two machines: data
    /// protection's default key folder is under the home), and one cookie jar in front of both, as a browser behind a load
    /// balancer that sends it anywhere.
    /// </summary>
    [SkippableFact]
    public async Task A_sign_in_on_one_node_holds_on_the_other_and_its_form_tokens_too()
    {
        await using var cluster = await MultiNode.CreateAsync();
        ServiceProcess Node(string id) => cluster.Add(id, new Dictionary<string, string>(Sim) { ["HOME"] = Directory.CreateDirectory(Path.Combine(cluster.Folder, "home-" + id)).FullName });
        var a = Node("node-a");
        var b = Node("node-b");
        await Task.WhenAll(a.StartAsync(), b.StartAsync());

        (await cluster.Store.ScalarAsync<long>("""SELECT count(*) FROM "DataProtectionKeys" """)).Should().Be(1, "nodes starting together make one key, in turn");

        var jar = new CookieContainer();
        HttpClient Browser(ServiceProcess node) =>
            new(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = node.BaseAddress };
        using var onA = Browser(a);
        using var onB = Browser(b);

        var signedIn = await onA.SignInAsync(MultiNode.OperatorKey);
        signedIn.StatusCode.Should().Be(HttpStatusCode.Redirect);
        signedIn.Headers.Location!.ToString().Should().Be("/console", "node-a signs the operator in");

        var page = await onB.GetAsync("/console/models");
        page.StatusCode.Should().Be(HttpStatusCode.OK, "node-b reads node-a's cookie (not sent to sign in: " + page.Headers.Location + ")");
        (await page.Content.ReadAsStringAsync()).Should().Contain("olga").And.Contain("Quarantine");

        // The antiforgery cookie and the form's token, both from node-a, posted to node-b.
        var token = await onA.TokenFromAsync("/console/models");
        var quarantined = await onB.PostAsync("/console/models/sim/quarantine", new FormUrlEncodedContent(new Dictionary<string, string> { ["__antiforgery"] = token }));
        quarantined.StatusCode.Should().Be(HttpStatusCode.Redirect, "node-b accepts node-a's token");
        quarantined.Headers.Location!.ToString().Should().Be("/console/models");
        using var ops = a.Client(MultiNode.OperatorKey);
        (await ops.AuditAsync("model.quarantine")).Should().ContainSingle(e => e!.Str("principal") == "olga");

        var signedOut = await onB.PostFormAsync("/console/models", "/console/signout");
        signedOut.Headers.Location!.ToString().Should().Be("/console/signin");
        (await onA.GetAsync("/console/models")).StatusCode.Should().Be(HttpStatusCode.Redirect, "signed out on node-b, signed out on node-a");
        (await cluster.Store.ScalarAsync<long>("""SELECT count(*) FROM "DataProtectionKeys" """)).Should().Be(1);
    }

    /// <summary>A cookie issued before a restart on the same store is still valid after it (SQLite, or PostgreSQL under ORCHESTRATOR_TEST_STORE=Postgres).</summary>
    [Fact]
    public async Task A_sign_in_survives_a_restart_on_the_same_store()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-console-keys-").FullName;
        try
        {
            var jar = new CookieContainer();
            HttpClient Browser(Uri address) =>
                new(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = address };

            string token;
            await using (var before = new OrchestratorApp(folder: folder))
            {
                using var client = Browser(before.StartKestrel());
                (await client.SignInAsync(OrchestratorApp.OperatorKey)).Headers.Location!.ToString().Should().Be("/console");
                (await client.GetAsync("/console/models")).StatusCode.Should().Be(HttpStatusCode.OK);
                token = await client.TokenFromAsync("/console/models");
                (await KeysIn(before)).Should().Be(1, "the key ring is in the store");
            }

            await using var after = new OrchestratorApp(folder: folder);
            using var again = Browser(after.StartKestrel());
            var page = await again.GetAsync("/console/models");
            page.StatusCode.Should().Be(HttpStatusCode.OK, "the cookie from before the restart is still valid (not sent to sign in: " + page.Headers.Location + ")");
            (await page.Content.ReadAsStringAsync()).Should().Contain("olga");
            var signedOut = await again.PostAsync("/console/signout", new FormUrlEncodedContent(new Dictionary<string, string> { ["__antiforgery"] = token }));
            signedOut.StatusCode.Should().Be(HttpStatusCode.Redirect, "a form token from before the restart is accepted too");
            signedOut.Headers.Location!.ToString().Should().Be("/console/signin");
            (await KeysIn(after)).Should().Be(1, "the restarted node found the key; it made none");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    /// <summary>With <c>Orchestrator:Console:KeyCertificate</c> the stored key is encrypted with the certificate, and read back with it after a restart.</summary>
    [Fact]
    public async Task With_a_certificate_the_stored_key_is_encrypted_and_still_read_back()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-console-cert-").FullName;
        try
        {
            using var rsa = RSA.Create(2048);
            var request = new CertificateRequest("CN=orchestrator-console-keys", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
            var pfx = Path.Combine(folder, "keys.pfx");
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "secret"));
            var settings = new Dictionary<string, string?>
            {
                ["Orchestrator:Console:KeyCertificate:Path"] = pfx,
                ["Orchestrator:Console:KeyCertificate:Password"] = "secret",
            };
            var jar = new CookieContainer();
            HttpClient Browser(Uri address) =>
                new(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = address };

            await using (var before = new OrchestratorApp(settings, folder: folder))
            {
                using var client = Browser(before.StartKestrel());
                (await client.SignInAsync(OrchestratorApp.OperatorKey)).Headers.Location!.ToString().Should().Be("/console");
                await using var db = await before.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
                var xml = (await db.DataProtectionKeys.SingleAsync()).Xml;
                xml.Should().Contain("EncryptedData", "the key is stored encrypted with the certificate");
                xml.Should().NotContain("<masterKey", "no key material in clear");
            }

            await using var after = new OrchestratorApp(settings, folder: folder);
            using var again = Browser(after.StartKestrel());
            (await again.GetAsync("/console/models")).StatusCode.Should().Be(HttpStatusCode.OK, "the restarted node decrypts the stored key with the certificate");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    static async Task<int> KeysIn(OrchestratorApp app)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        return await db.DataProtectionKeys.CountAsync();
    }
}
