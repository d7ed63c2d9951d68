using System.Collections.Frozen;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Tenancy;

/// <summary>
/// Authenticates <c>X-Api-Key</c> (or <c>Authorization: Bearer</c>) against <c>Orchestrator:ApiKeys</c>.
/// Keys are looked up in a frozen map built once; each key's principal is built once and shared.
/// </summary>
internal sealed class ApiKeyAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyDirectory directory,
    IProblemDetailsService problems,
    AuditTrail audit)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string Header = "X-Api-Key";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = ReadKey(Request);
        if (key is null)
            return AuthenticateResult.NoResult();
        return await directory.FindAsync(key) is { } ticket
            ? AuthenticateResult.Success(ticket)
            : AuthenticateResult.Fail("Unknown API key.");
    }

    static string? ReadKey(HttpRequest request)
    {
        if (request.Headers.TryGetValue(Header, out var apiKey) && apiKey.Count > 0 && !string.IsNullOrEmpty(apiKey[0]))
            return apiKey[0];
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : null;
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(StatusCodes.Status401Unauthorized, Problems.Unauthorized,
            ReadKey(Request) is null
                ? $"Send an API key in the {Header} header (or Authorization: Bearer)."
                : "The API key is not known.");

    /// <summary>A key without the role an endpoint needs: refused, and on record (who tried what).</summary>
    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        const string Needs = "This API key lacks the role this needs: 'operator' for operator endpoints; 'user' (or 'operator') to act and read jobs.";
        if (Caller.From(Context.User) is { } caller)
            await audit.RecordAsync(caller, "access.denied", $"{Request.Method} {Request.Path}", allowed: false, Needs);
        await WriteProblemAsync(StatusCodes.Status403Forbidden, Problems.Forbidden, Needs);
    }

    async Task WriteProblemAsync(int status, string code, string detail)
    {
        Response.StatusCode = status;
        if (status == StatusCodes.Status401Unauthorized)
            Response.Headers.WWWAuthenticate = $"{SchemeName} header=\"{Header}\", Bearer";
        var problem = new ProblemDetails { Status = status, Detail = detail };
        problem.Extensions["code"] = code;
        await problems.WriteAsync(new ProblemDetailsContext { HttpContext = Context, ProblemDetails = problem });
    }
}

/// <summary>The configured keys, indexed once at start-up, then the keys managed through the API.</summary>
internal sealed class ApiKeyDirectory(IOptions<ApiKeyOptions> options, ManagedKeys managed)
{
    readonly FrozenDictionary<string, AuthenticationTicket> _tickets = options.Value.ApiKeys.ToFrozenDictionary(
        entry => entry.Key,
        entry => TicketFor(entry.Tenant, entry.Principal, entry.Roles),
        StringComparer.Ordinal);

    public ValueTask<AuthenticationTicket?> FindAsync(string key) =>
        _tickets.TryGetValue(key, out var ticket) ? ValueTask.FromResult<AuthenticationTicket?>(ticket) : managed.FindAsync(key);

    /// <summary>The authenticated principal of a key; each key's is built once and shared by its requests.</summary>
    internal static AuthenticationTicket TicketFor(string tenant, string principal, IReadOnlyList<string> keyRoles)
    {
        var roles = keyRoles.Count == 0 ? [Roles.User] : keyRoles.Distinct().ToList();
        var caller = new Caller(tenant, principal, roles.Contains(Roles.Operator)) { Roles = roles };
        return new AuthenticationTicket(new ClaimsPrincipal(new CallerIdentity(caller, roles)), ApiKeyAuthentication.SchemeName);
    }
}
