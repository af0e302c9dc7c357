"""Lab-only gateway status simulator: plays the status side of Istio's gateway controller.

The lab has no Istio control plane, so nothing would ever write Gateway,
HTTPRoute or InferencePool status, nor create the gateway's Service and
Deployment. For Gateways whose GatewayClass has controllerName
`istio.io/gateway-controller` this controller does what Istio would:

- creates `<gateway>-istio` ServiceAccount, Service (status-port 15021 plus each
  listener port; type from the Istio parameters ConfigMap, else ClusterIP) and
  Deployment (one `istio-proxy` pod that kwok marks Running), owned by the Gateway;
- writes Gateway status: addresses (the Service's address), Accepted, Programmed
  (only once the Deployment has a ready replica and the Service an address) and
  per-listener attachedRoutes and conditions;
- writes HTTPRoute status.parents (Accepted / ResolvedRefs) and InferencePool
  parent status (Accepted / ResolvedRefs, `parents` for v1, `parent` for v1alpha2).

Every condition is derived from the objects; status is written only when it
changes. Which InferencePool API groups the simulated gateway serves is
configurable, so the lab can play Istio >= 1.28 (v1 only, the default) or 1.27
(v1alpha2 only): key `servedPoolGroups` of ConfigMap `lab-gateway-sim` in
istio-system, else env LLMD_LAB_GATEWAY_SERVED_POOL_GROUPS (comma separated).

Known differences from Istio: the parameters ConfigMap's `deployment` overlay
is not applied (only the `service` type is read), listener TLS certificate
references are not resolved, and there is no data plane (see
gateway_dataplane.py). Never used outside the lab.

Structure: pure functions over plain dicts (desired_*), unit-tested in
tests/unit/lab/test_gateway_status.py, and a thin Controller that reads the
cluster once per sync, applies them and writes only the differences.
"""
import datetime
import os
import time

import yaml

from simulators import common

CONTROLLER_NAME = "istio.io/gateway-controller"
GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_GROUP_V1 = "inference.networking.k8s.io"
POOL_GROUP_V1ALPHA2 = "inference.networking.x-k8s.io"
DEFAULT_SERVED_POOL_GROUPS = (POOL_GROUP_V1,)
SERVED_GROUPS_ENV = "LLMD_LAB_GATEWAY_SERVED_POOL_GROUPS"
CONFIG_NAMESPACE = "istio-system"
CONFIG_NAME = "lab-gateway-sim"
CONFIG_KEY = "servedPoolGroups"

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
MANAGED_LABEL = "gateway.istio.io/managed"
MANAGED_VALUE = "istio.io-gateway-controller"
MANAGED_SELECTOR = MANAGED_LABEL + "=" + MANAGED_VALUE
PROXY_IMAGE = "docker.io/istio/proxyv2:1.29.1"
STATUS_PORT = 15021
DEFAULT_EPP_PORT = 9002

# Route kinds an Istio listener serves, by protocol.
ROUTE_KINDS_BY_PROTOCOL = {
    "HTTP": ("HTTPRoute", "GRPCRoute"),
    "HTTPS": ("HTTPRoute", "GRPCRoute"),
    "TLS": ("TLSRoute",),
    "TCP": ("TCPRoute",),
}
POOL_ACCEPTED_MESSAGE = "Referenced by an HTTPRoute accepted by the parentRef Gateway"
# The API server defaults the group of this placeholder like any parentRef.
PLACEHOLDER_PARENT = {"group": GATEWAY_GROUP, "kind": "Status", "name": "default"}
EPOCH = "1970-01-01T00:00:00Z"


# ---------------------------------------------------------------- small helpers

def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj):
    return obj.get("metadata") or {}


def _key(obj):
    return (_meta(obj).get("namespace", ""), _meta(obj).get("name", ""))


def _generation(obj):
    return _meta(obj).get("generation", 1)


def _condition(type_, status, reason, message, generation):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation}


def _is_true(conditions, type_):
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])


