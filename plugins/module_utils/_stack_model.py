# This file is for internal use by the llmd.stack collection only.
# It may change or disappear in any release without notice.
"""Pure core of llmd_stack_facts: what to read, and the linked stack model.

Three steps, all pure functions over plain dicts (no I/O, no third-party
imports, never raising on malformed resources):

* ``parse_discovery`` and ``plan_requests``: from one discovery document to
  the list of LIST requests (one per kind, whatever the object count);
* ``normalize``: raw API objects -> compact summaries, with InferencePool
  v1alpha2 and v1 (and both model-server label generations) in one shape;
* ``link``: choose the stack (Gateway <- HTTPRoute -> InferencePool -> EPP,
  pool selector -> model-server pods) and list the ways to reach it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import gzip
import json
import re
import shlex
import zlib

from ansible_collections.llmd.stack.plugins.module_utils._epp_config import (
    flag_value,
    select_epp_config,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_GROUP_V1 = "inference.networking.k8s.io"
POOL_GROUP_V1ALPHA2 = "inference.networking.x-k8s.io"
POOL_GROUPS = (POOL_GROUP_V1, POOL_GROUP_V1ALPHA2)

# Both generations of the model-server "serving" label (modelservice <=0.3
# used the camel-case key, 0.4+ the kebab-case one).
SERVING_LABELS = ("llm-d.ai/inferenceServing", "llm-d.ai/inference-serving")
ROLE_LABEL = "llm-d.ai/role"
MODEL_LABEL = "llm-d.ai/model"
DECODE_ROLES = ("decode", "both", "prefill-decode")
PREFILL_ROLES = ("prefill",)

GATEWAY_API_VERSION_ANNOTATION = "gateway.networking.k8s.io/bundle-version"
GATEWAY_API_CHANNEL_ANNOTATION = "gateway.networking.k8s.io/channel"
GAIE_VERSION_ANNOTATION = "inference.networking.k8s.io/bundle-version"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
OPENSHIFT_UID_RANGE_ANNOTATION = "openshift.io/sa.scc.uid-range"

EPP_DEFAULT_PORT = 9002

AGGREGATED_DISCOVERY_ACCEPT = ",".join((
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    "application/json",
))
METADATA_ONLY_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

# key -> (group, plural, scope, versions in order of preference).
# scope: "namespace" (the target namespace), "control_plane" (one LIST in each
# control-plane namespace), "cluster" (cluster-scoped), "all" (all namespaces).
KINDS = {
    "deployments": ("apps", "deployments", "namespace", ("v1",)),
    "pods": ("", "pods", "namespace", ("v1",)),
    "services": ("", "services", "namespace", ("v1",)),
    "configmaps": ("", "configmaps", "namespace", ("v1",)),
    "helm_secrets": ("", "secrets", "namespace", ("v1",)),
    "pvcs": ("", "persistentvolumeclaims", "namespace", ("v1",)),
    "gateways": (GATEWAY_GROUP, "gateways", "namespace", ("v1", "v1beta1")),
    "httproutes": (GATEWAY_GROUP, "httproutes", "namespace", ("v1", "v1beta1")),
    "gatewayclasses": (GATEWAY_GROUP, "gatewayclasses", "cluster", ("v1", "v1beta1")),
    "inferencepools_v1": (POOL_GROUP_V1, "inferencepools", "namespace", ("v1",)),
    "inferencepools_v1alpha2": (POOL_GROUP_V1ALPHA2, "inferencepools", "namespace", ("v1alpha2",)),
    "inferenceobjectives": (POOL_GROUP_V1ALPHA2, "inferenceobjectives", "namespace", ("v1alpha2",)),
    "inferencemodels": (POOL_GROUP_V1ALPHA2, "inferencemodels", "namespace", ("v1alpha2",)),
    "gatewayparameters": ("gateway.kgateway.dev", "gatewayparameters", "namespace", ("v1alpha1",)),
    "agentgatewayparameters": ("agentgateway.dev", "agentgatewayparameters", "namespace", ("v1alpha1",)),
    "ingresses": ("networking.k8s.io", "ingresses", "namespace", ("v1",)),
    "routes": ("route.openshift.io", "routes", "namespace", ("v1",)),
    "control_plane_deployments": ("apps", "deployments", "control_plane", ("v1",)),
    "control_plane_helm_secrets": ("", "secrets", "control_plane", ("v1",)),
    "crds": ("apiextensions.k8s.io", "customresourcedefinitions", "cluster", ("v1",)),
    "clusterversions": ("config.openshift.io", "clusterversions", "cluster", ("v1",)),
    "servicemeshcontrolplanes": ("maistra.io", "servicemeshcontrolplanes", "all", ("v2", "v1")),
}

# Kinds read only for metadata (names, labels, annotations, managedFields).
METADATA_ONLY = ("crds",)
# Helm keeps each release revision in a Secret labelled owner=helm.
LABEL_SELECTORS = {"helm_secrets": "owner=helm", "control_plane_helm_secrets": "owner=helm"}

# Kinds every run reads: the stack model is built from them.
CORE_KINDS = (
    "deployments", "pods", "services", "configmaps", "gateways", "httproutes",
    "gatewayclasses", "inferencepools_v1", "inferencepools_v1alpha2",
    "inferenceobjectives", "inferencemodels", "ingresses", "routes", "clusterversions",
)
# Kinds read only when a selected check needs them.
KINDS_FOR_CHECK = {
    "control_plane.ready": ("control_plane_deployments",),
    "gateway.parameters": ("gatewayparameters", "agentgatewayparameters"),
    "helm.releases": ("helm_secrets", "control_plane_helm_secrets"),
    "crds.installed": ("crds",),
    "storage.model_pvc": ("pvcs",),
    "openshift.service_mesh": ("servicemeshcontrolplanes", "control_plane_deployments"),
}

PROVIDER_CONTROLLERS = (
    ("istio.io/", "istio"),
    ("openshift.io/gateway-controller", "istio"),
    ("agentgateway", "agentgateway"),
    ("kgateway.dev/", "kgateway"),
    ("gke.io/", "gke"),
)
CONTROL_PLANE_DEPLOYMENTS = (("istiod", "istio"), ("kgateway", "kgateway"), ("agentgateway", "agentgateway"))


# ---------------------------------------------------------------- accessors

def _d(value):
    return value if isinstance(value, dict) else {}


def _l(value):
    return value if isinstance(value, list) else []


def _s(value):
    return value if isinstance(value, str) else ""


def _int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _str_map(value):
    """Labels/annotations/selectors: keep string keys and scalar values."""
    result = {}
    for key, val in _d(value).items():
        if isinstance(key, str) and isinstance(val, (str, int, float, bool)):
            result[key] = val if isinstance(val, str) else str(val).lower() if isinstance(val, bool) else str(val)
    return result


def _meta(obj):
    return _d(_d(obj).get("metadata"))


def _name(obj):
    return _s(_meta(obj).get("name"))


def conditions_map(conditions):
    """[{type, status, reason, message}] -> {type: {status, reason, message}}."""
    result = {}
    for cond in _l(conditions):
        cond = _d(cond)
        ctype = _s(cond.get("type"))
        if ctype:
            result[ctype] = {
                "status": _s(cond.get("status")) or "Unknown",
                "reason": _s(cond.get("reason")),
                "message": _s(cond.get("message")),
            }
    return result


def condition_true(conditions, ctype):
    return _d(_d(conditions).get(ctype)).get("status") == "True"


def selector_matches(selector, labels):
    """Match a LabelSelector (matchLabels/matchExpressions) or a flat map.

    An empty or missing selector matches nothing: here an empty selector
    always means a misconfiguration, never "select everything".
    """
    selector = _d(selector)
    labels = _d(labels)
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels = _str_map(selector.get("matchLabels"))
        expressions = _l(selector.get("matchExpressions"))
    else:
        match_labels = _str_map(selector)
        expressions = []
    if not match_labels and not expressions:
        return False
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in expressions:
        expr = _d(expr)
        key = _s(expr.get("key"))
        operator = _s(expr.get("operator"))
        values = [v for v in _l(expr.get("values")) if isinstance(v, str)]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def flat_selector(selector):
    """matchLabels of a LabelSelector, or the map itself for a flat selector."""
    selector = _d(selector)
    if "matchLabels" in selector or "matchExpressions" in selector:
        return _str_map(selector.get("matchLabels"))
    return _str_map(selector)


def parse_version(text):
    """'v1.5.1' / '1.5.1-rc.1' -> (1, 5, 1); None when there is no number."""
    found = re.match(r"^\s*v?(\d+(?:\.\d+)*)", _s(text))
    if not found:
        return None
    return tuple(int(part) for part in found.group(1).split("."))


def same_version(found, expected):
    """True when two version strings name the same release ('v1.4.0' == '1.4.0')."""
    return _s(found).strip().lstrip("v") == _s(expected).strip().lstrip("v") and bool(_s(found).strip())


# ---------------------------------------------------------------- discovery and plan

def parse_discovery(doc):
    """Parse GET /apis: aggregated discovery (v2/v2beta1) or a legacy APIGroupList.

    Returns {"aggregated": bool, "groups": {group: {"preferred": version,
    "versions": {version: {plural: {"kind", "namespaced"}} or None}}}}; None
    means the resource list of that version is unknown (legacy discovery).
    """
    doc = _d(doc)
    groups = {}
    aggregated = _s(doc.get("kind")) == "APIGroupDiscoveryList"
    if aggregated:
        for item in _l(doc.get("items")):
            group = _s(_meta(item).get("name"))
            versions = {}
            order = []
            for version in _l(_d(item).get("versions")):
                vname = _s(_d(version).get("version"))
                if not vname:
                    continue
                resources = {}
                for res in _l(_d(version).get("resources")):
                    res = _d(res)
                    plural = _s(res.get("resource"))
                    if plural:
                        resources[plural] = {
                            "kind": _s(_d(res.get("responseKind")).get("kind")),
                            "namespaced": _s(res.get("scope")) != "Cluster",
                        }
                versions[vname] = resources
                order.append(vname)
            groups[group] = {"preferred": order[0] if order else "", "versions": versions}
    else:
        for item in _l(doc.get("groups")):
            item = _d(item)
            group = _s(item.get("name"))
            versions = {}
            for version in _l(item.get("versions")):
                vname = _s(_d(version).get("version"))
                if vname:
                    versions[vname] = None
            preferred = _s(_d(item.get("preferredVersion")).get("version"))
            groups[group] = {"preferred": preferred, "versions": versions}
    return {"aggregated": aggregated, "groups": groups}


def served_version(discovery, group, plural, versions):
    """The version to LIST ``plural`` of ``group`` with, or None when not served."""
    if group == "":
        return versions[0]
    info = _d(_d(_d(discovery).get("groups")).get(group))
    served = _d(info.get("versions"))
    if not served:
        return None

    def has(version):
        resources = served.get(version, False)
        if resources is False:
            return False
        return resources is None or plural in _d(resources)

    for version in versions:
        if has(version):
            return version
    for version in [_s(info.get("preferred"))] + sorted(served):
        if version and has(version):
            return version
    return None


def served_groups(discovery):
    return sorted(_d(_d(discovery).get("groups")))


def kinds_for_checks(selected_checks):
    """The kinds to LIST for ``selected_checks`` (ids): core kinds + extras."""
    keys = list(CORE_KINDS)
    for check_id in selected_checks:
        for key in KINDS_FOR_CHECK.get(check_id, ()):
            if key not in keys:
                keys.append(key)
    return keys


def _list_path(group, version, plural, namespace):
    base = "/api/%s" % version if group == "" else "/apis/%s/%s" % (group, version)
    if namespace:
        return "%s/namespaces/%s/%s" % (base, namespace, plural)
    return "%s/%s" % (base, plural)


def plan_requests(discovery, namespace, control_plane_namespaces, keys):
    """One LIST per (kind, namespace): [{key, path, query, accept, namespace, served, api_version}].

    Kinds the API does not serve get ``served: False`` and no path; the shell
    records them as "not installed" without a request.
    """
    plan = []
    for key in keys:
        if key not in KINDS:
            continue
        group, plural, scope, versions = KINDS[key]
        version = served_version(discovery, group, plural, versions)
        api_version = (group + "/" + version if group else version) if version else None
        if scope == "control_plane":
            namespaces = [ns for ns in control_plane_namespaces if isinstance(ns, str) and ns and ns != namespace]
        elif scope == "namespace":
            namespaces = [namespace]
        else:
            namespaces = [None]
        for ns in namespaces:
            entry = {
                "key": key,
                "namespace": ns,
                "served": version is not None,
                "api_version": api_version,
                "path": _list_path(group, version, plural, ns) if version else None,
                "query": {},
                "accept": METADATA_ONLY_ACCEPT if key in METADATA_ONLY else "application/json",
            }
            if key in LABEL_SELECTORS:
                entry["query"]["labelSelector"] = LABEL_SELECTORS[key]
            plan.append(entry)
    return plan


# ---------------------------------------------------------------- normalize

def _container(raw):
    raw = _d(raw)
    ports = []
    for port in _l(raw.get("ports")):
        number = _int(_d(port).get("containerPort"))
        if number is not None:
            ports.append({"port": number, "name": _s(_d(port).get("name"))})
    return {
        "name": _s(raw.get("name")),
        "args": [a for a in _l(raw.get("args")) if isinstance(a, str)],
        "command": [a for a in _l(raw.get("command")) if isinstance(a, str)],
        "ports": ports,
        "sidecar": _s(raw.get("restartPolicy")) == "Always",
    }


def _pod_spec_summary(spec):
    spec = _d(spec)
    containers = [_container(c) for c in _l(spec.get("containers"))]
    # Init containers with restartPolicy Always are sidecars (routing-proxy).
    sidecars = [c for c in (_container(c) for c in _l(spec.get("initContainers"))) if c["sidecar"]]
    pvcs = []
    configmaps = []
    for volume in _l(spec.get("volumes")):
        volume = _d(volume)
        claim = _s(_d(volume.get("persistentVolumeClaim")).get("claimName"))
        if claim:
            pvcs.append(claim)
        configmap = _s(_d(volume.get("configMap")).get("name"))
        if configmap:
            configmaps.append(configmap)
    return {"containers": containers + sidecars, "pvcs": pvcs, "configmaps": configmaps}


def normalize_deployment(obj):
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    template = _d(spec.get("template"))
    replicas = _int(spec.get("replicas"))
    conditions = conditions_map(status.get("conditions"))
    summary = {
        "name": _name(obj),
        "namespace": _s(_meta(obj).get("namespace")),
        "labels": _str_map(_meta(obj).get("labels")),
        "replicas": 1 if replicas is None else replicas,
        "ready_replicas": _int(status.get("readyReplicas")) or 0,
        "available_replicas": _int(status.get("availableReplicas")) or 0,
        "updated_replicas": _int(status.get("updatedReplicas")) or 0,
        "available": condition_true(conditions, "Available"),
        "conditions": conditions,
        "selector": _d(spec.get("selector")),
        "template_labels": _str_map(_meta(template).get("labels")),
    }
    summary.update(_pod_spec_summary(template.get("spec")))
    return summary


def normalize_pod(obj):
    obj = _d(obj)
    meta = _meta(obj)
    status = _d(obj.get("status"))
    spec_summary = _pod_spec_summary(obj.get("spec"))
    statuses = {}
    for cstatus in _l(status.get("containerStatuses")) + _l(status.get("initContainerStatuses")):
        cstatus = _d(cstatus)
        if _s(cstatus.get("name")):
            statuses[cstatus["name"]] = cstatus
    conditions = conditions_map(status.get("conditions"))
    pod_ready = condition_true(conditions, "Ready")
    ready_condition = _d(conditions.get("Ready"))
    containers = []
    for container in spec_summary["containers"]:
        cstatus = statuses.get(container["name"])
        state = _d(_d(cstatus).get("state"))
        last = _d(_d(_d(cstatus).get("lastState")).get("terminated"))
        if "waiting" in state:
            state_name, reason = "waiting", _s(_d(state.get("waiting")).get("reason"))
        elif "terminated" in state:
            state_name, reason = "terminated", _s(_d(state.get("terminated")).get("reason"))
        elif "running" in state:
            state_name, reason = "running", ""
        else:
            state_name, reason = "unknown", ""
        if cstatus is None:
            # No status reported (e.g. a sidecar on an older kubelet): the pod's
            # Ready condition is the best evidence there is.
            ready = pod_ready
        else:
            ready = _d(cstatus).get("ready") is True
        containers.append({
            "name": container["name"],
            "ready": ready,
            "restart_count": _int(_d(cstatus).get("restartCount")) or 0,
            "state": state_name,
            "reason": reason,
            "last_reason": _s(last.get("reason")),
            "last_exit_code": _int(last.get("exitCode")),
            "sidecar": container["sidecar"],
            "ports": container["ports"],
        })
    return {
        "name": _s(meta.get("name")),
        "namespace": _s(meta.get("namespace")),
        "labels": _str_map(meta.get("labels")),
        "phase": _s(status.get("phase")) or "Unknown",
        "ready": pod_ready,
        "ready_reason": _s(ready_condition.get("reason")) or _s(ready_condition.get("message")),
        "deleting": bool(meta.get("deletionTimestamp")),
        "node": _s(_d(obj.get("spec")).get("nodeName")),
        "ip": _s(status.get("podIP")),
        "reason": _s(status.get("reason")),
        "scheduled": _d(conditions.get("PodScheduled")),
        "containers": containers,
        "pvcs": spec_summary["pvcs"],
    }


def normalize_service(obj):
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    ports = []
    for port in _l(spec.get("ports")):
        port = _d(port)
        number = _int(port.get("port"))
        if number is not None:
            target = port.get("targetPort")
            ports.append({
                "name": _s(port.get("name")),
                "port": number,
                "target_port": target if isinstance(target, (int, str)) and not isinstance(target, bool) else number,
                "node_port": _int(port.get("nodePort")),
            })
    ingress = []
    for entry in _l(_d(_d(_d(obj.get("status")).get("loadBalancer"))).get("ingress")):
        value = _s(_d(entry).get("ip")) or _s(_d(entry).get("hostname"))
        if value:
            ingress.append(value)
    return {
        "name": _name(obj),
        "namespace": _s(_meta(obj).get("namespace")),
        "labels": _str_map(_meta(obj).get("labels")),
        "type": _s(spec.get("type")) or "ClusterIP",
        "cluster_ip": _s(spec.get("clusterIP")),
        "selector": _str_map(spec.get("selector")),
        "ports": ports,
        "load_balancer_ingress": ingress,
    }


def _parent_ref(raw, default_namespace, default_kind="Gateway", default_group=GATEWAY_GROUP):
    raw = _d(raw)
    return {
        "group": _s(raw.get("group")) if "group" in raw else default_group,
        "kind": _s(raw.get("kind")) or default_kind,
        "name": _s(raw.get("name")),
        "namespace": _s(raw.get("namespace")) or default_namespace,
        "section_name": _s(raw.get("sectionName")),
    }


def _route_parents(raw_parents, namespace):
    parents = []
    for parent in _l(raw_parents):
        parent = _d(parent)
        ref = _parent_ref(parent.get("parentRef"), namespace)
        if ref["kind"] == "Status" and ref["name"] == "default":
            continue  # GAIE's placeholder parent, written before any controller acts
        parents.append({
            "parent_ref": ref,
            "controller": _s(parent.get("controllerName")),
            "conditions": conditions_map(parent.get("conditions")),
        })
    return parents


def normalize_gateway(obj):
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    namespace = _s(_meta(obj).get("namespace"))
    listeners = []
    status_listeners = {}
    for listener in _l(status.get("listeners")):
        listener = _d(listener)
        status_listeners[_s(listener.get("name"))] = listener
    for listener in _l(spec.get("listeners")):
        listener = _d(listener)
        lname = _s(listener.get("name"))
        observed = _d(status_listeners.get(lname))
        listeners.append({
            "name": lname,
            "port": _int(listener.get("port")),
            "protocol": _s(listener.get("protocol")),
            "hostname": _s(listener.get("hostname")),
            "attached_routes": _int(observed.get("attachedRoutes")) or 0,
            "conditions": conditions_map(observed.get("conditions")),
        })
    addresses = []
    for address in _l(status.get("addresses")):
        value = _s(_d(address).get("value"))
        if value:
            addresses.append({"type": _s(_d(address).get("type")) or "IPAddress", "value": value})
    params = _d(_d(spec.get("infrastructure")).get("parametersRef"))
    return {
        "name": _name(obj),
        "namespace": namespace,
        "labels": _str_map(_meta(obj).get("labels")),
        "class_name": _s(spec.get("gatewayClassName")),
        "listeners": listeners,
        "addresses": addresses,
        "conditions": conditions_map(status.get("conditions")),
        "parameters_ref": {
            "group": _s(params.get("group")),
            "kind": _s(params.get("kind")),
            "name": _s(params.get("name")),
        } if _s(params.get("name")) else None,
    }


def duration_is_zero(value):
    return isinstance(value, str) and re.match(r"^0+(\.0+)?(h|m|s|ms)?$", value.strip()) is not None


def normalize_httproute(obj):
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    namespace = _s(_meta(obj).get("namespace"))
    rules = []
    for rule in _l(spec.get("rules")):
        rule = _d(rule)
        backends = []
        for backend in _l(rule.get("backendRefs")):
            backend = _d(backend)
            backends.append({
                "group": _s(backend.get("group")),
                "kind": _s(backend.get("kind")) or "Service",
                "name": _s(backend.get("name")),
                "namespace": _s(backend.get("namespace")) or namespace,
                "port": _int(backend.get("port")),
                "weight": _int(backend.get("weight")),
            })
        timeouts = _d(rule.get("timeouts"))
        rules.append({
            "backend_refs": backends,
            "timeouts": {
                "request": _s(timeouts.get("request")) or None,
                "backend_request": _s(timeouts.get("backendRequest")) or None,
            },
        })
    return {
        "name": _name(obj),
        "namespace": namespace,
        "hostnames": [h for h in _l(spec.get("hostnames")) if isinstance(h, str)],
        "parent_refs": [_parent_ref(ref, namespace) for ref in _l(spec.get("parentRefs"))],
        "rules": rules,
        "parents": _route_parents(_d(obj.get("status")).get("parents"), namespace),
    }


def normalize_pool(obj, group):
    """One shape for InferencePool v1alpha2 and v1."""
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    namespace = _s(_meta(obj).get("namespace"))
    if group == POOL_GROUP_V1:
        selector = flat_selector(spec.get("selector"))
        ports = [_int(_d(p).get("number")) for p in _l(spec.get("targetPorts"))]
        ref = _d(spec.get("endpointPickerRef"))
        epp_port = _int(_d(ref.get("port")).get("number"))
        raw_parents = status.get("parents")
        version = "v1"
    else:
        selector = flat_selector(spec.get("selector"))
        ports = [_int(spec.get("targetPortNumber"))]
        ref = _d(spec.get("extensionRef"))
        epp_port = _int(ref.get("portNumber"))
        raw_parents = status.get("parent") if "parent" in status else status.get("parents")
        version = "v1alpha2"
    raw_parent_count = len(_l(raw_parents))
    parents = _route_parents(raw_parents, namespace)
    return {
        "name": _name(obj),
        "namespace": namespace,
        "group": group,
        "api_version": group + "/" + version,
        "selector": selector,
        "target_ports": [p for p in ports if p is not None],
        "epp": {
            "group": _s(ref.get("group")),
            "kind": _s(ref.get("kind")) or "Service",
            "name": _s(ref.get("name")),
            "port": epp_port if epp_port is not None else EPP_DEFAULT_PORT,
            "port_explicit": epp_port is not None,
            "failure_mode": _s(ref.get("failureMode")) or "FailOpen",
        },
        "parents": parents,
        "placeholder_only": raw_parent_count > 0 and not parents,
    }


def normalize_objective(obj, kind):
    spec = _d(_d(obj).get("spec"))
    pool_ref = _d(spec.get("poolRef"))
    return {
        "name": _name(obj),
        "kind": kind,
        "pool": _s(pool_ref.get("name")),
        "model_name": _s(spec.get("modelName")) or None,
        "criticality": _s(spec.get("criticality")) or None,
        "priority": _int(spec.get("priority")),
    }


def decode_helm_release(secret):
    """Name/chart/version/status of one Helm release Secret; never raises.

    Helm stores base64(gzip(json)) in ``data.release``, which the API
    base64-encodes once more.
    """
    meta = _meta(secret)
    labels = _str_map(meta.get("labels"))
    release = {
        "name": labels.get("name") or _s(meta.get("name")),
        "namespace": _s(meta.get("namespace")),
        "revision": _int(labels.get("version")) or 0,
        "status": labels.get("status", "unknown"),
        "chart": None,
        "chart_version": None,
        "app_version": None,
        "description": None,
    }
    encoded = _s(_d(_d(secret).get("data")).get("release"))
    if not encoded:
        return release
    try:
        payload = base64.b64decode(base64.b64decode(encoded))
        if payload[:2] == b"\x1f\x8b":
            payload = gzip.decompress(payload)
        body = json.loads(payload.decode("utf-8"))
    except (ValueError, TypeError, binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError):
        return release
    body = _d(body)
    chart_meta = _d(_d(body.get("chart")).get("metadata"))
    info = _d(body.get("info"))
    release["chart"] = _s(chart_meta.get("name")) or None
    release["chart_version"] = _s(chart_meta.get("version")) or None
    release["app_version"] = _s(chart_meta.get("appVersion")) or None
    release["status"] = _s(info.get("status")) or release["status"]
    release["description"] = _s(info.get("description")) or None
    return release


def helm_releases(secrets):
    """Latest revision of each release among Helm's release Secrets."""
    latest = {}
    for secret in _l(secrets):
        labels = _str_map(_meta(secret).get("labels"))
        if labels.get("owner", "").lower() != "helm":
            continue
        key = (_s(_meta(secret).get("namespace")), labels.get("name", ""))
        revision = _int(labels.get("version")) or 0
        if key not in latest or revision > latest[key][0]:
            latest[key] = (revision, secret)
    releases = [decode_helm_release(entry[1]) for entry in latest.values()]
    return sorted(releases, key=lambda r: (r["namespace"], r["name"]))


