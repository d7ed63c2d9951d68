namespace Orchestrator.Storage;

/// <summary>
/// One change that the <see cref="StoreWriter"/> commits together with others in a single transaction.
/// Completes with <c>true</c> once committed, <c>false</c> when its guard lost (the row was no longer in
/// the state it expected, or a unique key was taken). A write holds its own snapshot of the entity.
/// </summary>
internal abstract class StoreWrite
{
    readonly TaskCompletionSource<bool> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<bool> Done => _done.Task;

    /// <summary>The entity snapshot this write stores.</summary>
    public abstract object Entity { get; }

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

/// <summary>Adds a new row.</summary>
internal sealed class Insert<T>(T entity) : StoreWrite where T : class
{
    public override object Entity => entity;

    public override int Execute(StoreSession session) => session.Insert(entity);

    /// <summary>Inserting a row and then updating it from the state it was inserted in is inserting the updated row.</summary>
    public override StoreWrite? FollowedBy(StoreWrite next, StoreSession session) =>
        next is GuardedUpdate<T> update && Equals(session.ValueOf(entity, update.Guard), update.Expected)
            ? new Insert<T>((T)update.Entity)
            : null;
}

/// <summary>
/// Writes the named properties of an entity snapshot, guarded by a column's expected value
/// (<c>UPDATE ... WHERE Id = @id AND Status = @expected</c>).
/// </summary>
internal sealed class GuardedUpdate<T>(T entity, string guard, object? expected, IReadOnlyList<string> properties) : StoreWrite where T : class
{
    public override object Entity => entity;
    public string Guard => guard;
    public object? Expected => expected;
    public IReadOnlyList<string> Properties => properties;

    public override int Execute(StoreSession session) => session.Update(entity, guard, expected, properties);

    /// <summary>Two updates where the first leaves the row in the state the second expects are one update.</summary>
    public override StoreWrite? FollowedBy(StoreWrite next, StoreSession session) =>
        next is GuardedUpdate<T> update && update.Guard == guard &&
        Equals(properties.Contains(guard) ? session.ValueOf(entity, guard) : expected, update.Expected)
            ? new GuardedUpdate<T>((T)update.Entity, guard, expected, properties.Union(update.Properties).ToArray())
            : null;
}
