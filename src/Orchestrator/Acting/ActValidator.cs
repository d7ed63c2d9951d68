using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Jobs;
using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary>Checks an act request once, at the edge, and fills its defaults; the inside trusts the result.</summary>
internal sealed class ActValidator(IntentCatalog intents, ModelGateway gateway, Microsoft.Extensions.Options.IOptions<ActingOptions> options,
    IVersionChooser? versions = null)
{
    const int MaxKey = 200;
    static readonly string[] MessageRoles = ["system", "user", "assistant"];

    /// <param name="request">The act.</param>
    /// <param name="headerKey">The Idempotency-Key header.</param>
    /// <param name="policy">
    /// In-process callers only (an evaluation): the policy the act runs under instead of the catalog's. Its snapshot must
    /// be stored before the act is admitted (the job names it by content hash).
    /// </param>
    /// <param name="subject">
    /// Who asks (tenant, principal): the artifact versions (prompts, policy, routing) are chosen for them, pinned by the
    /// request's <c>versions</c>, assigned by a rollout, or stable. Null: the catalog's policy, no versions.
    /// </param>
    public ActCheck Check(ActRequest request, string? headerKey, IntentPolicy? policy = null, (string Tenant, string Principal)? subject = null)
    {
        var errors = new Dictionary<string, string[]>();
        void Error(string field, string message) => errors[field] = [message];

        var overridden = policy is not null;
        var intent = request.Intent ?? policy?.Intent ?? intents.DefaultIntent;
        if (policy is not null && policy.Intent != intent)
            Error("intent", $"The act is for '{intent}' but the policy it runs under is for '{policy.Intent}'.");
        policy ??= intents.Find(intent);
        VersionChoice? chosen = null;
        if (!overridden && policy is not null && versions is not null && subject is { } who)
        {
            chosen = versions.Choose(intent, who.Tenant, who.Principal, request.Session, request.Versions, out var field, out var error);
            if (chosen is not null)
                policy = chosen.Policy;
            else if (field is not null)
                Error(field, error ?? "Unknown version.");
        }
        if (policy is null)
            Error("intent", $"Unknown intent '{intent}'; known: {string.Join(", ", intents.All.Select(p => p.Intent).Order())}.");

        var hasInput = !string.IsNullOrWhiteSpace(request.Input);
        if (request.Messages is { } messages)
        {
            for (var i = 0; i < messages.Count; i++)
            {
                if (messages[i] is null)
                    Error($"messages[{i}]", "A message must be an object with role and content.");
                else if (!MessageRoles.Contains(messages[i].Role))
                    Error($"messages[{i}].role", "role must be one of system, user, assistant.");
                else if (messages[i].Content is null)
                    Error($"messages[{i}].content", "content is required.");
                else if (messages[i].Role == "user" && !string.IsNullOrWhiteSpace(messages[i].Content))
                    hasInput = true;
            }
        }
        if (!hasInput)
            Error("input", "Give the request some input: a non-empty 'input', or 'messages' with a user message.");
        // The store keeps no NUL character in text (PostgreSQL refuses it), and what a request says is kept: memory, replays.
        if (request.Input?.Contains('\0') == true)
            Error("input", "input must not contain a NUL character (\\u0000).");
        if (request.Messages?.Any(m => m?.Content?.Contains('\0') == true) == true)
            Error("messages", "A message must not contain a NUL character (\\u0000).");

        var sync = request.Mode switch
        {
            null or "sync" => true,
            "async" => false,
            _ => Invalid(errors, "mode", "mode must be 'sync' or 'async'."),
        };

        var priority = JobPriority.Normal;
        if (request.Priority is not null && !WireNames.TryParsePriority(request.Priority, out priority))
            Error("priority", "priority must be one of high, normal, low.");

        var maxDeadline = (long)options.Value.MaxDeadline.TotalMilliseconds;
        var deadlineMs = request.DeadlineMs ?? policy?.DeadlineMs ?? 30_000;
        if (deadlineMs < 1 || deadlineMs > maxDeadline)
            Error("deadlineMs", $"deadlineMs must be between 1 and {maxDeadline} milliseconds.");

        if (request.Routing is { } routing)
        {
            if (routing.Strategy is not null && !RoutingStrategies.IsKnown(routing.Strategy))
                Error("routing.strategy", $"routing.strategy must be one of {string.Join(", ", RoutingStrategies.All)}.");
            if (routing.Models is { } models)
            {
                var unknown = models.Where(m => gateway.Models.All(c => c.Id != m)).ToList();
                if (unknown.Count > 0)
                    Error("routing.models", $"Unknown model(s): {string.Join(", ", unknown)}; see GET /v1/models.");
                else if (models.Count == 0)
                    Error("routing.models", "routing.models, when given, must name at least one model.");
            }
        }

        string? deniedTool = null;
        if (request.Tools is { } tools)
        {
            var unknown = tools.Where(t => !Capabilities.IsKnown(t)).ToList();
            if (unknown.Count > 0)
                Error("tools", $"Unknown capability(ies): {string.Join(", ", unknown)}; known: {string.Join(", ", Capabilities.All)}.");
            else if (policy is not null)
                deniedTool = tools.FirstOrDefault(t => !policy.Capabilities.Contains(t));
        }

        if (request.Chat is not null)
            Error("chat", "chat is not a field of an act; send OpenAI-format conversations to POST /v1/chat/completions.");

        if (request.Seed is not null && !overridden)
            Error("seed", "seed is set by evaluations only; a run's randomness is seeded from its trace id.");

        if (request.Session is { } session && (session.Length > MaxKey || string.IsNullOrWhiteSpace(session)))
            Error("session", $"session, when given, must be 1-{MaxKey} characters, not only spaces.");
        else if (request.Session?.Any(char.IsControl) == true)
            Error("session", "session must not contain control characters.");

        var key = headerKey ?? request.IdempotencyKey;
        if (headerKey is not null && request.IdempotencyKey is not null && headerKey != request.IdempotencyKey)
            Error("idempotencyKey", "The Idempotency-Key header and the body's idempotencyKey differ.");
        else if (key is not null && (key.Length is 0 or > MaxKey))
            Error("idempotencyKey", $"An idempotency key must be 1-{MaxKey} characters.");
        else if (key?.Any(char.IsControl) == true)
            Error("idempotencyKey", "An idempotency key must not contain control characters.");

        if (!overridden && versions is null && request.Versions?.Policy is { } pin && policy is not null && pin != policy.Version)
            Error("versions.policy", $"Policy version '{pin}' of '{intent}' is not available; version '{policy.Version}' is in force.");

        if (errors.Count > 0)
            return new ActCheck(null, errors, null);
        if (deniedTool is not null)
            return new ActCheck(null, null, $"Intent '{intent}' does not allow '{deniedTool}'; it allows: {(policy!.Capabilities.Count == 0 ? "no tools" : string.Join(", ", policy.Capabilities))}.");

        return new ActCheck(new AdmittedAct(
            request with
            {
                Intent = intent,
                Mode = sync ? "sync" : "async",
                Priority = WireNames.Of(priority),
                DeadlineMs = deadlineMs,
                IdempotencyKey = key,
            },
            policy!, sync, priority, (int)deadlineMs, key) { Versions = chosen?.Versions }, null, null);
    }

    static bool Invalid(Dictionary<string, string[]> errors, string field, string message)
    {
        errors[field] = [message];
        return false;
    }
}

/// <summary>The verdict on an act request: admitted, invalid (field errors), or asking for a capability the intent lacks.</summary>
internal sealed record ActCheck(AdmittedAct? Admitted, Dictionary<string, string[]>? Errors, string? CapabilityDenied);

internal sealed record AdmittedAct(ActRequest Request, IntentPolicy Policy, bool Sync, JobPriority Priority, int DeadlineMs, string? IdempotencyKey)
{
    /// <summary>The artifact versions chosen for the job (null: an in-process caller's own policy).</summary>
    public JobVersions? Versions { get; init; }
}
