using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Orchestrator.Jobs;

/// <summary>The names API.md gives job statuses and priorities, used on the wire and in the store alike.</summary>
public static class WireNames
{
    public static string Of(JobStatus status) => status switch
    {
        JobStatus.Accepted => "accepted",
        JobStatus.Running => "running",
        JobStatus.AwaitingApproval => "awaiting_approval",
        JobStatus.Completed => "completed",
        JobStatus.Failed => "failed",
        JobStatus.Canceled => "canceled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static string Of(JobPriority priority) => priority switch
    {
        JobPriority.High => "high",
        JobPriority.Normal => "normal",
        JobPriority.Low => "low",
        _ => throw new ArgumentOutOfRangeException(nameof(priority), priority, null),
    };

    public static bool TryParseStatus(string? value, out JobStatus status)
    {
        status = value switch
        {
            "accepted" => JobStatus.Accepted,
            "running" => JobStatus.Running,
            "awaiting_approval" => JobStatus.AwaitingApproval,
            "completed" => JobStatus.Completed,
            "failed" => JobStatus.Failed,
            "canceled" => JobStatus.Canceled,
            _ => (JobStatus)(-1),
        };
        return status >= 0;
    }

    public static bool TryParsePriority(string? value, out JobPriority priority)
    {
        priority = value switch
        {
            "high" => JobPriority.High,
            "normal" => JobPriority.Normal,
            "low" => JobPriority.Low,
            _ => (JobPriority)(-1),
        };
        return priority >= 0;
    }

    internal static readonly ValueConverter<JobStatus, string> StatusConverter = new(
        s => Of(s), s => ParseStatus(s));

    internal static readonly ValueConverter<JobPriority, string> PriorityConverter = new(
        p => Of(p), p => ParsePriority(p));

    static JobStatus ParseStatus(string s) =>
        TryParseStatus(s, out var status) ? status : throw new InvalidDataException($"Unknown job status '{s}' in the store.");

    static JobPriority ParsePriority(string s) =>
        TryParsePriority(s, out var priority) ? priority : throw new InvalidDataException($"Unknown job priority '{s}' in the store.");
}
