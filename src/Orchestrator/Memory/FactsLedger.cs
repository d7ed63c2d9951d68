using System.Text.RegularExpressions;

namespace Orchestrator.Memory;

/// <summary>
/// The facts a summary must not lose: sentences that hold a number, a path, an id, an address or a name, kept
/// verbatim as <c>fact</c> items beside the summary, each with the role of whoever said it. Found by patterns, not by
/// the summarising model, because summaries are known to drop exact numbers and paths.
/// </summary>
internal static partial class FactsLedger
{
    /// <summary>Longest fact kept; a longer sentence is cut around its first fact.</summary>
    public const int MaxFactChars = 300;

    // Numbers (4711, 3.5, 12:30, 2026-12-01), paths (/etc/app.conf, ~/x, C:\x, src/a.cs), urls, e-mail addresses,
    // ids (INV-2041, job_01H..., a1b2c3), and runs of capitalised words that do not open the sentence (names).
    [GeneratedRegex(@"\d|(?:^|[\s(""'])(?:~|\.{1,2})?/[\w.\-/]+|[A-Za-z]:\\[\w.\-\\]+|\b[\w.-]+/[\w.\-]+|https?://\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+|\b[A-Za-z]+[-_][A-Za-z0-9]+\b")]
    private static partial Regex Marker();

    [GeneratedRegex(@"(?<!^|[.!?]\s+)(?<=\s)[A-Z][\p{Ll}]+(?:\s+[A-Z][\p{Ll}]+)*")]
    private static partial Regex Name();

    [GeneratedRegex(@"(?<=[.!?])\s+|\n+")]
    private static partial Regex SentenceBreak();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    static readonly HashSet<string> NotNames = new(StringComparer.Ordinal)
    {
        "I", "I'm", "The", "A", "An", "My", "Your", "Please", "Thanks", "Thank", "Hello", "Hi", "Yes", "No", "Ok", "OK",
        "What", "When", "Where", "Who", "Why", "How", "Which", "Can", "Could", "Would", "Should", "Do", "Does", "Did", "Is", "Are",
    };

    /// <summary>
    /// The sentences of <paramref name="text"/> that hold a fact, verbatim, in order, without repeats. With
    /// <paramref name="whole"/> (a tool call and its result) the text is one fact: split, a result would lose its call.
    /// </summary>
    public static IEnumerable<string> Extract(string text, bool whole = false)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in whole ? [Spaces().Replace(text, " ")] : SentenceBreak().Split(text))
        {
            var sentence = raw.Trim();
            if (sentence.Length == 0 || !HoldsFact(sentence))
                continue;
            if (sentence.Length > MaxFactChars)
                sentence = Around(sentence);
            if (seen.Add(sentence))
                yield return sentence;
        }
    }

    static bool HoldsFact(string sentence) =>
        Marker().IsMatch(sentence) || Name().Matches(sentence).Any(m => !NotNames.Contains(m.Value));

    /// <summary>A window of the sentence around its first fact, so a long sentence still carries the fact itself.</summary>
    static string Around(string sentence)
    {
        var at = Marker().Match(sentence) is { Success: true } m ? m.Index : Name().Match(sentence).Index;
        var start = Math.Max(0, Math.Min(at - MaxFactChars / 3, sentence.Length - MaxFactChars));
        return sentence.Substring(start, MaxFactChars);
    }
}
