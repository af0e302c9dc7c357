"""Routing decisions of the lab's gateway data-plane simulator (pure functions).

LAB-ONLY SIMULATOR. Nothing here is used outside the local lab. It stands in
for what Envoy, programmed by Istio for the Gateway API Inference Extension,
decides for one request: which HTTPRoute rule matches, which InferencePool the
rule points at, whether the pool's endpoint picker (EPP) can be reached, and
which model-server pods are candidates. Every function works on plain dicts
as the Kubernetes API returns them (camelCase JSON) and never raises on
malformed objects; the thin shell in gateway_dataplane.py does all the I/O.

A decision is a dict. Rejections carry the HTTP answer Envoy would give:
``{"outcome": "reject", "status": 404|500|503, "body": str, "flag": str,
"detail": str, "reason": str}`` where ``flag``/``detail`` are Envoy's access
log response flag and response code details, and ``reason`` says in plain
words why (for the lab's own log).
"""

import json
import random

ISTIO_CONTROLLER = "istio.io/gateway-controller"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_GROUP_V1 = "inference.networking.k8s.io"
POOL_GROUP_V1ALPHA2 = "inference.networking.x-k8s.io"
POOL_GROUPS = (POOL_GROUP_V1, POOL_GROUP_V1ALPHA2)
DEFAULT_EPP_PORT = 9002
# Envoy's default route timeout; HTTPRoute timeouts of "0s" disable it.
DEFAULT_ROUTE_TIMEOUT_S = 15.0

BODY_NO_HEALTHY_UPSTREAM = "no healthy upstream"
BODY_FAULT_ABORT = "fault filter abort"
BODY_CONNECT_FAILURE = (
    "upstream connect error or disconnect/reset before headers. "
    "reset reason: connection failure"
)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _meta(obj):
    return _dict(_dict(obj).get("metadata"))


def obj_key(obj):
    """(namespace, name) of a namespaced object."""
    meta = _meta(obj)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def reject(status, body, flag, detail, reason):
    return {
        "outcome": "reject",
        "status": status,
        "body": body,
        "flag": flag,
        "detail": detail,
        "reason": reason,
    }


