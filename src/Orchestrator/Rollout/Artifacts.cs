using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Gateway;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>The three artifact kinds and how each is written (doc/rollout.md).</summary>
public static class ArtifactKinds
{
    public const string Prompts = "prompts";
    public const string Policies = "policies";
    public const string Routing = "routing";

    public static readonly string[] All = [Prompts, Policies, Routing];

    public static bool IsKnown(string kind) => All.Contains(kind);

    /// <summary><c>v3</c> (or <c>3</c>) to 3; null when it is not a version name.</summary>
    public static int? ParseVersion(string? name)
    {
        if (name is null)
            return null;
        var digits = name.StartsWith('v') ? name[1..] : name;
        return int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0 ? n : null;
    }

    public static string Name(int number) => $"v{number}";
}

/// <summary>
/// One artifact version, read: a policies version holds intent policies by intent; a prompts version the prompt of
/// each node by intent; a routing version the routing (strategy, models, hedge) by intent.
/// </summary>
internal sealed record Artifact(string Kind, int Number, string Hash, string Content)
{
    public IReadOnlyDictionary<string, IntentPolicy> Policies { get; init; } = new Dictionary<string, IntentPolicy>();
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Prompts { get; init; } = new Dictionary<string, IReadOnlyDictionary<string, string>>();
    public IReadOnlyDictionary<string, PolicyRouting> Routing { get; init; } = new Dictionary<string, PolicyRouting>();

    public string Version => ArtifactKinds.Name(Number);
}

/// <summary>Reads and checks artifact content; every problem is a field error (<c>validation_failed</c>).</summary>
internal static class ArtifactContent
{
    const int MaxPrompt = 50_000;

    /// <summary>Comments and trailing commas are read as the policy files allow them; the canonical text has neither.</summary>
    public static readonly JsonDocumentOptions Reading = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static JsonNode? Parse(string text) => JsonNode.Parse(text, documentOptions: Reading);

    /// <summary>The canonical text of a JSON body (compact, as written): what is stored and hashed.</summary>
    public static string Canonical(JsonNode node) => node.ToJsonString();

    /// <summary>The shipped files as artifact content: every policy; every node prompt; every intent's routing.</summary>
    public static string ShippedPolicies(IEnumerable<IntentPolicy> shipped) =>
        Canonical(new JsonObject { ["policies"] = new JsonArray([.. shipped.OrderBy(p => p.Intent, StringComparer.Ordinal).Select(p => Parse(p.Source))]) });

    public static string ShippedPrompts(IEnumerable<IntentPolicy> shipped)
    {
        var prompts = new JsonObject();
        foreach (var policy in shipped.OrderBy(p => p.Intent, StringComparer.Ordinal))
        {
            var nodes = new JsonObject();
            foreach (var node in policy.Nodes.Where(n => n.Prompt is not null))
                nodes[node.Id] = node.Prompt;
            if (nodes.Count > 0)
                prompts[policy.Intent] = nodes;
        }
        return Canonical(new JsonObject { ["prompts"] = prompts });
    }

    public static string ShippedRouting(IEnumerable<IntentPolicy> shipped)
    {
        var routing = new JsonObject();
        foreach (var policy in shipped.OrderBy(p => p.Intent, StringComparer.Ordinal))
        {
            var entry = new JsonObject();
            if (policy.Routing.Strategy is not null)
                entry["strategy"] = policy.Routing.Strategy;
            if (policy.Routing.Models is { } models)
                entry["models"] = new JsonArray([.. models.Select(m => JsonValue.Create(m))]);
            entry["hedge"] = policy.Routing.Hedge;
            routing[policy.Intent] = entry;
        }
        return Canonical(new JsonObject { ["routing"] = routing });
    }

