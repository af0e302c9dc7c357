"""guidellm reports (0.3 and 0.4+ layouts) into summaries and a comparison."""
import copy
import json
import os

import pytest

from ansible_collections.llmd.stack.plugins.module_utils import _benchmark_report as report

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "fixtures", "guidellm")


def load(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


@pytest.fixture
def v03():
    return load("report-v0.3.json")


@pytest.fixture
def v06():
    return load("report-v0.6.json")


def test_v03_report_summary(v03):
    summary = report.summarize_report(v03, name="a", preset="load-aware")
    assert (summary["name"], summary["preset"], summary["guidellm_version"]) == ("a", "load-aware", "")
    sync, conc = summary["benchmarks"]
    assert (sync["strategy"], sync["rate"]) == ("synchronous", None)
    assert (conc["strategy"], conc["rate"]) == ("concurrent", 4)
    assert conc["requests"] == {"successful": 150, "errored": 2, "incomplete": 4, "total": 156}
    assert conc["error_rate"] == round(2 / 156.0, 4)
    assert conc["ttft_ms"] == {"p50": 110.0, "p95": 250.0, "p99": 400.0, "mean": 120.0}
    assert conc["itl_ms"] == {"p50": 13.5, "p95": 20.0, "p99": 31.0, "mean": 14.0}
    assert conc["latency_s"] == {"p50": 2.0, "p95": 2.9, "p99": 3.4, "mean": 2.1}
    assert (conc["output_tokens_per_s"], conc["requests_per_s"], conc["duration_s"]) == (320.0, 5.0, 30.1)


def test_v06_report_summary_reads_config_and_metric_totals(v06):
    summary = report.summarize_report(v06, name="b")
    assert summary["guidellm_version"] == "0.6.1"
    (bench,) = summary["benchmarks"]
    assert (bench["strategy"], bench["rate"]) == ("concurrent", 4)
    assert bench["requests"]["total"] == 184 and bench["error_rate"] == 0.0
    assert bench["ttft_ms"]["p95"] == 190.0 and bench["output_tokens_per_s"] == 400.0


def test_counts_fall_back_to_scheduler_metrics(v06):
    del v06["benchmarks"][0]["metrics"]["request_totals"]
    (bench,) = report.summarize_report(v06)["benchmarks"]
    assert bench["requests"]["successful"] == 180


def test_missing_metrics_become_none_not_errors(v06):
    del v06["benchmarks"][0]["metrics"]["inter_token_latency_ms"]
    (bench,) = report.summarize_report(v06)["benchmarks"]
    assert bench["itl_ms"] == {"p50": None, "p95": None, "p99": None, "mean": None}
    assert "ITL p50 - ms" in report.summary_lines(report.summarize_report(v06))[0]


@pytest.mark.parametrize("document, message", [
    ({}, "no 'benchmarks' list"),
    ([], "no 'benchmarks' list"),
    ({"benchmarks": []}, "holds no benchmark"),
    ({"benchmarks": [{"duration": 1}]}, "benchmark 0 has no 'metrics' object"),
    ({"benchmarks": [{"metrics": {}}]}, "no request counts"),
])
def test_not_a_report(document, message):
    with pytest.raises(report.ReportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        report.summarize_report(document)


def test_comparison_puts_runs_side_by_side_with_ratios_to_the_first(v03, v06):
    a = report.summarize_report(v03, name="a", preset="load-aware")
    b = report.summarize_report(v06, name="b", preset="prefix-cache")
    rows = report.comparison_rows([a, b])
    expected = [("a", "synchronous"), ("a", "concurrent@4"), ("b", "concurrent@4")]
    assert [(r["run"], r["strategy"]) for r in rows] == expected
    table = report.comparison_markdown(rows)
    lines = table.splitlines()
    assert lines[0] == "# guidellm runs compared"
    row_b = [line for line in lines if line.startswith("| b |")][0]
    cells = [cell.strip() for cell in row_b.strip("|").split("|")]
    assert cells[:5] == ["b", "prefix-cache", "concurrent@4", "180", "0"]
    assert cells[5] == "80 / 190 / 260"
    # b against a's concurrent@4 benchmark: TTFT p50 80/110, tok/s 400/320
    assert cells[-2:] == ["0.73x", "1.25x"]
    row_a = [line for line in lines if line.startswith("| a |") and "concurrent@4" in line][0]
    assert row_a.rstrip().endswith("| 1.00x | 1.00x |")


def test_summary_lines_and_markdown(v03):
    summary = report.summarize_report(v03, name="a")
    lines = report.summary_lines(summary)
    assert lines[1] == ("concurrent@4: 150 ok, 2 errors, TTFT p50 110 ms (p95 250), ITL p50 13.5 ms, "
                        "latency p50 2 s, 320 output tok/s")
    assert report.summary_markdown(summary).startswith("# guidellm run a\n")


def test_empty_comparison_says_so():
    assert "| no runs |" in report.comparison_markdown([])


def test_summaries_do_not_change_the_report(v06):
    before = copy.deepcopy(v06)
    report.summarize_report(v06)
    assert v06 == before
