using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Orchestrator.Gateway;
using Orchestrator.Tenancy;

namespace Orchestrator.Replay;

/// <summary>
/// Takes secrets out of a replay package before anyone sees it: the values of every configured key (API
/// keys of callers and of models, and the variables models read their keys from), anything that looks like
/// a bearer token or an <c>sk-</c> key, and the values of properties whose names say they hold a secret.
/// </summary>
internal sealed partial class Scrubber
{
    public const string Mark = "[scrubbed]";

    static readonly HashSet<string> SecretNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "apikey", "authorization", "password", "passwd", "secret", "clientsecret", "token", "accesstoken", "refreshtoken", "xapikey", "cookie",
    };

    readonly string[] _secrets;

    public Scrubber(IOptions<ApiKeyOptions> keys, IOptions<ModelOptions> models)
    {
        _secrets = keys.Value.ApiKeys.Select(k => k.Key)
            .Concat(models.Value.Models.Select(m => m.ApiKey))
            .Concat(models.Value.Models.Select(m => string.IsNullOrWhiteSpace(m.ApiKeyEnv) ? null : Environment.GetEnvironmentVariable(m.ApiKeyEnv)))
            .OfType<string>()
            .Where(s => s.Length >= 8)
            .Distinct()
            .OrderByDescending(s => s.Length)
            .ToArray();
    }

    public JsonNode? Scrub(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, value) in obj.ToList())
                {
                    var clean = IsSecretName(name) && value is JsonValue ? JsonValue.Create(Mark) : Scrub(value);
                    if (!ReferenceEquals(clean, value))
                        obj[name] = clean;
                }
                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    var clean = Scrub(array[i]);
                    if (!ReferenceEquals(clean, array[i]))
                        array[i] = clean;
                }
                return array;
            case JsonValue value when value.TryGetValue<string>(out var text):
                var scrubbed = ScrubText(text);
                return ReferenceEquals(scrubbed, text) ? value : JsonValue.Create(scrubbed);
            default:
                return node;
        }
    }

    public string ScrubText(string text)
    {
        var result = text;
        foreach (var secret in _secrets)
            if (result.Contains(secret, StringComparison.Ordinal))
                result = result.Replace(secret, Mark, StringComparison.Ordinal);
        return TokenShapes().IsMatch(result) ? TokenShapes().Replace(result, Mark) : result;
    }

    static bool IsSecretName(string name) => SecretNames.Contains(name.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal));

    [GeneratedRegex(@"\bsk-[A-Za-z0-9_\-]{12,}|\b[Bb]earer\s+[A-Za-z0-9\-._~+/]{8,}=*")]
    private static partial Regex TokenShapes();
}
