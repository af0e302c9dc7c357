"""The lab's gateway data-plane simulator end to end: real kube-apiserver,
real llm-d-inference-sim processes, `kubectl port-forward` to the gateway
Service, and `kubectl logs` of the EPP pod.

One test namespace holds a whole small stack made directly with the client:
a Gateway of an Istio-controller class, an InferencePool (v1), an EPP
Deployment + Service + ConfigMap (the inferencepool chart's default plugins),
a 2-replica model server with a `vllm` container, and an HTTPRoute. The test
then breaks the stack one piece at a time and checks the answers the real
gateway gives.
"""
import concurrent.futures
import json
import os
import time
import uuid

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.lab

GW_GROUP, GW_VERSION = "gateway.networking.k8s.io", "v1"
POOL_GROUP, POOL_VERSION = "inference.networking.k8s.io", "v1"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
ISTIO_CONTROLLER = "istio.io/gateway-controller"
GATEWAY, POOL, EPP, MODEL, ROUTE = "dp-gateway", "dp-pool", "dp-pool-epp", "dp-model", "dp-route"
MODEL_LABELS = {"app": "dp-model", "llm-d.ai/role": "decode"}
PREFILL_LABELS = {"app": "dp-model", "llm-d.ai/role": "prefill"}
EPP_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURE_CRDS = [os.path.join(REPO, "lab", "fixtures", "crds", path) for path in (
    "gateway-api/gatewayclasses.yaml", "gateway-api/gateways.yaml", "gateway-api/httproutes.yaml",
    "gateway-api/referencegrants.yaml", "gaie/inferencepools.inference.networking.k8s.io.yaml",
    "gaie/inferencepools.inference.networking.x-k8s.io.yaml")]
PD_CONFIG = """\
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
    threshold: 0
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
"""
SHARED_PREFIX = "You are the llm-d lab assistant. Answer briefly and precisely, citing the docs. " * 4


def completion(prompt, max_tokens=5, **extra):
    body = {"model": "fake-model", "prompt": prompt, "max_tokens": max_tokens}
    body.update(extra)
    return body


def condition_true(conditions, kind):
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or [])


@pytest.fixture(scope="module")
def stack_crds(lab, api_client):
    """The Gateway API and GAIE CRDs (the lab's offline fixtures). Installs
    the missing ones and removes only those at the end."""
    ext = client.ApiextensionsV1Api(api_client)
    present = {crd.metadata.name for crd in ext.list_custom_resource_definition().items}
    created = []
    for path in FIXTURE_CRDS:
        with open(path) as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("  name:")]
        name = names[0]
        if name not in present:
            lab.kubectl("apply", "-f", path)
            created.append(name)
    deadline = time.monotonic() + 60
    for name in created:
        while not condition_true([c.to_dict() for c in ext.read_custom_resource_definition(name).status.conditions
                                  or []], "Established"):
            assert time.monotonic() < deadline, "CRD %s not Established after 60s" % name
            time.sleep(0.5)
    yield
    for name in created:
        ext.delete_custom_resource_definition(name)


@pytest.fixture()
def gateway_class(api_client, stack_crds):
    """An Istio-controller GatewayClass of our own, so deleting it cannot
    disturb other users of the shared lab's `istio` class."""
    custom = client.CustomObjectsApi(api_client)
    name = "dp-istio-" + uuid.uuid4().hex[:6]
    custom.create_cluster_custom_object(GW_GROUP, GW_VERSION, "gatewayclasses", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "GatewayClass",
        "metadata": {"name": name}, "spec": {"controllerName": ISTIO_CONTROLLER}})
    yield name
    custom.delete_cluster_custom_object(GW_GROUP, GW_VERSION, "gatewayclasses", name)


