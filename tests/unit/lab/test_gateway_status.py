"""Decisions of the lab gateway status simulator (lab/simulators/gateway_status.py).

Plain dicts shaped like the API returns them; `stack()` is a healthy lab stack
(Istio GatewayClass, Gateway with a parameters ConfigMap, its -istio Service and
ready Deployment, an HTTPRoute to a v1 InferencePool, the EPP Service) and each
test breaks one thing.
"""
import copy
import os
import sys

import pytest

LAB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "lab")
if os.path.abspath(LAB_DIR) not in sys.path:
    sys.path.insert(0, os.path.abspath(LAB_DIR))

from simulators import gateway_status as gs  # noqa: E402

NS = "llm-d-sim"
GW = "infra-sim-inference-gateway"
POOL = "gaie-sim"
EPP = "gaie-sim-epp"
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
T2 = "2026-01-01T00:10:00Z"


def gateway_class(name="istio", controller=gs.CONTROLLER_NAME):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": name, "generation": 1}, "spec": {"controllerName": controller}}


def gateway(name=GW, namespace=NS, class_name="istio", listeners=None, params=GW, generation=2):
    spec = {"gatewayClassName": class_name,
            "listeners": listeners or [{"name": "default", "port": 80, "protocol": "HTTP",
                                        "allowedRoutes": {"namespaces": {"from": "All"}}}]}
    if params:
        spec["infrastructure"] = {"parametersRef": {"group": "", "kind": "ConfigMap", "name": params}}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-" + name, "generation": generation},
            "spec": spec}


def parameters(name=GW, service_type="ClusterIP"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
            "data": {"service": "spec:\n  type: %s\n" % service_type, "deployment": "spec: {}\n"}}


def service(name, namespace=NS, ports=(80,), cluster_ip="10.96.0.10", service_type="ClusterIP"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": service_type, "clusterIP": cluster_ip, "ports": [{"port": p} for p in ports]}}


def deployment(name=GW + "-istio", ready=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "status": {"replicas": 1, "readyReplicas": ready}}


def route(name="llm-d-sim", namespace=NS, parent=GW, parent_ns=None, backend=POOL,
          backend_group=gs.POOL_GROUP_V1, backend_ns=None, section=None, hostnames=None):
    ref = {"group": gs.GATEWAY_GROUP, "kind": "Gateway", "name": parent}
    if parent_ns:
        ref["namespace"] = parent_ns
    if section:
        ref["sectionName"] = section
    backend_ref = {"group": backend_group, "kind": "InferencePool", "name": backend, "port": 8000, "weight": 1}
    if backend_ns:
        backend_ref["namespace"] = backend_ns
    spec = {"parentRefs": [ref],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [backend_ref],
                       "timeouts": {"request": "0s", "backendRequest": "0s"}}]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace, "generation": 3}, "spec": spec}


def pool_v1(name=POOL, namespace=NS, epp=EPP, epp_port=9002):
    return {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"selector": {"matchLabels": {"llm-d.ai/inference-serving": "true"}},
                     "targetPorts": [{"number": 8000}],
                     "endpointPickerRef": {"group": "", "kind": "Service", "name": epp,
                                           "port": {"number": epp_port}}},
            "status": {"parents": [placeholder()]}}


def pool_v1alpha2(name=POOL, namespace=NS, epp=EPP):
    return {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"selector": {"llm-d.ai/inference-serving": "true"}, "targetPortNumber": 8000,
                     "extensionRef": {"name": epp}},
            "status": {"parent": [placeholder()]}}


def placeholder():
    return {"parentRef": {"group": gs.GATEWAY_GROUP, "kind": "Status", "name": "default"},
            "conditions": [{"type": "Accepted", "status": "Unknown", "reason": "Pending",
                            "message": "Waiting for controller", "lastTransitionTime": gs.EPOCH}]}


