using Orchestrator.Effects;

namespace Orchestrator.Tests.Effects;

public sealed class WorkspaceTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("workspace-test-").FullName;
    readonly string _outside = Directory.CreateTempSubdirectory("outside-test-").FullName;

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    Workspace Workspace => new(Path.Combine(_root, "acme"));

    [Theory]
    [InlineData("notes.txt")]
    [InlineData("a/b/c.txt")]
    [InlineData("a/../b.txt")]
    [InlineData("./x")]
    [InlineData(".")]
    public void Paths_inside_the_workspace_resolve(string path)
    {
        Directory.CreateDirectory(Workspace.Root);

        var resolved = Workspace.Resolve(path);

        resolved.Should().StartWith(Workspace.Root);
    }

    [Theory]
    [InlineData("../globex/secret.txt")]
    [InlineData("a/../../escape.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("~/x")]
    [InlineData("..")]
    public void Paths_that_leave_the_workspace_are_capability_denied(string path)
    {
        Directory.CreateDirectory(Workspace.Root);

        var resolve = () => Workspace.Resolve(path);

        resolve.Should().Throw<EffectRefusedException>().Which.Code.Should().Be("capability_denied");
    }

    [Fact]
    public void A_symlink_out_of_the_workspace_is_capability_denied()
    {
        Directory.CreateDirectory(Workspace.Root);
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "s3cret");
        Directory.CreateSymbolicLink(Path.Combine(Workspace.Root, "link"), _outside);
        File.CreateSymbolicLink(Path.Combine(Workspace.Root, "file-link"), Path.Combine(_outside, "secret.txt"));

        ((Action)(() => Workspace.Resolve("link/secret.txt"))).Should().Throw<EffectRefusedException>();
        ((Action)(() => Workspace.Resolve("file-link"))).Should().Throw<EffectRefusedException>();
        ((Action)(() => Workspace.Resolve("link/new-file.txt"))).Should().Throw<EffectRefusedException>("a file that does not exist yet behind a link is outside too");
    }

    [Fact]
    public void A_symlink_that_stays_inside_is_allowed()
    {
        Directory.CreateDirectory(Path.Combine(Workspace.Root, "real"));
        Directory.CreateSymbolicLink(Path.Combine(Workspace.Root, "alias"), Path.Combine(Workspace.Root, "real"));

        Workspace.Resolve("alias/file.txt").Should().StartWith(Workspace.Root);
    }

    [Fact]
    public void A_symlink_chain_that_ends_outside_is_denied()
    {
        Directory.CreateDirectory(Workspace.Root);
        Directory.CreateSymbolicLink(Path.Combine(Workspace.Root, "hop2"), _outside);
        Directory.CreateSymbolicLink(Path.Combine(Workspace.Root, "hop1"), "hop2");

        ((Action)(() => Workspace.Resolve("hop1/x"))).Should().Throw<EffectRefusedException>();
    }
}