def create_stack(api_client, namespace, class_name, epp_config=EPP_CONFIG, model_servers=((MODEL, MODEL_LABELS, 2),)):
    """The whole small stack; model_servers: (deployment name, pod labels, replicas)."""
    core, apps, custom = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "gateways", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "Gateway",
        "metadata": {"name": GATEWAY},
        "spec": {"gatewayClassName": class_name, "listeners": [
            {"name": "default", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}]},
    })
    core.create_namespaced_config_map(namespace, {"metadata": {"name": EPP},
                                                  "data": {"default-plugins.yaml": epp_config}})
    core.create_namespaced_service(namespace, {
        "metadata": {"name": EPP},
        "spec": {"selector": {"inferencepool": EPP},
                 "ports": [{"name": "grpc-ext-proc", "port": 9002}, {"name": "http-metrics", "port": 9090}]},
    })
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": EPP},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"inferencepool": EPP}},
            "template": {"metadata": {"labels": {"inferencepool": EPP}}, "spec": {
                "containers": [{
                    "name": "epp",
                    "image": "registry.k8s.io/gateway-api-inference-extension/epp:v1.4.0",
                    "args": ["--pool-name", POOL, "--pool-namespace", namespace,
                             "--config-file", "/config/default-plugins.yaml", "--zap-encoder", "json"],
                    "ports": [{"name": "grpc", "containerPort": 9002}, {"name": "metrics", "containerPort": 9090}],
                    "volumeMounts": [{"name": "plugins-config-volume", "mountPath": "/config"}],
                }],
                "volumes": [{"name": "plugins-config-volume", "configMap": {"name": EPP}}],
            }},
        },
    })
    for name, labels, replicas in model_servers:
        apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                    "name": "vllm",
                    "image": "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
                    "args": ["--model", "fake-model", "--port", "8000", "--inter-token-latency", "100ms"],
                    "ports": [{"containerPort": 8000}],
                }]}},
            },
        })
    custom.create_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", {
        "apiVersion": "%s/%s" % (POOL_GROUP, POOL_VERSION), "kind": "InferencePool",
        "metadata": {"name": POOL},
        "spec": {
            "selector": {"matchLabels": {"app": "dp-model"}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"kind": "Service", "name": EPP, "port": {"number": 9002},
                                  "failureMode": "FailClose"},
        },
    })
    create_route(api_client, namespace)


def create_route(api_client, namespace):
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "httproutes", {
        "apiVersion": "%s/%s" % (GW_GROUP, GW_VERSION), "kind": "HTTPRoute",
        "metadata": {"name": ROUTE},
        "spec": {
            "parentRefs": [{"group": GW_GROUP, "kind": "Gateway", "name": GATEWAY}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": POOL_GROUP, "kind": "InferencePool", "name": POOL, "port": 8000}],
                "timeouts": {"request": "0s", "backendRequest": "0s"},
            }],
        },
    })


def route_ready(custom, namespace):
    try:
        route = custom.get_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "httproutes", ROUTE)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    parents = (route.get("status") or {}).get("parents") or []
    return any(condition_true(p.get("conditions"), "Accepted") and condition_true(p.get("conditions"), "ResolvedRefs")
               for p in parents)