def stamp_conditions(conditions, current, now):
    """Give each condition a lastTransitionTime: the current one when its status
    did not change (so an unchanged status compares equal), else `now`."""
    previous = {c.get("type"): c for c in current or []}
    stamped = []
    for cond in conditions:
        cond = dict(cond)
        old = previous.get(cond["type"])
        if old and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
            cond["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            cond["lastTransitionTime"] = now
        stamped.append(cond)
    return stamped


def parse_served_groups(text):
    """'a, b c' -> ('a', 'b', 'c'); empty or None -> None (not configured)."""
    groups = tuple(part for part in (text or "").replace(",", " ").split() if part)
    return groups or None


def served_pool_groups(config_map, environ):
    """The InferencePool groups the simulated gateway serves: the lab ConfigMap,
    else the environment, else v1 only (Istio >= 1.28)."""
    from_config = parse_served_groups(((config_map or {}).get("data") or {}).get(CONFIG_KEY))
    return from_config or parse_served_groups(environ.get(SERVED_GROUPS_ENV)) or DEFAULT_SERVED_POOL_GROUPS


def label_selector_matches(selector, labels):
    """metav1.LabelSelector semantics (matchLabels AND matchExpressions)."""
    selector = selector or {}
    labels = labels or {}
    for name, value in (selector.get("matchLabels") or {}).items():
        if labels.get(name) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        name, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if operator == "In" and labels.get(name) not in values:
            return False
        if operator == "NotIn" and name in labels and labels[name] in values:
            return False
        if operator == "Exists" and name not in labels:
            return False
        if operator == "DoesNotExist" and name in labels:
            return False
    return True


def hostnames_intersect(listener_hostname, route_hostnames):
    """Gateway API hostname matching, including `*.` wildcards on either side."""
    if not listener_hostname or not route_hostnames:
        return True

    def matches(wild, name):
        if wild.startswith("*."):
            return name.endswith(wild[1:]) and name != wild[2:]
        return wild == name

    return any(listener_hostname == h or matches(listener_hostname, h) or matches(h, listener_hostname)
               for h in route_hostnames)


# ------------------------------------------------------------------- the world

def build_world(gateway_classes=(), gateways=(), routes=(), pools=(), services=(), deployments=(),
                grants=(), namespaces=(), config_maps=(), served_groups=DEFAULT_SERVED_POOL_GROUPS):
    """Index plain resource dicts for the desired_* functions.

    pools may mix both API groups; config_maps only needs the parameter
    ConfigMaps Gateways reference.
    """
    return {
        "classes": {_meta(c).get("name"): c for c in gateway_classes},
        "gateways": {_key(g): g for g in gateways},
        "routes": list(routes),
        "pools": {(pool_group(p),) + _key(p): p for p in pools},
        "services": {_key(s): s for s in services},
        "deployments": {_key(d): d for d in deployments},
        "grants": list(grants),
        "namespaces": {_meta(n).get("name"): _meta(n).get("labels") or {} for n in namespaces},
        "config_maps": {_key(c): c for c in config_maps},
        "served_groups": tuple(served_groups),
    }


def pool_group(pool):
    return (pool.get("apiVersion") or "").split("/")[0]


def is_managed_gateway(gateway, world):
    cls = world["classes"].get((gateway.get("spec") or {}).get("gatewayClassName"))
    return bool(cls) and (cls.get("spec") or {}).get("controllerName") == CONTROLLER_NAME


def gateway_service_name(gateway):
    return "%s-istio" % _meta(gateway).get("name")


# ------------------------------------------------- gateway infrastructure (Istio)

def parameters_ref(gateway):
    return ((gateway.get("spec") or {}).get("infrastructure") or {}).get("parametersRef")


def parameters_problem(gateway, world):
    """Why the Gateway's parametersRef cannot be used, or None."""
    ref = parameters_ref(gateway)
    if not ref:
        return None
    if ref.get("group", "") != "" or ref.get("kind") != "ConfigMap":
        return "parametersRef %s/%s is not supported: Istio takes a core ConfigMap" % (
            ref.get("group") or "core", ref.get("kind"))
    namespace = _meta(gateway).get("namespace")
    if (namespace, ref.get("name")) not in world["config_maps"]:
        return "parameters ConfigMap %s/%s not found" % (namespace, ref.get("name"))
    return None


def service_type_from_parameters(config_map):
    """spec.type of the `service` overlay in an Istio parameters ConfigMap (ClusterIP by default)."""
    try:
        overlay = yaml.safe_load(((config_map or {}).get("data") or {}).get("service") or "") or {}
    except yaml.YAMLError:
        return "ClusterIP"
    if not isinstance(overlay, dict):
        return "ClusterIP"
    return (overlay.get("spec") or {}).get("type") or "ClusterIP"


def owner_reference(gateway):
    return {"apiVersion": gateway.get("apiVersion") or GATEWAY_GROUP + "/v1", "kind": "Gateway",
            "name": _meta(gateway).get("name"), "uid": _meta(gateway).get("uid"), "controller": True}


def _workload_metadata(gateway):
    name = _meta(gateway).get("name")
    return {"name": gateway_service_name(gateway), "namespace": _meta(gateway).get("namespace"),
            "labels": {GATEWAY_NAME_LABEL: name, MANAGED_LABEL: MANAGED_VALUE},
            "ownerReferences": [owner_reference(gateway)]}


def desired_gateway_service(gateway, parameters):
    """The `<gateway>-istio` Service: status port plus one port per listener port."""
    ports = [{"name": "status-port", "port": STATUS_PORT, "protocol": "TCP", "appProtocol": "tcp"}]
    seen = {STATUS_PORT}
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        port = listener.get("port")
        if port in seen:
            continue
        seen.add(port)
        ports.append({"name": listener.get("name") or "port-%s" % port, "port": port, "protocol": "TCP",
                      "appProtocol": (listener.get("protocol") or "tcp").lower()})
    return {"apiVersion": "v1", "kind": "Service", "metadata": _workload_metadata(gateway),
            "spec": {"type": service_type_from_parameters(parameters),
                     "selector": {GATEWAY_NAME_LABEL: _meta(gateway).get("name")},
                     "ports": ports}}


def desired_gateway_deployment(gateway):
    """One istio-proxy replica, no accelerator request; kwok makes it Running."""
    name = _meta(gateway).get("name")
    labels = {GATEWAY_NAME_LABEL: name, MANAGED_LABEL: MANAGED_VALUE,
              "sidecar.istio.io/inject": "false",
              "service.istio.io/canonical-name": gateway_service_name(gateway)}
    container = {
        "name": "istio-proxy",
        "image": PROXY_IMAGE,
        "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"name": "status-port", "containerPort": STATUS_PORT, "protocol": "TCP"},
                  {"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": STATUS_PORT}},
        "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _workload_metadata(gateway),
            "spec": {"replicas": 1, "selector": {"matchLabels": {GATEWAY_NAME_LABEL: name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"serviceAccountName": gateway_service_name(gateway),
                                           "containers": [container]}}}}


