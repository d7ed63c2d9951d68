using System.Net;
using System.Net.Http.Json;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Acting;

/// <summary>A chat call is answered before its job is recorded; a store that cannot take the record at that moment does not lose it.</summary>
public sealed class ChatRecordTests
{
    [SkippableFact]
    public async Task A_call_answered_while_the_store_refuses_writes_is_recorded_once_the_store_takes_them_again()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var node = cluster.Add("node-a");
        await node.StartAsync();
        using var user = node.Client();

        // The Jobs table goes away under the running node, so every write of a job fails as it would with the store
        // unreachable, while the call itself (which reads no job) is still answered.
        await cluster.Store.ExecuteAsync("ALTER TABLE \"Jobs\" RENAME TO \"JobsAway\"");
        var response = await user.PostAsJsonAsync("/v1/chat/completions", new { model = "auto", messages = new[] { new { role = "user", content = "store down" } } });
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var jobId = (await Api.BodyOf(response)).Str("job_id");
        await cluster.WaitForAsync("the record to fail once", () => Task.FromResult(node.ReadLog()), log => log.Contains($"Could not record job {jobId}"), TimeSpan.FromSeconds(10));
        (await cluster.Store.ScalarAsync<long>("SELECT count(*) FROM \"JobsAway\" WHERE \"Id\" = @id", ("id", jobId))).Should().Be(0);

        await cluster.Store.ExecuteAsync("ALTER TABLE \"JobsAway\" RENAME TO \"Jobs\"");
        var job = await cluster.WaitForAsync("the job to be recorded", async () => await user.GetAsync($"/v1/jobs/{jobId}"), r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15));
        (await Api.BodyOf(job)).Str("status").Should().Be("completed");
        (await cluster.Store.ScalarAsync<long>("SELECT count(*) FROM \"JobNodes\" WHERE \"JobId\" = @id", ("id", jobId))).Should().Be(1);
    }
}
