using System.Security.Cryptography;

namespace Orchestrator.Console;

/// <summary>
/// The console's stylesheet and script, embedded in the service's assembly: served the same from <c>dotnet run</c>, a
/// published folder and a test host, and never from anywhere else (no CDN, no web fonts). Their URLs carry a content
/// hash, so they are cached for good and a new build is fetched at once.
/// </summary>
internal static class ConsoleAssets
{
    sealed record Asset(byte[] Bytes, string ContentType, string Hash);

    static readonly Dictionary<string, Asset> Assets = new(StringComparer.Ordinal)
    {
        ["console.css"] = Load("console.css", "text/css; charset=utf-8"),
        ["console.js"] = Load("console.js", "text/javascript; charset=utf-8"),
    };

    public static string Css { get; } = UrlOf("console.css");

    public static string Js { get; } = UrlOf("console.js");

    static string UrlOf(string name) => $"{ConsoleSetup.Root}/assets/{name}?v={Assets[name].Hash}";

    static Asset Load(string name, string contentType)
    {
        using var stream = typeof(ConsoleAssets).Assembly.GetManifestResourceStream("Orchestrator.Console.Assets." + name)
            ?? throw new InvalidOperationException($"The console asset {name} is not embedded in the service.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        return new Asset(bytes, contentType, Convert.ToHexStringLower(SHA256.HashData(bytes))[..12]);
    }

    public static IResult Serve(string name, HttpContext http)
    {
        if (!Assets.TryGetValue(name, out var asset))
            return Results.NotFound();
        http.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(asset.Bytes, asset.ContentType);
    }
}
