# This file is for internal use by the llmd.stack collection only.
# It may change or disappear in any release without notice.
"""Pure checks of the llm-d success criteria over the linked stack model.

Every check yields ``{id, status, resource, detail, fix}`` entries (one per
object when several objects of a kind are checked). One root cause fails one
check: a check whose input is missing, or whose own failure is explained by
an earlier failed check, reports ``skip`` with a detail naming that check
("blocked by <id>: <what it saw>"), so a user fixes the first cause first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmd.stack.plugins.module_utils._stack_model import (
    GATEWAY_GROUP,
    MODEL_LABEL,
    POOL_GROUP_V1,
    POOL_GROUP_V1ALPHA2,
    SERVING_LABELS,
    clean_params,
    condition_true,
    duration_is_zero,
    same_version,
    selector_matches,
    served_model_names,
)

# The catalogue, in report order (docs/development.md).
CHECK_IDS = (
    "control_plane.ready",
    "gateway.exists",
    "gateway.accepted",
    "gateway.programmed",
    "gateway.address",
    "gateway.attached_routes",
    "gateway.parameters",
    "httproute.exists",
    "httproute.parent",
    "httproute.accepted",
    "httproute.resolved_refs",
    "httproute.backend",
    "httproute.backend_port",
    "httproute.timeouts",
    "inferencepool.exists",
    "inferencepool.status",
    "inferencepool.endpoints",
    "inferencepool.epp_service",
    "epp.available",
    "modelservers.decode",
    "modelservers.prefill",
    "modelservers.containers",
    "modelservers.crashloop",
    "modelservers.labels",
    "modelservers.model",
    "helm.releases",
    "crds.installed",
    "storage.model_pvc",
    "openshift.service_mesh",
)

STATUSES = ("pass", "fail", "warn", "skip")
CRASH_REASONS = ("CrashLoopBackOff",)
KGATEWAY_DEFAULT_UID = 10101


# ---------------------------------------------------------------- selection

def select_checks(checks=None, skip_checks=None):
    """Resolve ids/prefixes to check ids. Returns (selected ids, error or None)."""

    def expand(items, option):
        chosen = []
        for item in items or []:
            prefix = item.strip().rstrip("*").rstrip(".") if isinstance(item, str) else ""
            matched = [cid for cid in CHECK_IDS if cid == prefix or cid.startswith(prefix + ".")] if prefix else []
            if not matched:
                return None, "%s: unknown check id or prefix %r; known ids: %s" % (option, item, ", ".join(CHECK_IDS))
            chosen.extend(cid for cid in matched if cid not in chosen)
        return chosen, None

    selected, error = expand(checks, "checks") if checks else (list(CHECK_IDS), None)
    if error:
        return None, error
    skipped, error = expand(skip_checks, "skip_checks")
    if error:
        return None, error
    return [cid for cid in CHECK_IDS if cid in selected and cid not in skipped], None


# ---------------------------------------------------------------- helpers

def _entry(check_id, status, resource, detail, fix=""):
    return {"id": check_id, "status": status, "resource": resource, "detail": detail, "fix": fix}


class _Context(object):
    """What every check reads: the model, the options, and earlier results."""

    def __init__(self, model, params):
        self.model = model
        self.stack = model["stack"]
        self.params = clean_params(params)
        self.expected = self.params["expected"]
        self.namespace = model["namespace"]
        self.results = {}

    def read(self, key):
        return self.model["api"]["reads"].get(key, {}).get("read", False)

    def root_failure(self, check_ids, resource=None):
        """First of ``check_ids`` that failed (or was itself blocked): its root id."""
        for check_id in check_ids:
            for entry in self.results.get(check_id, []):
                if resource is not None and entry["resource"] != resource:
                    continue
                if entry["status"] == "fail":
                    return check_id
                if entry["status"] == "skip" and entry.get("_root"):
                    return entry["_root"]
        return None

    def blocked(self, check_id, resource, root, seen):
        # Name the root cause: when ``root`` was itself blocked, name what blocked it.
        for upstream in self.results.get(root, []):
            if upstream["status"] == "skip" and upstream.get("_root"):
                root = upstream["_root"]
                break
        entry = _entry(check_id, "skip", resource, "blocked by %s: %s" % (root, seen))
        entry["_root"] = root
        return entry

    def fail_or_blocked(self, check_id, resource, upstream, detail, fix):
        """A failure, unless an upstream check already failed for the same cause."""
        root = self.root_failure(upstream)
        if root:
            return self.blocked(check_id, resource, root, detail)
        return _entry(check_id, "fail", resource, detail, fix)


def _ref(kind, namespace, name):
    return "%s %s/%s" % (kind, namespace, name or "*")


def _conditions_text(conditions, ctype):
    cond = conditions.get(ctype)
    if not cond:
        return "%s not reported" % ctype
    text = "%s=%s" % (ctype, cond["status"])
    if cond["reason"]:
        text += " (%s" % cond["reason"] + (": %s)" % cond["message"] if cond["message"] else ")")
    return text


def _labels_text(labels):
    return ", ".join("%s=%s" % (k, v) for k, v in sorted(labels.items())) or "none"


def _absent_namespace(ctx):
    return " (namespace %s does not exist)" % ctx.namespace if ctx.model["namespace_found"] is False else ""


def _rn(ctx):
    return ctx.stack["release_postfix"] or "<rn>"


def _gateway_name(ctx):
    gateway = ctx.stack["gateway"]
    if gateway:
        return gateway["name"]
    explicit = ctx.params.get("gateway_name")
    if explicit:
        return explicit
    return "infra-%s-inference-gateway" % _rn(ctx) if ctx.stack["release_postfix"] else None


def _pool_name(ctx):
    pool = ctx.stack["inferencepool"]
    if pool:
        return pool["name"]
    return ctx.params.get("inferencepool_name") or ("gaie-%s" % _rn(ctx) if ctx.stack["release_postfix"] else None)


def _deployment_text(deployment):
    return "%d/%d available" % (deployment["available_replicas"], deployment["replicas"])


def _crash_looping(container):
    """Waiting in a crash reason, or restarted and not ready again."""
    if container["state"] == "waiting" and container["reason"] in CRASH_REASONS:
        return True
    return container["restart_count"] > 0 and not container["ready"] and bool(container["last_reason"])


def _pod_blame(pod):
    """Which check owns a not-ready pod: crashloop, containers, or the Deployment's own check."""
    if any(_crash_looping(container) for container in pod["containers"]):
        return "modelservers.crashloop"
    # A Running pod is the containers check's only when one of its containers is
    # not ready; all containers ready but the pod not Ready (a readiness gate, or
    # a kubelet that marked it so) stays with the Deployment's check.
    if pod["phase"] == "Running" and any(not c["ready"] for c in pod["containers"]):
        return "modelservers.containers"
    return None


def _pending_reason(pod):
    scheduled = pod.get("scheduled") or {}
    if scheduled.get("status") == "False":
        return "%s: %s" % (scheduled.get("reason") or "Unschedulable", scheduled.get("message") or "not scheduled")
    waiting = sorted(set(c["reason"] for c in pod["containers"] if c["state"] == "waiting" and c["reason"]))
    if waiting:
        return ", ".join(waiting)
    if pod["phase"] == "Running" and not pod["ready"]:
        return "Running but not Ready (%s)" % (pod.get("ready_reason") or "Ready=False")
    return pod["reason"] or pod["phase"]


# ---------------------------------------------------------------- control plane and CRDs