    /// <summary>
    /// Reads stored or posted content. <paramref name="stable"/>: the policies in force, which prompts and routing must
    /// name (null when reading back what is stored: it was checked when created). <paramref name="shipped"/>: policies read
    /// from the shipped files, kept as they are (their file's hash) when a version holds them unchanged.
    /// </summary>
    public static Artifact Read(string kind, int number, string content, Dictionary<string, string[]> errors,
        IReadOnlyList<CatalogModel>? models, IReadOnlyDictionary<string, IntentPolicy>? stable, IReadOnlyDictionary<string, IntentPolicy>? shipped,
        string? defaultIntent = null)
    {
        var hash = Hashes.Of(content);
        var artifact = new Artifact(kind, number, hash, content);
        JsonNode? root;
        try
        {
            root = Parse(content);
        }
        catch (JsonException error)
        {
            errors[kind] = [$"is not JSON: {error.Message}"];
            return artifact;
        }
        if (root is not JsonObject body || body[kind] is not { } section)
        {
            errors[kind] = [$"A {kind} artifact is an object with a '{kind}' member (see doc/rollout.md)."];
            return artifact;
        }
        // Its hash is the whole text's: a member nothing reads would make a new version that changes nothing.
        foreach (var (name, _) in body)
            if (name != kind)
                errors[name.Length > 100 ? name[..100] : name] = [$"A {kind} artifact holds only its '{kind}' member; '{(name.Length > 100 ? name[..100] + "..." : name)}' is not one."];
        return kind switch
        {
            ArtifactKinds.Policies => artifact with { Policies = ReadPolicies(section, errors, models, shipped, defaultIntent) },
            ArtifactKinds.Prompts => artifact with { Prompts = ReadPrompts(section, errors, stable) },
            _ => artifact with { Routing = ReadRouting(section, errors, models, stable) },
        };
    }

    static Dictionary<string, IntentPolicy> ReadPolicies(JsonNode section, Dictionary<string, string[]> errors,
        IReadOnlyList<CatalogModel>? models, IReadOnlyDictionary<string, IntentPolicy>? shipped, string? defaultIntent)
    {
        var policies = new Dictionary<string, IntentPolicy>(StringComparer.Ordinal);
        if (section is not JsonArray list || list.Count == 0)
        {
            errors["policies"] = ["'policies' must be a non-empty array of intent policies (as the shipped policy files)."];
            return policies;
        }
        for (var i = 0; i < list.Count; i++)
        {
            var text = list[i]?.ToJsonString() ?? "null";
            IntentPolicy policy;
            try
            {
                policy = shipped?.GetValueOrDefault(text) ?? IntentCatalog.Parse(text);
            }
            catch (InvalidDataException error)
            {
                errors[$"policies[{i}]"] = [error.Message];
                continue;
            }
            if (!policies.TryAdd(policy.Intent, policy))
                errors[$"policies[{i}].intent"] = [$"Intent '{policy.Intent}' is defined twice."];
            if (models is not null && policy.Routing.Models is { } named && UnknownModels(named, models) is { } unknown)
                errors[$"policies[{i}].routing.models"] = [unknown];
        }
        if (defaultIntent is not null && errors.Count == 0 && !policies.ContainsKey(defaultIntent))
            errors["policies"] = [$"The default intent '{defaultIntent}' (Orchestrator:Workflow:DefaultIntent) must have a policy."];
        return policies;
    }

