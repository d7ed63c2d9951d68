using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Orchestrator.Tenancy;

namespace Orchestrator.Approvals;

/// <summary>
/// What a rule that fired asks for, frozen into the approval when it is requested: later configuration changes do not
/// change who may decide a waiting approval (they do change its rule version, which the effect checks before it runs).
/// </summary>
public sealed record RuleSnapshot(
    string Name, IReadOnlyList<string> Roles, IReadOnlyList<string> Principals, int Required, long TimeoutMs,
    IReadOnlyList<EscalationSnapshot> Escalation, bool AllowSelfApproval, string? FailClosed = null);

public sealed record EscalationSnapshot(long AfterMs, IReadOnlyList<string> Roles, IReadOnlyList<string> Principals);

/// <summary>A call that must wait: the rule that fired, its version (a hash of its configuration), and what it asks.</summary>
internal sealed record ApprovalGate(string RuleVersion, RuleSnapshot Rule);

/// <summary>
/// Evaluates <c>Orchestrator:Approvals:Rules</c>, then the calling tenant's own rules (<c>approvals.rules</c> of its
/// document, as this node holds it), against one effect call, first match wins. The configured rules come first so a
/// tenant's document can add gates but never loosen one the deployment configured. A rule whose argument condition
/// cannot be evaluated on a call (no path, a path that climbs out with <c>..</c>, a URL that does not parse, no argv)
/// fails closed: the call waits for an operator (the rule's own approvers are not enough), once, under the rule's timeout.
/// </summary>
internal sealed class ApprovalRules(IOptions<ApprovalsOptions> options, TenantDirectory tenants)
{
    sealed record Compiled(ApprovalRuleOptions Options, string Name, string Version, Regex? Glob);

    readonly IReadOnlyList<Compiled> _configured = options.Value.Rules.Select((r, i) => (Rule: r, Index: i)).Where(r => r.Rule.Enabled)
        .Select(r => Compile(r.Rule, r.Rule.Name ?? $"rules/{r.Index}")).ToList();

    /// <summary>Each tenant's rules compiled once per version of its document.</summary>
    readonly ConcurrentDictionary<string, (long Version, IReadOnlyList<Compiled> Rules)> _tenants = new(StringComparer.Ordinal);

    /// <summary>Whether any rule could fire for this capability (so a call of another one need not look for its approval).</summary>
    public bool MayGate(string tenant, string capability) => _configured.Concat(TenantRules(tenant))
        .Any(r => r.Options.Capability is not { } pattern || CapabilityPattern.Matches(pattern, capability));

    /// <summary>The gate for this call, or null when no rule fires.</summary>
    public ApprovalGate? Evaluate(string tenant, string capability, string risk, JsonElement arguments)
    {
        foreach (var (rule, name, version, glob) in _configured.Concat(TenantRules(tenant)))
        {
            if (rule.Capability is { } pattern && !CapabilityPattern.Matches(pattern, capability))
                continue;
            if (rule.Risk is { } wanted && wanted != risk)
                continue;
            if (rule.Tenants.Count > 0 && !rule.Tenants.Contains(tenant))
                continue;
            var (matches, unknown) = Conditions(rule, glob, arguments);
            if (!matches && unknown is null)
                continue;
            var snapshot = unknown is null
                ? new RuleSnapshot(name, rule.Approvers.Roles, rule.Approvers.Principals, rule.Required, (long)rule.Timeout.TotalMilliseconds,
                    rule.Escalation.Select(e => new EscalationSnapshot((long)e.After.TotalMilliseconds, e.Approvers.Roles, e.Approvers.Principals)).ToList(),
                    rule.AllowSelfApproval)
                : new RuleSnapshot(name, [], [], 1, (long)rule.Timeout.TotalMilliseconds, [], false, unknown);
            return new ApprovalGate(version, snapshot);
        }
        return null;
    }

    /// <summary>The version the rule named <paramref name="name"/> has now for <paramref name="tenant"/>; null when no rule has that name any more.</summary>
    public string? VersionOf(string tenant, string name)
    {
        var rules = name.StartsWith(TenantApprovalRules.NamePrefix, StringComparison.Ordinal) ? TenantRules(tenant) : _configured;
        return rules.FirstOrDefault(r => r.Name == name)?.Version;
    }

    IReadOnlyList<Compiled> TenantRules(string tenant)
    {
        var document = tenants.Find(tenant);
        if (document.Approvals?.Rules is not { Count: > 0 } rules)
            return [];
        if (_tenants.TryGetValue(tenant, out var held) && held.Version == document.Version)
            return held.Rules;
        // A document that reached the store passed the same checks as configured rules (TenantApprovalRulesCheck).
        var compiled = rules.Select((r, i) => Compile(TenantApprovalRules.ToOptions(tenant, r, i), TenantApprovalRules.NameOf(r, i))).ToList();
        _tenants[tenant] = (document.Version, compiled);
        return compiled;
    }

