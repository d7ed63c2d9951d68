using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Tenancy;

internal static class TenancySetup
{
    public const string OperatorPolicy = "operator";

    /// <summary>Acting and reading jobs: the <c>user</c> role (a key with no role has it) or <c>operator</c>; an auditor-only or approver-only key may not.</summary>
    public const string UserPolicy = "user";

    public static WebApplicationBuilder AddTenancy(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ApiKeyOptions>().Bind(builder.Configuration.GetSection("Orchestrator")).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ApiKeyOptions>, ApiKeyOptionsValidator>();
        builder.Services.AddSingleton<ApiKeyDirectory>();
        builder.Services.AddOptions<TenancyOptions>().BindConfiguration("Orchestrator:Tenancy").ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<TenancyOptions>, TenancyOptionsValidator>();
        builder.Services.AddSingleton<TenantDirectory>();
        builder.Services.AddSingleton<ManagedKeys>();
        builder.Services.AddHostedService<TenancyRefresh>();
        builder.Services.AddJson(TenancyJson.Default);
        builder.Services.AddSingleton<AuditTrail>();
        builder.Services.AddSingleton<AuditVerifier>();
        builder.Services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .SetDefaultPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder(ApiKeyAuthentication.SchemeName)
                .RequireAuthenticatedUser().Build())
            .AddPolicy(UserPolicy, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthentication.SchemeName)
                .RequireAuthenticatedUser()
                .RequireRole(Roles.User, Roles.Operator))
            .AddPolicy(OperatorPolicy, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthentication.SchemeName)
                .RequireAuthenticatedUser()
                .RequireRole(Roles.Operator));
        return builder;
    }

    /// <summary>Bad defaults stop start-up naming the key, as a bad PUT would be refused.</summary>
    sealed class TenancyOptionsValidator : IValidateOptions<TenancyOptions>
    {
        public ValidateOptionsResult Validate(string? name, TenancyOptions options)
        {
            var errors = TenantDocumentRules.Check("defaults", options.Defaults.For("defaults"), []);
            return errors.Count == 0
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail(errors.Select(e => $"Orchestrator:Tenancy:Defaults ({e.Key}): {string.Join(" ", e.Value)}"));
        }
    }

    /// <summary>A service without keys answers every <c>/v1</c> call 401: say so once at start, where an operator looks.</summary>
    public static WebApplication WarnWithoutKeys(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<ApiKeyOptions>>().Value.ApiKeys.Count == 0)
            app.Logger.LogWarning(
                "No API keys are configured (Orchestrator:ApiKeys); every /v1 call will answer 401. Environment {Environment}, configuration read from {ContentRoot}",
                app.Environment.EnvironmentName, app.Environment.ContentRootPath);
        return app;
    }
}
