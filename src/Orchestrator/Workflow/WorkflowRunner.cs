using System.Text.Json;
using Microsoft.Extensions.AI;
using Orchestrator.Acting;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;

namespace Orchestrator.Workflow;

/// <summary>Runs a job's intent: the policy's nodes in order, each model node through the gateway.</summary>
internal sealed class WorkflowRunner(IntentCatalog intents, ModelGateway gateway, Microsoft.Extensions.Options.IOptions<GatewayOptions> gatewayOptions)
{
    public async Task<JobOutcome> RunAsync(JobRun run, CancellationToken cancellationToken)
    {
        var job = run.Job;
        var request = job.Admitted ?? JsonSerializer.Deserialize(job.Request, OrchestratorJson.Default.ActRequest)!;
        if (intents.Find(job.Intent) is not { } policy)
            return JobOutcome.Failed(Problems.ValidationFailed, $"Intent '{job.Intent}' has no policy on this node.");

        var usage = JobUsage.None;
        string? previous = null;
        string? model = null;
        var path = new List<string>();
        var routing = new List<NodeRouting>();
        foreach (var node in policy.Nodes)
        {
            var messages = Conversation.For(request, node, previous);
            var call = new ModelCall(job.TraceId, node.Id, messages, null,
                Routing.For(request, policy, node, gatewayOptions.Value.DefaultStrategy), Seeds.For(job.TraceId, node.Id));
            try
            {
                var reply = await gateway.CompleteAsync(call, cancellationToken);
                routing.Add(new NodeRouting(node.Id, reply.Decision));
                usage = usage.Add(reply.Usage);
                previous = reply.Message.Text;
                model = reply.ModelId;
                path.Add(node.Id);
            }
            catch (ModelUnavailableException error)
            {
                routing.Add(new NodeRouting(node.Id, error.Decision));
                return JobOutcome.Failed(Problems.ModelUnavailable, error.Message, transient: true) with { Routing = routing };
            }
            catch (ModelCallException error)
            {
                return JobOutcome.Failed(Problems.ModelFailed, error.Message, transient: ModelFailureClasses.IsRetryable(error.Failure)) with { Routing = routing };
            }
        }
        return JobOutcome.Completed(new JobOutput(previous ?? "", model, usage, path)) with { Routing = routing };
    }
}

/// <summary>How a node's model conversation is built from the request.</summary>
internal static class Conversation
{
    public static List<ChatMessage> For(ActRequest request, PolicyNode node, string? previousAnswer)
    {
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(node.Prompt))
            messages.Add(new ChatMessage(ChatRole.System, node.Prompt));
        if (request.Messages is { Count: > 0 })
            messages.AddRange(request.Messages.Select(m => new ChatMessage(new ChatRole(m.Role!), m.Content)));
        if (!string.IsNullOrEmpty(request.Input))
            messages.Add(new ChatMessage(ChatRole.User, request.Input));
        if (previousAnswer is not null)
            messages.Add(new ChatMessage(ChatRole.User, $"Work so far (from the previous step):\n{previousAnswer}"));
        return messages;
    }
}

internal static class Routing
{
    /// <summary>The request's routing, then the intent policy's, then the gateway default, in that order.</summary>
    public static RoutingRequest For(ActRequest request, IntentPolicy policy, PolicyNode node, string defaultStrategy) => new(
        request.Routing?.Strategy ?? policy.Routing.Strategy ?? defaultStrategy,
        request.Routing?.Models,
        request.Routing?.Hedge ?? policy.Routing.Hedge,
        node.Requires);
}

/// <summary>Per-trace seeds: everything random in a run derives from its trace id, so replay repeats it.</summary>
internal static class Seeds
{
    public static long For(string traceId, string scope)
    {
        // FNV-1a, stable across processes (string.GetHashCode is randomized per process).
        var hash = 14695981039346656037UL;
        foreach (var c in traceId)
            hash = (hash ^ c) * 1099511628211UL;
        hash = (hash ^ '/') * 1099511628211UL;
        foreach (var c in scope)
            hash = (hash ^ c) * 1099511628211UL;
        return (long)(hash & long.MaxValue);
    }
}