def normalize_pvc(obj):
    obj = _d(obj)
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    return {
        "name": _name(obj),
        "phase": _s(status.get("phase")) or "Unknown",
        "storage_class": _s(spec.get("storageClassName")) or None,
        "capacity": _s(_d(status.get("capacity")).get("storage")) or None,
        "access_modes": [m for m in _l(spec.get("accessModes")) if isinstance(m, str)],
    }


def provider_of_controller(controller):
    for marker, provider in PROVIDER_CONTROLLERS:
        if marker in _s(controller):
            return provider
    return "unknown" if controller else None


def control_plane_provider(name):
    """istiod / istiod-<revision> / kgateway / agentgateway -> provider, else None."""
    for prefix, provider in CONTROL_PLANE_DEPLOYMENTS:
        if name == prefix or (prefix == "istiod" and name.startswith("istiod-")):
            return provider
    return None


def normalize_crds(items):
    """Gateway API and GAIE CRD facts from a metadata-only CRD list."""
    bundles = {
        "gateway_api": {"crds": [], "version": None, "channel": None, "managed_by": []},
        "gaie": {"crds": [], "version": None, "channel": None, "managed_by": []},
    }
    for obj in _l(items):
        meta = _meta(obj)
        name = _s(meta.get("name"))
        group = name.split(".", 1)[1] if "." in name else ""
        annotations = _str_map(meta.get("annotations"))
        managers = sorted(set(_s(_d(m).get("manager")) for m in _l(meta.get("managedFields")) if _s(_d(m).get("manager"))))
        if group == GATEWAY_GROUP:
            bundle = bundles["gateway_api"]
            version = annotations.get(GATEWAY_API_VERSION_ANNOTATION)
            channel = annotations.get(GATEWAY_API_CHANNEL_ANNOTATION)
        elif group in POOL_GROUPS:
            bundle = bundles["gaie"]
            version = annotations.get(GAIE_VERSION_ANNOTATION)
            channel = None
        else:
            continue
        bundle["crds"].append(name)
        # The Gateway/InferencePool CRD carries the version of the whole bundle.
        if version and (bundle["version"] is None or name.startswith(("gateways.", "inferencepools."))):
            bundle["version"] = version
        if channel and bundle["channel"] is None:
            bundle["channel"] = channel
        for manager in managers:
            if manager not in bundle["managed_by"]:
                bundle["managed_by"].append(manager)
    for bundle in bundles.values():
        bundle["crds"].sort()
    return bundles


