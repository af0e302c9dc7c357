"""llmd_inference_probe port-forward mode on the lab: the module resolves a
Service to a Ready pod and reaches the pod's llm-d-inference-sim through the
Kubernetes API (kwok PortForward objects point at the simulator process)."""
import json
import time
import uuid

import pytest

pytestmark = pytest.mark.lab

GPU = "nvidia.com/gpu"
READY_TIMEOUT = 60


@pytest.fixture(scope="module")
def core(running_lab):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=running_lab["kubeconfig"])
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(scope="module")
def served(core):
    """A namespace with a model-server pod (routing-proxy sidecar on 8000, vllm on 8200) and a Service."""
    namespace = "t-probe-pf-%s" % uuid.uuid4().hex[:6]
    labels = {"app": "probe-decode", "llm-d.ai/role": "decode"}
    core.create_namespace({"metadata": {"name": namespace, "labels": {"llmd.dev/test": "true"}}})
    try:
        _wait(lambda: _default_sa(core, namespace), 30, "the default service account")
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "probe-decode-0", "labels": labels},
            "spec": {
                "initContainers": [{
                    "name": "routing-proxy", "image": "registry.invalid/routing-sidecar:1", "restartPolicy": "Always",
                    "args": ["--port=8000", "--vllm-port=8200"], "ports": [{"name": "proxy", "containerPort": 8000}]}],
                "containers": [{
                    "name": "vllm", "image": "registry.invalid/vllm:1",
                    "args": ["--model", "probe/model", "--port", "8200", "--served-model-name", "probe-model",
                             "--mode", "echo", "--time-to-first-token", "100ms"],
                    "ports": [{"name": "vllm", "containerPort": 8200}],
                    "resources": {"limits": {GPU: "1"}, "requests": {GPU: "1"}}}],
            },
        })
        core.create_namespaced_service(namespace, {
            "metadata": {"name": "probe-decode"},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "proxy"}]},
        })
        _wait(lambda: _ready(core, namespace, "probe-decode-0"), READY_TIMEOUT, "pod probe-decode-0 Ready")
        yield namespace
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail("timed out after %ss waiting for %s" % (timeout, what))


def _default_sa(core, namespace):
    return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items)


def _ready(core, namespace, name):
    status = core.read_namespaced_pod(name, namespace).status
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def test_service_port_forward_reaches_the_simulator(running_lab, served, probe):
    # The simulator process starts shortly after the pod turns Ready: not-ready answers are retried.
    result = probe(port_forward={"namespace": served, "service": "probe-decode", "port": 80},
                   kubeconfig=running_lab["kubeconfig"], retries=30, delay=0.5,
                   completions={"prompt": "hello through the api", "max_tokens": 8})
    assert "failed" not in result, result.get("msg")
    checks = dict((r["endpoint"], r) for r in result["results"])
    assert result["models"] == ["probe-model"]
    assert checks["completions"]["text"] == "hello through the api"  # echo mode came through
    assert checks["completions"]["pod"] == "probe-decode-0"
    assert checks["chat"]["stream"] is True and checks["chat"]["ttft_ms"] >= 100
    forward = result["target"]["port_forward"]
    assert forward["pod"] == "probe-decode-0" and forward["service_port"] == 80 and forward["remote_port"] == 8000
    assert result["target"]["url"] == "http://127.0.0.1:%d" % forward["local_port"]


def test_pod_port_by_name_and_a_streamed_burst(running_lab, served, probe):
    result = probe(port_forward={"namespace": served, "pod": "probe-decode-0", "port": "vllm"},
                   kubeconfig=running_lab["kubeconfig"], retries=30, delay=0.5, checks=["models"],
                   burst={"requests": 6, "concurrency": 3, "max_tokens": 32})  # echo mode answers the whole prompt
    assert result["target"]["port_forward"]["remote_port"] == 8200
    burst = result["burst"]
    assert burst["ok"] and burst["pods"] == {"probe-decode-0": 6}, json.dumps(burst)
    assert burst["ttft_ms"]["min"] >= 100


def test_endpoint_without_url_is_port_forwarded(running_lab, served, probe):
    endpoint = {"type": "service", "url": None, "external": False, "namespace": served, "service": "probe-decode",
                "port": 80}
    result = probe(endpoint=endpoint, kubeconfig=running_lab["kubeconfig"], retries=30, delay=0.5, checks=["models"])
    assert result["results"][0]["ok"] and result["target"]["mode"] == "endpoint"


def test_missing_service_is_reported_with_the_hint(running_lab, served, probe):
    result = probe(port_forward={"namespace": served, "service": "no-such-service", "port": 80},
                   kubeconfig=running_lab["kubeconfig"])
    assert result["failed"] is True
    assert "port_forward: Service %s/no-such-service not found" % served in result["msg"]
    assert "pods/portforward" in result["results"][0]["hint"]
