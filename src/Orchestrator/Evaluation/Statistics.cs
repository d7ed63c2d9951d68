namespace Orchestrator.Evaluation;

/// <summary>
/// The few statistics a verdict needs, written out (no served package does exactly these, and each is a few lines):
/// Wilson score intervals, the exact McNemar test, a seeded paired bootstrap, and nearest-rank percentiles.
/// </summary>
internal static class Statistics
{
    /// <summary>The two-sided normal quantile of a confidence (0.90, 0.95, 0.99 exactly; others by Acklam's approximation).</summary>
    public static double Z(double confidence) => confidence switch
    {
        0.90 => 1.6448536269514722,
        0.95 => 1.959963984540054,
        0.99 => 2.5758293035489004,
        _ => NormalQuantile(1 - (1 - confidence) / 2),
    };

    /// <summary>Wilson score interval of <paramref name="passed"/> successes in <paramref name="runs"/> trials.</summary>
    public static (double Low, double High) Wilson(int passed, int runs, double confidence = 0.95)
    {
        if (runs == 0)
            return (0, 1);
        var z = Z(confidence);
        var p = (double)passed / runs;
        var z2 = z * z;
        var centre = (p + z2 / (2 * runs)) / (1 + z2 / runs);
        var half = z * Math.Sqrt(p * (1 - p) / runs + z2 / (4.0 * runs * runs)) / (1 + z2 / runs);
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>
    /// Exact McNemar test, one-sided: the probability of at least <paramref name="worse"/> of the discordant pairs going the
    /// candidate's bad way if both were equally good (each discordant pair a fair coin).
    /// </summary>
    public static double McNemarWorse(int worse, int better)
    {
        var n = worse + better;
        if (n == 0)
            return 1;
        double tail = 0;
        for (var k = worse; k <= n; k++)
            tail += Math.Exp(LogChoose(n, k) - n * Math.Log(2));
        return Math.Min(1, tail);
    }

    /// <summary>Exact McNemar test, two-sided (reported beside the one-sided figure a gate uses).</summary>
    public static double McNemarTwoSided(int b, int c)
    {
        var n = b + c;
        if (n == 0)
            return 1;
        double tail = 0;
        for (var k = 0; k <= Math.Min(b, c); k++)
            tail += Math.Exp(LogChoose(n, k) - n * Math.Log(2));
        return Math.Min(1, 2 * tail);
    }

    /// <summary>
    /// Paired bootstrap of the mean difference (candidate minus baseline) of <paramref name="differences"/>: the two-sided
    /// interval at <paramref name="confidence"/>, from <paramref name="resamples"/> seeded resamples (the same seed, the same interval).
    /// </summary>
    public static (double Mean, double Low, double High) PairedBootstrap(IReadOnlyList<double> differences, double confidence, long seed, int resamples = 2000)
    {
        if (differences.Count == 0)
            return (0, 0, 0);
        var mean = differences.Average();
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var means = new double[resamples];
        for (var r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (var i = 0; i < differences.Count; i++)
                sum += differences[random.Next(differences.Count)];
            means[r] = sum / differences.Count;
        }
        Array.Sort(means);
        var alpha = (1 - confidence) / 2;
        return (mean, Quantile(means, alpha), Quantile(means, 1 - alpha));
    }

    /// <summary>Nearest-rank percentile (p in 0..100) of the values; null when there are none.</summary>
    public static double? Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
            return null;
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    static double Quantile(double[] sorted, double q) => sorted[Math.Clamp((int)Math.Floor(q * (sorted.Length - 1)), 0, sorted.Length - 1)];

    static double LogChoose(int n, int k) => LogFactorial(n) - LogFactorial(k) - LogFactorial(n - k);

    static double LogFactorial(int n)
    {
        double sum = 0;
        for (var i = 2; i <= n; i++)
            sum += Math.Log(i);
        return sum;
    }

    /// <summary>Acklam's rational approximation of the standard normal quantile (relative error below 1.2e-9).</summary>
    static double NormalQuantile(double p)
    {
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low)
        {
            var q = Math.Sqrt(-2 * Math.Log(p));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (p > 1 - low)
            return -NormalQuantile(1 - p);
        var r = p - 0.5;
        var s = r * r;
        return (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1);
    }
}
