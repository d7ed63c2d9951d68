using Microsoft.Extensions.Options;

namespace Orchestrator.Approvals;

/// <summary>Section <c>Orchestrator:Approvals</c>: which effects wait for a person, who decides, and the webhook.</summary>
public sealed class ApprovalsOptions
{
    public const string Section = "Orchestrator:Approvals";

    /// <summary>In order; the first rule that matches a call fires. No rules: no effect waits.</summary>
    public List<ApprovalRuleOptions> Rules { get; set; } = [];

    public ApprovalWebhookOptions Webhook { get; set; } = new();

    /// <summary>How often every node looks for approvals that timed out, escalate, or whose job can go on.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>One rule: what it matches (all given conditions must hold) and how its approval is decided.</summary>
public sealed class ApprovalRuleOptions
{
    /// <summary>How the approval names the rule; <c>rules/N</c> when not given.</summary>
    public string? Name { get; set; }

    /// <summary>False drops the rule (e.g. the shipped <c>db-writes</c> rule, which configuration cannot delete). Not part of its version.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Enabled { get; set; } = true;

    /// <summary>A capability (<c>fs/write</c>), a family (<c>fs/*</c>) or <c>*</c>.</summary>
    public string? Capability { get; set; }

    /// <summary><c>read-only</c>, <c>idempotent-write</c> or <c>non-idempotent</c>: the call's risk class (API.md, Effects).</summary>
    public string? Risk { get; set; }

    /// <summary>For <c>fs/*</c>: the call's workspace path matches this glob (<c>*</c> within a folder, <c>**</c> across folders).</summary>
    public string? PathGlob { get; set; }

    /// <summary>For <c>http/fetch</c>: the URL's host is one of these (<c>*.example.com</c> matches its subdomains).</summary>
    public List<string> Hosts { get; set; } = [];

    /// <summary>For <c>process/run</c>: <c>argv[0]</c> (or its file name) is one of these.</summary>
    public List<string> Program { get; set; } = [];

    /// <summary>Only calls of these tenants; empty: every tenant.</summary>
    public List<string> Tenants { get; set; } = [];

    /// <summary>Who may decide, besides operators.</summary>
    public ApproverOptions Approvers { get; set; } = new();

    /// <summary>How many different people must approve; one rejection rejects.</summary>
    public int Required { get; set; } = 1;

    /// <summary>From the request to <c>timed_out</c>.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After each step's <c>After</c> (from the request) its approvers may decide too.</summary>
    public List<EscalationOptions> Escalation { get; set; } = [];

    /// <summary>Whether the principal whose job asked may decide its own approval.</summary>
    public bool AllowSelfApproval { get; set; }
}

public sealed class ApproverOptions
{
    public List<string> Roles { get; set; } = [];
    public List<string> Principals { get; set; } = [];
}

public sealed class EscalationOptions
{
    public TimeSpan After { get; set; }
    public ApproverOptions Approvers { get; set; } = new();
}

/// <summary><c>Orchestrator:Approvals:Webhook</c>: a signed POST on every request, escalation and decision.</summary>
public sealed class ApprovalWebhookOptions
{
    public string? Url { get; set; }

    /// <summary>The HMAC-SHA256 key (at least 16 characters).</summary>
    public string? Secret { get; set; }

    /// <summary>Tries before a delivery is given up (and shown as failed).</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary>Backoff before the second try; doubled for each next one, up to <see cref="MaxDelay"/>.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Bad rules stop start-up naming the key: a rule that could never be evaluated must not be found at run time.</summary>
internal sealed class ApprovalsOptionsValidator : IValidateOptions<ApprovalsOptions>
{
    public static readonly string[] Risks = ["read-only", "idempotent-write", "non-idempotent"];

    static readonly string[] KnownRoles = [Tenancy.Roles.Approver, Tenancy.Roles.Operator, Tenancy.Roles.User, Tenancy.Roles.Auditor];

