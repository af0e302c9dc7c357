"""benchmark.yml on the lab.

In-cluster: the Job rendered from variables is validated by the API server
(server-side dry run) for completions and chat, single- and multi-turn, and
nothing is created; an invalid one is rejected by the server; a Job that
never finishes (kwok pods run forever) times out, fails with a clear message
and is deleted. Local: the real guidellm (lab/guidellm) benchmarks the real
simulators through an in-process port-forward, twice, and the runs are
summarized and compared.
"""
import glob
import json
import os
import subprocess

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def stack(deploy_stack):
    with deploy_stack("t-bench", "b") as (extra, _deploy):
        name = extra["stack_namespace"]
        yield {"namespace": name, "vars": {"benchmark_namespace": name, "benchmark_release_postfix": "b"}}


@pytest.fixture(scope="module")
def guidellm():
    """{bin, tokenizer} of the guidellm `make guidellm` installs (a no-op when installed)."""
    out = subprocess.run(["bash", os.path.join(REPO, "lab", "guidellm", "install.sh")], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    bin_dir = out.stdout.strip().splitlines()[-1]
    return {"bin": os.path.join(bin_dir, "guidellm"),
            "tokenizer": os.path.join(os.path.dirname(os.path.dirname(bin_dir)), "tokenizer")}


def jobs(lab, namespace):
    return lab.kubectl("-n", namespace, "get", "jobs", "-o", "name").stdout.split()


def guidellm_processes(path):
    return subprocess.run(["pgrep", "-f", path], capture_output=True, text=True, check=False).stdout.split()


@pytest.mark.parametrize("request_type, turns", [("completions", 1), ("chat", 1), ("completions", 3), ("chat", 3)])
def test_job_passes_a_server_side_dry_run_and_nothing_is_created(stack, run_playbook, lab, tmp_path,
                                                                 request_type, turns):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_request_type=request_type, benchmark_turns=turns,
                                             benchmark_results_dir=str(tmp_path)))
    assert run.rc == 0, run.tail()
    assert "The API server accepted Job %s/guidellm-default-" % stack["namespace"] in run.output
    gateway = "http://infra-b-inference-gateway-istio.%s.svc.cluster.local:80" % stack["namespace"]
    assert "--target %s" % gateway in run.output
    assert "--request-type %s_completions" % ("chat" if request_type == "chat" else "text") in run.output
    assert ("turns=3" in run.output) == (turns == 3)
    assert jobs(lab, stack["namespace"]) == []
    assert os.listdir(str(tmp_path)) == []


def test_the_api_server_rejects_an_invalid_job(stack, run_playbook, lab):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_resources={"requests": {"cpu": "lots"}}))
    assert run.rc != 0
    assert "quantities must match the regular expression" in run.output
    assert jobs(lab, stack["namespace"]) == []


@pytest.mark.parametrize("extra, message", [
    ({"benchmark_image": "ghcr.io/vllm-project/guidellm:v0.7.4"},
     "guidellm 0.7.4 replaced 'guidellm benchmark' with 'guidellm run --backend kind=...'"),
    ({"benchmark_image": "ghcr.io/vllm-project/guidellm:v0.5.4", "benchmark_turns": 2},
     "multi-turn (turns=2) needs guidellm 0.6 or newer; this is 0.5.4"),
    ({"benchmark_profile": "throughput"}, "profile throughput takes no rate"),
    ({"benchmark_namespace": "t-bench-nothing-here"}, "No gateway Service found in namespace t-bench-nothing-here"),
])
def test_bad_settings_fail_before_anything_is_sent(stack, run_playbook, lab, extra, message):
    run = run_playbook("benchmark.yml", dict(stack["vars"], **extra))
    assert run.rc != 0
    assert message in run.output, run.tail()
    assert jobs(lab, stack["namespace"]) == []


def test_check_mode_creates_nothing(stack, run_playbook, lab, tmp_path):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_dry_run=False,
                                             benchmark_results_dir=str(tmp_path)), "--check")
    assert run.rc == 0, run.tail()
    assert jobs(lab, stack["namespace"]) == [] and os.listdir(str(tmp_path)) == []


def test_a_job_that_never_starts_times_out_and_is_deleted(stack, run_playbook, lab, tmp_path):
    # no lab node has 500 CPUs: the pod stays Pending
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_dry_run=False, benchmark_timeout=12,
                                             benchmark_poll_interval=3, benchmark_results_dir=str(tmp_path),
                                             benchmark_resources={"requests": {"cpu": "500"}}))
    assert run.rc != 0
    assert "did not finish within 12 s" in run.output, run.tail()
    assert "phase Pending" in run.output and "not scheduled: 0/" in run.output and "Insufficient cpu" in run.output
    assert "Last lines of guidellm:" in run.output
    assert "FAILED - RETRYING: [localhost]: in_cluster | Wait for the benchmark pod to finish" in run.output
    assert_nothing_left(lab, stack["namespace"])


def test_a_job_without_a_report_fails_clearly_and_is_deleted(stack, run_playbook, lab, tmp_path):
    # kwok completes Job pods without running them, so the report container printed nothing
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_dry_run=False, benchmark_poll_interval=2,
                                             benchmark_results_dir=str(tmp_path)))
    assert run.rc != 0
    assert "completed but its report could not be read: no logs found for container" in run.output, run.tail()
    assert "Traceback" not in run.output.split("Fail with the cause")[-1]
    assert_nothing_left(lab, stack["namespace"])