def _port_number(value):
    """An int port from an int or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


# --- InferencePool ------------------------------------------------------------


def normalize_pool(obj, group):
    """One shape for both InferencePool generations.

    v1 (inference.networking.k8s.io): selector.matchLabels, targetPorts[].number,
    endpointPickerRef{name, port.number, failureMode}; v1alpha2
    (inference.networking.x-k8s.io): flat selector, targetPortNumber,
    extensionRef{name, portNumber, failureMode}.
    """
    spec = _dict(_dict(obj).get("spec"))
    namespace, name = obj_key(obj)
    if group == POOL_GROUP_V1:
        selector = _dict(_dict(spec.get("selector")).get("matchLabels"))
        ports = [_port_number(_dict(p).get("number")) for p in _list(spec.get("targetPorts"))]
        ref = _dict(spec.get("endpointPickerRef"))
        epp_port = _port_number(_dict(ref.get("port")).get("number"))
    else:
        selector = _dict(spec.get("selector"))
        ports = [_port_number(spec.get("targetPortNumber"))]
        ref = _dict(spec.get("extensionRef"))
        epp_port = _port_number(ref.get("portNumber"))
    epp = None
    if ref.get("name"):
        epp = {
            "service": str(ref["name"]),
            "group": str(ref.get("group") or ""),
            "kind": str(ref.get("kind") or "Service"),
            "port": epp_port if epp_port is not None else DEFAULT_EPP_PORT,
            "failure_mode": "FailClose" if ref.get("failureMode") == "FailClose" else "FailOpen",
        }
    return {
        "namespace": namespace,
        "name": name,
        "group": group,
        "selector": {str(k): str(v) for k, v in selector.items()},
        "target_ports": [p for p in ports if p is not None],
        "epp": epp,
    }


# --- Gateways -----------------------------------------------------------------


def is_istio_gateway(gateway, gateway_classes):
    """True when the Gateway's class is handled by Istio's gateway controller."""
    class_name = _dict(_dict(gateway).get("spec")).get("gatewayClassName")
    gclass = _dict(gateway_classes).get(class_name)
    return _dict(_dict(gclass).get("spec")).get("controllerName") == ISTIO_CONTROLLER


def gateway_listener_ports(gateway):
    ports = []
    for listener in _list(_dict(_dict(gateway).get("spec")).get("listeners")):
        port = _port_number(_dict(listener).get("port"))
        if port is not None and port not in ports:
            ports.append(port)
    return ports


def gateway_forward_ports(gateway, service):
    """Pod ports a port-forward to the gateway may reach: listener ports plus
    the numeric targetPorts the gateway Service maps them to."""
    ports = gateway_listener_ports(gateway)
    for sport in _list(_dict(_dict(service).get("spec")).get("ports")):
        sport = _dict(sport)
        if _port_number(sport.get("port")) in gateway_listener_ports(gateway):
            target = _port_number(sport.get("targetPort"))
            if target is not None and target not in ports:
                ports.append(target)
    return ports


def pod_is_running(pod):
    pod = _dict(pod)
    return _dict(pod.get("status")).get("phase") == "Running" and not _meta(pod).get(
        "deletionTimestamp"
    )


def pod_is_ready(pod):
    """Running, Ready=True and not terminating."""
    if not pod_is_running(pod):
        return False
    for cond in _list(_dict(_dict(pod).get("status")).get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def gateway_pods(gateway, pods):
    """Running pods of a Gateway (label gateway.networking.k8s.io/gateway-name)."""
    namespace, name = obj_key(gateway)
    found = [
        p
        for p in _list(pods)
        if obj_key(p)[0] == namespace
        and _dict(_meta(p).get("labels")).get(GATEWAY_NAME_LABEL) == name
        and pod_is_running(p)
    ]
    return sorted(found, key=obj_key)


# --- HTTPRoutes ---------------------------------------------------------------


def _parent_targets_gateway(parent_ref, route_namespace, gateway):
    ref = _dict(parent_ref)
    gw_ns, gw_name = obj_key(gateway)
    return (
        str(ref.get("group") or GATEWAY_GROUP) == GATEWAY_GROUP
        and str(ref.get("kind") or "Gateway") == "Gateway"
        and ref.get("name") == gw_name
        and str(ref.get("namespace") or route_namespace) == gw_ns
    )


def _condition(conditions, cond_type):
    for cond in _list(conditions):
        cond = _dict(cond)
        if cond.get("type") == cond_type:
            return cond
    return {}


def route_parent_status(route, gateway):
    """The status.parents[] entry written for this Gateway, or {}."""
    route_ns = obj_key(route)[0]
    for parent in _list(_dict(_dict(route).get("status")).get("parents")):
        parent = _dict(parent)
        if _parent_targets_gateway(parent.get("parentRef"), route_ns, gateway):
            return parent
    return {}


def _namespace_allowed(gateway, route_namespace):
    gw_ns = obj_key(gateway)[0]
    listeners = _list(_dict(_dict(gateway).get("spec")).get("listeners"))
    if not listeners:
        return False
    for listener in listeners:
        allowed = _dict(_dict(_dict(listener).get("allowedRoutes")).get("namespaces"))
        frm = allowed.get("from") or "Same"
        # Selector-based admission needs Namespace labels; the lab admits them.
        if frm in ("All", "Selector") or (frm == "Same" and route_namespace == gw_ns):
            return True
    return False


def attached_routes(gateway, routes):
    """HTTPRoutes Istio would have programmed into this Gateway's Envoy: a
    parentRef names the Gateway, the listener admits the namespace, and the
    route's status parent for this Gateway says Accepted=True."""
    attached = []
    for route in _list(routes):
        route_ns = obj_key(route)[0]
        refs = _list(_dict(_dict(route).get("spec")).get("parentRefs"))
        if not any(_parent_targets_gateway(r, route_ns, gateway) for r in refs):
            continue
        if not _namespace_allowed(gateway, route_ns):
            continue
        accepted = _condition(route_parent_status(route, gateway).get("conditions"), "Accepted")
        if accepted.get("status") == "True":
            attached.append(route)
    return attached


def _path_matches(path_match, path):
    kind = path_match.get("type") or "PathPrefix"
    value = str(path_match.get("value") or "/")
    path = path.split("?", 1)[0]
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    return False  # RegularExpression is not simulated


def _headers_match(header_matches, headers):
    lowered = {str(k).lower(): str(v) for k, v in _dict(headers).items()}
    for match in _list(header_matches):
        match = _dict(match)
        if (match.get("type") or "Exact") != "Exact":
            return False
        if lowered.get(str(match.get("name", "")).lower()) != str(match.get("value", "")):
            return False
    return True