def desired_gateway_service_account(gateway):
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _workload_metadata(gateway)}


def service_needs_update(current, desired):
    """Whether the live Service differs from ours in what we own (type, selector, ports)."""
    spec, want = current.get("spec") or {}, desired["spec"]
    if spec.get("type") != want["type"] or spec.get("selector") != want["selector"]:
        return True
    fields = ("name", "port", "protocol", "appProtocol")
    live = [{f: p.get(f) for f in fields} for p in spec.get("ports") or []]
    return live != [{f: p.get(f) for f in fields} for p in want["ports"]]


def service_addresses(service):
    """Gateway status addresses from the gateway Service (empty until it has one)."""
    if not service:
        return []
    spec = service.get("spec") or {}
    if spec.get("type") == "LoadBalancer":
        addresses = []
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip"):
                addresses.append({"type": "IPAddress", "value": ingress["ip"]})
            elif ingress.get("hostname"):
                addresses.append({"type": "Hostname", "value": ingress["hostname"]})
        return addresses
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        return [{"type": "IPAddress", "value": cluster_ip}]
    return []


def deployment_ready(deployment):
    return bool(deployment) and ((deployment.get("status") or {}).get("readyReplicas") or 0) >= 1


# ------------------------------------------------------------------- HTTPRoutes

def _route_namespace(route):
    return _meta(route).get("namespace")


def route_parent_refs(route):
    return [ref for ref in (route.get("spec") or {}).get("parentRefs") or []
            if ref.get("group", GATEWAY_GROUP) == GATEWAY_GROUP and ref.get("kind", "Gateway") == "Gateway"]


def parent_gateway_key(route, ref):
    return (ref.get("namespace") or _route_namespace(route), ref.get("name"))


def listener_allows_namespace(listener, gateway, route_namespace, world):
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    origin = namespaces.get("from", "Same")
    if origin == "All":
        return True
    if origin == "Selector":
        return label_selector_matches(namespaces.get("selector"), world["namespaces"].get(route_namespace))
    return route_namespace == _meta(gateway).get("namespace")


def listener_route_kinds(listener):
    """Route kinds this listener accepts: its protocol's kinds, narrowed by allowedRoutes.kinds."""
    supported = ROUTE_KINDS_BY_PROTOCOL.get(listener.get("protocol"), ())
    requested = (listener.get("allowedRoutes") or {}).get("kinds")
    if not requested:
        return list(supported)
    return [k.get("kind") for k in requested
            if k.get("group", GATEWAY_GROUP) == GATEWAY_GROUP and k.get("kind") in supported]


def evaluate_parent(route, ref, world):
    """Whether one parentRef of an HTTPRoute attaches.

    Returns None when the parent is a Gateway of another controller (not ours to
    report), else {"accepted": (status, reason, message), "listeners": [names]}.
    """
    gateway = world["gateways"].get(parent_gateway_key(route, ref))
    if gateway is None:
        namespace, name = parent_gateway_key(route, ref)
        return {"accepted": ("False", "NoMatchingParent", "Gateway %s/%s not found" % (namespace, name)),
                "listeners": []}
    if not is_managed_gateway(gateway, world):
        return None
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    if ref.get("sectionName"):
        listeners = [lsn for lsn in listeners if lsn.get("name") == ref["sectionName"]]
    if ref.get("port"):
        listeners = [lsn for lsn in listeners if lsn.get("port") == ref["port"]]
    if not listeners:
        return {"accepted": ("False", "NoMatchingParent", "no listener matches sectionName %s / port %s" % (
            ref.get("sectionName") or "-", ref.get("port") or "-")), "listeners": []}
    listeners = [lsn for lsn in listeners if "HTTPRoute" in listener_route_kinds(lsn)]
    if not listeners:
        return {"accepted": ("False", "NotAllowedByListeners", "no listener accepts HTTPRoute"), "listeners": []}
    namespace = _route_namespace(route)
    listeners = [lsn for lsn in listeners if listener_allows_namespace(lsn, gateway, namespace, world)]
    if not listeners:
        return {"accepted": ("False", "NotAllowedByListeners",
                             "listeners do not allow routes from namespace %s" % namespace), "listeners": []}
    hostnames = (route.get("spec") or {}).get("hostnames") or []
    listeners = [lsn for lsn in listeners if hostnames_intersect(lsn.get("hostname"), hostnames)]
    if not listeners:
        return {"accepted": ("False", "NoMatchingListenerHostname", "no listener hostname matches the route"),
                "listeners": []}
    return {"accepted": ("True", "Accepted", "Route was valid"), "listeners": [lsn.get("name") for lsn in listeners]}


