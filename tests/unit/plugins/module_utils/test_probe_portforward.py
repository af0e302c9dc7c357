"""Unit tests for the pure port-forward planning (Service -> Ready pod -> container port)."""
import pytest

from ansible_collections.llmd.stack.plugins.module_utils import _portforward as pf


def pod(name, ready=True, phase="Running", deleting=False, ports=None, sidecar_ports=None):
    metadata = {"name": name, "namespace": "llm-d-sim"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {
            "containers": [{"name": "vllm", "ports": ports or []}],
            "initContainers": [{"name": "routing-proxy", "restartPolicy": "Always", "ports": sidecar_ports or []}],
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


GATEWAY_SERVICE = {
    "metadata": {"name": "infra-sim-inference-gateway-istio", "namespace": "llm-d-sim"},
    "spec": {"selector": {"gateway.networking.k8s.io/gateway-name": "infra-sim-inference-gateway"},
             "ports": [{"name": "status-port", "port": 15021, "targetPort": 15021},
                       {"name": "default", "port": 80, "targetPort": 80}]},
}
DECODE_SERVICE = {
    "metadata": {"name": "decode", "namespace": "llm-d-sim"},
    "spec": {"selector": {"llm-d.ai/role": "decode", "llm-d.ai/inference-serving": "true"},
             "ports": [{"name": "http", "port": 8000, "targetPort": "proxy"}]},
}


def test_selector_string_is_sorted():
    assert pf.selector_string({"b": "2", "a": "1"}) == "a=1,b=2"


def test_service_port_by_number_and_name():
    assert pf.find_service_port(GATEWAY_SERVICE, 80)[0]["name"] == "default"
    assert pf.find_service_port(GATEWAY_SERVICE, "80")[0]["name"] == "default"
    assert pf.find_service_port(GATEWAY_SERVICE, "status-port")[0]["port"] == 15021
    assert pf.find_service_port(GATEWAY_SERVICE, 8080) == (
        None, "Service llm-d-sim/infra-sim-inference-gateway-istio has no port 8080; it offers: 15021(status-port), 80(default)")


def test_service_resolves_to_first_ready_pod_by_name():
    pods = [pod("gw-c"), pod("gw-b", ready=False), pod("gw-a", deleting=True), pod("gw-d", phase="Pending")]
    plan, error = pf.plan_service(GATEWAY_SERVICE, pods, 80)
    assert error is None
    assert plan == {"pod": "gw-c", "namespace": "llm-d-sim", "remote_port": 80,
                    "service": "infra-sim-inference-gateway-istio", "service_port": 80}


def test_named_target_port_is_found_in_a_sidecar():
    pods = [pod("decode-0", ports=[{"name": "vllm", "containerPort": 8200}],
                sidecar_ports=[{"name": "proxy", "containerPort": 8000}])]
    plan, error = pf.plan_service(DECODE_SERVICE, pods, "http")
    assert (error, plan["remote_port"], plan["service_port"]) == (None, 8000, 8000)


def test_missing_target_port_defaults_to_the_service_port():
    service = {"metadata": {"name": "s", "namespace": "n"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 9000}]}}
    assert pf.plan_service(service, [pod("p")], 9000)[0]["remote_port"] == 9000


@pytest.mark.parametrize("service, pods, port, error", [
    ({"metadata": {"name": "s", "namespace": "n"}, "spec": {"ports": [{"port": 80}]}}, [], 80,
     "Service n/s has no selector, so there is no pod to forward to"),
    (GATEWAY_SERVICE, [pod("gw", ready=False)], 80,
     "no Ready pod matches the selector gateway.networking.k8s.io/gateway-name=infra-sim-inference-gateway "
     "of Service llm-d-sim/infra-sim-inference-gateway-istio (1 pods match)"),
    (DECODE_SERVICE, [pod("decode-0")], 8000, "pod llm-d-sim/decode-0 has no container port named 'proxy'"),
])
def test_service_plan_errors(service, pods, port, error):
    assert pf.plan_service(service, pods, port) == (None, error)


def test_pod_plan():
    target = pod("decode-0", ports=[{"name": "vllm", "containerPort": 8200}])
    assert pf.plan_pod(target, "vllm")[0] == {"pod": "decode-0", "namespace": "llm-d-sim", "remote_port": 8200}
    assert pf.plan_pod(target, 8000)[0]["remote_port"] == 8000
    assert pf.plan_pod(pod("x", ready=False), 8000) == (None, "pod llm-d-sim/x is not Ready")


def test_ready_check_tolerates_missing_fields():
    assert pf.pod_is_ready({}) is False
    assert pf.pod_is_ready({"status": {"phase": "Running"}}) is False


def test_each_forward_gets_its_own_api_client():
    from kubernetes.client import ApiClient, Configuration, CoreV1Api

    configuration = Configuration(host="https://127.0.0.1:6443")
    shared = ApiClient(configuration)
    shared.default_headers["Impersonate-User"] = "probe"
    own = pf._own_client(CoreV1Api(shared))
    assert own.api_client is not shared
    assert own.api_client.configuration is configuration
    assert own.api_client.default_headers["Impersonate-User"] == "probe"