def _uid_range(namespace_obj):
    """'1000880000/10000' -> (1000880000, 1000889999), else None."""
    value = _str_map(_meta(namespace_obj).get("annotations")).get(OPENSHIFT_UID_RANGE_ANNOTATION, "")
    found = re.match(r"^\s*(\d+)/(\d+)\s*$", value)
    if not found:
        return None
    start, size = int(found.group(1)), int(found.group(2))
    return [start, start + size - 1]


def _items(raw, key):
    return _l(_d(_d(_d(raw).get("lists")).get(key)).get("items"))


def _listed(raw, key):
    """How a kind was read: {"served": bool, "read": bool, "error": str|None}."""
    entry = _d(_d(_d(raw).get("lists")).get(key))
    return {
        "served": entry.get("served") is True,
        "read": "items" in entry,
        "error": entry.get("error") if isinstance(entry.get("error"), str) else None,
    }


def normalize(raw):
    """Raw API objects (``raw`` from the gather shell) -> an unlinked model."""
    raw = _d(raw)
    namespace = _s(raw.get("namespace"))
    discovery = _d(raw.get("discovery"))

    pools = [normalize_pool(o, POOL_GROUP_V1) for o in _items(raw, "inferencepools_v1")]
    pools += [normalize_pool(o, POOL_GROUP_V1ALPHA2) for o in _items(raw, "inferencepools_v1alpha2")]

    # OpenShift has a ClusterVersion "version"; a served CRD alone (the lab's
    # fixture CRDs) does not make a cluster OpenShift.
    clusterversions = [cv for cv in _items(raw, "clusterversions") if _name(cv) == "version"]
    openshift = bool(clusterversions)
    ocp_version = None
    for cv in clusterversions:
        status = _d(_d(cv).get("status"))
        history = _l(status.get("history")) or [{}]
        ocp_version = _s(_d(status.get("desired")).get("version")) or _s(_d(history[0]).get("version")) or None

    gateway_classes = []
    for obj in _items(raw, "gatewayclasses"):
        controller = _s(_d(_d(obj).get("spec")).get("controllerName"))
        gateway_classes.append({
            "name": _name(obj),
            "controller": controller,
            "provider": provider_of_controller(controller),
            "conditions": conditions_map(_d(_d(obj).get("status")).get("conditions")),
        })

    control_plane = []
    for obj in _items(raw, "control_plane_deployments"):
        deployment = normalize_deployment(obj)
        provider = control_plane_provider(deployment["name"])
        if provider:
            deployment["provider"] = provider
            control_plane.append(deployment)

    smcps = []
    for obj in _items(raw, "servicemeshcontrolplanes"):
        smcps.append({
            "name": _name(obj),
            "namespace": _s(_meta(obj).get("namespace")),
            "version": _s(_d(_d(obj).get("spec")).get("version")) or None,
        })

    crds = normalize_crds(_items(raw, "crds"))
    groups = _d(discovery.get("groups"))
    crds["gateway_api"]["served_versions"] = sorted(_d(_d(groups.get(GATEWAY_GROUP)).get("versions")))
    crds["gaie"]["pool_api_versions"] = [
        group + "/" + version
        for group in POOL_GROUPS
        for version in sorted(_d(_d(groups.get(group)).get("versions")))
        if served_version(discovery, group, "inferencepools", (version,))
    ]

    model = {
        "namespace": namespace,
        # True / False (404) / None (not readable, e.g. 403 on namespaces)
        "namespace_found": True if isinstance(raw.get("namespace_object"), dict) else (False if raw.get("namespace_object") is False else None),
        "platform": {
            "openshift": openshift,
            "openshift_version": ocp_version,
            "namespace_uid_range": _uid_range(raw.get("namespace_object")),
            "service_mesh_control_planes": smcps,
        },
        "api": {
            "aggregated_discovery": discovery.get("aggregated") is True,
            "groups": served_groups(discovery),
            "reads": dict((key, _listed(raw, key)) for key in sorted(_d(raw.get("lists")))),
        },
        "crds": crds,
        "control_plane": control_plane,
        "gateway_classes": gateway_classes,
        "gateways": [normalize_gateway(o) for o in _items(raw, "gateways")],
        "httproutes": [normalize_httproute(o) for o in _items(raw, "httproutes")],
        "inferencepools": pools,
        "objectives": [normalize_objective(o, "InferenceObjective") for o in _items(raw, "inferenceobjectives")]
        + [normalize_objective(o, "InferenceModel") for o in _items(raw, "inferencemodels")],
        "deployments": [normalize_deployment(o) for o in _items(raw, "deployments")],
        "pods": [normalize_pod(o) for o in _items(raw, "pods")],
        "services": [normalize_service(o) for o in _items(raw, "services")],
        "configmaps": [{"name": _name(o), "data": _str_map(_d(o).get("data"))} for o in _items(raw, "configmaps")],
        "gateway_parameters": [
            {"kind": "GatewayParameters", "name": _name(o), "spec": _d(_d(o).get("spec"))}
            for o in _items(raw, "gatewayparameters")
        ] + [
            {"kind": "AgentgatewayParameters", "name": _name(o), "spec": _d(_d(o).get("spec"))}
            for o in _items(raw, "agentgatewayparameters")
        ],
        "helm_releases": helm_releases(_items(raw, "helm_secrets") + _items(raw, "control_plane_helm_secrets")),
        "pvcs": [normalize_pvc(o) for o in _items(raw, "pvcs")],
        "ingresses": [_normalize_ingress(o) for o in _items(raw, "ingresses")],
        "openshift_routes": [_normalize_openshift_route(o) for o in _items(raw, "routes")],
    }
    gateway_api = crds["gateway_api"]
    version = parse_version(ocp_version)
    gateway_api["openshift_managed"] = bool(openshift and (
        any("ingress-operator" in m for m in gateway_api["managed_by"])
        or (version is not None and version[:2] >= (4, 19))
    ))
    return model


