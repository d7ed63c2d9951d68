using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Orchestrator.Approvals;
using Orchestrator.Gateway;
using Orchestrator.Jobs;
using Orchestrator.Rollout;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Console;

/// <summary>
/// The console's form posts and its live stream. Each action calls the very handler the API maps (same checks, same
/// audit entries) with the signed-in key's <see cref="Caller"/>, then redirects back to the page (post/redirect/get) with
/// the outcome in a one-time notice. Every post binds its form, so antiforgery is checked before anything runs: a post
/// without the token is refused 400.
/// </summary>
internal static class ConsoleApi
{
    public static RouteGroupBuilder MapConsoleActions(this IEndpointRouteBuilder app)
    {
        var console = app.MapGroup(ConsoleSetup.Root).ExcludeFromDescription().RequireAuthorization(ConsoleSetup.Policy);
        console.MapGet("/assets/{name}", ConsoleAssets.Serve).AllowAnonymous();
        console.MapPost("/signin", SignIn).AllowAnonymous();
        console.MapPost("/signout", SignOut);
        console.MapGet("/jobs/{jobId}/events", Events).RequireAuthorization(ConsoleSetup.UserPolicy);
        console.MapPost("/jobs/{jobId}/cancel", Cancel).RequireAuthorization(ConsoleSetup.UserPolicy);
        console.MapPost("/approvals/{id}/approve", Approve);
        console.MapPost("/approvals/{id}/reject", Reject);
        console.MapPost("/models/{id}/quarantine", Quarantine).RequireAuthorization(ConsoleSetup.OperatorPolicy);
        console.MapPost("/models/{id}/release", Release).RequireAuthorization(ConsoleSetup.OperatorPolicy);
        console.MapPost("/rollouts/{kind}/candidate", SetCandidate).RequireAuthorization(ConsoleSetup.OperatorPolicy);
        console.MapPost("/rollouts/{kind}/promote", Promote).RequireAuthorization(ConsoleSetup.OperatorPolicy);
        console.MapPost("/rollouts/{kind}/rollback", Rollback).RequireAuthorization(ConsoleSetup.OperatorPolicy);
        return console;
    }

    static async Task<IResult> SignIn([FromForm] string? key, [FromForm] string? returnUrl, HttpContext http, ApiKeyDirectory directory, AuditTrail audit)
    {
        var caller = string.IsNullOrWhiteSpace(key) ? null : await ConsoleSignIn.SignInAsync(http, directory, key.Trim());
        if (caller is null)
        {
            Notice.Set(http, Notice.Error, "That key is not known here, or it was revoked or has expired.");
            return Results.Redirect(ConsoleSetup.Root + "/signin");
        }
        await audit.RecordAsync(caller, "console.signin", "console", allowed: true);
        return Results.Redirect(IsLocal(returnUrl) ? returnUrl! : ConsoleSetup.Root);
    }

    static bool IsLocal(string? url) =>
        url is { Length: > 1 } && url.StartsWith(ConsoleSetup.Root, StringComparison.Ordinal) && !url.StartsWith("//", StringComparison.Ordinal) && !url.Contains('\\');

    static async Task<IResult> SignOut(IFormCollection form, HttpContext http, Caller caller, AuditTrail audit)
    {
        await audit.RecordAsync(caller, "console.signout", "console", allowed: true);
        await Microsoft.AspNetCore.Authentication.AuthenticationHttpContextExtensions.SignOutAsync(http, ConsoleSetup.Scheme);
        Notice.Set(http, Notice.Info, "Signed out.");
        return Results.Redirect(ConsoleSetup.Root + "/signin");
    }

    /// <summary>The job's events, as <c>GET /v1/jobs/{id}/events</c> serves them, for the page's own script (same origin, the cookie).</summary>
    static Task<Results<ServerSentEventsResult<string>, ProblemHttpResult>> Events(
        string jobId, Caller caller, JobQueries queries, JobEvents events,
        [FromHeader(Name = "Last-Event-ID")] string? lastEventId, CancellationToken cancellationToken) =>
        JobsApi.Events(jobId, caller, queries, events, lastEventId, cancellationToken);

