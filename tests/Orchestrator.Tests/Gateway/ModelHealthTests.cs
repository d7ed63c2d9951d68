using Microsoft.Extensions.Time.Testing;
using Orchestrator.Gateway;

namespace Orchestrator.Tests.Gateway;

/// <summary>The health figures routing reads on every call: percentiles, error classes, the window, and that a kept snapshot never goes stale.</summary>
public sealed class ModelHealthTests
{
    readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Percentiles_and_error_classes_come_from_the_recent_calls()
    {
        var health = new ModelHealth(200, TimeSpan.FromMinutes(5), _time);
        foreach (var ms in new[] { 50.0, 10, 40, 20, 30, 100, 60, 70, 80, 90 })
            health.Succeeded(ms);
        health.Failed(ModelFailureClass.Timeout, 1000);
        health.Failed(ModelFailureClass.RateLimited, 5);
        health.Failed(ModelFailureClass.RateLimited, 5);

        var snapshot = health.Snapshot();

        snapshot.RecentCalls.Should().Be(13);
        snapshot.P50Ms.Should().Be(50);
        snapshot.P95Ms.Should().Be(100);
        snapshot.ErrorRate.Should().BeApproximately(3.0 / 13, 1e-9);
        snapshot.ErrorsByClass.Should().BeEquivalentTo(new Dictionary<string, int> { ["timeout"] = 1, ["rate_limited"] = 2 });
        snapshot.TotalCalls.Should().Be(13);
        snapshot.TotalFailures.Should().Be(3);
    }

    [Fact]
    public void A_kept_snapshot_is_replaced_by_the_next_call_and_the_next_cancellation()
    {
        var health = new ModelHealth(200, TimeSpan.FromMinutes(5), _time);
        health.Succeeded(10);
        health.Snapshot().Should().BeSameAs(health.Snapshot(), "nothing changed between the two reads");

        health.Failed(ModelFailureClass.ServerError, 10);
        health.Snapshot().ErrorRate.Should().Be(0.5);

        health.Canceled();
        health.Snapshot().TotalCanceled.Should().Be(1);
    }

    [Fact]
    public void Calls_leave_the_figures_when_they_fall_out_of_the_window_even_without_new_calls()
    {
        var health = new ModelHealth(200, TimeSpan.FromMinutes(5), _time);
        health.Failed(ModelFailureClass.ServerError, 10);
        _time.Advance(TimeSpan.FromMinutes(3));
        health.Succeeded(20);
        health.Snapshot().ErrorRate.Should().Be(0.5);

        _time.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromMilliseconds(1));
        var later = health.Snapshot();
        later.RecentCalls.Should().Be(1, "the failure is older than five minutes now");
        later.ErrorRate.Should().Be(0);
        later.P50Ms.Should().Be(20);

        _time.Advance(TimeSpan.FromMinutes(5));
        health.Snapshot().RecentCalls.Should().Be(0);
        health.Snapshot().P50Ms.Should().BeNull();
        health.Snapshot().TotalCalls.Should().Be(2, "totals are not windowed");
    }

    [Fact]
    public void Only_the_last_samples_count()
    {
        var health = new ModelHealth(4, TimeSpan.FromMinutes(5), _time);
        foreach (var ms in new[] { 1000.0, 1000, 1, 2, 3, 4 })
            health.Succeeded(ms);

        var snapshot = health.Snapshot();
        snapshot.RecentCalls.Should().Be(4);
        snapshot.P95Ms.Should().Be(4);
    }

    [Fact]
    public void Failures_fade_from_the_error_share_with_time_alone()
    {
        var health = new ModelHealth(200, TimeSpan.FromMinutes(5), _time, errorHalfLife: TimeSpan.FromSeconds(30));
        health.Succeeded(10);
        health.Failed(ModelFailureClass.ServerError, 10);
        health.Failed(ModelFailureClass.Rejected, 10);
        health.Snapshot().ErrorRate.Should().Be(0.5, "a refused request is not the model's failure");

        _time.Advance(TimeSpan.FromSeconds(30));
        health.Snapshot().ErrorRate.Should().BeApproximately(0.25, 1e-9, "a failure weighs half after one half-life, without any new call");

        _time.Advance(TimeSpan.FromSeconds(60));
        health.Snapshot().ErrorRate.Should().BeApproximately(0.0625, 1e-9);
        health.Snapshot().ErrorsByClass["server_error"].Should().Be(1, "the failure is still counted; only its weight fades");
    }

    [Fact]
    public void Without_a_half_life_the_error_share_changes_only_with_calls_and_the_window()
    {
        var health = new ModelHealth(200, TimeSpan.FromMinutes(5), _time);
        health.Succeeded(10);
        health.Failed(ModelFailureClass.ServerError, 10);

        _time.Advance(TimeSpan.FromMinutes(4));

        health.Snapshot().ErrorRate.Should().Be(0.5);
    }
}
