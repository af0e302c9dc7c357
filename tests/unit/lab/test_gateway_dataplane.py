"""Whole-request decisions of the lab gateway data-plane simulator (the pure
core behind gateway_dataplane.Controller), one breakage at a time."""
import inspect
import random

import pytest

import dataplane_fixtures as fx
from simulators import dataplane_epp as epp
from simulators import dataplane_request as request_core
from simulators import dataplane_routing as routing

COMPLETION = b'{"model": "fake-model", "prompt": "hello there", "max_tokens": 5}'
DECODE_A, DECODE_B = "ms-sim-llm-d-modelservice-decode-a", "ms-sim-llm-d-modelservice-decode-b"


def decide(raw, method="POST", path="/v1/completions", body=COMPLETION, states=None, seed=0, metrics=None):
    headers = {"host": "localhost:8000", "x-request-id": "rid-1", "content-type": "application/json"}
    return request_core.decide(routing.build_view(raw), fx.GATEWAY_KEY, method, path, headers, body,
                               {} if states is None else states, metrics, random.Random(seed))


def rejected(answer):
    assert answer["action"] == "reject", answer
    return answer["decision"]


def test_healthy_completion_is_scheduled_by_the_epp():
    states = {}
    answer = decide(fx.working_stack(), states=states)
    assert answer["action"] == "forward"
    assert answer["via_epp"] is True
    assert answer["target"]["name"] in (DECODE_A, DECODE_B)
    assert answer["address"] == ("127.0.0.1", 31001 if answer["target"]["name"] == DECODE_A else 31002)
    assert answer["headers"]["x-gateway-destination-endpoint"] == answer["target"]["address"] + ":8000"
    assert answer["epp_pod"] == (fx.NS, "gaie-sim-epp-abc")
    msgs = [m for _l, m, _f in answer["events"]]
    assert msgs[0] == "LLM request assembled" and msgs[-1] == "Request handled"
    pool_key = (fx.NS, fx.POOL, routing.POOL_GROUP_V1)
    assert answer["track"] == (pool_key, answer["target"]["key"])
    assert states[pool_key].in_flight[answer["target"]["key"]] == 1
    assert answer["timeout_s"] == 15.0 and answer["prefix"] is True


def test_in_flight_requests_steer_the_next_pick():
    states = {}
    first = decide(fx.working_stack(), states=states)
    second = decide(fx.working_stack(), states=states, body=b'{"model": "m", "prompt": "different"}')
    assert second["target"]["key"] != first["target"]["key"]


def test_get_models_passes_straight_to_a_pod_through_the_epp():
    answer = decide(fx.working_stack(), method="GET", path="/v1/models", body=b"")
    assert answer["action"] == "forward" and answer["via_epp"] is True and answer["track"] is None
    assert [m for _l, m, _f in answer["events"]] == ["Request handled"]


def test_deleted_route_gives_404():
    raw = fx.working_stack()
    raw["routes"] = []
    decision = rejected(decide(raw))
    assert (decision["status"], decision["body"]) == (404, "")


def test_missing_pool_gives_500():
    raw = fx.working_stack()
    raw["pools_v1"] = []
    assert (rejected(decide(raw))["status"], rejected(decide(raw))["body"]) == (500, "fault filter abort")


def test_epp_scaled_to_zero_fail_close_gives_503():
    raw = fx.working_stack()
    raw["pods"] = [p for p in raw["pods"] if not p["metadata"]["name"].startswith("gaie-sim-epp")]
    decision = rejected(decide(raw))
    assert decision["status"] == 503
    assert "ext_proc error: endpoint picker" in decision["body"] and "selects no ready pod" in decision["body"]


def test_epp_scaled_to_zero_fail_open_skips_the_epp():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(failure_mode="FailOpen")]
    raw["pods"] = [p for p in raw["pods"] if not p["metadata"]["name"].startswith("gaie-sim-epp")]
    answer = decide(raw)
    assert answer["action"] == "forward" and answer["via_epp"] is False
    assert answer["headers"] == {} and answer["events"] == [] and answer["track"] is None


def test_fail_open_without_pods_gives_no_healthy_upstream():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(failure_mode="FailOpen", selector={"app": "none"})]
    raw["services"].pop(0)
    assert rejected(decide(raw))["body"] == "no healthy upstream"


def test_broken_epp_config_counts_as_unreachable():
    raw = fx.working_stack(config_text="plugins: [")
    decision = rejected(decide(raw))
    assert decision["status"] == 503 and "invalid EndpointPickerConfig YAML" in decision["body"]


def test_missing_epp_configmap_counts_as_unreachable():
    raw = fx.working_stack()
    raw["configmaps"] = []
    assert "no such file or directory" in rejected(decide(raw))["body"]