def check_control_plane(ctx):
    cid = "control_plane.ready"
    namespaces = ctx.params["control_plane_namespaces"]
    if not ctx.read("control_plane_deployments"):
        return [_entry(cid, "skip", "Deployments in %s" % ", ".join(namespaces), "control-plane namespaces were not read")]
    deployments = ctx.model["control_plane"]
    provider = ctx.expected.get("provider")
    entries = []
    if provider and not any(d["provider"] == provider for d in deployments):
        name = {"istio": "istiod", "kgateway": "kgateway", "agentgateway": "agentgateway"}.get(provider, provider)
        entries.append(_entry(
            cid, "fail", "Deployment %s" % name,
            "expected provider %s, but no %s Deployment in %s" % (provider, name, ", ".join(namespaces)),
            "install the %s control plane (the gateway provider step of deploy) or set "
            "control_plane_namespaces to where it runs" % provider,
        ))
    if not deployments and not entries:
        return [_entry(cid, "skip", "Deployments in %s" % ", ".join(namespaces),
                       "no istiod, kgateway or agentgateway Deployment in %s" % ", ".join(namespaces))]
    for deployment in deployments:
        resource = _ref("Deployment", deployment["namespace"], deployment["name"])
        if deployment["available"]:
            entries.append(_entry(cid, "pass", resource, "%s, Available" % _deployment_text(deployment)))
        else:
            entries.append(_entry(
                cid, "fail", resource,
                "%s, %s" % (_deployment_text(deployment), _conditions_text(deployment["conditions"], "Available")),
                "kubectl -n %s describe deployment %s; kubectl -n %s logs deployment/%s"
                % (deployment["namespace"], deployment["name"], deployment["namespace"], deployment["name"]),
            ))
    return entries


def check_crds(ctx):
    cid = "crds.installed"
    crds = ctx.model["crds"]
    groups = ctx.model["api"]["groups"]
    wanted = ctx.expected.get("crd_versions", {})
    listed = ctx.read("crds")
    entries = []

    gateway_api = crds["gateway_api"]
    resource = "CRDs %s" % GATEWAY_GROUP
    expected_version = wanted.get("gateway_api")
    managed = gateway_api.get("openshift_managed")
    if GATEWAY_GROUP not in groups:
        entries.append(_entry(
            cid, "fail", resource, "the Gateway API is not served (no %s CRDs)" % GATEWAY_GROUP,
            "install the Gateway API standard CRDs%s (kubectl apply --server-side -k "
            "github.com/kubernetes-sigs/gateway-api/config/crd?ref=<version>)"
            % (" " + expected_version if expected_version else ""),
        ))
    elif expected_version and listed and not same_version(gateway_api["version"], expected_version):
        found = gateway_api["version"] or "unknown (no %s annotation)" % "bundle-version"
        fix = ("the OpenShift Ingress Operator owns these CRDs and pins their version: set "
               "expected crd_versions.gateway_api to %s and skip the Gateway API CRD install" % (gateway_api["version"] or "the installed version")
               if managed else "apply the Gateway API CRDs at %s" % expected_version)
        entries.append(_entry(cid, "fail", resource, "Gateway API CRDs at %s, expected %s" % (found, expected_version), fix))
    else:
        detail = "Gateway API served (%s)" % ", ".join(gateway_api.get("served_versions") or [])
        if listed:
            detail += ", bundle %s, channel %s" % (gateway_api["version"] or "unknown", gateway_api["channel"] or "unknown")
        else:
            detail += "; CRD versions not read"
        if managed:
            detail += "; managed by the OpenShift Ingress Operator"
        entries.append(_entry(cid, "pass", resource, detail))

    gaie = crds["gaie"]
    resource = "CRDs gateway-api-inference-extension"
    pool_versions = gaie.get("pool_api_versions") or []
    expected_version = wanted.get("gaie")
    expected_api = ctx.expected.get("pool_api_version")
    if not pool_versions:
        entries.append(_entry(
            cid, "fail", resource, "InferencePool is not served by %s or %s" % (POOL_GROUP_V1, POOL_GROUP_V1ALPHA2),
            "install the Gateway API Inference Extension CRDs%s (kubectl apply -k "
            "github.com/kubernetes-sigs/gateway-api-inference-extension/config/crd?ref=<version>)"
            % (" " + expected_version if expected_version else ""),
        ))
    elif expected_api and not any(v == expected_api or v.endswith("/" + expected_api) for v in pool_versions):
        entries.append(_entry(
            cid, "fail", resource, "InferencePool %s is not served (served: %s)" % (expected_api, ", ".join(pool_versions)),
            "install GAIE CRDs that serve %s (v1 needs GAIE >= v1.0.0)" % expected_api,
        ))
    elif expected_version and listed and not same_version(gaie["version"], expected_version):
        entries.append(_entry(
            cid, "fail", resource, "GAIE CRDs at %s, expected %s" % (gaie["version"] or "unknown", expected_version),
            "apply the GAIE CRDs at %s" % expected_version,
        ))
    else:
        detail = "InferencePool served as %s" % ", ".join(pool_versions)
        detail += ", bundle %s" % (gaie["version"] or "unknown") if listed else "; CRD versions not read"
        entries.append(_entry(cid, "pass", resource, detail))
    return entries


# ---------------------------------------------------------------- gateway

def check_gateway_exists(ctx):
    cid = "gateway.exists"
    gateway = ctx.stack["gateway"]
    name = _gateway_name(ctx)
    resource = _ref("Gateway", ctx.namespace, name)
    if gateway is None:
        if GATEWAY_GROUP not in ctx.model["api"]["groups"]:
            return [ctx.blocked(cid, resource, "crds.installed", "Gateway kind not served")]
        found = [g["name"] for g in ctx.model["gateways"]]
        detail = ("no Gateway named %s in %s" % (name, ctx.namespace) if name else "no Gateway in %s" % ctx.namespace)
        detail += _absent_namespace(ctx)
        if found:
            detail += " (found: %s)" % ", ".join(found)
        return [_entry(cid, "fail", resource, detail,
                       "deploy the infra-%s release (llm-d-infra chart) or set gateway_name to the existing Gateway" % _rn(ctx))]
    resource = _ref("Gateway", ctx.namespace, gateway["name"])
    provider = ctx.stack["provider"]
    expected = ctx.expected.get("provider")
    gateway_class = ctx.stack["gateway_class"]
    class_text = "class %s" % (gateway["class_name"] or "<none>")
    if gateway_class:
        class_text += " (controller %s)" % gateway_class["controller"]
    if expected and provider and provider != "unknown" and provider != expected:
        return [ctx.fail_or_blocked(cid, resource, ["control_plane.ready"], "%s is provider %s, expected %s" % (class_text, provider, expected),
                                    "set gateway.provider/gatewayClassName of the infra-%s release to %s" % (_rn(ctx), expected))]
    return [_entry(cid, "pass", resource, "found, %s" % class_text)]


def _find_values(node, key, found=None):
    """All values of ``key`` anywhere in a nested dict/list."""
    found = [] if found is None else found
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            _find_values(v, key, found)
    elif isinstance(node, list):
        for item in node:
            _find_values(item, key, found)
    return found


