"""The offline fixtures (CRDs, charts) and the gateway status simulator, against
the lab's real kube-apiserver.

Shared lab: cluster-scoped CRDs are applied idempotently and left in place;
everything else lives in a per-test namespace or carries a unique name and is
removed afterwards. The Istio charts (which own cluster-scoped CRDs and use
istio-system) are exercised in a private lab.

The status simulator normally runs in the lab's supervisor; when the running
supervisor predates lab/simulators/gateway_status.py (no fresh heartbeat), the
tests host the same Controller in-process against the same apiserver.
"""
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from kubernetes.dynamic.exceptions import NotFoundError

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(REPO, "lab", "fixtures")
CHARTS = os.path.join(FIXTURES, "charts")
CRD_DIRS = ("gateway-api", "gaie", "openshift", "kgateway", "prometheus")
if os.path.join(REPO, "lab") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "lab"))

from simulators import gateway_status  # noqa: E402

ISTIO = gateway_status.CONTROLLER_NAME
GW_GROUP = "gateway.networking.k8s.io"
POOL_V1 = "inference.networking.k8s.io"
POOL_X = "inference.networking.x-k8s.io"
STATUS_TIMEOUT = 60
HELM_TIMEOUT = 240


# ----------------------------------------------------------------------- helpers

def run(lab, *args, timeout=HELM_TIMEOUT, check=True):
    result = subprocess.run(list(args), env=lab.env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), result.returncode, result.stdout, result.stderr))
    return result


def helm_install(lab, release, chart, namespace, *values):
    return run(lab, "helm", "install", release, os.path.join(CHARTS, chart), "-n", namespace, "--wait",
               "--timeout", "%ds" % (HELM_TIMEOUT - 20), *values)


def apply_fixture_crds(lab, dirs=CRD_DIRS):
    for name in dirs:
        run(lab, "kubectl", "apply", "-f", os.path.join(FIXTURES, "crds", name))
    run(lab, "kubectl", "wait", "--for", "condition=Established", "--timeout=60s", "crd",
        "-l", "app.kubernetes.io/part-of=llmd-lab-fixtures")


def get(dyn, api_version, kind, name, namespace=None):
    """The object as a dict, or None."""
    try:
        return dyn.resources.get(api_version=api_version, kind=kind).get(
            name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return None


def condition(conditions, type_):
    for cond in conditions or []:
        if cond.get("type") == type_:
            return cond.get("status"), cond.get("reason")
    return None


def route_parent(route, gateway_name):
    for parent in ((route or {}).get("status") or {}).get("parents") or []:
        if parent.get("controllerName") == ISTIO and parent["parentRef"]["name"] == gateway_name:
            return parent
    return None


def pool_parent(pool, gateway_name, field="parents"):
    for parent in ((pool or {}).get("status") or {}).get(field) or []:
        if parent["parentRef"].get("name") == gateway_name:
            return parent
    return None


def heartbeat_is_fresh(lab_dir):
    return gateway_status.describe(lab_dir)[1]


class InProcessSimulator:
    """The gateway status Controller in a thread, for a lab whose supervisor predates it."""

    def __init__(self, api_client, state_dir, bin_dir):
        self.controller = gateway_status.Controller(api_client, state_dir, bin_dir,
                                                    logging.getLogger("gateway_status.test"))
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="gateway-status", daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.wait(0.5):
            try:
                self.controller.sync()
            except Exception as exc:  # surfaced at teardown
                self.errors.append(repr(exc))

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.controller.close()
        assert not self.errors, "gateway status syncs failed: %s" % self.errors[:3]


@pytest.fixture(scope="module")
def crds(lab):
    apply_fixture_crds(lab)


@pytest.fixture(scope="module")
def gateway_simulator(lab, crds, api_client, tmp_path_factory):
    """'supervisor' when the lab runs the simulator, else 'in-process' (hosted here)."""
    if heartbeat_is_fresh(lab.dir):
        yield "supervisor"
        return
    simulator = InProcessSimulator(api_client, str(tmp_path_factory.mktemp("gateway-status")), lab.bin_dir)
    yield "in-process"
    simulator.close()


@pytest.fixture()
def istio_class(dynamic_client, crds):
    """A GatewayClass of the simulated Istio controller with a unique name, deleted afterwards."""
    name = "t-istio-%s" % uuid.uuid4().hex[:6]
    classes = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="GatewayClass")
    classes.create(body={"apiVersion": GW_GROUP + "/v1", "kind": "GatewayClass", "metadata": {"name": name},
                         "spec": {"controllerName": ISTIO}})
    yield name
    classes.delete(name=name)


