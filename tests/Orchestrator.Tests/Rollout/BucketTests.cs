using Orchestrator.Rollout;

namespace Orchestrator.Tests.Rollout;

/// <summary>The assignment hash matches the test vectors published in doc/rollout.md (so a client or a console can compute it too).</summary>
public sealed class BucketTests
{
    [Theory]
    [InlineData("orchestrator", "prompts", "acme", "alice", 5402)]
    [InlineData("orchestrator", "policies", "acme", "alice", 17)]
    [InlineData("orchestrator", "routing", "acme", "alice", 3823)]
    [InlineData("orchestrator", "routing", "acme", "carol", 4908)]
    [InlineData("orchestrator", "routing", "globex", "bob", 556)]
    [InlineData("orchestrator", "routing", "acme", "session:s-1", 5202)]
    [InlineData("my-salt", "routing", "acme", "alice", 6127)]
    [InlineData("orchestrator", "routing", "acme", "ünïcode", 1022)]
    public void The_bucket_is_the_published_vector(string salt, string kind, string tenant, string subject, int bucket) =>
        Buckets.Of(salt, kind, tenant, subject).Should().Be(bucket);

    [Fact]
    public void A_bucket_is_in_the_candidate_below_percent_times_100()
    {
        Buckets.InCandidate(17, 0.17).Should().BeFalse("0.17% is buckets 0..16");
        Buckets.InCandidate(17, 0.18).Should().BeTrue();
        Buckets.InCandidate(0, 0).Should().BeFalse("0% takes no one");
        Buckets.InCandidate(9999, 100).Should().BeTrue("100% takes everyone");
        Buckets.InCandidate(3823, 38.23).Should().BeFalse();
        Buckets.InCandidate(3823, 38.24).Should().BeTrue();
    }
}
