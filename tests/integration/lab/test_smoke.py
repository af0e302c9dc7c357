"""Smoke tests of the local lab: control plane, fake GPU nodes, helm, and the
model-server simulator behind kubectl port-forward and kubectl logs."""
import json
import os
import subprocess
import textwrap
import time

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.lab

GPU = "nvidia.com/gpu"


def simulator_state(lab_dir):
    try:
        with open(os.path.join(lab_dir, "simulators", "model_servers.json")) as handle:
            return json.load(handle).get("pods") or {}
    except (OSError, ValueError):
        return {}


def pid_alive(pid):
    """A process that runs; an exited one not yet reaped (a zombie) does not."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_version_reports_the_pinned_kubernetes(api_client, pinned_versions):
    version = client.VersionApi(api_client).get_code()
    assert version.git_version == pinned_versions["KUBE_VERSION"]


def test_two_fake_gpu_nodes_are_ready(api_client):
    nodes = {n.metadata.name: n for n in client.CoreV1Api(api_client).list_node().items}
    assert {"lab-gpu-0", "lab-gpu-1"} <= set(nodes)
    for name in ("lab-gpu-0", "lab-gpu-1"):
        node = nodes[name]
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], "%s not Ready: %s" % (name, node.status.conditions)
        assert node.status.allocatable[GPU] == "8"
        assert int(node.status.allocatable["pods"].replace("k", "000")) >= 1000
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
        assert not node.spec.taints


def test_gpu_deployment_becomes_available(api_client, namespace, wait_until):
    apps = client.AppsV1Api(api_client)
    labels = {"app": "gpu-smoke"}
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "gpu-smoke"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "worker", "image": "registry.invalid/gpu-worker:1",
                "resources": {"limits": {GPU: "1"}, "requests": {GPU: "1"}}}]}},
        },
    })

    def available():
        status = apps.read_namespaced_deployment_status("gpu-smoke", namespace).status
        return any(c.type == "Available" and c.status == "True" for c in status.conditions or []) \
            and status.ready_replicas == 2

    wait_until(available, 60, "Deployment gpu-smoke Available with 2 ready replicas")
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="app=gpu-smoke").items
    assert {p.spec.node_name for p in pods} <= {"lab-gpu-0", "lab-gpu-1"}
    assert all(p.status.phase == "Running" for p in pods)


def test_helm_install_wait_succeeds(lab, namespace, tmp_path):
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(textwrap.dedent("""\
        apiVersion: v2
        name: smoke
        version: 0.1.0
        kubeVersion: ">=1.30.0-0"
        """))
    (chart / "templates" / "deployment.yaml").write_text(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}
        spec:
          replicas: 1
          selector:
            matchLabels: {app: {{ .Release.Name }}}
          template:
            metadata:
              labels: {app: {{ .Release.Name }}}
            spec:
              containers:
                - name: app
                  image: registry.invalid/smoke:1
                  ports: [{containerPort: 8080}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ .Release.Name }}
        spec:
          selector: {app: {{ .Release.Name }}}
          ports: [{port: 80, targetPort: 8080}]
        """))
    install = subprocess.run(
        ["helm", "install", "smoke", str(chart), "-n", namespace, "--wait", "--timeout", "2m"],
        env=lab.env, capture_output=True, text=True, timeout=180, check=False)
    assert install.returncode == 0, install.stderr
    status = subprocess.run(["helm", "status", "smoke", "-n", namespace, "-o", "json"],
                            env=lab.env, capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["info"]["status"] == "deployed"


def test_vllm_pod_gets_a_simulator_behind_port_forward_and_logs(lab, api_client, namespace, wait_until, port_forward):
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    labels = {"app": "sim-smoke"}
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "sim-smoke", "labels": labels},
        "spec": {
            "initContainers": [{
                "name": "routing-proxy", "image": "registry.invalid/routing-sidecar:1",
                "restartPolicy": "Always", "args": ["--port=8000", "--vllm-port=8200"],
                "ports": [{"containerPort": 8000}]}],
            "containers": [{
                "name": "vllm", "image": "registry.invalid/vllm:1",
                "args": ["--model", "smoke/model", "--port", "8200", "--served-model-name", "smoke",
                         "--mode", "echo", "--gpu-memory-utilization", "0.9"],
                "ports": [{"containerPort": 8200, "name": "vllm"}],
                "resources": {"limits": {GPU: "1"}}}],
        },
    })
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "sim-smoke"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
    })
    key = "%s/sim-smoke" % namespace
    sim = wait_until(lambda: simulator_state(lab.dir).get(key), 30, "a simulator for pod %s" % key)
    assert sim["forwarded_ports"] == [8000, 8200]
    assert pid_alive(sim["pid"])

    pod = core.read_namespaced_pod("sim-smoke", namespace)
    statuses = {s.name: s.ready for s in (pod.status.container_statuses or []) + (pod.status.init_container_statuses or [])}
    assert statuses == {"vllm": True, "routing-proxy": True}

    for target, port in (("pod/sim-smoke", 8200), ("pod/sim-smoke", 8000), ("svc/sim-smoke", 80)):
        with port_forward(namespace, target, port) as forward:
            response = wait_until(lambda: _models(forward), 20, "/v1/models through %s:%d" % (target, port))
            assert [m["id"] for m in response.json()["data"]] == ["smoke"]
            completion = forward.post("/v1/completions", {"model": "smoke", "prompt": "hello lab", "max_tokens": 5})
            assert completion.status_code == 200, completion.text
            assert completion.json()["choices"][0]["text"] == "hello lab"  # --mode echo came through
            assert completion.headers["x-inference-pod"] == "sim-smoke"
            assert completion.headers["x-inference-namespace"] == namespace

    logs = wait_until(lambda: lab.kubectl("-n", namespace, "logs", "sim-smoke", "-c", "vllm").stdout, 20,
                      "kubectl logs -c vllm")
    assert "llm-d-inference-sim --model smoke/model --port %d" % sim["port"] in logs
    assert "dropped flags: --gpu-memory-utilization" in logs
    assert '"Server starting" protocol="HTTP"' in logs
    proxy_logs = lab.kubectl("-n", namespace, "logs", "sim-smoke", "-c", "routing-proxy").stdout
    assert "no routing proxy runs in the lab" in proxy_logs

    core.delete_namespaced_pod("sim-smoke", namespace, grace_period_seconds=0)
    wait_until(lambda: key not in simulator_state(lab.dir), 30, "the simulator of %s to stop" % key)
    wait_until(lambda: not pid_alive(sim["pid"]), 10, "simulator pid %d to exit" % sim["pid"])
    for plural in ("portforwards", "logs"):
        with pytest.raises(ApiException) as gone:
            custom.get_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, plural, "sim-smoke")
        assert gone.value.status == 404


