using System.Security.Claims;
using System.Reflection;

namespace Orchestrator.Tenancy;

/// <summary>Who is calling: the tenant, the principal and whether it may act as an operator.</summary>
public sealed record Caller(string Tenant, string Principal, bool IsOperator)
{
    /// <summary>Every role of the key (<c>user</c>, <c>operator</c>, <c>approver</c>, <c>auditor</c>).</summary>
    public IReadOnlyList<string> Roles { get; init; } = [Tenancy.Roles.User];

    public bool Has(string role) => IsOperator || Roles.Contains(role);

    /// <summary>Binds from the authenticated user; endpoints that take a Caller require authentication.</summary>
    public static ValueTask<Caller?> BindAsync(HttpContext context, ParameterInfo parameter) =>
        ValueTask.FromResult(From(context.User));

    public static Caller? From(ClaimsPrincipal user) => (user.Identity as CallerIdentity)?.Caller;

    /// <summary>True when this caller may see data of <paramref name="tenant"/>.</summary>
    public bool CanSee(string tenant) => IsOperator || tenant == Tenant;
}

/// <summary>The identity an API key authenticates as; it carries the <see cref="Caller"/> so binding is a cast.</summary>
internal sealed class CallerIdentity : ClaimsIdentity
{
    public CallerIdentity(Caller caller, IEnumerable<string> roles)
        : base(ApiKeyAuthentication.SchemeName, ClaimTypes.Name, ClaimTypes.Role)
    {
        Caller = caller;
        AddClaim(new Claim(ClaimTypes.Name, caller.Principal));
        AddClaim(new Claim("tenant", caller.Tenant));
        foreach (var role in roles)
            AddClaim(new Claim(ClaimTypes.Role, role));
    }

    public Caller Caller { get; }
}
