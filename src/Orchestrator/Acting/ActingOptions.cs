namespace Orchestrator.Acting;

/// <summary>Section <c>Orchestrator:Acting</c>: limits on what <c>/v1/act</c> admits.</summary>
public sealed class ActingOptions
{
    public const string Section = "Orchestrator:Acting";

    /// <summary>Largest request body, in bytes; larger bodies get 413 <c>payload_too_large</c>.</summary>
    public long MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest deadline a request may ask for.</summary>
    public TimeSpan MaxDeadline { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Grace a sync act waits past the deadline for the job's own verdict before answering 504 itself.</summary>
    public TimeSpan SyncGrace { get; set; } = TimeSpan.FromSeconds(2);
}
