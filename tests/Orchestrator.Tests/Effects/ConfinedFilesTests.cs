using Orchestrator.Effects;

namespace Orchestrator.Tests.Effects;

/// <summary>The kernel-checked opens beneath a workspace: a link swapped in after the path check still leads nowhere.</summary>
public sealed class ConfinedFilesTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("confined-test-").FullName;
    readonly string _outside = Directory.CreateTempSubdirectory("outside-test-").FullName;

    public ConfinedFilesTests() => File.WriteAllText(Path.Combine(_outside, "secret.txt"), "outside");

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    Workspace Workspace => new(Path.Combine(_root, "acme"));

    [Fact]
    public void A_folder_swapped_for_a_link_after_the_check_is_refused_at_the_open()
    {
        Directory.CreateDirectory(Path.Combine(Workspace.Root, "data"));
        File.WriteAllText(Path.Combine(Workspace.Root, "data", "secret.txt"), "inside");
        var checkedPath = Workspace.Resolve("data/secret.txt"); // the check passes: a real folder

        Directory.Delete(Path.Combine(Workspace.Root, "data"), recursive: true);
        Directory.CreateSymbolicLink(Path.Combine(Workspace.Root, "data"), _outside); // the swap
        using var files = ConfinedFiles.Open(Workspace);
        var open = () => files.OpenRead(Workspace.RelativeOf(checkedPath));

        open.Should().Throw<EffectRefusedException>().Which.Rule.Should().Be("fs.symlink");
    }

    [Fact]
    public void Opens_beneath_the_workspace_refuse_dot_dot_and_links_even_without_the_path_check()
    {
        Directory.CreateDirectory(Workspace.Root);
        File.CreateSymbolicLink(Path.Combine(Workspace.Root, "link"), Path.Combine(_outside, "secret.txt"));
        using var files = ConfinedFiles.Open(Workspace);

        ((Action)(() => files.OpenRead("../../" + Path.GetFileName(_outside) + "/secret.txt"))).Should().Throw<EffectRefusedException>().Which.Rule.Should().Be("fs.outside");
        ((Action)(() => files.OpenRead(Path.Combine(_outside, "secret.txt")))).Should().Throw<EffectRefusedException>().Which.Rule.Should().Be("fs.outside");
        ((Action)(() => files.OpenRead("link"))).Should().Throw<EffectRefusedException>().Which.Rule.Should().Be("fs.symlink");
        ((Action)(() => files.Folder("link/sub"))).Should().Throw<EffectRefusedException>();
    }

    [Fact]
    public async Task A_link_flipping_during_reads_never_lets_one_read_outside()
    {
        var inside = Path.Combine(Workspace.Root, "flip");
        Directory.CreateDirectory(inside);
        File.WriteAllText(Path.Combine(inside, "secret.txt"), "inside");
        var parked = Path.Combine(Workspace.Root, ".parked");
        using var stop = new CancellationTokenSource();
        var flipper = Task.Run(() =>
        {
            // Swaps the real folder and a link out, over and over, while the reads run.
            var link = Path.Combine(Workspace.Root, ".link");
            Directory.CreateSymbolicLink(link, _outside);
            while (!stop.IsCancellationRequested)
            {
                Directory.Move(inside, parked);
                Directory.Move(link, inside);
                Directory.Move(inside, link);
                Directory.Move(parked, inside);
            }
        });
        var (read, refused, missing) = (0, 0, 0);
        using (var files = ConfinedFiles.Open(Workspace))
        {
            for (var i = 0; i < 2000; i++)
            {
                try
                {
                    using var stream = files.OpenRead("flip/secret.txt");
                    if (stream is null)
                    {
                        missing++;
                        continue;
                    }
                    new StreamReader(stream).ReadToEnd().Should().Be("inside", "a read never reaches the folder outside");
                    read++;
                }
                catch (EffectRefusedException denied)
                {
                    denied.Rule.Should().Be("fs.symlink");
                    refused++;
                }
            }
        }
        await stop.CancelAsync();
        await flipper;

        (read + refused + missing).Should().Be(2000);
        read.Should().BePositive("the folder was there for some reads");
    }
}
