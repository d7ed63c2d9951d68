using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Console;

/// <summary>
/// The service for console tests: the harness's keys plus an approver (who may also read jobs) and an approval rule on
/// <c>fs/write</c> under <c>gated/</c>; a simulated model slow enough (1.2 s a call) that a page sees a job running.
/// <see cref="StartKestrel"/> puts it on a real port on 127.0.0.1, for a browser.
/// </summary>
public static class ConsoleHost
{
    public const string ApproverKey = "test-key-acme-approver-01";
    public const string ApproverOnlyKey = "test-key-acme-approveronly";
    public const string AuditorKey = "test-key-acme-auditor-0001";

    public static OrchestratorApp Create(int modelLatencyMs = 1200) => new(new Dictionary<string, string?>
    {
        ["Orchestrator:ApiKeys:4:Key"] = ApproverKey,
        ["Orchestrator:ApiKeys:4:Tenant"] = "acme",
        ["Orchestrator:ApiKeys:4:Principal"] = "dave",
        ["Orchestrator:ApiKeys:4:Roles:0"] = "approver",
        ["Orchestrator:ApiKeys:4:Roles:1"] = "user",
        ["Orchestrator:ApiKeys:5:Key"] = ApproverOnlyKey,
        ["Orchestrator:ApiKeys:5:Tenant"] = "acme",
        ["Orchestrator:ApiKeys:5:Principal"] = "erin",
        ["Orchestrator:ApiKeys:5:Roles:0"] = "approver",
        ["Orchestrator:ApiKeys:6:Key"] = AuditorKey,
        ["Orchestrator:ApiKeys:6:Tenant"] = "acme",
        ["Orchestrator:ApiKeys:6:Principal"] = "audrey",
        ["Orchestrator:ApiKeys:6:Roles:0"] = "auditor",
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = modelLatencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Approvals:SweepInterval"] = "00:00:00.100",
        ["Orchestrator:Approvals:Rules:0:Name"] = "gated-writes",
        ["Orchestrator:Approvals:Rules:0:Capability"] = "fs/write",
        ["Orchestrator:Approvals:Rules:0:PathGlob"] = "gated/**",
        ["Orchestrator:Approvals:Rules:0:Approvers:Roles:0"] = "approver",
    });

    /// <summary>Starts the app on Kestrel (a real TCP port on 127.0.0.1) and answers its base address.</summary>
    public static Uri StartKestrel(this OrchestratorApp app)
    {
        app.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        app.StartServer();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    /// <summary>A client that keeps cookies and does not follow redirects, on the test server or a real address.</summary>
    public static HttpClient Browserless(Uri baseAddress) =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = baseAddress };

    static readonly Regex Token = new("name=\"__antiforgery\" value=\"([^\"]+)\"", RegexOptions.Compiled);

    /// <summary>The antiforgery token a page's forms carry.</summary>
    public static async Task<string> TokenFromAsync(this HttpClient client, string path)
    {
        var html = await client.GetStringAsync(path);
        var match = Token.Match(html);
        match.Success.Should().BeTrue($"{path} should render a form with an antiforgery token");
        return match.Groups[1].Value;
    }

    /// <summary>Signs in as a browser would: the sign-in page's token, then the form. Answers the redirect.</summary>
    public static async Task<HttpResponseMessage> SignInAsync(this HttpClient client, string key)
    {
        var token = await client.TokenFromAsync("/console/signin");
        return await client.PostAsync("/console/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["key"] = key,
            ["__antiforgery"] = token,
        }));
    }

    /// <summary>Posts a console form with the token of <paramref name="page"/>.</summary>
    public static async Task<HttpResponseMessage> PostFormAsync(this HttpClient client, string page, string action, Dictionary<string, string>? fields = null)
    {
        var form = new Dictionary<string, string>(fields ?? []) { ["__antiforgery"] = await client.TokenFromAsync(page) };
        return await client.PostAsync(action, new FormUrlEncodedContent(form));
    }
}