def reference_granted(world, from_namespace, to_group, to_kind, to_namespace, to_name):
    """A ReferenceGrant in the target namespace lets HTTPRoutes of from_namespace reach the object."""
    for grant in world["grants"]:
        if _meta(grant).get("namespace") != to_namespace:
            continue
        spec = grant.get("spec") or {}
        sources = any(f.get("group") == GATEWAY_GROUP and f.get("kind") == "HTTPRoute"
                      and f.get("namespace") == from_namespace for f in spec.get("from") or [])
        targets = any(t.get("group", "") == to_group and t.get("kind") == to_kind
                      and t.get("name") in (None, to_name) for t in spec.get("to") or [])
        if sources and targets:
            return True
    return False


def route_backend_refs(route):
    for rule in (route.get("spec") or {}).get("rules") or []:
        for backend in rule.get("backendRefs") or []:
            yield backend


def resolve_backend(route, backend, world):
    """(status, reason, message) of one backendRef."""
    group, kind = backend.get("group", ""), backend.get("kind", "Service")
    namespace, name = backend.get("namespace") or _route_namespace(route), backend.get("name")
    if kind == "InferencePool":
        if group not in world["served_groups"]:
            return ("False", "InvalidKind", "InferencePool of group %s is not supported (this gateway serves %s)"
                    % (group or "core", ", ".join(world["served_groups"])))
    elif not (kind == "Service" and group == ""):
        return ("False", "InvalidKind", "backend kind %s/%s is not supported" % (group or "core", kind))
    if namespace != _route_namespace(route) and not reference_granted(
            world, _route_namespace(route), group, kind, namespace, name):
        return ("False", "RefNotPermitted", "%s %s/%s in another namespace needs a ReferenceGrant"
                % (kind, namespace, name))
    found = (world["pools"].get((group, namespace, name)) if kind == "InferencePool"
             else world["services"].get((namespace, name)))
    if found is None:
        return ("False", "BackendNotFound", "%s %s/%s not found" % (kind, namespace, name))
    return ("True", "ResolvedRefs", "All references resolved")


def resolve_route_refs(route, world):
    """ResolvedRefs of a route: the first backendRef that does not resolve, else True."""
    for backend in route_backend_refs(route):
        result = resolve_backend(route, backend, world)
        if result[0] != "True":
            return result
    return ("True", "ResolvedRefs", "All references resolved")


def route_parent_results(route, world):
    """[(parentRef, evaluation)] for the parents this controller reports on."""
    results = []
    for ref in route_parent_refs(route):
        evaluation = evaluate_parent(route, ref, world)
        if evaluation is not None:
            results.append((ref, evaluation))
    return results


def desired_route_status(route, world, now):
    """HTTPRoute status: our parent entries replaced, other controllers' kept."""
    current = (route.get("status") or {}).get("parents") or []
    ours_now = {_ref_key(p.get("parentRef") or {}, route): p for p in current
                if p.get("controllerName") == CONTROLLER_NAME}
    generation = _generation(route)
    resolved = resolve_route_refs(route, world)
    parents = [p for p in current if p.get("controllerName") != CONTROLLER_NAME]
    for ref, evaluation in route_parent_results(route, world):
        conditions = [_condition("Accepted", *evaluation["accepted"], generation=generation),
                      _condition("ResolvedRefs", *resolved, generation=generation)]
        previous = ours_now.get(_ref_key(ref, route)) or {}
        parents.append({"parentRef": dict(ref), "controllerName": CONTROLLER_NAME,
                        "conditions": stamp_conditions(conditions, previous.get("conditions"), now)})
    return {"parents": parents}


def _ref_key(ref, route):
    return (ref.get("group", GATEWAY_GROUP), ref.get("kind", "Gateway"),
            ref.get("namespace") or _route_namespace(route), ref.get("name"),
            ref.get("sectionName"), ref.get("port"))


# --------------------------------------------------------------------- Gateways

