"""Fixture objects for the gateway data-plane simulator's unit tests.

Plain dicts shaped like the Kubernetes API returns them. `working_stack()`
is a complete, healthy lab stack (Gateway -> HTTPRoute -> InferencePool v1
-> EPP -> 2 decode pods); tests break one thing at a time.
"""
import copy
import os
import sys

LAB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "lab")
if LAB_DIR not in sys.path:
    sys.path.insert(0, LAB_DIR)

NS = "llm-d-sim"
GATEWAY = "infra-sim-inference-gateway"
POOL = "gaie-sim"
EPP = "gaie-sim-epp"
ROUTE = "llm-d-sim"
DECODE_LABELS = {"llm-d.ai/inference-serving": "true", "llm-d.ai/role": "decode"}
POOL_SELECTOR = {"llm-d.ai/inference-serving": "true"}

CHART_DEFAULT_CONFIG = """\
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

PD_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefix-cache-scorer
  parameters:
    hashBlockSize: 5
    maxPrefixBlocksToMatch: 256
    lruCapacityPerServer: 31250
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: pd-profile-handler
  parameters:
    threshold: 10
    hashBlockSize: 5
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 50
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 50
"""


def meta(name, namespace=NS, labels=None, **extra):
    data = {"name": name, "namespace": namespace}
    if labels:
        data["labels"] = dict(labels)
    data.update(extra)
    return data


def gateway_class(name="istio", controller="istio.io/gateway-controller"):
    return {"metadata": {"name": name}, "spec": {"controllerName": controller}}


def gateway(name=GATEWAY, namespace=NS, class_name="istio", allowed_from="All", port=80):
    return {
        "metadata": meta(name, namespace),
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [{"name": "default", "port": port, "protocol": "HTTP",
                           "allowedRoutes": {"namespaces": {"from": allowed_from}}}],
        },
    }


def pod(name, labels, namespace=NS, ready=True, ip="10.0.0.1", phase="Running", deleting=False, containers=None):
    metadata = meta(name, namespace, labels)
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": containers or [{"name": "vllm", "ports": [{"containerPort": 8000}]}]},
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def gateway_pod(name="infra-sim-inference-gateway-istio-0", gateway_name=GATEWAY, namespace=NS):
    return pod(name, {"gateway.networking.k8s.io/gateway-name": gateway_name}, namespace, ip="10.0.0.100",
               containers=[{"name": "istio-proxy"}])


def epp_pod(name="gaie-sim-epp-abc", namespace=NS, ready=True, args=None, configmap=EPP):
    if args is None:
        args = ["--pool-name", POOL, "--pool-namespace", namespace, "--config-file", "/config/default-plugins.yaml"]
    item = pod(name, {"inferencepool": EPP}, namespace, ready=ready, ip="10.0.0.50", containers=[{
        "name": "epp",
        "args": list(args),
        "volumeMounts": [{"name": "plugins-config-volume", "mountPath": "/config"}],
    }])
    item["spec"]["volumes"] = [{"name": "plugins-config-volume", "configMap": {"name": configmap}}]
    return item


def service(name, selector, ports, namespace=NS):
    return {
        "metadata": meta(name, namespace),
        "spec": {"selector": dict(selector), "ports": [{"port": p, "targetPort": p} for p in ports]},
    }


def configmap(name, data, namespace=NS):
    return {"metadata": meta(name, namespace), "data": dict(data)}


def pool_v1(name=POOL, namespace=NS, selector=None, ports=(8000,), epp=EPP, epp_port=9002, failure_mode="FailClose"):
    return {
        "metadata": meta(name, namespace),
        "spec": {
            "selector": {"matchLabels": dict(selector or POOL_SELECTOR)},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {"group": "", "kind": "Service", "name": epp,
                                  "port": {"number": epp_port}, "failureMode": failure_mode},
        },
    }


def pool_v1alpha2(name=POOL, namespace=NS, selector=None, port=8000, epp=EPP, epp_port=9002, failure_mode=None):
    ref = {"name": epp, "portNumber": epp_port}
    if failure_mode:
        ref["failureMode"] = failure_mode
    return {
        "metadata": meta(name, namespace),
        "spec": {"selector": dict(selector or POOL_SELECTOR), "targetPortNumber": port, "extensionRef": ref},
    }


def route(name=ROUTE, namespace=NS, gateway_name=GATEWAY, pool=POOL, group="inference.networking.k8s.io",
          accepted=True, resolved=True, matches=None, timeouts=None, hostnames=None, created="2026-01-01T00:00:00Z"):
    rule = {"backendRefs": [{"group": group, "kind": "InferencePool", "name": pool, "port": 8000, "weight": 1}]}
    rule["matches"] = matches if matches is not None else [{"path": {"type": "PathPrefix", "value": "/"}}]
    if timeouts is not None:
        rule["timeouts"] = timeouts
    spec = {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway_name}],
            "rules": [rule]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {
        "metadata": meta(name, namespace, creationTimestamp=created),
        "spec": spec,
        "status": {"parents": [{
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway_name},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [
                {"type": "Accepted", "status": "True" if accepted else "False",
                 "reason": "Accepted" if accepted else "NotAllowedByListeners"},
                {"type": "ResolvedRefs", "status": "True" if resolved else "False",
                 "reason": "ResolvedRefs" if resolved else "BackendNotFound"},
            ],
        }]},
    }


def portforward(name, namespace=NS, ports=(8000, 8200), target_port=31001):
    return {
        "metadata": meta(name, namespace),
        "spec": {"forwards": [{"ports": list(ports), "target": {"address": "127.0.0.1", "port": target_port}}]},
    }


def working_stack(config_text=CHART_DEFAULT_CONFIG):
    """Raw lists for dataplane_routing.build_view: a healthy stack."""
    decode = [
        pod("ms-sim-llm-d-modelservice-decode-a", DECODE_LABELS, ip="10.0.0.11"),
        pod("ms-sim-llm-d-modelservice-decode-b", DECODE_LABELS, ip="10.0.0.12"),
    ]
    return {
        "gateway_classes": [gateway_class()],
        "gateways": [gateway()],
        "routes": [route()],
        "pools_v1": [pool_v1()],
        "pools_v1alpha2": [],
        "services": [
            service(EPP, {"inferencepool": EPP}, [9002, 9090]),
            service(GATEWAY + "-istio", {"gateway.networking.k8s.io/gateway-name": GATEWAY}, [15021, 80]),
        ],
        "pods": decode + [epp_pod(), gateway_pod()],
        "portforwards": [
            portforward(decode[0]["metadata"]["name"], target_port=31001),
            portforward(decode[1]["metadata"]["name"], target_port=31002),
        ],
        "configmaps": [configmap(EPP, {"default-plugins.yaml": config_text})],
        "reference_grants": [],
    }


def clone(raw):
    return copy.deepcopy(raw)


GATEWAY_KEY = (NS, GATEWAY)