def namespace(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def stack(**changes):
    """The healthy stack as build_world() arguments; keyword arguments replace lists."""
    parts = {
        "gateway_classes": [gateway_class()],
        "gateways": [gateway()],
        "routes": [route()],
        "pools": [pool_v1()],
        "services": [service(GW + "-istio", ports=(15021, 80)), service(EPP, ports=(9002, 9090))],
        "deployments": [deployment()],
        "grants": [],
        "namespaces": [namespace(NS), namespace("other")],
        "config_maps": [parameters()],
    }
    parts.update(changes)
    return parts


def world(served_groups=gs.DEFAULT_SERVED_POOL_GROUPS, **changes):
    return gs.build_world(served_groups=served_groups, **stack(**changes))


def cond(conditions, type_):
    matches = [c for c in conditions if c["type"] == type_]
    assert len(matches) == 1, conditions
    return matches[0]


def state(conditions, type_):
    found = cond(conditions, type_)
    return found["status"], found["reason"]


def route_parent(status, name=GW):
    entries = [p for p in status["parents"] if p["parentRef"]["name"] == name]
    assert len(entries) == 1, status
    return entries[0]


def gateway_status(w, gw=None, now=T0):
    gw = gw or next(iter(w["gateways"].values()))
    svc = w["services"].get((gs._meta(gw)["namespace"], gs.gateway_service_name(gw)))
    dep = w["deployments"].get((gs._meta(gw)["namespace"], gs.gateway_service_name(gw)))
    return gs.desired_gateway_status(gw, gs.attached_route_counts(gw, w), svc, dep,
                                     gs.parameters_problem(gw, w), now)


# --------------------------------------------------------------- small helpers

def test_stamp_conditions_keeps_the_time_of_an_unchanged_status_and_stamps_a_change():
    current = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                "lastTransitionTime": T0},
               {"type": "Programmed", "status": "False", "reason": "Pending", "message": "",
                "lastTransitionTime": T0}]
    desired = [gs._condition("Accepted", "True", "Accepted", "ok", 2),
               gs._condition("Programmed", "True", "Programmed", "ok", 2),
               gs._condition("ResolvedRefs", "True", "ResolvedRefs", "ok", 2)]
    stamped = gs.stamp_conditions(desired, current, T1)
    assert [c["lastTransitionTime"] for c in stamped] == [T0, T1, T1]
    assert desired[0].get("lastTransitionTime") is None  # inputs are not modified


@pytest.mark.parametrize("text, expected", [
    (None, None), ("", None), (" , ", None),
    ("inference.networking.k8s.io", ("inference.networking.k8s.io",)),
    ("inference.networking.k8s.io, inference.networking.x-k8s.io",
     ("inference.networking.k8s.io", "inference.networking.x-k8s.io")),
])
def test_parse_served_groups(text, expected):
    assert gs.parse_served_groups(text) == expected


def test_served_groups_come_from_the_configmap_then_the_environment_then_v1_only():
    config = {"data": {gs.CONFIG_KEY: gs.POOL_GROUP_V1ALPHA2}}
    env = {gs.SERVED_GROUPS_ENV: "%s,%s" % (gs.POOL_GROUP_V1, gs.POOL_GROUP_V1ALPHA2)}
    assert gs.served_pool_groups(config, env) == (gs.POOL_GROUP_V1ALPHA2,)
    assert gs.served_pool_groups(None, env) == (gs.POOL_GROUP_V1, gs.POOL_GROUP_V1ALPHA2)
    assert gs.served_pool_groups({"data": {}}, {}) == (gs.POOL_GROUP_V1,)


@pytest.mark.parametrize("selector, labels, expected", [
    (None, {}, True),
    ({"matchLabels": {"team": "ai"}}, {"team": "ai", "x": "y"}, True),
    ({"matchLabels": {"team": "ai"}}, {"team": "web"}, False),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["lab", "dev"]}]}, {"env": "lab"}, True),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["lab"]}]}, {}, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {"env": "prod"}, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
    ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, {"env": ""}, True),
    ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, {"env": "x"}, False),
])
def test_label_selector_matches(selector, labels, expected):
    assert gs.label_selector_matches(selector, labels) is expected


@pytest.mark.parametrize("listener, routes, expected", [
    (None, ["a.example.com"], True),
    ("a.example.com", [], True),
    ("a.example.com", ["a.example.com"], True),
    ("*.example.com", ["a.example.com"], True),
    ("a.example.com", ["*.example.com"], True),
    ("*.example.com", ["example.com"], False),
    ("a.example.com", ["b.example.com"], False),
])
def test_hostnames_intersect(listener, routes, expected):
    assert gs.hostnames_intersect(listener, routes) is expected


# ------------------------------------------------------- gateway Service/Deployment

