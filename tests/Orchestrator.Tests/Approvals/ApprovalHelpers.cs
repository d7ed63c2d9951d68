using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>Keys and calls the approval tests share: approvers of two tenants, a supervisor for escalations.</summary>
public static class ApprovalHelpers
{
    public const string AcmeApprover = "test-key-acme-approver-01";
    public const string GlobexApprover = "test-key-globex-approver1";
    public const string AcmeSupervisor = "test-key-acme-supervisor1";

    /// <summary>The harness's keys plus approvers, and the given rules (configuration keys as operators write them).</summary>
    public static Dictionary<string, string?> Settings(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Orchestrator:ApiKeys:4:Key"] = AcmeApprover,
            ["Orchestrator:ApiKeys:4:Tenant"] = "acme",
            ["Orchestrator:ApiKeys:4:Principal"] = "dave",
            ["Orchestrator:ApiKeys:4:Roles:0"] = "approver",
            ["Orchestrator:ApiKeys:5:Key"] = GlobexApprover,
            ["Orchestrator:ApiKeys:5:Tenant"] = "globex",
            ["Orchestrator:ApiKeys:5:Principal"] = "gina",
            ["Orchestrator:ApiKeys:5:Roles:0"] = "approver",
            ["Orchestrator:ApiKeys:6:Key"] = AcmeSupervisor,
            ["Orchestrator:ApiKeys:6:Tenant"] = "acme",
            ["Orchestrator:ApiKeys:6:Principal"] = "sam",
            ["Orchestrator:ApiKeys:6:Roles:0"] = "user",
            ["Orchestrator:Approvals:SweepInterval"] = "00:00:00.100",
        };
        foreach (var (key, value) in extra)
            settings[key] = value;
        return settings;
    }

    public static string Script(params string[] calls) => "Do the work.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    /// <summary>An async agent act; answers the job id.</summary>
    public static async Task<string> ActAsync(this HttpClient client, string input, int? deadlineMs = null)
    {
        var (response, job) = await client.ActAsync(deadlineMs is null
            ? new { intent = "agent/run", mode = "async", input }
            : (object)new { intent = "agent/run", mode = "async", input, deadlineMs });
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, job.ToJsonString());
        return job.Str("jobId");
    }

    /// <summary>Polls the job view (no long-poll: a fake clock would hold it) until the condition holds.</summary>
    public static async Task<JsonObject> PollAsync(this HttpClient client, string jobId, Func<JsonObject, bool> condition, int seconds = 30)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var job = await client.GetJobAsync(jobId);
            if (condition(job))
                return job;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Job {jobId} never met the condition; last view: {job.ToJsonString()}");
            await Task.Delay(25);
        }
    }

    public static Task<JsonObject> AwaitingAsync(this HttpClient client, string jobId) =>
        client.PollAsync(jobId, j => j.Str("status") == "awaiting_approval");

    public static Task<JsonObject> EndedAsync(this HttpClient client, string jobId, int seconds = 30) =>
        client.PollAsync(jobId, j => j.Str("status") is "completed" or "failed" or "canceled", seconds);

    /// <summary>The approvals of one job, as the caller sees them.</summary>
    public static async Task<List<JsonObject>> ApprovalsOfAsync(this HttpClient client, string jobId)
    {
        var response = await client.GetAsync("/v1/approvals?limit=200");
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body["items"]!.AsArray().Select(i => i!.AsObject()).Where(i => i.Str("jobId") == jobId).OrderBy(i => i.Str("nodeId")).ToList();
    }

    public static async Task<(HttpResponseMessage Response, JsonObject Body)> ApproveAsync(this HttpClient client, string approvalId, object? body = null)
    {
        var response = await client.PostAsync($"/v1/approvals/{approvalId}/approve", JsonContent.Create(body ?? new { reason = "looks fine" }));
        return (response, await Api.BodyOf(response));
    }

    public static async Task<(HttpResponseMessage Response, JsonObject Body)> RejectAsync(this HttpClient client, string approvalId, string reason = "not today")
    {
        var response = await client.PostAsync($"/v1/approvals/{approvalId}/reject", JsonContent.Create(new { reason }));
        return (response, await Api.BodyOf(response));
    }

    public static async Task<JsonArray> AuditAsync(this HttpClient operatorClient, string action)
    {
        var response = await operatorClient.GetAsync($"/v1/audit?action={action}&limit=200");
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body["items"]!.AsArray();
    }
}
