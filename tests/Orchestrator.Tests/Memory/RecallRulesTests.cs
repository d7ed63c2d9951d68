using Orchestrator.Memory;

namespace Orchestrator.Tests.Memory;

/// <summary>The rules under recall, without a store: what counts as a fact, how the budget is filled, how caps choose.</summary>
public sealed class RecallRulesTests
{
    [Theory]
    [InlineData("My locker code is 4711.", true)]
    [InlineData("The config is in /etc/app/settings.json now", true)]
    [InlineData("Ticket OPS-3391 blocks us", true)]
    [InlineData("Mail me at ada@example.org please", true)]
    [InlineData("I met Henrietta Quarles yesterday", true)]
    [InlineData("Thanks, that was helpful.", false)]
    [InlineData("What should we do next?", false)]
    public void A_sentence_with_a_number_path_id_address_or_name_is_a_fact(string sentence, bool fact) =>
        FactsLedger.Extract(sentence).Any().Should().Be(fact, sentence);

    [Fact]
    public void Facts_are_whole_sentences_kept_verbatim()
    {
        FactsLedger.Extract("Hello there. My flight is LX 318 at 09:40. See you!").Should().Equal("My flight is LX 318 at 09:40.");
    }

    [Fact]
    public void The_budget_is_never_exceeded_and_a_turn_is_recalled_whole_or_not_at_all()
    {
        var key = new MemoryKey("acme", "alice", "s");
        var seq = 0L;
        MemoryItem Item(string kind, string role, string text, string job) =>
            new() { Seq = ++seq, Kind = kind, Role = role, Text = text, JobId = job, Tenant = "acme", Principal = "alice", Session = "s" };
        var summary = Item(MemoryKinds.Summary, MemoryRoles.System, "We talked about the garden.", "j0");
        var turns = Enumerable.Range(1, 10).Select(i => (IReadOnlyList<MemoryItem>)
            [Item(MemoryKinds.Turn, MemoryRoles.User, new string('u', 80), $"j{i}"), Item(MemoryKinds.Turn, MemoryRoles.Assistant, new string('a', 80), $"j{i}")])
            .Reverse().ToList();
        var policy = new MemoryPolicy { BudgetTokens = 120 };

        var recall = RecallBudget.Fit(key, policy, summary, [], turns, []);

        recall.Tokens.Should().BeLessThanOrEqualTo(120);
        recall.Tokens.Should().Be(recall.Items.Sum(i => i.Tokens) + RecallText.HeaderTokens, "the header of the recalled block counts too");
        recall.Counts.Summary.Should().Be(1);
        var recalled = recall.Items.Where(i => i.Reason == RecallReasons.Recent).ToList();
        recalled.Should().HaveCount(recall.Counts.Recent * 2, "a turn is its user words and its reply, both or neither");
        recalled.Select(i => long.Parse(i.Id)).Should().BeInAscendingOrder("recent turns are given oldest first, as they were said");
        recall.Dropped.Should().Be(20 - recalled.Count);
    }

    [Fact]
    public void Caps_evict_the_oldest_turn_whole_and_keep_the_summary()
    {
        List<MemorySqlRow> rows =
        [
            new(1, "s", "j1", MemoryKinds.Summary, 10), new(2, "s", "j2", MemoryKinds.Turn, 10), new(3, "s", "j2", MemoryKinds.Turn, 10),
            new(4, "s", "j3", MemoryKinds.Turn, 10), new(5, "s", "j3", MemoryKinds.Turn, 10),
        ];

        var evicted = MemorySql.Evictions(rows.Select(r => new MemorySql.Row(r.Seq, r.Session, r.JobId, r.Kind, r.Bytes)).ToList(), maxItems: 4, maxBytes: null);

        evicted.Should().Equal(2, 3);
    }

    sealed record MemorySqlRow(long Seq, string Session, string JobId, string Kind, int Bytes);
}
