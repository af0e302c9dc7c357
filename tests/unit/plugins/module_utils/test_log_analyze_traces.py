"""Request traces, P/D evidence and anomalies of _log_analyze, over the fixture runs
under tests/unit/fixtures/logs/<scenario>/ (raw/<pod>/<container>.log + pods.json)."""
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.llmd.stack.plugins.module_utils import _log_analyze as la

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "logs")

EPP_OLD, D1_OLD, D2_OLD = "granite-8b-epp-8d6c5b7f9-q4w2e", "granite-8b-decode-6f7c8d9b4-t5kq2", "granite-8b-decode-6f7c8d9b4-zm81w"
DECODE_OLD_PD, PREFILL_OLD_PD = "mistral-7b-decode-58c9d7f6b-vx2rn", "mistral-7b-prefill-7d9f5c8b4-lq7te"
QWEN_A, QWEN_B = "qwen-decode-7c5b9d8f6-hh4nm", "qwen-decode-7c5b9d8f6-p2x9c"
RA, RB = "6b1f0c52-9a4e-4d7b-b1f3-2f8e5c0a9d11", "c0d9a8e7-1b2c-4d3e-8f90-aa11bb22cc33"
PD1, PD2 = "ms-pd-llm-d-modelservice-decode-6d9b8c7f5-a1b2c", "ms-pd-llm-d-modelservice-decode-6d9b8c7f5-d3e4f"
PF = "ms-pd-llm-d-modelservice-prefill-5b8c9d7f6-g5h6j"
R1, R2 = "3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c", "9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
R3, R4 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "0f1e2d3c-4b5a-4968-8776-655443322110"


def load(scenario, with_pods=True):
    base = os.path.join(FIXTURES, scenario)
    pods = {}
    if with_pods:
        with open(os.path.join(base, "pods.json")) as handle:
            pods = dict((pod["name"], {"role": pod["role"], "ip": pod["ip"]}) for pod in json.load(handle))
    sources = []
    for pod in sorted(os.listdir(os.path.join(base, "raw"))):
        for name in sorted(os.listdir(os.path.join(base, "raw", pod))):
            with open(os.path.join(base, "raw", pod, name)) as handle:
                sources.append({"pod": pod, "container": name[:-4], "text": handle.read()})
    return sources, pods


def run(scenario, with_pods=True):
    sources, pods = load(scenario, with_pods)
    compiled, _errors = la.compile_noise_patterns(la.DEFAULT_NOISE_PATTERNS)
    return la.analyze(sources, pods, compiled)


def kinds(result):
    return sorted((anomaly["kind"], anomaly["request_id"]) for anomaly in result["anomalies"])


# --------------------------------------------------------------------------
# the older EPP format (scheduling/scheduler.go messages, no request id)
# --------------------------------------------------------------------------

def test_old_format_traces_by_order():
    result = run("old_format")
    first, second = result["traces"]
    assert [first["request_id"], first["index"], second["index"]] == [None, 1, 2]
    assert first["format"] == second["format"] == "old"
    assert first["model"] == "granite-3.1-8b"
    assert first["ts"] == "2025-06-03T08:14:07Z"
    assert first["candidates"] == [D1_OLD, D2_OLD]
    assert first["filters"] == [{"plugin": "DefaultPlugin", "kept": [D1_OLD, D2_OLD]}]
    assert first["total_scores"] == {D1_OLD: 0.0, D2_OLD: 0.0}
    assert first["picked"] == first["handled_by"] == D2_OLD
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 32, "total_tokens": 35}
    assert first["tie_break_random"] is True
    assert first["pd"] == "unknown" and first["pd_ran"] is None
    assert second["total_scores"] == {D1_OLD: 0.25, D2_OLD: 0.75}
    assert second["tie_break_random"] is False
    assert second["served"] is True


def test_old_format_flags_the_random_tie_break_only():
    result = run("old_format")
    assert kinds(result) == [("scores_all_equal", "#1")]
    assert "all scored 0" in result["anomalies"][0]["detail"]
    assert result["summary"]["random_tie_breaks"] == 1
    assert result["summary"]["picks_per_pod"] == {D2_OLD: 2}


