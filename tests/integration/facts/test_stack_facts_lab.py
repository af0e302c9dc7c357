"""llmd.stack.llmd_stack_facts against the lab: a real kube-apiserver, the fixture
charts, the lab's gateway status simulator and real llm-d-inference-sim processes.

One stack (infra-sim, gaie-sim, ms-sim + the HTTPRoute) is installed with helm in
a namespace of its own. A healthy stack must pass every check; then one thing at
a time is broken, the module must report exactly the expected check as failed
(with a useful fix), and the break is undone before the next one.
"""
import base64
import copy
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import yaml

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(REPO, "lab", "fixtures")
CHARTS = os.path.join(FIXTURES, "charts")
ANSIBLE_PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")
if os.path.join(REPO, "lab") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "lab"))

from simulators import gateway_status  # noqa: E402

GW_GROUP = "gateway.networking.k8s.io"
POOL_V1 = "inference.networking.k8s.io"
RN = "sim"
GATEWAY = "infra-%s-inference-gateway" % RN
POOL = "gaie-%s" % RN
EPP = "gaie-%s-epp" % RN
DECODE = "ms-%s-llm-d-modelservice-decode" % RN
ROUTE = "llm-d-%s" % RN
HELM_TIMEOUT = 240
SETTLE_TIMEOUT = 90
# Checks that may skip on the lab: no model PVC, not OpenShift, and the control
# plane only when no istiod Deployment is found in istio-system.
NOT_APPLICABLE = {"storage.model_pvc", "openshift.service_mesh", "control_plane.ready"}
EXPECTED = {
    "decode_replicas": 2,
    "prefill_replicas": 1,
    "pd_enabled": True,
    "pool_api_version": "v1",
    "model": "random",
    "crd_versions": {"gateway_api": "v1.5.1", "gaie": "v1.4.0"},
    "chart_versions": {"infra-sim": "v1.4.0", "gaie-sim": "v1.4.0", "ms-sim": "v0.4.9"},
}


def wait_until(predicate, timeout, what, interval=0.5):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %ss waiting for %s" % (timeout, what))


def run(lab, *args, timeout=HELM_TIMEOUT, check=True, stdin=None):
    result = subprocess.run(list(args), env=lab.env, capture_output=True, text=True, timeout=timeout, input=stdin, check=False)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), result.returncode, result.stdout, result.stderr))
    return result


