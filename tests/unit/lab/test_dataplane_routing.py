"""Envoy-side routing decisions of the lab gateway data-plane simulator."""
import random

import pytest

import dataplane_fixtures as fx
from simulators import dataplane_routing as routing


def plan(raw, method="POST", path="/v1/completions", headers=None):
    view = routing.build_view(raw)
    return routing.plan_request(view, fx.GATEWAY_KEY, method, path, headers or {"host": "localhost:8000"},
                                random.Random(1))


# --- InferencePool shapes -----------------------------------------------------

def test_normalize_pool_v1():
    pool = routing.normalize_pool(fx.pool_v1(ports=(8000, 8001), failure_mode="FailOpen"), routing.POOL_GROUP_V1)
    assert pool == {
        "namespace": fx.NS, "name": fx.POOL, "group": routing.POOL_GROUP_V1,
        "selector": fx.POOL_SELECTOR, "target_ports": [8000, 8001],
        "epp": {"service": fx.EPP, "group": "", "kind": "Service", "port": 9002, "failure_mode": "FailOpen"},
    }


def test_normalize_pool_v1alpha2_defaults_to_fail_open():
    pool = routing.normalize_pool(fx.pool_v1alpha2(port=8200), routing.POOL_GROUP_V1ALPHA2)
    assert pool["selector"] == fx.POOL_SELECTOR
    assert pool["target_ports"] == [8200]
    assert pool["epp"]["failure_mode"] == "FailOpen"
    assert pool["epp"]["port"] == 9002


@pytest.mark.parametrize("obj", [{}, {"spec": None}, {"spec": {"selector": "x", "targetPorts": "y"}}, None])
def test_normalize_pool_never_raises_on_junk(obj):
    pool = routing.normalize_pool(obj, routing.POOL_GROUP_V1)
    assert pool["selector"] == {} and pool["target_ports"] == [] and pool["epp"] is None


# --- Gateways and routes ------------------------------------------------------

def test_only_istio_gateways_with_running_pods_are_served():
    raw = fx.working_stack()
    raw["gateways"].append(fx.gateway(name="other", class_name="kgateway"))
    raw["gateway_classes"].append(fx.gateway_class("kgateway", "kgateway.dev/kgateway"))
    raw["pods"].append(fx.gateway_pod(name="other-0", gateway_name="other"))
    raw["gateways"].append(fx.gateway(name="podless"))
    assert routing.served_gateways(routing.build_view(raw)) == [fx.GATEWAY_KEY]


def test_gateway_forward_ports_include_service_target_ports():
    svc = fx.service("gw-istio", {}, [80])
    svc["spec"]["ports"][0]["targetPort"] = 8080
    assert routing.gateway_forward_ports(fx.gateway(), svc) == [80, 8080]


def test_route_without_accepted_status_is_not_attached():
    raw = fx.working_stack()
    raw["routes"] = [fx.route(accepted=False)]
    assert plan(raw)["status"] == 404


def test_route_without_any_status_is_not_attached():
    raw = fx.working_stack()
    del raw["routes"][0]["status"]
    decision = plan(raw)
    assert (decision["status"], decision["body"], decision["detail"]) == (404, "", "route_not_found")


def test_deleted_route_gives_404():
    raw = fx.working_stack()
    raw["routes"] = []
    assert plan(raw)["status"] == 404


def test_same_namespace_listener_rejects_foreign_route():
    raw = fx.working_stack()
    raw["gateways"] = [fx.gateway(allowed_from="Same")]
    raw["routes"] = [fx.route(namespace="elsewhere")]
    raw["routes"][0]["spec"]["parentRefs"][0]["namespace"] = fx.NS
    assert plan(raw)["status"] == 404


