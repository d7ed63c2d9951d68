using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Memory;

/// <summary>TTL holds on read: an expired item is never recalled, listed or found, with no sweep run.</summary>
public sealed class MemoryTtlTests
{
    [Fact]
    public async Task An_expired_item_is_not_recalled_listed_or_found_with_no_sweep()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        using var app = new MemoryApp(time);
        using var client = app.ClientFor();
        await client.TurnAsync("memory/ttl", "ttl", "The secret word is pineapple42.");
        (await client.SearchAsync("pineapple42")).Should().NotBeEmpty();
        var before = await client.TurnAsync("memory/ttl", "ttl", "What is the secret word? /context");
        before.Str("output.text").Should().Contain("pineapple42", "within its TTL the item is recalled");

        time.Advance(TimeSpan.FromMinutes(61));

        var after = await client.TurnAsync("memory/ttl", "ttl", "What is the secret word? /context");
        after.Str("output.text").Should().NotContain("pineapple42", "an expired item is never recalled, sweep or not");
        (await client.SearchAsync("pineapple42")).Should().BeEmpty();
        var memory = await client.MemoryOfAsync("ttl");
        memory.Items().Should().OnlyContain(i => i["source"]!.Str("jobId") == after.Str("jobId"));
        memory.Items().Should().OnlyContain(i => DateTime.Parse(i.Str("expiresAt")).ToUniversalTime() == new DateTime(2026, 12, 1, 14, 1, 0, DateTimeKind.Utc));
    }
}