def run_facts(lab, namespace, check_mode=False, **options):
    """Run the module in a one-task playbook; returns (rc, task result)."""
    args = {"namespace": namespace, "kubeconfig": lab.kubeconfig, "release_postfix": RN, "expected": EXPECTED}
    args.update(options)
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": [{"name": "Read the stack", "llmd.stack.llmd_stack_facts": args}]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(play, handle)
    try:
        env = dict(lab.env, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        command = [ANSIBLE_PLAYBOOK, handle.name] + (["--check"] if check_mode else [])
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook rc=%d, unreadable output:\n%s\n%s" % (done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
    return done.returncode, result


def failing(result):
    return sorted(set(c["id"] for c in result.get("checks", []) if c["status"] in ("fail", "warn")))


def describe(result):
    return "\n".join("%s %s %s: %s | %s" % (c["status"], c["id"], c["resource"], c["detail"], c["fix"])
                     for c in result.get("checks", []) if c["status"] != "pass") or result.get("msg", "")


def wait_for_checks(lab, namespace, expected_failing, what):
    """Poll the module until exactly ``expected_failing`` fail/warn; return that result."""
    seen = {}

    def settled():
        rc, result = run_facts(lab, namespace)
        seen["last"] = result
        return result if failing(result) == sorted(expected_failing) else None

    try:
        return wait_until(settled, SETTLE_TIMEOUT, what, interval=2)
    except BaseException:
        print("last module result:\n" + describe(seen.get("last", {})))
        raise


def get(dyn, api_version, kind, name, namespace):
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        return dyn.resources.get(api_version=api_version, kind=kind).get(name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return None


class InProcessSimulator:
    """The lab's gateway status Controller in a thread, when the lab supervisor is not running it."""

    def __init__(self, api_client, state_dir, bin_dir):
        self.controller = gateway_status.Controller(api_client, state_dir, bin_dir, logging.getLogger("facts.gateway_status"))
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="gateway-status", daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.wait(0.5):
            try:
                self.controller.sync()
            except Exception as exc:  # reported at teardown
                self.errors.append(repr(exc))

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.controller.close()


@pytest.fixture(scope="module")
def simulator(lab, api_client, tmp_path_factory):
    run(lab, "kubectl", "apply", "-f", os.path.join(FIXTURES, "crds", "gateway-api"), "-f", os.path.join(FIXTURES, "crds", "gaie"))
    _status_lines, alive = gateway_status.describe(lab.dir)
    if alive:
        yield "supervisor"
        return
    hosted = InProcessSimulator(api_client, str(tmp_path_factory.mktemp("facts-gateway-status")), lab.bin_dir)
    yield "in-process"
    hosted.close()


@pytest.fixture(scope="module")
def stack(lab, simulator, api_client, dynamic_client):
    """The llm-d stack from the fixture charts in a fresh namespace; removed afterwards."""
    from kubernetes import client

    namespace = "t-facts-%s" % uuid.uuid4().hex[:6]
    gateway_class = "t-facts-istio-%s" % uuid.uuid4().hex[:6]
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": namespace, "labels": {"llmd.dev/test": "true"}}})
    classes = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="GatewayClass")
    classes.create(body={"apiVersion": GW_GROUP + "/v1", "kind": "GatewayClass", "metadata": {"name": gateway_class},
                         "spec": {"controllerName": gateway_status.CONTROLLER_NAME}})
    installed = []
    try:
        wait_until(lambda: _has_default_sa(core, namespace), 30, "the default service account")
        for release, chart, values in (
                ("infra-" + RN, "llm-d-infra", ["--set", "gateway.gatewayClassName=" + gateway_class]),
                ("gaie-" + RN, "inferencepool", ["--set-string", r"inferencePool.modelServers.matchLabels.llm-d\.ai/inference-serving=true",
                                                 "--set", "provider.name=istio"]),
                ("ms-" + RN, "llm-d-modelservice", ["--set", "decode.replicas=2", "--set", "prefill.replicas=1"])):
            installed.append(release)
            run(lab, "helm", "install", release, os.path.join(CHARTS, chart), "-n", namespace, "--wait",
                "--timeout", "%ds" % (HELM_TIMEOUT - 20), *values)
        create_route(dynamic_client, namespace)
        wait_for_checks(lab, namespace, [], "a healthy stack in %s (%s gateway simulator)" % (namespace, simulator))
        yield namespace
    finally:
        for release in reversed(installed):
            run(lab, "helm", "uninstall", release, "-n", namespace, "--wait", check=False)
        classes.delete(name=gateway_class)
        core.delete_namespace(namespace, propagation_policy="Background")


def _has_default_sa(core, namespace):
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def route_body():
    return {"apiVersion": GW_GROUP + "/v1", "kind": "HTTPRoute", "metadata": {"name": ROUTE},
            "spec": {"parentRefs": [{"group": GW_GROUP, "kind": "Gateway", "name": GATEWAY}],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"group": POOL_V1, "kind": "InferencePool", "name": POOL, "port": 8000, "weight": 1}],
                                "timeouts": {"request": "0s", "backendRequest": "0s"}}]}}


def create_route(dyn, namespace):
    dyn.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute").create(namespace=namespace, body=route_body())


# ------------------------------------------------------------------ healthy

def test_healthy_stack_passes_every_check(lab, stack):
    rc, result = run_facts(lab, stack, fail_on="fail")
    assert rc == 0, describe(result)
    statuses = dict()
    for check in result["checks"]:
        statuses.setdefault(check["id"], set()).add(check["status"])
    assert not [c for c in result["checks"] if c["status"] in ("fail", "warn")], describe(result)
    skipped = set(c["id"] for c in result["checks"] if c["status"] == "skip")
    assert skipped <= NOT_APPLICABLE, describe(result)
    # What the module saw is the stack the charts made.
    facts = result["ansible_facts"]["llmd_stack"]
    assert facts["selected"] == {"gateway": GATEWAY, "httproute": ROUTE, "inferencepool": POOL,
                                 "inferencepool_api_version": POOL_V1 + "/v1", "epp_service": EPP, "epp_deployment": EPP,
                                 "gateway_service": GATEWAY + "-istio"}
    assert [d["name"] for d in facts["model_servers"]["decode"]] == [DECODE]
    assert facts["model_servers"]["decode"][0]["ready_replicas"] == 2
    assert facts["epp"]["config"]["source"] == "configmap %s/default-plugins.yaml" % EPP
    assert sorted(r["name"] for r in facts["helm_releases"] if r["namespace"] == stack) == ["gaie-sim", "infra-sim", "ms-sim"]
    service = facts["endpoints"][-1]
    assert service["type"] == "service" and service["service"] == GATEWAY + "-istio" and service["port"] == 80
    assert service["url"] == "http://%s-istio.%s.svc.cluster.local:80" % (GATEWAY, stack)
    assert result["summary"]["pass"] >= 30 and result["changed"] is False
    # One discovery, the namespace, then one LIST per kind and namespace.
    assert 20 <= result["api_requests"] <= 30


