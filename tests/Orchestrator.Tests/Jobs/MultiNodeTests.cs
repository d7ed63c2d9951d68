using System.Data.Common;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

/// <summary>
/// Several nodes of the service (real processes, each its own port and <c>Orchestrator:Node:Id</c>) on one PostgreSQL
/// store, killed, paused and resumed: every job ends once, every effect is applied once, and a node writes for a job
/// only while it holds the job's lease. The evidence is the store itself: a trigger records every write to
/// <c>Jobs</c> and <c>JobNodes</c> with the process that made it (its connection's application name is its node id).
/// </summary>
public sealed class MultiNodeTests
{
    static readonly string[] Names = ["node-a", "node-b", "node-c"];

    static Dictionary<string, string> Agents(int workers, int latencyMs) => new()
    {
        ["Orchestrator:Queue:Workers"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = latencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    static string Line(int job, int line) => $"job{job}-line{line}\n";

    static string Expected(int job, int lines) => string.Concat(Enumerable.Range(1, lines).Select(line => Line(job, line)));

    /// <summary>An agent run whose simulated model calls <c>fs_append</c> once per line, in order, then answers.</summary>
    static string Appends(int job, int lines) => "Work.\n" + string.Join("\n", Enumerable.Range(1, lines).Select(line =>
        $$"""/call fs_append {"path":"out-{{job}}.txt","content":"{{Line(job, line).Replace("\n", "\\n")}}"}"""));

    static async Task<string> SubmitAsync(HttpClient client, string input)
    {
        var (response, job) = await client.ActAsync(new { intent = "agent/run", input, mode = "async", deadlineMs = 300_000 });
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, job.ToJsonString());
        return job.Str("jobId");
    }

    [SkippableFact]
    public async Task Three_nodes_killed_at_random_moments_finish_every_job_and_apply_every_effect_once()
    {
        const int Jobs = 300;
        const int Lines = 3; // three appends and the answer: four model turns
        const int Workers = 4;
        const int Kills = 3;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        await using var cluster = await MultiNode.CreateAsync();
        var nodes = Names.Select(name => cluster.Add(name, Agents(Workers, latencyMs: 300))).ToArray();
        // The first alone on the empty store (see Nodes_started_at_once_on_an_empty_store_all_start), then the others at once.
        await nodes[0].StartAsync();
        await Task.WhenAll(nodes.Skip(1).Select(n => n.StartAsync()));
        await cluster.Store.InstallWriteAuditAsync();
        var started = clock.Elapsed;

        var ids = new string[Jobs];
        var clients = nodes.Select(n => n.Client()).ToArray();
        await Parallel.ForEachAsync(Enumerable.Range(0, Jobs), new ParallelOptions { MaxDegreeOfParallelism = 12 },
            async (job, _) => ids[job] = await SubmitAsync(clients[job % nodes.Length], Appends(job, Lines)));
        foreach (var client in clients)
            client.Dispose();
        var submitted = clock.Elapsed;

        // Three kills at random moments: each at a random share of the work done, on a random node that is up, half of
        // them while that node has an effect between its committed intent and its committed result. A killed node is
        // started again at once, beside the work and the next kill, so slow starts never push a kill past the work.
        var kills = new List<string>();
        var restarts = new Dictionary<ServiceProcess, Task>();
        for (var kill = 0; kill < Kills; kill++)
        {
            var threshold = (int)(Jobs * (0.10 + 0.22 * kill + 0.12 * random.NextDouble()));
            await cluster.WaitForAsync($"{threshold} finished jobs before kill {kill + 1} (seed {seed})",
                () => Finished(cluster.Store), done => done >= threshold, TimeSpan.FromSeconds(60));
            var up = nodes.Where(n => !restarts.TryGetValue(n, out var restart) || restart.IsCompleted).ToArray();
            var victim = up[random.Next(up.Length)];
            if (restarts.TryGetValue(victim, out var lastStart))
                await lastStart; // surfaces a start that failed
            var caught = random.Next(2) == 0 && await EffectRunningOnAsync(cluster.Store, victim.NodeId!, TimeSpan.FromSeconds(5));
            var done = await Finished(cluster.Store);
            victim.Kill();
            kills.Add($"{victim.NodeId} at {done} finished jobs{(caught ? ", with an effect in flight" : "")} ({clock.Elapsed.TotalSeconds:0.0} s)");
            done.Should().BeLessThan(Jobs, $"kill {kill + 1} lands while jobs still run (seed {seed})");
            restarts[victim] = victim.StartAsync();
        }
        await Task.WhenAll(restarts.Values);

        await cluster.WaitForAsync($"all {Jobs} jobs to end (seed {seed}, kills: {string.Join("; ", kills)})",
            () => Finished(cluster.Store), done => done == Jobs, TimeSpan.FromSeconds(90));
        var finished = clock.Elapsed;
        var context = $"seed {seed}; kills: {string.Join("; ", kills)}";

        var unfinished = await cluster.Store.QueryAsync("""SELECT "Id", "Status", "ErrorCode", "ErrorMessage" FROM "Jobs" WHERE "Status" <> 'completed'""",
            r => $"{r.GetString(0)} {r.GetString(1)} {Text(r, 2)}: {Text(r, 3)}");
        unfinished.Should().BeEmpty($"every job completes whichever node ran it and however often a node died ({context})");

        for (var job = 0; job < Jobs; job++)
            (await File.ReadAllTextAsync(Path.Combine(cluster.Folder, "workspaces", "acme", $"out-{job}.txt"))).Should().Be(Expected(job, Lines),
                $"every append of job {job} ({ids[job]}) is applied exactly once, in order ({context})");

        await AssertEveryWriteWasTheLeaseHoldersAsync(cluster.Store, context);

        // The effect journal: each append is one succeeded node whose recorded offset is where its line sits in the file,
        // started again only after a kill cut its run short (at most one node per interrupted run).
        var effects = await cluster.Store.QueryAsync(
            """
            SELECT n."JobId", n."NodeId", n."Status", n."Attempts", (n."Input"::jsonb -> 'facts' ->> 'lengthBefore')::bigint, n."Input"::jsonb -> 'arguments' ->> 'content'
            FROM "JobNodes" n WHERE n."Kind" = 'effect'
            """,
            r => (Job: r.GetString(0), Node: r.GetString(1), Status: r.GetString(2), Attempts: r.GetInt32(3), Offset: r.GetInt64(4), Content: r.GetString(5)));
        effects.Should().HaveCount(Jobs * Lines, $"each job has one effect node per line ({context})");
        effects.Where(e => e.Status != "succeeded").Should().BeEmpty(context);
        var jobOf = ids.Select((id, job) => (id, job)).ToDictionary(p => p.id, p => p.job);
        foreach (var effect in effects)
        {
            var line = int.Parse(effect.Content.Split("-line")[1], System.Globalization.CultureInfo.InvariantCulture);
            effect.Offset.Should().Be(Expected(jobOf[effect.Job], line - 1).Length,
                $"{effect.Job} {effect.Node} appended line {line} where lines 1..{line - 1} ended ({context})");
        }
        // A job runs again only after its run was cut short and the job claimed while still running (after a kill, or a
        // node stalled past its lease on a loaded machine), and each such run re-starts at most one effect.
        var takeovers = await cluster.Store.ScalarAsync<long>(
            """SELECT count(*) FROM "AuditJobs" WHERE "Op" = 'update' AND "OldStatus" = 'running' AND "NewEpoch" > "OldEpoch" """);
        var rerun = await cluster.Store.ScalarAsync<long>("""SELECT coalesce(sum("Attempts" - 1), 0) FROM "Jobs" """);
        rerun.Should().BeInRange(1, takeovers, $"the kills interrupted runs, and only runs taken over ran again ({takeovers} taken over; {context})");
        var restarted = effects.Sum(e => e.Attempts - 1);
        restarted.Should().BeLessThanOrEqualTo((int)takeovers, $"only a run cut short starts an effect again ({context})");

        // The work stays shared: a node takes from the others at most as many jobs as it has workers to run them, also
        // when it comes back (it once took back every job waiting on the live nodes, leaving them idle). One commit may
        // hold one claim (at most Workers jobs) and the starts of jobs admitted here (one per worker).
        var hoards = await cluster.Store.QueryAsync(
            """
            SELECT "Writer" || ' took ' || count(*) || ' jobs at once' FROM "AuditJobs"
            WHERE "Op" = 'update' AND "NewEpoch" > "OldEpoch" AND "OldOwner" IS DISTINCT FROM "NewOwner"
            GROUP BY "Writer", "Tx" HAVING count(*) > @most ORDER BY count(*) DESC LIMIT 10
            """, r => r.GetString(0), ("most", 2 * Workers));
        hoards.Should().BeEmpty($"no node claims more jobs than it can run ({context})");
        var shares = await cluster.Store.QueryAsync("""SELECT "Owner", count(*) FROM "Jobs" GROUP BY "Owner" ORDER BY "Owner" """,
            r => $"{r.GetString(0)} {r.GetInt64(1)}");

        using var operatorClient = nodes[0].Client(MultiNode.OperatorKey);
        var diag = await Api.BodyOf(await operatorClient.GetAsync("/v1/diag/nodes"));
        diag["items"]!.AsArray().Select(n => (n!.Str("id"), n.Str("alive"))).Should().BeEquivalentTo(Names.Select(n => (n, "True")));

        System.Console.WriteLine($"[multi-node] started {started.TotalSeconds:0.0} s, submitted {submitted.TotalSeconds:0.0} s, " +
                          $"finished {finished.TotalSeconds:0.0} s; ran {string.Join(", ", shares)}; {takeovers} runs taken over, {rerun} runs again, {restarted} effects started again; {context}");
    }

    [SkippableFact]
    public async Task A_node_paused_past_its_lease_loses_its_job_and_writes_nothing_for_it_when_resumed()
    {
        const int Lines = 3;
        await using var cluster = await MultiNode.CreateAsync();
        var a = cluster.Add("node-a", Agents(workers: 2, latencyMs: 1_500));
        var b = cluster.Add("node-b", Agents(workers: 2, latencyMs: 1_500));
        await a.StartAsync();
        await b.StartAsync();
        await cluster.Store.InstallWriteAuditAsync();
        using var clientA = a.Client();
        using var clientB = b.Client();

        var id = await SubmitAsync(clientA, Appends(0, Lines));
        // Paused in its second model turn: its first append is done, the next has not begun.
        await cluster.WaitForAsync("node-a to run the second model turn", () => cluster.Store.QueryAsync(
                """
                SELECT j."Owner" FROM "Jobs" j JOIN "JobNodes" n ON n."JobId" = j."Id"
                WHERE j."Id" = @id AND n."NodeId" = 'agent/model-2' AND n."Status" = 'running'
                """, r => r.GetString(0), ("id", id)),
            owners => owners is ["node-a"], TimeSpan.FromSeconds(30));
        var epochA = await cluster.Store.ScalarAsync<long>("""SELECT "Epoch" FROM "Jobs" WHERE "Id" = @id""", ("id", id));
        await a.PauseAsync();
        var paused = Stopwatch.StartNew();
        try
        {
            await cluster.WaitForAsync("node-b to take the job", () => OwnerAsync(cluster.Store, id), owner => owner == "node-b", TimeSpan.FromSeconds(20));
            var takenAfter = paused.Elapsed;
            takenAfter.Should().BeGreaterThan(TimeSpan.FromSeconds(1.5), "the job is taken only once node-a's lease (3 s, renewed about every second) has expired");
            // B runs the job's next turn before A wakes, so A wakes into a run that has moved on.
            await cluster.WaitForAsync("node-b to start the second model turn again", () => cluster.Store.ScalarAsync<int>(
                """SELECT "Attempts" FROM "JobNodes" WHERE "JobId" = @id AND "NodeId" = 'agent/model-2'""", ("id", id)), n => n >= 2, TimeSpan.FromSeconds(10));
        }
        finally
        {
            await a.ResumeAsync();
        }

        var view = await clientB.WaitForEndAsync(id, waitMs: 60_000);
        view.Str("status").Should().Be("completed", view.ToJsonString());
        view.Str("node").Should().Be("node-b");
        // A's walk ends when its model call returns, its next write finds node-b's epoch, and it stops.
        await WaitForLogAsync(a, "lost its lease", TimeSpan.FromSeconds(15));

        var job = (await cluster.Store.QueryAsync("""SELECT "Owner", "Epoch", "Attempts" FROM "Jobs" WHERE "Id" = @id""",
            r => (Owner: r.GetString(0), Epoch: r.GetInt64(1), Attempts: r.GetInt32(2)), ("id", id))).Single();
        job.Owner.Should().Be("node-b");
        job.Epoch.Should().BeGreaterThan(epochA);
        job.Attempts.Should().Be(2, "node-a's attempt and node-b's");
        (await File.ReadAllTextAsync(Path.Combine(cluster.Folder, "workspaces", "acme", "out-0.txt"))).Should().Be(Expected(0, Lines),
            "each append is applied once, by node-a before the pause or by node-b after it");

        var takenAt = await cluster.Store.ScalarAsync<long>(
            """SELECT min("Seq") FROM "AuditJobs" WHERE "JobId" = @id AND "NewOwner" = 'node-b' """, ("id", id));
        var late = await cluster.Store.QueryAsync(
            """
            SELECT 'JobNodes ' || "NodeId" || ' ' || coalesce("OldStatus", 'insert') || '->' || "NewStatus" FROM "AuditJobNodes" WHERE "JobId" = @id AND "Writer" = 'node-a'
              AND "At" > (SELECT "At" FROM "AuditJobs" WHERE "Seq" = @taken)
            UNION ALL
            SELECT 'Jobs ' || "OldStatus" || '->' || "NewStatus" FROM "AuditJobs" WHERE "JobId" = @id AND "Writer" = 'node-a' AND "Seq" > @taken
            """, r => r.GetString(0), ("id", id), ("taken", takenAt));
        late.Should().BeEmpty("node-a wrote nothing for the job once node-b held it");
        var modelTurn = (await cluster.Store.QueryAsync(
            """SELECT "Writer", "Attempts" FROM "AuditJobNodes" WHERE "JobId" = @id AND "NodeId" = 'agent/model-2' ORDER BY "Seq" DESC LIMIT 1""",
            r => (Writer: r.GetString(0), Attempts: r.GetInt32(1)), ("id", id))).Single();
        modelTurn.Should().Be(("node-b", 2), "the turn node-a was paused in was run again and ended by node-b");
        await AssertEveryWriteWasTheLeaseHoldersAsync(cluster.Store, "one job, node-a paused");
        a.ReadLog().Should().NotContain("failed unexpectedly", "a run stopped by a lost lease is no error of the service");
    }

    [SkippableFact]
    public async Task Cancel_on_one_node_stops_a_job_running_on_another_within_the_propagation_interval()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var a = cluster.Add("node-a", Agents(workers: 2, latencyMs: 600_000));
        var b = cluster.Add("node-b", Agents(workers: 2, latencyMs: 600_000));
        await a.StartAsync();
        await b.StartAsync();
        using var clientA = a.Client();
        using var clientB = b.Client();
        var (_, accepted) = await clientA.ActAsync(new { input = "a very slow answer", mode = "async", deadlineMs = 300_000 });
        var id = accepted.Str("jobId");
        await clientA.WaitForAsync(id, j => j.Str("status") == "running" && j["node"]?.ToString() == "node-a");

        var clock = Stopwatch.StartNew();
        var cancel = await clientB.PostAsync($"/v1/jobs/{id}/cancel", null);
        cancel.StatusCode.Should().Be(HttpStatusCode.Accepted, await cancel.Content.ReadAsStringAsync());
        var view = await clientB.WaitForAsync(id, j => j.Str("status") != "running", TimeSpan.FromSeconds(10));
        var ended = clock.Elapsed;

        view.Str("status").Should().Be("canceled", view.ToJsonString());
        view.Str("error.code").Should().Be("canceled");
        view.Str("node").Should().Be("node-a", "the run was stopped where it ran");
        ended.Should().BeLessThan(TimeSpan.FromSeconds(2), "node-a reads cancels every 250 ms (PropagationMs)");
        System.Console.WriteLine($"[multi-node] cancel on node-b ended the run on node-a in {ended.TotalMilliseconds:0} ms");
    }

