namespace Orchestrator.Workflow;

/// <summary>One artifact version a job ran with: <c>v3</c>, its content hash, and why (<c>pinned</c>, <c>rollout</c>, <c>stable</c>).</summary>
public sealed record VersionUsed(string Version, string Hash, string Reason);

/// <summary>The versions of the three artifact kinds a job ran with, named as the act request's <c>versions</c> pins them.</summary>
public sealed record JobVersions(VersionUsed Prompts, VersionUsed Policy, VersionUsed Routing)
{
    /// <summary>A short metric tag, e.g. <c>prompts=v1,policy=v2,routing=v1</c>.</summary>
    public string Tag => $"prompts={Prompts.Version},policy={Policy.Version},routing={Routing.Version}";
}

/// <summary>The policy a new job runs under (the intent policy with the chosen prompts and routing applied) and the versions chosen.</summary>
public sealed record VersionChoice(IntentPolicy Policy, JobVersions Versions);

/// <summary>
/// Chooses the artifact versions of a new job: pinned by its request, assigned by a rollout, or stable. Defined here so the
/// edge (Acting) can ask without knowing Rollout, which implements it above.
/// </summary>
public interface IVersionChooser
{
    /// <summary>The choice, or a field error (<paramref name="field"/>, <paramref name="error"/>) for an unknown pinned version.</summary>
    VersionChoice? Choose(string intent, string tenant, string principal, string? session, ActVersions? pins, out string? field, out string? error);

    /// <summary>
    /// The policy of exactly these pins, every unpinned kind at its stable version (no rollout assigns anything): what an
    /// evaluation side <c>{ "versions": ... }</c> runs. Null with a field error for an unknown version, or before the versions are read.
    /// </summary>
    VersionChoice? Pinned(string intent, ActVersions pins, out string? field, out string? error);

    /// <summary>Makes sure the chosen policy's snapshot is stored (once per content hash), so any node can run a job admitted under it.</summary>
    ValueTask EnsureStoredAsync(IntentPolicy policy, CancellationToken cancellationToken);
}