def test_path_match_precedence_exact_then_longest_prefix():
    exact = fx.route(name="exact", pool="exact-pool", matches=[{"path": {"type": "Exact", "value": "/v1/models"}}])
    prefix = fx.route(name="prefix", pool="v1-pool", matches=[{"path": {"type": "PathPrefix", "value": "/v1"}}])
    root = fx.route(name="root", pool="root-pool")
    routes = [root, prefix, exact]
    assert routing.match_request(routes, "GET", "/v1/models", {})[0] is exact
    assert routing.match_request(routes, "POST", "/v1/completions", {})[0] is prefix
    assert routing.match_request(routes, "GET", "/v1x", {})[0] is root
    assert routing.match_request(routes, "GET", "/health", {})[0] is root


def test_prefix_matches_whole_path_segments_only():
    only_v1 = [fx.route(matches=[{"path": {"type": "PathPrefix", "value": "/v1/"}}])]
    assert routing.match_request(only_v1, "GET", "/v1/models", {}) is not None
    assert routing.match_request(only_v1, "GET", "/v10/models", {}) is None
    assert routing.match_request(only_v1, "GET", "/v1?x=1", {}) is not None


def test_no_matching_rule_gives_404():
    raw = fx.working_stack()
    raw["routes"] = [fx.route(matches=[{"path": {"type": "PathPrefix", "value": "/v2"}}])]
    assert plan(raw)["status"] == 404


def test_header_and_method_matches():
    routes = [fx.route(matches=[{"method": "POST", "headers": [{"name": "X-Team", "value": "a"}]}])]
    assert routing.match_request(routes, "POST", "/x", {"x-team": "a"}) is not None
    assert routing.match_request(routes, "GET", "/x", {"x-team": "a"}) is None
    assert routing.match_request(routes, "POST", "/x", {"x-team": "b"}) is None


def test_hostnames_must_match_host_header():
    routes = [fx.route(hostnames=["*.example.com"])]
    assert routing.match_request(routes, "GET", "/", {"host": "api.example.com:8000"}) is not None
    assert routing.match_request(routes, "GET", "/", {"host": "localhost:8000"}) is None


def test_oldest_route_wins_a_tie():
    newer = fx.route(name="a-newer", pool="new", created="2026-02-01T00:00:00Z")
    older = fx.route(name="z-older", pool="old", created="2026-01-01T00:00:00Z")
    assert routing.match_request([newer, older], "GET", "/", {})[0] is older


# --- Backends -----------------------------------------------------------------

def test_missing_pool_gives_500_fault_filter_abort():
    raw = fx.working_stack()
    raw["pools_v1"] = []
    decision = plan(raw)
    assert (decision["status"], decision["body"], decision["flag"]) == (500, "fault filter abort", "FI")
    assert "not found" in decision["reason"]


def test_resolved_refs_false_gives_500():
    raw = fx.working_stack()
    raw["routes"] = [fx.route(resolved=False)]
    decision = plan(raw)
    assert (decision["status"], decision["body"]) == (500, "fault filter abort")
    assert "ResolvedRefs=False" in decision["reason"]


def test_backend_group_must_match_the_pool_generation():
    raw = fx.working_stack()
    raw["routes"] = [fx.route(group=routing.POOL_GROUP_V1ALPHA2)]
    assert plan(raw)["status"] == 500
    raw["pools_v1alpha2"] = [fx.pool_v1alpha2()]
    assert plan(raw)["outcome"] == "pool"


def test_service_backend_is_not_simulated():
    raw = fx.working_stack()
    raw["routes"][0]["spec"]["rules"][0]["backendRefs"] = [{"kind": "Service", "name": "svc", "port": 80}]
    decision = plan(raw)
    assert decision["status"] == 500 and "not simulated" in decision["reason"]


def test_cross_namespace_pool_needs_a_reference_grant():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(namespace="pools")]
    raw["routes"][0]["spec"]["rules"][0]["backendRefs"][0]["namespace"] = "pools"
    assert plan(raw)["status"] == 500
    raw["reference_grants"] = [{
        "metadata": fx.meta("allow", "pools"),
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": fx.NS}],
                 "to": [{"group": routing.POOL_GROUP_V1, "kind": "InferencePool"}]},
    }]
    assert plan(raw)["outcome"] == "pool"