def test_check_mode_reports_the_same(lab, stack):
    rc, normal = run_facts(lab, stack)
    rc_check, checked = run_facts(lab, stack, check_mode=True)
    assert rc == rc_check == 0
    assert [(c["id"], c["status"]) for c in checked["checks"]] == [(c["id"], c["status"]) for c in normal["checks"]]
    assert checked["changed"] is False


# ------------------------------------------------------------------ breaks

def assert_fails_exactly(result, check_id, *fix_words):
    bad = [c for c in result["checks"] if c["status"] in ("fail", "warn")]
    assert [c["id"] for c in bad] == [check_id], describe(result)
    for word in fix_words:
        assert word in bad[0]["fix"] or word in bad[0]["detail"], bad[0]
    return bad[0]


def test_deleted_httproute(lab, stack, dynamic_client):
    routes = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute")
    routes.delete(name=ROUTE, namespace=stack)
    try:
        result = wait_for_checks(lab, stack, ["httproute.exists"], "httproute.exists to fail")
        check = assert_fails_exactly(result, "httproute.exists", "kubectl apply -n %s" % stack, "name: %s, port: 8000" % POOL)
        assert check["resource"] == "HTTPRoute %s/%s" % (stack, ROUTE)
        blocked = dict((c["id"], c["detail"]) for c in result["checks"] if c["status"] == "skip")
        assert blocked["gateway.attached_routes"].startswith("blocked by httproute.exists")
        assert blocked["inferencepool.status"].startswith("blocked by httproute.exists")
        # fail_on makes it fatal, with the check and its fix in the message.
        rc, fatal = run_facts(lab, stack, fail_on="fail")
        assert rc != 0 and "httproute.exists [fail] HTTPRoute %s/%s" % (stack, ROUTE) in fatal["msg"] and "Fix: kubectl apply" in fatal["msg"]
    finally:
        create_route(dynamic_client, stack)
    wait_for_checks(lab, stack, [], "the stack to heal after the HTTPRoute came back")


def test_wrong_backend_port(lab, stack, dynamic_client):
    routes = dynamic_client.resources.get(api_version=GW_GROUP + "/v1", kind="HTTPRoute")
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/port", "value": 8001}]
    routes.patch(name=ROUTE, namespace=stack, body=patch, content_type="application/json-patch+json")
    try:
        result = wait_for_checks(lab, stack, ["httproute.backend_port"], "httproute.backend_port to fail")
        check = assert_fails_exactly(result, "httproute.backend_port", "set the HTTPRoute backendRefs[].port to 8000")
        assert "port 8001" in check["detail"]
    finally:
        patch[0]["value"] = 8000
        routes.patch(name=ROUTE, namespace=stack, body=patch, content_type="application/json-patch+json")
    wait_for_checks(lab, stack, [], "the stack to heal after the port was restored")


def test_epp_scaled_to_zero(lab, stack):
    run(lab, "kubectl", "-n", stack, "scale", "deployment", EPP, "--replicas=0")
    try:
        result = wait_for_checks(lab, stack, ["epp.available"], "epp.available to fail")
        assert_fails_exactly(result, "epp.available", "kubectl -n %s scale deployment %s --replicas=1" % (stack, EPP))
    finally:
        run(lab, "kubectl", "-n", stack, "scale", "deployment", EPP, "--replicas=1")
    wait_for_checks(lab, stack, [], "the stack to heal after the EPP came back")


def test_pool_selector_matching_nothing(lab, stack, dynamic_client):
    pools = dynamic_client.resources.get(api_version=POOL_V1 + "/v1", kind="InferencePool")
    original = get(dynamic_client, POOL_V1 + "/v1", "InferencePool", POOL, stack)["spec"]["selector"]["matchLabels"]
    wrong = dict(original, **{"llm-d.ai/model": "no-such-model"})
    pools.patch(name=POOL, namespace=stack, content_type="application/merge-patch+json",
                body={"spec": {"selector": {"matchLabels": wrong}}})
    try:
        result = wait_for_checks(lab, stack, ["inferencepool.endpoints"], "inferencepool.endpoints to fail")
        check = assert_fails_exactly(result, "inferencepool.endpoints", "matchLabels")
        assert "pods lack llm-d.ai/model" in check["detail"]
        labels = [c for c in result["checks"] if c["id"] == "modelservers.labels"][0]
        assert labels["status"] == "skip" and labels["detail"].startswith("blocked by inferencepool.endpoints")
    finally:
        pools.patch(name=POOL, namespace=stack, content_type="application/json-patch+json",
                    body=[{"op": "replace", "path": "/spec/selector/matchLabels", "value": original}])
    wait_for_checks(lab, stack, [], "the stack to heal after the selector was restored")


