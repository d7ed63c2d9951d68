using System.Text.RegularExpressions;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// The rule a blocked effect names. It travels in the error message's last words, <c>(rule sandbox.cpu)</c>, which the
/// node and the job already store, so the job view, the graph and a sync act's problem can show it as a field.
/// </summary>
public static partial class BlockRules
{
    public static string? Of(string code, string? message) =>
        code is Problems.SandboxViolation or Problems.CapabilityDenied && message is not null && Suffix().Match(message) is { Success: true } match
            ? match.Groups[1].Value
            : null;

    [GeneratedRegex(@"\(rule ([A-Za-z0-9_.\-]+)\)$")]
    private static partial Regex Suffix();
}
