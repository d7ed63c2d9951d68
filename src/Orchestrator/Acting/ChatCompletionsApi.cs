using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Tenancy;

namespace Orchestrator.Acting;

/// <summary>
/// <c>POST /v1/chat/completions</c>: the OpenAI-compatible endpoint (API.md, OpenAI-compatible endpoint and streaming).
/// </summary>
/// <remarks>
/// ARCHITECTURE.md places the endpoint with the gateway, but a call here is also a job that passes admission, and both
/// live above the gateway (Acting -> Jobs -> Workflow -> Gateway): the endpoint sits where the one-way dependencies
/// allow, beside <c>/v1/act</c>, and uses the gateway from above like a model node does.
/// </remarks>
public static class ChatCompletionsApi
{
    public const string JobIdHeader = "X-Job-Id";

    public static RouteGroupBuilder MapChatCompletions(this IEndpointRouteBuilder app)
    {
        var chat = app.MapGroup(OpenAiErrorShape.Group).WithTags("OpenAI-compatible").WithMetadata(OpenAiErrorShape.Instance);
        chat.MapPost("/completions", Complete)
            .WithSummary("OpenAI chat completions, streamed or whole; each call is a job of intent chat/completions.")
            .Produces<ChatCompletion>()
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces<WireErrorBody>(StatusCodes.Status400BadRequest)
            .Produces<WireErrorBody>(StatusCodes.Status429TooManyRequests)
            .Produces<WireErrorBody>(StatusCodes.Status503ServiceUnavailable);
        return chat;
    }

    static async Task<Results<Ok<ChatCompletion>, ServerSentEventsResult<string>, ProblemHttpResult>> Complete(
        ChatCompletionRequest request, Caller caller, ChatCompletions chat, HttpContext http)
    {
        var (call, refused, retryAfter) = await chat.StartAsync(request, caller, http.RequestAborted);
        if (call is null)
            return Problem(http, refused!, retryAfter);
        http.Response.Headers[JobIdHeader] = call.Job.Id;
        if (!call.Stream)
        {
            var (completion, failed, wait) = await chat.CompleteAsync(call);
            return completion is not null ? TypedResults.Ok(completion) : Problem(http, failed!, wait);
        }
        var (stream, problem, after) = await chat.OpenAsync(call);
        return stream is not null
            ? TypedResults.ServerSentEvents(chat.EventsAsync(call, stream))
            : Problem(http, problem!, after);
    }

    static ProblemHttpResult Problem(HttpContext http, ProblemHttpResult problem, int? retryAfterSeconds)
    {
        if (retryAfterSeconds is { } seconds)
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return problem;
    }
}