@pytest.mark.parametrize("body, message", [
    (b'{"prompt": "hi"}', "inference error: BadRequest - model not found in request body"),
    (b'{"model": "fake-model"}', "inference error: BadRequest - prompt not found in request"),
])
def test_epp_body_checks_give_400(body, message):
    answer = decide(fx.working_stack(), body=body)
    assert (rejected(answer)["status"], rejected(answer)["body"]) == (400, message)
    assert answer["epp_pod"] == (fx.NS, "gaie-sim-epp-abc")
    assert answer["events"][0][:2] == ("error", "Failed to process request")


def test_selector_matching_nothing_gives_no_healthy_upstream():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(selector={"app": "nothing"})]
    answer = decide(raw)
    assert (rejected(answer)["status"], rejected(answer)["body"]) == (503, "no healthy upstream")
    assert "failed to find candidate pods" in answer["events"][0][2]["error"]


def test_no_ready_pods_gives_no_healthy_upstream():
    raw = fx.working_stack()
    for pod in raw["pods"][:2]:
        pod["status"]["conditions"][0]["status"] = "False"
    assert rejected(decide(raw))["body"] == "no healthy upstream"


def test_epp_for_another_pool_knows_no_pods():
    raw = fx.working_stack()
    raw["pods"][2] = fx.epp_pod(args=["--pool-name", "other", "--config-file", "/config/default-plugins.yaml"])
    assert rejected(decide(raw))["status"] == 503


def test_wrong_target_port_gives_connection_failure():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(ports=(9999,))]
    answer = decide(raw)
    decision = rejected(answer)
    assert decision["status"] == 503
    assert decision["body"] == ("upstream connect error or disconnect/reset before headers. "
                                "reset reason: connection failure")
    # the EPP did pick a pod: its log shows the pick, Envoy then fails to connect
    assert answer["events"][-1][1] == "Request handled"


def test_pod_without_portforward_gives_connection_failure():
    raw = fx.working_stack()
    raw["portforwards"] = []
    assert rejected(decide(raw))["flag"] == "UF"


def test_filters_leaving_nothing_give_503_from_the_epp():
    raw = fx.working_stack(config_text="plugins: [{type: prefill-filter}]\n")
    answer = decide(raw)
    assert rejected(answer)["body"] == "inference error: ServiceUnavailable - failed to find target pod"


def test_pd_sets_the_prefiller_header():
    raw = fx.working_stack(config_text=fx.PD_CONFIG)
    raw["pods"].append(fx.pod("ms-sim-llm-d-modelservice-prefill-a",
                              {"llm-d.ai/inference-serving": "true", "llm-d.ai/role": "prefill"}, ip="10.0.0.21"))
    body = b'{"model": "fake-model", "prompt": "' + b"long prompt " * 20 + b'"}'
    answer = decide(raw, body=body)
    assert answer["action"] == "forward"
    assert answer["target"]["name"] in (DECODE_A, DECODE_B)
    assert answer["headers"]["x-prefiller-host-port"] == "10.0.0.21:8000"
    assert [f for _l, m, f in answer["events"] if m == "Request handled"][0]["mutatedHeaders"] == {
        "x-prefiller-host-port": "10.0.0.21:8000"}


def test_kv_cache_metrics_steer_the_pick():
    raw = fx.working_stack(config_text="plugins: [{type: kv-cache-utilization-scorer}]\n")
    metrics = {
        "%s/%s" % (fx.NS, DECODE_A): epp.parse_sim_metrics('vllm:kv_cache_usage_perc{m="x"} 0.9'),
        "%s/%s" % (fx.NS, DECODE_B): epp.parse_sim_metrics('vllm:kv_cache_usage_perc{m="x"} 0.1'),
    }
    for seed in range(5):
        assert decide(raw, metrics=metrics, seed=seed)["target"]["name"] == DECODE_B


def test_v1alpha2_pool_routes_too():
    raw = fx.working_stack()
    raw["pools_v1"] = []
    raw["pools_v1alpha2"] = [fx.pool_v1alpha2(failure_mode="FailClose")]
    raw["routes"] = [fx.route(group=routing.POOL_GROUP_V1ALPHA2)]
    answer = decide(raw)
    assert answer["action"] == "forward" and answer["via_epp"] is True


def test_controller_keeps_the_supervisor_interface():
    pytest.importorskip("kubernetes")
    from simulators import gateway_dataplane

    params = list(inspect.signature(gateway_dataplane.Controller.__init__).parameters)
    assert params == ["self", "api_client", "lab_dir", "bin_dir", "log"]
    assert callable(gateway_dataplane.Controller.sync) and callable(gateway_dataplane.Controller.close)
