using System.Security.Cryptography;
using System.Text.Json;
using Orchestrator.Gateway;
using Orchestrator.Hosting;

namespace Orchestrator.Workflow;

/// <summary>
/// A model node: live, one call through the gateway (no side effects, so its writes are not waited for); recorded,
/// the recorded reply to the same question (same conversation, same tools offered).
/// </summary>
internal sealed class ModelNode : NodeHandler<ModelStep, ModelCheckpoint>
{
    public override string Kind => NodeKinds.Model;

    public override async Task<ModelCheckpoint> LiveAsync(ModelStep step, LiveSteps live, CancellationToken cancellationToken)
    {
        var (run, graph, telemetry) = (live.Run, live.Graph, live.Telemetry);
        var node = graph.Find(step.NodeId);
        if (node is { Status: NodeStatus.Succeeded })
        {
            telemetry.Resumed(node);
            return live.Modeled(step.NodeId, JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.ModelCheckpoint)!);
        }
        node ??= live.Add(step.NodeId, Kind, step.Policy.Role ?? step.Policy.Id, step.Parents);

        var routing = Routing.For(live.Request, live.Policy, step.Policy, live.DefaultStrategy);
        var seed = Seeds.For(live.Request.Seed ?? run.TraceId, step.NodeId);
        var input = new ModelInput(step.Messages.Select(MessageRecord.Of).ToList(), step.ToolNames, routing, seed);
        _ = live.Start(node, JsonSerializer.Serialize(input, WorkflowJson.Default.ModelInput));
        using var activity = telemetry.Start(node, run.Tenant);
        try
        {
            var tools = step.Chat is { } chat ? chat.Tools() : step.Offered is null ? null : live.Effects.Declarations(step.Offered);
            // The intent's output ceiling bounds every call (a budget reserves it); a caller's own max_tokens may only lower it.
            var options = step.Chat?.Settings?.ToOptions() ?? new Microsoft.Extensions.AI.ChatOptions();
            options.MaxOutputTokens = Math.Min(options.MaxOutputTokens ?? int.MaxValue, live.Policy.MaxOutputTokens);
            var call = new ModelCall(run.TraceId, step.NodeId, step.Messages, tools, routing, seed, options);
            // Streamed only while someone watches the job's tokens (and not hedged: a stream is not raced).
            var reply = live.Deltas.IsWatched(run.JobId) && !routing.Hedge
                ? await StreamAsync(call, live, cancellationToken)
                : await live.Gateway.CompleteAsync(call, cancellationToken);
            var checkpoint = ModelCheckpoint.Of(reply);
            live.End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.ModelCheckpoint));
            return live.Modeled(step.NodeId, checkpoint);
        }
        catch (ModelUnavailableException error)
        {
            live.Unrouted(step.NodeId, error.Decision);
            live.End(node, NodeStatus.Failed, null, Problems.ModelUnavailable, error.Message);
            throw new StepFailed(StepFailure.Failed(Problems.ModelUnavailable, error.Message, transient: error.Transient, retryAfter: error.RetryAfter));
        }
        catch (ModelCallException error)
        {
            live.End(node, NodeStatus.Failed, null, Problems.ModelFailed, error.Message);
            throw new StepFailed(StepFailure.Failed(Problems.ModelFailed, error.Message, transient: ModelFailureClasses.IsRetryable(error.Failure)));
        }
    }

    /// <summary>The call streamed, each piece of text published to the job's watchers; the reply is the whole answer.</summary>
    static async Task<ModelReply> StreamAsync(ModelCall call, LiveSteps live, CancellationToken cancellationToken)
    {
        await using var stream = await live.Gateway.StreamAsync(call, cancellationToken);
        await foreach (var update in stream.ReadAsync(cancellationToken))
            if (update.Text is { Length: > 0 } text)
                live.Deltas.Publish(new ModelDelta(live.Run.JobId, call.NodeId, text));
        return stream.Reply();
    }

    public override Task<ModelCheckpoint> RecordedAsync(ModelStep step, RecordedSteps recorded)
    {
        var question = Question(step.Messages.Select(MessageRecord.Of), step.ToolNames);
        if (recorded.TryAnswer(step.NodeId, Kind, question, out var answer))
            return Task.FromResult((ModelCheckpoint)answer!);
        if (recorded.TryFail(step.NodeId, Kind, "", question, out var failed))
            return Task.FromException<ModelCheckpoint>(failed);
        return Task.FromException<ModelCheckpoint>(recorded.Diverge(step.NodeId, Kind,
            $"Model node '{step.NodeId}' is asked something the recording never asked (its conversation or offered tools differ), " +
            "so its answer is unknown without calling a model; the run diverges here."));
    }

    public override bool ReadsInput(JsonElement input) => Reads(input, WorkflowJson.Default.ModelInput);

    public override bool ReadsOutput(JsonElement output) => Reads(output, WorkflowJson.Default.ModelCheckpoint);

    public override string? RecordedKey(JsonElement input) =>
        input.Deserialize(WorkflowJson.Default.ModelInput) is { } model ? Question(model.Messages, model.Tools) : null;

    public override object? ReadOutput(JsonElement output) => output.Deserialize(WorkflowJson.Default.ModelCheckpoint);

    /// <summary>The recorded answer to a model question: the conversation and tools, hashed.</summary>
    internal static string Question(IEnumerable<MessageRecord> messages, IEnumerable<string> tools) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(
            new ModelQuestion(messages.ToList(), tools.ToList()), WorkflowJson.Default.ModelQuestion)));
}

/// <summary>What a model node is asked: its conversation and the functions it is offered (hashed, it keys recorded replies).</summary>
public sealed record ModelQuestion(IReadOnlyList<MessageRecord> Messages, IReadOnlyList<string> Tools);
