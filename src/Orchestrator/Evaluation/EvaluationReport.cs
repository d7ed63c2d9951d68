using System.Globalization;
using System.Net;
using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>
/// The report a person reads in a minute, in Markdown or HTML, both from the one verdict: the verdict and its pins, the gate
/// table, the per-case table, and the latency and cost distributions of both sides as inline SVG (nothing fetched).
/// </summary>
internal static class EvaluationReport
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Markdown(EvaluationView view)
    {
        var md = new StringBuilder();
        md.AppendLine(Invariant, $"# Evaluation {view.Id}: {view.Suite} — {(view.Verdict ?? view.Status).ToUpperInvariant()}");
        md.AppendLine();
        Pins(view, line => md.AppendLine("- " + line));
        md.AppendLine();
        md.AppendLine("## Gates");
        md.AppendLine();
        md.AppendLine("| gate | result | value | threshold | cases | detail |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var g in view.Gates ?? [])
            md.AppendLine(Invariant, $"| {g.Name} | {(g.Passed ? "pass" : "**FAIL**")} | {Number(g.Value)} | {Number(g.Threshold)} | {Cell(string.Join(", ", g.Cases))} | {Cell(g.Detail)} |");
        if (view.Gates is { Count: 0 })
            md.AppendLine("| (none configured) | pass | | | | |");
        md.AppendLine();
        md.AppendLine("## Cases");
        md.AppendLine();
        md.AppendLine("| case | id | must pass | baseline | candidate | paired (worse/better) | candidate failures |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var c in view.Cases ?? [])
            md.AppendLine(Invariant, $"| {Cell(c.Name)} | `{c.Id}` | {(c.MustPass ? "yes" : "")} | {Arm(c.Baseline)} | {Arm(c.Candidate)} | {c.Paired.Worse}/{c.Paired.Better} of {c.Paired.Pairs} | {Cell(string.Join("; ", c.Candidate.Failures))} |");
        md.AppendLine();
        md.AppendLine("## Latency and cost");
        md.AppendLine();
        md.AppendLine(Invariant, $"- latency p50/p95: baseline {Number(view.Baseline?.P50LatencyMs)}/{Number(view.Baseline?.P95LatencyMs)} ms, candidate {Number(view.Candidate?.P50LatencyMs)}/{Number(view.Candidate?.P95LatencyMs)} ms");
        md.AppendLine(Invariant, $"- mean cost per run: baseline {Number(view.Baseline?.MeanCostUsd)} USD, candidate {Number(view.Candidate?.MeanCostUsd)} USD; judge calls {Number((view.Baseline?.JudgeCostUsd ?? 0) + (view.Candidate?.JudgeCostUsd ?? 0))} USD, metered apart");
        md.AppendLine();
        // Markdown viewers that render HTML (GitHub, most editors) show the pictures; the figures above say the same in words.
        md.AppendLine(Pictures(view));
        return md.ToString();
    }

    public static string Html(EvaluationView view)
    {
        var h = new StringBuilder();
        var verdict = view.Verdict ?? view.Status;
        h.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evaluation ").Append(E(view.Id)).Append("</title><style>")
            .Append("body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}")
            .Append(".pass{color:#176f2c;font-weight:600}.fail{color:#b00020;font-weight:600}code{font-size:12px}</style></head><body>");
        h.Append("<h1>").Append(E(view.Suite)).Append(": <span class=\"").Append(verdict == "pass" ? "pass" : "fail").Append("\">").Append(E(verdict.ToUpperInvariant())).Append("</span></h1><ul>");
        Pins(view, line => h.Append("<li>").Append(E(line)).Append("</li>"));
        h.Append("</ul><h2>Gates</h2><table><tr><th>gate</th><th>result</th><th>value</th><th>threshold</th><th>cases</th><th>detail</th></tr>");
        foreach (var g in view.Gates ?? [])
            h.Append(Invariant, $"<tr><td>{E(g.Name)}</td><td class=\"{(g.Passed ? "pass" : "fail")}\">{(g.Passed ? "pass" : "FAIL")}</td><td>{Number(g.Value)}</td><td>{Number(g.Threshold)}</td><td>{E(string.Join(", ", g.Cases))}</td><td>{E(g.Detail)}</td></tr>");
        h.Append("</table><h2>Cases</h2><table><tr><th>case</th><th>id</th><th>must pass</th><th>baseline</th><th>candidate</th><th>paired worse/better</th><th>candidate failures</th></tr>");
        foreach (var c in view.Cases ?? [])
            h.Append(Invariant, $"<tr><td>{E(c.Name)}</td><td><code>{c.Id}</code></td><td>{(c.MustPass ? "yes" : "")}</td><td>{E(Arm(c.Baseline))}</td><td>{E(Arm(c.Candidate))}</td><td>{c.Paired.Worse}/{c.Paired.Better} of {c.Paired.Pairs}</td><td>{E(string.Join("; ", c.Candidate.Failures))}</td></tr>");
        h.Append("</table><h2>Latency and cost</h2>").Append(Pictures(view)).Append("</body></html>");
        return h.ToString();
    }

    static void Pins(EvaluationView view, Action<string> line)
    {
        line($"status {view.Status}, verdict {view.Verdict ?? "none yet"}");
        line($"suite hash {view.Pins.SuiteHash}");
        line($"baseline policy {view.Pins.BaselinePolicyHash}");
        line($"candidate policy {view.Pins.CandidatePolicyHash}");
        line($"seed {view.Pins.Seed.ToString(Invariant)}");
        if (view.Pins.LatencySource.Length > 0)
            line("latency: " + view.Pins.LatencySource);
    }

    static string Arm(ArmCase a) =>
        string.Create(Invariant, $"{a.Verdict} {a.Passed}/{a.Runs} ({a.PassRate:P0}, Wilson {a.WilsonLow:0.00}-{a.WilsonHigh:0.00})") +
        (a.MeanScore is { } s ? string.Create(Invariant, $", score {s:0.00}") : "") +
        (a.MedianLatencyMs is { } l ? string.Create(Invariant, $", p50 {l:0} ms") : "");

    static string Number(double? value) => value is null ? "" : value.Value.ToString(Math.Abs(value.Value) >= 100 ? "0" : "0.####", Invariant);

    static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);

    static string E(string text) => WebUtility.HtmlEncode(text);

    static string Pictures(EvaluationView view) =>
        Strip("Latency per run (ms)", view.Baseline?.LatenciesMs ?? [], view.Candidate?.LatenciesMs ?? [], "ms") +
        Strip("Cost per run (USD)", view.Baseline?.CostsUsd ?? [], view.Candidate?.CostsUsd ?? [], "USD");

    /// <summary>A strip plot: one row per side, a tick per run, the p50 and p95 marked, on one shared axis.</summary>
    internal static string Strip(string title, IReadOnlyList<double> baseline, IReadOnlyList<double> candidate, string unit)
    {
        const int width = 560, left = 90, right = 20, rowHeight = 34, top = 28;
        var max = baseline.Concat(candidate).DefaultIfEmpty(0).Max();
        if (max <= 0)
            max = 1;
        double X(double v) => left + v / max * (width - left - right);
        var svg = new StringBuilder();
        var height = top + 2 * rowHeight + 26;
        svg.Append(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{E(title)}\">");
        svg.Append(Invariant, $"<text x=\"4\" y=\"16\" font-size=\"13\" font-family=\"sans-serif\">{E(title)}</text>");
        var rows = new[] { ("baseline", baseline, "#5470c6"), ("candidate", candidate, "#ee6666") };
        for (var i = 0; i < rows.Length; i++)
        {
            var (label, values, colour) = rows[i];
            var y = top + i * rowHeight + rowHeight / 2;
            svg.Append(Invariant, $"<text x=\"4\" y=\"{y + 4}\" font-size=\"12\" font-family=\"sans-serif\">{label}</text>");
            svg.Append(Invariant, $"<line x1=\"{left}\" y1=\"{y}\" x2=\"{width - right}\" y2=\"{y}\" stroke=\"#ddd\"/>");
            foreach (var v in values)
                svg.Append(Invariant, $"<line x1=\"{X(v):0.#}\" y1=\"{y - 8}\" x2=\"{X(v):0.#}\" y2=\"{y + 8}\" stroke=\"{colour}\" stroke-opacity=\"0.6\"/>");
            foreach (var (p, name) in new[] { (50.0, "p50"), (95.0, "p95") })
                if (Statistics.Percentile(values, p) is { } at)
                    svg.Append(Invariant, $"<circle cx=\"{X(at):0.#}\" cy=\"{y}\" r=\"4\" fill=\"{colour}\"><title>{name} {at:0.######} {unit}</title></circle>")
                        .Append(Invariant, $"<text x=\"{X(at):0.#}\" y=\"{y - 11}\" font-size=\"10\" text-anchor=\"middle\" font-family=\"sans-serif\">{name}</text>");
        }
        var axis = top + 2 * rowHeight + 4;
        svg.Append(Invariant, $"<line x1=\"{left}\" y1=\"{axis}\" x2=\"{width - right}\" y2=\"{axis}\" stroke=\"#888\"/>");
        svg.Append(Invariant, $"<text x=\"{left}\" y=\"{axis + 16}\" font-size=\"11\" font-family=\"sans-serif\">0</text>");
        svg.Append(Invariant, $"<text x=\"{width - right}\" y=\"{axis + 16}\" font-size=\"11\" text-anchor=\"end\" font-family=\"sans-serif\">{max:0.######} {unit}</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }
}