def _host_matches(hostnames, host):
    if not hostnames:
        return True
    host = (host or "").split(":", 1)[0].lower()
    for name in hostnames:
        name = str(name).lower()
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def _match_precedence(match):
    """Gateway API precedence: Exact before prefix, longer prefix first, then
    more header matches, then a method match."""
    path = _dict(match.get("path"))
    exact = (path.get("type") or "PathPrefix") == "Exact"
    return (
        0 if exact else 1,
        -len(str(path.get("value") or "/")),
        -len(_list(match.get("headers"))),
        0 if match.get("method") else 1,
    )


def match_request(routes, method, path, headers):
    """(route, rule) for the request, by Gateway API precedence across all
    attached routes; ties go to the oldest route, then namespace/name. None
    when nothing matches (Envoy answers 404)."""
    candidates = []
    host = _dict(headers).get("host") or _dict(headers).get("Host") or ""
    for route in _list(routes):
        spec = _dict(_dict(route).get("spec"))
        if not _host_matches(_list(spec.get("hostnames")), host):
            continue
        created = str(_meta(route).get("creationTimestamp") or "")
        for rule in _list(spec.get("rules")):
            rule = _dict(rule)
            matches = _list(rule.get("matches")) or [{"path": {"type": "PathPrefix", "value": "/"}}]
            for match in matches:
                match = _dict(match)
                if match.get("method") and str(match["method"]).upper() != method.upper():
                    continue
                if not _path_matches(_dict(match.get("path")) or {"type": "PathPrefix", "value": "/"}, path):
                    continue
                if not _headers_match(match.get("headers"), headers):
                    continue
                candidates.append((_match_precedence(match), created, obj_key(route), route, rule))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    return candidates[0][3], candidates[0][4]


def pick_backend_ref(rule, rng=random):
    """One backendRef of the rule, chosen by weight (Envoy weighted clusters)."""
    refs = [_dict(r) for r in _list(_dict(rule).get("backendRefs"))]
    weighted = [(r, r.get("weight", 1)) for r in refs]
    weighted = [(r, w) for r, w in weighted if isinstance(w, int) and not isinstance(w, bool) and w > 0]
    if not weighted:
        return None
    total = sum(weight for _ref, weight in weighted)
    point = rng.uniform(0, total)
    for ref, weight in weighted:
        point -= weight
        if point <= 0:
            return ref
    return weighted[-1][0]


def route_timeout_seconds(rule):
    """The rule's request timeout in seconds, or None when disabled ("0s")."""
    timeouts = _dict(_dict(rule).get("timeouts"))
    value = timeouts.get("request", timeouts.get("backendRequest"))
    if value is None:
        return DEFAULT_ROUTE_TIMEOUT_S
    seconds = parse_duration(value)
    if seconds is None:
        return DEFAULT_ROUTE_TIMEOUT_S
    return seconds or None


def parse_duration(value):
    """Seconds of a Gateway API duration such as "0s", "1h30m", "500ms"."""
    if not isinstance(value, str) or not value:
        return None
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, number, i = 0.0, "", 0
    while i < len(value):
        char = value[i]
        if char.isdigit():
            number += char
            i += 1
            continue
        unit = "ms" if value[i:i + 2] == "ms" else char
        if not number or unit not in units:
            return None
        total += int(number) * units[unit]
        number = ""
        i += len(unit)
    return None if number else total


# --- Selectors, Services, PortForwards ---------------------------------------


def selector_matches(selector, labels):
    """A non-empty equality selector matches when every key/value is present."""
    selector, labels = _dict(selector), _dict(labels)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pool_candidates(pool, pods):
    """Ready, non-terminating pods in the pool's namespace matching its selector."""
    found = [
        p
        for p in _list(pods)
        if obj_key(p)[0] == pool["namespace"]
        and selector_matches(pool["selector"], _meta(p).get("labels"))
        and pod_is_ready(p)
    ]
    return sorted(found, key=obj_key)


def service_pods(service, pods):
    """Pods a Service selects (any readiness)."""
    namespace = obj_key(service)[0]
    selector = _dict(_dict(_dict(service).get("spec")).get("selector"))
    found = [
        p
        for p in _list(pods)
        if obj_key(p)[0] == namespace and selector_matches(selector, _meta(p).get("labels"))
    ]
    return sorted(found, key=obj_key)


def service_exposes(service, port):
    return any(
        _port_number(_dict(p).get("port")) == port
        for p in _list(_dict(_dict(service).get("spec")).get("ports"))
    )