    static async Task<IResult> Cancel(
        string jobId, IFormCollection form, HttpContext http, Caller caller, JobQueries queries, JobQueue queue, RunningJobs running,
        JobExecution execution, StoreWriter writer, ParkedJobs parked, TimeProvider time, CancellationToken cancellationToken)
    {
        var result = await JobsApi.Cancel(jobId, caller, queries, queue, running, execution, writer, parked, time, cancellationToken);
        Notice.From(http, result.Result, "Cancel requested: the job stops at its next cancellation point.");
        return Results.Redirect($"{ConsoleSetup.Root}/jobs/{Uri.EscapeDataString(jobId)}");
    }

    static async Task<IResult> Approve(
        string id, IFormCollection form, HttpContext http, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        var reason = Text(form, "reason");
        JsonElement? arguments = null;
        if (Text(form, "arguments") is { } edited)
        {
            try
            {
                using var parsed = JsonDocument.Parse(edited);
                var original = Text(form, "original");
                // Unchanged arguments are not an edit: only a real change is sent (and audited as one).
                if (original is null || !JsonEquals(parsed.RootElement, original))
                    arguments = parsed.RootElement.Clone();
            }
            catch (JsonException)
            {
                Notice.Set(http, Notice.Error, "The arguments are not valid JSON; nothing was decided.");
                return Results.Redirect($"{ConsoleSetup.Root}/approvals#{id}");
            }
        }
        var result = await ApprovalsApi.Approve(id, new ApproveRequest(reason, arguments), caller, store, cancellationToken);
        Notice.From(http, result.Result, arguments is null ? $"Approved {id}." : $"Approved {id} with edited arguments.");
        return Results.Redirect($"{ConsoleSetup.Root}/approvals");
    }

    static async Task<IResult> Reject(
        string id, IFormCollection form, HttpContext http, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        var result = await ApprovalsApi.Reject(id, new RejectRequest(Text(form, "reason")), caller, store, cancellationToken);
        Notice.From(http, result.Result, $"Rejected {id}.");
        return Results.Redirect($"{ConsoleSetup.Root}/approvals");
    }

    static async Task<IResult> Quarantine(
        string id, IFormCollection form, HttpContext http, ModelGateway gateway, ModelControls controls, AuditTrail audit, Caller caller, CancellationToken cancellationToken)
    {
        var result = await ModelsApi.Quarantine(id, gateway, controls, audit, caller, cancellationToken);
        Notice.From(http, result.Result, $"Model {id} is quarantined.");
        return Results.Redirect($"{ConsoleSetup.Root}/models");
    }

    static async Task<IResult> Release(
        string id, IFormCollection form, HttpContext http, ModelGateway gateway, ModelControls controls, AuditTrail audit, Caller caller, CancellationToken cancellationToken)
    {
        var result = await ModelsApi.Release(id, gateway, controls, audit, caller, cancellationToken);
        Notice.From(http, result.Result, $"Model {id} is released.");
        return Results.Redirect($"{ConsoleSetup.Root}/models");
    }

    /// <summary>As <c>PUT /v1/admin/rollouts/{kind}</c> with the stable left as it is: the same checks, the same <c>rollout.update</c> entry.</summary>
    static async Task<IResult> SetCandidate(string kind, IFormCollection form, HttpContext http, Caller caller, RolloutService service, CancellationToken cancellationToken)
    {
        double? percent = null;
        if (Text(form, "percent") is { } text)
        {
            if (!double.TryParse(text.Trim().TrimEnd('%'), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var parsed))
                return RolloutRefused(http, kind, $"The percent '{text}' is not a number; nothing was changed.");
            percent = parsed;
        }
        var update = new RolloutUpdate(null, Text(form, "candidate"), Text(form, "mode"), percent, Text(form, "reason"));
        return await RolloutAsync(http, kind, () => service.SetAsync(kind, update, caller, cancellationToken),
            $"The {kind} candidate is {update.Candidate} ({update.Mode}).");
    }

    /// <summary>As <c>POST /v1/admin/rollouts/{kind}/promote</c>: refused (and audited as refused) without a passing evaluation unless forced.</summary>
    static Task<IResult> Promote(string kind, IFormCollection form, HttpContext http, Caller caller, RolloutService service, CancellationToken cancellationToken)
    {
        var force = Text(form, "force") is "true" or "on";
        return RolloutAsync(http, kind, () => service.PromoteAsync(kind, force, Text(form, "reason"), caller, cancellationToken),
            force ? $"The {kind} candidate is stable now (forced)." : $"The {kind} candidate is stable now.");
    }