def attached_route_counts(gateway, world):
    """{listener name: number of HTTPRoutes accepted on it}."""
    counts = {lsn.get("name"): 0 for lsn in (gateway.get("spec") or {}).get("listeners") or []}
    for route in world["routes"]:
        attached = set()
        for ref, evaluation in route_parent_results(route, world):
            if parent_gateway_key(route, ref) == _key(gateway) and evaluation["accepted"][0] == "True":
                attached.update(evaluation["listeners"])
        for name in attached:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _listener_problem(listener, listeners):
    """(condition type, reason, message) making a listener invalid, or None."""
    protocol = listener.get("protocol")
    if protocol not in ROUTE_KINDS_BY_PROTOCOL:
        return ("Accepted", "UnsupportedProtocol", "protocol %s is not supported" % protocol)
    for other in listeners:
        if other is listener or other.get("port") != listener.get("port"):
            continue
        if other.get("protocol") != protocol:
            return ("Conflicted", "ProtocolConflict", "port %s is used with protocol %s by listener %s"
                    % (listener.get("port"), other.get("protocol"), other.get("name")))
        if other.get("hostname") == listener.get("hostname"):
            return ("Conflicted", "HostnameConflict", "listener %s uses the same port and hostname"
                    % other.get("name"))
    requested = (listener.get("allowedRoutes") or {}).get("kinds") or []
    if requested and len(listener_route_kinds(listener)) < len(requested):
        return ("ResolvedRefs", "InvalidRouteKinds", "some allowedRoutes.kinds are not supported on %s" % protocol)
    return None


def desired_listener_status(listener, listeners, attached, programmed, generation, current, now):
    problem = _listener_problem(listener, listeners)
    accepted = ("True", "Accepted", "No errors found")
    conflicted = ("False", "NoConflicts", "No conflicts")
    resolved = ("True", "ResolvedRefs", "No errors found")
    if problem and problem[0] == "Accepted":
        accepted = ("False", problem[1], problem[2])
    elif problem and problem[0] == "Conflicted":
        conflicted = ("True", problem[1], problem[2])
    elif problem:
        resolved = ("False", problem[1], problem[2])
    if problem:
        listener_programmed = ("False", "Invalid", problem[2])
    elif programmed:
        listener_programmed = ("True", "Programmed", "No errors found")
    else:
        listener_programmed = ("False", "Pending", "the gateway is not programmed yet")
    conditions = [_condition("Accepted", *accepted, generation=generation),
                  _condition("Conflicted", *conflicted, generation=generation),
                  _condition("ResolvedRefs", *resolved, generation=generation),
                  _condition("Programmed", *listener_programmed, generation=generation)]
    kinds = [{"group": GATEWAY_GROUP, "kind": k} for k in listener_route_kinds(listener)]
    return {"name": listener.get("name"), "supportedKinds": kinds,
            "attachedRoutes": attached.get(listener.get("name"), 0),
            "conditions": stamp_conditions(conditions, (current or {}).get("conditions"), now)}


def desired_gateway_status(gateway, attached, service, deployment, parameters_error, now):
    """Gateway status from its listeners, the attached-route counts, the gateway
    Service and Deployment, and the parametersRef check (an error string or None)."""
    generation = _generation(gateway)
    status = gateway.get("status") or {}
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    valid = [lsn for lsn in listeners if _listener_problem(lsn, listeners) is None]
    addresses = service_addresses(service) if not parameters_error else []
    if parameters_error:
        accepted = ("False", "InvalidParameters", parameters_error)
    elif not valid:
        accepted = ("False", "ListenersNotValid", "no listener is valid")
    else:
        accepted = ("True", "Accepted", "Resource accepted")
    if accepted[0] != "True":
        programmed = ("False", "Invalid", "the gateway is not accepted")
    elif not addresses:
        programmed = ("False", "AddressNotAssigned", "Service %s has no address yet"
                      % gateway_service_name(gateway))
    elif not deployment_ready(deployment):
        programmed = ("False", "Pending", "Deployment %s has no ready replica" % gateway_service_name(gateway))
    else:
        programmed = ("True", "Programmed", "Resource programmed, assigned to service(s) %s.%s.svc.cluster.local:%s"
                      % (gateway_service_name(gateway), _meta(gateway).get("namespace"),
                         ",".join(str(lsn.get("port")) for lsn in valid)))
    current_listeners = {lsn.get("name"): lsn for lsn in status.get("listeners") or []}
    conditions = [_condition("Accepted", *accepted, generation=generation),
                  _condition("Programmed", *programmed, generation=generation)]
    return {
        "addresses": addresses,
        "conditions": stamp_conditions(conditions, status.get("conditions"), now),
        "listeners": [desired_listener_status(lsn, listeners, attached, programmed[0] == "True", generation,
                                              current_listeners.get(lsn.get("name")), now) for lsn in listeners],
    }


def desired_gateway_class_status(gateway_class, now):
    """Accepted for the classes this controller owns."""
    status = gateway_class.get("status") or {}
    conditions = [_condition("Accepted", "True", "Accepted", "Handled by Istio controller",
                             _generation(gateway_class))]
    return {"conditions": stamp_conditions(conditions, status.get("conditions"), now)}


# ---------------------------------------------------------------- InferencePools

def pool_status_key(pool):
    """v1 reports `parents`, v1alpha2 `parent` (the JSON names differ)."""
    return "parents" if pool_group(pool) == POOL_GROUP_V1 else "parent"