@pytest.mark.parametrize("data, expected", [
    ({"service": "spec:\n  type: LoadBalancer\n"}, "LoadBalancer"),
    ({"service": "spec:\n  type: NodePort\n"}, "NodePort"),
    ({"deployment": "spec: {}\n"}, "ClusterIP"),
    ({"service": "spec: [unclosed"}, "ClusterIP"),
    ({"service": "just a string"}, "ClusterIP"),
])
def test_service_type_from_parameters(data, expected):
    assert gs.service_type_from_parameters({"data": data}) == expected


def test_desired_gateway_service_mirrors_istio():
    gw = gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP"},
                            {"name": "other-host", "port": 80, "protocol": "HTTP", "hostname": "x.example.com"},
                            {"name": "tls", "port": 443, "protocol": "HTTPS"}])
    svc = gs.desired_gateway_service(gw, parameters(service_type="LoadBalancer"))
    assert svc["metadata"]["name"] == GW + "-istio"
    assert svc["metadata"]["namespace"] == NS
    assert svc["metadata"]["ownerReferences"] == [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                                   "name": GW, "uid": "uid-" + GW, "controller": True}]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["selector"] == {gs.GATEWAY_NAME_LABEL: GW}
    assert [(p["name"], p["port"], p["appProtocol"]) for p in svc["spec"]["ports"]] == [
        ("status-port", 15021, "tcp"), ("default", 80, "http"), ("tls", 443, "https")]


def test_desired_gateway_service_is_clusterip_without_parameters():
    assert gs.desired_gateway_service(gateway(params=None), None)["spec"]["type"] == "ClusterIP"


def test_desired_gateway_deployment_runs_one_proxy_without_accelerators():
    dep = gs.desired_gateway_deployment(gateway())
    assert dep["metadata"]["name"] == GW + "-istio"
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == {gs.GATEWAY_NAME_LABEL: GW}
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"][gs.GATEWAY_NAME_LABEL] == GW
    assert pod["spec"]["serviceAccountName"] == GW + "-istio"
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "istio-proxy"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert gs.desired_gateway_service_account(gateway())["metadata"]["name"] == GW + "-istio"


def test_service_needs_update_only_for_owned_fields():
    desired = gs.desired_gateway_service(gateway(), parameters())
    live = copy.deepcopy(desired)
    live["spec"]["clusterIP"] = "10.0.0.1"
    for port in live["spec"]["ports"]:
        port["targetPort"] = port["port"]
    assert not gs.service_needs_update(live, desired)
    assert gs.service_needs_update(live, gs.desired_gateway_service(gateway(), parameters(service_type="NodePort")))
    live["spec"]["ports"] = live["spec"]["ports"][:1]
    assert gs.service_needs_update(live, desired)


@pytest.mark.parametrize("svc, expected", [
    (None, []),
    (service("s", cluster_ip="10.96.1.2"), [{"type": "IPAddress", "value": "10.96.1.2"}]),
    (service("s", cluster_ip="None"), []),
    (service("s", cluster_ip=""), []),
    (service("s", service_type="LoadBalancer"), []),
    (dict(service("s", service_type="LoadBalancer"), status={"loadBalancer": {"ingress": [
        {"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}),
     [{"type": "IPAddress", "value": "192.0.2.1"}, {"type": "Hostname", "value": "lb.example.com"}]),
])
def test_service_addresses(svc, expected):
    assert gs.service_addresses(svc) == expected


# ------------------------------------------------------------------- HTTPRoutes

def test_route_of_the_healthy_stack_is_accepted_and_resolved():
    w = world()
    status = gs.desired_route_status(w["routes"][0], w, T0)
    parent = route_parent(status)
    assert parent["controllerName"] == gs.CONTROLLER_NAME
    assert parent["parentRef"] == {"group": gs.GATEWAY_GROUP, "kind": "Gateway", "name": GW}
    assert state(parent["conditions"], "Accepted") == ("True", "Accepted")
    assert state(parent["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")
    assert all(c["observedGeneration"] == 3 and c["lastTransitionTime"] == T0 for c in parent["conditions"])


def test_route_to_a_missing_gateway_is_not_accepted():
    w = world(routes=[route(parent="nope")])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0), "nope")
    assert state(parent["conditions"], "Accepted") == ("False", "NoMatchingParent")
    assert "llm-d-sim/nope not found" in cond(parent["conditions"], "Accepted")["message"]


def test_route_to_a_missing_pool_has_unresolved_refs_but_stays_accepted():
    w = world(pools=[])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "Accepted") == ("True", "Accepted")
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "BackendNotFound")


def test_route_to_a_v1alpha2_pool_is_invalid_kind_for_istio_1_28_and_later():
    w = world(routes=[route(backend_group=gs.POOL_GROUP_V1ALPHA2)], pools=[pool_v1alpha2()])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "InvalidKind")
    assert gs.POOL_GROUP_V1ALPHA2 in cond(parent["conditions"], "ResolvedRefs")["message"]


def test_route_to_a_v1alpha2_pool_resolves_when_that_group_is_served():
    w = world(served_groups=(gs.POOL_GROUP_V1ALPHA2,), routes=[route(backend_group=gs.POOL_GROUP_V1ALPHA2)],
              pools=[pool_v1alpha2()])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")


def test_route_to_a_pool_of_the_other_group_is_not_found_not_confused():
    # A v1 backendRef when only a v1alpha2 pool of that name exists.
    w = world(served_groups=(gs.POOL_GROUP_V1, gs.POOL_GROUP_V1ALPHA2), pools=[pool_v1alpha2()])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "BackendNotFound")