def test_old_format_counts_noise_per_file():
    result = run("old_format")
    by_file = dict(((item["pod"], item["container"]), item) for item in result["files"])
    assert by_file[(EPP_OLD, "epp")]["lines_dropped"] == 4  # 2x Refreshed metrics, 2x gRPC health
    assert by_file[(D1_OLD, "routing-proxy")]["lines_dropped"] == 2
    assert by_file[(D1_OLD, "vllm")] == {"pod": D1_OLD, "container": "vllm", "role": "decode", "lines_kept": 1, "lines_dropped": 3}
    filtered = dict(((item["pod"], item["container"]), item["text"]) for item in result["filtered"])
    assert "GET /metrics" not in filtered[(D2_OLD, "vllm")]
    assert '"POST /v1/completions HTTP/1.1" 200' in filtered[(D2_OLD, "vllm")]
    assert result["summary"]["lines_dropped"] == sum(result["dropped_per_pattern"].values())


def test_old_format_pd_scheduler_and_sidecar_evidence():
    result = run("old_pd")
    (trace,) = result["traces"]
    assert trace["pd"] == "enabled"
    assert trace["pd_decision"] == "P/D scheduler"
    assert list(trace["profiles"]) == ["prefill", "decode"]
    assert trace["profiles"]["prefill"]["filters"] == [{"plugin": "prefill_filter", "kept": [PREFILL_OLD_PD]}]
    assert trace["filters"] == [{"plugin": "decode_filter", "kept": [DECODE_OLD_PD]}]
    assert trace["prefill_picked"] == PREFILL_OLD_PD
    assert trace["picked"] == trace["handled_by"] == DECODE_OLD_PD
    (entry,) = result["pd_evidence"]
    assert entry == {
        "request_id": None,
        "trace_index": 1,
        "decode_pod": DECODE_OLD_PD,
        "prefill_pod": PREFILL_OLD_PD,
        "prefill_sent": True,
        "prefill_response": {"remote_block_ids": [7, 8, 9], "remote_engine_id": "2c4e6a80-13f5-4b7d-9e1a-3c5e7f9b1d20",
                             "remote_host": "10.42.1.30", "remote_port": 5557},
        "decode_sent": True,
        "nixl_handshake": True,
        "kv_transfer_done_prefill": True,
        "kv_transfer_done_decode": True,
        "kv_request_id": "cmpl-8f1e2d3c-4b5a-4678-9abc-def012345678-0",
        "pd_ran": True,
        "missing": [],
    }
    assert trace["pd_ran"] is True
    assert result["anomalies"] == []
    assert result["summary"]["pd"] == {"enabled": 1, "disabled": 0, "unknown": 0, "exchanges": 1, "ran": 1}


# --------------------------------------------------------------------------
# the plugin-based llm-d format (x-request-id; the prefix scorer logging bug)
# --------------------------------------------------------------------------