@pytest.fixture()
def releases(lab, namespace):
    """Names of helm releases to uninstall at the end (the EPP has cluster-scoped RBAC)."""
    installed = []
    yield installed
    for release in reversed(installed):
        run(lab, "helm", "uninstall", release, "-n", namespace, "--wait", check=False)


# ------------------------------------------------------------------------- CRDs

def test_fixture_crds_apply_idempotently_and_are_established(lab, crds, dynamic_client):
    apply_fixture_crds(lab)  # a second apply changes nothing and still succeeds
    crd_api = dynamic_client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    fixtures = crd_api.get(label_selector="app.kubernetes.io/part-of=llmd-lab-fixtures").to_dict()["items"]
    by_name = {c["metadata"]["name"]: c for c in fixtures}
    expected = {
        "gatewayclasses.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io",
        "inferencepools.inference.networking.k8s.io", "inferencepools.inference.networking.x-k8s.io",
        "inferenceobjectives.inference.networking.x-k8s.io", "inferencemodels.inference.networking.x-k8s.io",
        "clusterversions.config.openshift.io", "routes.route.openshift.io",
        "servicemeshcontrolplanes.maistra.io", "servicemeshmemberrolls.maistra.io",
        "servicemeshmembers.maistra.io", "securitycontextconstraints.security.openshift.io",
        "gatewayparameters.gateway.kgateway.dev", "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
    }
    assert expected <= set(by_name)
    for name in expected:
        assert condition(by_name[name]["status"]["conditions"], "Established")[0] == "True", name
    gateways = by_name["gateways.gateway.networking.k8s.io"]
    assert gateways["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.5.1"
    assert gateways["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
    assert by_name["inferencepools.inference.networking.k8s.io"]["metadata"]["annotations"][
        "inference.networking.k8s.io/bundle-version"] == "v1.4.0"
    assert [(v["name"], v["storage"]) for v in by_name["referencegrants.gateway.networking.k8s.io"]["spec"][
        "versions"]] == [("v1", True), ("v1beta1", False)]
    assert by_name["clusterversions.config.openshift.io"]["spec"]["scope"] == "Cluster"


def test_crd_schemas_default_and_validate(lab, crds, namespace, dynamic_client):
    pools = dynamic_client.resources.get(api_version=POOL_V1 + "/v1", kind="InferencePool")
    pool = pools.create(namespace=namespace, body={
        "apiVersion": POOL_V1 + "/v1", "kind": "InferencePool", "metadata": {"name": "p"},
        "spec": {"selector": {"matchLabels": {"app": "m"}}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": "p-epp", "port": {"number": 9002}}}}).to_dict()
    # Defaults as upstream: the placeholder parent and the Service kind of the picker.
    assert pool["status"]["parents"][0]["parentRef"] == {"group": GW_GROUP, "kind": "Status", "name": "default"}
    assert pool["spec"]["endpointPickerRef"]["kind"] == "Service"
    invalid = subprocess.run(["kubectl", "-n", namespace, "create", "-f", "-"], env=lab.env, text=True, check=False,
                             capture_output=True, timeout=30, input=json.dumps({
                                 "apiVersion": POOL_V1 + "/v1", "kind": "InferencePool",
                                 "metadata": {"name": "no-port"},
                                 "spec": {"selector": {"matchLabels": {"app": "m"}}, "targetPorts": [{"number": 8000}],
                                          "endpointPickerRef": {"name": "p-epp"}}}))
    assert invalid.returncode != 0 and "port is required" in invalid.stderr
    route = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute").create(
        namespace=namespace, body={"apiVersion": GW_GROUP + "/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
                                   "spec": {"parentRefs": [{"name": "g"}], "rules": [{"backendRefs": [
                                       {"group": POOL_V1, "kind": "InferencePool", "name": "p"}]}]}}).to_dict()
    assert route["spec"]["parentRefs"][0] == {"group": GW_GROUP, "kind": "Gateway", "name": "g"}
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


# ------------------------------------------------------------------- charts offline

REQUIRED_VALUES = {"inferencepool": ("--set-string", "inferencePool.modelServers.matchLabels.app=sim")}


@pytest.mark.parametrize("chart, version", [("llm-d-infra", "v1.4.0"), ("inferencepool", "v1.4.0"),
                                            ("llm-d-modelservice", "v0.4.9"), ("istio-base", "1.29.1"),
                                            ("istiod", "1.29.1")])
def test_fixture_chart_lints_at_the_pinned_version(lab, chart, version):
    lint = run(lab, "helm", "lint", os.path.join(CHARTS, chart), *REQUIRED_VALUES.get(chart, ()))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
    shown = run(lab, "helm", "show", "chart", os.path.join(CHARTS, chart)).stdout
    assert "\nversion: %s\n" % version in "\n" + shown


@pytest.mark.parametrize("chart, values, message", [
    ("inferencepool", (), "inferencePool.modelServers.matchLabels is required"),
    ("inferencepool", ("--set", "inferencePool.apiVersion=example.com/v1") + REQUIRED_VALUES["inferencepool"],
     'inferencePool.apiVersion "example.com/v1" is not supported'),
    ("inferencepool", ("--set", "provider.name=gke") + REQUIRED_VALUES["inferencepool"],
     'provider.name "gke" is not supported by this fixture'),
    ("llm-d-infra", ("--set", "gateway.gatewayParameters.accessLogging=true"),
     "/gateway/gatewayParameters': additional properties 'accessLogging' not allowed"),
    ("llm-d-infra", ("--set", "gateway.provider=gke-l7-regional-external-managed"), "/gateway/provider"),
    ("llm-d-modelservice", ("--set", "multinode=true"), "multinode: true (LeaderWorkerSet) is not supported"),
    ("llm-d-modelservice", ("--set", "modelArtifacts.uri=oci://quay.io/m"), 'modelArtifacts.uri "oci://quay.io/m"'),
])
def test_fixture_charts_reject_bad_values_naming_the_value(lab, chart, values, message):
    result = run(lab, "helm", "template", "x", os.path.join(CHARTS, chart), *values, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_istiod_creates_the_istio_class_only_when_gateway_api_is_served(lab):
    chart = os.path.join(CHARTS, "istiod")
    with_api = run(lab, "helm", "template", "istiod", chart, "--api-versions", GW_GROUP + "/v1/GatewayClass").stdout
    assert "kind: GatewayClass" in with_api and "controllerName: istio.io/gateway-controller" in with_api
    assert "kind: GatewayClass" not in run(lab, "helm", "template", "istiod", chart).stdout


# ------------------------------------------------ the llm-d charts and the simulator

def test_llm_d_charts_install_with_upstream_names_and_the_simulator_programs_the_stack(
        lab, namespace, istio_class, releases, dynamic_client, gateway_simulator, wait_until):
    ns = namespace
    releases.append("infra-fx")
    helm_install(lab, "infra-fx", "llm-d-infra", ns, "--set", "gateway.gatewayClassName=" + istio_class)
    releases.append("gaie-fx")
    helm_install(lab, "gaie-fx", "inferencepool", ns, "--set-string",
                 r"inferencePool.modelServers.matchLabels.llm-d\.ai/inference-serving=true",
                 "--set", "provider.name=istio")
    releases.append("ms-fx")
    helm_install(lab, "ms-fx", "llm-d-modelservice", ns, "--set", "decode.replicas=1",
                 "--set", "prefill.replicas=1")

    listed = json.loads(run(lab, "helm", "list", "-n", ns, "-o", "json").stdout)
    assert {(r["name"], r["chart"], r["status"]) for r in listed} == {
        ("infra-fx", "llm-d-infra-v1.4.0", "deployed"), ("gaie-fx", "inferencepool-v1.4.0", "deployed"),
        ("ms-fx", "llm-d-modelservice-v0.4.9", "deployed")}

    # llm-d-infra: the Gateway and its Istio parameters.
    gw_name = "infra-fx-inference-gateway"
    gw = get(dynamic_client, GW_GROUP + "/v1", "Gateway", gw_name, ns)
    labels = gw["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "inference-gateway"
    assert labels["app.kubernetes.io/gateway"] == gw_name
    assert labels["istio.io/enable-inference-extproc"] == "true"
    assert gw["spec"]["gatewayClassName"] == istio_class
    (listener,) = gw["spec"]["listeners"]
    assert (listener["name"], listener["port"], listener["protocol"], listener["allowedRoutes"]["namespaces"]["from"]) \
        == ("default", 80, "HTTP", "All")
    assert gw["spec"]["infrastructure"]["parametersRef"] == {"group": "", "kind": "ConfigMap", "name": gw_name}
    assert "type: ClusterIP" in get(dynamic_client, "v1", "ConfigMap", gw_name, ns)["data"]["service"]

    # inferencepool: EPP and pool.
    epp = get(dynamic_client, "apps/v1", "Deployment", "gaie-fx-epp", ns)
    pod_spec = epp["spec"]["template"]["spec"]
    assert epp["spec"]["template"]["metadata"]["labels"]["inferencepool"] == "gaie-fx-epp"
    (container,) = pod_spec["containers"]
    assert container["name"] == "epp"
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
        ("grpc", 9002), ("grpc-health", 9003), ("metrics", 9090)]
    args = container["args"]
    assert args[args.index("--pool-name") + 1] == "gaie-fx"
    assert args[args.index("--pool-namespace") + 1] == ns
    assert "--pool-group" not in args
    assert args[args.index("--config-file") + 1] == "/config/default-plugins.yaml"
    service = get(dynamic_client, "v1", "Service", "gaie-fx-epp", ns)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("grpc-ext-proc", 9002), ("http-metrics", 9090)]
    assert get(dynamic_client, "v1", "ServiceAccount", "gaie-fx-epp", ns)
    assert "EndpointPickerConfig" in get(dynamic_client, "v1", "ConfigMap", "gaie-fx-epp", ns)["data"][
        "default-plugins.yaml"]
    assert get(dynamic_client, "rbac.authorization.k8s.io/v1", "ClusterRole", "gaie-fx-%s-epp" % ns)
    pool = get(dynamic_client, POOL_V1 + "/v1", "InferencePool", "gaie-fx", ns)
    assert pool["spec"]["selector"]["matchLabels"] == {"llm-d.ai/inference-serving": "true"}
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "gaie-fx-epp"
    assert pool["spec"]["endpointPickerRef"]["port"] == {"number": 9002}

    # llm-d-modelservice: decode with the routing proxy, prefill without.
    decode = get(dynamic_client, "apps/v1", "Deployment", "ms-fx-llm-d-modelservice-decode", ns)
    prefill = get(dynamic_client, "apps/v1", "Deployment", "ms-fx-llm-d-modelservice-prefill", ns)
    assert decode["spec"]["template"]["metadata"]["labels"] == {"llm-d.ai/inference-serving": "true",
                                                                "llm-d.ai/role": "decode"}
    (proxy,) = decode["spec"]["template"]["spec"]["initContainers"]
    assert proxy["name"] == "routing-proxy" and proxy["restartPolicy"] == "Always"
    assert proxy["args"][:3] == ["--port=8000", "--vllm-port=8200", "--connector=nixlv2"]
    for deployment, port in ((decode, "8200"), (prefill, "8000")):
        (vllm,) = deployment["spec"]["template"]["spec"]["containers"]
        assert vllm["name"] == "vllm"
        assert vllm["args"][vllm["args"].index("--port") + 1] == port
        assert vllm["args"][vllm["args"].index("--served-model-name") + 1] == "random"
        assert vllm["ports"][0]["containerPort"] == int(port)
        assert vllm["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert {e["name"] for e in vllm["env"]} >= {"POD_NAME", "POD_NAMESPACE"}
    assert "initContainers" not in prefill["spec"]["template"]["spec"]
    pods = dynamic_client.resources.get(api_version="v1", kind="Pod").get(namespace=ns).to_dict()["items"]
    roles = sorted(p["metadata"]["labels"].get("llm-d.ai/role", p["metadata"]["labels"].get("inferencepool"))
                   for p in pods if not p["metadata"]["name"].startswith(gw_name))
    assert roles == ["decode", "gaie-fx-epp", "prefill"]

    # The HTTPRoute, as the guides apply it out of band.
    routes = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute")
    routes.create(namespace=ns, body={
        "apiVersion": GW_GROUP + "/v1", "kind": "HTTPRoute", "metadata": {"name": "llm-d-fx"},
        "spec": {"parentRefs": [{"group": GW_GROUP, "kind": "Gateway", "name": gw_name}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [{"group": POOL_V1, "kind": "InferencePool", "name": "gaie-fx",
                                             "port": 8000, "weight": 1}],
                            "timeouts": {"request": "0s", "backendRequest": "0s"}}]}})

    def programmed():
        gw = get(dynamic_client, GW_GROUP + "/v1", "Gateway", gw_name, ns)
        status = gw.get("status") or {}
        listeners = status.get("listeners") or []
        ok = (condition(status.get("conditions"), "Programmed") == ("True", "Programmed")
              and status.get("addresses") and listeners and listeners[0]["attachedRoutes"] == 1)
        return gw if ok else None

    gw = wait_until(programmed, STATUS_TIMEOUT, "Gateway %s Programmed with an address and 1 route (%s simulator)"
                    % (gw_name, gateway_simulator))
    assert condition(gw["status"]["conditions"], "Accepted") == ("True", "Accepted")
    gateway_service = get(dynamic_client, "v1", "Service", gw_name + "-istio", ns)
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": gateway_service["spec"]["clusterIP"]}]
    assert gateway_service["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in gateway_service["spec"]["ports"]] == [("status-port", 15021), ("default", 80)]
    assert gateway_service["metadata"]["ownerReferences"][0]["uid"] == gw["metadata"]["uid"]
    gateway_deployment = get(dynamic_client, "apps/v1", "Deployment", gw_name + "-istio", ns)
    assert gateway_deployment["status"]["readyReplicas"] == 1
    assert gateway_deployment["spec"]["template"]["spec"]["containers"][0]["name"] == "istio-proxy"

    def route_state(accepted, resolved):
        def check():
            parent = route_parent(get(dynamic_client, GW_GROUP + "/v1", "HTTPRoute", "llm-d-fx", ns), gw_name)
            conditions = (parent or {}).get("conditions")
            if condition(conditions, "Accepted") == accepted and condition(conditions, "ResolvedRefs") == resolved:
                return parent
            return None
        return check

    wait_until(route_state(("True", "Accepted"), ("True", "ResolvedRefs")), STATUS_TIMEOUT,
               "HTTPRoute llm-d-fx Accepted and ResolvedRefs")

    def pool_state(accepted, resolved, name="gaie-fx"):
        def check():
            parent = pool_parent(get(dynamic_client, POOL_V1 + "/v1", "InferencePool", name, ns), gw_name)
            conditions = (parent or {}).get("conditions")
            if condition(conditions, "Accepted") == accepted and condition(conditions, "ResolvedRefs") == resolved:
                return parent
            return None
        return check

    parent = wait_until(pool_state(("True", "Accepted"), ("True", "ResolvedRefs")), STATUS_TIMEOUT,
                        "InferencePool gaie-fx Accepted and ResolvedRefs")
    assert parent["parentRef"] == {"group": GW_GROUP, "kind": "Gateway", "namespace": ns, "name": gw_name}
    pool = get(dynamic_client, POOL_V1 + "/v1", "InferencePool", "gaie-fx", ns)
    assert [p["parentRef"]["name"] for p in pool["status"]["parents"]] == [gw_name]  # placeholder gone

    # Settled: no further status writes (the simulator compares before writing).
    versions = [get(dynamic_client, api, kind, name, ns)["metadata"]["resourceVersion"] for api, kind, name in (
        (GW_GROUP + "/v1", "Gateway", gw_name), (GW_GROUP + "/v1", "HTTPRoute", "llm-d-fx"),
        (POOL_V1 + "/v1", "InferencePool", "gaie-fx"))]
    time.sleep(4)
    assert versions == [get(dynamic_client, api, kind, name, ns)["metadata"]["resourceVersion"] for api, kind, name in (
        (GW_GROUP + "/v1", "Gateway", gw_name), (GW_GROUP + "/v1", "HTTPRoute", "llm-d-fx"),
        (POOL_V1 + "/v1", "InferencePool", "gaie-fx"))]

    # The EPP Service goes: the pool's ResolvedRefs turns False.
    dynamic_client.resources.get(api_version="v1", kind="Service").delete(name="gaie-fx-epp", namespace=ns)
    wait_until(pool_state(("True", "Accepted"), ("False", "InvalidExtensionRef")), STATUS_TIMEOUT,
               "InferencePool gaie-fx ResolvedRefs=False/InvalidExtensionRef")

    # The route points at a v1alpha2 pool: Istio >= 1.28 does not serve that group.
    x_pools = dynamic_client.resources.get(api_version=POOL_X + "/v1alpha2", kind="InferencePool")
    x_pools.create(namespace=ns, body={
        "apiVersion": POOL_X + "/v1alpha2", "kind": "InferencePool", "metadata": {"name": "gaie-fx-old"},
        "spec": {"selector": {"llm-d.ai/inference-serving": "true"}, "targetPortNumber": 8000,
                 "extensionRef": {"name": "gaie-fx-epp"}}})
    patch_backend(routes, ns, {"group": POOL_X, "kind": "InferencePool", "name": "gaie-fx-old", "port": 8000})
    wait_until(route_state(("True", "Accepted"), ("False", "InvalidKind")), STATUS_TIMEOUT,
               "HTTPRoute ResolvedRefs=False/InvalidKind for a v1alpha2 backend")
    old_pool = get(dynamic_client, POOL_X + "/v1alpha2", "InferencePool", "gaie-fx-old", ns)
    assert old_pool["status"]["parent"][0]["parentRef"]["kind"] == "Status"  # an unserved group is left alone

    # Back to the v1 pool, then the pool is deleted: BackendNotFound.
    patch_backend(routes, ns, {"group": POOL_V1, "kind": "InferencePool", "name": "gaie-fx", "port": 8000})
    wait_until(route_state(("True", "Accepted"), ("True", "ResolvedRefs")), STATUS_TIMEOUT,
               "HTTPRoute resolved again")
    dynamic_client.resources.get(api_version=POOL_V1 + "/v1", kind="InferencePool").delete(name="gaie-fx", namespace=ns)
    wait_until(route_state(("True", "Accepted"), ("False", "BackendNotFound")), STATUS_TIMEOUT,
               "HTTPRoute ResolvedRefs=False/BackendNotFound after the pool is deleted")
    gw = get(dynamic_client, GW_GROUP + "/v1", "Gateway", gw_name, ns)
    assert gw["status"]["listeners"][0]["attachedRoutes"] == 1  # still attached, just unresolved


def patch_backend(routes, namespace, backend):
    routes.patch(name="llm-d-fx", namespace=namespace, content_type="application/json-patch+json",
                 body=[{"op": "replace", "path": "/spec/rules/0/backendRefs/0", "value": backend}])


def test_gateway_without_its_parameters_configmap_is_not_accepted(
        lab, namespace, istio_class, dynamic_client, gateway_simulator, wait_until):
    gateways = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="Gateway")
    gateways.create(namespace=namespace, body={
        "apiVersion": GW_GROUP + "/v1", "kind": "Gateway", "metadata": {"name": "no-params"},
        "spec": {"gatewayClassName": istio_class,
                 "listeners": [{"name": "default", "port": 80, "protocol": "HTTP"}],
                 "infrastructure": {"parametersRef": {"group": "", "kind": "ConfigMap", "name": "missing"}}}})

    def rejected():
        status = (get(dynamic_client, GW_GROUP + "/v1", "Gateway", "no-params", namespace) or {}).get("status") or {}
        return condition(status.get("conditions"), "Accepted") == ("False", "InvalidParameters")

    wait_until(rejected, STATUS_TIMEOUT, "Gateway no-params Accepted=False/InvalidParameters")
    assert get(dynamic_client, "v1", "Service", "no-params-istio", namespace) is None


# ------------------------------------------------------- Istio charts (private lab)

@pytest.mark.slow
def test_istio_charts_and_served_pool_groups_in_a_private_lab(tmp_path, make_lab, wait_until):
    private = make_lab(str(tmp_path / "lab"))
    up = private.lab_sh("up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        run_istio_scenario(private, wait_until)
    finally:
        down = private.lab_sh("down", timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


def run_istio_scenario(lab, wait_until):
    from kubernetes import config, dynamic

    api_client = config.new_client_from_config(config_file=lab.kubeconfig)
    try:
        istio_scenario(lab, dynamic.DynamicClient(api_client), wait_until)
    finally:
        api_client.close()


def istio_scenario(lab, dyn, wait_until):
    apply_fixture_crds(lab, ("gateway-api", "gaie"))
    run(lab, "kubectl", "create", "namespace", "istio-system")

    # Istio CRDs created by someone else (as on OpenShift with Service Mesh): Helm refuses them...
    run(lab, "kubectl", "apply", "-f", os.path.join(FIXTURES, "crds", "istio"))
    refused = run(lab, "helm", "install", "istio-base", os.path.join(CHARTS, "istio-base"), "-n", "istio-system",
                  check=False)
    assert refused.returncode != 0 and "cannot be imported into the current release" in refused.stderr
    # ...until they carry Helm ownership metadata for that release.
    crd_names = run(lab, "kubectl", "get", "crd", "-o", "name").stdout.split()
    for crd in [c for c in crd_names if c.endswith(".istio.io")]:
        run(lab, "kubectl", "label", "--overwrite", crd, "app.kubernetes.io/managed-by=Helm")
        run(lab, "kubectl", "annotate", "--overwrite", crd, "meta.helm.sh/release-name=istio-base",
            "meta.helm.sh/release-namespace=istio-system")
    helm_install(lab, "istio-base", "istio-base", "istio-system")
    helm_install(lab, "istiod", "istiod", "istio-system", "--set-string",
                 "pilot.env.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true", "--set-string",
                 "meshConfig.defaultConfig.proxyMetadata.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true")
    helm_list = run(lab, "helm", "list", "-n", "istio-system", "-o", "json").stdout
    listed = {r["name"]: r["chart"] for r in json.loads(helm_list)}
    assert listed == {"istio-base": "base-1.29.1", "istiod": "istiod-1.29.1"}
    istiod = get(dyn, "apps/v1", "Deployment", "istiod", "istio-system")
    assert istiod["status"]["readyReplicas"] == 1
    assert istiod["spec"]["template"]["metadata"]["labels"]["app"] == "istiod"
    assert istiod["spec"]["template"]["metadata"]["labels"]["istio"] == "pilot"
    env = {e["name"]: e.get("value") for e in istiod["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ENABLE_GATEWAY_API_INFERENCE_EXTENSION"] == "true"
    assert "ENABLE_GATEWAY_API_INFERENCE_EXTENSION" in get(dyn, "v1", "ConfigMap", "istio", "istio-system")[
        "data"]["mesh"]
    assert get(dyn, "networking.istio.io/v1", "DestinationRule", "x", "istio-system") is None  # CRD served

    # The supervisor of this fresh lab runs the simulator: it accepts the istio class the chart created.
    wait_until(lambda: heartbeat_is_fresh(lab.dir), 30, "the private lab's gateway status heartbeat")
    wait_until(lambda: condition(((get(dyn, GW_GROUP + "/v1", "GatewayClass", "istio") or {}).get("status") or {})
                                 .get("conditions"), "Accepted") == ("True", "Accepted"),
               STATUS_TIMEOUT, "GatewayClass istio Accepted")

    # An Istio 1.27-like gateway (v1alpha2 pools only), switched by the lab ConfigMap.
    run(lab, "kubectl", "-n", "istio-system", "create", "configmap", gateway_status.CONFIG_NAME,
        "--from-literal=%s=%s" % (gateway_status.CONFIG_KEY, POOL_X))
    ns = "old-istio"
    run(lab, "kubectl", "create", "namespace", ns)
    helm_install(lab, "infra-old", "llm-d-infra", ns)
    helm_install(lab, "gaie-old", "inferencepool", ns, "--set", "inferencePool.apiVersion=%s/v1alpha2" % POOL_X,
                 "--set", "provider.name=istio", "--set-string", "inferencePool.modelServers.matchLabels.app=sim")
    pool = get(dyn, POOL_X + "/v1alpha2", "InferencePool", "gaie-old", ns)
    assert pool["spec"]["extensionRef"]["name"] == "gaie-old-epp"
    epp_args = get(dyn, "apps/v1", "Deployment", "gaie-old-epp", ns)["spec"]["template"]["spec"]["containers"][0][
        "args"]
    assert epp_args[epp_args.index("--pool-group") + 1] == POOL_X
    assert get(dyn, "networking.istio.io/v1", "DestinationRule", "gaie-old-epp", ns)["spec"]["trafficPolicy"][
        "tls"] == {"mode": "SIMPLE", "insecureSkipVerify": True}
    dyn.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute").create(namespace=ns, body={
        "apiVersion": GW_GROUP + "/v1", "kind": "HTTPRoute", "metadata": {"name": "old-route"},
        "spec": {"parentRefs": [{"name": "infra-old-inference-gateway"}],
                 "rules": [{"backendRefs": [{"group": POOL_X, "kind": "InferencePool", "name": "gaie-old",
                                             "port": 8000}]}]}})

    def old_pool_accepted():
        parent = pool_parent(get(dyn, POOL_X + "/v1alpha2", "InferencePool", "gaie-old", ns),
                             "infra-old-inference-gateway", field="parent")
        conditions = (parent or {}).get("conditions")
        return (condition(conditions, "Accepted") == ("True", "Accepted")
                and condition(conditions, "ResolvedRefs") == ("True", "ResolvedRefs"))

    wait_until(old_pool_accepted, STATUS_TIMEOUT, "v1alpha2 pool gaie-old accepted under status.parent")
    parent = route_parent(get(dyn, GW_GROUP + "/v1", "HTTPRoute", "old-route", ns), "infra-old-inference-gateway")
    assert condition(parent["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")
    (line,), healthy = gateway_status.describe(lab.dir)
    assert healthy and POOL_X in line
