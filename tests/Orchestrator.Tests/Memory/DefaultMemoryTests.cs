using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Memory;

/// <summary>The shipped <c>text/respond</c> policy remembers a session: the README's example.</summary>
public sealed class DefaultMemoryTests
{
    [Fact]
    public async Task Text_respond_with_a_session_remembers_and_without_one_does_not()
    {
        using var app = new OrchestratorApp();
        using var client = app.ClientFor();
        await client.TurnAsync("text/respond", "readme", "My name is Ada and my build number is 8812.");

        var remembered = await client.TurnAsync("text/respond", "readme", "What is my build number? /context");
        var (_, forgotten) = await client.ActAsync(new { input = "What is my build number? /context" });

        remembered.Str("output.text").Should().Contain("user: My name is Ada and my build number is 8812.");
        forgotten.Str("output.text").Should().NotContain("8812");
        forgotten["output"]!["path"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Equal("respond");
    }
}
