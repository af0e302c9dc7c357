"""Pure model of llmd_stack_facts: discovery, request plan, normalization, linking, endpoints."""

import base64
import gzip
import json
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stack"))

import fakeapi  # noqa: E402

from ansible_collections.llmd.stack.plugins.module_utils import _stack_model as m  # noqa: E402


def aggregated(groups):
    return {"kind": "APIGroupDiscoveryList", "items": [
        {"metadata": {"name": g}, "versions": [
            {"version": v, "resources": [{"resource": r, "responseKind": {"kind": r.title()}, "scope": "Namespaced"} for r in res]}
            for v, res in versions]}
        for g, versions in groups]}


def test_parse_aggregated_and_legacy_discovery():
    doc = aggregated([("inference.networking.k8s.io", [("v1", ["inferencepools"])]),
                      ("gateway.networking.k8s.io", [("v1", ["gateways", "httproutes"]), ("v1beta1", ["gateways"])])])
    parsed = m.parse_discovery(doc)
    assert parsed["aggregated"] is True
    assert parsed["groups"]["gateway.networking.k8s.io"]["preferred"] == "v1"
    assert m.served_version(parsed, "gateway.networking.k8s.io", "httproutes", ("v1", "v1beta1")) == "v1"
    assert m.served_version(parsed, "inference.networking.x-k8s.io", "inferencepools", ("v1alpha2",)) is None
    # A group served without that resource (GAIE v1 without InferenceObjective) is not served for it.
    assert m.served_version(parsed, "inference.networking.k8s.io", "inferenceobjectives", ("v1",)) is None

    legacy = m.parse_discovery({"kind": "APIGroupList", "groups": [
        {"name": "gateway.kgateway.dev", "versions": [{"version": "v1alpha1"}], "preferredVersion": {"version": "v1alpha1"}}]})
    assert legacy["aggregated"] is False
    # Legacy discovery knows versions, not resources: the plural is assumed served.
    assert m.served_version(legacy, "gateway.kgateway.dev", "gatewayparameters", ("v1alpha1",)) == "v1alpha1"
    assert m.served_version(legacy, "", "pods", ("v1",)) == "v1"


def test_plan_is_one_list_per_kind_and_namespace():
    parsed = m.parse_discovery(fakeapi.FakeCluster(fakeapi.load_fixture("v1_istio")).discovery())
    keys = m.kinds_for_checks(["crds.installed", "control_plane.ready", "helm.releases"])
    plan = m.plan_requests(parsed, "llm-d-sim", ["istio-system", "kgateway-system", "llm-d-sim"], keys)
    served = [p for p in plan if p["served"]]
    assert len(set((p["path"], tuple(sorted(p["query"].items()))) for p in served)) == len(served)
    by_key = dict((p["key"], p) for p in plan)
    assert by_key["pods"]["path"] == "/api/v1/namespaces/llm-d-sim/pods"
    assert by_key["inferencepools_v1"]["path"] == "/apis/inference.networking.k8s.io/v1/namespaces/llm-d-sim/inferencepools"
    assert by_key["gatewayclasses"]["path"] == "/apis/gateway.networking.k8s.io/v1/gatewayclasses"
    assert by_key["crds"]["accept"].startswith("application/json;as=PartialObjectMetadataList")
    assert by_key["helm_secrets"]["query"] == {"labelSelector": "owner=helm"}
    assert by_key["routes"]["served"] is False and by_key["routes"]["path"] is None
    # Control-plane lists go to each control-plane namespace except the stack's own.
    cp = [p["namespace"] for p in plan if p["key"] == "control_plane_deployments"]
    assert cp == ["istio-system", "kgateway-system"]


def test_both_pool_api_versions_normalize_to_one_shape():
    v1alpha2 = m.normalize_pool({
        "metadata": {"name": "pool", "namespace": "ns"},
        "spec": {"selector": {"app": "vllm"}, "targetPortNumber": 8000,
                 "extensionRef": {"name": "pool-epp", "portNumber": 9002, "failureMode": "FailClose"}},
        "status": {"parent": [
            {"parentRef": {"kind": "Status", "name": "default"}, "conditions": [{"type": "Accepted", "status": "Unknown"}]},
            {"parentRef": {"kind": "Gateway", "name": "gw"}, "conditions": [{"type": "Accepted", "status": "True"}]}]},
    }, m.POOL_GROUP_V1ALPHA2)
    v1 = m.normalize_pool({
        "metadata": {"name": "pool", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "vllm"}}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"kind": "Service", "name": "pool-epp", "port": {"number": 9002}, "failureMode": "FailClose"}},
        "status": {"parents": [
            {"parentRef": {"kind": "Status", "name": "default"}, "conditions": [{"type": "Accepted", "status": "Unknown"}]},
            {"parentRef": {"kind": "Gateway", "name": "gw"}, "conditions": [{"type": "Accepted", "status": "True"}]}]},
    }, m.POOL_GROUP_V1)
    for key in ("name", "selector", "target_ports", "epp", "parents", "placeholder_only"):
        assert v1alpha2[key] == v1[key], key
    assert v1["api_version"] == "inference.networking.k8s.io/v1"
    assert v1alpha2["api_version"] == "inference.networking.x-k8s.io/v1alpha2"
    assert [p["parent_ref"]["name"] for p in v1["parents"]] == ["gw"]  # placeholder ignored


