namespace Orchestrator.Tests.Effects;

/// <summary>Tests that need bubblewrap: skipped where it is missing, except in CI (<c>CI=true</c>), where they fail.</summary>
public static class Sandboxes
{
    public const string Bubblewrap = "/usr/bin/bwrap";

    public static void Require()
    {
        if (File.Exists(Bubblewrap) && File.Exists("/usr/bin/prlimit"))
            return;
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"bubblewrap is required in CI (CI=true) and {Bubblewrap} or /usr/bin/prlimit is missing: apt-get install bubblewrap util-linux.");
        Skip.If(true, $"{Bubblewrap} is not installed (apt-get install bubblewrap); the sandbox tests need it.");
    }
}