def _normalize_ingress(obj):
    spec = _d(_d(obj).get("spec"))
    backends = []
    default = _d(_d(spec.get("defaultBackend")).get("service"))
    if _s(default.get("name")):
        backends.append({"host": "", "service": default["name"], "port": _int(_d(default.get("port")).get("number"))})
    for rule in _l(spec.get("rules")):
        rule = _d(rule)
        for path in _l(_d(rule.get("http")).get("paths")):
            service = _d(_d(_d(path).get("backend")).get("service"))
            if _s(service.get("name")):
                backends.append({
                    "host": _s(rule.get("host")),
                    "service": service["name"],
                    "port": _int(_d(service.get("port")).get("number")),
                })
    addresses = []
    for entry in _l(_d(_d(_d(obj).get("status")).get("loadBalancer")).get("ingress")):
        value = _s(_d(entry).get("ip")) or _s(_d(entry).get("hostname"))
        if value:
            addresses.append(value)
    return {"name": _name(obj), "backends": backends, "addresses": addresses, "tls": bool(_l(spec.get("tls")))}


def _normalize_openshift_route(obj):
    spec = _d(_d(obj).get("spec"))
    admitted = False
    for ingress in _l(_d(_d(obj).get("status")).get("ingress")):
        if condition_true(conditions_map(_d(ingress).get("conditions")), "Admitted"):
            admitted = True
    return {
        "name": _name(obj),
        "host": _s(spec.get("host")),
        "service": _s(_d(spec.get("to")).get("name")),
        "tls": bool(_d(spec.get("tls"))),
        "admitted": admitted,
    }


