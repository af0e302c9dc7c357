# This file is for internal use by the llmd.stack collection only.
"""guidellm JSON reports into short summaries and a comparison table (pure).

guidellm's report keeps one entry per benchmark (a sweep has several) with
distributions per metric. The layout moved between releases, so the reader
looks in each known place:

- strategy: `args.strategy` (0.3) or `config.strategy` (0.4 and later)
- request counts: `request_totals` (0.3), `metrics.request_totals` (0.4 and
  later), else `run_stats`/`scheduler_metrics`.requests_made
- metrics: `metrics.<name>.successful` = {mean, median, percentiles{p50..}}
"""

import math

PERCENTILES = ("p50", "p95", "p99")
# summary key: guidellm metric (guidellm's units: ms, ms, seconds)
LATENCIES = {
    "ttft_ms": "time_to_first_token_ms",
    "itl_ms": "inter_token_latency_ms",
    "latency_s": "request_latency",
}
RATES = {
    "output_tokens_per_s": "output_tokens_per_second",
    "requests_per_s": "requests_per_second",
}


class ReportError(Exception):
    """The document is not a guidellm report; the message says what is missing."""


def summarize_report(report, name="", preset=""):
    """{name, preset, guidellm_version, benchmarks: [summary per benchmark]}."""
    if not isinstance(report, dict) or not isinstance(report.get("benchmarks"), list):
        raise ReportError("not a guidellm report: no 'benchmarks' list at the top level")
    if not report["benchmarks"]:
        raise ReportError("the guidellm report holds no benchmark (did the run end before the first one?)")
    metadata = report.get("metadata") or {}
    return {
        "name": name,
        "preset": preset,
        "guidellm_version": metadata.get("guidellm_version", ""),
        "benchmarks": [summarize_benchmark(b, index) for index, b in enumerate(report["benchmarks"])],
    }


def summarize_benchmark(benchmark, index=0):
    if not isinstance(benchmark, dict) or not isinstance(benchmark.get("metrics"), dict):
        raise ReportError("benchmark %d has no 'metrics' object" % index)
    metrics = benchmark["metrics"]
    strategy = _strategy(benchmark)
    totals = _totals(benchmark)
    summary = {
        "strategy": strategy.get("type_", "unknown"),
        "rate": strategy.get("streams", strategy.get("rate")),
        "duration_s": _round(benchmark.get("duration")),
        "requests": totals,
        "error_rate": _round(totals["errored"] / float(totals["total"]), 4) if totals["total"] else 0.0,
    }
    for key, metric in LATENCIES.items():
        distribution = _successful(metrics, metric)
        percentiles = distribution.get("percentiles") or {}
        summary[key] = dict((p, _round(percentiles.get(p))) for p in PERCENTILES)
        summary[key]["mean"] = _round(distribution.get("mean"))
    for key, metric in RATES.items():
        summary[key] = _round(_successful(metrics, metric).get("mean"))
    return summary


def comparison_rows(summaries):
    """One row per (run, benchmark), in the order given."""
    rows = []
    for run in summaries:
        for bench in run["benchmarks"]:
            rows.append({
                "run": run["name"],
                "preset": run["preset"],
                "strategy": _strategy_text(bench),
                "ok": bench["requests"]["successful"],
                "errors": bench["requests"]["errored"],
                "ttft_ms": bench["ttft_ms"],
                "itl_ms": bench["itl_ms"],
                "latency_s": bench["latency_s"],
                "output_tokens_per_s": bench["output_tokens_per_s"],
                "requests_per_s": bench["requests_per_s"],
            })
    return rows


def comparison_markdown(rows, title="guidellm runs compared"):
    """A Markdown table of comparison_rows(): each run's benchmarks side by side, plus
    the ratio of TTFT p50 and output tokens/s to the first run's benchmark of the same strategy."""
    baseline = {}
    for row in rows:
        baseline.setdefault(row["strategy"], row)
    lines = [
        "# %s" % title, "",
        "| run | preset | strategy | ok | errors | TTFT p50 / p95 / p99 ms | ITL p50 / p95 ms "
        "| latency p50 / p95 s | output tok/s | req/s | TTFT p50 vs first | tok/s vs first |",
        "|---|---|---|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        base = baseline[row["strategy"]]
        lines.append("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            row["run"], row["preset"] or "-", row["strategy"], row["ok"], row["errors"],
            _triple(row["ttft_ms"]), _pair(row["itl_ms"]), _pair(row["latency_s"]),
            _text(row["output_tokens_per_s"]), _text(row["requests_per_s"]),
            _ratio(row["ttft_ms"]["p50"], base["ttft_ms"]["p50"]),
            _ratio(row["output_tokens_per_s"], base["output_tokens_per_s"])))
    if not rows:
        lines.append("| no runs | | | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def summary_markdown(summary):
    """One run's summary for people (the comparison table of a single run)."""
    return comparison_markdown(comparison_rows([summary]), title="guidellm run %s" % summary["name"])


def summary_lines(summary):
    """Short lines for the Ansible output, one per benchmark."""
    lines = []
    for bench in summary["benchmarks"]:
        lines.append("%s: %d ok, %d errors, TTFT p50 %s ms (p95 %s), ITL p50 %s ms, latency p50 %s s, %s output tok/s" % (
            _strategy_text(bench), bench["requests"]["successful"], bench["requests"]["errored"],
            _text(bench["ttft_ms"]["p50"]), _text(bench["ttft_ms"]["p95"]), _text(bench["itl_ms"]["p50"]),
            _text(bench["latency_s"]["p50"]), _text(bench["output_tokens_per_s"])))
    return lines


# ------------------------------------------------------------------ helpers

def _strategy(benchmark):
    for holder in ("config", "args"):
        strategy = (benchmark.get(holder) or {}).get("strategy")
        if isinstance(strategy, dict):
            return strategy
    return {}


def _totals(benchmark):
    metrics = benchmark.get("metrics") or {}
    candidates = [metrics.get("request_totals"), benchmark.get("request_totals"),
                  (benchmark.get("scheduler_metrics") or {}).get("requests_made"),
                  (benchmark.get("run_stats") or {}).get("requests_made")]
    for totals in candidates:
        if isinstance(totals, dict) and "successful" in totals:
            counts = dict((key, int(totals.get(key) or 0)) for key in ("successful", "errored", "incomplete"))
            counts["total"] = int(totals.get("total") or sum(counts.values()))
            return counts
    raise ReportError("the benchmark has no request counts (request_totals or requests_made)")


def _successful(metrics, name):
    metric = metrics.get(name)
    if not isinstance(metric, dict):
        return {}
    return metric.get("successful") or {}


def _round(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _strategy_text(bench):
    rate = bench.get("rate")
    if rate is None:
        return bench["strategy"]
    return "%s@%s" % (bench["strategy"], _text(rate))


def _text(value):
    if value is None:
        return "-"
    if float(value) == int(value):
        return str(int(value))
    return "%.3g" % value if abs(value) < 100 else "%.0f" % value


def _triple(values):
    return " / ".join(_text(values[p]) for p in PERCENTILES)


def _pair(values):
    return " / ".join(_text(values[p]) for p in PERCENTILES[:2])


def _ratio(value, base):
    if value is None or not base:
        return "-"
    return "%.2fx" % (value / base)
