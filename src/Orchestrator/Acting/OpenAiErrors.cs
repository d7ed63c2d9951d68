using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Orchestrator.Hosting;

namespace Orchestrator.Acting;

/// <summary>Marks an endpoint whose errors are written in OpenAI's shape rather than as RFC 7807 problems.</summary>
internal sealed class OpenAiErrorShape
{
    public static readonly OpenAiErrorShape Instance = new();

    /// <summary>The path under which every answer is in OpenAI's shape.</summary>
    public const string Group = "/v1/chat";
}

/// <summary>
/// Writes every problem of an OpenAI-compatible endpoint in OpenAI's error shape, whoever raised it (authentication,
/// a body that does not parse, a body limit, the endpoint itself): OpenAI SDKs read <c>error.message</c> and
/// <c>error.code</c>, not RFC 7807. The status, the <c>code</c> and the <c>Retry-After</c> stay this API's (API.md, Errors).
/// Registered ahead of the default writer, it answers only for endpoints carrying <see cref="OpenAiErrorShape"/>.
/// </summary>
internal sealed class OpenAiErrorWriter : IProblemDetailsWriter
{
    // An exception handler clears the endpoint before it writes its problem; the endpoint that threw is in its feature.
    // Answers that no endpoint of ours gives (405 for another method, 415 before the body is read) carry routing's
    // endpoint or none, so the path under the group says it too.
    public bool CanWrite(ProblemDetailsContext context) =>
        (context.HttpContext.GetEndpoint() ?? context.HttpContext.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Endpoint)
        ?.Metadata.GetMetadata<OpenAiErrorShape>() is not null
        || context.HttpContext.Request.Path.StartsWithSegments(OpenAiErrorShape.Group, StringComparison.OrdinalIgnoreCase);

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        Problems.Complete(context);
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        var status = problem.Status ?? http.Response.StatusCode;
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        return new ValueTask(JsonSerializer.SerializeAsync(http.Response.Body, BodyOf(problem, status), ChatJson.Default.WireErrorBody, http.RequestAborted));
    }

    /// <summary>A problem in OpenAI's shape (for an error event of a stream, too).</summary>
    public static WireErrorBody BodyOf(ProblemDetails problem, int status)
    {
        var code = problem.Extensions.TryGetValue("code", out var c) && c is string s ? s : Problems.CodeOf(status);
        var param = problem is HttpValidationProblemDetails { Errors.Count: > 0 } invalid ? invalid.Errors.Keys.First() : null;
        var message = problem is HttpValidationProblemDetails { Errors.Count: > 0 } fields
            ? string.Join(" ", fields.Errors.SelectMany(e => e.Value))
            : problem.Detail ?? problem.Title ?? code;
        return new WireErrorBody(new WireError(message, TypeOf(status), code, param,
            problem.Extensions.TryGetValue("traceId", out var trace) ? trace?.ToString() : null,
            problem.Extensions.TryGetValue("jobId", out var job) ? job?.ToString() : null));
    }

    public static WireErrorBody BodyOf(ProblemHttpResult problem) => BodyOf(problem.ProblemDetails, problem.StatusCode);

    /// <summary>OpenAI's error <c>type</c> for a status, as its SDKs sort errors.</summary>
    static string TypeOf(int status) => status switch
    {
        400 or 404 or 409 or 413 or 415 or 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
}