def epp_reference(pool):
    """(group, kind, name, port) of the pool's endpoint picker."""
    spec = pool.get("spec") or {}
    if pool_group(pool) == POOL_GROUP_V1:
        ref = spec.get("endpointPickerRef") or {}
        port = (ref.get("port") or {}).get("number") or DEFAULT_EPP_PORT
    else:
        ref = spec.get("extensionRef") or {}
        port = ref.get("portNumber") or DEFAULT_EPP_PORT
    return ref.get("group", ""), ref.get("kind", "Service"), ref.get("name"), port


def resolve_epp(pool, world):
    """(status, reason, message) of the pool's ResolvedRefs condition."""
    group, kind, name, port = epp_reference(pool)
    namespace = _meta(pool).get("namespace")
    if group != "" or kind != "Service":
        return ("False", "InvalidExtensionRef", "endpoint picker kind %s/%s is not supported"
                % (group or "core", kind))
    service = world["services"].get((namespace, name))
    if service is None:
        return ("False", "InvalidExtensionRef", "endpoint picker Service %s/%s not found" % (namespace, name))
    if port not in [p.get("port") for p in (service.get("spec") or {}).get("ports") or []]:
        return ("False", "InvalidExtensionRef", "endpoint picker Service %s/%s has no port %s"
                % (namespace, name, port))
    return ("True", "ResolvedRefs", "Resolved ExtensionRef")


def routes_to_pool(pool, world):
    """HTTPRoutes with a permitted backendRef to this pool."""
    group, (namespace, name) = pool_group(pool), _key(pool)
    found = []
    for route in world["routes"]:
        for backend in route_backend_refs(route):
            if (backend.get("kind") == "InferencePool" and backend.get("group", "") == group
                    and backend.get("name") == name
                    and (backend.get("namespace") or _route_namespace(route)) == namespace
                    and (namespace == _route_namespace(route) or reference_granted(
                        world, _route_namespace(route), group, "InferencePool", namespace, name))):
                found.append(route)
                break
    return found


def desired_pool_status(pool, world, now):
    """InferencePool status, or None when the gateway does not serve the pool's
    API group (Istio then ignores the pool and its status stays as it is).

    One entry per Gateway of ours that an HTTPRoute to the pool names as parent:
    Accepted when that route is accepted there, ResolvedRefs when the endpoint
    picker Service exists with the referenced port. Entries of other
    controllers' Gateways are kept; with none left, the placeholder parent
    (kind Status, name default) is restored as the API prescribes.
    """
    if pool_group(pool) not in world["served_groups"]:
        return None
    field = pool_status_key(pool)
    generation = _generation(pool)
    current = (pool.get("status") or {}).get(field) or []
    accepted_by_gateway = {}
    for route in routes_to_pool(pool, world):
        for ref, evaluation in route_parent_results(route, world):
            gateway_key = parent_gateway_key(route, ref)
            if gateway_key not in world["gateways"]:
                continue
            accepted = evaluation["accepted"][0] == "True"
            accepted_by_gateway[gateway_key] = accepted_by_gateway.get(gateway_key, False) or accepted
    resolved = resolve_epp(pool, world)
    previous = {((p.get("parentRef") or {}).get("namespace"), (p.get("parentRef") or {}).get("name")): p
                for p in current}
    parents = [p for p in current if _kept_pool_parent(p, world)]
    for (namespace, name), accepted in sorted(accepted_by_gateway.items()):
        conditions = [
            _condition("Accepted", "True", "Accepted", POOL_ACCEPTED_MESSAGE, generation) if accepted else
            _condition("Accepted", "False", "HTTPRouteNotAccepted",
                       "no HTTPRoute to this pool is accepted by Gateway %s/%s" % (namespace, name), generation),
            _condition("ResolvedRefs", *resolved, generation=generation),
        ]
        old = previous.get((namespace, name)) or {}
        parents.append({"parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": namespace,
                                      "name": name},
                        "conditions": stamp_conditions(conditions, old.get("conditions"), now)})
    if not parents:
        placeholder = [p for p in current if _is_placeholder(p)]
        parents = placeholder or [{"parentRef": dict(PLACEHOLDER_PARENT), "conditions": [
            {"type": "Accepted", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
             "lastTransitionTime": EPOCH}]}]
    return {field: parents}


def _is_placeholder(parent):
    ref = parent.get("parentRef") or {}
    return ref.get("kind") == PLACEHOLDER_PARENT["kind"] and ref.get("name") == PLACEHOLDER_PARENT["name"]


def _kept_pool_parent(parent, world):
    """Entries this controller does not own: Gateways of other classes that still exist."""
    ref = parent.get("parentRef") or {}
    if _is_placeholder(parent) or ref.get("kind", "Gateway") != "Gateway":
        return False
    gateway = world["gateways"].get((ref.get("namespace"), ref.get("name")))
    return gateway is not None and not is_managed_gateway(gateway, world)


def status_changed(current, desired):
    """Whether writing `desired` would change the object's status (only the keys we own)."""
    current = current or {}
    return any((current.get(field) or []) != (value or []) for field, value in desired.items())