# ---------------------------------------------------------------- link

def clean_params(params):
    """Module options as the core expects them: typed, with unset values dropped."""
    params = _d(params)
    expected = _d(params.get("expected"))

    def count(value):
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    clean_expected = {
        "decode_replicas": count(expected.get("decode_replicas")),
        "prefill_replicas": count(expected.get("prefill_replicas")),
        "pd_enabled": expected.get("pd_enabled") if isinstance(expected.get("pd_enabled"), bool) else None,
        "chart_versions": dict((k, v) for k, v in _d(expected.get("chart_versions")).items() if isinstance(k, str) and isinstance(v, str) and v),
        "crd_versions": dict((k, v) for k, v in _d(expected.get("crd_versions")).items() if k in ("gateway_api", "gaie") and isinstance(v, str) and v),
        "model": _s(expected.get("model")) or None,
        "provider": _s(expected.get("provider")) or None,
        "pool_api_version": _s(expected.get("pool_api_version")) or None,
    }
    return {
        "namespace": _s(params.get("namespace")),
        "gateway_name": _s(params.get("gateway_name")) or None,
        "httproute_name": _s(params.get("httproute_name")) or None,
        "inferencepool_name": _s(params.get("inferencepool_name")) or None,
        "release_postfix": _s(params.get("release_postfix")) or None,
        "control_plane_namespaces": [ns for ns in _l(params.get("control_plane_namespaces")) if isinstance(ns, str) and ns],
        "expected": dict((k, v) for k, v in clean_expected.items() if v not in (None, {})),
    }


