namespace Orchestrator.Effects;

/// <summary>The effects (API.md, Effects) a model may be offered, by capability name.</summary>
public static class Capabilities
{
    public const string FsRead = "fs/read";
    public const string FsList = "fs/list";
    public const string FsWrite = "fs/write";
    public const string FsAppend = "fs/append";
    public const string HttpFetch = "http/fetch";
    public const string ProcessRun = "process/run";
    public const string DbQuery = "db/query";
    public const string DbWrite = "db/write";

    public static readonly IReadOnlyList<string> All = [FsRead, FsList, FsWrite, FsAppend, HttpFetch, ProcessRun, DbQuery, DbWrite];

    public static bool IsKnown(string? capability) => capability is not null && All.Contains(capability);

    /// <summary>The function name a model sees: <c>fs/write</c> becomes <c>fs_write</c>.</summary>
    public static string FunctionName(string capability) => capability.Replace('/', '_');

    public static string? FromFunctionName(string function) =>
        All.FirstOrDefault(c => FunctionName(c) == function);
}