def check_gateway_parameters(ctx):
    cid = "gateway.parameters"
    gateway = ctx.stack["gateway"]
    if gateway is None:
        return [ctx.blocked(cid, _ref("Gateway", ctx.namespace, _gateway_name(ctx)), "gateway.exists", "no Gateway")]
    ref = gateway["parameters_ref"]
    platform = ctx.model["platform"]
    openshift = platform["openshift"]
    uid_range = platform["namespace_uid_range"]
    provider = ctx.stack["provider"]
    if ref is None:
        resource = _ref("Gateway", ctx.namespace, gateway["name"])
        if openshift and provider == "kgateway":
            return [_entry(
                cid, "fail", resource,
                "kgateway on OpenShift without GatewayParameters: its proxy runs as UID %d, which restricted-v2 rejects" % KGATEWAY_DEFAULT_UID,
                "set gateway.gatewayParameters.floatingUserId: true in the infra-%s values" % _rn(ctx),
            )]
        return [_entry(cid, "pass", resource, "no infrastructure.parametersRef; %s defaults apply" % (provider or "provider"))]

    kind = ref["kind"]
    resource = _ref(kind or "parametersRef", ctx.namespace, ref["name"])
    resolved = ctx.stack["gateway_parameters"]
    if kind not in ("ConfigMap", "GatewayParameters", "AgentgatewayParameters"):
        return [_entry(cid, "warn", resource, "parametersRef kind %s is not inspected" % (kind or "<none>"))]
    if not resolved["read"]:
        group = "gateway.kgateway.dev" if kind == "GatewayParameters" else "agentgateway.dev"
        return [_entry(cid, "fail", resource, "%s is not served by the API (%s CRDs missing)" % (kind, group),
                       "install the %s CRDs (the provider's -crds chart)" % (provider or group))]
    if not resolved["found"]:
        return [_entry(cid, "fail", resource, "Gateway %s references %s %s, which does not exist" % (gateway["name"], kind, ref["name"]),
                       "create %s %s in %s or remove spec.infrastructure.parametersRef from the Gateway" % (kind, ref["name"], ctx.namespace))]
    if not openshift:
        return [_entry(cid, "pass", resource, "found")]

    # On OpenShift the proxy's UID must come from the namespace range (restricted-v2).
    spec = resolved["spec"]
    floating = any(v is True for v in _find_values(spec, "floatingUserId"))
    uids = [v for v in _find_values(spec, "runAsUser") if isinstance(v, int) and not isinstance(v, bool)]
    if floating:
        return [_entry(cid, "pass", resource, "found; floatingUserId set (UID from the namespace range)")]
    if uids and uid_range is None:
        return [_entry(cid, "warn", resource, "runAsUser %s set, but the namespace has no openshift.io/sa.scc.uid-range" % uids)]
    outside = [u for u in uids if uid_range and not uid_range[0] <= u <= uid_range[1]]
    if outside:
        return [_entry(cid, "fail", resource,
                       "runAsUser %s is outside the namespace UID range %d-%d (restricted-v2 rejects it)" % (outside, uid_range[0], uid_range[1]),
                       "set floatingUserId: true, or runAsUser within %d-%d" % (uid_range[0], uid_range[1]))]
    if not uids and kind == "GatewayParameters":
        return [_entry(cid, "fail", resource,
                       "no runAsUser or floatingUserId: the kgateway proxy defaults to UID %d, which restricted-v2 rejects" % KGATEWAY_DEFAULT_UID,
                       "set spec.kube.floatingUserId: true (gateway.gatewayParameters.floatingUserId in the infra values)")]
    return [_entry(cid, "pass", resource, "found; proxy UID settings fit the namespace range")]


def _gateway_condition_check(ctx, cid, ctype, upstream, fix):
    gateway = ctx.stack["gateway"]
    if gateway is None:
        return [ctx.blocked(cid, _ref("Gateway", ctx.namespace, _gateway_name(ctx)), "gateway.exists", "no Gateway")]
    resource = _ref("Gateway", ctx.namespace, gateway["name"])
    seen = _conditions_text(gateway["conditions"], ctype)
    if condition_true(gateway["conditions"], ctype):
        return [_entry(cid, "pass", resource, seen)]
    gateway_class = ctx.stack["gateway_class"]
    if gateway_class is None and ctx.model["api"]["reads"].get("gatewayclasses", {}).get("read"):
        seen += "; GatewayClass %s does not exist" % (gateway["class_name"] or "<none>")
        fix = "install the gateway provider that owns GatewayClass %s, or fix spec.gatewayClassName" % gateway["class_name"]
    elif gateway["conditions"].get(ctype, {}).get("status", "Unknown") == "Unknown" and gateway_class:
        # Nobody has acted on the Gateway at all: its controller is the suspect.
        fix = ("no controller has processed the Gateway: check that the controller of GatewayClass %s (%s) runs and "
               "supports this Gateway, then its logs" % (gateway_class["name"], gateway_class["controller"] or "no controllerName"))
    return [ctx.fail_or_blocked(cid, resource, upstream, seen, fix)]


def check_gateway_accepted(ctx):
    return _gateway_condition_check(
        ctx, "gateway.accepted", "Accepted", ["control_plane.ready"],
        "check the gateway controller logs (istiod/kgateway) and kubectl -n %s describe gateway %s" % (ctx.namespace, _gateway_name(ctx)),
    )


def check_gateway_programmed(ctx):
    return _gateway_condition_check(
        ctx, "gateway.programmed", "Programmed", ["control_plane.ready", "gateway.accepted", "gateway.parameters"],
        "the gateway's proxy Deployment/Service is not ready: kubectl -n %s get deploy,svc,pods | grep %s"
        % (ctx.namespace, _gateway_name(ctx)),
    )


def check_gateway_address(ctx):
    cid = "gateway.address"
    gateway = ctx.stack["gateway"]
    if gateway is None:
        return [ctx.blocked(cid, _ref("Gateway", ctx.namespace, _gateway_name(ctx)), "gateway.exists", "no Gateway")]
    resource = _ref("Gateway", ctx.namespace, gateway["name"])
    if gateway["addresses"]:
        return [_entry(cid, "pass", resource, "address %s" % ", ".join(a["value"] for a in gateway["addresses"]))]
    return [ctx.fail_or_blocked(
        cid, resource, ["gateway.programmed", "gateway.accepted", "control_plane.ready"], "status.addresses is empty",
        "the provider has not assigned an address: check the gateway Service (type %s) and its controller"
        % (ctx.stack["gateway_service"]["type"] if ctx.stack["gateway_service"] else "unknown"),
    )]


def check_gateway_attached_routes(ctx):
    cid = "gateway.attached_routes"
    gateway = ctx.stack["gateway"]
    if gateway is None:
        return [ctx.blocked(cid, _ref("Gateway", ctx.namespace, _gateway_name(ctx)), "gateway.exists", "no Gateway")]
    resource = _ref("Gateway", ctx.namespace, gateway["name"])
    counts = ", ".join("%s=%d" % (l["name"], l["attached_routes"]) for l in gateway["listeners"]) or "no listeners"
    if any(l["attached_routes"] >= 1 for l in gateway["listeners"]):
        return [_entry(cid, "pass", resource, "attachedRoutes %s" % counts)]
    return [ctx.fail_or_blocked(
        cid, resource, ["httproute.exists", "httproute.parent", "httproute.accepted", "gateway.programmed", "gateway.accepted"],
        "no listener has attachedRoutes >= 1 (%s)" % counts,
        "the HTTPRoute must name this Gateway in parentRefs and be allowed by the listener's allowedRoutes",
    )]


# ---------------------------------------------------------------- HTTPRoute

def _route_resource(ctx):
    route = ctx.stack["httproute"]
    if route:
        return _ref("HTTPRoute", ctx.namespace, route["name"])
    name = ctx.params.get("httproute_name") or ("llm-d-%s" % _rn(ctx) if ctx.stack["release_postfix"] else None)
    return _ref("HTTPRoute", ctx.namespace, name)


def _no_route(ctx, cid):
    return [ctx.blocked(cid, _route_resource(ctx), "httproute.exists", "no HTTPRoute")]


def check_httproute_exists(ctx):
    cid = "httproute.exists"
    route = ctx.stack["httproute"]
    resource = _route_resource(ctx)
    if route:
        return [_entry(cid, "pass", resource, "found, parentRefs %s" % (", ".join(r["name"] for r in route["parent_refs"]) or "none"))]
    if GATEWAY_GROUP not in ctx.model["api"]["groups"]:
        return [ctx.blocked(cid, resource, "crds.installed", "HTTPRoute kind not served")]
    pool = ctx.stack["inferencepool"]
    gateway = _gateway_name(ctx) or "<gateway>"
    if ctx.params.get("httproute_name"):
        detail = "no HTTPRoute named %s in %s" % (ctx.params["httproute_name"], ctx.namespace)
    else:
        detail = "no HTTPRoute in %s targets Gateway %s" % (ctx.namespace, gateway)
    detail += _absent_namespace(ctx)
    backend = "{group: %s, kind: InferencePool, name: %s, port: %s}" % (
        pool["group"] if pool else POOL_GROUP_V1, _pool_name(ctx) or "<pool>",
        pool["target_ports"][0] if pool and pool["target_ports"] else 8000)
    return [_entry(cid, "fail", resource, detail,
                   "kubectl apply -n %s -f httproute.yaml with parentRefs [{name: %s}], backendRefs [%s] "
                   "and timeouts {request: 0s, backendRequest: 0s}" % (ctx.namespace, gateway, backend))]


