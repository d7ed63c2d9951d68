using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Orchestrator.Hosting;

/// <summary>
/// Turns what escapes an endpoint into a problem: unreadable bodies (malformed JSON, wrong types, too
/// large) into 400/413 with the field at fault; anything else into a 500 <c>internal</c> that names the
/// trace id and nothing of the exception.
/// </summary>
internal sealed partial class ErrorHandling(IProblemDetailsService problems, ILogger<ErrorHandling> log) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails problem;
        if (exception is BadHttpRequestException bad)
        {
            var status = bad.StatusCode;
            var code = Problems.CodeOf(status);
            var (field, message) = Describe(bad);
            problem = field is null
                ? new ProblemDetails { Status = status, Detail = message }
                : new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] }) { Status = status, Detail = message };
            problem.Extensions["code"] = code;
            log.LogDebug(exception, "Bad request: {Message}", message);
        }
        else if (IsNulInText(exception))
        {
            // PostgreSQL keeps no NUL character in text (22021); a value that carries one is the caller's, not a fault here.
            problem = new ProblemDetails { Status = StatusCodes.Status400BadRequest, Detail = "A value contains a NUL character (\\u0000), which the store cannot keep." };
            problem.Extensions["code"] = Problems.ValidationFailed;
            log.LogDebug(exception, "Bad request: a NUL character in a value");
        }
        else if (exception is OperationCanceledException && context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is listening for an answer.
            return true;
        }
        else
        {
            log.LogError(exception, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Detail = "Something went wrong on our side. Quote the traceId when you report it.",
            };
            problem.Extensions["code"] = Problems.Internal;
        }
        context.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    static bool IsNulInText(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
            if (e is System.Data.Common.DbException { SqlState: "22021" })
                return true;
        return false;
    }

    static (string? Field, string Message) Describe(BadHttpRequestException bad)
    {
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            return (null, "The request body is larger than this endpoint accepts.");
        if (bad.StatusCode == StatusCodes.Status415UnsupportedMediaType)
            return (null, "Send the body as application/json.");
        for (Exception? inner = bad.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is JsonException json)
            {
                var field = FieldOf(json.Path);
                var message = json.Message.Contains("could not be converted", StringComparison.Ordinal)
                    ? $"'{field}' has the wrong type."
                    : json.Path is null or "$"
                        ? "The body is not valid JSON."
                        : $"'{field}' is not valid JSON.";
                return (field ?? "body", message);
            }
        }
        if (BindFailure().Match(bad.Message) is { Success: true } bind)
        {
            var name = bind.Groups["name"].Value;
            return (name, $"'{name}' cannot be '{bind.Groups["value"].Value}': it must be {Expected(bind.Groups["type"].Value)}.");
        }
        return bad.Message.Contains("body", StringComparison.OrdinalIgnoreCase)
            ? ("body", "A JSON body is required.")
            : (null, bad.Message);
    }

    /// <summary>ASP.NET Core's words for a query or route value it could not bind, e.g. <c>Failed to bind parameter "Nullable&lt;int&gt; limit" from "abc".</c></summary>
    [System.Text.RegularExpressions.GeneratedRegex("""^Failed to bind parameter "(?<type>[^"]+) (?<name>[A-Za-z_][A-Za-z0-9_]*)" from "(?<value>[^"]*)"\.""")]
    private static partial System.Text.RegularExpressions.Regex BindFailure();

    static string Expected(string type) => type.Replace("Nullable<", "", StringComparison.Ordinal).TrimEnd('>') switch
    {
        "int" or "long" or "short" or "Int32" or "Int64" => "a whole number",
        "double" or "decimal" or "float" or "Double" or "Decimal" => "a number",
        "bool" or "Boolean" => "true or false",
        "DateTime" or "DateTimeOffset" => "an ISO-8601 date and time",
        _ => "a value of type " + type,
    };

    /// <summary><c>$.messages[0].role</c> becomes <c>messages[0].role</c>.</summary>
    static string? FieldOf(string? path) =>
        path is null or "$" ? null : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
}

/// <summary>
/// Applies an endpoint's body limit (<see cref="Microsoft.AspNetCore.Http.Metadata.IRequestSizeLimitMetadata"/>):
/// a declared Content-Length over it is refused before a byte is read; a chunked body is cut by the server.
/// </summary>
internal sealed class BodyLimits(RequestDelegate next, IProblemDetailsService problems)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IRequestSizeLimitMetadata>() is { MaxRequestBodySize: { } limit })
        {
            if (context.Request.ContentLength > limit)
            {
                context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
                var problem = new ProblemDetails
                {
                    Status = StatusCodes.Status413PayloadTooLarge,
                    Detail = $"The request body is {context.Request.ContentLength} bytes; this endpoint accepts at most {limit}.",
                };
                problem.Extensions["code"] = Problems.PayloadTooLarge;
                await problems.WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
                return;
            }
            if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
                feature.MaxRequestBodySize = limit;
        }
        await next(context);
    }
}