def test_route_to_an_unsupported_backend_kind_is_invalid_kind():
    r = route()
    r["spec"]["rules"][0]["backendRefs"] = [{"group": "example.com", "kind": "Thing", "name": "x"}]
    w = world(routes=[r])
    assert state(route_parent(gs.desired_route_status(r, w, T0))["conditions"], "ResolvedRefs") == (
        "False", "InvalidKind")


def test_route_to_a_service_backend_resolves_against_services():
    r = route()
    r["spec"]["rules"][0]["backendRefs"] = [{"group": "", "kind": "Service", "name": EPP, "port": 9002}]
    w = world(routes=[r])
    assert state(route_parent(gs.desired_route_status(r, w, T0))["conditions"], "ResolvedRefs") == (
        "True", "ResolvedRefs")
    r["spec"]["rules"][0]["backendRefs"][0]["name"] = "missing"
    assert state(route_parent(gs.desired_route_status(r, w, T0))["conditions"], "ResolvedRefs") == (
        "False", "BackendNotFound")


def grant(namespace="models", from_ns=NS, to_name=None, to_group=gs.POOL_GROUP_V1):
    target = {"group": to_group, "kind": "InferencePool"}
    if to_name:
        target["name"] = to_name
    return {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": "allow", "namespace": namespace},
            "spec": {"from": [{"group": gs.GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": from_ns}],
                     "to": [target]}}


@pytest.mark.parametrize("grants, expected", [
    ([], ("False", "RefNotPermitted")),
    ([grant()], ("True", "ResolvedRefs")),
    ([grant(to_name=POOL)], ("True", "ResolvedRefs")),
    ([grant(to_name="another-pool")], ("False", "RefNotPermitted")),
    ([grant(from_ns="elsewhere")], ("False", "RefNotPermitted")),
    ([grant(namespace=NS)], ("False", "RefNotPermitted")),
    ([grant(to_group=gs.POOL_GROUP_V1ALPHA2)], ("False", "RefNotPermitted")),
])
def test_cross_namespace_pool_needs_a_reference_grant(grants, expected):
    w = world(routes=[route(backend_ns="models")], pools=[pool_v1(namespace="models")], grants=grants)
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "ResolvedRefs") == expected


def test_cross_namespace_reference_is_checked_before_existence():
    w = world(routes=[route(backend_ns="models")], pools=[])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "RefNotPermitted")


def same_namespace_gateway():
    return gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP",
                               "allowedRoutes": {"namespaces": {"from": "Same"}}}])


def test_route_from_a_namespace_the_listener_does_not_allow_is_not_accepted():
    w = world(gateways=[same_namespace_gateway()], routes=[route(namespace="other", parent_ns=NS)])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "Accepted") == ("False", "NotAllowedByListeners")