def test_placeholder_only_pool_and_default_epp_port():
    pool = m.normalize_pool({"metadata": {"name": "p"}, "spec": {"extensionRef": {"name": "e"}},
                             "status": {"parent": [{"parentRef": {"kind": "Status", "name": "default"}}]}}, m.POOL_GROUP_V1ALPHA2)
    assert pool["placeholder_only"] is True and pool["parents"] == []
    assert pool["epp"]["port"] == m.EPP_DEFAULT_PORT and pool["epp"]["port_explicit"] is False


def test_selector_matching():
    labels = {"llm-d.ai/inference-serving": "true", "llm-d.ai/role": "decode"}
    assert m.selector_matches({"llm-d.ai/inference-serving": "true"}, labels)
    assert m.selector_matches({"matchLabels": {"llm-d.ai/role": "decode"}}, labels)
    assert m.selector_matches({"matchExpressions": [{"key": "llm-d.ai/role", "operator": "In", "values": ["decode", "both"]}]}, labels)
    assert not m.selector_matches({"matchExpressions": [{"key": "llm-d.ai/role", "operator": "NotIn", "values": ["decode"]}]}, labels)
    assert not m.selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert m.selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert not m.selector_matches({}, labels)  # an empty selector selects nothing here
    assert not m.selector_matches({"llm-d.ai/inferenceServing": "true"}, labels)
    assert m.selector_matches({"flag": True}, {"flag": "true"})  # YAML booleans in selectors


def _helm_secret_data(body):
    return base64.b64encode(base64.b64encode(gzip.compress(json.dumps(body).encode()))).decode()


def test_helm_release_decoding_and_latest_revision():
    secrets = [fakeapi.helm_secret({"name": "ms-sim", "namespace": "ns", "chart": "llm-d-modelservice", "chart_version": "v0.4.8",
                                    "revision": 1, "status": "superseded"}),
               fakeapi.helm_secret({"name": "ms-sim", "namespace": "ns", "chart": "llm-d-modelservice", "chart_version": "v0.4.9",
                                    "revision": 2, "status": "deployed"})]
    releases = m.helm_releases(secrets)
    assert releases == [{"name": "ms-sim", "namespace": "ns", "revision": 2, "status": "deployed", "chart": "llm-d-modelservice",
                         "chart_version": "v0.4.9", "app_version": None, "description": "Install complete"}]
    # Uncompressed payloads (older Helm) decode too; garbage never raises.
    plain = {"metadata": {"labels": {"owner": "helm", "name": "x", "version": "1", "status": "deployed"}},
             "data": {"release": base64.b64encode(base64.b64encode(json.dumps({"chart": {"metadata": {"name": "c", "version": "1"}}}).encode())).decode()}}
    assert m.decode_helm_release(plain)["chart"] == "c"
    broken = {"metadata": {"labels": {"owner": "helm", "name": "y", "version": "3", "status": "failed"}}, "data": {"release": "%%%not-base64"}}
    assert m.decode_helm_release(broken)["status"] == "failed" and m.decode_helm_release(broken)["chart"] is None


def test_served_model_names_from_all_command_shapes():
    def deployment(command, args):
        return {"containers": [{"name": "routing-proxy", "command": [], "args": []},
                               {"name": "vllm", "command": command, "args": args}]}
    assert m.served_model_names(deployment([], ["--model", "hf://random", "--served-model-name", "random", "alias"])) == ["random", "alias"]
    assert m.served_model_names(deployment([], ["--served-model-name=qwen"])) == ["qwen"]
    assert m.served_model_names(deployment(["vllm", "serve"], ["meta-llama/Llama-3.1-8B", "--port", "8000"])) == ["meta-llama/Llama-3.1-8B"]
    assert m.served_model_names(deployment(["/bin/sh", "-c"], ["exec vllm serve Qwen/Qwen3-0.6B --port 8200"])) == ["Qwen/Qwen3-0.6B"]
    assert m.served_model_names(deployment([], ["--model", "facebook/opt-125m"])) == ["facebook/opt-125m"]
    assert m.served_model_names({"containers": [{"name": "other", "command": [], "args": []}]}) == []


def _linked(base, ops=None):
    cluster, params = fakeapi.build_cluster(base, ops)
    model, _checks, _transport = fakeapi.evaluate(cluster, params)
    return model


