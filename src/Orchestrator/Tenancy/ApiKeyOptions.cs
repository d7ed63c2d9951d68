using Microsoft.Extensions.Options;

namespace Orchestrator.Tenancy;

/// <summary>One entry of <c>Orchestrator:ApiKeys</c>: a key and who it speaks for.</summary>
public sealed class ApiKeyEntry
{
    public string Key { get; set; } = "";
    public string Tenant { get; set; } = "";
    public string Principal { get; set; } = "";
    public List<string> Roles { get; set; } = [];
}

/// <summary>Section <c>Orchestrator</c>, key <c>ApiKeys</c>.</summary>
public sealed class ApiKeyOptions
{
    public List<ApiKeyEntry> ApiKeys { get; set; } = [];
}

internal sealed class ApiKeyOptionsValidator : IValidateOptions<ApiKeyOptions>
{
    static readonly HashSet<string> KnownRoles = [Roles.User, Roles.Operator, Roles.Approver, Roles.Auditor];

    public ValidateOptionsResult Validate(string? name, ApiKeyOptions options)
    {
        var failures = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.ApiKeys.Count; i++)
        {
            var entry = options.ApiKeys[i];
            var at = $"Orchestrator:ApiKeys:{i}";
            if (string.IsNullOrWhiteSpace(entry.Key))
                failures.Add($"{at}:Key is empty.");
            else if (entry.Key.Length < 16)
                failures.Add($"{at}:Key is shorter than 16 characters.");
            else if (!seen.Add(entry.Key))
                failures.Add($"{at}:Key repeats an earlier key.");
            if (!Identifiers.IsValid(entry.Tenant))
                failures.Add($"{at}:Tenant must be 1-100 characters of letters, digits, '-', '_' or '.'.");
            if (string.IsNullOrWhiteSpace(entry.Principal))
                failures.Add($"{at}:Principal is empty.");
            for (var r = 0; r < entry.Roles.Count; r++)
                if (!KnownRoles.Contains(entry.Roles[r]))
                    failures.Add($"{at}:Roles:{r} is '{entry.Roles[r]}'; roles are 'user', 'operator', 'approver' and 'auditor'.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

internal static class Identifiers
{
    /// <summary>What a field error says of a tenant that is not <see cref="IsValid"/>.</summary>
    public const string TenantRule = "A tenant is 1-100 characters of letters, digits, '-', '_' or '.'.";

    /// <summary>What a field error says of a principal that is not <see cref="IsPrincipal"/>.</summary>
    public const string PrincipalRule = "A principal is 1-200 characters, no control characters.";

    /// <summary>A principal names who acts: any text of 1-200 characters without control characters (the store keeps no NUL).</summary>
    public static bool IsPrincipal(string? value) => value is { Length: > 0 and <= 200 } && !string.IsNullOrWhiteSpace(value) && !value.Any(char.IsControl);

    /// <summary>Tenants name directories (effect workspaces), so they are kept to a safe alphabet.</summary>
    public static bool IsValid(string? value) =>
        value is { Length: > 0 and <= 100 } && value is not "." and not ".." &&
        value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}

public static class Roles
{
    public const string User = "user";
    public const string Operator = "operator";

    /// <summary>May decide approvals of its own tenant.</summary>
    public const string Approver = "approver";

    /// <summary>Reads the audit trail of its own tenant.</summary>
    public const string Auditor = "auditor";
}
