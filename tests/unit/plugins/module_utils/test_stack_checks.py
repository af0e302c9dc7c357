"""Checks of llmd_stack_facts over fixture stacks: healthy stacks pass, each break fails exactly its check."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stack"))

import fakeapi  # noqa: E402  (test harness next to the fixtures)

from ansible_collections.llmd.stack.plugins.module_utils._stack_checks import (  # noqa: E402
    CHECK_IDS,
    failing,
    failure_message,
    select_checks,
    summarize,
)

BREAKS = fakeapi.load_breaks()


def by_status(checks, status):
    return sorted(set(c["id"] for c in checks if c["status"] == status))


@pytest.mark.parametrize("base", ["v1_istio", "v1alpha2_kgateway"])
def test_healthy_stack_passes_every_check(base):
    cluster, params = fakeapi.build_cluster(base)
    _model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert by_status(checks, "fail") == []
    assert by_status(checks, "warn") == []
    # Every catalogue id is reported; the only skips are checks that do not apply.
    assert set(c["id"] for c in checks) == set(CHECK_IDS)
    skipped = dict((c["id"], c["detail"]) for c in checks if c["status"] == "skip")
    assert set(skipped) <= {"storage.model_pvc", "openshift.service_mesh"}, skipped
    for check in checks:
        assert set(check) == {"id", "status", "resource", "detail", "fix"}
        assert check["resource"] and check["detail"]


def test_healthy_stacks_reach_all_parts():
    cluster, params = fakeapi.build_cluster("v1alpha2_kgateway")
    model, _checks, _transport = fakeapi.evaluate(cluster, params)
    stack = model["stack"]
    assert stack["gateway"]["name"] == "inference-gateway"
    assert stack["httproute"]["name"] == "inference-route"
    assert stack["inferencepool"]["api_version"] == "inference.networking.x-k8s.io/v1alpha2"
    assert stack["epp_deployment"]["name"] == "llm-d-inference-gateway-endpoint-picker"
    assert stack["provider"] == "kgateway"
    assert sorted(s["role"] for s in stack["model_servers"]) == ["decode", "prefill"]


@pytest.mark.parametrize("case", BREAKS, ids=[b["name"] for b in BREAKS])
def test_break_fails_exactly_its_check(case):
    cluster, params = fakeapi.build_cluster(case["base"], case["ops"])
    _model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert by_status(checks, "fail") == sorted(case["fails"]), [c for c in checks if c["status"] in ("fail", "warn")]
    if "warns" in case:
        assert by_status(checks, "warn") == sorted(case["warns"])
    for check_id, root in (case.get("blocked") or {}).items():
        entries = [c for c in checks if c["id"] == check_id]
        # Per-object checks: the broken object's entry is the blocked one.
        assert any(c["status"] == "skip" and c["detail"].startswith("blocked by %s:" % root) for c in entries), entries
    bad = [c for c in checks if c["status"] in ("fail", "warn")]
    for check in bad:
        assert check["fix"], check
    text = " ".join("%s %s" % (c["detail"], c["fix"]) for c in bad)
    for words in case.get("fix", []) + case.get("detail", []):
        assert words in text, (words, bad)


def test_every_check_can_fail_or_warn():
    covered = set()
    for case in BREAKS:
        covered.update(case["fails"])
        covered.update(case.get("warns", []))
    assert covered == set(CHECK_IDS)


def test_blocked_skips_name_a_check_that_failed():
    for case in BREAKS:
        cluster, params = fakeapi.build_cluster(case["base"], case["ops"])
        _model, checks, _transport = fakeapi.evaluate(cluster, params)
        failed = set(c["id"] for c in checks if c["status"] == "fail")
        for check in checks:
            if check["status"] == "skip" and check["detail"].startswith("blocked by "):
                root = check["detail"][len("blocked by "):].split(":")[0]
                assert root in failed, (case["name"], check)


def test_select_checks_by_id_and_prefix():
    selected, error = select_checks(["gateway", "httproute.backend_port"], ["gateway.parameters"])
    assert error is None
    assert "gateway.parameters" not in selected
    assert "gateway.exists" in selected and "httproute.backend_port" in selected and "httproute.backend" not in selected
    assert select_checks(None, None)[0] == list(CHECK_IDS)
    assert select_checks(["gateway.*"], None)[0][0] == "gateway.exists"


def test_select_checks_rejects_unknown_ids_in_one_line():
    selected, error = select_checks(["gatway"], None)
    assert selected is None
    assert error.startswith("checks: unknown check id or prefix 'gatway'") and "\n" not in error
    assert select_checks(None, ["nope.none"])[1].startswith("skip_checks: unknown")


def test_selected_checks_only_are_reported_and_reads_are_pruned():
    cluster, params = fakeapi.build_cluster("v1_istio")
    _model, checks, transport = fakeapi.evaluate(cluster, params, checks=["httproute"])
    assert set(c["id"] for c in checks) == set(i for i in CHECK_IDS if i.startswith("httproute."))
    paths = transport.requests
    assert not any("customresourcedefinitions" in p or "/namespaces/istio-system/" in p or "secrets" in p for p in paths), paths


def test_fail_on_and_message():
    cluster, params = fakeapi.build_cluster("v1alpha2_kgateway", [
        {"op": "set", "kind": "HTTPRoute", "name": "inference-route", "path": "spec.rules.0.timeouts", "value": None},
        {"op": "set", "kind": "HTTPRoute", "name": "inference-route", "path": "spec.rules.0.backendRefs.0.port", "value": 9000},
    ])
    _model, checks, _transport = fakeapi.evaluate(cluster, params)
    assert failing(checks, "never") == []
    assert [c["id"] for c in failing(checks, "fail")] == ["httproute.backend_port"]
    assert sorted(c["id"] for c in failing(checks, "warn")) == ["httproute.backend_port", "httproute.timeouts"]
    message = failure_message(failing(checks, "warn"))
    assert message.startswith("2 llm-d stack check(s) failed:")
    assert "httproute.backend_port [fail] HTTPRoute e2e-helm/inference-route" in message
    assert "Fix: set the HTTPRoute backendRefs[].port to 8000" in message
    assert summarize(checks)["fail"] == 1 and summarize(checks)["warn"] == 1


def test_namespace_that_does_not_exist_is_named():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.objects = [o for o in cluster.objects if o["metadata"].get("namespace") != "llm-d-sim" and o["metadata"]["name"] != "llm-d-sim"]
    _model, checks, _transport = fakeapi.evaluate(cluster, params)
    exists = [c for c in checks if c["id"] == "gateway.exists"][0]
    assert exists["status"] == "fail" and "namespace llm-d-sim does not exist" in exists["detail"]
