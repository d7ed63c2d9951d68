using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Orchestrator.Tenancy;

namespace Orchestrator.Console;

/// <summary>
/// The operator console at <c>/console</c>: server-rendered Razor components (static SSR), signed in with an API key held
/// in a cookie of its own scheme. The API's default scheme stays the API key, and every <c>/v1</c> policy names it, so the
/// console's cookie never authenticates a <c>/v1</c> call (no CSRF path into the API).
/// </summary>
internal static class ConsoleSetup
{
    public const string Scheme = "Console";

    /// <summary>Any signed-in key.</summary>
    public const string Policy = "console";

    /// <summary>As the API's <c>user</c> policy: reading and canceling jobs, replays.</summary>
    public const string UserPolicy = "console-user";

    /// <summary>As the API's <c>operator</c> policy.</summary>
    public const string OperatorPolicy = "console-operator";

    public const string Root = "/console";

    public static WebApplicationBuilder AddConsole(this WebApplicationBuilder builder)
    {
        builder.Services.AddRazorComponents();
        builder.AddConsoleKeys();
        builder.Services.AddAntiforgery(options =>
        {
            options.Cookie.Name = "orchestrator-console-antiforgery";
            options.Cookie.Path = Root;
            options.Cookie.SameSite = SameSiteMode.Strict;
            options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            options.FormFieldName = "__antiforgery";
        });
        builder.Services.AddAuthentication().AddCookie(Scheme, options =>
        {
            options.Cookie.Name = "orchestrator-console";
            options.Cookie.Path = Root;
            options.Cookie.HttpOnly = true;
            options.Cookie.SameSite = SameSiteMode.Strict;
            options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            options.LoginPath = Root + "/signin";
            options.LogoutPath = Root + "/signout";
            options.ReturnUrlParameter = "returnUrl";
            options.ExpireTimeSpan = TimeSpan.FromHours(8);
            // Not sliding: a renewed cookie would be written from the principal the key resolves to, without the key.
            options.SlidingExpiration = false;
            options.Events.OnValidatePrincipal = ConsoleSignIn.ValidateAsync;
            options.Events.OnRedirectToAccessDenied = ConsoleSignIn.DeniedAsync;
        });
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Policy, policy => policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser())
            .AddPolicy(UserPolicy, policy => policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser().RequireRole(Roles.User, Roles.Operator))
            .AddPolicy(OperatorPolicy, policy => policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser().RequireRole(Roles.Operator));
        return builder;
    }

    /// <summary>Antiforgery (after authentication and authorization, which set the user its tokens are bound to), the console's actions, assets and pages.</summary>
    public static WebApplication MapConsole(this WebApplication app)
    {
        app.UseAntiforgery();
        app.Use(ProtectPages);
        app.MapConsoleActions();
        app.MapRazorComponents<App>()
            .RequireAuthorization(Policy)
            .WithMetadata(new Microsoft.AspNetCore.Routing.ExcludeFromDescriptionAttribute());
        return app;
    }

    /// <summary>
    /// The console's pages load nothing from elsewhere and may not be framed (an approve button must not be clickjacked);
    /// inline style attributes only draw the timeline's bars.
    /// </summary>
    static Task ProtectPages(HttpContext http, RequestDelegate next)
    {
        if (http.Request.Path.StartsWithSegments(Root))
        {
            var headers = http.Response.Headers;
            headers.ContentSecurityPolicy =
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
                "frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
            headers.XFrameOptions = "DENY";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "same-origin";
        }
        return next(http);
    }
}

/// <summary>Sign-in with an API key, checked exactly as the API checks it, on sign-in and again on every request.</summary>
internal static class ConsoleSignIn
{
    /// <summary>The key itself, inside the cookie's ticket (encrypted and signed by data protection, HttpOnly).</summary>
    public const string KeyClaim = "orchestrator:console-key";

    public static async Task<Caller?> SignInAsync(HttpContext http, ApiKeyDirectory directory, string key)
    {
        if (await directory.FindAsync(key) is not { } ticket || Caller.From(ticket.Principal) is not { } caller)
            return null;
        var identity = new ClaimsIdentity(ConsoleSetup.Scheme, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(KeyClaim, key));
        identity.AddClaim(new Claim(ClaimTypes.Name, caller.Principal));
        identity.AddClaim(new Claim("tenant", caller.Tenant));
        foreach (var role in caller.Roles)
            identity.AddClaim(new Claim(ClaimTypes.Role, role));
        await http.SignInAsync(ConsoleSetup.Scheme, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = false });
        return caller;
    }

    /// <summary>
    /// Every request resolves the cookie's key again through the API's own key directory: a revoked key stops here at once
    /// on the node that revoked it and within the propagation interval elsewhere; an expired key at its expiry. The request
    /// then runs as the key's principal, the same <see cref="Caller"/> an API call with that key gets.
    /// </summary>
    public static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var key = context.Principal?.FindFirst(KeyClaim)?.Value;
        var directory = context.HttpContext.RequestServices.GetRequiredService<ApiKeyDirectory>();
        if (key is null || await directory.FindAsync(key) is not { } ticket)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(ConsoleSetup.Scheme);
            return;
        }
        context.ReplacePrincipal(ticket.Principal);
    }

    /// <summary>A page or action the key's roles do not allow: 403, on record as the API records it.</summary>
    public static async Task DeniedAsync(RedirectContext<CookieAuthenticationOptions> context)
    {
        var http = context.HttpContext;
        const string Needs = "This key lacks the role this needs: 'operator' for operator pages; 'user' (or 'operator') to read jobs.";
        if (Caller.From(http.User) is { } caller)
            await http.RequestServices.GetRequiredService<AuditTrail>()
                .RecordAsync(caller, "access.denied", $"{http.Request.Method} {http.Request.Path}", allowed: false, Needs);
        http.Response.StatusCode = StatusCodes.Status403Forbidden;
        http.Response.ContentType = "text/html; charset=utf-8";
        await http.Response.WriteAsync(
            $"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Not for this key</title><link rel="stylesheet" href="{ConsoleAssets.Css}"></head><body><main class="page"><h1>Not for this key</h1><p>{System.Net.WebUtility.HtmlEncode(Needs)}</p><p><a href="{ConsoleSetup.Root}">Back to the console</a></p></main></body></html>""");
    }
}