def _by_name(items, name):
    for item in items:
        if item.get("name") == name:
            return item
    return None


def _derive_release_postfix(model, params):
    explicit = _s(params.get("release_postfix"))
    if explicit:
        return explicit, "option"
    for gateway in model["gateways"]:
        found = re.match(r"^infra-(.+)-inference-gateway$", gateway["name"])
        if found:
            return found.group(1), "derived from Gateway %s" % gateway["name"]
    for pool in model["inferencepools"]:
        found = re.match(r"^gaie-(.+)$", pool["name"])
        if found:
            return found.group(1), "derived from InferencePool %s" % pool["name"]
    return None, None


def _pool_backends(route):
    return [b for rule in route["rules"] for b in rule["backend_refs"] if b["kind"] == "InferencePool"]


def _route_targets(route, gateway_name, namespace):
    return any(
        ref["kind"] == "Gateway" and ref["name"] == gateway_name and ref["namespace"] == namespace
        for ref in route["parent_refs"]
    )


def _select_gateway(model, params, rn, notes):
    gateways = model["gateways"]
    explicit = _s(params.get("gateway_name"))
    if explicit:
        return _by_name(gateways, explicit)
    if rn:
        named = _by_name(gateways, "infra-%s-inference-gateway" % rn)
        if named:
            return named
    if len(gateways) == 1:
        return gateways[0]
    ranked = sorted(gateways, key=lambda g: (
        g["labels"].get("app.kubernetes.io/component") != "inference-gateway",
        not g["name"].endswith("-inference-gateway"),
        not any(_route_targets(r, g["name"], model["namespace"]) and _pool_backends(r) for r in model["httproutes"]),
        g["name"],
    ))
    if ranked:
        notes.append("%d Gateways in the namespace; chose %s (set gateway_name to pick another)" % (len(ranked), ranked[0]["name"]))
        return ranked[0]
    return None


def _select_pool(model, params, rn, gateway, notes):
    pools = model["inferencepools"]
    preferred_group = _pool_group_from_expected(params)

    def pick(name, group=None):
        matches = [p for p in pools if p["name"] == name]
        for wanted in (group, preferred_group, POOL_GROUP_V1, POOL_GROUP_V1ALPHA2):
            for pool in matches:
                if pool["group"] == wanted:
                    return pool
        return matches[0] if matches else None

    explicit = _s(params.get("inferencepool_name"))
    if explicit:
        return pick(explicit)
    if rn and pick("gaie-%s" % rn):
        return pick("gaie-%s" % rn)
    if gateway:
        for route in model["httproutes"]:
            if _route_targets(route, gateway["name"], model["namespace"]):
                for backend in _pool_backends(route):
                    pool = pick(backend["name"], backend["group"])
                    if pool:
                        return pool
    if pools:
        chosen = pick(sorted(p["name"] for p in pools)[0])
        if len(set(p["name"] for p in pools)) > 1:
            notes.append("%d InferencePools in the namespace; chose %s (set inferencepool_name to pick another)"
                         % (len(pools), chosen["name"]))
        return chosen
    return None


def _pool_group_from_expected(params):
    wanted = _s(_d(params.get("expected")).get("pool_api_version"))
    if not wanted:
        return None
    if wanted.startswith(POOL_GROUP_V1ALPHA2) or wanted == "v1alpha2":
        return POOL_GROUP_V1ALPHA2
    return POOL_GROUP_V1