def test_listener_namespace_selector_admits_labelled_namespaces():
    gw = gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {
        "from": "Selector", "selector": {"matchLabels": {"llm-d/gateway": "yes"}}}}}])
    labelled = world(gateways=[gw], routes=[route(namespace="other", parent_ns=NS)],
                     namespaces=[namespace(NS), namespace("other", {"llm-d/gateway": "yes"})])
    unlabelled = world(gateways=[gw], routes=[route(namespace="other", parent_ns=NS)])
    assert state(route_parent(gs.desired_route_status(labelled["routes"][0], labelled, T0))["conditions"],
                 "Accepted") == ("True", "Accepted")
    assert state(route_parent(gs.desired_route_status(unlabelled["routes"][0], unlabelled, T0))["conditions"],
                 "Accepted") == ("False", "NotAllowedByListeners")


def test_route_naming_an_unknown_section_is_not_accepted():
    w = world(routes=[route(section="https")])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "Accepted") == ("False", "NoMatchingParent")


def test_route_whose_hostnames_match_no_listener_is_not_accepted():
    gw = gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP", "hostname": "llm.example.com",
                             "allowedRoutes": {"namespaces": {"from": "All"}}}])
    w = world(gateways=[gw], routes=[route(hostnames=["chat.example.org"])])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "Accepted") == ("False", "NoMatchingListenerHostname")


def test_listener_restricted_to_other_route_kinds_does_not_accept_httproutes():
    gw = gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP", "allowedRoutes": {
        "namespaces": {"from": "All"}, "kinds": [{"group": gs.GATEWAY_GROUP, "kind": "GRPCRoute"}]}}])
    w = world(gateways=[gw])
    parent = route_parent(gs.desired_route_status(w["routes"][0], w, T0))
    assert state(parent["conditions"], "Accepted") == ("False", "NotAllowedByListeners")