    [SkippableFact]
    public async Task Quarantine_and_release_on_one_node_hold_on_another_within_the_propagation_interval()
    {
        var settings = new Dictionary<string, string>
        {
            ["Orchestrator:Models:0:Id"] = "sim",
            ["Orchestrator:Models:0:Provider"] = "simulated",
            ["Orchestrator:Models:1:Id"] = "spare",
            ["Orchestrator:Models:1:Provider"] = "simulated",
        };
        await using var cluster = await MultiNode.CreateAsync();
        var a = cluster.Add("node-a", settings);
        var b = cluster.Add("node-b", settings);
        await a.StartAsync();
        await b.StartAsync();
        using var operatorA = a.Client(MultiNode.OperatorKey);
        using var userB = b.Client();

        (await operatorA.PostAsync("/v1/admin/models/sim/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        var quarantined = await ModelStatusOnAsync(userB, "sim", status => status == "quarantined");
        var (answered, job) = await userB.ActAsync(new { input = "who answers?", routing = new { strategy = "quality-first" } });
        answered.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        job.Str("output.model").Should().Be("spare", "node-b routes nothing to a model quarantined on node-a");

        (await operatorA.PostAsync("/v1/admin/models/sim/release", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        var released = await ModelStatusOnAsync(userB, "sim", status => status != "quarantined");

        // PropagationMs is 250; the margin covers a node's first (cold, just-in-time compiled) pass through this path.
        quarantined.Should().BeLessThan(TimeSpan.FromMilliseconds(250 + 1_500), "PropagationMs is 250");
        released.Should().BeLessThan(TimeSpan.FromMilliseconds(250 + 1_500), "PropagationMs is 250");
        System.Console.WriteLine($"[multi-node] quarantine seen on node-b after {quarantined.TotalMilliseconds:0} ms, release after {released.TotalMilliseconds:0} ms");
    }

    [SkippableFact]
    public async Task Nodes_started_at_once_on_an_empty_store_all_start()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var nodes = Names.Select(name => cluster.Add(name, Agents(workers: 1, latencyMs: 0))).ToArray();

        await Task.WhenAll(nodes.Select(n => n.StartAsync()));

        using var operatorClient = nodes[0].Client(MultiNode.OperatorKey);
        var diag = await Api.BodyOf(await operatorClient.GetAsync("/v1/diag/nodes"));
        diag["items"]!.AsArray().Select(n => n!.Str("id")).Should().BeEquivalentTo(Names, "their migrations and first writes raced, and every node started");
    }

    [Fact]
    public async Task A_second_node_on_one_SQLite_file_refuses_to_start_and_names_PostgreSQL()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-sqlite-nodes-").FullName;
        try
        {
            // SQLite whatever store the rest of the suite runs on.
            var sqlite = $"Data Source={Path.Combine(folder, "orchestrator.db")}";
            await using var first = new ServiceProcess(folder, new Dictionary<string, string>
                { ["Orchestrator:Node:Id"] = "first", ["Orchestrator:Store:Provider"] = "Sqlite", ["ConnectionStrings:Orchestrator"] = sqlite });
            await using var second = new ServiceProcess(folder, new Dictionary<string, string>
                { ["Orchestrator:Node:Id"] = "second", ["Orchestrator:Store:Provider"] = "Sqlite", ["ConnectionStrings:Orchestrator"] = sqlite });
            await first.StartAsync();

            var start = () => second.StartAsync();

            var refused = await start.Should().ThrowAsync<InvalidOperationException>("SQLite is one node only");
            refused.Which.Message.Should().Contain("SQLite is one node only").And.Contain("PostgreSQL").And.Contain("Orchestrator:Store:Provider=Postgres");
            using var client = first.Client();
            (await client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK, "the first node goes on serving");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    /// <summary>
    /// What the audit trigger recorded, checked against the leases: every graph-node write was made by the node that
    /// owned the job at that moment (so no node ran a graph node while another held the job), every claim by the node
    /// it names, no epoch ever had two owners or went back, and only a run's owner moved the job out of running.
    /// </summary>
    static async Task AssertEveryWriteWasTheLeaseHoldersAsync(PostgresDatabase store, string context)
    {
        var foreign = await store.QueryAsync(
            """
            SELECT "JobId" || ' ' || "NodeId" || ' ' || coalesce("OldStatus", 'insert') || '->' || "NewStatus" || ' written by ' || "Writer"
                   || ' while ' || coalesce("JobOwner", 'nobody') || ' held epoch ' || "JobEpoch"
            FROM "AuditJobNodes" WHERE "Writer" IS DISTINCT FROM "JobOwner" ORDER BY "Seq" LIMIT 20
            """, r => r.GetString(0));
        foreign.Should().BeEmpty($"a graph node is written only by the node holding its job's lease ({context})");

        var shared = await store.QueryAsync(
            """
            SELECT "JobId" || ' epoch ' || "NewEpoch" || ': ' || string_agg(DISTINCT "NewOwner", ', ')
            FROM "AuditJobs" WHERE "NewOwner" IS NOT NULL GROUP BY "JobId", "NewEpoch" HAVING count(DISTINCT "NewOwner") > 1 LIMIT 20
            """, r => r.GetString(0));
        shared.Should().BeEmpty($"no job ever had two owners at one epoch ({context})");

        var claims = await store.QueryAsync(
            """
            SELECT "JobId" || ' epoch ' || "OldEpoch" || '->' || "NewEpoch" || ' for ' || coalesce("NewOwner", 'nobody') || ' written by ' || "Writer"
            FROM "AuditJobs" WHERE "Op" = 'update' AND ("NewEpoch" < "OldEpoch" OR ("NewEpoch" > "OldEpoch" AND "Writer" IS DISTINCT FROM "NewOwner"))
            ORDER BY "Seq" LIMIT 20
            """, r => r.GetString(0));
        claims.Should().BeEmpty($"an epoch only rises, and only by the claim of the node that takes the job ({context})");

        var ends = await store.QueryAsync(
            """
            SELECT "JobId" || ' running->' || "NewStatus" || ' at epoch ' || "NewEpoch" || ' of ' || coalesce("OldOwner", 'nobody') || ' written by ' || "Writer"
            FROM "AuditJobs" WHERE "OldStatus" = 'running' AND "NewStatus" <> 'running' AND "Writer" IS DISTINCT FROM "OldOwner"
            ORDER BY "Seq" LIMIT 20
            """, r => r.GetString(0));
        ends.Should().BeEmpty($"only the node running a job ends or parks it ({context})");

        // A graph node starts (its attempts rise) once per lease at most: two starts at one epoch would be two runs of it under one claim.
        var twice = await store.QueryAsync(
            """
            SELECT "JobId" || ' ' || "NodeId" || ' started twice at epoch ' || "JobEpoch" FROM (
                SELECT "JobId", "NodeId", "JobEpoch", "Attempts" > coalesce(lag("Attempts") OVER (PARTITION BY "JobId", "NodeId" ORDER BY "Seq"), 0) AS "Started"
                FROM "AuditJobNodes") starts
            WHERE "Started" GROUP BY "JobId", "NodeId", "JobEpoch" HAVING count(*) > 1 LIMIT 20
            """, r => r.GetString(0));
        twice.Should().BeEmpty($"each start of a graph node is its own lease's ({context})");
    }

    static async Task<int> Finished(PostgresDatabase store) =>
        await store.ScalarAsync<int>("""SELECT count(*) FROM "Jobs" WHERE "Status" IN ('completed', 'failed', 'canceled')""");

    static async Task<string?> OwnerAsync(PostgresDatabase store, string id) =>
        (await store.QueryAsync("""SELECT "Owner" FROM "Jobs" WHERE "Id" = @id""", r => r.IsDBNull(0) ? null : r.GetString(0), ("id", id))).SingleOrDefault();

    /// <summary>Waits (up to <paramref name="timeout"/>) for the node to have an effect started and not yet ended in the store.</summary>
    static async Task<bool> EffectRunningOnAsync(PostgresDatabase store, string node, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            var running = await store.ScalarAsync<int>(
                """
                SELECT count(*) FROM "JobNodes" n JOIN "Jobs" j ON j."Id" = n."JobId"
                WHERE n."Kind" = 'effect' AND n."Status" = 'running' AND j."Owner" = @node AND j."Status" = 'running'
                """, ("node", node));
            if (running > 0)
                return true;
        }
        return false;
    }

    static async Task<TimeSpan> ModelStatusOnAsync(HttpClient client, string model, Func<string, bool> condition)
    {
        var clock = Stopwatch.StartNew();
        JsonNode? seen = null;
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            var models = await Api.BodyOf(await client.GetAsync("/v1/models"));
            seen = models["items"]!.AsArray().Single(m => m!.Str("id") == model);
            if (condition(seen!.Str("status")))
                return clock.Elapsed;
            await Task.Delay(10);
        }
        throw new TimeoutException($"Model {model} never reached the expected status; last seen {seen?.ToJsonString()}");
    }

    static async Task WaitForLogAsync(ServiceProcess node, string text, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!node.ReadLog().Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"{node.NodeId} never logged '{text}':\n{node.ReadLog()}");
            await Task.Delay(50);
        }
    }

    static string Text(DbDataReader reader, int column) => reader.IsDBNull(column) ? "" : reader.GetString(column);
}
