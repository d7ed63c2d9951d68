namespace Orchestrator.Storage;

/// <summary>
/// One change that the <see cref="StoreWriter"/> commits together with others in a single transaction.
/// Completes with <c>true</c> once committed, <c>false</c> when its guard lost (the row was no longer in
/// the state it expected, a unique key was taken, or its fence no longer holds). A write holds its own
/// snapshot of the entity.
/// </summary>
internal abstract class StoreWrite
{
    readonly TaskCompletionSource<bool> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<bool> Done => _done.Task;

    /// <summary>The entity snapshot this write stores; null for a write that is a statement of its own (a claim, a renewal).</summary>
    public abstract object? Entity { get; }

    /// <summary>
    /// The lease this write belongs to: it applies only while the owning row still carries that epoch. Every
    /// write of a run is fenced, so a node that lost its lease can never write for the run again.
    /// </summary>
    public Fence? Fence { get; set; }

    /// <summary>Runs the write inside the writer's open transaction; returns the rows it changed.</summary>
    public abstract int Execute(StoreSession session);

    /// <summary>
    /// One write with the effect of this one followed by <paramref name="next"/> on the same row, or null when
    /// they cannot be combined. Lets a batch that holds a job's admission, claim and end store it in one statement.
    /// </summary>
    public virtual StoreWrite? FollowedBy(StoreWrite next, StoreSession session) => null;

    public void Complete(bool applied) => _done.TrySetResult(applied);

    public void Fail(Exception error) => _done.TrySetException(error);
}

/// <summary>
/// The lease a write is fenced by: the <paramref name="Leased"/> row with key <paramref name="Key"/> must still be held by
/// <paramref name="Node"/> at <paramref name="Epoch"/>. Both, because two nodes that raced for one row may each have
/// counted the same next epoch; only the one whose claim landed is its owner.
/// </summary>
internal sealed record Fence(Type Leased, string Key, long Epoch, string Node);

/// <summary>A column that must still hold a value for a guarded write to apply (<c>WHERE Status = @expected</c>).</summary>
internal readonly record struct Guard(string Property, object Expected);

/// <summary>A row that can be leased: claimed by one node at a time, every claim a new epoch.</summary>
internal interface ILeased
{
    /// <summary>The node that holds (or last held) the lease.</summary>
    string? Owner { get; }

    /// <summary>Raised by one on every claim; writes of a run are fenced by the epoch it claimed.</summary>
    long Epoch { get; }

    /// <summary>When the lease ends unless renewed; null when nobody holds it.</summary>
    DateTime? LeaseUntil { get; }
}

/// <summary>Adds a new row; a row whose key is taken is not an error (the write answers false).</summary>
internal sealed class Insert<T>(T entity) : StoreWrite where T : class
{
    public override object Entity => entity;

    public override int Execute(StoreSession session) => session.Insert(entity, Fence);

    /// <summary>Inserting a row and then updating it from the state it was inserted in is inserting the updated row.</summary>
    public override StoreWrite? FollowedBy(StoreWrite next, StoreSession session) =>
        next is GuardedUpdate<T> update && next.Fence == Fence && update.Guards.All(g => Equals(session.ValueOf(entity, g.Property), g.Expected))
            ? new Insert<T>((T)update.Entity) { Fence = Fence }
            : null;
}

/// <summary>
/// Writes the named properties of an entity snapshot where every guard still holds
/// (<c>UPDATE ... WHERE Id = @id AND Status = @expected AND Epoch = @epoch</c>).
/// </summary>
internal sealed class GuardedUpdate<T>(T entity, IReadOnlyList<Guard> guards, IReadOnlyList<string> properties) : StoreWrite where T : class
{
    public override object Entity => entity;
    public IReadOnlyList<Guard> Guards => guards;
    public IReadOnlyList<string> Properties => properties;

    public override int Execute(StoreSession session) => session.Update(entity, guards, properties, Fence);

    /// <summary>Two updates where the first leaves the row in the state the second expects are one update.</summary>
    public override StoreWrite? FollowedBy(StoreWrite next, StoreSession session)
    {
        if (next is not GuardedUpdate<T> update || next.Fence != Fence || update.Guards.Count != guards.Count)
            return null;
        for (var i = 0; i < guards.Count; i++)
        {
            var guard = guards[i];
            if (update.Guards[i].Property != guard.Property)
                return null;
            var after = properties.Contains(guard.Property) ? session.ValueOf(entity, guard.Property) : guard.Expected;
            if (!Equals(after, update.Guards[i].Expected))
                return null;
        }
        return new GuardedUpdate<T>((T)update.Entity, guards, properties.Union(update.Properties).ToArray()) { Fence = Fence };
    }
}

/// <summary>Times as the store keeps them.</summary>
internal static class StoreTime
{
    /// <summary>Truncated to microseconds, what PostgreSQL keeps: a value written and read back (or hashed) is the same on both stores.</summary>
    public static DateTime Microseconds(DateTime at) => new(at.Ticks - at.Ticks % 10, DateTimeKind.Utc);
}