def forward_target(portforward, port):
    """(address, port) a kwok PortForward maps a pod port to, or None.

    Mirrors kwok: a forward listing the port wins; a forward without ports is
    the default for every port."""
    default = None
    for fwd in _list(_dict(_dict(portforward).get("spec")).get("forwards")):
        fwd = _dict(fwd)
        target = _dict(fwd.get("target"))
        address, tport = target.get("address"), _port_number(target.get("port"))
        if not address or tport is None:
            continue
        ports = [_port_number(p) for p in _list(fwd.get("ports"))]
        if not ports and default is None:
            default = (str(address), tport)
        elif port in ports:
            return (str(address), tport)
    return default


# --- EPP reachability ---------------------------------------------------------


def epp_status(pool, services, pods):
    """Whether Envoy's ext_proc call can reach the pool's endpoint picker.

    Returns {"available": bool, "reason": str, "pods": [ready EPP pods],
    "all_pods": [every pod the EPP Service selects]}."""
    result = {"available": False, "reason": "", "pods": [], "all_pods": []}
    epp = pool.get("epp")
    if not epp:
        result["reason"] = "the pool names no endpoint picker"
        return result
    if epp["kind"] != "Service" or epp["group"] not in ("", "core"):
        result["reason"] = "endpoint picker ref %s/%s is not a core Service" % (epp["group"], epp["kind"])
        return result
    service = _dict(services).get((pool["namespace"], epp["service"]))
    if not service:
        result["reason"] = "EPP Service %s/%s not found" % (pool["namespace"], epp["service"])
        return result
    if not service_exposes(service, epp["port"]):
        result["reason"] = "EPP Service %s/%s does not expose port %s" % (
            pool["namespace"], epp["service"], epp["port"])
        return result
    selected = service_pods(service, pods)
    result["all_pods"] = selected
    result["pods"] = [p for p in selected if pod_is_ready(p)]
    if not result["pods"]:
        result["reason"] = "EPP Service %s/%s selects no ready pod" % (pool["namespace"], epp["service"])
        return result
    result["available"] = True
    return result


# --- The request plan ---------------------------------------------------------


def plan_request(view, gateway_key, method, path, headers, rng=random):
    """Envoy's routing decision for one request up to the EPP call.

    Returns a rejection, or {"outcome": "pool", "route", "rule", "pool",
    "epp": epp_status(...), "candidates": [...], "timeout_s": float|None}.
    Request-body checks and scheduling happen after this (the EPP's part)."""
    gateway = _dict(_dict(view).get("gateways")).get(gateway_key)
    if not gateway:
        return reject(404, "", "NR", "route_not_found", "gateway %s/%s is gone" % gateway_key)
    routes = attached_routes(gateway, _dict(view).get("routes"))
    matched = match_request(routes, method, path, headers)
    if matched is None:
        return reject(404, "", "NR", "route_not_found",
                      "no HTTPRoute attached to gateway %s/%s matches %s %s" % (gateway_key + (method, path)))
    route, rule = matched
    route_ns, route_name = obj_key(route)
    resolved = _condition(route_parent_status(route, gateway).get("conditions"), "ResolvedRefs")
    if resolved.get("status") != "True":
        return reject(500, BODY_FAULT_ABORT, "FI", "fault_filter_abort",
                      "HTTPRoute %s/%s has ResolvedRefs=%s (%s)" % (
                          route_ns, route_name, resolved.get("status", "Unknown"), resolved.get("reason", "")))
    backend = pick_backend_ref(rule, rng)
    if backend is None:
        return reject(500, BODY_FAULT_ABORT, "FI", "fault_filter_abort",
                      "HTTPRoute %s/%s rule has no usable backendRef" % (route_ns, route_name))
    group = str(backend.get("group") or "")
    kind = str(backend.get("kind") or "Service")
    if kind != "InferencePool" or group not in POOL_GROUPS:
        return reject(500, BODY_FAULT_ABORT, "FI", "fault_filter_abort",
                      "backendRef %s/%s %s is not an InferencePool (other backends are not simulated)" % (
                          group, kind, backend.get("name")))
    pool_ns = str(backend.get("namespace") or route_ns)
    if pool_ns != route_ns and not reference_granted(view, route_ns, pool_ns, group, backend.get("name")):
        return reject(500, BODY_FAULT_ABORT, "FI", "fault_filter_abort",
                      "no ReferenceGrant in %s allows HTTPRoute %s/%s to reach InferencePool %s" % (
                          pool_ns, route_ns, route_name, backend.get("name")))
    pool = _dict(_dict(view).get("pools")).get((pool_ns, str(backend.get("name")), group))
    if not pool:
        return reject(500, BODY_FAULT_ABORT, "FI", "fault_filter_abort",
                      "InferencePool %s/%s (%s) not found" % (pool_ns, backend.get("name"), group))
    pods = _dict(view).get("pods")
    return {
        "outcome": "pool",
        "route": route,
        "rule": rule,
        "pool": pool,
        "epp": epp_status(pool, _dict(view).get("services"), pods),
        "candidates": pool_candidates(pool, pods),
        "timeout_s": route_timeout_seconds(rule),
    }


