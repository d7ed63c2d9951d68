using Orchestrator.Tenancy;

namespace Orchestrator.Approvals;

/// <summary>
/// A tenant's own approval rules (<c>approvals.rules</c> in its document) as the rules the configuration gives: the same
/// fields, the same checks, limited to that tenant's calls. Durations are milliseconds on the wire (<c>timeoutMs</c>,
/// <c>afterMs</c>), as everywhere in the HTTP contract.
/// </summary>
internal static class TenantApprovalRules
{
    /// <summary>Every node holds every tenant's rules in memory; this keeps one document small.</summary>
    public const int MaxRules = 50;

    /// <summary>Longer than any job may live: a timeout past it means a mistake, not a policy.</summary>
    static readonly long MaxMs = (long)TimeSpan.FromDays(365).TotalMilliseconds;

    public const string NamePrefix = "tenant/";

    /// <summary>The rule's name as approvals show it: <c>tenant/</c> and its own name (or <c>rules/N</c>), so it never meets a configured one.</summary>
    public static string NameOf(TenantApprovalRule rule, int index) => NamePrefix + (rule.Name ?? $"rules/{index}");

    public static ApprovalRuleOptions ToOptions(string tenant, TenantApprovalRule rule, int index) => new()
    {
        Name = NameOf(rule, index),
        Capability = rule.Capability,
        Risk = rule.Risk,
        PathGlob = rule.PathGlob,
        Hosts = [.. rule.Hosts ?? []],
        Program = [.. rule.Program ?? []],
        Tenants = [tenant],
        Approvers = Approvers(rule.Approvers),
        Required = rule.Required ?? 1,
        Timeout = rule.TimeoutMs is { } timeout ? TimeSpan.FromMilliseconds(Math.Clamp(timeout, 0, MaxMs)) : TimeSpan.FromHours(1),
        Escalation = [.. (rule.Escalation ?? []).Select(e => new EscalationOptions
        {
            After = TimeSpan.FromMilliseconds(Math.Clamp(e?.AfterMs ?? 0, 0, MaxMs)),
            Approvers = Approvers(e?.Approvers),
        })],
        AllowSelfApproval = rule.AllowSelfApproval ?? false,
    };

    static ApproverOptions Approvers(TenantApprovers? approvers) => new()
    {
        Roles = [.. approvers?.Roles ?? []],
        Principals = [.. approvers?.Principals ?? []],
    };

    /// <summary>
    /// A configuration path below a rule as the JSON path of the document's field: <c>Escalation:0:After</c> is
    /// <c>escalation[0].afterMs</c>, <c>Timeout</c> is <c>timeoutMs</c>.
    /// </summary>
    internal static string FieldOf(string configurationPath)
    {
        var path = "";
        foreach (var part in configurationPath.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(part, out var index))
            {
                path += $"[{index}]";
                continue;
            }
            var name = char.ToLowerInvariant(part[0]) + part[1..];
            path += (path.Length == 0 ? "" : ".") + (name is "timeout" or "after" ? name + "Ms" : name);
        }
        return path;
    }
}

/// <summary>Refuses a tenant document whose approval rules could not be evaluated, with one field error per problem.</summary>
internal sealed class TenantApprovalRulesCheck : ITenantDocumentCheck
{
    public void Check(TenantDocument document, IDictionary<string, string[]> errors)
    {
        if (document.Approvals?.Rules is not { } rules)
            return;
        if (rules.Count > TenantApprovalRules.MaxRules)
        {
            errors["approvals.rules"] = [$"A tenant may have at most {TenantApprovalRules.MaxRules} approval rules ({rules.Count} given)."];
            return;
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < rules.Count; i++)
        {
            var at = $"approvals.rules[{i}]";
            void Error(string field, string message)
            {
                var key = field.Length == 0 ? at : $"{at}.{field}";
                errors[key] = errors.TryGetValue(key, out var held) ? [.. held, message] : [message];
            }
            if (rules[i] is not { } rule)
            {
                Error("", "Give the rule as an object.");
                continue;
            }
            if (rule.Name is { } name && (name.Length is 0 or > 100 || name.Any(char.IsControl)))
                Error("name", "A rule's name is 1 to 100 printable characters.");
            else if (!names.Add(TenantApprovalRules.NameOf(rule, i)))
                Error("name", $"Another rule of this tenant is named '{rule.Name}'; approvals name the rule that fired, so names are unique.");
            if (rule.Escalation?.Any(e => e is null) == true)
                Error("escalation", "Give each escalation step as an object.");
            if (rule.Approvers?.Principals?.FirstOrDefault(p => p is not null && !Identifiers.IsPrincipal(p)) is not null)
                Error("approvers.principals", Identifiers.PrincipalRule);
            // The same checks as a configured rule, so a tenant's rule is never one that fails at run time.
            ApprovalsOptionsValidator.CheckRule(TenantApprovalRules.ToOptions("-", rule, i),
                (field, message) => Error(TenantApprovalRules.FieldOf(field), message.Replace("Capability", "capability", StringComparison.Ordinal)));
        }
    }
}
