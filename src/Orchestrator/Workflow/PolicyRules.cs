using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Memory;

namespace Orchestrator.Workflow;

/// <summary>What makes a policy well-formed; shared by the catalog and by rerun with an edited policy.</summary>
public static class PolicyRules
{
    public const int MaxSteps = 100;

    public static List<string> Check(IntentPolicy policy)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(policy.Intent) || policy.Intent.Length > 100)
            problems.Add("'intent' must be 1-100 characters.");
        if (policy.DeadlineMs <= 0)
            problems.Add("'deadlineMs' must be positive.");
        if (policy.MaxSteps is < 1 or > MaxSteps)
            problems.Add($"'maxSteps' must be between 1 and {MaxSteps}.");
        if (policy.MaxOutputTokens is < 1 or > 1_000_000)
            problems.Add("'maxOutputTokens' must be between 1 and 1000000.");
        if (policy.Routing.Strategy is not null && !RoutingStrategies.IsKnown(policy.Routing.Strategy))
            problems.Add($"'routing.strategy' is '{policy.Routing.Strategy}'; it must be one of {string.Join(", ", RoutingStrategies.All)}.");
        foreach (var capability in policy.Capabilities)
            if (!Capabilities.IsKnown(capability))
                problems.Add($"capability '{capability}' is not an effect; known: {string.Join(", ", Capabilities.All)}.");
        if (policy.Memory is { } memory)
            problems.AddRange(MemoryPolicyRules.Check(memory));
        if (policy.Nodes is not { Count: > 0 })
            problems.Add("'nodes' must list at least one node.");
        else
        {
            var ids = new HashSet<string>(StringComparer.Ordinal);
            foreach (var node in policy.Nodes)
            {
                if (string.IsNullOrWhiteSpace(node.Id) || node.Id.IndexOfAny(['/', '#', ',']) >= 0 || node.Id.Length > 100)
                    problems.Add($"node id '{node.Id}' must be 1-100 characters without '/', '#' or ','.");
                else if (!ids.Add(node.Id))
                    problems.Add($"node id '{node.Id}' repeats.");
                if (node.Kind is not (NodeKinds.Model or NodeKinds.Agent))
                    problems.Add($"node '{node.Id}' has kind '{node.Kind}'; policy nodes are 'model' or 'agent'.");
                if (node.Kind == NodeKinds.Agent && policy.Capabilities.Count == 0)
                    problems.Add($"agent node '{node.Id}' needs 'capabilities' to offer its model.");
                if (node.Requires is { MinQuality: < 0 or > 1 })
                    problems.Add($"node '{node.Id}' requires.minQuality must be between 0 and 1.");
            }
        }
        return problems;
    }
}
