using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;
using Orchestrator.Telemetry;

namespace Orchestrator.Approvals;

/// <summary>
/// Sends the webhook outbox: each due delivery is claimed by a write guarded on its try count (so of several nodes one
/// sends each try), POSTed signed, and on failure tried again with exponential backoff until <c>MaxAttempts</c>, then
/// given up. Failures count in <c>orchestrator.approvals.webhook_failures</c> and show in the approval's <c>webhook</c>.
/// </summary>
/// <remarks>
/// Signature: header <c>X-Orchestrator-Signature: t=UNIX_SECONDS,id=DELIVERY_ID,v1=HEX</c> where HEX is the lower-case
/// HMAC-SHA256, keyed with <c>Webhook:Secret</c> (UTF-8), of <c>t + "." + id + "." + body</c> (the exact body bytes).
/// The id is the same on every try of one delivery (the body's <c>id</c>), so a receiver drops repeats by it; <c>t</c> is the
/// time of the try, so it can refuse old ones.
/// </remarks>
internal sealed class ApprovalWebhookSender(
    IDbContextFactory<OrchestratorDb> dbs,
    StoreWriter writer,
    IHttpClientFactory clients,
    IOptions<ApprovalsOptions> options,
    OrchestratorTelemetry telemetry,
    TimeProvider time,
    ILogger<ApprovalWebhookSender> log) : BackgroundService
{
    public const string ClientName = "approvals-webhook";
    public const string SignatureHeader = "X-Orchestrator-Signature";

    readonly Counter<long> _failures = telemetry.Counter("orchestrator.approvals.webhook_failures", "{delivery}", "Approval webhook tries that failed.");
    readonly Counter<long> _delivered = telemetry.Counter("orchestrator.approvals.webhook_delivered", "{delivery}", "Approval webhooks delivered.");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(options.Value.Webhook.Url))
            return;
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SendDueAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogError(error, "Sending approval webhooks failed; trying again at the next interval");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task SendDueAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var due = await db.Set<ApprovalWebhook>().AsNoTracking().Where(w => w.NextAttemptAt != null && w.NextAttemptAt <= now)
            .OrderBy(w => w.NextAttemptAt).Take(50).ToListAsync(cancellationToken);
        foreach (var delivery in due)
            await TryAsync(delivery, cancellationToken);
    }

    async Task TryAsync(ApprovalWebhook delivery, CancellationToken cancellationToken)
    {
        var hook = options.Value.Webhook;
        var now = time.GetUtcNow().UtcDateTime;
        // The claim: this try is this node's, and until it is settled nobody tries again (the lease is the timeout and a delay).
        var tried = delivery.Attempts;
        delivery.Attempts++;
        delivery.NextAttemptAt = StoreTime.Microseconds(now + hook.Timeout + hook.BaseDelay);
        if (!await writer.WriteAsync(new GuardedUpdate<ApprovalWebhook>(Snapshot(delivery), [new Guard(nameof(ApprovalWebhook.Attempts), tried)],
                [nameof(ApprovalWebhook.Attempts), nameof(ApprovalWebhook.NextAttemptAt)])))
            return;
        string? error = null;
        try
        {
            using var request = Signed(hook.Url!, hook.Secret!, delivery.Id, delivery.Event, delivery.Body, time.GetUtcNow());
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(hook.Timeout);
            using var response = await clients.CreateClient(ClientName).SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
                error = $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception failure) when (failure is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            error = failure.Message;
        }
        now = time.GetUtcNow().UtcDateTime;
        string[] changed;
        if (error is null)
        {
            delivery.NextAttemptAt = null;
            delivery.DeliveredAt = StoreTime.Microseconds(now);
            delivery.LastError = null;
            changed = [nameof(ApprovalWebhook.NextAttemptAt), nameof(ApprovalWebhook.DeliveredAt), nameof(ApprovalWebhook.LastError)];
            _delivered.Add(1, new KeyValuePair<string, object?>("event", delivery.Event));
        }
        else
        {
            _failures.Add(1, new KeyValuePair<string, object?>("event", delivery.Event), new KeyValuePair<string, object?>("tenant", delivery.Tenant));
            log.LogWarning("Approval webhook {Event} {Id} try {Attempt} failed: {Error}", delivery.Event, delivery.Id, delivery.Attempts, error);
            delivery.LastError = $"try {delivery.Attempts}: {error}";
            if (delivery.Attempts >= hook.MaxAttempts)
            {
                delivery.NextAttemptAt = null;
                delivery.FailedAt = StoreTime.Microseconds(now);
            }
            else
                delivery.NextAttemptAt = StoreTime.Microseconds(now + Backoff(hook, delivery.Attempts));
            changed = [nameof(ApprovalWebhook.NextAttemptAt), nameof(ApprovalWebhook.FailedAt), nameof(ApprovalWebhook.LastError)];
        }
        await writer.WriteAsync(new GuardedUpdate<ApprovalWebhook>(Snapshot(delivery), [new Guard(nameof(ApprovalWebhook.Attempts), delivery.Attempts)], changed));
    }

    static ApprovalWebhook Snapshot(ApprovalWebhook delivery) => delivery.MemberwiseCloneOf();

    internal static TimeSpan Backoff(ApprovalWebhookOptions hook, int attempts)
    {
        var delay = hook.BaseDelay * Math.Pow(2, Math.Min(attempts - 1, 20));
        return delay < hook.MaxDelay ? delay : hook.MaxDelay;
    }

    /// <summary>The POST of one try, signed as the remarks above say.</summary>
    internal static HttpRequestMessage Signed(string url, string secret, string id, string @event, string body, DateTimeOffset at)
    {
        var timestamp = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add(SignatureHeader, $"t={timestamp},id={id},v1={Signature(secret, timestamp, id, body)}");
        request.Headers.Add("X-Orchestrator-Event", @event);
        request.Headers.Add("X-Orchestrator-Delivery", id);
        return request;
    }

    public static string Signature(string secret, string timestamp, string id, string body) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{id}.{body}")));
}

internal static class ApprovalWebhookCopies
{
    public static ApprovalWebhook MemberwiseCloneOf(this ApprovalWebhook delivery) => new()
    {
        Id = delivery.Id, ApprovalId = delivery.ApprovalId, Tenant = delivery.Tenant, Event = delivery.Event, Body = delivery.Body,
        CreatedAt = delivery.CreatedAt, Attempts = delivery.Attempts, NextAttemptAt = delivery.NextAttemptAt, DeliveredAt = delivery.DeliveredAt,
        FailedAt = delivery.FailedAt, LastError = delivery.LastError,
    };
}