def test_release_postfix_is_derived_when_not_given():
    model = _linked("v1_istio", [{"op": "params", "value": {"release_postfix": None}}])
    assert model["stack"]["release_postfix"] == "sim"
    assert model["stack"]["release_postfix_source"] == "derived from Gateway infra-sim-inference-gateway"


def test_second_gateway_is_noted_and_the_inference_gateway_wins():
    extra = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
             "metadata": {"name": "aaa-other", "namespace": "llm-d-sim"}, "spec": {"gatewayClassName": "istio", "listeners": []}}
    model = _linked("v1_istio", [{"op": "add", "object": extra}, {"op": "params", "value": {"release_postfix": None}}])
    assert model["stack"]["gateway"]["name"] == "infra-sim-inference-gateway"


def test_endpoints_best_first():
    lb = _linked("v1alpha2_kgateway")["endpoints"]
    assert [e["type"] for e in lb] == ["gateway-address", "service"]
    assert lb[0]["external"] is True and lb[0]["url"].startswith("http://aca77f0e") and lb[0]["url"].endswith(":80")
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "gw", "namespace": "llm-d-sim"},
             "spec": {"host": "llm-d.apps.example.com", "to": {"kind": "Service", "name": "infra-sim-inference-gateway-istio"}},
             "status": {"ingress": [{"conditions": [{"type": "Admitted", "status": "True"}]}]}}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "gw", "namespace": "llm-d-sim"},
               "spec": {"rules": [{"host": "llm-d.example.com", "http": {"paths": [{"path": "/", "backend": {
                   "service": {"name": "infra-sim-inference-gateway-istio", "port": {"number": 80}}}}]}}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    endpoints = _linked("v1_istio", [{"op": "serve", "api_version": "route.openshift.io/v1"},
                                     {"op": "add", "object": route}, {"op": "add", "object": ingress}])["endpoints"]
    assert [(e["type"], e["external"]) for e in endpoints] == [
        ("openshift-route", True), ("ingress", True), ("gateway-address", False), ("service", False)]
    assert endpoints[0]["url"] == "http://llm-d.apps.example.com"
    assert endpoints[-1] == {"type": "service", "url": "http://infra-sim-inference-gateway-istio.llm-d-sim.svc.cluster.local:80",
                             "external": False, "namespace": "llm-d-sim", "service": "infra-sim-inference-gateway-istio", "port": 80}
    for endpoint in endpoints:
        assert set(endpoint) == {"type", "url", "external", "namespace", "service", "port"}


def test_epp_config_is_read_from_the_mounted_configmap():
    epp = m.facts(_linked("v1_istio"))["epp"]
    config = epp["config"]
    assert config["source"] == "configmap gaie-sim-epp/pd-config.yaml"
    assert config["pd"] is True and config["valid"] is True
    assert [p["name"] for p in config["profiles"]] == ["prefill", "decode"]
    decode = [p for p in config["profiles"] if p["name"] == "decode"][0]
    assert [(r["ref"], r["weight"]) for r in decode["plugins"]] == [
        ("decode-filter", 1), ("max-score-picker", 1), ("prefix-cache-scorer", 2), ("queue-scorer", 1)]
    assert config["available_files"] == ["gaie-sim-epp/default-plugins.yaml", "gaie-sim-epp/pd-config.yaml"]


def test_openshift_facts():
    model = _linked("v1_istio", [
        {"op": "serve", "api_version": "config.openshift.io/v1"},
        {"op": "add", "object": {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion", "metadata": {"name": "version"},
                                 "status": {"history": [{"version": "4.19.2"}]}}},
        {"op": "set", "kind": "Namespace", "name": "llm-d-sim", "path": "metadata.annotations",
         "value": {"openshift.io/sa.scc.uid-range": "1000700000/10000"}},
    ])
    platform = model["platform"]
    assert platform["openshift"] is True and platform["openshift_version"] == "4.19.2"
    assert platform["namespace_uid_range"] == [1000700000, 1000709999]
    assert model["crds"]["gateway_api"]["openshift_managed"] is True


def test_facts_are_plain_json():
    for base in ("v1_istio", "v1alpha2_kgateway"):
        facts = m.facts(_linked(base))
        assert json.loads(json.dumps(facts)) == facts
        assert facts["selected"]["gateway"] and facts["selected"]["inferencepool"]
        assert yaml.safe_dump(facts)


def test_versions():
    assert m.same_version("v1.4.0", "1.4.0") and not m.same_version("v1.4.0", "v1.4.1") and not m.same_version(None, "v1")
    assert m.parse_version("v1.5.1") == (1, 5, 1) and m.parse_version("4.19.0-rc.1") == (4, 19, 0) and m.parse_version("x") is None
    assert m.duration_is_zero("0s") and m.duration_is_zero("0") and not m.duration_is_zero("300s") and not m.duration_is_zero(None)