# ------------------------------------------------------------------ the I/O shell

# (apiVersion, kind) the controller reads; the optional ones may be absent.
GATEWAY_CLASS = ("gateway.networking.k8s.io/v1", "GatewayClass")
GATEWAY = ("gateway.networking.k8s.io/v1", "Gateway")
HTTP_ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute")
REFERENCE_GRANT = ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant")
POOL_V1 = (POOL_GROUP_V1 + "/v1", "InferencePool")
POOL_V1ALPHA2 = (POOL_GROUP_V1ALPHA2 + "/v1alpha2", "InferencePool")
SERVICE = ("v1", "Service")
SERVICE_ACCOUNT = ("v1", "ServiceAccount")
CONFIG_MAP = ("v1", "ConfigMap")
NAMESPACE = ("v1", "Namespace")
DEPLOYMENT = ("apps/v1", "Deployment")
# A kind that is not served is looked up again at most this often (discovery is not free).
REDISCOVER_SECONDS = 10.0
# describe() calls the simulator stale when its last sync is older than this.
STALE_SECONDS = 30.0


def heartbeat_path(lab_dir):
    return os.path.join(lab_dir, "simulators", "gateway_status.json")


def describe(lab_dir):
    """Lines for `lab.sh status` from the heartbeat the running controller writes."""
    beat = common.read_json(heartbeat_path(lab_dir), None)
    if not beat:
        return ["  gateway status simulator: not running"], False
    age = time.time() - beat.get("synced_at", 0)
    alive = common.pid_alive(beat.get("pid") or 0) and age < STALE_SECONDS
    line = "  gateway status simulator: %s (pid %s, last sync %.0fs ago, %s Istio gateway(s), serves %s)" % (
        "running" if alive else "STALE", beat.get("pid"), age, beat.get("gateways"),
        ", ".join(beat.get("served_pool_groups") or []))
    return [line], alive