def test_plugin_format_groups_interleaved_lines_by_request_id():
    result = run("plugin_format")
    first, second = result["traces"]
    assert [first["request_id"], second["request_id"]] == [RA, RB]
    assert first["format"] == second["format"] == "plugin"
    assert first["model"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert first["pd"] == "disabled"
    assert first["pd_decision"] == "P/D disabled: decode worker only"
    assert first["filters"] == [{"plugin": "decode-filter", "kept": [QWEN_A, QWEN_B]}]
    assert list(first["scores"]) == ["session-affinity-scorer", "prefix-aware-scorer", "load-aware-scorer"]
    assert first["picked"] == first["handled_by"] == QWEN_A
    assert first["status"] == "200"
    assert first["usage"]["total_tokens"] == 377
    assert second["picked"] == second["handled_by"] == QWEN_B
    assert second["scores"]["prefix-aware-scorer"] == {QWEN_A: 0.0, QWEN_B: 3.0}
    assert second["usage"]["total_tokens"] == 199


def test_plugin_format_random_picker_log_is_not_a_tie_by_itself():
    # this EPP logs "Selecting a random pod" after the max-score picker for
    # every request; without equal scores it is not a random pick
    result = run("plugin_format")
    assert [trace["tie_break_random"] for trace in result["traces"]] == [False, False]


def test_plugin_format_flags_the_prefix_scorer_without_scores():
    result = run("plugin_format")
    assert result["traces"][0]["scorers_without_scores"] == ["prefix-aware-scorer"]
    assert result["traces"][1]["scorers_without_scores"] == []
    assert kinds(result) == [("scorer_no_scores", RA)]


# --------------------------------------------------------------------------
# the profile-based GAIE format, the nixlv2 sidecar, vLLM and the simulator
# --------------------------------------------------------------------------

def test_profile_format_traces():
    result = run("profile_pd")
    traces = dict((trace["request_id"], trace) for trace in result["traces"])
    assert list(traces) == [R1, R2, R3, R4]
    first = traces[R1]
    assert first["format"] == "plugin"
    assert list(first["profiles"]) == ["decode", "prefill"]
    assert first["scores"] == {"prefix-cache-scorer": {PD1: 0.8, PD2: 0.1}, "queue-scorer": {PD1: 1.0, PD2: 1.0}}
    assert first["total_scores"] == {PD1: 2.6, PD2: 1.2}
    assert first["picked"] == PD1 and first["prefill_picked"] == PF
    assert first["handled_endpoint"] == "10.42.3.10:8000"
    assert first["handled_by"] == PD1  # resolved through the pod IP
    assert first["pd"] == "enabled"


def test_profile_format_decode_only_request_and_tie():
    trace = run("profile_pd")["traces"][2]
    assert trace["pd"] == "disabled"
    assert "skipped the prefill profile" in trace["pd_decision"]
    assert trace["tie_break_random"] is True
    assert trace["scorers_without_scores"] == ["lora-affinity-scorer"]
    assert trace["handled_by"] == PD2


def test_profile_format_failed_scheduling_is_not_served():
    trace = run("profile_pd")["traces"][3]
    assert trace["picked"] is None
    assert trace["served"] is False
    assert trace["pd"] == "unknown"  # decode failed: no P/D decision was made
    assert trace["errors"] == ["Error handling request: inference gateway: Internal - failed to find target pod: "
                               "no pods available for the given request"]


def test_profile_format_pd_evidence_linked_by_id_and_by_order():
    result = run("profile_pd")
    by_request = dict((entry["request_id"], entry) for entry in result["pd_evidence"])
    assert sorted(by_request) == sorted([R1, R2])
    ran = by_request[R1]
    assert ran["kv_request_id"] == "cmpl-%s-0" % R1  # x-request-id reached vLLM
    assert ran["prefill_response"]["remote_block_ids"] == [4, 5]
    assert ran["prefill_pod"] == PF
    assert (ran["nixl_handshake"], ran["kv_transfer_done_decode"], ran["kv_transfer_done_prefill"], ran["pd_ran"]) == (True, True, True, True)
    stuck = by_request[R2]  # vLLM used its own id: linked by order on the decode pod
    assert stuck["kv_request_id"] == "cmpl-77aa66bb-55cc-44dd-83ee-22ff11aa0099-0"
    assert stuck["prefill_response"]["remote_block_ids"] == [6, 7, 8]
    assert stuck["decode_sent"] is True
    assert stuck["kv_transfer_done_decode"] is False and stuck["kv_transfer_done_prefill"] is False
    assert stuck["pd_ran"] is False
    assert stuck["missing"] == ["kv_transfer_done"]
    assert [trace["pd_ran"] for trace in result["traces"]] == [True, False, None, None]


def test_profile_format_anomalies():
    result = run("profile_pd")
    assert kinds(result) == sorted([
        ("scores_all_equal", R3),
        ("scorer_no_scores", R3),
        ("not_served", R4),
        ("pd_no_kv_transfer", R2),
    ])
    summary = result["summary"]
    assert summary["requests"] == 4 and summary["served"] == 3
    assert summary["pd"] == {"enabled": 2, "disabled": 1, "unknown": 1, "exchanges": 2, "ran": 1}
    assert summary["anomalies"] == {"scores_all_equal": 1, "scorer_no_scores": 1, "not_served": 1, "pd_no_kv_transfer": 1}


def test_simulator_klog_lines_are_model_server_evidence():
    sources, _pods = load("profile_pd")
    (sim,) = [source for source in sources if source["pod"] == PD2]
    events = [la.model_server_event(la.parse_line(record, 2025)) for record in la.split_records(sim["text"])]
    events = [event for event in events if event]
    assert [(event["type"], event["request_id"]) for event in events] == [
        ("received", R3),  # "HTTP request" (--log-http) with its X-Request-Id header
        ("received", R3),  # "Received" (--v=4)
        ("served", R3 + "-0"),
    ]


def test_without_pod_roles_names_decide():
    result = run("old_pd", with_pods=False)
    assert result["pods"][PREFILL_OLD_PD]["role"] == "prefill"
    assert result["pd_evidence"][0]["pd_ran"] is True
    # without IPs the prefiller URL cannot name the pod; the only prefill pod is used
    assert result["pd_evidence"][0]["prefill_pod"] == PREFILL_OLD_PD


# --------------------------------------------------------------------------
# rules on small inputs
# --------------------------------------------------------------------------

def epp(msg, **fields):
    line = {"level": "Level(-4)", "ts": "2025-09-01T12:00:00Z", "msg": msg}
    line.update(fields)
    return json.dumps(line)


def analyze_epp(lines, pods=None):
    return la.analyze([{"pod": "x-epp-1", "container": "epp", "text": "\n".join(lines)}],
                      pods or {"x-epp-1": {"role": "epp", "ip": None}}, [])


def test_a_random_picker_is_not_a_tie_break():
    # the profile's picker ignores scores by design: nothing was tied
    pods = [{"NamespacedName": {"Namespace": "n", "Name": name}} for name in ("p1", "p2")]
    result = analyze_epp([
        epp("LLM request assembled", **{"x-request-id": "r1"}),
        epp("Filter plugin result", plugin="decode-filter", pods=pods, **{"x-request-id": "r1"}),
        epp("Selecting a random pod from 2 candidates: []", **{"x-request-id": "r1"}),
        epp("After running picker plugin", result={"TargetPod": {"Pod": pods[1]}}, **{"x-request-id": "r1"}),
        epp("Response generated", usage={"total_tokens": 1}, **{"x-request-id": "r1"}),
    ])
    (trace,) = result["traces"]
    assert trace["picked"] == "p2"
    assert trace["profiles"]["decode"]["picker"] == "random"
    assert trace["tie_break_random"] is False
    assert result["anomalies"] == []


def test_picker_kinds():
    assert [la.picker_kind(name) for name in (
        "max-score-picker", "Selecting the pod with the max score from 2 candidates", "random-picker",
        "Selecting a pod by weighted random choice from 3 candidates", "round-robin-picker", "my-picker", None)] == [
        "max-score", "max-score", "random", "weighted-random", "round-robin", "my-picker", None]


def test_passthrough_requests_are_not_scheduling_traces():
    result = analyze_epp([
        epp("Request handled", method="GET", path="/v1/models", endpoint="{NamespacedName:n/d1 Address:a}",
            **{"x-request-id": "m1"}),
    ])
    (trace,) = result["traces"]
    assert trace["passthrough"] == "GET /v1/models"
    assert trace["handled_by"] == "d1" and trace["picked"] is None
    assert result["anomalies"] == []
    assert result["summary"]["requests"] == 0 and result["summary"]["passthrough"] == 1


def test_single_candidate_is_never_a_tie():
    pods = [{"NamespacedName": {"Namespace": "n", "Name": "p1"}}]
    result = analyze_epp([
        epp("Filter plugin result", plugin="decode-filter", pods=pods, **{"x-request-id": "r1"}),
        epp("Multiple pods have the same max score (0.000000): []", **{"x-request-id": "r1"}),
    ])
    assert result["traces"][0]["tie_break_random"] is False


def test_scores_that_differ_in_one_scorer_are_not_a_tie():
    result = analyze_epp([
        epp("Calculated score", plugin="a/a", endpoint="n/p1", score=0.5, **{"x-request-id": "r1"}),
        epp("Calculated score", plugin="a/a", endpoint="n/p2", score=0.5, **{"x-request-id": "r1"}),
        epp("Calculated score", plugin="b/b", endpoint="n/p1", score=0.1, **{"x-request-id": "r1"}),
        epp("Calculated score", plugin="b/b", endpoint="n/p2", score=0.9, **{"x-request-id": "r1"}),
    ])
    assert result["traces"][0]["tie_break_random"] is False
    result = analyze_epp([
        epp("Calculated score", plugin="a/a", endpoint="n/p1", score=0.5, **{"x-request-id": "r1"}),
        epp("Calculated score", plugin="a/a", endpoint="n/p2", score=0.5, **{"x-request-id": "r1"}),
    ])
    assert result["traces"][0]["tie_break_random"] is True


def test_old_format_without_assembled_line_starts_a_new_request_after_a_handled_one():
    old = "scheduling/scheduler.go:105"
    result = analyze_epp([
        epp("Scheduling a request. Metrics: [{score:0 Pod:{NamespacedName:n/p1 Address:a}}]", caller=old),
        epp("Request handled", caller="handlers/request.go:102", endpoint="{NamespacedName:n/p1 Address:a}"),
        epp("Response generated", caller="handlers/response.go:55", usage={"total_tokens": 5}),
        epp("Scheduling a request. Metrics: [{score:0 Pod:{NamespacedName:n/p2 Address:b}}]", caller=old),
        epp("Request handled", caller="handlers/request.go:102", endpoint="{NamespacedName:n/p2 Address:b}"),
    ])
    assert [(trace["index"], trace["handled_by"]) for trace in result["traces"]] == [(1, "p1"), (2, "p2")]
    assert [trace["format"] for trace in result["traces"]] == ["old", "old"]
    assert result["traces"][0]["usage"] == {"total_tokens": 5}
    # the second request was handed to p2 but its answer was never logged
    assert kinds(result) == [("not_served", "#2")]


def test_pd_scheduled_without_sidecar_logs_is_flagged():
    result = analyze_epp([
        epp("Scheduling to separate Prefill and Decode workers", **{"x-request-id": "r1"}),
        epp("Request handled", endpoint="{NamespacedName:n/d1 Address:a}", **{"x-request-id": "r1"}),
        epp("Response generated", usage={"total_tokens": 3}, **{"x-request-id": "r1"}),
    ])
    (entry,) = result["pd_evidence"]
    assert entry["decode_pod"] == "d1"
    assert entry["pd_ran"] is False
    assert entry["missing"] == ["prefill_sent", "prefill_response", "decode_sent", "kv_transfer_done"]
    assert kinds(result) == [("pd_no_kv_transfer", "r1")]
    assert result["summary"]["pd"] == {"enabled": 1, "disabled": 0, "unknown": 0, "exchanges": 0, "ran": 0}


def test_request_picked_but_never_answered_is_not_served():
    result = analyze_epp([
        epp("LLM request assembled", **{"x-request-id": "r9"}),
        epp("Request handled", endpoint="{NamespacedName:n/d1 Address:a}", **{"x-request-id": "r9"}),
        epp("LLM response assembled", response={"Headers": {":status": "503"}}, **{"x-request-id": "r9"}),
    ])
    assert kinds(result) == [("not_served", "r9")]
    assert "scheduled to d1" in result["anomalies"][0]["detail"]


def test_summary_report_mentions_every_request_and_anomaly():
    result = run("profile_pd")
    text = la.render_summary(result, "diag lab-d")
    assert text.startswith("# diag lab-d\n")
    for trace in result["traces"]:
        assert trace["request_id"] in text
    for kind in ("scores_all_equal", "scorer_no_scores", "not_served", "pd_no_kv_transfer"):
        assert "**%s**" % kind in text
    assert "| %s | %s | %s | yes | [4, 5] | yes | yes | yes | yes | yes |" % (R1, PD1, PF) in text


def test_summary_report_without_traces_says_why():
    text = la.render_summary(la.analyze([], {}, []))
    assert "No EPP request traces found" in text
    assert "No P/D exchange found" in text


# --------------------------------------------------------------------------
# robustness: arbitrary input never raises
# --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
messages = st.sampled_from([
    "LLM request assembled", "Scheduling a request", "Running scheduler profile", "Running filter plugin",
    "Filter plugin result", "Completed running filter plugin successfully", "Running scorer", "Running scorer plugin",
    "Calculated score", "Got pod scores", "No scores found for pods", "Completed running scorer plugin successfully",
    "Candidate pods for picking", "Selecting a pod with the max score", "Multiple pods have the same max score",
    "Selecting a random pod", "After running picker plugin", "Completed running picker plugin successfully",
    "Request handled", "PostResponse called", "LLM response assembled", "Response generated",
    "Scheduling to separate Prefill and Decode workers", "Disagregated prefill/decode disabled",
])
field_names = st.sampled_from(["x-request-id", "pods", "plugin", "scorer", "logger", "scores", "endpoint", "score", "result",
                               "usage", "response", "request", "profile", "pd-schedule", "ts", "level", "error", "pod"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(messages, st.dictionaries(field_names, json_values, max_size=5)), max_size=12))
def test_any_epp_json_lines_analyze_without_error(records):
    lines = []
    for msg, fields in records:
        fields = dict(fields)
        fields["msg"] = msg
        lines.append(json.dumps(fields))
    result = la.analyze([{"pod": "e-epp-0", "container": "epp", "text": "\n".join(lines)}], {}, [])
    la.render_summary(result)
    assert len(result["traces"]) <= len(records)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=12), st.sampled_from(["decode", "prefill", "epp", "other"]))
def test_any_text_lines_analyze_without_error(lines, role):
    prefixes = ["", "I0101 00:00:00.000001       1 x.go:1] ", "DEBUG 01-01 00:00:00 [x.py:1] ", '{"msg":"', "{"]
    text = "\n".join(prefixes[index % len(prefixes)] + line for index, line in enumerate(lines))
    result = la.analyze([{"pod": "p", "container": "c", "text": text}], {"p": {"role": role, "ip": None}}, [])
    assert result["files"][0]["lines_dropped"] == 0


@pytest.mark.parametrize("scenario", ["old_format", "old_pd", "plugin_format", "profile_pd"])
def test_results_are_json_serialisable(scenario):
    result = run(scenario)
    json.dumps(result)