    static Dictionary<string, IReadOnlyDictionary<string, string>> ReadPrompts(JsonNode section, Dictionary<string, string[]> errors,
        IReadOnlyDictionary<string, IntentPolicy>? stable)
    {
        var prompts = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        if (section is not JsonObject intents)
        {
            errors["prompts"] = ["'prompts' must be an object: intent -> { node id -> prompt }."];
            return prompts;
        }
        foreach (var (intent, value) in intents)
        {
            var policy = stable?.GetValueOrDefault(intent);
            if (stable is not null && policy is null)
            {
                errors[$"prompts.{intent}"] = [$"Unknown intent '{intent}'; the policies in force define: {string.Join(", ", stable.Keys.Order(StringComparer.Ordinal))}."];
                continue;
            }
            if (value is not JsonObject nodes)
            {
                errors[$"prompts.{intent}"] = ["Must be an object: node id -> prompt."];
                continue;
            }
            var read = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (node, prompt) in nodes)
            {
                if (policy is not null && policy.Nodes.All(n => n.Id != node))
                    errors[$"prompts.{intent}.{node}"] = [$"Intent '{intent}' has no node '{node}'; its nodes: {string.Join(", ", policy.Nodes.Select(n => n.Id))}."];
                else if (prompt is not JsonValue v || !v.TryGetValue<string>(out var text) || string.IsNullOrWhiteSpace(text) || text.Length > MaxPrompt || text.Contains('\0'))
                    errors[$"prompts.{intent}.{node}"] = [$"A prompt is a non-empty string of at most {MaxPrompt} characters without NUL."];
                else
                    read[node] = text;
            }
            prompts[intent] = read;
        }
        return prompts;
    }

    static Dictionary<string, PolicyRouting> ReadRouting(JsonNode section, Dictionary<string, string[]> errors,
        IReadOnlyList<CatalogModel>? models, IReadOnlyDictionary<string, IntentPolicy>? stable)
    {
        var routing = new Dictionary<string, PolicyRouting>(StringComparer.Ordinal);
        if (section is not JsonObject intents)
        {
            errors["routing"] = ["'routing' must be an object: intent -> { strategy?, models?, hedge? }."];
            return routing;
        }
        foreach (var (intent, value) in intents)
        {
            var at = $"routing.{intent}";
            if (stable is not null && !stable.ContainsKey(intent))
            {
                errors[at] = [$"Unknown intent '{intent}'; the policies in force define: {string.Join(", ", stable.Keys.Order(StringComparer.Ordinal))}."];
                continue;
            }
            if (value is not JsonObject entry)
            {
                errors[at] = ["Must be an object: { strategy?, models?, hedge? }."];
                continue;
            }
            var read = new PolicyRouting();
            foreach (var (name, field) in entry)
            {
                switch (name)
                {
                    case "strategy" when field is JsonValue s && s.TryGetValue<string>(out var strategy):
                        if (!RoutingStrategies.IsKnown(strategy))
                            errors[$"{at}.strategy"] = [$"strategy must be one of {string.Join(", ", RoutingStrategies.All)}."];
                        read.Strategy = strategy;
                        break;
                    case "hedge" when field is JsonValue h && h.TryGetValue<bool>(out var hedge):
                        read.Hedge = hedge;
                        break;
                    case "models" when field is JsonArray list:
                        var ids = list.Select(m => m is JsonValue mv && mv.TryGetValue<string>(out var id) ? id : "").ToList();
                        if (ids.Count == 0)
                            errors[$"{at}.models"] = ["models, when given, must name at least one model."];
                        else if (models is not null && UnknownModels(ids, models) is { } unknown)
                            errors[$"{at}.models"] = [unknown];
                        read.Models = ids;
                        break;
                    default:
                        errors[$"{at}.{name}"] = ["Not a routing field (strategy: string, models: array of model ids, hedge: boolean)."];
                        break;
                }
            }
            routing[intent] = read;
        }
        return routing;
    }

    static string? UnknownModels(IReadOnlyList<string> named, IReadOnlyList<CatalogModel> models)
    {
        var unknown = named.Where(m => models.All(c => c.Id != m)).ToList();
        return unknown.Count == 0 ? null : $"Unknown model(s): {string.Join(", ", unknown)}; see GET /v1/models.";
    }

    /// <summary>
    /// The policy of <paramref name="intent"/> in <paramref name="policies"/> with the prompts and routing of the other two
    /// versions applied; the policy itself (its own hash) when they change nothing. Null when the version lacks the intent.
    /// </summary>
    public static IntentPolicy? Compose(string intent, Artifact policies, Artifact prompts, Artifact routing)
    {
        if (policies.Policies.GetValueOrDefault(intent) is not { } policy)
            return null;
        var nodePrompts = prompts.Prompts.GetValueOrDefault(intent);
        var route = routing.Routing.GetValueOrDefault(intent);
        var promptsChange = nodePrompts is not null && policy.Nodes.Any(n => nodePrompts.TryGetValue(n.Id, out var p) && p != n.Prompt);
        var routingChange = route is not null && (
            (route.Strategy is not null && route.Strategy != policy.Routing.Strategy) || route.Hedge != policy.Routing.Hedge ||
            (route.Models is not null && !(policy.Routing.Models?.SequenceEqual(route.Models) ?? false)));
        if (!promptsChange && !routingChange)
            return policy;
        var composed = policy with
        {
            Nodes = [.. policy.Nodes.Select(n => nodePrompts is not null && nodePrompts.TryGetValue(n.Id, out var p) ? n with { Prompt = p } : n)],
            Routing = route is null ? policy.Routing : new PolicyRouting
            {
                Strategy = route.Strategy ?? policy.Routing.Strategy,
                Models = route.Models ?? policy.Routing.Models,
                Hedge = route.Hedge,
            },
        };
        return IntentCatalog.Parse(JsonSerializer.Serialize(composed, WorkflowJson.Default.IntentPolicy));
    }
}
