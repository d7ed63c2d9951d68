using System.Security.Cryptography;
using System.Text;

namespace Orchestrator.Workflow;

/// <summary>Content hashes of what a run depended on (policy files, prompts), so a replay knows exactly which versions decided it.</summary>
internal static class Hashes
{
    public static string Of(string content) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));

    /// <summary>The prompts of a policy (role and prompt of every node), hashed: prompts can change while the rest stays.</summary>
    public static string OfPrompts(IntentPolicy policy) =>
        Of(string.Join("\n", policy.Nodes.Select(n => $"{n.Id}|{n.Role}|{n.Prompt}")));
}
