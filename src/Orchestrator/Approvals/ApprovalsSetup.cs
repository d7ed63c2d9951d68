using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Approvals;

internal static class ApprovalsSetup
{
    public static WebApplicationBuilder AddApprovals(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddJson(ApprovalsJson.Default);
        services.AddOptions<ApprovalsOptions>().BindConfiguration(ApprovalsOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ApprovalsOptions>, ApprovalsOptionsValidator>();
        services.AddSingleton<ApprovalRules>();
        services.AddSingleton<Tenancy.ITenantDocumentCheck, TenantApprovalRulesCheck>();
        services.AddSingleton<ApprovalStore>();
        services.AddSingleton<ApprovalSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<ApprovalSweeper>());
        services.AddHttpClient(ApprovalWebhookSender.ClientName);
        services.AddHostedService<ApprovalWebhookSender>();
        return builder;
    }
}
