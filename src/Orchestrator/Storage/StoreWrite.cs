
namespace Orchestrator.Storage;

/// <summary>
/// One change that the <see cref="StoreWriter"/> commits together with others in a single transaction.
/// Completes with <c>true</c> once committed, <c>false</c> when its guard lost (the row was no longer in
/// the state it expected, or a unique key was taken).
/// </summary>
internal abstract class StoreWrite
{
    readonly TaskCompletionSource<bool> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<bool> Done => _done.Task;

    /// <summary>The row this write touches; two writes to one row in a batch are flushed in order.</summary>
    public abstract (Type, string) Row { get; }

    public abstract void Apply(OrchestratorDb db);

    public void Complete(bool applied) => _done.TrySetResult(applied);

    public void Fail(Exception error) => _done.TrySetException(error);
}

/// <summary>Adds a new row.</summary>
internal sealed class Insert<T>(T entity, string id) : StoreWrite where T : class
{
    public override (Type, string) Row => (typeof(T), id);

    public override void Apply(OrchestratorDb db) => db.Add(entity);
}

/// <summary>
/// Writes the named properties of an entity the caller owns, guarded by a concurrency token's
/// expected value (<c>UPDATE ... WHERE Id = @id AND Status = @expected</c>).
/// </summary>
internal sealed class GuardedUpdate<T, TToken>(T entity, string id, string tokenProperty, TToken expected, string[] properties)
    : StoreWrite where T : class
{
    public override (Type, string) Row => (typeof(T), id);

    public override void Apply(OrchestratorDb db)
    {
        var entry = db.Attach(entity);
        entry.Property(tokenProperty).OriginalValue = expected;
        foreach (var property in properties)
            entry.Property(property).IsModified = true;
    }
}