def test_gateways_of_other_controllers_are_left_to_them():
    other = gateway(name="kgw", class_name="kgateway")
    w = world(gateway_classes=[gateway_class(), gateway_class("kgateway", "kgateway.dev/kgateway")],
              gateways=[gateway(), other], routes=[route(parent="kgw")])
    r = w["routes"][0]
    foreign = {"parentRef": {"group": gs.GATEWAY_GROUP, "kind": "Gateway", "name": "kgw"},
               "controllerName": "kgateway.dev/kgateway",
               "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                               "lastTransitionTime": T0}]}
    r["status"] = {"parents": [foreign]}
    assert gs.desired_route_status(r, w, T1) == {"parents": [foreign]}
    assert gs.evaluate_parent(r, r["spec"]["parentRefs"][0], w) is None


def test_route_status_replaces_our_stale_entry_and_keeps_transition_times():
    w = world()
    r = w["routes"][0]
    r["status"] = gs.desired_route_status(r, w, T0)
    # Unchanged: nothing to write, even later.
    assert not gs.status_changed(r["status"], gs.desired_route_status(r, w, T1))
    # The pool disappears: ResolvedRefs flips at T2, Accepted keeps its T0.
    broken = world(pools=[], routes=[r])
    desired = gs.desired_route_status(r, broken, T2)
    assert gs.status_changed(r["status"], desired)
    (parent,) = desired["parents"]
    assert cond(parent["conditions"], "Accepted")["lastTransitionTime"] == T0
    assert cond(parent["conditions"], "ResolvedRefs")["lastTransitionTime"] == T2


# --------------------------------------------------------------------- Gateways

def test_gateway_of_the_healthy_stack_is_programmed_with_an_address_and_one_route():
    w = world()
    status = gateway_status(w)
    assert state(status["conditions"], "Accepted") == ("True", "Accepted")
    assert state(status["conditions"], "Programmed") == ("True", "Programmed")
    assert status["addresses"] == [{"type": "IPAddress", "value": "10.96.0.10"}]
    (listener,) = status["listeners"]
    assert listener["name"] == "default"
    assert listener["attachedRoutes"] == 1
    assert listener["supportedKinds"] == [{"group": gs.GATEWAY_GROUP, "kind": "HTTPRoute"},
                                          {"group": gs.GATEWAY_GROUP, "kind": "GRPCRoute"}]
    assert state(listener["conditions"], "Programmed") == ("True", "Programmed")
    assert state(listener["conditions"], "Conflicted") == ("False", "NoConflicts")
    assert all(c["observedGeneration"] == 2 for c in status["conditions"] + listener["conditions"])


def test_gateway_is_not_programmed_until_its_deployment_has_a_ready_replica():
    for deployments in ([deployment(ready=0)], []):
        status = gateway_status(world(deployments=deployments))
        assert state(status["conditions"], "Accepted") == ("True", "Accepted")
        assert state(status["conditions"], "Programmed") == ("False", "Pending")
        assert status["addresses"] == [{"type": "IPAddress", "value": "10.96.0.10"}]
        assert state(status["listeners"][0]["conditions"], "Programmed") == ("False", "Pending")


def test_gateway_has_no_address_until_its_service_has_one():
    for services in ([service(EPP, ports=(9002,))],
                     [service(GW + "-istio", ports=(15021, 80), cluster_ip=""), service(EPP, ports=(9002,))]):
        status = gateway_status(world(services=services))
        assert status["addresses"] == []
        assert state(status["conditions"], "Programmed") == ("False", "AddressNotAssigned")


def test_gateway_with_missing_parameters_is_not_accepted():
    w = world(config_maps=[])
    assert gs.parameters_problem(w["gateways"][(NS, GW)], w) == "parameters ConfigMap llm-d-sim/%s not found" % GW
    status = gateway_status(w)
    assert state(status["conditions"], "Accepted") == ("False", "InvalidParameters")
    assert state(status["conditions"], "Programmed") == ("False", "Invalid")
    assert status["addresses"] == []


def test_gateway_parameters_of_another_kind_are_invalid():
    gw = gateway()
    gw["spec"]["infrastructure"]["parametersRef"] = {"group": "gateway.kgateway.dev", "kind": "GatewayParameters",
                                                     "name": GW}
    assert "not supported" in gs.parameters_problem(gw, world(gateways=[gw]))
    assert gs.parameters_problem(gateway(params=None), world()) is None


def test_listener_with_an_unsupported_protocol_is_rejected():
    gw = gateway(listeners=[{"name": "udp", "port": 53, "protocol": "UDP"}])
    status = gateway_status(world(gateways=[gw]), gw)
    assert state(status["conditions"], "Accepted") == ("False", "ListenersNotValid")
    (listener,) = status["listeners"]
    assert state(listener["conditions"], "Accepted") == ("False", "UnsupportedProtocol")
    assert listener["supportedKinds"] == []


def test_listeners_sharing_a_port_with_different_protocols_conflict():
    gw = gateway(listeners=[{"name": "a", "port": 80, "protocol": "HTTP"},
                            {"name": "b", "port": 80, "protocol": "TCP"}])
    status = gateway_status(world(gateways=[gw]), gw)
    for listener in status["listeners"]:
        assert state(listener["conditions"], "Conflicted") == ("True", "ProtocolConflict")
        assert state(listener["conditions"], "Programmed") == ("False", "Invalid")
    assert state(status["conditions"], "Accepted") == ("False", "ListenersNotValid")


def test_attached_routes_count_only_accepted_routes_per_listener():
    gw = gateway(listeners=[{"name": "default", "port": 80, "protocol": "HTTP",
                             "allowedRoutes": {"namespaces": {"from": "Same"}}},
                            {"name": "alt", "port": 8080, "protocol": "HTTP",
                             "allowedRoutes": {"namespaces": {"from": "Same"}}}])
    routes = [
        route("both"),                                         # no sectionName: attaches to both listeners
        route("alt-only", section="alt"),                      # only the alt listener
        route("foreign-ns", namespace="other", parent_ns=NS),  # Same-namespace listeners refuse it
        route("elsewhere", parent="another-gateway"),          # another Gateway
        route("missing-pool", backend="nope"),                 # unresolved refs still attach
    ]
    counts = gs.attached_route_counts(gw, world(gateways=[gw], routes=routes))
    assert counts == {"default": 2, "alt": 3}


# ---------------------------------------------------------------- InferencePools

def test_pool_of_the_healthy_stack_is_accepted_and_resolved():
    w = world()
    status = gs.desired_pool_status(w["pools"][(gs.POOL_GROUP_V1, NS, POOL)], w, T0)
    (parent,) = status["parents"]
    assert parent["parentRef"] == {"group": gs.GATEWAY_GROUP, "kind": "Gateway", "namespace": NS, "name": GW}
    assert state(parent["conditions"], "Accepted") == ("True", "Accepted")
    assert cond(parent["conditions"], "Accepted")["message"] == gs.POOL_ACCEPTED_MESSAGE
    assert state(parent["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")


def pool_parent(w, key=(gs.POOL_GROUP_V1, NS, POOL), field="parents"):
    (parent,) = gs.desired_pool_status(w["pools"][key], w, T0)[field]
    return parent


def test_pool_without_its_epp_service_has_an_invalid_extension_ref():
    parent = pool_parent(world(services=[service(GW + "-istio", ports=(15021, 80))]))
    assert state(parent["conditions"], "Accepted") == ("True", "Accepted")
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "InvalidExtensionRef")
    assert "gaie-sim-epp not found" in cond(parent["conditions"], "ResolvedRefs")["message"]


def test_pool_whose_epp_service_lacks_the_port_has_an_invalid_extension_ref():
    parent = pool_parent(world(pools=[pool_v1(epp_port=9999)]))
    assert state(parent["conditions"], "ResolvedRefs") == ("False", "InvalidExtensionRef")
    assert "no port 9999" in cond(parent["conditions"], "ResolvedRefs")["message"]


def test_pool_reached_only_by_a_route_the_gateway_refuses_is_not_accepted():
    w = world(gateways=[same_namespace_gateway()], routes=[route(namespace="other", parent_ns=NS, backend_ns=NS)],
              grants=[grant(namespace=NS, from_ns="other")])
    parent = pool_parent(w)
    assert state(parent["conditions"], "Accepted") == ("False", "HTTPRouteNotAccepted")


def test_pool_is_accepted_when_any_route_through_that_gateway_is_accepted():
    refused = route("refused", namespace="other", parent_ns=NS, backend_ns=NS)
    for routes in ([route(), refused], [refused, route()]):
        w = world(gateways=[same_namespace_gateway()], routes=routes, grants=[grant(namespace=NS, from_ns="other")])
        assert state(pool_parent(w)["conditions"], "Accepted") == ("True", "Accepted")


def test_pool_without_routes_keeps_the_placeholder_parent():
    w = world(routes=[])
    pool = w["pools"][(gs.POOL_GROUP_V1, NS, POOL)]
    desired = gs.desired_pool_status(pool, w, T0)
    assert desired == {"parents": [placeholder()]}
    assert not gs.status_changed(pool["status"], desired)


def test_pool_gets_the_placeholder_back_when_its_last_route_goes():
    w = world()
    pool = w["pools"][(gs.POOL_GROUP_V1, NS, POOL)]
    pool["status"] = gs.desired_pool_status(pool, w, T0)
    assert gs.desired_pool_status(pool, world(routes=[], pools=[pool]), T1) == {"parents": [placeholder()]}


def test_pool_keeps_parents_of_other_controllers_gateways():
    foreign = {"parentRef": {"group": gs.GATEWAY_GROUP, "kind": "Gateway", "namespace": NS, "name": "kgw"},
               "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                               "lastTransitionTime": T0}]}
    pool = pool_v1()
    pool["status"] = {"parents": [foreign]}
    w = world(gateway_classes=[gateway_class(), gateway_class("kgateway", "kgateway.dev/kgateway")],
              gateways=[gateway(), gateway(name="kgw", class_name="kgateway")], pools=[pool])
    parents = gs.desired_pool_status(pool, w, T1)["parents"]
    assert [p["parentRef"]["name"] for p in parents] == ["kgw", GW]
    assert parents[0] == foreign


def test_v1alpha2_pool_reports_under_status_parent_when_served():
    w = world(served_groups=(gs.POOL_GROUP_V1ALPHA2,), routes=[route(backend_group=gs.POOL_GROUP_V1ALPHA2)],
              pools=[pool_v1alpha2()])
    parent = pool_parent(w, (gs.POOL_GROUP_V1ALPHA2, NS, POOL), "parent")
    assert state(parent["conditions"], "Accepted") == ("True", "Accepted")
    assert state(parent["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")


def test_v1alpha2_extension_ref_defaults_to_port_9002():
    w = world(served_groups=(gs.POOL_GROUP_V1ALPHA2,), routes=[route(backend_group=gs.POOL_GROUP_V1ALPHA2)],
              pools=[pool_v1alpha2()], services=[service(GW + "-istio", ports=(15021, 80)), service(EPP, ports=(9090,))])
    parent = pool_parent(w, (gs.POOL_GROUP_V1ALPHA2, NS, POOL), "parent")
    assert "no port 9002" in cond(parent["conditions"], "ResolvedRefs")["message"]


def test_pools_of_an_unserved_group_are_left_alone():
    w = world(routes=[route(backend_group=gs.POOL_GROUP_V1ALPHA2)], pools=[pool_v1alpha2()])
    assert gs.desired_pool_status(w["pools"][(gs.POOL_GROUP_V1ALPHA2, NS, POOL)], w, T0) is None


def test_pool_status_is_stable_once_written():
    w = world()
    pool = w["pools"][(gs.POOL_GROUP_V1, NS, POOL)]
    pool["status"] = gs.desired_pool_status(pool, w, T0)
    assert not gs.status_changed(pool["status"], gs.desired_pool_status(pool, w, T1))


# ------------------------------------------------------------- writes and classes

def test_gateway_status_is_written_once_then_only_on_change():
    w = world(deployments=[deployment(ready=0)])
    gw = w["gateways"][(NS, GW)]
    first = gateway_status(w, gw, T0)
    assert gs.status_changed(gw.get("status"), first)
    gw["status"] = first
    assert not gs.status_changed(gw["status"], gateway_status(w, gw, T1))
    ready = world(gateways=[gw])
    second = gateway_status(ready, gw, T2)
    assert gs.status_changed(gw["status"], second)
    assert cond(second["conditions"], "Programmed")["lastTransitionTime"] == T2
    assert cond(second["conditions"], "Accepted")["lastTransitionTime"] == T0


def test_status_changed_treats_missing_and_empty_lists_alike():
    assert not gs.status_changed({}, {"addresses": []})
    assert gs.status_changed({"addresses": []}, {"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}]})


def test_gateway_class_of_ours_is_accepted():
    status = gs.desired_gateway_class_status(gateway_class(), T0)
    assert state(status["conditions"], "Accepted") == ("True", "Accepted")


def test_only_gateways_of_an_istio_class_are_managed():
    w = world(gateway_classes=[gateway_class(), gateway_class("kgateway", "kgateway.dev/kgateway")])
    assert gs.is_managed_gateway(gateway(), w)
    assert not gs.is_managed_gateway(gateway(class_name="kgateway"), w)
    assert not gs.is_managed_gateway(gateway(class_name="missing"), w)


class RecordingStatus:
    def __init__(self):
        self.patches = []

    def patch(self, **kwargs):
        self.patches.append(kwargs)


class RecordingResource:
    def __init__(self):
        self.status = RecordingStatus()


def test_controller_writes_status_through_the_subresource_only_when_it_changes():
    import logging

    controller = gs.Controller.__new__(gs.Controller)
    controller.log = logging.getLogger("test")
    resource = RecordingResource()
    controller._resources = {gs.GATEWAY: resource}
    w = world()
    gw = w["gateways"][(NS, GW)]
    desired = gateway_status(w, gw, T0)
    controller._write_status(gs.GATEWAY, gw, desired)
    assert resource.status.patches == [{"body": {"status": desired}, "name": GW, "namespace": NS,
                                        "content_type": "application/merge-patch+json"}]
    gw["status"] = desired
    controller._write_status(gs.GATEWAY, gw, gateway_status(w, gw, T1))
    assert len(resource.status.patches) == 1


def test_summarize_names_each_condition():
    w = world(deployments=[deployment(ready=0)])
    text = gs.summarize(gateway_status(w))
    assert "Accepted=True" in text and "Programmed=False(Pending)" in text and "default.attachedRoutes=1" in text


def test_describe_reports_the_heartbeat(tmp_path):
    import json
    import time

    lab_dir = str(tmp_path)
    assert gs.describe(lab_dir) == (["  gateway status simulator: not running"], False)
    os.makedirs(os.path.dirname(gs.heartbeat_path(lab_dir)))

    def beat(age):
        with open(gs.heartbeat_path(lab_dir), "w") as handle:
            json.dump({"pid": os.getpid(), "synced_at": time.time() - age, "gateways": 1,
                       "served_pool_groups": [gs.POOL_GROUP_V1]}, handle)

    beat(1)
    (line,), healthy = gs.describe(lab_dir)
    assert healthy and "running" in line and "1 Istio gateway(s)" in line and gs.POOL_GROUP_V1 in line
    beat(gs.STALE_SECONDS + 5)
    (line,), healthy = gs.describe(lab_dir)
    assert not healthy and "STALE" in line
