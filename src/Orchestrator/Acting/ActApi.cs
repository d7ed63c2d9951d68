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

    static async Task<Results<Ok<Jobs.JobView>, Accepted<Jobs.JobView>, ServerSentEventsResult<string>, ProblemHttpResult>> Act(
        ActRequest request,
        [FromHeader(Name = IdempotencyHeader)] string? idempotencyKey,
        Caller caller,
        Admission admission,
        Jobs.JobEvents events,
        HttpContext http)
    {
        // A sync act that asks for an event stream follows its job's events (GET /v1/jobs/{id}/events) to the end.
        var streamed = request.Mode is null or "sync" &&
                       http.Request.Headers.Accept.Any(a => a?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true);
        var answer = await admission.ActAsync(request, idempotencyKey, caller, http.RequestAborted, streamed);
        if (streamed && answer.Problem is null && answer.View is { } admitted)
        {
            http.Response.Headers["X-Job-Id"] = admitted.JobId;
            return TypedResults.ServerSentEvents(events.StreamAsync(admitted.JobId, null, answer.Tokens));
        }
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
