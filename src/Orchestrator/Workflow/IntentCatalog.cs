using System.Collections.Frozen;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Orchestrator.Workflow;

/// <summary>Section <c>Orchestrator:Workflow</c>.</summary>
public sealed class WorkflowOptions
{
    public const string Section = "Orchestrator:Workflow";

    /// <summary>Folder of intent policies (<c>*.json</c>); relative paths resolve against the content root, then the app folder.</summary>
    public string PoliciesPath { get; set; } = "policies";

    /// <summary>The intent of a request that names none.</summary>
    public string DefaultIntent { get; set; } = "text/respond";
}

/// <summary>
/// The intent policies in force. The shipped files are read at start-up (a broken policy file stops start-up naming the
/// file); after that the stable policies of the store's artifacts are published here (Rollout), so a new stable version is
/// in force without a restart.
/// </summary>
public sealed class IntentCatalog
{
    volatile FrozenDictionary<string, IntentPolicy> _policies;

    public IntentCatalog(IOptions<WorkflowOptions> options, IHostEnvironment environment)
    {
        var folder = ResolveFolder(options.Value.PoliciesPath, environment.ContentRootPath);
        var policies = new Dictionary<string, IntentPolicy>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal))
        {
            var policy = Load(file);
            if (!policies.TryAdd(policy.Intent, policy))
                throw new OptionsValidationException(WorkflowOptions.Section, typeof(WorkflowOptions),
                    [$"Intent '{policy.Intent}' is defined twice (again in {file})."]);
        }
        // The OpenAI-compatible endpoint's intent is part of the service, not of the operator's folder; a file may still
        // define it (its deadline, its routing) and then wins.
        Shipped = [.. policies.Values];
        policies.TryAdd(ChatIntent.Name, Parse(ChatIntent.Policy));
        DefaultIntent = options.Value.DefaultIntent;
        if (!policies.ContainsKey(DefaultIntent))
            throw new OptionsValidationException(WorkflowOptions.Section, typeof(WorkflowOptions),
                [$"Orchestrator:Workflow:DefaultIntent is '{DefaultIntent}', but no policy in {folder} defines it."]);
        _policies = policies.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public string DefaultIntent { get; }

    /// <summary>The policies of the shipped files, as read at start-up (they become version <c>v1</c> of the policies artifact).</summary>
    public IReadOnlyList<IntentPolicy> Shipped { get; }

    /// <summary>Puts a new set of policies in force (the stable version of the policies artifact); the chat intent stays built in.</summary>
    public void Publish(IEnumerable<IntentPolicy> policies)
    {
        var next = new Dictionary<string, IntentPolicy>(StringComparer.Ordinal);
        foreach (var policy in policies)
            next[policy.Intent] = policy;
        if (!next.ContainsKey(ChatIntent.Name) && _policies.TryGetValue(ChatIntent.Name, out var chat))
            next[ChatIntent.Name] = chat;
        if (!next.ContainsKey(DefaultIntent))
            return;
        _policies = next.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public IEnumerable<IntentPolicy> All => _policies.Values;

    public IntentPolicy? Find(string intent) => _policies.GetValueOrDefault(intent);

    /// <summary>Reads and checks one policy file; the replay command uses it for <c>--policy</c>.</summary>
    public static IntentPolicy Load(string file)
    {
        try
        {
            return Parse(File.ReadAllText(file));
        }
        catch (InvalidDataException error)
        {
            throw Invalid(file, error.Message);
        }
    }

    /// <summary>Reads and checks a policy from its JSON text; <see cref="InvalidDataException"/> says what is wrong.</summary>
    public static IntentPolicy Parse(string text)
    {
        IntentPolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize(text, WorkflowJson.Default.IntentPolicy);
        }
        catch (JsonException error)
        {
            throw new InvalidDataException($"is not valid policy JSON at {error.Path}: {error.Message}");
        }
        if (policy is null)
            throw new InvalidDataException("is empty.");
        var problems = PolicyRules.Check(policy);
        if (problems.Count > 0)
            throw new InvalidDataException(string.Join(" ", problems));
        return policy with { ContentHash = Hashes.Of(text), Source = text };
    }

    static OptionsValidationException Invalid(string file, string message) =>
        new(WorkflowOptions.Section, typeof(WorkflowOptions), [$"Policy file {file} {message}"]);

    static string ResolveFolder(string path, string contentRoot)
    {
        if (Path.IsPathRooted(path))
            return Directory.Exists(path) ? path : throw Missing(path);
        foreach (var root in new[] { contentRoot, AppContext.BaseDirectory })
        {
            var candidate = Path.GetFullPath(Path.Combine(root, path));
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw Missing(path);
    }

    static OptionsValidationException Missing(string path) =>
        new(WorkflowOptions.Section, typeof(WorkflowOptions),
            [$"Orchestrator:Workflow:PoliciesPath '{path}' is not a folder (looked in the content root and the app folder)."]);
}

/// <summary>The intent every <c>/v1/chat/completions</c> call is recorded as: one model node asked the caller's conversation.</summary>
public static class ChatIntent
{
    public const string Name = "chat/completions";

    /// <summary>The node the call is recorded as.</summary>
    public const string Node = "chat";

    internal const string Policy = """
        {
          "intent": "chat/completions",
          "version": "1",
          "description": "An OpenAI-compatible chat completion: the caller's conversation, functions and settings, one model call.",
          "deadlineMs": 300000,
          "capabilities": [],
          "nodes": [ { "id": "chat", "kind": "model", "role": "chat" } ]
        }
        """;
}