def test_a_kept_job_blocks_a_second_run_of_the_same_name(stack, run_playbook, lab, tmp_path):
    common = dict(stack["vars"], benchmark_dry_run=False, benchmark_poll_interval=2, benchmark_keep_job=True,
                  benchmark_job_name="guidellm-kept", benchmark_results_dir=str(tmp_path))
    try:
        first = run_playbook("benchmark.yml", common)
        assert first.rc != 0 and jobs(lab, stack["namespace"]) == ["job.batch/guidellm-kept"]
        second = run_playbook("benchmark.yml", common)
        assert second.rc != 0
        assert "Job %s/guidellm-kept already exists (a kept or running benchmark)" % stack["namespace"] in second.output
    finally:
        lab.kubectl("-n", stack["namespace"], "delete", "job", "guidellm-kept", "--cascade=foreground", "--wait")
    assert_nothing_left(lab, stack["namespace"])


@pytest.mark.parametrize("preset, job_prefix", [
    ("A very long preset name that goes on and on", "guidellm-a-very-long-preset-name-that-g-"),
    ("!!!", "guidellm-run-"),
])
def test_odd_presets_still_give_a_valid_unique_job_name(stack, run_playbook, preset, job_prefix):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_preset=preset))
    assert run.rc == 0, run.tail()
    assert "accepted Job %s/%s2" % (stack["namespace"], job_prefix) in run.output


def assert_nothing_left(lab, namespace):
    assert jobs(lab, namespace) == []
    assert lab.kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=guidellm",
                       "-o", "name").stdout.strip() == ""


def test_local_mode_benchmarks_the_simulators_and_compares_runs(stack, run_playbook, guidellm, tmp_path):
    common = dict(stack["vars"], benchmark_mode="local", benchmark_guidellm_path=guidellm["bin"],
                  benchmark_processor=guidellm["tokenizer"], benchmark_env={"HF_HUB_OFFLINE": "1"},
                  benchmark_max_seconds=4, benchmark_prompt_tokens=64, benchmark_output_tokens=16,
                  benchmark_results_dir=str(tmp_path))
    first = run_playbook("benchmark.yml", dict(common, benchmark_preset="Preset A", benchmark_rate=[1]))
    assert first.rc == 0, first.tail()
    second = run_playbook("benchmark.yml", dict(common, benchmark_preset="preset-b", benchmark_rate=[2],
                                                benchmark_request_type="chat"))
    assert second.rc == 0, second.tail()

    runs = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(str(tmp_path / "*" / "benchmarks.json")))
    assert [r.rsplit("-", 1)[0] for r in runs] == ["preset-a", "preset-b"]
    for run_name in runs:
        with open(str(tmp_path / run_name / "summary.json")) as handle:
            summary = json.load(handle)
        (bench,) = summary["benchmarks"]
        assert bench["strategy"] == "concurrent"
        assert bench["requests"]["successful"] > 0 and bench["requests"]["errored"] == 0
        assert bench["ttft_ms"]["p50"] > 0 and bench["output_tokens_per_s"] > 0
        with open(str(tmp_path / run_name / "run.json")) as handle:
            info = json.load(handle)
        assert info["target"] == "port-forward to service %s/infra-b-inference-gateway-istio:80" % stack["namespace"]
    comparison = (tmp_path / "comparison.md").read_text()
    assert "| %s | Preset A | concurrent@1 |" % runs[0] in comparison
    assert "| %s | preset-b | concurrent@2 |" % runs[1] in comparison
    assert "%s: concurrent@2:" % runs[1] in second.output
    assert guidellm_processes(guidellm["bin"]) == []


def test_local_mode_failure_shows_guidellm_output_and_leaves_nothing_running(stack, run_playbook, guidellm, tmp_path):
    run = run_playbook("benchmark.yml", dict(
        stack["vars"], benchmark_mode="local", benchmark_guidellm_path=guidellm["bin"], benchmark_target="http://127.0.0.1:9",
        benchmark_processor=guidellm["tokenizer"], benchmark_env={"HF_HUB_OFFLINE": "1"}, benchmark_max_seconds=4,
        benchmark_results_dir=str(tmp_path)))
    assert run.rc != 0
    assert "guidellm exited 1; its last lines:" in run.output
    assert "ConnectError" in run.output
    assert guidellm_processes(guidellm["bin"]) == []


def test_local_dry_run_shows_the_command_and_runs_nothing(stack, run_playbook, guidellm, tmp_path):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_mode="local", benchmark_dry_run=True,
                                             benchmark_guidellm_path=guidellm["bin"], benchmark_results_dir=str(tmp_path)))
    assert run.rc == 0, run.tail()
    output = " ".join(run.output.split())
    assert "Dry run, guidellm not started: %s benchmark run --target http://127.0.0.1:FORWARDED_PORT" % (
        guidellm["bin"]) in output
    assert "--rate-type concurrent" in output
    assert os.listdir(str(tmp_path)) == []


def test_local_mode_without_guidellm_says_how_to_install_it(stack, run_playbook, tmp_path):
    run = run_playbook("benchmark.yml", dict(stack["vars"], benchmark_mode="local",
                                             benchmark_guidellm_path=str(tmp_path / "no-guidellm"),
                                             benchmark_results_dir=str(tmp_path)))
    assert run.rc != 0
    assert "guidellm is not installed" in run.output and "pip install 'guidellm<0.7'" in run.output
