using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Rollout;

/// <summary>Section <c>Orchestrator:Rollout</c>.</summary>
public sealed class RolloutOptions : IValidatableObject
{
    public const string Section = "Orchestrator:Rollout";

    /// <summary>Mixed into every assignment hash; changing it re-buckets every subject (don't, during a rollout).</summary>
    [Required, MinLength(1)]
    public string Salt { get; set; } = "orchestrator";

    /// <summary><c>principal</c> (default): a caller keeps its versions across sessions; <c>session</c>: per session when the request names one.</summary>
    [RegularExpression("^(principal|session)$", ErrorMessage = "Orchestrator:Rollout:StickyBy must be 'principal' or 'session'.")]
    public string StickyBy { get; set; } = "principal";

    /// <summary>Roll a failing candidate back on its own.</summary>
    public bool AutoRollback { get; set; } = true;

    /// <summary>How far back the candidate's jobs are compared with the stable's.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "7.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How often a node compares (every node may; a rollback twice is a no-op).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Fewest finished jobs in each arm before the comparison says anything; fewer is <c>inconclusive</c>.</summary>
    [Range(1, 1_000_000)]
    public int MinSample { get; set; } = 50;

    /// <summary>The candidate fails when its error rate exceeds the stable's by more than this (0..1).</summary>
    [Range(0.0, 1.0)]
    public double MaxErrorRateIncrease { get; set; } = 0.05;

    /// <summary>The candidate fails when its SLA breach rate exceeds the stable's by more than this (0..1).</summary>
    [Range(0.0, 1.0)]
    public double MaxBreachRateIncrease { get; set; } = 0.05;

    /// <summary>The candidate fails when its p95 run time is more than this times the stable's.</summary>
    [Range(1.0, 100.0)]
    public double MaxP95Ratio { get; set; } = 1.5;

    /// <summary>A p95 slower by less than this (ms) never fails a candidate, whatever the ratio (milliseconds of noise are not a regression).</summary>
    [Range(0, 3_600_000)]
    public int MinP95DifferenceMs { get; set; } = 100;

    /// <summary>Most finished jobs read per comparison (newest first).</summary>
    [Range(100, 1_000_000)]
    public int MaxJobsRead { get; set; } = 20_000;

    /// <summary><c>Orchestrator:Rollout:Shadow</c>: the shadow budget and how nodes run shadow runs.</summary>
    public ShadowOptions Shadow { get; set; } = new();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        // Nested sections are not validated by their annotations on their own.
        var shadow = new List<ValidationResult>();
        Validator.TryValidateObject(Shadow, new ValidationContext(Shadow), shadow, validateAllProperties: true);
        foreach (var result in shadow)
            yield return new ValidationResult($"Orchestrator:Rollout:Shadow: {result.ErrorMessage}");
        if (CheckInterval > Window)
            yield return new ValidationResult("Orchestrator:Rollout:CheckInterval must not exceed Orchestrator:Rollout:Window.");
    }
}
