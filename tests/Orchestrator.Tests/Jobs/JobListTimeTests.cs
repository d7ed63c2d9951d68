using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

/// <summary><c>GET /v1/jobs?from=&amp;to=</c>: jobs created in a window (the console's time filter).</summary>
public sealed class JobListTimeTests : IDisposable
{
    readonly OrchestratorApp _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task The_list_keeps_jobs_created_in_the_window_and_refuses_a_reversed_one()
    {
        var client = _app.ClientFor();
        var before = DateTime.UtcNow.AddSeconds(-1);
        var (_, job) = await client.ActAsync(new { input = "in the window" });
        var after = DateTime.UtcNow.AddSeconds(1);
        static string Iso(DateTime at) => Uri.EscapeDataString(at.ToString("O", System.Globalization.CultureInfo.InvariantCulture));

        var inside = await Api.BodyOf(await client.GetAsync($"/v1/jobs?from={Iso(before)}&to={Iso(after)}"));
        inside["items"]!.AsArray().Select(i => i!.Str("jobId")).Should().Contain(job.Str("jobId"));
        var later = await Api.BodyOf(await client.GetAsync($"/v1/jobs?from={Iso(after)}"));
        later["items"]!.AsArray().Should().BeEmpty("no job was created after the window");
        var earlier = await Api.BodyOf(await client.GetAsync($"/v1/jobs?to={Iso(before)}"));
        earlier["items"]!.AsArray().Select(i => i!.Str("jobId")).Should().NotContain(job.Str("jobId"));

        var reversed = await client.GetAsync($"/v1/jobs?from={Iso(after)}&to={Iso(before)}");
        reversed.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await Api.BodyOf(reversed)).Str("code").Should().Be("validation_failed");
    }
}