def kwok_object(custom, plural, namespace, name):
    try:
        return custom.get_namespaced_custom_object(KWOK_GROUP, KWOK_VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def pods(core, namespace, selector):
    return [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def answer_of(gateway, wait_until, predicate, what, body=None, path="/v1/completions", timeout=30):
    """Send the request until the answer satisfies `predicate` (the simulators
    see cluster changes within about a second)."""
    def attempt():
        response = gateway.post(path, body) if body is not None else gateway.get(path)
        # a list: a requests.Response is falsy for 4xx/5xx answers
        return [response] if predicate(response) else None
    return wait_until(attempt, timeout, what)[0]


def test_requests_through_the_simulated_gateway(lab, api_client, namespace, gateway_class, wait_until, port_forward):
    core, apps, custom = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.CustomObjectsApi(api_client)
    create_stack(api_client, namespace, gateway_class)

    wait_until(lambda: route_ready(custom, namespace), 60, "HTTPRoute %s Accepted and ResolvedRefs" % ROUTE)
    gateway_pods = wait_until(lambda: pods(core, namespace, "gateway.networking.k8s.io/gateway-name=" + GATEWAY),
                              60, "a Running gateway pod")
    model_pods = wait_until(lambda: len(pods(core, namespace, "app=dp-model")) == 2 and
                            pods(core, namespace, "app=dp-model"), 60, "2 Running model-server pods")
    model_names = {p.metadata.name for p in model_pods}
    for name in model_names:
        wait_until(lambda: kwok_object(custom, "portforwards", namespace, name), 60,
                   "the model server's PortForward for %s" % name)
    forward = wait_until(lambda: kwok_object(custom, "portforwards", namespace, gateway_pods[0].metadata.name),
                         60, "the data plane's PortForward for the gateway pod (is the gateway_dataplane controller "
                         "loaded? see %s/logs/simulators.log)" % lab.dir)
    assert forward["spec"]["forwards"][0]["ports"] == [80]
    (epp_pod,) = wait_until(lambda: pods(core, namespace, "inferencepool=" + EPP), 60, "the EPP pod")
    wait_until(lambda: kwok_object(custom, "logs", namespace, epp_pod.metadata.name), 60, "the EPP pod's Logs object")

    gateway = port_forward(namespace, "svc/" + GATEWAY + "-istio", 80)
    try:
        # /v1/models goes straight to a pod
        models = answer_of(gateway, wait_until, lambda r: r.status_code == 200, "GET /v1/models = 200",
                           path="/v1/models")
        assert [m["id"] for m in models.json()["data"]] == ["fake-model"]

        # a completion is scheduled by the EPP
        answer = gateway.post("/v1/completions", completion("hello through the gateway"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-went-into-resp-headers"] == "true"
        assert answer.headers["x-inference-pod"] in model_names
        assert answer.headers["server"] == "istio-envoy"
        assert answer.json()["object"] == "text_completion"

        # unrelated prompts: nothing cached, nothing queued, so ties spread the load
        served = [gateway.post("/v1/completions", completion("burst %d %s" % (i, uuid.uuid4().hex)))
                  for i in range(12)]
        assert all(r.status_code == 200 for r in served)
        assert {r.headers["x-inference-pod"] for r in served} == model_names

        # a shared long prefix sticks to the pod that served it first
        sticky = [gateway.post("/v1/completions", completion(SHARED_PREFIX + "question %d" % i)) for i in range(6)]
        assert len({r.headers["x-inference-pod"] for r in sticky}) == 1

        # streaming reaches the client chunk by chunk (sim: 100ms between tokens)
        started = time.monotonic()
        with requests.post(gateway.url("/v1/chat/completions"), stream=True, timeout=30, json={
                "model": "fake-model", "messages": [{"role": "user", "content": "count to ten"}],
                "max_tokens": 8, "ignore_eos": True, "stream": True}) as stream:
            assert stream.status_code == 200
            arrivals = [time.monotonic() - started for line in stream.iter_lines() if line.startswith(b"data:")]
        # 8 tokens 100ms apart: the first chunk arrives ~0.7s before the last
        assert len(arrivals) >= 8
        assert arrivals[-1] - arrivals[0] >= 0.5, "chunks arrived together: %s" % arrivals

        # the EPP's body checks
        missing_model = gateway.post("/v1/completions", {"prompt": "no model"})
        assert (missing_model.status_code, missing_model.text) == (
            400, "inference error: BadRequest - model not found in request body")
        missing_prompt = gateway.post("/v1/completions", {"model": "fake-model"})
        assert (missing_prompt.status_code, missing_prompt.text) == (
            400, "inference error: BadRequest - prompt not found in request")

        # kubectl logs of the EPP pod shows its JSON lines for those requests
        records = epp_records(lab, namespace, epp_pod.metadata.name)
        messages = [r["msg"] for r in records]
        for expected in ("LLM request assembled", "Running scorer", "Got pod scores", "After running picker plugin",
                         "Request handled", "Response generated", "Failed to process request"):
            assert expected in messages, "%r not in the EPP log" % expected
        handled = [r for r in records if r["msg"] == "Request handled" and "targetModel" in r]
        assert len(handled) >= 19
        assert all(r["endpoint"].split("/", 1)[1].split(" ", 1)[0] in model_names for r in handled)
        usage = [r["usage"] for r in records if r["msg"] == "Response generated" and "usage" in r]
        assert usage and all(u["total_tokens"] > 0 for u in usage)

        # the Envoy-style access log of the gateway pod
        access = lab.kubectl("-n", namespace, "logs", gateway_pods[0].metadata.name, "-c", "istio-proxy").stdout
        assert '"POST /v1/completions HTTP/1.1" 200 - via_upstream' in access
        assert '"POST /v1/completions HTTP/1.1" 400' in access

        # pool selector matching nothing: no healthy upstream
        custom.patch_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", POOL,
                                              {"spec": {"selector": {"matchLabels": {"app": "nothing"}}}})
        empty = answer_of(gateway, wait_until, lambda r: r.status_code == 503, "503 with an empty pool",
                          body=completion("empty pool"))
        assert empty.text == "no healthy upstream"
        custom.patch_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", POOL,
                                              {"spec": {"selector": {"matchLabels": {"app": "dp-model"}}}})
        answer_of(gateway, wait_until, lambda r: r.status_code == 200, "200 again", body=completion("back"))

        # wrong target port: Envoy cannot connect to the picked pod
        custom.patch_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", POOL,
                                              {"spec": {"targetPorts": [{"number": 9999}]}})
        wrong = answer_of(gateway, wait_until, lambda r: r.status_code == 503, "503 for a wrong target port",
                          body=completion("wrong port"))
        assert wrong.text.startswith("upstream connect error or disconnect/reset before headers. "
                                     "reset reason: connection failure")
        custom.patch_namespaced_custom_object(POOL_GROUP, POOL_VERSION, namespace, "inferencepools", POOL,
                                              {"spec": {"targetPorts": [{"number": 8000}]}})
        answer_of(gateway, wait_until, lambda r: r.status_code == 200, "200 again", body=completion("back"))

        # EPP scaled to 0 with failureMode FailClose: 503 naming the ext_proc failure
        apps.patch_namespaced_deployment_scale(EPP, namespace, {"spec": {"replicas": 0}})
        closed = answer_of(gateway, wait_until, lambda r: r.status_code == 503, "503 with the EPP scaled to 0",
                           body=completion("no epp"))
        assert closed.text.startswith("ext_proc error: endpoint picker %s/%s:9002 unavailable" % (namespace, EPP))
        apps.patch_namespaced_deployment_scale(EPP, namespace, {"spec": {"replicas": 1}})
        answer_of(gateway, wait_until, lambda r: r.status_code == 200, "200 after scaling the EPP back",
                  body=completion("epp is back"), timeout=60)

        # the HTTPRoute deleted: Envoy has no route, 404
        custom.delete_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "httproutes", ROUTE)
        gone = answer_of(gateway, wait_until, lambda r: r.status_code == 404, "404 without the HTTPRoute",
                         body=completion("no route"))
        assert gone.text == ""
    finally:
        gateway.close()


