"""The llmd_benchmark_report module: run directories in, summaries and a
comparison out, written only when they change."""
import json
import os
import shutil

import pytest

from module_args import run_module

from ansible_collections.llmd.stack.plugins.modules import llmd_benchmark_report as module

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "fixtures", "guidellm")


def run(args):
    return run_module(module.main, args)


@pytest.fixture(name="results")
def fixture_results(tmp_path):
    for run_name, fixture, preset in (("a-1", "report-v0.3.json", "load-aware"), ("b-2", "report-v0.6.json", None)):
        os.makedirs(str(tmp_path / run_name))
        shutil.copy(os.path.join(FIXTURES, fixture), str(tmp_path / run_name / "benchmarks.json"))
        if preset:
            (tmp_path / run_name / "run.json").write_text(json.dumps({"name": run_name, "preset": preset}))
    (tmp_path / "not-a-run").mkdir()
    return tmp_path


def test_summarizes_every_run_and_compares_them(results):
    out = run({"results_dir": str(results)})
    assert out["changed"] is True
    assert [s["name"] for s in out["summaries"]] == ["a-1", "b-2"]
    assert [s["preset"] for s in out["summaries"]] == ["load-aware", ""]
    for name in ("a-1/summary.json", "a-1/summary.md", "b-2/summary.json", "comparison.md", "comparison.json"):
        assert (results / name).is_file(), name
    assert (results / "comparison.md").read_text() == out["comparison"]
    assert json.loads((results / "b-2" / "summary.json").read_text()) == out["summaries"][1]
    assert out["lines"][0].startswith("a-1: synchronous: 40 ok, 0 errors")
    assert len(json.loads((results / "comparison.json").read_text())) == 3


def test_second_call_changes_nothing(results):
    run({"results_dir": str(results)})
    stamps = dict((p, os.path.getmtime(str(p))) for p in results.rglob("summary.*"))
    again = run({"results_dir": str(results)})
    assert again["changed"] is False
    assert stamps == dict((p, os.path.getmtime(str(p))) for p in results.rglob("summary.*"))


def test_check_mode_writes_nothing(results):
    out = run({"results_dir": str(results), "_ansible_check_mode": True})
    assert out["changed"] is True and out["files"] == []
    assert not (results / "comparison.md").exists()


def test_runs_picks_and_orders(results):
    out = run({"results_dir": str(results), "runs": ["b-2", "a-1"]})
    assert [s["name"] for s in out["summaries"]] == ["b-2", "a-1"]


@pytest.mark.parametrize("args, message", [
    ({"runs": ["c-3"]}, "no benchmarks.json in run(s) c-3"),
    ({"results_dir": "/nonexistent/bench"}, "results_dir /nonexistent/bench does not exist"),
])
def test_missing_runs_fail_clearly(results, args, message):
    out = run(dict({"results_dir": str(results)}, **args))
    assert out["failed"] is True and message in out["msg"]


def test_a_broken_run_asked_for_fails_naming_the_file(results):
    (results / "b-2" / "benchmarks.json").write_text("{not json")
    out = run({"results_dir": str(results), "runs": ["b-2"]})
    assert out["failed"] is True and "b-2/benchmarks.json is not JSON" in out["msg"]
    (results / "b-2" / "benchmarks.json").write_text(json.dumps({"benchmarks": []}))
    out = run({"results_dir": str(results), "runs": ["a-1", "b-2"]})
    assert "b-2/benchmarks.json: the guidellm report holds no benchmark" in out["msg"]


def test_a_broken_old_run_is_skipped_with_a_warning(results, monkeypatch):
    warnings = []
    monkeypatch.setattr(module.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    (results / "b-2" / "benchmarks.json").write_text("{not json")
    out = run({"results_dir": str(results)})
    assert [s["name"] for s in out["summaries"]] == ["a-1"] and out["skipped"] == ["b-2"]
    assert len(warnings) == 1 and "skipped run b-2" in warnings[0] and "is not JSON" in warnings[0]
    (results / "a-1" / "benchmarks.json").write_text("[]")
    out = run({"results_dir": str(results)})
    assert out["failed"] is True and "no readable run under" in out["msg"] and "a-1, b-2" in out["msg"]


def test_an_empty_results_dir_fails(tmp_path):
    out = run({"results_dir": str(tmp_path)})
    assert out["failed"] is True and "no run under" in out["msg"]
