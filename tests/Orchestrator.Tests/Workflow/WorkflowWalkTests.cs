using System.Text.Json;
using Orchestrator.Gateway;
using Orchestrator.Workflow;

namespace Orchestrator.Tests.Workflow;

/// <summary>The walk over a policy, with a scripted executor: node ids, parents, capabilities, the step limit.</summary>
public sealed class WorkflowWalkTests
{
    sealed class Scripted(params ModelCheckpoint[] replies) : IStepExecutor
    {
        readonly Queue<ModelCheckpoint> _replies = new(replies);

        /// <summary>How the approval gate answers each call, by effect node id; calls not named need no approval.</summary>
        public Dictionary<string, ApprovalCheckpoint> Gates { get; } = [];

        public List<ModelStep> Models { get; } = [];
        public List<EffectStep> Effects { get; } = [];
        public List<EffectStep> Denied { get; } = [];

        public Task<TCheckpoint> RunAsync<TStep, TCheckpoint>(NodeHandler<TStep, TCheckpoint> handler, TStep step, CancellationToken cancellationToken) =>
            Task.FromResult((TCheckpoint)(step switch
            {
                ModelStep model => Model(model),
                EffectStep effect => Effect(effect),
                ApprovalStep gate => Gates.GetValueOrDefault(gate.Effect.NodeId, ApprovalCheckpoint.NotRequired),
                _ => throw new InvalidOperationException($"No script for {handler.Kind} steps."),
            }));

        object Model(ModelStep step)
        {
            Models.Add(step);
            return _replies.Dequeue();
        }

        object Effect(EffectStep step)
        {
            Effects.Add(step);
            return new EffectCheckpoint(step.Call.CallId, true, "{}");
        }

        void IStepExecutor.Denied(EffectStep step, string message) => Denied.Add(step);
    }

    static readonly RoutingDecision NoDecision = new("latency-first", "m", [], []);

    static ModelCheckpoint Answer(string text) => new(text, [], "m", TokenUsage.None, NoDecision);

    static ModelCheckpoint Calls(params string[] functions) => new(null,
        functions.Select((f, i) => new ToolCallRecord($"c{i}", f, JsonSerializer.SerializeToElement(new { path = "x" }))).ToList(),
        "m", TokenUsage.None, NoDecision);

    static IntentPolicy Policy(params PolicyNode[] nodes) => new()
    {
        Intent = "test/walk",
        Capabilities = ["fs/read", "fs/write"],
        MaxSteps = 3,
        Nodes = nodes,
    };

    static readonly ActRequest Request = new() { Input = "go" };

    [Fact]
    public async Task Model_nodes_run_in_order_each_after_the_previous()
    {
        var steps = new Scripted(Answer("one"), Answer("two"));
        var policy = Policy(new PolicyNode { Id = "a", Kind = "model", Prompt = "first" }, new PolicyNode { Id = "b", Kind = "model", Prompt = "second" });

        var result = await WorkflowWalk.RunAsync(policy, Request, steps, CancellationToken.None);

        result.Text.Should().Be("two");
        result.Path.Should().Equal("a", "b");
        steps.Models.Select(m => (m.NodeId, string.Join(",", m.Parents))).Should().Equal(("a", ""), ("b", "a"));
        steps.Models[1].Messages.Last().Text.Should().Contain("one", "a node is given the previous node's answer");
        steps.Models.Should().OnlyContain(m => m.Offered == null, "plain model nodes are offered no tools");
    }

    [Fact]
    public async Task An_agent_unfolds_into_turns_and_the_effects_they_call()
    {
        var steps = new Scripted(Calls("fs_read", "fs_write"), Calls("fs_read"), Answer("done"));

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Path.Should().Equal("agent/model-1", "agent/effect-1-1", "agent/effect-1-2", "agent/model-2", "agent/effect-2-1", "agent/model-3");
        steps.Effects.Select(e => (e.NodeId, e.Capability, e.Parent)).Should().Equal(
            ("agent/effect-1-1", "fs/read", "agent/model-1"), ("agent/effect-1-2", "fs/write", "agent/model-1"), ("agent/effect-2-1", "fs/read", "agent/model-2"));
        steps.Models[1].Parents.Should().Equal("agent/effect-1-1", "agent/effect-1-2");
        steps.Models[0].ToolNames.Should().Equal("fs_read", "fs_write");
    }

    [Fact]
    public async Task The_request_tools_narrow_the_offer_and_anything_else_is_denied()
    {
        var steps = new Scripted(Calls("fs_write"));

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request with { Tools = ["fs/read"] }, steps, CancellationToken.None);