    public ValidateOptionsResult Validate(string? name, ApprovalsOptions options)
    {
        var errors = new List<string>();
        void Error(string key, string message) => errors.Add($"{ApprovalsOptions.Section}:{key}: {message}");
        if (options.SweepInterval <= TimeSpan.Zero)
            Error("SweepInterval", "must be a positive duration.");
        for (var i = 0; i < options.Rules.Count; i++)
        {
            var key = $"Rules:{i}";
            CheckRule(options.Rules[i], (field, message) => Error(field.Length == 0 ? key : $"{key}:{field}", message));
        }
        var webhook = options.Webhook;
        if (webhook.Url is { Length: > 0 } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                Error("Webhook:Url", "must be an absolute http or https URL.");
            if (webhook.Secret is not { Length: >= 16 })
                Error("Webhook:Secret", "a webhook needs a secret of at least 16 characters to sign with.");
        }
        if (webhook.MaxAttempts < 1)
            Error("Webhook:MaxAttempts", "must be at least 1.");
        if (webhook.BaseDelay <= TimeSpan.Zero || webhook.MaxDelay < webhook.BaseDelay || webhook.Timeout <= TimeSpan.Zero)
            Error("Webhook", "BaseDelay and Timeout must be positive and MaxDelay at least BaseDelay.");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// One rule's errors, each with its field as a configuration path below the rule (<c>PathGlob</c>,
    /// <c>Escalation:0:After</c>; empty for the rule as a whole): shared by configured rules and tenants' rules.
    /// </summary>
    public static void CheckRule(ApprovalRuleOptions rule, Action<string, string> error)
    {
        if (string.IsNullOrWhiteSpace(rule.Capability) && string.IsNullOrWhiteSpace(rule.Risk))
            error("", "a rule needs a Capability or a Risk.");
        if (rule.Capability is { } capability && !CapabilityPattern.IsValid(capability))
            error("Capability", $"'{capability}' is no capability ({string.Join(", ", Effects.Capabilities.All)}), family (fs/*) or *.");
        if (rule.Risk is { } risk && !Risks.Contains(risk))
            error("Risk", $"'{risk}' is none of {string.Join(", ", Risks)}.");
        if (rule.PathGlob is not null && (string.IsNullOrWhiteSpace(rule.PathGlob) || !CapabilityPattern.Covers(rule.Capability, "fs/")))
            error("PathGlob", "needs a glob and a Capability of fs/*.");
        if (rule.Hosts.Count > 0 && (rule.Hosts.Any(string.IsNullOrWhiteSpace) || rule.Capability != Effects.Capabilities.HttpFetch))
            error("Hosts", "needs host names and Capability http/fetch.");
        if (rule.Program.Count > 0 && (rule.Program.Any(string.IsNullOrWhiteSpace) || rule.Capability != Effects.Capabilities.ProcessRun))
            error("Program", "needs program names and Capability process/run.");
        if (rule.Required is < 1 or > 20)
            error("Required", "must be from 1 to 20.");
        if (rule.Timeout <= TimeSpan.Zero)
            error("Timeout", "must be a positive duration.");
        if (rule.Approvers.Roles.Concat(rule.Approvers.Principals).Any(string.IsNullOrWhiteSpace))
            error("Approvers", "roles and principals must not be empty.");
        foreach (var role in rule.Approvers.Roles.Concat(rule.Escalation.SelectMany(e => e.Approvers.Roles)).Where(r => !KnownRoles.Contains(r)))
            error("Approvers", $"role '{role}' is none of {string.Join(", ", KnownRoles)}.");
        var after = TimeSpan.Zero;
        for (var m = 0; m < rule.Escalation.Count; m++)
        {
            var step = rule.Escalation[m];
            if (step.After <= after || step.After >= rule.Timeout)
                error($"Escalation:{m}:After", "must be later than the step before it and earlier than the rule's Timeout.");
            if (step.Approvers.Roles.Count + step.Approvers.Principals.Count == 0 ||
                step.Approvers.Roles.Concat(step.Approvers.Principals).Any(string.IsNullOrWhiteSpace))
                error($"Escalation:{m}:Approvers", "an escalation step names the roles or principals it adds.");
            after = step.After;
        }
    }
}

/// <summary>A rule's <c>Capability</c>: exact, a family (<c>fs/*</c>) or every one (<c>*</c>).</summary>
internal static class CapabilityPattern
{
    public static bool IsValid(string pattern) =>
        pattern == "*" || Effects.Capabilities.IsKnown(pattern) ||
        (pattern.EndsWith("/*", StringComparison.Ordinal) && Effects.Capabilities.All.Any(c => c.StartsWith(pattern[..^1], StringComparison.Ordinal)));

    public static bool Matches(string pattern, string capability) =>
        pattern == "*" || pattern == capability || (pattern.EndsWith("/*", StringComparison.Ordinal) && capability.StartsWith(pattern[..^1], StringComparison.Ordinal));

    /// <summary>Whether every capability the pattern matches starts with <paramref name="prefix"/>.</summary>
    public static bool Covers(string? pattern, string prefix) =>
        pattern is not null && pattern != "*" && pattern.StartsWith(prefix, StringComparison.Ordinal);
}