def check_httproute_parent(ctx):
    cid = "httproute.parent"
    route = ctx.stack["httproute"]
    if route is None:
        return _no_route(ctx, cid)
    resource = _ref("HTTPRoute", ctx.namespace, route["name"])
    gateways = [g["name"] for g in ctx.model["gateways"]]
    refs = [r for r in route["parent_refs"] if r["kind"] == "Gateway"]
    if not refs:
        return [_entry(cid, "fail", resource, "spec.parentRefs names no Gateway",
                       "add parentRefs: [{name: %s}] to the HTTPRoute" % (_gateway_name(ctx) or "<gateway>"))]
    missing = [r for r in refs if r["namespace"] == ctx.namespace and r["name"] not in gateways]
    elsewhere = [r for r in refs if r["namespace"] != ctx.namespace]
    if missing:
        names = ", ".join(r["name"] for r in missing)
        if not gateways:
            return [ctx.blocked(cid, resource, "gateway.exists", "parentRef %s does not exist" % names)]
        return [_entry(cid, "fail", resource, "parentRef Gateway %s does not exist in %s (found: %s)" % (names, ctx.namespace, ", ".join(gateways)),
                       "set the HTTPRoute's parentRefs[].name to %s" % (_gateway_name(ctx) or gateways[0]))]
    if elsewhere:
        return [_entry(cid, "warn", resource, "parentRef Gateway %s is in another namespace and was not inspected"
                       % ", ".join("%s/%s" % (r["namespace"], r["name"]) for r in elsewhere))]
    return [_entry(cid, "pass", resource, "parentRef Gateway %s exists" % ", ".join(r["name"] for r in refs))]


def _route_parent_status(ctx, route):
    gateway = _gateway_name(ctx)
    for parent in route["parents"]:
        ref = parent["parent_ref"]
        if ref["kind"] == "Gateway" and (gateway is None or (ref["name"] == gateway and ref["namespace"] == ctx.namespace)):
            return parent
    return None


def _route_condition_check(ctx, cid, ctype, upstream, fix):
    route = ctx.stack["httproute"]
    if route is None:
        return _no_route(ctx, cid)
    resource = _ref("HTTPRoute", ctx.namespace, route["name"])
    parent = _route_parent_status(ctx, route)
    if parent is None:
        seen = "no status for parent Gateway %s" % (_gateway_name(ctx) or "<gateway>")
        return [ctx.fail_or_blocked(cid, resource, upstream, seen,
                                    "no gateway controller processed the route: check the controller and the parentRef")]
    seen = _conditions_text(parent["conditions"], ctype)
    if condition_true(parent["conditions"], ctype):
        return [_entry(cid, "pass", resource, seen)]
    reason = parent["conditions"].get(ctype, {}).get("reason")
    if reason == "InvalidKind" and any(b["group"] == POOL_GROUP_V1ALPHA2 for rule in route["rules"] for b in rule["backend_refs"]):
        fix = ("this gateway serves only the v1 InferencePool (Istio >= 1.28): switch the backendRef group to %s "
               "and deploy the pool as v1" % POOL_GROUP_V1)
    return [ctx.fail_or_blocked(cid, resource, upstream, seen, fix)]


def check_httproute_accepted(ctx):
    return _route_condition_check(
        ctx, "httproute.accepted", "Accepted",
        ["httproute.parent", "gateway.exists", "gateway.accepted", "control_plane.ready"],
        "kubectl -n %s describe httproute; the listener's allowedRoutes must admit the route" % ctx.namespace,
    )


def check_httproute_resolved_refs(ctx):
    return _route_condition_check(
        ctx, "httproute.resolved_refs", "ResolvedRefs",
        ["httproute.backend", "httproute.backend_port", "inferencepool.exists", "httproute.accepted",
         "httproute.parent", "control_plane.ready"],
        "the backendRef does not resolve: check its group/kind/name against the InferencePool",
    )


def _pool_backends(route):
    return [b for rule in route["rules"] for b in rule["backend_refs"] if b["kind"] == "InferencePool"]


def _backend_pool(ctx, backend):
    for pool in ctx.model["inferencepools"]:
        if pool["name"] == backend["name"] and pool["group"] == backend["group"]:
            return pool
    return None


def check_httproute_backend(ctx):
    cid = "httproute.backend"
    route = ctx.stack["httproute"]
    if route is None:
        return _no_route(ctx, cid)
    resource = _ref("HTTPRoute", ctx.namespace, route["name"])
    backends = _pool_backends(route)
    if not backends:
        others = ", ".join("%s %s" % (b["kind"], b["name"]) for rule in route["rules"] for b in rule["backend_refs"]) or "none"
        return [_entry(cid, "fail", resource, "backendRefs name no InferencePool (found: %s)" % others,
                       "set backendRefs to [{group: %s, kind: InferencePool, name: %s}]" % (POOL_GROUP_V1, _pool_name(ctx) or "<pool>"))]
    entries = []
    for backend in backends:
        label = "backendRef InferencePool %s (group %s)" % (backend["name"], backend["group"] or "<core>")
        if backend["group"] not in (POOL_GROUP_V1, POOL_GROUP_V1ALPHA2):
            entries.append(_entry(cid, "fail", resource, "%s: not an InferencePool API group" % label,
                                  "set the backendRef group to %s or %s" % (POOL_GROUP_V1, POOL_GROUP_V1ALPHA2)))
            continue
        if backend["group"] not in ctx.model["api"]["groups"]:
            served = [p["group"] for p in ctx.model["inferencepools"] if p["name"] == backend["name"]]
            if served:
                entries.append(_entry(cid, "fail", resource, "%s: the API group is not served" % label,
                                      "set the backendRef group to %s, where the pool exists" % served[0]))
            else:
                entries.append(ctx.fail_or_blocked(cid, resource, ["crds.installed"], "%s: the API group is not served" % label,
                                                   "install the GAIE CRDs that serve %s" % backend["group"]))
            continue
        if _backend_pool(ctx, backend):
            entries.append(_entry(cid, "pass", resource, "%s exists" % label))
            continue
        other = [p for p in ctx.model["inferencepools"] if p["name"] == backend["name"]]
        if other:
            entries.append(_entry(cid, "fail", resource, "%s: the pool exists only as %s" % (label, other[0]["api_version"]),
                                  "set the backendRef group to %s" % other[0]["group"]))
        elif not ctx.model["inferencepools"]:
            entries.append(ctx.blocked(cid, resource, "inferencepool.exists", "%s does not exist" % label))
        else:
            entries.append(_entry(cid, "fail", resource, "%s does not exist (found: %s)"
                                  % (label, ", ".join(p["name"] for p in ctx.model["inferencepools"])),
                                  "set the backendRef name to %s" % (_pool_name(ctx) or "the InferencePool")))
    return entries


