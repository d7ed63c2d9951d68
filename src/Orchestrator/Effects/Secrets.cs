using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>One configured secret (<c>Orchestrator:Secrets:N</c>) and whom it is granted to.</summary>
public sealed class SecretOptions
{
    public string Name { get; set; } = "";

    /// <summary>The value itself, or <see cref="Env"/>: the name of the service's environment variable holding it.</summary>
    public string? Value { get; set; }

    public string? Env { get; set; }

    /// <summary>Capabilities that may receive it (<c>process/run</c> for <c>env:</c>, <c>http/fetch</c> for <c>header:</c>).</summary>
    public List<string> Capabilities { get; set; } = [];

    /// <summary>Tenants it is granted to; <c>*</c> for all.</summary>
    public List<string> Tenants { get; set; } = [];

    /// <summary>Principals (of those tenants) it is granted to; empty for all of them.</summary>
    public List<string> Principals { get; set; } = [];

    /// <summary>Hosts a <c>header:</c> secret may be sent to (exact names, or <c>*.example.com</c>).</summary>
    public List<string> Hosts { get; set; } = [];

    /// <summary><c>env:NAME</c> (an environment variable of the sandboxed process) or <c>header:NAME</c> (a request header).</summary>
    public string As { get; set; } = "";
}

internal enum SecretTarget { Environment, Header }

/// <summary>A secret handed to one effect call: where it goes (variable or header name) and its value.</summary>
internal sealed record GrantedSecret(string Name, string Target, string Value);

/// <summary>
/// The configured secrets. A call asks for secrets by name (argument <c>secrets</c>); each must be granted to the
/// call's capability, tenant, principal and (for headers) host, or the call fails closed <c>capability_denied</c>
/// with rule <c>secret.NAME</c>. Values never leave through an effect's answer: <see cref="Scrub"/> replaces them by
/// <c>[secret:NAME]</c> in every result, error and recorded output.
/// </summary>
internal sealed class SecretStore
{
    readonly List<(SecretOptions Options, string Value, SecretTarget Target, string To)> _secrets = [];
    readonly List<(string Find, string Replace)> _scrubs = [];

    public SecretStore(IOptions<List<SecretOptions>> options)
    {
        foreach (var secret in options.Value)
        {
            var value = secret.Value ?? Environment.GetEnvironmentVariable(secret.Env!) ?? "";
            var (target, to) = Parse(secret.As)!.Value;
            _secrets.Add((secret, value, target, to));
            var marker = $"[secret:{secret.Name}]";
            _scrubs.Add((value, marker));
            // Results are JSON text: a value with quotes, backslashes or non-ASCII characters appears escaped there.
            var encoded = JsonSerializer.Serialize(value, EffectJson.Options)[1..^1];
            if (encoded != value)
                _scrubs.Add((encoded, marker));
        }
        // Longest first, so a secret that contains another is replaced whole.
        _scrubs.Sort((a, b) => b.Find.Length.CompareTo(a.Find.Length));
    }

    public bool Any => _secrets.Count > 0;

    internal static (SecretTarget Target, string Name)? Parse(string @as) =>
        @as.StartsWith("env:", StringComparison.Ordinal) && @as.Length > 4 ? (SecretTarget.Environment, @as[4..])
        : @as.StartsWith("header:", StringComparison.OrdinalIgnoreCase) && @as.Length > 7 ? (SecretTarget.Header, @as[7..])
        : null;

    /// <summary>The names a call asks for: its <c>secrets</c> argument (an array of strings), or none.</summary>
    public static IReadOnlyList<string> Requested(JsonElement arguments)
    {
        if (arguments.ValueKind != JsonValueKind.Object || !arguments.TryGetProperty("secrets", out var list))
            return [];
        if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(s => s.ValueKind != JsonValueKind.String))
            throw new EffectRefusedException(Problems.EffectFailed, "'secrets' must be an array of secret names.");
        return list.EnumerateArray().Select(s => s.GetString()!).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The requested secrets, each granted to this call (and host), or <c>capability_denied</c> naming the first that is not.</summary>
    public IReadOnlyList<GrantedSecret> Grant(EffectCall call, IReadOnlyList<string> names, SecretTarget target, string? host)
    {
        var granted = new List<GrantedSecret>(names.Count);
        foreach (var name in names)
        {
            // One answer whether the secret is unknown or not granted: a caller learns nothing about others' secrets.
            var found = _secrets.FirstOrDefault(s => s.Options.Name == name);
            if (found.Options is null || found.Target != target || !IsGranted(found.Options, call, host))
                throw new EffectRefusedException(Problems.CapabilityDenied,
                    $"The secret '{name}' is not granted to {call.Capability} for this principal{(host is null ? "" : $" and host '{host}'")}.", $"secret.{name}");
            granted.Add(new GrantedSecret(name, found.To, found.Value));
        }
        return granted;
    }

    static bool IsGranted(SecretOptions secret, EffectCall call, string? host) =>
        secret.Capabilities.Contains(call.Capability, StringComparer.Ordinal)
        && (secret.Tenants.Contains("*") || secret.Tenants.Contains(call.Tenant, StringComparer.Ordinal))
        && (secret.Principals.Count == 0 || secret.Principals.Contains(call.Principal, StringComparer.Ordinal))
        && (host is null || secret.Hosts.Any(h => HostRules.Matches(h, host)));

    /// <summary>The text with every secret value replaced by <c>[secret:NAME]</c>.</summary>
    public string Scrub(string text)
    {
        foreach (var (find, replace) in _scrubs)
            text = text.Replace(find, replace, StringComparison.Ordinal);
        return text;
    }

    /// <summary>Checks <c>Orchestrator:Secrets</c> at start-up, naming the key that is wrong.</summary>
    internal static IEnumerable<string> ConfigurationErrors(List<SecretOptions> secrets)
    {
        for (var i = 0; i < secrets.Count; i++)
        {
            var s = secrets[i];
            var key = $"Orchestrator:Secrets:{i}";
            if (string.IsNullOrWhiteSpace(s.Name) || s.Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
                yield return $"{key}:Name must be letters, digits, '_', '-' or '.'.";
            if (secrets.Take(i).Any(o => o.Name == s.Name))
                yield return $"{key}:Name '{s.Name}' is configured twice.";
            if ((s.Value is null) == (s.Env is null))
                yield return $"{key}: give exactly one of Value or Env.";
            else if ((s.Value ?? Environment.GetEnvironmentVariable(s.Env!)) is not { Length: >= 4 })
                yield return s.Value is null
                    ? $"{key}:Env names '{s.Env}', which is not set (or shorter than 4 characters)."
                    : $"{key}:Value must be at least 4 characters (shorter values cannot be scrubbed from output).";
            if (Parse(s.As) is not { } target)
                yield return $"{key}:As must be 'env:NAME' or 'header:NAME'.";
            else if (target.Target == SecretTarget.Header && s.Hosts.Count == 0)
                yield return $"{key}:Hosts must name the hosts a header secret may be sent to.";
            if (s.Capabilities.Count == 0 || s.Capabilities.Any(c => !Effects.Capabilities.IsKnown(c)))
                yield return $"{key}:Capabilities must name known capabilities (e.g. process/run).";
            if (s.Tenants.Count == 0)
                yield return $"{key}:Tenants must name tenants ('*' for all).";
        }
    }
}

internal sealed class SecretsValidation : IValidateOptions<List<SecretOptions>>
{
    public ValidateOptionsResult Validate(string? name, List<SecretOptions> options) =>
        SecretStore.ConfigurationErrors(options).ToList() is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