def reference_granted(view, from_ns, to_ns, group, name):
    """True when a ReferenceGrant in to_ns lets HTTPRoutes of from_ns refer to
    the InferencePool `name`."""
    for grant in _list(_dict(view).get("reference_grants")):
        if obj_key(grant)[0] != to_ns:
            continue
        spec = _dict(_dict(grant).get("spec"))
        from_ok = any(
            _dict(f).get("group") == GATEWAY_GROUP and _dict(f).get("kind") == "HTTPRoute"
            and _dict(f).get("namespace") == from_ns
            for f in _list(spec.get("from"))
        )
        to_ok = any(
            _dict(t).get("group") == group and _dict(t).get("kind") == "InferencePool"
            and _dict(t).get("name") in (None, "", name)
            for t in _list(spec.get("to"))
        )
        if from_ok and to_ok:
            return True
    return False


def reject_epp_unavailable(pool, epp):
    """FailClose answer when the ext_proc call to the EPP cannot be made."""
    ref = pool.get("epp") or {}
    body = "ext_proc error: endpoint picker %s/%s:%s unavailable: %s (failureMode FailClose)" % (
        pool["namespace"], ref.get("service", "?"), ref.get("port", "?"), epp["reason"])
    return reject(503, body, "UH", "ext_proc_error_gRPC_error_14", epp["reason"])


# --- EPP request checks -------------------------------------------------------


def is_inference_path(method, path):
    path = path.split("?", 1)[0].rstrip("/")
    return method.upper() == "POST" and path.endswith("/completions")


def parse_inference_request(method, path, body):
    """The EPP's body checks for completions/chat requests.

    Returns {"ok": True, "kind", "model", "prompt", "stream"} or
    {"ok": False, "status": 400, "message": ...}; the message is what the EPP
    puts after "inference error: BadRequest - ". Other requests (GET
    /v1/models, ...) return {"ok": True, "kind": "passthrough"}."""
    if not is_inference_path(method, path):
        return {"ok": True, "kind": "passthrough", "model": "", "prompt": "", "stream": False}
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body or "")
    except (ValueError, UnicodeDecodeError) as exc:
        return {"ok": False, "status": 400, "message": "Error unmarshaling request body: %s" % exc}
    if not isinstance(data, dict):
        return {"ok": False, "status": 400, "message": "Error unmarshaling request body: not a JSON object"}
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return {"ok": False, "status": 400, "message": "model not found in request body"}
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list):
            return {"ok": False, "status": 400, "message": "messages is not a list"}
        parts = []
        for msg in messages:
            msg = _dict(msg)
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(str(_dict(c).get("text", "")) for c in content)
            parts.append("%s: %s" % (msg.get("role", ""), content if content is not None else ""))
        kind, prompt = "chat", "\n".join(parts)
    elif "prompt" in data:
        prompt = data["prompt"]
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        if not isinstance(prompt, str):
            return {"ok": False, "status": 400, "message": "prompt is not a string"}
        kind = "completions"
    else:
        return {"ok": False, "status": 400, "message": "prompt not found in request"}
    return {"ok": True, "kind": kind, "model": model, "prompt": prompt, "stream": bool(data.get("stream"))}


def epp_error_body(code, message):
    """Body of an EPP immediate response (errutil.Error's string form)."""
    return "inference error: %s - %s" % (code, message)


# --- The cluster view and the kwok objects the simulator owns ----------------

MANAGED_BY = ("app.kubernetes.io/managed-by", "llmd-lab-gateway-dataplane")