def test_weighted_backend_choice():
    rule = {"backendRefs": [{"name": "a", "weight": 0}, {"name": "b", "weight": 3}, {"name": "c"}]}
    rng = random.Random(7)
    picked = {routing.pick_backend_ref(rule, rng)["name"] for _round in range(200)}
    assert picked == {"b", "c"}
    assert routing.pick_backend_ref({"backendRefs": [{"name": "x", "weight": 0}]}) is None


# --- EPP reachability and candidates ------------------------------------------

def test_healthy_stack_plans_the_pool():
    decision = plan(fx.working_stack())
    assert decision["outcome"] == "pool"
    assert decision["epp"]["available"] is True
    assert [p["metadata"]["name"] for p in decision["candidates"]] == [
        "ms-sim-llm-d-modelservice-decode-a", "ms-sim-llm-d-modelservice-decode-b"]
    assert decision["timeout_s"] == routing.DEFAULT_ROUTE_TIMEOUT_S


@pytest.mark.parametrize("breakage, reason", [
    (lambda raw: raw["services"].pop(0), "not found"),
    (lambda raw: raw["services"][0]["spec"].update(ports=[{"port": 9090}]), "does not expose port 9002"),
    (lambda raw: raw["pods"].remove(raw["pods"][2]), "selects no ready pod"),
    (lambda raw: raw["pods"][2]["status"]["conditions"][0].update(status="False"), "selects no ready pod"),
    (lambda raw: raw["pods"][2]["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"),
     "selects no ready pod"),
])
def test_epp_unreachable_reasons(breakage, reason):
    raw = fx.working_stack()
    breakage(raw)
    status = plan(raw)["epp"]
    assert status["available"] is False
    assert reason in status["reason"]


def test_candidates_are_ready_running_not_terminating():
    raw = fx.working_stack()
    raw["pods"][0]["status"]["conditions"][0]["status"] = "False"
    raw["pods"][1]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan(raw)["candidates"] == []


def test_selector_matching_nothing_gives_no_candidates():
    raw = fx.working_stack()
    raw["pools_v1"] = [fx.pool_v1(selector={"app": "nothing"})]
    assert plan(raw)["candidates"] == []


def test_empty_selector_selects_nothing():
    assert routing.selector_matches({}, {"a": "b"}) is False


def test_reject_epp_unavailable_names_the_epp():
    pool = routing.normalize_pool(fx.pool_v1(), routing.POOL_GROUP_V1)
    decision = routing.reject_epp_unavailable(pool, {"reason": "EPP Service x selects no ready pod"})
    assert decision["status"] == 503
    assert decision["body"].startswith("ext_proc error: endpoint picker llm-d-sim/gaie-sim-epp:9002 unavailable")
    assert "FailClose" in decision["body"]


# --- Timeouts and PortForwards ------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    ("0s", 0.0), ("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("", None), ("5", None),
    ("x", None), (3, None)])
def test_parse_duration(value, seconds):
    assert routing.parse_duration(value) == seconds


def test_route_timeouts():
    assert routing.route_timeout_seconds({"timeouts": {"request": "0s"}}) is None
    assert routing.route_timeout_seconds({"timeouts": {"backendRequest": "30s"}}) == 30.0
    assert routing.route_timeout_seconds({}) == 15.0


def test_forward_target_by_port_and_default():
    pf = fx.portforward("p", ports=(8000, 8200), target_port=31005)
    assert routing.forward_target(pf, 8200) == ("127.0.0.1", 31005)
    assert routing.forward_target(pf, 9000) is None
    pf["spec"]["forwards"].append({"target": {"address": "127.0.0.1", "port": 31006}})
    assert routing.forward_target(pf, 9000) == ("127.0.0.1", 31006)
    assert routing.forward_target(None, 8000) is None