def _select_route(model, params, rn, gateway, pool):
    routes = model["httproutes"]
    explicit = _s(params.get("httproute_name"))
    if explicit:
        return _by_name(routes, explicit)

    def backs_pool(route):
        return pool is not None and any(b["name"] == pool["name"] for b in _pool_backends(route))

    def targets(route):
        return gateway is not None and _route_targets(route, gateway["name"], model["namespace"])

    for wanted in (
        lambda r: targets(r) and backs_pool(r),
        lambda r: targets(r) and bool(_pool_backends(r)),
        backs_pool,
        lambda r: bool(rn) and r["name"] == "llm-d-%s" % rn,
        targets,
    ):
        for route in sorted(routes, key=lambda r: r["name"]):
            if wanted(route):
                return route
    return None


def _role_of(deployment):
    role = deployment["template_labels"].get(ROLE_LABEL, "")
    if role in DECODE_ROLES:
        return "decode"
    if role in PREFILL_ROLES:
        return "prefill"
    if deployment["name"].endswith("-prefill"):
        return "prefill"
    return "decode"


def _has_container(deployment, name):
    return any(c["name"] == name for c in deployment["containers"])


def _select_model_servers(model, rn, pool):
    deployments = model["deployments"]
    chosen = []
    if rn:
        for suffix in ("decode", "prefill"):
            named = _by_name(deployments, "ms-%s-llm-d-modelservice-%s" % (rn, suffix))
            if named:
                chosen.append(named)
    if pool and pool["selector"]:
        for deployment in deployments:
            if deployment not in chosen and selector_matches(pool["selector"], deployment["template_labels"]):
                chosen.append(deployment)
    if not chosen:
        for deployment in deployments:
            if ROLE_LABEL in deployment["template_labels"] or (
                deployment["name"].endswith(("-decode", "-prefill")) and _has_container(deployment, "vllm")
            ):
                chosen.append(deployment)
    return chosen


def pods_of(deployment, pods):
    return [p for p in pods if not p["deleting"] and selector_matches(deployment["selector"], p["labels"])]


def _argv(container):
    """command + args as one argv; shell snippets (``sh -c "vllm serve ..."``) are split."""
    argv = []
    for arg in container["command"] + container["args"]:
        if any(ch.isspace() for ch in arg):
            try:
                argv.extend(shlex.split(arg))
            except ValueError:
                argv.append(arg)
        else:
            argv.append(arg)
    return argv


def served_model_names(deployment):
    """Model names the vllm container serves (--served-model-name, else --model)."""
    for container in deployment["containers"]:
        if container["name"] != "vllm":
            continue
        flat = _argv(container)
        names = []
        for index, arg in enumerate(flat):
            if arg == "--served-model-name":
                for value in flat[index + 1:]:
                    if value.startswith("--"):
                        break
                    names.append(value)
            elif arg.startswith("--served-model-name="):
                names.append(arg.split("=", 1)[1])
        if not names:
            model_name = flag_value(flat, "--model")
            if not model_name and "serve" in flat and flat.index("serve") + 1 < len(flat):
                candidate = flat[flat.index("serve") + 1]
                model_name = None if candidate.startswith("--") else candidate
            if model_name:
                names.append(model_name)
        return names
    return []


def _select_epp(model, pool, rn):
    services = model["services"]
    deployments = model["deployments"]
    service_name = pool["epp"]["name"] if pool and pool["epp"]["name"] else ("gaie-%s-epp" % rn if rn else "")
    service = _by_name(services, service_name) if service_name else None
    deployment = None
    if service and service["selector"]:
        for candidate in deployments:
            if selector_matches(service["selector"], candidate["template_labels"]):
                deployment = candidate
                break
    if deployment is None and service_name:
        deployment = _by_name(deployments, service_name)
    if deployment is None and pool:
        for candidate in deployments:
            for container in candidate["containers"]:
                if flag_value(container["args"], "--pool-name") == pool["name"] or flag_value(container["args"], "--poolName") == pool["name"]:
                    deployment = candidate
                    break
            if deployment:
                break
    if deployment is None and pool:
        deployment = _by_name(deployments, pool["name"] + "-epp")
    return service_name or None, service, deployment


def _epp_config(model, deployment, load_yaml):
    if deployment is None:
        return None
    container = None
    for candidate in deployment["containers"]:
        if candidate["name"] == "epp" or container is None:
            container = candidate
    mounted = [c for c in model["configmaps"] if c["name"] in deployment["configmaps"]]
    return select_epp_config(container["args"] if container else [], mounted, load_yaml)


def _deployment_facts(deployment, pods):
    """Compact deployment summary with its pods, for ansible_facts."""
    return {
        "name": deployment["name"],
        "replicas": deployment["replicas"],
        "ready_replicas": deployment["ready_replicas"],
        "available_replicas": deployment["available_replicas"],
        "available": deployment["available"],
        "containers": [c["name"] for c in deployment["containers"]],
        "template_labels": deployment["template_labels"],
        "served_model_names": served_model_names(deployment),
        "pvcs": deployment["pvcs"],
        "pods": [{
            "name": p["name"],
            "ready": p["ready"],
            "phase": p["phase"],
            "node": p["node"],
            "restarts": sum(c["restart_count"] for c in p["containers"]),
            "waiting": sorted(set(c["reason"] for c in p["containers"] if c["state"] == "waiting" and c["reason"])),
        } for p in pods],
    }


def _gateway_parameters(model, gateway, load_yaml):
    """Resolve the Gateway's infrastructure.parametersRef: {read, found, spec}.

    A ConfigMap (Istio) holds YAML overlays per key; they are loaded so the
    checks can look inside them.
    """
    ref = gateway["parameters_ref"] if gateway else None
    resolved = {"read": True, "found": False, "spec": None}
    if ref is None:
        return resolved
    if ref["kind"] == "ConfigMap":
        for configmap in model["configmaps"]:
            if configmap["name"] == ref["name"]:
                spec = {}
                for key, text in configmap["data"].items():
                    try:
                        spec[key] = load_yaml(text) if load_yaml else text
                    except Exception:  # an unreadable overlay is reported by the provider, not here
                        spec[key] = text
                resolved.update(found=True, spec=spec)
        return resolved
    key = {"GatewayParameters": "gatewayparameters", "AgentgatewayParameters": "agentgatewayparameters"}.get(ref["kind"])
    resolved["read"] = bool(key) and model["api"]["reads"].get(key, {}).get("read", False)
    for params in model["gateway_parameters"]:
        if params["kind"] == ref["kind"] and params["name"] == ref["name"]:
            resolved.update(found=True, spec=params["spec"])
    return resolved


def _gateway_service(model, gateway):
    if gateway is None:
        return None
    services = model["services"]
    for service in services:
        if service["labels"].get(GATEWAY_NAME_LABEL) == gateway["name"] and any(p["port"] != 15021 for p in service["ports"]):
            return service
    return _by_name(services, gateway["name"] + "-istio") or _by_name(services, gateway["name"])