def build_view(raw):
    """Index the listed objects for the request path.

    raw: {"gateway_classes", "gateways", "routes", "pools_v1",
    "pools_v1alpha2", "services", "pods", "portforwards", "configmaps",
    "reference_grants"}, each a list of API objects (missing kinds: [])."""
    raw = _dict(raw)
    pools = {}
    for group, items in ((POOL_GROUP_V1, raw.get("pools_v1")), (POOL_GROUP_V1ALPHA2, raw.get("pools_v1alpha2"))):
        for obj in _list(items):
            pool = normalize_pool(obj, group)
            pools[(pool["namespace"], pool["name"], group)] = pool

    def keyed(items):
        return {obj_key(o): o for o in _list(items) if isinstance(o, dict)}

    return {
        "gateway_classes": {_meta(c).get("name"): c for c in _list(raw.get("gateway_classes"))},
        "gateways": keyed(raw.get("gateways")),
        "routes": [r for r in _list(raw.get("routes")) if isinstance(r, dict)],
        "pools": pools,
        "services": keyed(raw.get("services")),
        "pods": [p for p in _list(raw.get("pods")) if isinstance(p, dict)],
        "portforwards": keyed(raw.get("portforwards")),
        "configmaps": keyed(raw.get("configmaps")),
        "reference_grants": [g for g in _list(raw.get("reference_grants")) if isinstance(g, dict)],
    }


def served_gateways(view):
    """Keys of the Istio-class Gateways that have at least one Running pod."""
    view = _dict(view)
    keys = []
    for key, gateway in sorted(_dict(view.get("gateways")).items()):
        if is_istio_gateway(gateway, view.get("gateway_classes")) and gateway_pods(gateway, view.get("pods")):
            keys.append(key)
    return keys


def container_log_path(log_dir, namespace, pod, container):
    return "%s/pods/%s/%s/%s.log" % (log_dir.rstrip("/"), namespace, pod, container)


def epp_pods_by_pool(view):
    """{pool key: [pods the pool's EPP Service selects]} (any readiness)."""
    view = _dict(view)
    found = {}
    for key, pool in sorted(_dict(view.get("pools")).items()):
        found[key] = epp_status(pool, view.get("services"), view.get("pods"))["all_pods"]
    return found


def desired_objects(view, listener_ports, log_dir):
    """The kwok objects the simulator should own, as {(kind, ns, name): spec}.

    For every served gateway pod: a PortForward sending the gateway's ports
    to the simulator's listener, and Logs for its istio-proxy container. For
    every pod behind a pool's EPP Service: Logs for its epp container."""
    view = _dict(view)
    wanted = {}
    for key, local_port in sorted(_dict(listener_ports).items()):
        gateway = _dict(view.get("gateways")).get(key)
        if not gateway:
            continue
        service = _dict(view.get("services")).get((key[0], key[1] + "-istio"))
        ports = gateway_forward_ports(gateway, service)
        for pod in gateway_pods(gateway, view.get("pods")):
            namespace, name = obj_key(pod)
            wanted[("PortForward", namespace, name)] = {
                "forwards": [{"ports": ports, "target": {"address": "127.0.0.1", "port": local_port}}]
            }
            wanted[("Logs", namespace, name)] = {"logs": [{
                "containers": ["istio-proxy"],
                "logsFile": container_log_path(log_dir, namespace, name, "istio-proxy"),
                "follow": True,
            }]}
    for pods in epp_pods_by_pool(view).values():
        for pod in pods:
            namespace, name = obj_key(pod)
            wanted[("Logs", namespace, name)] = {"logs": [{
                "containers": ["epp"],
                "logsFile": container_log_path(log_dir, namespace, name, "epp"),
                "follow": True,
            }]}
    return wanted


def is_managed(obj):
    return _dict(_meta(obj).get("labels")).get(MANAGED_BY[0]) == MANAGED_BY[1]


def object_actions(wanted, existing):
    """What to create, replace and delete so the owned kwok objects match.

    existing: {(kind, ns, name): object}. Objects someone else owns (no
    managed-by label) are never touched; they come back as "foreign"."""
    actions = {"create": [], "replace": [], "delete": [], "foreign": []}
    for key, spec in sorted(wanted.items()):
        current = existing.get(key)
        if current is None:
            actions["create"].append((key, spec))
        elif not is_managed(current):
            actions["foreign"].append(key)
        elif _dict(current.get("spec")) != spec:
            actions["replace"].append((key, spec))
    for key, obj in sorted(existing.items()):
        if key not in wanted and is_managed(obj):
            actions["delete"].append(key)
    return actions