def check_httproute_backend_port(ctx):
    cid = "httproute.backend_port"
    route = ctx.stack["httproute"]
    if route is None:
        return _no_route(ctx, cid)
    resource = _ref("HTTPRoute", ctx.namespace, route["name"])
    entries = []
    for backend in _pool_backends(route):
        pool = _backend_pool(ctx, backend)
        if pool is None:
            entries.append(ctx.blocked(cid, resource, ctx.root_failure(["httproute.backend", "inferencepool.exists"]) or "httproute.backend",
                                       "backendRef %s does not resolve to a pool" % backend["name"]))
            continue
        ports = pool["target_ports"]
        if backend["port"] is None:
            entries.append(_entry(cid, "warn", resource, "backendRef %s sets no port; the pool targets %s" % (backend["name"], ports),
                                  "set backendRefs[].port to %s" % (ports[0] if ports else 8000)))
        elif backend["port"] in ports:
            entries.append(_entry(cid, "pass", resource, "backendRef port %d matches the pool's target port" % backend["port"]))
        else:
            entries.append(_entry(cid, "fail", resource,
                                  "backendRef %s port %d, but the pool targets %s" % (backend["name"], backend["port"], ports or "no port"),
                                  "set the HTTPRoute backendRefs[].port to %s" % (ports[0] if ports else "the pool's target port")))
    if not entries:
        entries.append(ctx.blocked(cid, resource, "httproute.backend", "no InferencePool backendRef"))
    return entries


def check_httproute_timeouts(ctx):
    cid = "httproute.timeouts"
    route = ctx.stack["httproute"]
    if route is None:
        return _no_route(ctx, cid)
    resource = _ref("HTTPRoute", ctx.namespace, route["name"])
    problems = []
    for index, rule in enumerate(route["rules"]):
        timeouts = rule["timeouts"]
        for key, field in (("request", "request"), ("backend_request", "backendRequest")):
            if not duration_is_zero(timeouts[key]):
                problems.append("rules[%d].timeouts.%s=%s" % (index, field, timeouts[key] or "unset"))
    if not problems:
        return [_entry(cid, "pass", resource, "request and backendRequest timeouts are 0s")]
    return [_entry(cid, "warn", resource, "%s: long generations may be cut off (Envoy's default route timeout is 15s)" % ", ".join(problems),
                   "set timeouts: {request: 0s, backendRequest: 0s} on each rule")]


# ---------------------------------------------------------------- InferencePool and EPP

def _pool_resource(ctx):
    pool = ctx.stack["inferencepool"]
    return _ref("InferencePool", ctx.namespace, pool["name"] if pool else _pool_name(ctx))


def _no_pool(ctx, cid):
    return [ctx.blocked(cid, _pool_resource(ctx), "inferencepool.exists", "no InferencePool")]


def check_pool_exists(ctx):
    cid = "inferencepool.exists"
    pool = ctx.stack["inferencepool"]
    resource = _pool_resource(ctx)
    if pool is None:
        if not ctx.model["crds"]["gaie"].get("pool_api_versions"):
            return [ctx.blocked(cid, resource, "crds.installed", "InferencePool kind not served")]
        name = _pool_name(ctx)
        found = sorted(set(p["name"] for p in ctx.model["inferencepools"]))
        detail = "no InferencePool named %s" % name if name else "no InferencePool in %s" % ctx.namespace
        detail += _absent_namespace(ctx)
        if found:
            detail += " (found: %s)" % ", ".join(found)
        return [_entry(cid, "fail", resource, detail,
                       "deploy the gaie-%s release (inferencepool chart) or set inferencepool_name" % _rn(ctx))]
    wanted = ctx.expected.get("pool_api_version")
    if wanted and pool["api_version"] != wanted and not pool["api_version"].endswith("/" + wanted):
        return [_entry(cid, "fail", resource, "the pool is %s, expected %s" % (pool["api_version"], wanted),
                       "redeploy gaie-%s with inferencePool.apiVersion for %s" % (_rn(ctx), wanted))]
    return [_entry(cid, "pass", resource, "found (%s), selector %s, target ports %s"
                   % (pool["api_version"], _labels_text(pool["selector"]), pool["target_ports"]))]


def check_pool_status(ctx):
    cid = "inferencepool.status"
    pool = ctx.stack["inferencepool"]
    if pool is None:
        return _no_pool(ctx, cid)
    resource = _pool_resource(ctx)
    gateway = _gateway_name(ctx)
    parents = [p for p in pool["parents"] if gateway is None or p["parent_ref"]["name"] == gateway]
    upstream = ["httproute.exists", "httproute.backend", "httproute.accepted", "inferencepool.epp_service",
                "epp.available", "gateway.accepted", "control_plane.ready"]
    if not parents:
        seen = ("only the placeholder parent (no controller has reported)" if pool["placeholder_only"] or not pool["parents"]
                else "no status for parent Gateway %s" % gateway)
        return [ctx.fail_or_blocked(cid, resource, upstream, seen,
                                    "the pool is referenced by no accepted HTTPRoute, or the gateway does not support %s" % pool["api_version"])]
    parent = parents[0]
    seen = "%s, %s" % (_conditions_text(parent["conditions"], "Accepted"), _conditions_text(parent["conditions"], "ResolvedRefs"))
    if condition_true(parent["conditions"], "Accepted") and condition_true(parent["conditions"], "ResolvedRefs"):
        return [_entry(cid, "pass", resource, seen)]
    fix = "check the gateway controller logs for the pool"
    if parent["conditions"].get("ResolvedRefs", {}).get("reason") == "InvalidExtensionRef":
        fix = "the EPP reference does not resolve: check spec.%s" % ("endpointPickerRef" if pool["group"] == POOL_GROUP_V1 else "extensionRef")
    return [ctx.fail_or_blocked(cid, resource, upstream, seen, fix)]


def _model_server_pods(ctx):
    pods = []
    for server in ctx.stack["model_servers"]:
        for pod in server["pods"]:
            if pod not in pods:
                pods.append(pod)
    for pod in ctx.stack["pool_pods"]:
        if pod not in pods:
            pods.append(pod)
    return pods


def _label_hint(selector, pods):
    """Explain why ``selector`` matches none of ``pods`` (keys missing, values differ, label generation)."""
    if not pods:
        return ""
    labels = pods[0]["labels"]
    hints = []
    for key, value in sorted(selector.items()):
        if key not in labels:
            twin = [k for k in SERVING_LABELS if k != key and key in SERVING_LABELS and k in labels]
            if twin:
                hints.append("selector uses %s but pods carry %s (the label was renamed in llm-d-modelservice v0.4)" % (key, twin[0]))
            else:
                hints.append("pods lack %s" % key)
        elif labels[key] != value:
            hints.append("%s is %s on pods, %s in the selector" % (key, labels[key], value))
    return "; ".join(hints)


def check_pool_endpoints(ctx):
    cid = "inferencepool.endpoints"
    pool = ctx.stack["inferencepool"]
    if pool is None:
        return _no_pool(ctx, cid)
    resource = _pool_resource(ctx)
    matched = ctx.stack["pool_pods"]
    servers = [p for s in ctx.stack["model_servers"] for p in s["pods"]]
    if not pool["selector"]:
        return [_entry(cid, "fail", resource, "the pool has an empty selector",
                       "set inferencePool.modelServers.matchLabels in the gaie-%s values" % _rn(ctx))]
    if not matched:
        if not servers:
            return [ctx.blocked(cid, resource, ctx.root_failure(["modelservers.decode"]) or "modelservers.decode",
                                "the selector %s matches no pod, and no model-server pod exists" % _labels_text(pool["selector"]))]
        hint = _label_hint(pool["selector"], servers)
        return [_entry(cid, "fail", resource,
                       "the selector %s matches none of the %d model-server pods%s"
                       % (_labels_text(pool["selector"]), len(servers), ": " + hint if hint else ""),
                       "make the gaie-%s inferencePool.modelServers.matchLabels equal the ms-%s modelArtifacts.labels (pod labels: %s)"
                       % (_rn(ctx), _rn(ctx), _labels_text(servers[0]["labels"])))]
    ready = [p for p in matched if p["ready"]]
    if not ready:
        blamed = [b for b in (_pod_blame(p) for p in matched) if b]
        root = ctx.root_failure(blamed + ["modelservers.decode", "modelservers.prefill"])
        seen = "0/%d matched pods ready" % len(matched)
        if root:
            return [ctx.blocked(cid, resource, root, seen)]
        return [_entry(cid, "fail", resource, "%s (%s)" % (seen, "; ".join("%s %s" % (p["name"], _pending_reason(p)) for p in matched[:5])),
                       "kubectl -n %s describe pod %s" % (ctx.namespace, matched[0]["name"]))]
    detail = "%d/%d matched pods ready" % (len(ready), len(matched))
    declared = [port["port"] for p in ready for c in p["containers"] for port in c["ports"]]
    if declared and not any(port in declared for port in pool["target_ports"]):
        return [_entry(cid, "warn", resource, "%s, but none declares the target port %s (declared: %s)"
                       % (detail, pool["target_ports"], sorted(set(declared))),
                       "requests will fail with 'upstream connect error': align the pool's target port with the routing-proxy/vllm port")]
    return [_entry(cid, "pass", resource, detail)]