def test_data_plane_objects_go_away_with_the_gateway(api_client, namespace, gateway_class, wait_until):
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_stack(api_client, namespace, gateway_class)
    (gateway_pod,) = wait_until(lambda: pods(core, namespace, "gateway.networking.k8s.io/gateway-name=" + GATEWAY),
                                60, "a Running gateway pod")
    name = gateway_pod.metadata.name
    wait_until(lambda: kwok_object(custom, "portforwards", namespace, name), 60, "the gateway pod's PortForward")
    custom.delete_namespaced_custom_object(GW_GROUP, GW_VERSION, namespace, "gateways", GATEWAY)
    wait_until(lambda: kwok_object(custom, "portforwards", namespace, name) is None and
               kwok_object(custom, "logs", namespace, name) is None, 60,
               "the data plane to delete the gateway pod's PortForward and Logs")


def epp_records(lab, namespace, pod_name):
    logs = lab.kubectl("-n", namespace, "logs", pod_name, "-c", "epp").stdout
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def test_prefill_decode_and_concurrent_load(lab, api_client, namespace, gateway_class, wait_until, port_forward):
    """P/D: the EPP picks a decode pod and a prefill pod and sets
    x-prefiller-host-port; concurrent requests spread by in-flight count."""
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_stack(api_client, namespace, gateway_class, epp_config=PD_CONFIG, model_servers=(
        (MODEL, MODEL_LABELS, 2), ("dp-prefill", PREFILL_LABELS, 1)))
    wait_until(lambda: route_ready(custom, namespace), 60, "HTTPRoute %s Accepted and ResolvedRefs" % ROUTE)
    wait_until(lambda: pods(core, namespace, "gateway.networking.k8s.io/gateway-name=" + GATEWAY), 60,
               "a Running gateway pod")
    decode = wait_until(lambda: len(pods(core, namespace, "llm-d.ai/role=decode")) == 2 and
                        pods(core, namespace, "llm-d.ai/role=decode"), 60, "2 decode pods")
    (prefill,) = wait_until(lambda: pods(core, namespace, "llm-d.ai/role=prefill"), 60, "the prefill pod")
    (epp_pod,) = wait_until(lambda: pods(core, namespace, "inferencepool=" + EPP), 60, "the EPP pod")
    for pod in decode + [prefill]:
        wait_until(lambda: kwok_object(custom, "portforwards", namespace, pod.metadata.name), 60,
                   "the PortForward of %s" % pod.metadata.name)
    decode_names = {p.metadata.name for p in decode}

    gateway = port_forward(namespace, "svc/" + GATEWAY + "-istio", 80)
    try:
        # Early attempts may be scheduled and then fail while the pods' port
        # forwards settle, so each attempt gets its own request id and a
        # prompt no earlier attempt left in the prefix cache.
        request_ids = []

        def pd_attempt():
            request_ids.append(uuid.uuid4().hex)
            response = gateway.post(
                "/v1/completions",
                completion(request_ids[-1] + " Explain prefill/decode disaggregation. " * 5),
                headers={"x-request-id": request_ids[-1]})
            return [response] if response.status_code == 200 else None

        (answer,) = wait_until(pd_attempt, 30, "a P/D completion")
        assert answer.headers["x-inference-pod"] in decode_names
        assert answer.headers["x-went-into-resp-headers"] == "true"
        records = [r for r in epp_records(lab, namespace, epp_pod.metadata.name)
                   if r.get("x-request-id") == request_ids[-1]]
        messages = [r["msg"] for r in records]
        assert "Scheduling to separate prefill and decode workers" in messages
        (header,) = [r for r in records if r["msg"] == "Prefill header set"]
        assert header["x-prefiller-host-port"] == "%s:8000" % prefill.status.pod_ip
        profiles = [r["profile"] for r in records if r["msg"] == "Running scheduler profile"]
        assert profiles == ["decode", "prefill"]

        # 4 concurrent requests of ~1s each: in-flight counts steer the picks
        body = {"model": "fake-model", "max_tokens": 10, "ignore_eos": True}

        def one(i):
            return gateway.post("/v1/completions", dict(body, prompt="concurrent %d %s" % (i, uuid.uuid4().hex)))

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(one, range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        assert {a.headers["x-inference-pod"] for a in answers} == decode_names
        queue_scores = [r["scores"] for r in epp_records(lab, namespace, epp_pod.metadata.name)
                        if r["msg"] == "Got pod scores" and r.get("logger") == "queue-scorer"
                        and r.get("profile") == "decode"]
        assert any(len(set(scores.values())) > 1 for scores in queue_scores), \
            "no request saw unequal in-flight counts: %s" % queue_scores
    finally:
        gateway.close()