class Controller:
    """Thin I/O shell around the desired_* functions; run by lab/simulators/run.py."""

    def __init__(self, api_client, lab_dir, bin_dir, log):
        from kubernetes import dynamic

        self.log = log
        # Discovery cache private to this lab, fresh per start: a cache left by an
        # earlier lab on the same address would name CRDs that no longer exist.
        self._cache_file = os.path.join(lab_dir, "simulators", "gateway_status-discovery.json")
        self._heartbeat = heartbeat_path(lab_dir)
        os.makedirs(os.path.dirname(self._cache_file), exist_ok=True)
        self._remove(self._cache_file)
        self.client = dynamic.DynamicClient(api_client, cache_file=self._cache_file)
        self._resources = {}
        self._missing_until = {}
        self._managed_accounts = set()

    def close(self):
        self._remove(self._cache_file)
        self._remove(self._heartbeat)

    @staticmethod
    def _remove(path):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    # ---- reads

    def _resource(self, api_version_kind):
        """The dynamic Resource, or None while the kind is not served."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        if api_version_kind in self._resources:
            return self._resources[api_version_kind]
        if time.monotonic() < self._missing_until.get(api_version_kind, 0.0):
            return None
        api_version, kind = api_version_kind
        try:
            resource = self.client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self._missing_until[api_version_kind] = time.monotonic() + REDISCOVER_SECONDS
            return None
        self._resources[api_version_kind] = resource
        return resource

    def _list(self, api_version_kind, **kwargs):
        """All objects of a kind as plain dicts ([] while the kind is not served)."""
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self._resource(api_version_kind)
        if resource is None:
            return []
        try:
            return resource.get(**kwargs).to_dict().get("items") or []
        except NotFoundError:
            # The CRD went away since discovery: forget it and look again later.
            self._resources.pop(api_version_kind, None)
            self._missing_until[api_version_kind] = time.monotonic() + REDISCOVER_SECONDS
            self.client.resources.invalidate_cache()
            return []

    def _read_world(self):
        gateways = self._list(GATEWAY)
        routes = self._list(HTTP_ROUTE)
        config = self._list(CONFIG_MAP, namespace=CONFIG_NAMESPACE, field_selector="metadata.name=" + CONFIG_NAME)
        parameter_maps = []
        for gateway in gateways:
            ref = parameters_ref(gateway)
            if ref and ref.get("kind") == "ConfigMap" and ref.get("group", "") == "":
                parameter_maps.extend(self._list(CONFIG_MAP, namespace=_meta(gateway).get("namespace"),
                                                 field_selector="metadata.name=" + ref.get("name", "")))
        return build_world(
            gateway_classes=self._list(GATEWAY_CLASS),
            gateways=gateways,
            routes=routes,
            pools=self._list(POOL_V1) + self._list(POOL_V1ALPHA2),
            services=self._list(SERVICE),
            deployments=self._list(DEPLOYMENT, label_selector=MANAGED_SELECTOR),
            grants=self._list(REFERENCE_GRANT),
            namespaces=self._list(NAMESPACE),
            config_maps=parameter_maps,
            served_groups=served_pool_groups(config[0] if config else None, os.environ),
        )

    # ---- writes

    def sync(self):
        if self._resource(GATEWAY) is None:
            self._beat(None)
            return  # Gateway API CRDs not installed yet
        world = self._read_world()
        self._managed_accounts = {_key(a) for a in self._list(SERVICE_ACCOUNT, label_selector=MANAGED_SELECTOR)}
        now = now_rfc3339()
        for gateway_class in world["classes"].values():
            if (gateway_class.get("spec") or {}).get("controllerName") == CONTROLLER_NAME:
                self._write_status(GATEWAY_CLASS, gateway_class, desired_gateway_class_status(gateway_class, now))
        for gateway in world["gateways"].values():
            if is_managed_gateway(gateway, world):
                self._sync_gateway(gateway, world, now)
        for route in world["routes"]:
            desired = desired_route_status(route, world, now)
            if desired["parents"] or (route.get("status") or {}).get("parents"):
                self._write_status(HTTP_ROUTE, route, desired)
        for pool in world["pools"].values():
            desired = desired_pool_status(pool, world, now)
            if desired is not None:
                self._write_status(POOL_V1 if pool_group(pool) == POOL_GROUP_V1 else POOL_V1ALPHA2, pool, desired)
        self._beat(world)

    def _beat(self, world):
        """Record a finished sync for describe() and for tests that need to know the simulator runs."""
        common.write_json_atomic(self._heartbeat, {
            "pid": os.getpid(), "synced_at": time.time(),
            "gateways": sum(1 for g in (world or {}).get("gateways", {}).values() if is_managed_gateway(g, world)),
            "served_pool_groups": list((world or {}).get("served_groups") or ()),
        })

    def _sync_gateway(self, gateway, world, now):
        problem = parameters_problem(gateway, world)
        service = None
        deployment = world["deployments"].get((_meta(gateway).get("namespace"), gateway_service_name(gateway)))
        if problem is None:
            ref = parameters_ref(gateway)
            parameters = world["config_maps"].get((_meta(gateway).get("namespace"), ref.get("name"))) if ref else None
            service = self._ensure_service(desired_gateway_service(gateway, parameters), world)
            account = desired_gateway_service_account(gateway)
            if _key(account) not in self._managed_accounts:
                self._ensure_created(SERVICE_ACCOUNT, account)
            if deployment is None:
                deployment = self._ensure_created(DEPLOYMENT, desired_gateway_deployment(gateway))
        status = desired_gateway_status(gateway, attached_route_counts(gateway, world), service, deployment,
                                        problem, now)
        self._write_status(GATEWAY, gateway, status)

    def _ensure_service(self, desired, world):
        key = (desired["metadata"]["namespace"], desired["metadata"]["name"])
        current = world["services"].get(key)
        if current is None:
            return self._ensure_created(SERVICE, desired)
        if service_needs_update(current, desired):
            self.log.info("updating Service %s/%s (type %s)", key[0], key[1], desired["spec"]["type"])
            patch = {"spec": {"type": desired["spec"]["type"], "selector": desired["spec"]["selector"],
                              "ports": desired["spec"]["ports"]}}
            return self._resource(SERVICE).patch(body=patch, name=key[1], namespace=key[0],
                                                 content_type="application/merge-patch+json").to_dict()
        return current

    def _ensure_created(self, api_version_kind, desired):
        """Create the object if it does not exist yet; return the live object."""
        from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

        resource = self._resource(api_version_kind)
        namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        try:
            return resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            pass
        self.log.info("creating %s %s/%s", api_version_kind[1], namespace, name)
        try:
            return resource.create(body=desired, namespace=namespace).to_dict()
        except ConflictError:
            return resource.get(name=name, namespace=namespace).to_dict()

    def _write_status(self, api_version_kind, obj, desired):
        if not status_changed(obj.get("status"), desired):
            return
        namespace, name = _key(obj)
        self.log.info("status %s %s: %s", api_version_kind[1], "/".join(p for p in (namespace, name) if p),
                      summarize(desired))
        self._resource(api_version_kind).status.patch(
            body={"status": desired}, name=name, namespace=namespace or None,
            content_type="application/merge-patch+json")


def summarize(status):
    """'Accepted=True Programmed=False(Pending)' style summary of a status for the log."""
    parts = []

    def add(prefix, conditions):
        for cond in conditions or []:
            text = "%s%s=%s" % (prefix, cond.get("type"), cond.get("status"))
            if cond.get("status") != "True":
                text += "(%s)" % cond.get("reason")
            parts.append(text)

    add("", status.get("conditions"))
    for entry in (status.get("parents") or status.get("parent") or []):
        ref = entry.get("parentRef") or {}
        add("%s: " % ref.get("name"), entry.get("conditions"))
    for listener in status.get("listeners") or []:
        parts.append("%s.attachedRoutes=%s" % (listener.get("name"), listener.get("attachedRoutes")))
    return " ".join(parts) or "-"
