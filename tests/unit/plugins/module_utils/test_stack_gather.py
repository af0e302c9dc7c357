"""The I/O shell of llmd_stack_facts against a fake API: request counts and error lines."""

import copy
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stack"))

import fakeapi  # noqa: E402

from ansible_collections.llmd.stack.plugins.module_utils._stack_gather import GatherError  # noqa: E402
from ansible_collections.llmd.stack.plugins.module_utils._stack_checks import CHECK_IDS  # noqa: E402


def scale(cluster, pods, deployments):
    """Add ``pods`` model-server pods and ``deployments`` unrelated Deployments."""
    template = cluster.find("Pod", "ms-sim-llm-d-modelservice-decode-6c9f7-aaaaa")
    for index in range(pods):
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = "ms-sim-llm-d-modelservice-decode-scaled-%04d" % index
        cluster.objects.append(pod)
    for index in range(deployments):
        cluster.objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "other-%03d" % index, "namespace": "llm-d-sim"},
                                "spec": {"selector": {"matchLabels": {"app": "other-%03d" % index}}}})


def test_one_discovery_then_one_list_per_kind_and_namespace():
    cluster, params = fakeapi.build_cluster("v1_istio")
    _model, _checks, transport = fakeapi.evaluate(cluster, params)
    paths = transport.requests
    assert paths == cluster.requests
    assert paths[0] == "/apis" and paths.count("/apis") == 1
    assert paths[1] == "/api/v1/namespaces/llm-d-sim"
    assert len(paths) == len(set(paths)), "a path was requested twice"
    # Unserved kinds (OpenShift Routes, ClusterVersion, kgateway parameters, SMCP) cost no request.
    assert not any(p.startswith(("/apis/route.openshift.io", "/apis/config.openshift.io", "/apis/maistra.io", "/apis/gateway.kgateway.dev"))
                   for p in paths)
    assert len(paths) == 23


def test_request_count_does_not_grow_with_objects():
    cluster, params = fakeapi.build_cluster("v1_istio")
    _model, _checks, small = fakeapi.evaluate(cluster, params)
    big_cluster, params = fakeapi.build_cluster("v1_istio")
    scale(big_cluster, pods=500, deployments=50)
    model, checks, big = fakeapi.evaluate(big_cluster, params)
    assert big.count == small.count
    assert len(model["stack"]["pool_pods"]) == 504
    endpoints = [c for c in checks if c["id"] == "inferencepool.endpoints"][0]
    assert endpoints["status"] == "pass" and endpoints["detail"] == "504/504 matched pods ready"


def test_legacy_discovery_gives_the_same_checks():
    cluster, params = fakeapi.build_cluster("v1_istio")
    _model, aggregated_checks, _transport = fakeapi.evaluate(cluster, params)
    cluster, params = fakeapi.build_cluster("v1_istio", aggregated=False)
    _model, legacy_checks, _transport = fakeapi.evaluate(cluster, params)
    assert legacy_checks == aggregated_checks


def test_forbidden_core_list_names_verb_resource_and_namespace():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/api/v1/namespaces/llm-d-sim/pods"] = fakeapi.FakeApiError(
        403, 'pods is forbidden: User "system:serviceaccount:ci:runner" cannot list resource "pods" in API group "" in the namespace "llm-d-sim"')
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    message = str(error.value)
    assert message.startswith("forbidden (403): cannot list pods in namespace llm-d-sim at https://127.0.0.1:6443")
    assert 'User "system:serviceaccount:ci:runner"' in message and "view ClusterRole" in message
    assert "\n" not in message


def test_forbidden_cluster_scoped_list_suggests_the_check_to_skip():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis/apiextensions.k8s.io"] = fakeapi.FakeApiError(403, "customresourcedefinitions is forbidden")
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    assert "cannot list customresourcedefinitions.apiextensions.k8s.io (cluster-scoped)" in str(error.value)
    assert "skip_checks: [crds.installed]" in str(error.value)
    # ...and skipping it avoids the read entirely.
    _model, checks, transport = fakeapi.evaluate(cluster, params, skip_checks=["crds.installed"])
    assert not any("customresourcedefinitions" in p for p in transport.requests)
    assert "crds.installed" not in set(c["id"] for c in checks)


def test_forbidden_control_plane_namespace():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis/apps/v1/namespaces/istio-system/"] = fakeapi.FakeApiError(403, "forbidden")
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    assert "cannot list deployments.apps in namespace istio-system" in str(error.value)
    assert "control_plane.ready" in str(error.value)


def test_unauthorized_discovery():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis"] = fakeapi.FakeApiError(401, "Unauthorized")
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    assert str(error.value).startswith("unauthorized (401) to get /apis (discovery) (cluster-scoped) at https://127.0.0.1:6443")


def test_unreachable_api_is_one_line():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.unreachable = True
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    assert str(error.value) == "cannot reach the Kubernetes API at https://127.0.0.1:6443: [Errno 111] Connection refused"


def test_server_error_on_a_list():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis/gateway.networking.k8s.io/v1/namespaces"] = fakeapi.FakeApiError(500, "etcdserver: request timed out")
    with pytest.raises(GatherError) as error:
        fakeapi.evaluate(cluster, params)
    assert str(error.value) == ("the API at https://127.0.0.1:6443 answered 500 to list gateways.gateway.networking.k8s.io "
                                "in namespace llm-d-sim: etcdserver: request timed out")


def test_kind_that_vanished_after_discovery_is_not_installed():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis/inference.networking.x-k8s.io"] = fakeapi.FakeApiError(404, "the server could not find the requested resource")
    model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert model["api"]["reads"]["inferencepools_v1alpha2"] == {"served": False, "read": False, "error": None}
    assert [c for c in checks if c["status"] == "fail"] == []


def test_namespace_object_is_optional():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/api/v1/namespaces/llm-d-sim"] = fakeapi.FakeApiError(403, "namespaces is forbidden")
    # Only the exact GET of the namespace is denied; the LISTs below it go through.
    original_get = cluster.get

    def get(path, query=None, accept="application/json"):
        if path != "/api/v1/namespaces/llm-d-sim":
            saved = cluster.errors.pop("/api/v1/namespaces/llm-d-sim")
            try:
                return original_get(path, query, accept)
            finally:
                cluster.errors["/api/v1/namespaces/llm-d-sim"] = saved
        return original_get(path, query, accept)

    cluster.get = get
    model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert model["namespace_found"] is None
    assert [c["id"] for c in checks if c["status"] == "fail"] == []


def test_every_kind_read_for_all_checks():
    cluster, params = fakeapi.build_cluster("v1_istio")
    model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert set(c["id"] for c in checks) == set(CHECK_IDS)
    reads = model["api"]["reads"]
    assert reads["crds"]["read"] and reads["helm_secrets"]["read"] and reads["pvcs"]["read"]
    assert reads["routes"] == {"served": False, "read": False, "error": None}
