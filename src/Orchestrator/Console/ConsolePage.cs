using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Components;
using Orchestrator.Tenancy;

namespace Orchestrator.Console;

/// <summary>What every console page shares: the request, the signed-in caller, and how values are written.</summary>
public abstract class ConsolePage : ComponentBase
{
    [CascadingParameter]
    public HttpContext? HttpContext { get; set; }

    [Inject]
    internal TimeProvider Time { get; set; } = default!;

    [Inject]
    internal Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> JsonOptions { get; set; } = default!;

    protected HttpContext Http => HttpContext ?? throw new InvalidOperationException("Console pages render on the server only.");

    /// <summary>The signed-in key's caller (the page's policy requires one).</summary>
    protected Caller Caller => Caller.From(Http.User) ?? throw new InvalidOperationException("The console page has no signed-in caller.");

    protected CancellationToken Aborted => Http.RequestAborted;

    protected DateTime Now => Time.GetUtcNow().UtcDateTime;

    /// <summary>Sets the page's status (404 for a missing job, 403 for a refused read) before rendering starts.</summary>
    protected void SetStatus(int status)
    {
        if (!Http.Response.HasStarted)
            Http.Response.StatusCode = status;
    }

    protected static string When(DateTime? at) =>
        at is { } t ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "—";

    protected static string Iso(DateTime? at) =>
        at is { } t ? t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture) : "";

    protected static string Ms(long? ms) => ms switch
    {
        null => "—",
        < 1000 => $"{ms} ms",
        < 60_000 => (ms.Value / 1000.0).ToString("0.0", CultureInfo.InvariantCulture) + " s",
        _ => (ms.Value / 60_000.0).ToString("0.0", CultureInfo.InvariantCulture) + " min",
    };

    protected static string Num(double? value, string format = "0.##") =>
        value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "—";

    protected static string Usd(decimal? value) =>
        value is { } v ? "$" + v.ToString("0.######", CultureInfo.InvariantCulture) : "—";

    /// <summary>The host's own JSON (its serializer contexts), indented for reading.</summary>
    protected string Pretty<T>(T value)
    {
        var options = new JsonSerializerOptions(JsonOptions.Value.SerializerOptions) { WriteIndented = true };
        return JsonSerializer.Serialize(value, options);
    }

    protected static string PrettyElement(JsonElement? element) =>
        element is { } e ? JsonSerializer.Serialize(e, ConsoleJson.Default.JsonElement) : "";

    /// <summary>A page's own URL with some query values replaced (null removes one).</summary>
    protected string With(params (string Key, string? Value)[] changes)
    {
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(Http.Request.QueryString.Value)
            .ToDictionary(q => q.Key, q => (string?)q.Value.ToString(), StringComparer.Ordinal);
        foreach (var (key, value) in changes)
            query[key] = value;
        var kept = query.Where(q => !string.IsNullOrEmpty(q.Value)).Select(q => $"{Uri.EscapeDataString(q.Key)}={Uri.EscapeDataString(q.Value!)}");
        var text = string.Join("&", kept);
        return Http.Request.Path + (text.Length > 0 ? "?" + text : "");
    }

    /// <summary>A <c>datetime-local</c> value (read as UTC) or an ISO time; null when empty, false when unreadable.</summary>
    protected static bool TryTime(string? text, out DateTime? at)
    {
        at = null;
        if (string.IsNullOrWhiteSpace(text))
            return true;
        if (!DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
            return false;
        at = DateTime.SpecifyKind(parsed, DateTimeKind.Utc);
        return true;
    }

    protected static string Badge(string status) => "badge badge-" + status.Replace('_', '-');
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(JsonElement))]
internal sealed partial class ConsoleJson : System.Text.Json.Serialization.JsonSerializerContext
{
}