    static Compiled Compile(ApprovalRuleOptions rule, string name) =>
        new(rule, name, Version(rule), rule.PathGlob is { } glob ? GlobRegex(glob) : null);

    /// <summary>Whether the call meets the rule's argument conditions; <c>unknown</c> says why they cannot be evaluated.</summary>
    static (bool Matches, string? Unknown) Conditions(ApprovalRuleOptions rule, Regex? glob, JsonElement arguments)
    {
        if (glob is not null)
        {
            if (Text(arguments, "path") is not { } path || Normalize(path) is not { } normal)
                return (false, "the rule's PathGlob cannot be checked: the call has no path inside the workspace");
            if (!glob.IsMatch(normal))
                return (false, null);
        }
        if (rule.Hosts.Count > 0)
        {
            if (Text(arguments, "url") is not { } url || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
                return (false, "the rule's Hosts cannot be checked: the call has no URL with a host");
            var host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
            if (!rule.Hosts.Any(h => HostMatches(h.ToLowerInvariant(), host)))
                return (false, null);
        }
        if (rule.Program.Count > 0)
        {
            if (arguments.ValueKind != JsonValueKind.Object || !arguments.TryGetProperty("argv", out var argv) || argv.ValueKind != JsonValueKind.Array ||
                argv.GetArrayLength() == 0 || argv[0].ValueKind != JsonValueKind.String || argv[0].GetString() is not { Length: > 0 } program)
                return (false, "the rule's Program cannot be checked: the call has no argv[0]");
            if (!rule.Program.Any(p => p == program || p == Path.GetFileName(program)))
                return (false, null);
        }
        return (true, null);
    }

    static string? Text(JsonElement arguments, string name) =>
        arguments.ValueKind == JsonValueKind.Object && arguments.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    static bool HostMatches(string pattern, string host) =>
        pattern.StartsWith("*.", StringComparison.Ordinal) ? host.EndsWith(pattern[1..], StringComparison.Ordinal) : pattern == host;

    /// <summary>A workspace path as the rule sees it: <c>/</c>-separated, no <c>.</c> or empty parts; null if it climbs out.</summary>
    internal static string? Normalize(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Replace('\\', '/').Split('/'))
        {
            if (part is "" or ".")
                continue;
            if (part == "..")
            {
                if (parts.Count == 0)
                    return null;
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    /// <summary><c>**</c> any folders, <c>*</c> within one folder, <c>?</c> one character; matched against the normalized path.</summary>
    internal static Regex GlobRegex(string glob)
    {
        var pattern = new StringBuilder("^");
        var normal = glob.Replace('\\', '/').TrimStart('/');
        for (var i = 0; i < normal.Length; i++)
        {
            var c = normal[i];
            if (c == '*' && i + 1 < normal.Length && normal[i + 1] == '*')
            {
                // "**/" also matches no folder at all.
                var slash = i + 2 < normal.Length && normal[i + 2] == '/';
                pattern.Append(slash ? "(.*/)?" : ".*");
                i += slash ? 2 : 1;
            }
            else if (c == '*')
                pattern.Append("[^/]*");
            else if (c == '?')
                pattern.Append("[^/]");
            else
                pattern.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(pattern.Append('$').ToString(), RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
    }

    static string Version(ApprovalRuleOptions rule) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(rule, ApprovalsJson.Default.ApprovalRuleOptions)));
}

/// <summary>Arguments as an approval shows and binds them: canonical JSON (keys sorted, no spaces), secrets masked for people.</summary>
internal static class ApprovalArguments
{
    static readonly Regex SecretName = new("(secret|password|passwd|token|api[-_]?key|authorization|credential|private[-_]?key)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));

    public const string Mask = "***";

    public static string Canonical(JsonElement arguments) => Sorted(JsonNode.Parse(arguments.GetRawText()), mask: false)?.ToJsonString() ?? "null";

    public static string Masked(JsonElement arguments) => Sorted(JsonNode.Parse(arguments.GetRawText()), mask: true)?.ToJsonString() ?? "null";

    static JsonNode? Sorted(JsonNode? node, bool mask) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
            KeyValuePair.Create(p.Key, mask && SecretName.IsMatch(p.Key) ? JsonValue.Create(Mask) : Sorted(p.Value?.DeepClone(), mask)))),
        JsonArray a => new JsonArray(a.Select(v => Sorted(v?.DeepClone(), mask)).ToArray()),
        _ => node?.DeepClone(),
    };

    /// <summary>The binding: what was approved, for which job and node, under which rule version.</summary>
    public static string Binding(string capability, string canonicalArguments, string jobId, string nodeId, string ruleVersion) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Join('\u001f', capability, canonicalArguments, jobId, nodeId, ruleVersion))));
}