def check_pool_epp_service(ctx):
    cid = "inferencepool.epp_service"
    pool = ctx.stack["inferencepool"]
    if pool is None:
        return _no_pool(ctx, cid)
    resource = _pool_resource(ctx)
    ref = pool["epp"]
    field = "endpointPickerRef" if pool["group"] == POOL_GROUP_V1 else "extensionRef"
    if not ref["name"]:
        return [_entry(cid, "fail", resource, "spec.%s names no Service" % field,
                       "set spec.%s.name to the EPP Service (gaie-%s-epp)" % (field, _rn(ctx)))]
    if ref["kind"] != "Service":
        return [_entry(cid, "warn", resource, "spec.%s kind %s is not inspected" % (field, ref["kind"]))]
    service = ctx.stack["epp_service"]
    resource = _ref("Service", ctx.namespace, ref["name"])
    if service is None:
        return [_entry(cid, "fail", resource, "InferencePool %s references EPP Service %s, which does not exist" % (pool["name"], ref["name"]),
                       "redeploy the gaie-%s release (it creates Service %s) or fix spec.%s.name" % (_rn(ctx), ref["name"], field))]
    ports = [p["port"] for p in service["ports"]]
    if ref["port"] not in ports:
        return [_entry(cid, "fail", resource, "Service %s exposes %s, the pool expects port %d" % (ref["name"], ports, ref["port"]),
                       "set spec.%s port to one of %s, or expose %d on the Service" % (field, ports, ref["port"]))]
    return [_entry(cid, "pass", resource, "exposes port %d" % ref["port"])]


def check_epp_available(ctx):
    cid = "epp.available"
    deployment = ctx.stack["epp_deployment"]
    name = ctx.stack["epp_service_name"]
    if deployment is None:
        resource = _ref("Deployment", ctx.namespace, name)
        if ctx.stack["inferencepool"] is None and not name:
            return [ctx.blocked(cid, resource, "inferencepool.exists", "no pool, so no EPP to look for")]
        return [_entry(cid, "fail", resource, "no EPP Deployment for pool %s (looked for the Service selector, the name %s and --pool-name)"
                       % (_pool_name(ctx), name),
                       "deploy the gaie-%s release (inferencepool chart), which runs the EPP" % _rn(ctx))]
    resource = _ref("Deployment", ctx.namespace, deployment["name"])
    config = ctx.stack["epp_config"] or {}
    config_errors = config.get("errors") or []
    if deployment["available"] and deployment["replicas"] > 0:
        detail = "%s, scheduling config from %s" % (_deployment_text(deployment), config.get("source", "unknown"))
        return [_entry(cid, "pass", resource, detail)]
    if deployment["replicas"] == 0:
        return [_entry(cid, "fail", resource, "scaled to 0 replicas: nothing picks endpoints for the pool",
                       "kubectl -n %s scale deployment %s --replicas=1" % (ctx.namespace, deployment["name"]))]
    pods = ctx.stack["epp_pods"]
    reasons = ["%s %s" % (p["name"], _pending_reason(p)) for p in pods if not p["ready"]]
    detail = "%s, %s" % (_deployment_text(deployment), _conditions_text(deployment["conditions"], "Available"))
    if reasons:
        detail += "; pods: %s" % "; ".join(reasons[:3])
    if config_errors:
        detail += "; scheduling config: %s" % "; ".join(config_errors)
    return [_entry(cid, "fail", resource, detail,
                   "kubectl -n %s logs deployment/%s (the EPP needs the pool's CRDs and cluster-scoped RBAC; chart v1.4 requests 4 CPU/8Gi)"
                   % (ctx.namespace, deployment["name"]))]


# ---------------------------------------------------------------- model servers

def _servers(ctx, role):
    return [s for s in ctx.stack["model_servers"] if s["role"] == role]


def _deployment_check(ctx, cid, role, server, expected_replicas):
    deployment = server["deployment"]
    resource = _ref("Deployment", ctx.namespace, deployment["name"])
    if expected_replicas is not None and deployment["replicas"] != expected_replicas:
        return _entry(cid, "fail", resource, "spec.replicas is %d, expected %d" % (deployment["replicas"], expected_replicas),
                      "set %s.replicas: %d in the ms-%s values" % (role, expected_replicas, _rn(ctx)))
    if deployment["replicas"] == 0:
        return _entry(cid, "fail", resource, "scaled to 0 replicas",
                      "kubectl -n %s scale deployment %s --replicas=1" % (ctx.namespace, deployment["name"]))
    complete = deployment["available"] and deployment["available_replicas"] >= deployment["replicas"]
    if complete:
        return _entry(cid, "pass", resource, "%s, Available" % _deployment_text(deployment))
    not_ready = [p for p in server["pods"] if not p["ready"]]
    blamed = [(p, _pod_blame(p)) for p in not_ready]
    unexplained = [p for p, blame in blamed if blame is None]
    seen = "%s, %s" % (_deployment_text(deployment), _conditions_text(deployment["conditions"], "Available"))
    if not_ready and not unexplained:
        # Every missing replica is a crash-looping or not-ready container: that check owns it.
        return ctx.blocked(cid, resource, blamed[0][1], seen)
    if unexplained:
        seen += "; %s" % "; ".join("%s %s" % (p["name"], _pending_reason(p)) for p in unexplained[:3])
    elif not server["pods"]:
        seen += "; no pods (check the ReplicaSet events and quota)"
    return _entry(cid, "fail", resource, seen,
                  "kubectl -n %s describe pod -l %s (GPU capacity, image pulls, PVC binding)"
                  % (ctx.namespace, ",".join("%s=%s" % kv for kv in sorted(deployment["template_labels"].items())[:3]) or deployment["name"]))


def check_decode(ctx):
    cid = "modelservers.decode"
    servers = _servers(ctx, "decode")
    expected = ctx.expected.get("decode_replicas")
    if not servers:
        name = "ms-%s-llm-d-modelservice-decode" % _rn(ctx) if ctx.stack["release_postfix"] else None
        return [_entry(cid, "fail", _ref("Deployment", ctx.namespace, name),
                       "no decode Deployment (by name, llm-d.ai/role=decode or the pool selector)" + _absent_namespace(ctx),
                       "deploy the ms-%s release (llm-d-modelservice chart) with decode.replicas >= 1" % _rn(ctx))]
    return [_deployment_check(ctx, cid, "decode", s, expected) for s in servers]