def test_missing_epp_service(lab, stack, dynamic_client):
    services = dynamic_client.resources.get(api_version="v1", kind="Service")
    saved = get(dynamic_client, "v1", "Service", EPP, stack)
    services.delete(name=EPP, namespace=stack)
    try:
        result = wait_for_checks(lab, stack, ["inferencepool.epp_service"], "inferencepool.epp_service to fail")
        check = assert_fails_exactly(result, "inferencepool.epp_service", "gaie-sim")
        assert check["resource"] == "Service %s/%s" % (stack, EPP)
        assert "which does not exist" in check["detail"]
    finally:
        body = copy.deepcopy(saved)
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            body["metadata"].pop(key, None)
        body.pop("status", None)
        for key in ("clusterIP", "clusterIPs"):
            body["spec"].pop(key, None)
        services.create(namespace=stack, body=body)
    wait_for_checks(lab, stack, [], "the stack to heal after the EPP Service came back")


def test_crash_looping_decode_pod(lab, stack, api_client):
    """The lab runs no real containers: the decode pod's status is written the way kubelet
    reports a crash loop (the status subresource), which kwok leaves alone once the pod runs."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(stack, label_selector="llm-d.ai/role=decode").items
    victim = sorted(p.metadata.name for p in pods)[0]
    pod = core.read_namespaced_pod_status(victim, stack)
    statuses = []
    for status in pod.status.container_statuses:
        entry = api_client.sanitize_for_serialization(status)
        if status.name == "vllm":
            entry.update(ready=False, started=False, restartCount=5,
                         state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container=vllm"}},
                         lastState={"terminated": {"reason": "Error", "exitCode": 1, "startedAt": "2026-01-01T00:00:00Z",
                                                   "finishedAt": "2026-01-01T00:00:05Z"}})
        statuses.append(entry)
    conditions = [c for c in api_client.sanitize_for_serialization(pod.status.conditions) if c["type"] not in ("Ready", "ContainersReady")]
    conditions += [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                   {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": "2026-01-01T00:00:05Z"}]
    core.patch_namespaced_pod_status(victim, stack, {"status": {"containerStatuses": statuses, "conditions": conditions}})
    try:
        result = wait_for_checks(lab, stack, ["modelservers.crashloop"], "modelservers.crashloop to fail")
        check = assert_fails_exactly(result, "modelservers.crashloop", "kubectl -n %s logs %s -c vllm --previous" % (stack, victim))
        assert "CrashLoopBackOff, 5 restarts, last exit 1 (Error)" in check["detail"]
        # The Deployment lost a replica: that is the crash loop's doing, not a second failure.
        decode = [c for c in result["checks"] if c["id"] == "modelservers.decode"][0]
        assert decode["status"] in ("skip", "pass"), decode
    finally:
        core.delete_namespaced_pod(victim, stack, grace_period_seconds=0)
    wait_for_checks(lab, stack, [], "the stack to heal after the crashed pod was replaced")


# ------------------------------------------------------------------ errors

def test_forbidden_read_names_verb_resource_and_namespace(lab, stack, tmp_path):
    """A token that may list pods only: the first denied LIST is named in one line."""
    account = "facts-reader"
    run(lab, "kubectl", "-n", stack, "create", "serviceaccount", account)
    run(lab, "kubectl", "-n", stack, "create", "role", account, "--verb=get,list", "--resource=pods")
    run(lab, "kubectl", "-n", stack, "create", "rolebinding", account, "--role=" + account,
        "--serviceaccount=%s:%s" % (stack, account))
    token = run(lab, "kubectl", "-n", stack, "create", "token", account, "--duration=10m").stdout.strip()
    config = yaml.safe_load(open(lab.kubeconfig))
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = tmp_path / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca = os.path.join(os.path.dirname(lab.kubeconfig), cluster["certificate-authority"])
    rc, result = run_facts(lab, stack, kubeconfig=None, host=cluster["server"], api_key=token, ca_cert=str(ca))
    assert rc != 0
    assert result["msg"].startswith("forbidden (403): cannot list deployments.apps in namespace %s at %s" % (stack, cluster["server"])), result["msg"]
    assert 'User "system:serviceaccount:%s:%s"' % (stack, account) in result["msg"]
    assert "\n" not in result["msg"] and "Traceback" not in json.dumps(result)
    assert token not in json.dumps(result)


def test_unreachable_api_is_one_line(lab, stack):
    rc, result = run_facts(lab, stack, kubeconfig=None, host="https://127.0.0.1:1", api_key="not-a-token", validate_certs=False)
    assert rc != 0
    assert result["msg"] == "cannot reach the Kubernetes API at https://127.0.0.1:1: [Errno 111] Connection refused", result["msg"]