# --- EPP body checks ----------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b'{"prompt": "hi"}', "model not found in request body"),
    (b'{"model": "m"}', "prompt not found in request"),
    (b'not json', "Error unmarshaling request body"),
    (b'[1]', "Error unmarshaling request body"),
    (b'{"model": "m", "prompt": 5}', "prompt is not a string"),
])
def test_completion_body_checks(body, message):
    parsed = routing.parse_inference_request("POST", "/v1/completions", body)
    assert parsed["ok"] is False and parsed["status"] == 400
    assert parsed["message"].startswith(message)


def test_chat_needs_messages_and_builds_a_prompt():
    parsed = routing.parse_inference_request(
        "POST", "/v1/chat/completions",
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}')
    assert parsed == {"ok": True, "kind": "chat", "model": "m", "prompt": "user: hi", "stream": True}
    assert routing.parse_inference_request("POST", "/v1/chat/completions", b'{"model": "m"}')["message"] == \
        "prompt not found in request"


def test_get_models_passes_through_without_checks():
    parsed = routing.parse_inference_request("GET", "/v1/models", b"")
    assert parsed["ok"] is True and parsed["kind"] == "passthrough"


def test_epp_error_body():
    assert routing.epp_error_body("BadRequest", "model not found in request body") == \
        "inference error: BadRequest - model not found in request body"


# --- Owned kwok objects -------------------------------------------------------

def test_desired_objects_for_gateway_and_epp_pods():
    view = routing.build_view(fx.working_stack())
    wanted = routing.desired_objects(view, {fx.GATEWAY_KEY: 40123}, "/lab/logs")
    gw_pod = "infra-sim-inference-gateway-istio-0"
    assert wanted[("PortForward", fx.NS, gw_pod)] == {
        "forwards": [{"ports": [80], "target": {"address": "127.0.0.1", "port": 40123}}]}
    assert wanted[("Logs", fx.NS, gw_pod)]["logs"][0] == {
        "containers": ["istio-proxy"], "follow": True,
        "logsFile": "/lab/logs/pods/llm-d-sim/infra-sim-inference-gateway-istio-0/istio-proxy.log"}
    assert wanted[("Logs", fx.NS, "gaie-sim-epp-abc")]["logs"][0]["logsFile"] == \
        "/lab/logs/pods/llm-d-sim/gaie-sim-epp-abc/epp.log"
    assert len(wanted) == 3


def test_object_actions_create_replace_delete_and_leave_foreign_alone():
    managed = {"metadata": {"labels": {routing.MANAGED_BY[0]: routing.MANAGED_BY[1]}}, "spec": {"old": 1}}
    foreign = {"metadata": {"labels": {}}, "spec": {}}
    wanted = {("Logs", "ns", "new"): {"a": 1}, ("Logs", "ns", "changed"): {"new": 1}, ("Logs", "ns", "theirs"): {}}
    existing = {("Logs", "ns", "changed"): managed, ("Logs", "ns", "theirs"): foreign,
                ("Logs", "ns", "gone"): managed, ("Logs", "ns", "other"): foreign}
    actions = routing.object_actions(wanted, existing)
    assert actions == {
        "create": [(("Logs", "ns", "new"), {"a": 1})],
        "replace": [(("Logs", "ns", "changed"), {"new": 1})],
        "delete": [("Logs", "ns", "gone")],
        "foreign": [("Logs", "ns", "theirs")],
    }


def test_build_view_tolerates_missing_kinds():
    view = routing.build_view({"pods": None, "gateways": [None, {"metadata": {"name": "g", "namespace": "n"}}]})
    assert view["pods"] == [] and list(view["gateways"]) == [("n", "g")]
    assert routing.served_gateways(view) == []