def check_prefill(ctx):
    cid = "modelservers.prefill"
    servers = _servers(ctx, "prefill")
    pd_enabled = ctx.expected.get("pd_enabled")
    expected = ctx.expected.get("prefill_replicas")
    name = "ms-%s-llm-d-modelservice-prefill" % _rn(ctx) if ctx.stack["release_postfix"] else None
    if not servers:
        if pd_enabled or (expected or 0) > 0:
            return [_entry(cid, "fail", _ref("Deployment", ctx.namespace, name), "P/D is expected, but there is no prefill Deployment",
                           "set prefill.create: true and prefill.replicas in the ms-%s values" % _rn(ctx))]
        return [_entry(cid, "skip", _ref("Deployment", ctx.namespace, name), "no prefill Deployment (P/D disaggregation not in use)")]
    entries = [_deployment_check(ctx, cid, "prefill", s, expected) for s in servers]
    if pd_enabled is False:
        for entry in entries:
            if entry["status"] == "pass":
                entry["status"] = "warn"
                entry["detail"] += "; a prefill Deployment runs although pd_enabled is false"
                entry["fix"] = "disable prefill in the ms-%s values or set expected.pd_enabled: true" % _rn(ctx)
    return entries


def _required_containers(ctx, server):
    required = ["vllm"]
    # The routing sidecar is what hands decode requests to prefill in P/D.
    if server["role"] == "decode" and (ctx.expected.get("pd_enabled") or _servers(ctx, "prefill")):
        required.append("routing-proxy")
    if any(c["name"] == "routing-proxy" for c in server["deployment"]["containers"]) and "routing-proxy" not in required:
        required.append("routing-proxy")
    return required


def _each_model_server(ctx, cid, judge):
    """One entry per model-server Deployment from judge(server, resource); blocked when there is none."""
    if not ctx.stack["model_servers"]:
        return [ctx.blocked(cid, _ref("Deployment", ctx.namespace, None), "modelservers.decode", "no model-server Deployment")]
    return [judge(server, _ref("Deployment", ctx.namespace, server["deployment"]["name"])) for server in ctx.stack["model_servers"]]


def check_containers(ctx):
    cid = "modelservers.containers"

    def judge(server, resource):
        required = _required_containers(ctx, server)
        declared = [c["name"] for c in server["deployment"]["containers"]]
        missing = [name for name in required if name not in declared]
        if missing:
            return _entry(cid, "fail", resource, "the pod template has no %s container (has: %s)" % (", ".join(missing), ", ".join(declared)),
                          "the model container must be named vllm and the sidecar routing-proxy (llm-d-modelservice)")
        problems = []
        crashing = []
        for pod in server["pods"]:
            if pod["phase"] != "Running":
                continue  # a pod that never started is the Deployment check's to explain
            for container in pod["containers"]:
                if container["name"] not in required or container["ready"]:
                    continue
                if _pod_blame(pod) == "modelservers.crashloop":
                    crashing.append(pod["name"])
                else:
                    problems.append((pod["name"], container["name"], container["reason"] or container["state"]))
        if problems:
            texts = ["%s/%s not ready (%s)" % problem for problem in problems]
            more = " (+%d more)" % (len(texts) - 5) if len(texts) > 5 else ""
            return _entry(cid, "fail", resource, "; ".join(texts[:5]) + more,
                          "kubectl -n %s logs %s -c %s" % (ctx.namespace, problems[0][0], problems[0][1]))
        if crashing:
            return ctx.blocked(cid, resource, "modelservers.crashloop", "containers not ready in %s" % ", ".join(sorted(set(crashing))[:3]))
        if not [p for p in server["pods"] if p["phase"] == "Running"]:
            return ctx.blocked(cid, resource, ctx.root_failure(["modelservers.decode", "modelservers.prefill"], resource)
                               or ("modelservers." + server["role"]), "no running pod")
        return _entry(cid, "pass", resource, "%s ready in all %d pods" % (", ".join(required), len(server["pods"])))

    return _each_model_server(ctx, cid, judge)


def check_crashloop(ctx):
    cid = "modelservers.crashloop"

    def judge(server, resource):
        found = []
        for pod in server["pods"]:
            for container in pod["containers"]:
                if _crash_looping(container):
                    text = "%s/%s %s, %d restarts" % (pod["name"], container["name"], container["reason"] or "restarting", container["restart_count"])
                    if container["last_reason"]:
                        text += ", last exit %s (%s)" % (container["last_exit_code"], container["last_reason"])
                    found.append((pod["name"], container["name"], text))
        if found:
            return _entry(cid, "fail", resource, "; ".join(item[2] for item in found[:5]),
                          "kubectl -n %s logs %s -c %s --previous (model flags, GPU memory, HF token)"
                          % (ctx.namespace, found[0][0], found[0][1]))
        restarts = sum(c["restart_count"] for p in server["pods"] for c in p["containers"])
        return _entry(cid, "pass", resource, "no container crash-looping (pods: %d, restarts: %d)" % (len(server["pods"]), restarts))

    return _each_model_server(ctx, cid, judge)


def check_labels(ctx):
    cid = "modelservers.labels"
    pool = ctx.stack["inferencepool"]
    if pool is None:
        return _no_pool(ctx, cid)
    resource = _pool_resource(ctx)
    servers = [p for s in ctx.stack["model_servers"] for p in s["pods"]]
    if not servers:
        return [ctx.blocked(cid, resource, ctx.root_failure(["modelservers.decode"]) or "modelservers.decode", "no model-server pod")]
    if not ctx.stack["pool_pods"]:
        return [ctx.blocked(cid, resource, "inferencepool.endpoints", "the pool selects no model-server pod")]
    unmatched = [p for p in servers if not selector_matches(pool["selector"], p["labels"])]
    if unmatched:
        hint = _label_hint(pool["selector"], unmatched)
        return [_entry(cid, "fail", resource, "%d of %d model-server pods are outside the pool (%s)%s"
                       % (len(unmatched), len(servers), ", ".join(p["name"] for p in unmatched[:3]), ": " + hint if hint else ""),
                       "give every decode/prefill pod the pool's selector labels %s (modelArtifacts.labels)" % _labels_text(pool["selector"]))]
    models = sorted(set(p["labels"].get(MODEL_LABEL) for p in servers if p["labels"].get(MODEL_LABEL)))
    if len(models) > 1:
        return [_entry(cid, "warn", resource, "model-server pods carry different %s values: %s" % (MODEL_LABEL, ", ".join(models)),
                       "use one %s value per pool" % MODEL_LABEL)]
    return [_entry(cid, "pass", resource, "all %d model-server pods carry %s" % (len(servers), _labels_text(pool["selector"])))]


def check_model(ctx):
    cid = "modelservers.model"
    wanted = ctx.expected.get("model")
    if not wanted:
        return [_entry(cid, "skip", _ref("Deployment", ctx.namespace, None), "expected.model is not set")]

    def judge(server, resource):
        deployment = server["deployment"]
        names = served_model_names(deployment)
        if not any(c["name"] == "vllm" for c in deployment["containers"]):
            return ctx.blocked(cid, resource, "modelservers.containers", "no vllm container")
        if wanted in names:
            return _entry(cid, "pass", resource, "vllm serves %s" % wanted)
        return _entry(cid, "fail", resource, "vllm serves %s, expected %s" % (", ".join(names) or "an unknown model", wanted),
                      "set modelArtifacts.name (served model name) in the ms-%s values to %s" % (_rn(ctx), wanted))

    return _each_model_server(ctx, cid, judge)


# ---------------------------------------------------------------- releases, storage, OpenShift

