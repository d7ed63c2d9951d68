using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Orchestrator.Workflow;

/// <summary>A piece of a model's answer as it was streamed, for whoever watches the job (<c>model.delta</c> events).</summary>
public sealed record ModelDelta(string JobId, string Node, string Text);

/// <summary>
/// The model tokens of the jobs this node runs, for the watchers on this node. Live only: nothing is stored, and a
/// watcher on another node sees the job's status and nodes (from the store) but not its tokens. A model node streams its
/// call only while someone watches, so an unwatched job pays nothing for it. Each watcher has a bounded buffer that
/// drops its oldest deltas when it falls behind: a slow reader never slows a run.
/// </summary>
internal sealed class ModelDeltas
{
    const int Buffer = 1024;

    readonly ConcurrentDictionary<string, ImmutableWatchers> _watchers = new(StringComparer.Ordinal);

    sealed record ImmutableWatchers(Channel<ModelDelta>[] Channels);

    public bool IsWatched(string jobId) => _watchers.ContainsKey(jobId);

    /// <summary>Starts watching a job's deltas; dispose the watch to stop.</summary>
    public Watch Subscribe(string jobId)
    {
        var channel = Channel.CreateBounded<ModelDelta>(new BoundedChannelOptions(Buffer)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        _watchers.AddOrUpdate(jobId, _ => new([channel]), (_, current) => new([.. current.Channels, channel]));
        return new Watch(this, jobId, channel);
    }

    public void Publish(ModelDelta delta)
    {
        if (_watchers.TryGetValue(delta.JobId, out var watchers))
            foreach (var channel in watchers.Channels)
                channel.Writer.TryWrite(delta);
    }

    void Unsubscribe(string jobId, Channel<ModelDelta> channel)
    {
        while (_watchers.TryGetValue(jobId, out var current))
        {
            var rest = current.Channels.Where(c => c != channel).ToArray();
            if (rest.Length == 0 ? _watchers.TryRemove(new KeyValuePair<string, ImmutableWatchers>(jobId, current)) : _watchers.TryUpdate(jobId, new(rest), current))
                return;
        }
    }

    /// <summary>One watcher of one job.</summary>
    public sealed class Watch(ModelDeltas deltas, string jobId, Channel<ModelDelta> channel) : IDisposable
    {
        public ChannelReader<ModelDelta> Reader => channel.Reader;

        public void Dispose()
        {
            channel.Writer.TryComplete();
            deltas.Unsubscribe(jobId, channel);
        }
    }
}