def _models(forward):
    try:
        response = forward.get("/v1/models")
    except requests.RequestException:
        return None
    return response if response.status_code == 200 else None


def test_opted_out_vllm_pod_gets_no_simulator(lab, api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "no-sim", "annotations": {"lab.llmd.dev/simulate": "false"}},
        "spec": {"containers": [{"name": "vllm", "image": "registry.invalid/vllm:1",
                                 "args": ["--model", "m"]}]},
    })
    deadline = time.monotonic() + 30
    while core.read_namespaced_pod("no-sim", namespace).status.phase != "Running":
        assert time.monotonic() < deadline, "pod no-sim never became Running"
        time.sleep(0.5)
    time.sleep(3)  # several supervisor syncs
    assert "%s/no-sim" % namespace not in simulator_state(lab.dir)


@pytest.mark.slow
def test_private_lab_down_leaves_no_process(tmp_path, make_lab, wait_until):
    private = make_lab(str(tmp_path / "lab"))
    up = private.lab_sh("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "lab: up in " in up.stdout
    again = private.lab_sh("up")
    assert again.returncode == 0 and "already running" in again.stdout

    # A simulator too, so down has one to stop.
    private.kubectl("run", "sim", "--image=registry.invalid/vllm:1", "--overrides", json.dumps({
        "spec": {"containers": [{"name": "vllm", "image": "registry.invalid/vllm:1", "args": ["--model", "m"]}]}}))
    sim = wait_until(lambda: simulator_state(private.dir).get("default/sim"), 30, "the private lab's simulator")

    pids = {sim["pid"]}
    for root, _dirs, files in os.walk(private.dir):
        for name in files:
            if name.endswith(".pid"):
                with open(os.path.join(root, name)) as handle:
                    pids.add(int(handle.read().strip()))
    assert len(pids) >= 7  # 5 components, the supervisor, a simulator
    assert all(pid_alive(pid) for pid in pids)

    down = private.lab_sh("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [pid for pid in pids if pid_alive(pid)] == []
    pgrep = subprocess.run(["pgrep", "-f", private.dir], capture_output=True, text=True, check=False)
    assert pgrep.returncode == 1, "processes of the private lab still run:\n" + pgrep.stdout
    assert not os.path.exists(private.dir)
    assert private.lab_sh("status", timeout=60).returncode == 3
