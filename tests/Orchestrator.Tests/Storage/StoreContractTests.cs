using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Jobs;
using Orchestrator.Storage;
using Orchestrator.Tests.Harness;
using Orchestrator.Workflow;

namespace Orchestrator.Tests.Storage;

/// <summary>
/// The store contract, one suite run against every provider: admit unless the idempotency key exists, claim with a
/// lease (one winner), fencing by epoch and owner, claim of due jobs (not leased, not waiting for a retry, expired
/// leases rescued), renewal, and fenced node checkpoints. Each provider runs it on a fresh store of its own.
/// </summary>
public abstract class StoreContractTests
{
    /// <summary>Starts the service on a fresh store of this provider, with its own dispatcher kept out of the way.</summary>
    protected abstract Task<OrchestratorApp> StartAsync();

    protected static Dictionary<string, string?> Quiet => new()
    {
        // The app's own dispatcher must not claim the rows these tests write by hand.
        ["Orchestrator:Node:LeaseDuration"] = "01:00:00",
        ["Orchestrator:Node:PollInterval"] = "00:30:00",
        ["Orchestrator:Node:Id"] = "contract-node",
    };

    static readonly DateTime Now = new(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);

    /// <summary>
    /// Until the app's workers took back what the store held at start: that recovery claims every unfinished job (SQLite
    /// is one node), so rows a test writes before it ends could be claimed by the app instead of by the test.
    /// </summary>
    protected static async Task RecoveredAsync(OrchestratorApp app)
    {
        var workers = app.Services.GetRequiredService<JobWorkers>();
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!workers.Running && DateTime.UtcNow < until)
            await Task.Delay(10);
        workers.Running.Should().BeTrue("the app's workers start within 30 s");
    }

    static Job NewJob(string id, string? key = null) => new()
    {
        Id = id, TraceId = id.PadRight(32, '0')[..32], Tenant = "acme", Principal = "alice", Intent = "text/respond",
        Status = JobStatus.Accepted, Priority = JobPriority.Normal, IdempotencyKey = key, Request = "{}",
        DeadlineMs = 60_000, CreatedAt = Now.AddMinutes(-5), DeadlineAt = Now.AddHours(1),
    };

    [SkippableFact]
    public async Task Admit_answers_false_for_a_taken_idempotency_key_and_keeps_the_batch()
    {
        using var app = await StartAsync();
        var writer = app.Services.GetRequiredService<StoreWriter>();

        var first = writer.WriteAsync(JobWrites.Admit(NewJob("job_contract_0000000000000001", "order-42")));
        var second = writer.WriteAsync(JobWrites.Admit(NewJob("job_contract_0000000000000002", "order-42")));
        var third = writer.WriteAsync(JobWrites.Admit(NewJob("job_contract_0000000000000003", "order-43")));

        (await first).Should().BeTrue();
        (await second).Should().BeFalse("the key is taken for this tenant");
        (await third).Should().BeTrue("a lost insert must not take the rest of its batch down (PostgreSQL aborts a transaction on a failed statement)");
        (await Rows(app)).Select(j => j.Id).Should().BeEquivalentTo(["job_contract_0000000000000001", "job_contract_0000000000000003"]);
    }

    [SkippableFact]
    public async Task Of_two_starts_from_the_same_epoch_exactly_one_wins()
    {
        using var app = await StartAsync();
        var writer = app.Services.GetRequiredService<StoreWriter>();
        var job = NewJob("job_contract_0000000000000010");
        (await writer.WriteAsync(JobWrites.Admit(job))).Should().BeTrue();

        var a = Started(job, "node-a", 1);
        var b = Started(job, "node-b", 1);
        var results = await Task.WhenAll(writer.WriteAsync(JobWrites.Start(a, JobStatus.Accepted, 0)), writer.WriteAsync(JobWrites.Start(b, JobStatus.Accepted, 0)));

        results.Count(r => r).Should().Be(1, "a claim is guarded on the status and epoch it saw");
        (await Rows(app)).Single().Owner.Should().Be("node-a");
    }

    [SkippableFact]
    public async Task A_write_of_a_lost_lease_lands_nowhere()
    {
        using var app = await StartAsync();
        var writer = app.Services.GetRequiredService<StoreWriter>();
        var job = NewJob("job_contract_0000000000000020");
        await writer.WriteAsync(JobWrites.Admit(job));
        var mine = Started(job, "node-a", 1);
        (await writer.WriteAsync(JobWrites.Start(mine, JobStatus.Accepted, 0))).Should().BeTrue();
        // Another node takes the job over (its lease ran out): epoch 2.
        var theirs = Started(mine, "node-b", 2);
        (await writer.WriteAsync(JobWrites.Start(theirs, JobStatus.Running, 1))).Should().BeTrue();

        var node = new JobNode { JobId = job.Id, NodeId = "respond", Seq = 1, Kind = NodeKinds.Model, Name = "respond", Status = NodeStatus.Pending };
        var staleInsert = JobNodeWrite(node, new Fence(typeof(Job), job.Id, 1, "node-a"));
        var freshInsert = JobNodeWrite(node, new Fence(typeof(Job), job.Id, 2, "node-b"));
        var sameEpochOtherNode = JobNodeWrite(node, new Fence(typeof(Job), job.Id, 2, "node-a"));
        mine.CurrentNode = "respond";

        (await writer.WriteAsync(staleInsert)).Should().BeFalse("node-a's epoch is gone");
        (await writer.WriteAsync(sameEpochOtherNode)).Should().BeFalse("the same epoch counted by another node is not its lease");
        (await writer.WriteAsync(JobWrites.Progress(mine))).Should().BeFalse("a job write of node-a is guarded by epoch and owner");
        (await writer.WriteAsync(freshInsert)).Should().BeTrue();
        (await writer.WriteAsync(JobWrites.End(Ended(mine)))).Should().BeFalse("node-a cannot end node-b's run");
        (await writer.WriteAsync(JobWrites.End(Ended(theirs)))).Should().BeTrue();

        var row = (await Rows(app)).Single();
        row.Status.Should().Be(JobStatus.Completed);
        row.Owner.Should().Be("node-b");
        row.CurrentNode.Should().BeNull("node-a's progress never landed");
    }

    [SkippableFact]
    public async Task Claim_takes_due_jobs_once_and_leaves_leased_and_waiting_ones()
    {
        using var app = await StartAsync();
        var writer = app.Services.GetRequiredService<StoreWriter>();
        var fresh = NewJob("job_contract_0000000000000031");
        var justAdmitted = NewJob("job_contract_0000000000000032");
        justAdmitted.CreatedAt = Now;
        var waiting = NewJob("job_contract_0000000000000033");
        waiting.NextAttemptAt = Now.AddMinutes(1);
        waiting.Owner = "node-x";
        var due = NewJob("job_contract_0000000000000034");
        due.NextAttemptAt = Now.AddSeconds(-1);
        due.Owner = "node-x";
        var leased = NewJob("job_contract_0000000000000035");
        leased.Status = JobStatus.Running;
        leased.Owner = "node-x";
        leased.Epoch = 3;
        leased.LeaseUntil = Now.AddSeconds(10);
        var expired = NewJob("job_contract_0000000000000036");
        expired.Status = JobStatus.Running;
        expired.Owner = "node-x";
        expired.Epoch = 4;
        expired.LeaseUntil = Now.AddSeconds(-1);
        var done = NewJob("job_contract_0000000000000037");
        done.Status = JobStatus.Completed;
        foreach (var job in new[] { fresh, justAdmitted, waiting, due, leased, expired, done })
            (await writer.WriteAsync(JobWrites.Admit(job))).Should().BeTrue();

        var claim = new ClaimDue(ClaimDue.Scope.Poll, "node-a", Now, Now.AddSeconds(15), Now.AddSeconds(-1), 100);
        var again = new ClaimDue(ClaimDue.Scope.Poll, "node-b", Now, Now.AddSeconds(15), Now.AddSeconds(-1), 100);
        await Task.WhenAll(writer.WriteAsync(claim), writer.WriteAsync(again));

        claim.Claimed.Should().BeEquivalentTo(new[] { (fresh.Id, 2L), (due.Id, 2L), (expired.Id, 5L) },
            "fresh jobs that waited a poll, due retries and expired leases are due; leased, waiting, just admitted and finished ones are not");
        again.Claimed.Should().BeEmpty("a claimed job is leased: a second node does not take it");
        var rows = (await Rows(app)).ToDictionary(j => j.Id);
        rows[expired.Id].Owner.Should().Be("node-a");
        rows[expired.Id].Epoch.Should().Be(5);
        rows[leased.Id].Owner.Should().Be("node-x");

        var renewal = new RenewLeases("node-a", Now.AddSeconds(30));
        await writer.WriteAsync(renewal);
        renewal.Held.Should().BeEquivalentTo(claim.Claimed, "a node holds what it claimed");
    }

    static Job Started(Job job, string node, long epoch)
    {
        var started = job.Snapshot();
        started.Status = JobStatus.Running;
        started.Owner = node;
        started.Epoch = epoch;
        started.Attempts++;
        started.StartedAt = Now;
        started.LeaseUntil = Now.AddSeconds(15);
        return started;
    }

    static Job Ended(Job job)
    {
        var ended = job.Snapshot();
        ended.Status = JobStatus.Completed;
        ended.CompletedAt = Now;
        ended.LeaseUntil = null;
        return ended;
    }

    static StoreWrite JobNodeWrite(JobNode node, Fence fence)
    {
        var write = NodeWrites.Add(node);
        write.Fence = fence;
        return write;
    }

    static async Task<List<Job>> Rows(OrchestratorApp app)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        return await db.Set<Job>().AsNoTracking().OrderBy(j => j.Id).ToListAsync();
    }
}

public sealed class SqliteStoreContractTests : StoreContractTests
{
    protected override async Task<OrchestratorApp> StartAsync()
    {
        var app = new OrchestratorApp(Quiet);
        _ = app.Server;
        await RecoveredAsync(app);
        return app;
    }
}

public sealed class PostgresStoreContractTests : StoreContractTests
{
    protected override async Task<OrchestratorApp> StartAsync()
    {
        var postgres = await PostgresServer.RequireAsync();
        var settings = Quiet;
        settings["Orchestrator:Store:Provider"] = "Postgres";
        settings["ConnectionStrings:Orchestrator"] = await postgres.NewDatabaseAsync();
        var app = new OrchestratorApp(settings);
        _ = app.Server;
        await RecoveredAsync(app);
        return app;
    }
}
