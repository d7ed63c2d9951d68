using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Orchestrator.Tenancy;

using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary><c>POST /v1/act</c>.</summary>
public static class ActApi
{
    public const string IdempotencyHeader = "Idempotency-Key";

    public static RouteGroupBuilder MapActing(this IEndpointRouteBuilder app)
    {
        var acting = app.MapGroup("/v1").WithTags("Acting");
        acting.MapPost("/act", Act)
            .WithSummary("Run an intent: sync answers with the finished job, async with 202 and the job to poll.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);
        return acting;
    }

    static async Task<Results<Ok<Jobs.JobView>, Accepted<Jobs.JobView>, ProblemHttpResult>> Act(
        ActRequest request,
        [FromHeader(Name = IdempotencyHeader)] string? idempotencyKey,
        Caller caller,
        Admission admission,
        HttpContext http)
    {
        var answer = await admission.ActAsync(request, idempotencyKey, caller, http.RequestAborted);
        if (answer.RetryAfterSeconds is { } seconds)
            http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (answer.Replayed)
            http.Response.Headers["Idempotent-Replayed"] = "true";
        if (answer.Problem is { } problem)
            return problem;
        return answer.IsAccepted
            ? TypedResults.Accepted(answer.View!.Links.Self, answer.View)
            : TypedResults.Ok(answer.View!);
    }
}
