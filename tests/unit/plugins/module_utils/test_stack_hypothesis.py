"""Arbitrary malformed resources never make the facts core raise.

Resources are generated with the right top-level shape (metadata/spec/status)
but any values inside, mixed with fixture objects mutated at random paths, so
both "garbage" and "almost right" inputs are covered. The core may report
anything; it must not raise, must stay JSON-serializable, and must not fall
back to its internal-error safety net.
"""

import copy
import json
import os
import sys

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stack"))

import fakeapi  # noqa: E402

from ansible_collections.llmd.stack.plugins.module_utils import _epp_config, _stack_checks, _stack_model  # noqa: E402

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 70000), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from(["True", "False", "Unknown", "Accepted", "Programmed", "ResolvedRefs", "Ready", "Available",
                                     "Gateway", "Status", "default", "Service", "InferencePool", "decode", "prefill", "vllm",
                                     "routing-proxy", "CrashLoopBackOff", "Running", "Pending", "0s", "8000", "llm-d.ai/role",
                                     "llm-d.ai/inference-serving", "inference.networking.k8s.io", "owner"]))
KEYS = ["metadata", "spec", "status", "data", "name", "namespace", "labels", "selector", "matchLabels", "conditions",
        "parents", "parent", "parentRef", "parentRefs", "rules", "backendRefs", "listeners", "addresses", "containers",
        "initContainers", "containerStatuses", "targetPorts", "targetPortNumber", "extensionRef", "endpointPickerRef",
        "port", "ports", "replicas", "template", "args", "volumes", "type", "status", "reason", "kind", "group"]
# Dict keys: random text or the keys the core looks for, so nested lookups hit.
DICT_KEYS = st.one_of(st.text(max_size=8), st.sampled_from(KEYS + ["name", "number", "matchLabels", "llm-d.ai/role", "type", "value"]))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(DICT_KEYS, inner, max_size=5)),
                       max_leaves=25)
RESOURCE = st.fixed_dictionaries({}, optional=dict((key, JSONISH) for key in KEYS))
LISTS = st.dictionaries(st.sampled_from(sorted(_stack_model.KINDS)),
                        st.fixed_dictionaries({"served": st.booleans(), "items": st.one_of(st.lists(RESOURCE, max_size=4), JSONISH)}),
                        max_size=len(_stack_model.KINDS))
PARAMS = st.fixed_dictionaries({"namespace": st.text(max_size=8)}, optional={
    "gateway_name": JSONISH, "httproute_name": JSONISH, "inferencepool_name": JSONISH, "release_postfix": JSONISH,
    "control_plane_namespaces": JSONISH,
    "expected": st.fixed_dictionaries({}, optional={
        "decode_replicas": st.integers(0, 5), "prefill_replicas": st.integers(0, 5), "pd_enabled": st.booleans(),
        "chart_versions": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
        "crd_versions": st.fixed_dictionaries({}, optional={"gateway_api": st.text(max_size=6), "gaie": st.text(max_size=6)}),
        "model": st.text(max_size=6), "provider": st.sampled_from(["istio", "kgateway", "agentgateway"]),
        "pool_api_version": st.sampled_from(["v1", "v1alpha2", "inference.networking.k8s.io/v1"])}),
})
FIXTURE_RAWS = {}


def run_core(raw, params):
    model = _stack_model.link(_stack_model.normalize(raw), params, yaml.safe_load)
    checks = _stack_checks.run_checks(model, params)
    facts = _stack_model.facts(model)
    json.dumps(facts)
    json.dumps(checks)
    for check in checks:
        assert check["status"] in _stack_checks.STATUSES
        assert "internal error" not in check["detail"], check
    return checks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lists=LISTS, discovery=JSONISH, namespace_object=st.one_of(st.none(), st.just(False), JSONISH), params=PARAMS)
def test_arbitrary_resources_never_raise(lists, discovery, namespace_object, params):
    raw = {"namespace": params["namespace"], "namespace_object": namespace_object,
           "discovery": _stack_model.parse_discovery(discovery), "lists": lists}
    run_core(raw, params)


def fixture_raw(base):
    if base not in FIXTURE_RAWS:
        cluster, params = fakeapi.build_cluster(base)
        from ansible_collections.llmd.stack.plugins.module_utils import _stack_gather
        transport = _stack_gather.Transport(fakeapi.FakeK8SClient(cluster))
        raw = _stack_gather.gather(transport, params["namespace"], params["control_plane_namespaces"],
                                   _stack_model.kinds_for_checks(_stack_checks.CHECK_IDS))
        FIXTURE_RAWS[base] = (raw, params)
    return copy.deepcopy(FIXTURE_RAWS[base])


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_of(value, prefix + (index,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(["v1_istio", "v1alpha2_kgateway"]), data=st.data())
def test_mutated_fixture_resources_never_raise(base, data):
    raw, params = fixture_raw(base)
    for _mutation in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from(sorted(k for k, v in raw["lists"].items() if v.get("items"))))
        item = data.draw(st.sampled_from(raw["lists"][key]["items"]))
        path = data.draw(st.sampled_from(list(paths_of(item))[1:]))
        parent = item
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = data.draw(JSONISH)
    run_core(raw, params)


@settings(max_examples=200, deadline=None)
@given(doc=JSONISH, text=st.text(max_size=200), args=JSONISH, configmaps=JSONISH)
def test_epp_config_never_raises(doc, text, args, configmaps):
    json.dumps(_epp_config.summarize_epp_config(doc))
    json.dumps(_epp_config.parse_epp_config(text, yaml.safe_load))
    json.dumps(_epp_config.select_epp_config(args, configmaps, yaml.safe_load))


@settings(max_examples=200, deadline=None)
@given(secret=RESOURCE, data=st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.hex())))
def test_helm_decoding_never_raises(secret, data):
    secret = dict(secret)
    secret["data"] = {"release": data}
    secret["metadata"] = {"labels": {"owner": "helm", "name": "r", "version": "1"}}
    release = _stack_model.decode_helm_release(secret)
    assert release["name"] == "r"
    _stack_model.helm_releases([secret, {}, None, "x"])
