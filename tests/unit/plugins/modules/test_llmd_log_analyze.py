"""The llmd_log_analyze module: file I/O around the pure core, over a copy of a
fixture run directory (tests/unit/fixtures/logs/profile_pd)."""
import json
import os
import shutil

import pytest


from ansible_collections.llmd.stack.plugins.modules import llmd_log_analyze as module

from module_args import run_module

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "logs")
PD1 = "ms-pd-llm-d-modelservice-decode-6d9b8c7f5-a1b2c"
EPP = "gaie-pd-epp-5f6d7c8b9-n4k2s"


def run(args):
    return run_module(module.main, args)


@pytest.fixture(name="run_dir")
def fixture_run_dir(tmp_path):
    target = tmp_path / "run"
    shutil.copytree(os.path.join(FIXTURES, "profile_pd"), str(target))
    return target


def written(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_writes_filtered_logs_traces_and_summary(run_dir):
    result = run({"src": str(run_dir)})
    assert result["changed"] is True
    assert result["summary"]["requests"] == 4
    assert result["lines_dropped"] == 7 and result["lines_kept"] == 141
    assert sorted(anomaly["kind"] for anomaly in result["anomalies"]) == [
        "not_served", "pd_no_kv_transfer", "scorer_no_scores", "scores_all_equal"]
    assert result["traces_path"] == str(run_dir / "traces.json")
    files = written(run_dir)
    assert "filtered/%s/routing-proxy.log" % PD1 in files
    assert "filtered/%s/epp.log" % EPP in files
    report = json.loads((run_dir / "traces.json").read_text())
    assert [trace["request_id"] for trace in report["traces"]] == [trace["request_id"] for trace in result["traces"]]
    assert report["pods"][PD1] == {"role": "decode", "ip": "10.42.3.10"}  # read from pods.json
    assert report["pd_evidence"][0]["pd_ran"] is True
    summary = (run_dir / "summary.md").read_text()
    assert summary.startswith("# llm-d diagnostics\n")
    filtered_vllm = (run_dir / "filtered" / PD1 / "vllm.log").read_text()
    assert "GET /metrics" not in filtered_vllm and "Finished recving KV transfer" in filtered_vllm


def test_second_run_changes_nothing(run_dir):
    run({"src": str(run_dir)})
    again = run({"src": str(run_dir)})
    assert again["changed"] is False


def test_check_mode_analyzes_but_writes_nothing(run_dir):
    before = written(run_dir)
    result = run({"src": str(run_dir), "_ansible_check_mode": True})
    assert result["changed"] is True
    assert result["summary"]["requests"] == 4
    assert written(run_dir) == before


def test_dest_and_explicit_pods_and_extra_patterns(run_dir, tmp_path):
    dest = tmp_path / "out"
    result = run({
        "src": str(run_dir),
        "dest": str(dest),
        "title": "lab-d diagnosis",
        "pods": [{"name": EPP, "role": "epp"}, {"name": PD1, "role": "decode", "ip": "10.42.3.10"}],
        "extra_noise_patterns": [r"NIXL handshake: "],
    })
    assert result["filtered_dir"] == str(dest / "filtered")
    assert (dest / "summary.md").read_text().startswith("# lab-d diagnosis\n")
    assert result["dropped_per_pattern"]["NIXL handshake: "] == 2
    # pods not listed get a role from their name
    report = json.loads((dest / "traces.json").read_text())
    assert report["pods"]["ms-pd-llm-d-modelservice-prefill-5b8c9d7f6-g5h6j"] == {"role": "prefill", "ip": None}
    assert not (run_dir / "traces.json").exists()


def test_containers_not_started_are_named_in_the_report(run_dir):
    pods = json.loads((run_dir / "pods.json").read_text())
    pods[2]["not_started"] = ["routing-proxy"]
    (run_dir / "pods.json").write_text(json.dumps(pods))
    run({"src": str(run_dir)})
    assert "Containers not started (no log to read): %s/routing-proxy" % pods[2]["name"] in (run_dir / "summary.md").read_text()


def test_empty_noise_list_keeps_every_line(run_dir):
    result = run({"src": str(run_dir), "noise_patterns": []})
    assert result["lines_dropped"] == 0
    assert result["lines_kept"] == 148


def test_previous_container_instance_is_read_first(run_dir):
    previous = run_dir / "raw" / PD1 / "vllm.previous.log"
    previous.write_text("INFO 08-12 14:10:00 [api_server.py:1] vLLM API server version 0.10.1\n")
    result = run({"src": str(run_dir)})
    containers = [item["container"] for item in result["files"] if item["pod"] == PD1]
    assert containers == ["routing-proxy", "vllm.previous", "vllm"]
    assert (run_dir / "filtered" / PD1 / "vllm.previous.log").exists()


@pytest.mark.parametrize("args, message", [
    ({"extra_noise_patterns": ["(unclosed"]},
     "noise_patterns/extra_noise_patterns: noise pattern '(unclosed' is not a valid regular expression"),
    ({"pods": [{"name": "x", "role": "router"}]}, "value of role must be one of: epp, decode, prefill, other"),
])
def test_bad_options_fail_with_one_line(run_dir, args, message):
    result = run(dict(args, src=str(run_dir)))
    assert result["failed"] is True
    assert message in result["msg"]
    assert "\n" not in result["msg"]


def test_missing_raw_directory_names_src(tmp_path):
    result = run({"src": str(tmp_path)})
    assert result["failed"] is True
    assert result["msg"] == "src: %s has no raw/ directory; point src at a run directory holding raw/<pod>/<container>.log" % tmp_path


def test_broken_pods_json_is_reported(run_dir):
    (run_dir / "pods.json").write_text("{not json")
    result = run({"src": str(run_dir)})
    assert result["failed"] is True
    assert result["msg"].startswith("%s cannot be read as JSON" % (run_dir / "pods.json"))
    (run_dir / "pods.json").write_text(json.dumps([{"name": "p", "role": "gateway"}]))
    result = run({"src": str(run_dir)})
    assert "every entry needs a name and a role among epp, decode, prefill, other" in result["msg"]