def _listener_port(gateway):
    for listener in gateway["listeners"] if gateway else []:
        if listener["protocol"] in ("HTTP", "") and listener["port"]:
            return listener["port"]
    return 80


def _url(scheme, host, port=None):
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host  # IPv6 literal
    if port is None:
        return "%s://%s" % (scheme, host)
    return "%s://%s:%s" % (scheme, host, port)


def endpoints(model, gateway, service):
    """Ways to reach the gateway, best first: external before in-cluster."""
    namespace = model["namespace"]
    result = []
    port = _listener_port(gateway)
    service_port = port
    if service:
        for candidate in service["ports"]:
            if candidate["port"] == port or candidate["name"] in ("http", "default"):
                service_port = candidate["port"]
                break
    if gateway:
        for address in gateway["addresses"]:
            value = address["value"]
            internal = (
                value.endswith((".svc", ".svc.cluster.local", ".cluster.local"))
                or (service is not None and value == service["cluster_ip"])
            )
            external = not internal and service is not None and (
                service["type"] == "LoadBalancer" and value in service["load_balancer_ingress"]
            )
            result.append({
                "type": "gateway-address",
                "url": _url("http", value, port),
                "external": external,
                "namespace": namespace,
                "service": service["name"] if service else None,
                "port": port,
            })
    service_name = service["name"] if service else None
    for route in model["openshift_routes"]:
        if service_name and route["service"] == service_name and route["host"]:
            scheme = "https" if route["tls"] else "http"
            result.append({
                "type": "openshift-route",
                "url": _url(scheme, route["host"]),
                "external": route["admitted"],
                "namespace": namespace,
                "service": service_name,
                "port": service_port,
            })
    for ingress in model["ingresses"]:
        for backend in ingress["backends"]:
            if service_name and backend["service"] == service_name:
                host = backend["host"] or (ingress["addresses"][0] if ingress["addresses"] else "")
                if host:
                    scheme = "https" if ingress["tls"] else "http"
                    result.append({
                        "type": "ingress",
                        "url": _url(scheme, host),
                        "external": bool(ingress["addresses"]),
                        "namespace": namespace,
                        "service": service_name,
                        "port": service_port,
                    })
                break
    if service:
        result.append({
            "type": "service",
            "url": "http://%s.%s.svc.cluster.local:%s" % (service["name"], namespace, service_port),
            "external": False,
            "namespace": namespace,
            "service": service["name"],
            "port": service_port,
        })
    rank = {"gateway-address": 0, "openshift-route": 1, "ingress": 2, "service": 3}
    return sorted(result, key=lambda e: (not e["external"], rank[e["type"]]))


def link(model, params, load_yaml=None):
    """Choose the stack and link its parts; returns the model with ``stack``.

    ``load_yaml`` (e.g. ``yaml.safe_load``) reads the EPP scheduling config.
    """
    params = clean_params(params)
    notes = []
    rn, rn_source = _derive_release_postfix(model, params)
    gateway = _select_gateway(model, params, rn, notes)
    pool = _select_pool(model, params, rn, gateway, notes)
    route = _select_route(model, params, rn, gateway, pool)
    epp_service_name, epp_service, epp_deployment = _select_epp(model, pool, rn)
    servers = _select_model_servers(model, rn, pool)
    pods = model["pods"]
    pool_pods = [p for p in pods if not p["deleting"] and pool and selector_matches(pool["selector"], p["labels"])]
    gateway_class = _by_name(model["gateway_classes"], gateway["class_name"]) if gateway else None
    provider = gateway_class["provider"] if gateway_class else None
    if provider is None and model["control_plane"]:
        provider = model["control_plane"][0]["provider"]
    gateway_service = _gateway_service(model, gateway)
    model["stack"] = {
        "release_postfix": rn,
        "release_postfix_source": rn_source,
        "gateway": gateway,
        "gateway_class": gateway_class,
        "gateway_service": gateway_service,
        "gateway_parameters": _gateway_parameters(model, gateway, load_yaml),
        "httproute": route,
        "inferencepool": pool,
        "epp_service_name": epp_service_name,
        "epp_service": epp_service,
        "epp_deployment": epp_deployment,
        "epp_pods": pods_of(epp_deployment, pods) if epp_deployment else [],
        "epp_config": _epp_config(model, epp_deployment, load_yaml),
        "model_servers": [{"deployment": d, "role": _role_of(d), "pods": pods_of(d, pods)} for d in servers],
        "pool_pods": pool_pods,
        "provider": provider,
        "notes": notes,
    }
    model["endpoints"] = endpoints(model, gateway, gateway_service)
    return model


def facts(model):
    """The linked model as ``ansible_facts.llmd_stack`` (plain, JSON-safe, compact)."""
    stack = model["stack"]
    gateway = stack["gateway"]
    pool = stack["inferencepool"]
    route = stack["httproute"]
    epp_deployment = stack["epp_deployment"]
    servers = {"decode": [], "prefill": []}
    for server in stack["model_servers"]:
        servers[server["role"]].append(_deployment_facts(server["deployment"], server["pods"]))
    return {
        "namespace": model["namespace"],
        "release_postfix": stack["release_postfix"],
        "provider": stack["provider"],
        "platform": model["platform"],
        "crds": model["crds"],
        "control_plane": [{
            "name": d["name"], "namespace": d["namespace"], "provider": d["provider"],
            "available": d["available"], "replicas": d["replicas"], "ready_replicas": d["ready_replicas"],
        } for d in model["control_plane"]],
        "gateway_classes": model["gateway_classes"],
        "selected": {
            "gateway": gateway["name"] if gateway else None,
            "httproute": route["name"] if route else None,
            "inferencepool": pool["name"] if pool else None,
            "inferencepool_api_version": pool["api_version"] if pool else None,
            "epp_service": stack["epp_service_name"],
            "epp_deployment": epp_deployment["name"] if epp_deployment else None,
            "gateway_service": stack["gateway_service"]["name"] if stack["gateway_service"] else None,
        },
        "gateways": model["gateways"],
        "httproutes": model["httproutes"],
        "inferencepools": model["inferencepools"],
        "objectives": model["objectives"],
        "epp": {
            "service": stack["epp_service"],
            "deployment": _deployment_facts(epp_deployment, stack["epp_pods"]) if epp_deployment else None,
            "config": stack["epp_config"],
        },
        "model_servers": servers,
        "pool_pods": [{"name": p["name"], "ready": p["ready"], "role": p["labels"].get(ROLE_LABEL)} for p in stack["pool_pods"]],
        "services": [{"name": s["name"], "type": s["type"], "ports": s["ports"]} for s in model["services"]],
        "helm_releases": model["helm_releases"],
        "pvcs": model["pvcs"],
        "endpoints": model["endpoints"],
        "api": model["api"],
        "notes": stack["notes"],
    }
