"""playbooks/diagnose.yml against the lab: a real kube-apiserver, kwok pods whose
`vllm` containers are real llm-d-inference-sim processes, and the lab's
gateway data-plane simulator writing the EPP's JSON log lines.

One test namespace holds a small P/D stack made directly with the client: a
Gateway, an InferencePool (v1), an EPP (pd-profile-handler config), two decode
pods (with a routing-proxy sidecar, as llm-d-modelservice makes them) and one
prefill pod, and an HTTPRoute. Requests with our own x-request-id go through
`kubectl port-forward` to the gateway; then the playbook runs as a user runs
it, and its traces must match what the gateway answered.
"""
import json
import os
import subprocess
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(REPO, "playbooks", "diagnose.yml")
ANSIBLE_PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")

GW_GROUP, GW_VERSION = "gateway.networking.k8s.io", "v1"
POOL_GROUP, POOL_VERSION = "inference.networking.k8s.io", "v1"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
GATEWAY, POOL, EPP, ROUTE = "diag-gateway", "diag-pool", "diag-pool-epp", "diag-route"
SERVING = {"app": "diag-ms"}
# the pd-profile-handler sends prompts of 10+ uncached tokens (about 40 characters) to a prefill pod
EPP_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefix-cache-scorer
- type: queue-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: pd-profile-handler
  parameters:
    threshold: 10
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
"""
# --log-http logs every request (and every /metrics scrape: noise to drop);
# --enable-request-id-headers makes the simulator use the x-request-id it is sent
SIM_ARGS = ["--model", "fake-model", "--port", "8200", "--log-http", "--enable-request-id-headers"]


@pytest.fixture(name="crds", scope="module")
def fixture_crds(lab):
    """The Gateway API and GAIE CRDs: created from the lab's offline fixtures when
    missing, never replaced when present (the lab may be shared)."""
    for group in ("gateway-api", "gaie"):
        directory = os.path.join(REPO, "lab", "fixtures", "crds", group)
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if lab.kubectl("get", "-f", path, check=False).returncode != 0:
                lab.kubectl("create", "-f", path)
    for crd in ("gatewayclasses.gateway.networking.k8s.io", "inferencepools.inference.networking.k8s.io"):
        lab.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/" + crd)


@pytest.fixture(name="gateway_class")
def fixture_gateway_class(api_client, crds):
    """An Istio-controller GatewayClass of our own, so that deleting it cannot
    disturb other users of the shared lab."""
    custom = client.CustomObjectsApi(api_client)
    name = "diag-istio-" + uuid.uuid4().hex[:6]
    custom.create_cluster_custom_object(GW_GROUP, GW_VERSION, "gatewayclasses", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "GatewayClass",
        "metadata": {"name": name}, "spec": {"controllerName": "istio.io/gateway-controller"}})
    yield name
    custom.delete_cluster_custom_object(GW_GROUP, GW_VERSION, "gatewayclasses", name)


def model_server(apps, namespace, role, replicas):
    labels = dict(SERVING, **{"llm-d.ai/role": role})
    spec = {"containers": [{
        "name": "vllm",
        "image": "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
        "args": SIM_ARGS,
        "ports": [{"containerPort": 8200}],
    }]}
    if role == "decode":
        spec["initContainers"] = [{
            "name": "routing-proxy",
            "image": "ghcr.io/llm-d/llm-d-routing-sidecar:v0.3.0",
            "args": ["--port=8000", "--vllm-port=8200", "--connector=nixlv2"],
            "ports": [{"containerPort": 8000}],
            "restartPolicy": "Always",
        }]
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "diag-ms-" + role},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": spec}},
    })


def create_stack(api_client, namespace, class_name):
    core, apps, custom = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "gateways", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "Gateway", "metadata": {"name": GATEWAY},
        "spec": {"gatewayClassName": class_name, "listeners": [
            {"name": "default", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}]},
    })
    core.create_namespaced_config_map(namespace, {"metadata": {"name": EPP}, "data": {"pd-config.yaml": EPP_CONFIG}})
    core.create_namespaced_service(namespace, {
        "metadata": {"name": EPP},
        "spec": {"selector": {"inferencepool": EPP},
                 "ports": [{"name": "grpc-ext-proc", "port": 9002}, {"name": "http-metrics", "port": 9090}]},
    })
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": EPP},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"inferencepool": EPP}},
                 "template": {"metadata": {"labels": {"inferencepool": EPP}}, "spec": {
                     "containers": [{
                         "name": "epp",
                         "image": "ghcr.io/llm-d/llm-d-inference-scheduler:v0.7.0",
                         "args": ["--pool-name", POOL, "--pool-namespace", namespace, "--config-file",
                                  "/config/pd-config.yaml", "--zap-encoder", "json", "-v", "4"],
                         "ports": [{"name": "grpc", "containerPort": 9002}],
                         "volumeMounts": [{"name": "plugins-config-volume", "mountPath": "/config"}],
                     }],
                     "volumes": [{"name": "plugins-config-volume", "configMap": {"name": EPP}}],
                 }}},
    })
    model_server(apps, namespace, "decode", 2)
    model_server(apps, namespace, "prefill", 1)
    custom.create_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", {
        "apiVersion": "%s/%s" % (POOL_GROUP, POOL_VERSION), "kind": "InferencePool", "metadata": {"name": POOL},
        "spec": {"selector": {"matchLabels": SERVING}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"kind": "Service", "name": EPP, "port": {"number": 9002},
                                       "failureMode": "FailClose"}},
    })
    custom.create_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "httproutes", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "HTTPRoute", "metadata": {"name": ROUTE},
        "spec": {"parentRefs": [{"group": GW_GROUP, "kind": "Gateway", "name": GATEWAY}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [{"group": POOL_GROUP, "kind": "InferencePool", "name": POOL,
                                             "port": 8000}],
                            "timeouts": {"request": "0s", "backendRequest": "0s"}}]},
    })


def route_ready(custom, namespace):
    try:
        route = custom.get_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "httproutes", ROUTE)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    for parent in (route.get("status") or {}).get("parents") or []:
        kinds = {c.get("type") for c in parent.get("conditions") or [] if c.get("status") == "True"}
        if {"Accepted", "ResolvedRefs"} <= kinds:
            return True
    return False


def running(core, namespace, selector):
    return [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def kwok_object(custom, plural, namespace, name):
    try:
        return custom.get_namespaced_custom_object(KWOK_GROUP, KWOK_VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def run_playbook(lab, extra_vars, check=False, expect_rc=0):
    command = [ANSIBLE_PLAYBOOK, PLAYBOOK]
    for key, value in extra_vars.items():
        command += ["-e", "%s=%s" % (key, value)]
    if check:
        command.append("--check")
    env = dict(lab.env, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("KUBECONFIG", None)  # the role gets the kubeconfig as a variable
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == expect_rc, "ansible-playbook exited %d, not %d:\n%s\n%s" % (
        result.returncode, expect_rc, result.stdout[-6000:], result.stderr[-3000:])
    return result.stdout


def test_diagnose_playbook_traces_requests_sent_through_the_gateway(lab, api_client, namespace, gateway_class,
                                                                    wait_until, tmp_path, port_forward):
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_stack(api_client, namespace, gateway_class)

    wait_until(lambda: route_ready(custom, namespace), 90, "HTTPRoute %s Accepted and ResolvedRefs" % ROUTE)
    wait_until(lambda: running(core, namespace, "gateway.networking.k8s.io/gateway-name=" + GATEWAY), 90,
               "a Running gateway pod (is the gateway data-plane simulator running in this lab?)")
    decode = wait_until(lambda: len(running(core, namespace, "llm-d.ai/role=decode")) == 2 and
                        running(core, namespace, "llm-d.ai/role=decode"), 90, "2 Running decode pods")
    (prefill,) = wait_until(lambda: running(core, namespace, "llm-d.ai/role=prefill"), 90, "the prefill pod")
    (epp,) = wait_until(lambda: running(core, namespace, "inferencepool=" + EPP), 90, "the EPP pod")
    decode_names = sorted(p.metadata.name for p in decode)
    for pod in decode + [prefill]:
        wait_until(lambda: kwok_object(custom, "portforwards", namespace, pod.metadata.name), 90,
                   "the model server's PortForward for %s" % pod.metadata.name)
    wait_until(lambda: kwok_object(custom, "logs", namespace, epp.metadata.name), 90, "the EPP pod's Logs object")

    gateway = port_forward(namespace, "svc/" + GATEWAY + "-istio", 80)
    sent = {}
    try:
        # the simulators see a new stack within a few seconds; warm up until it answers
        warmups = iter(range(1000))
        wait_until(lambda: gateway.post("/v1/completions", {"model": "fake-model", "prompt": "warm up"},
                                        headers={"x-request-id": "diag-warmup-%d" % next(warmups)}).status_code == 200,
                   60, "a first 200 through the gateway")

        def send(request_id, body):
            sent[request_id] = gateway.post("/v1/completions", body, headers={"x-request-id": request_id})
            return sent[request_id]

        # short prompts stay on a decode pod; long ones are scheduled prefill + decode
        for index in range(3):
            assert send("diag-short-%d-%s" % (index, uuid.uuid4().hex[:6]),
                        {"model": "fake-model", "prompt": "hi %d" % index, "max_tokens": 3}).status_code == 200
        for index in range(2):
            # a unique start: no cached prefix makes the P/D decider keep it on one pod
            long_prompt = "%s: explain, step by step, how a KV cache moves from prefill to decode" % uuid.uuid4().hex
            assert send("diag-pd-%d-%s" % (index, uuid.uuid4().hex[:6]),
                        {"model": "fake-model", "prompt": long_prompt, "max_tokens": 3}).status_code == 200
        bad = send("diag-bad-" + uuid.uuid4().hex[:6], {"model": "fake-model"})
        assert bad.status_code == 400
    finally:
        gateway.close()

    output = tmp_path / "reports"
    common = {"diagnostics_namespace": namespace, "diagnostics_kubeconfig": lab.kubeconfig,
              "diagnostics_output_dir": str(output), "diagnostics_since_seconds": 900}
    stdout = run_playbook(lab, dict(common, diagnostics_pool_name=POOL, diagnostics_run_id="itest"))
    run = output / "itest"

    # raw and filtered logs of every collected container
    for pod in decode_names + [prefill.metadata.name]:
        assert (run / "raw" / pod / "vllm.log").stat().st_size > 0
        assert (run / "filtered" / pod / "vllm.log").exists()
    for pod in decode_names:
        assert (run / "raw" / pod / "routing-proxy.log").exists()
    assert (run / "raw" / epp.metadata.name / "epp.log").stat().st_size > 0
    raw_vllm = (run / "raw" / decode_names[0] / "vllm.log").read_text()
    filtered_vllm = (run / "filtered" / decode_names[0] / "vllm.log").read_text()
    assert 'requestURI="/metrics"' in raw_vllm  # the data plane scrapes the simulators
    assert 'requestURI="/metrics"' not in filtered_vllm
    pods_json = json.loads((run / "pods.json").read_text())
    assert {p["name"]: p["role"] for p in pods_json} == dict(
        [(epp.metadata.name, "epp"), (prefill.metadata.name, "prefill")] + [(name, "decode") for name in decode_names])

    report = json.loads((run / "traces.json").read_text())
    traces = {t["request_id"]: t for t in report["traces"]}
    for request_id, answer in sent.items():
        assert request_id in traces, "no trace for %s; traces: %s" % (request_id, sorted(traces))
        trace = traces[request_id]
        assert trace["format"] == "plugin"
        if answer.status_code != 200:
            assert trace["served"] is False and trace["picked"] is None
            assert trace["errors"] == ["Failed to process request: inference error: BadRequest - "
                                       "prompt not found in request"]
            continue
        # the pod the EPP picked is a real decode pod, and the one that answered
        assert trace["picked"] in decode_names
        assert trace["handled_by"] == answer.headers["x-inference-pod"] == trace["picked"]
        assert set(trace["candidates"]) == set(decode_names + [prefill.metadata.name])
        assert trace["filters"][0]["plugin"] == "decode-filter"
        assert set(trace["filters"][0]["kept"]) == set(decode_names)
        assert set(trace["scores"]) == {"prefix-cache-scorer", "queue-scorer"}
        assert trace["served"] is True and trace["status"] == "200"
        assert trace["usage"]["total_tokens"] == answer.json()["usage"]["total_tokens"]
        if request_id.startswith("diag-pd-"):
            assert trace["pd"] == "enabled"
            assert trace["prefill_picked"] == prefill.metadata.name
        else:
            assert trace["pd"] == "disabled"
            assert trace["prefill_picked"] is None

    # the lab runs no routing sidecar and moves no KV cache: P/D never really ran
    kinds = {(a["kind"], a["request_id"]) for a in report["anomalies"]}
    for request_id in sent:
        if request_id.startswith("diag-pd-"):
            assert ("pd_no_kv_transfer", request_id) in kinds
        if request_id.startswith("diag-bad-"):
            assert ("not_served", request_id) in kinds
    pd_entries = [e for e in report["pd_evidence"] if (e["request_id"] or "").startswith("diag-pd-")]
    assert len(pd_entries) == 2 and not any(e["pd_ran"] or e["prefill_sent"] for e in pd_entries)
    assert report["summary"]["pd"]["exchanges"] == 0 and report["summary"]["pd"]["ran"] == 0
    assert report["summary"]["lines_dropped"] > 0

    summary_md = (run / "summary.md").read_text()
    assert summary_md.startswith("# llm-d diagnostics: namespace %s, run itest\n" % namespace)
    for request_id in sent:
        assert request_id in summary_md
    assert "requests traced: %d" % report["summary"]["requests"] in stdout
    assert "report: %s" % (run / "summary.md") in stdout

    # check mode, every EPP and model server of the namespace: analysis printed, nothing written
    stdout = run_playbook(lab, dict(common, diagnostics_run_id="itest-check"), check=True)
    assert "(check mode: nothing written)" in stdout
    assert "requests traced: %d" % report["summary"]["requests"] in stdout
    assert not (output / "itest-check").exists()


def test_diagnose_playbook_fails_early_with_one_line(lab, namespace, crds, tmp_path):
    common = {"diagnostics_namespace": namespace, "diagnostics_kubeconfig": lab.kubeconfig,
              "diagnostics_output_dir": str(tmp_path)}
    stdout = run_playbook(lab, dict(common, diagnostics_pool_name="no-such-pool"), expect_rc=2)
    assert ("diagnostics_pool_name: no InferencePool no-such-pool (v1 or v1alpha2) in namespace %s; name an existing pool"
            % namespace) in stdout
    stdout = run_playbook(lab, common, expect_rc=2)
    assert "diagnostics_namespace: no running epp/routing-proxy/vllm container found in namespace %s" % namespace in stdout
    assert "Traceback" not in stdout
    assert os.listdir(str(tmp_path)) == []
