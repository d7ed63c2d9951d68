using Orchestrator.Evaluation;

namespace Orchestrator.Tests.Evaluation;

public sealed class StatisticsTests
{
    [Fact]
    public void Wilson_interval_matches_the_published_figures()
    {
        // 8 of 10 at 95%: 0.4902-0.9433 (Newcombe 1998, method 3).
        var (low, high) = Statistics.Wilson(8, 10);
        low.Should().BeApproximately(0.4902, 0.0001);
        high.Should().BeApproximately(0.9433, 0.0001);
        Statistics.Wilson(0, 10).Low.Should().Be(0);
        Statistics.Wilson(10, 10).High.Should().BeApproximately(1, 1e-12);
    }

    [Fact]
    public void Exact_McNemar_is_the_binomial_tail_of_the_discordant_pairs()
    {
        Statistics.McNemarWorse(12, 0).Should().BeApproximately(Math.Pow(0.5, 12), 1e-12);
        Statistics.McNemarWorse(0, 0).Should().Be(1);
        Statistics.McNemarWorse(2, 2).Should().BeApproximately(11.0 / 16, 1e-12);
        // Two-sided, b = 3, c = 10: 2 * (1 + 13 + 78 + 286) / 2^13.
        Statistics.McNemarTwoSided(3, 10).Should().BeApproximately(2 * 378.0 / 8192, 1e-12);
    }

    [Fact]
    public void Paired_bootstrap_is_seeded_and_brackets_the_mean()
    {
        double[] differences = [0.1, -0.2, 0.0, 0.3, 0.1, -0.1, 0.2, 0.0];
        var first = Statistics.PairedBootstrap(differences, 0.95, seed: 7);
        var again = Statistics.PairedBootstrap(differences, 0.95, seed: 7);
        again.Should().Be(first, "the same seed draws the same resamples");
        first.Mean.Should().BeApproximately(0.05, 1e-12);
        first.Low.Should().BeLessThan(first.Mean);
        first.High.Should().BeGreaterThan(first.Mean);
        Statistics.PairedBootstrap([0.0, 0.0, 0.0], 0.95, 1).Should().Be((0.0, 0.0, 0.0));
    }

    [Fact]
    public void Percentile_is_nearest_rank_and_the_normal_quantile_is_exact_where_tabled()
    {
        Statistics.Percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95).Should().Be(10);
        Statistics.Percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50).Should().Be(5);
        Statistics.Percentile([], 50).Should().BeNull();
        Statistics.Z(0.95).Should().BeApproximately(1.959964, 1e-6);
        Statistics.Z(0.80).Should().BeApproximately(1.281552, 1e-6);
    }
}
