using System.Collections.Frozen;
using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Orchestrator.Hosting;

/// <summary>The one place that turns a failure <c>code</c> (API.md, Errors) into an RFC 7807 problem.</summary>
public static class Problems
{
    public const string ValidationFailed = "validation_failed";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not_found";
    public const string Conflict = "conflict";
    public const string PreconditionFailed = "precondition_failed";
    public const string PayloadTooLarge = "payload_too_large";
    public const string QueueFull = "queue_full";
    public const string RateLimited = "rate_limited";
    public const string QuotaExceeded = "quota_exceeded";
    public const string BudgetExceeded = "budget_exceeded";
    public const string DeadlineExceeded = "deadline_exceeded";
    public const string ModelUnavailable = "model_unavailable";
    public const string CapabilityDenied = "capability_denied";
    public const string SandboxViolation = "sandbox_violation";
    public const string Canceled = "canceled";
    public const string Internal = "internal";
    public const string MethodNotAllowed = "method_not_allowed";
    public const string UnsupportedMediaType = "unsupported_media_type";

    /// <summary>Model and effect failures a job can end with; they never reach HTTP as their own status except on sync acts.</summary>
    public const string ModelFailed = "model_failed";
    public const string EffectFailed = "effect_failed";
    public const string EffectOutcomeUnknown = "effect_outcome_unknown";
    public const string StepLimitExceeded = "step_limit_exceeded";

    static readonly FrozenDictionary<string, (int Status, string Title)> Known = new Dictionary<string, (int, string)>
    {
        [ValidationFailed] = (400, "The request is not valid."),
        [Unauthorized] = (401, "An API key is required."),
        [Forbidden] = (403, "The API key lacks the role this needs."),
        [NotFound] = (404, "Not found."),
        [MethodNotAllowed] = (405, "Method not allowed."),
        [Conflict] = (409, "The resource is not in a state that allows this."),
        [PreconditionFailed] = (412, "The resource changed since the version given in If-Match."),
        [PayloadTooLarge] = (413, "The request body is too large."),
        [UnsupportedMediaType] = (415, "The request body must be application/json."),
        [QueueFull] = (429, "The queue is full."),
        [RateLimited] = (429, "Too many requests."),
        [QuotaExceeded] = (429, "A token quota is used up (the scope field says whose)."),
        [BudgetExceeded] = (429, "A cost budget is used up (the scope field says whose)."),
        [DeadlineExceeded] = (504, "The job did not finish before its deadline."),
        [ModelUnavailable] = (503, "No model is available to serve this."),
        [ModelFailed] = (502, "The model call failed."),
        [EffectFailed] = (502, "An effect failed."),
        [EffectOutcomeUnknown] = (500, "An effect was interrupted and cannot safely be repeated; an operator must decide."),
        [StepLimitExceeded] = (422, "The agent reached its step limit without an answer."),
        [CapabilityDenied] = (403, "The capability is not allowed here."),
        [SandboxViolation] = (403, "The effect broke its sandbox."),
        ["approval_rejected"] = (403, "The approval was rejected."),
        ["approval_timeout"] = (504, "The approval timed out."),
        ["approval_invalid"] = (403, "The call about to run is not the one that was approved."),
        ["approval_revoked"] = (403, "An approver lost the authority to approve before the effect ran."),
        [Canceled] = (409, "The job was canceled."),
        [Internal] = (500, "Something went wrong on our side."),
    }.ToFrozenDictionary();

    public static int StatusOf(string code) => Known.TryGetValue(code, out var known) ? known.Status : 500;

    /// <summary>A problem for <paramref name="code"/> with its standard status and title.</summary>
    public static ProblemHttpResult For(
        string code,
        string? detail = null,
        IDictionary<string, string[]>? errors = null,
        IEnumerable<KeyValuePair<string, object?>>? extensions = null)
    {
        var (status, title) = Known.TryGetValue(code, out var known) ? known : (500, code);
        var problem = errors is null
            ? new ProblemDetails()
            : new HttpValidationProblemDetails(errors);
        problem.Status = status;
        problem.Title = title;
        problem.Detail = detail;
        problem.Type = TypeOf(status);
        problem.Extensions["code"] = code;
        if (extensions is not null)
            foreach (var (key, value) in extensions)
                problem.Extensions[key] = value;
        return TypedResults.Problem(problem);
    }

    /// <summary>400 <c>validation_failed</c> with field errors.</summary>
    public static ProblemHttpResult Validation(IDictionary<string, string[]> errors, string? detail = null) =>
        For(ValidationFailed, detail ?? "One or more fields are not valid; see errors.", errors);

    public static ProblemHttpResult Validation(string field, string message) =>
        Validation(new Dictionary<string, string[]> { [field] = [message] }, message);

    /// <summary>The code a framework-produced status gets when nothing more specific said so.</summary>
    public static string CodeOf(int status) => status switch
    {
        400 => ValidationFailed,
        401 => Unauthorized,
        403 => Forbidden,
        404 => NotFound,
        405 => MethodNotAllowed,
        409 => Conflict,
        413 => PayloadTooLarge,
        415 => UnsupportedMediaType,
        429 => RateLimited,
        503 => ModelUnavailable,
        504 => DeadlineExceeded,
        _ => Internal,
    };

    public static string TypeOf(int status) => $"https://httpstatuses.io/{status}";

    /// <summary>Fills what every problem carries: <c>code</c>, <c>traceId</c> (the bare W3C trace id), <c>type</c>.</summary>
    internal static void Complete(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var status = problem.Status ?? context.HttpContext.Response.StatusCode;
        problem.Extensions.TryAdd("code", CodeOf(status));
        problem.Extensions["traceId"] = problem.Extensions.TryGetValue("traceId", out var set) && set is string { Length: 32 }
            ? set
            : Activity.Current?.TraceId.ToHexString() ?? context.HttpContext.TraceIdentifier;
        // Always ours: the framework's defaults would otherwise give some problems RFC 9110 links and others these.
        problem.Type = TypeOf(status);
        if (problem.Title is null && Known.TryGetValue((string)problem.Extensions["code"]!, out var known))
            problem.Title = known.Title;
    }
}