def check_helm(ctx):
    cid = "helm.releases"
    if not ctx.read("helm_secrets"):
        return [_entry(cid, "skip", "Helm releases in %s" % ctx.namespace, "Helm release Secrets were not read")]
    releases = ctx.model["helm_releases"]
    wanted_versions = ctx.expected.get("chart_versions", {})
    explicit_rn = ctx.params.get("release_postfix")
    expected_names = ["%s-%s" % (prefix, explicit_rn) for prefix in ("infra", "gaie", "ms")] if explicit_rn else []
    for key in wanted_versions:
        if key not in expected_names and not any(r["chart"] == key for r in releases):
            expected_names.append(key)
    in_namespace = [r for r in releases if r["namespace"] == ctx.namespace]
    checked = [r for r in releases if r["name"] in expected_names or r["chart"] in wanted_versions] + \
        [r for r in in_namespace if r["name"] not in expected_names and r["chart"] not in wanted_versions]
    entries = []
    for name in expected_names:
        if not any(r["name"] == name or r["chart"] == name for r in releases):
            entries.append(_entry(cid, "fail", "Helm release %s/%s" % (ctx.namespace, name), "release %s not found" % name,
                                  "deploy it (helmfile apply in the guide directory) or fix release_postfix / chart_versions"))
    for release in checked:
        resource = "Helm release %s/%s" % (release["namespace"], release["name"])
        wanted = wanted_versions.get(release["name"], wanted_versions.get(release["chart"]))
        chart = "%s %s" % (release["chart"] or "chart", release["chart_version"] or "unknown")
        if release["status"] != "deployed":
            entries.append(_entry(cid, "fail", resource, "status %s (%s, revision %d)%s" % (
                release["status"], chart, release["revision"], ": " + release["description"] if release["description"] else ""),
                "helm -n %s history %s; re-run the deploy (helmfile apply) once the cause is fixed" % (release["namespace"], release["name"])))
        elif wanted and not same_version(release["chart_version"], wanted):
            entries.append(_entry(cid, "fail", resource, "%s, expected chart version %s" % (chart, wanted),
                                  "upgrade the release to chart version %s (the release matrix pins it)" % wanted))
        else:
            entries.append(_entry(cid, "pass", resource, "deployed, %s, revision %d" % (chart, release["revision"])))
    if not entries:
        entries.append(_entry(cid, "skip", "Helm releases in %s" % ctx.namespace, "no Helm releases in %s" % ctx.namespace))
    return entries


def check_pvc(ctx):
    cid = "storage.model_pvc"
    if not ctx.read("pvcs"):
        return [_entry(cid, "skip", "PersistentVolumeClaims in %s" % ctx.namespace, "PVCs were not read")]
    claims = []
    for server in ctx.stack["model_servers"]:
        for claim in server["deployment"]["pvcs"]:
            if claim not in claims:
                claims.append(claim)
    if not claims:
        return [_entry(cid, "skip", "PersistentVolumeClaims in %s" % ctx.namespace, "the model servers mount no PVC")]
    entries = []
    for claim in claims:
        resource = _ref("PersistentVolumeClaim", ctx.namespace, claim)
        pvc = [p for p in ctx.model["pvcs"] if p["name"] == claim]
        if not pvc:
            entries.append(_entry(cid, "fail", resource, "the model servers mount PVC %s, which does not exist" % claim,
                                  "create the model PVC (deploy's storage step) before the ms release"))
        elif pvc[0]["phase"] != "Bound":
            entries.append(_entry(cid, "fail", resource, "phase %s (storage class %s)" % (pvc[0]["phase"], pvc[0]["storage_class"] or "default"),
                                  "kubectl -n %s describe pvc %s: a StorageClass with a provisioner, or a matching PV, is needed" % (ctx.namespace, claim)))
        else:
            entries.append(_entry(cid, "pass", resource, "Bound (%s)" % (pvc[0]["capacity"] or "capacity unknown")))
    return entries


def check_service_mesh(ctx):
    cid = "openshift.service_mesh"
    platform = ctx.model["platform"]
    if not platform["openshift"]:
        return [_entry(cid, "skip", "ServiceMeshControlPlanes", "not OpenShift")]
    if not ctx.read("servicemeshcontrolplanes"):
        return [_entry(cid, "pass", "ServiceMeshControlPlanes", "OpenShift Service Mesh 2 is not installed")]
    smcps = platform["service_mesh_control_planes"]
    provider = ctx.expected.get("provider") or ctx.stack["provider"]
    if smcps and provider == "istio":
        names = ", ".join("%s/%s" % (s["namespace"], s["name"]) for s in smcps)
        return [_entry(cid, "fail", "ServiceMeshControlPlane %s" % names,
                       "ServiceMeshControlPlane %s present while upstream Istio is the gateway provider (their CRDs and istiod conflict)" % names,
                       "remove the ServiceMeshMember(s) and the ServiceMeshControlPlane (oc delete smcp -n <ns> <name>) before installing upstream Istio")]
    if smcps:
        return [_entry(cid, "pass", "ServiceMeshControlPlanes", "%d present; provider is %s, not upstream Istio" % (len(smcps), provider))]
    return [_entry(cid, "pass", "ServiceMeshControlPlanes", "none")]


# Evaluation order: a check runs after every check it may be blocked by.
_EVALUATION = (
    ("control_plane.ready", check_control_plane),
    ("crds.installed", check_crds),
    ("gateway.exists", check_gateway_exists),
    ("gateway.parameters", check_gateway_parameters),
    ("gateway.accepted", check_gateway_accepted),
    ("gateway.programmed", check_gateway_programmed),
    ("gateway.address", check_gateway_address),
    ("inferencepool.exists", check_pool_exists),
    ("inferencepool.epp_service", check_pool_epp_service),
    ("epp.available", check_epp_available),
    ("modelservers.crashloop", check_crashloop),
    ("modelservers.containers", check_containers),
    ("modelservers.decode", check_decode),
    ("modelservers.prefill", check_prefill),
    ("inferencepool.endpoints", check_pool_endpoints),
    ("modelservers.labels", check_labels),
    ("modelservers.model", check_model),
    ("httproute.exists", check_httproute_exists),
    ("httproute.parent", check_httproute_parent),
    ("httproute.backend", check_httproute_backend),
    ("httproute.backend_port", check_httproute_backend_port),
    ("httproute.accepted", check_httproute_accepted),
    ("httproute.resolved_refs", check_httproute_resolved_refs),
    ("httproute.timeouts", check_httproute_timeouts),
    ("gateway.attached_routes", check_gateway_attached_routes),
    ("inferencepool.status", check_pool_status),
    ("helm.releases", check_helm),
    ("storage.model_pvc", check_pvc),
    ("openshift.service_mesh", check_service_mesh),
)


def run_checks(model, params, selected=None):
    """Evaluate every check (blockers need them all), return the selected ones in catalogue order."""
    ctx = _Context(model, params)
    for check_id, function in _EVALUATION:
        try:
            ctx.results[check_id] = function(ctx)
        except Exception as exc:  # a defect here must not hide every other check
            detail = "internal error while checking: %s: %s" % (type(exc).__name__, exc)
            ctx.results[check_id] = [_entry(check_id, "warn", "-", detail, "report this as a bug of llmd.stack with the facts output")]
    wanted = list(CHECK_IDS) if selected is None else selected
    checks = []
    for check_id in CHECK_IDS:
        if check_id in wanted:
            for entry in ctx.results.get(check_id, []):
                checks.append(dict((k, v) for k, v in entry.items() if not k.startswith("_")))
    return checks


def summarize(checks):
    summary = dict((status, 0) for status in STATUSES)
    for check in checks:
        summary[check["status"]] = summary.get(check["status"], 0) + 1
    return summary


def failing(checks, fail_on):
    """Checks that make the module fail for ``fail_on`` (never / fail / warn)."""
    if fail_on == "fail":
        return [c for c in checks if c["status"] == "fail"]
    if fail_on == "warn":
        return [c for c in checks if c["status"] in ("fail", "warn")]
    return []


def failure_message(bad):
    lines = ["%d llm-d stack check(s) failed:" % len(bad)]
    for check in bad:
        line = "- %s [%s] %s: %s" % (check["id"], check["status"], check["resource"], check["detail"])
        if check["fix"]:
            line += " Fix: %s" % check["fix"]
        lines.append(line)
    return "\n".join(lines)