    /// <summary>As <c>POST /v1/admin/rollouts/{kind}/rollback</c>: one step back; a second is a no-op, and says so.</summary>
    static Task<IResult> Rollback(string kind, IFormCollection form, HttpContext http, Caller caller, RolloutService service, CancellationToken cancellationToken) =>
        RolloutAsync(http, kind, () => service.RollbackAsync(kind, Text(form, "reason"), caller, cancellationToken),
            $"The {kind} rollout is rolled back.", $"Nothing to roll back in {kind}: nothing changed.");

    /// <summary>The API's kind check, then the service's outcome as the API would answer it (its validation errors, its problem's detail).</summary>
    static async Task<IResult> RolloutAsync(HttpContext http, string kind, Func<Task<RolloutOutcome>> change, string changed, string? unchanged = null)
    {
        if (!ArtifactKinds.IsKnown(kind))
            return RolloutRefused(http, kind, $"Unknown artifact kind '{kind}'; kinds: {string.Join(", ", ArtifactKinds.All)}.", anchor: false);
        var outcome = await change();
        if (outcome.Errors is { } errors)
            return RolloutRefused(http, kind, string.Join(" ", errors.SelectMany(e => e.Value)));
        if (!outcome.Done)
            return RolloutRefused(http, kind, outcome.Detail ?? "The change was refused.");
        Notice.Set(http, Notice.Info, outcome.WasChanged ? changed : unchanged ?? changed);
        return Results.Redirect($"{ConsoleSetup.Root}/rollouts#{kind}");
    }

    static IResult RolloutRefused(HttpContext http, string kind, string problem, bool anchor = true)
    {
        Notice.Set(http, Notice.Error, problem);
        return Results.Redirect($"{ConsoleSetup.Root}/rollouts" + (anchor ? "#" + kind : ""));
    }

    static string? Text(IFormCollection form, string name) =>
        form.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value.ToString()) ? value.ToString() : null;

    static bool JsonEquals(JsonElement edited, string original)
    {
        try
        {
            using var before = JsonDocument.Parse(original);
            return JsonElement.DeepEquals(edited, before.RootElement);
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>A one-time message for the next page (post/redirect/get), in a short-lived cookie of the console's path.</summary>
internal static class Notice
{
    public const string Info = "info";
    public const string Error = "error";
    const string Cookie = "orchestrator-console-notice";

    public static void Set(HttpContext http, string kind, string message) =>
        http.Response.Cookies.Append(Cookie, kind + ":" + Uri.EscapeDataString(message.Length > 600 ? message[..600] : message), new CookieOptions
        {
            Path = ConsoleSetup.Root, HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, MaxAge = TimeSpan.FromMinutes(1),
        });

    /// <summary>The action's answer: its problem's detail, or <paramref name="success"/>.</summary>
    public static void From(HttpContext http, IResult result, string success)
    {
        if (Outcome.ProblemOf(result) is { } problem)
            Set(http, Error, problem);
        else
            Set(http, Info, success);
    }

    /// <summary>Reads and clears the notice; null when there is none.</summary>
    public static (string Kind, string Message)? Take(HttpContext http)
    {
        if (!http.Request.Cookies.TryGetValue(Cookie, out var value) || value.IndexOf(':') is not (>= 0 and var at))
            return null;
        if (!http.Response.HasStarted)
            http.Response.Cookies.Delete(Cookie, new CookieOptions { Path = ConsoleSetup.Root });
        var kind = value[..at] == Error ? Error : Info;
        return (kind, Uri.UnescapeDataString(value[(at + 1)..]));
    }
}

/// <summary>Reads what an API handler answered, for a page to render.</summary>
internal static class Outcome
{
    public static T? ValueOf<T>(IResult result) where T : class => result switch
    {
        Ok<T> ok => ok.Value,
        Accepted<T> accepted => accepted.Value,
        _ => null,
    };

    /// <summary>The problem's detail (validation errors included), or null when the answer is not a problem.</summary>
    public static string? ProblemOf(IResult result)
    {
        if (result is not ProblemHttpResult problem)
            return null;
        var details = problem.ProblemDetails;
        var text = details.Detail ?? details.Title ?? "The request was refused.";
        if (details is HttpValidationProblemDetails validation && validation.Errors.Count > 0)
            text = string.Join(" ", validation.Errors.SelectMany(e => e.Value));
        return text;
    }

    public static int StatusOf(IResult result) => result is IStatusCodeHttpResult { StatusCode: { } status } ? status : StatusCodes.Status200OK;
}