        steps.Models[0].ToolNames.Should().Equal("fs_read");
        result.Failure!.Code.Should().Be("capability_denied");
        steps.Denied.Select(d => d.NodeId).Should().Equal("agent/effect-1-1");
        steps.Effects.Should().BeEmpty();
    }

    [Fact]
    public async Task A_turn_with_one_forbidden_call_runs_none_of_its_calls()
    {
        var steps = new Scripted(Calls("fs_write", "fs_delete"));

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Failure!.Code.Should().Be("capability_denied");
        result.Failure.Message.Should().Contain("fs_delete").And.Contain("None of this turn's calls ran");
        steps.Effects.Should().BeEmpty("the allowed fs_write comes first in the turn, and still must not run");
        steps.Denied.Select(d => d.NodeId).Should().Equal("agent/effect-1-2");
    }

    [Theory]
    [InlineData("fs_delete")]
    [InlineData("process_run")]
    public async Task A_function_that_is_not_an_offered_capability_is_denied(string function)
    {
        var steps = new Scripted(Calls(function));

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Failure!.Code.Should().Be("capability_denied");
    }

    [Fact]
    public async Task Of_a_turns_gated_calls_only_the_approved_run_with_the_approved_arguments_and_a_rejection_reaches_the_model()
    {
        var steps = new Scripted(Calls("fs_write", "fs_write", "fs_read"), Answer("done"));
        var edited = JsonSerializer.SerializeToElement(new { path = "y" });
        steps.Gates["agent/effect-1-1"] = new ApprovalCheckpoint(ApprovalCheckpoint.Rejected, "apr_1", Summary: "rejected by dave");
        steps.Gates["agent/effect-1-2"] = new ApprovalCheckpoint(ApprovalCheckpoint.Approved, "apr_2", edited);

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Failure.Should().BeNull();
        steps.Effects.Select(e => (e.NodeId, e.Parent, e.ApprovalId, e.Call.Arguments.GetRawText())).Should().Equal(
            ("agent/effect-1-2", "agent/approval-1-2", "apr_2", edited.GetRawText()), ("agent/effect-1-3", "agent/model-1", null, """{"path":"x"}"""));
        var told = steps.Models[1].Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>().ToList();
        told.Should().HaveCount(3);
        told[0].Result!.ToString().Should().Contain("approval_rejected").And.Contain("rejected by dave");
    }

    [Theory]
    [InlineData(ApprovalCheckpoint.Pending, "awaiting_approval")]
    [InlineData(ApprovalCheckpoint.TimedOut, "approval_timeout")]
    [InlineData(ApprovalCheckpoint.Rejected, "approval_rejected")]
    public async Task A_turn_with_a_call_still_waiting_timed_out_or_all_rejected_runs_none(string verdict, string code)
    {
        var steps = new Scripted(Calls("fs_write", "fs_write"));
        steps.Gates["agent/effect-1-1"] = new ApprovalCheckpoint(verdict, "apr_1", Summary: "what was asked");
        if (verdict == ApprovalCheckpoint.Rejected)
            steps.Gates["agent/effect-1-2"] = new ApprovalCheckpoint(verdict, "apr_2", Summary: "the other");

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Failure!.Code.Should().Be(code);
        result.Failure.Message.Should().Contain("what was asked");
        steps.Effects.Should().BeEmpty();
    }

    [Fact]
    public async Task An_agent_that_keeps_calling_tools_stops_at_the_step_limit()
    {
        var steps = new Scripted(Calls("fs_read"), Calls("fs_read"), Calls("fs_read"), Calls("fs_read"));

        var result = await WorkflowWalk.RunAsync(Policy(new PolicyNode { Id = "agent", Kind = "agent" }), Request, steps, CancellationToken.None);

        result.Failure!.Code.Should().Be("step_limit_exceeded");
        steps.Models.Should().HaveCount(3);
    }

    [Theory]
    [InlineData("""{"intent":"x","nodes":[{"id":"a","kind":"model"}],"capabilities":["fs/delete"]}""", "capability 'fs/delete'")]
    [InlineData("""{"intent":"x","nodes":[{"id":"a","kind":"agent"}]}""", "needs 'capabilities'")]
    [InlineData("""{"intent":"x","nodes":[{"id":"a/b","kind":"model"}]}""", "without '/'")]
    [InlineData("""{"intent":"x","nodes":[{"id":"a","kind":"model"},{"id":"a","kind":"model"}]}""", "repeats")]
    [InlineData("""{"intent":"x","nodes":[]}""", "at least one node")]
    [InlineData("""{"intent":"x","routing":{"strategy":"fastest"},"nodes":[{"id":"a","kind":"model"}]}""", "routing.strategy")]
    [InlineData("""{"intent":"x","maxSteps":0,"nodes":[{"id":"a","kind":"model"}]}""", "maxSteps")]
    [InlineData("""{"intent":"x","nodes":[{"id":"a","kind":"effect"}]}""", "kind 'effect'")]
    public void Broken_policies_are_refused_with_the_reason(string json, string reason)
    {
        var parse = () => IntentCatalog.Parse(json);

        parse.Should().Throw<InvalidDataException>().WithMessage($"*{reason}*");
    }

    [Fact]
    public void A_policy_carries_the_hash_of_its_exact_text()
    {
        var a = IntentCatalog.Parse("""{"intent":"x","nodes":[{"id":"a","kind":"model","prompt":"p"}]}""");
        var b = IntentCatalog.Parse("""{"intent":"x","nodes":[{"id":"a","kind":"model","prompt":"q"}]}""");

        a.ContentHash.Should().MatchRegex("^[0-9a-f]{64}$").And.NotBe(b.ContentHash);
    }
}
