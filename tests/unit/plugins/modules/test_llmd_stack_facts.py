"""The llmd_stack_facts module end to end, in-process, against the fake API."""

import os
import re
import sys
from unittest import mock

import pytest
import yaml

from ansible.module_utils import basic

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stack"))

import fakeapi  # noqa: E402

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC  # noqa: E402
from ansible_collections.llmd.stack.plugins.modules import llmd_stack_facts  # noqa: E402

from module_args import patch_module_args


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def run(args, cluster=None, client_error=None):
    """Run main(); return ("exit"|"fail", result dict)."""
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    def get_api_client(module):
        if client_error:
            raise client_error
        return fakeapi.FakeK8SClient(cluster)

    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), \
            mock.patch.object(llmd_stack_facts, "get_api_client", get_api_client):
        try:
            llmd_stack_facts.main()
        except Exit as done:
            return "exit", done.args[0]
        except Fail as failed:
            return "fail", failed.args[0]
    raise AssertionError("main() returned without exit_json/fail_json")


def module_args(params, **extra):
    args = dict((k, v) for k, v in params.items() if v is not None)
    args.update(extra)
    return args


def test_healthy_stack():
    cluster, params = fakeapi.build_cluster("v1_istio")
    outcome, result = run(module_args(params, fail_on="fail"), cluster)
    assert outcome == "exit"
    assert result["changed"] is False
    assert result["summary"] == {"pass": 33, "fail": 0, "warn": 0, "skip": 2}
    assert result["api_requests"] == len(cluster.requests) == 23
    stack = result["ansible_facts"]["llmd_stack"]
    assert stack["selected"]["gateway"] == "infra-sim-inference-gateway"
    assert stack["endpoints"][-1]["type"] == "service"
    assert [c["id"] for c in result["checks"]][:2] == ["control_plane.ready", "gateway.exists"]


def test_check_mode_gives_the_same_answer():
    cluster, params = fakeapi.build_cluster("v1_istio")
    _outcome, normal = run(module_args(params), cluster)
    cluster, params = fakeapi.build_cluster("v1_istio")
    outcome, checked = run(module_args(params, _ansible_check_mode=True), cluster)
    assert outcome == "exit" and checked["changed"] is False
    assert checked["checks"] == normal["checks"]


def test_fail_on_lists_each_failing_check_and_its_fix():
    cluster, params = fakeapi.build_cluster("v1_istio", [
        {"op": "set", "kind": "HTTPRoute", "name": "llm-d-sim", "path": "spec.rules.0.backendRefs.0.port", "value": 8001}])
    outcome, result = run(module_args(params, fail_on="fail"), cluster)
    assert outcome == "fail"
    assert result["msg"] == ("1 llm-d stack check(s) failed:\n- httproute.backend_port [fail] HTTPRoute llm-d-sim/llm-d-sim: "
                             "backendRef gaie-sim port 8001, but the pool targets [8000] Fix: set the HTTPRoute backendRefs[].port to 8000")
    # The facts and checks come back with the failure.
    assert result["summary"]["fail"] == 1 and result["ansible_facts"]["llmd_stack"]["namespace"] == "llm-d-sim"
    cluster, params = fakeapi.build_cluster("v1_istio", [
        {"op": "set", "kind": "HTTPRoute", "name": "llm-d-sim", "path": "spec.rules.0.backendRefs.0.port", "value": 8001}])
    assert run(module_args(params, fail_on="never"), cluster)[0] == "exit"


def test_fail_on_warn():
    cluster, params = fakeapi.build_cluster("v1alpha2_kgateway", [
        {"op": "set", "kind": "HTTPRoute", "name": "inference-route", "path": "spec.rules.0.timeouts", "value": None}])
    assert run(module_args(params, fail_on="fail"), cluster)[0] == "exit"
    cluster, params = fakeapi.build_cluster("v1alpha2_kgateway", [
        {"op": "set", "kind": "HTTPRoute", "name": "inference-route", "path": "spec.rules.0.timeouts", "value": None}])
    outcome, result = run(module_args(params, fail_on="warn"), cluster)
    assert outcome == "fail" and "httproute.timeouts [warn]" in result["msg"]


def test_checks_option_limits_reads_and_results():
    cluster, params = fakeapi.build_cluster("v1_istio")
    outcome, result = run(module_args(params, checks=["gateway"], skip_checks=["gateway.parameters"]), cluster)
    assert outcome == "exit"
    assert sorted(set(c["id"] for c in result["checks"])) == [
        "gateway.accepted", "gateway.address", "gateway.attached_routes", "gateway.exists", "gateway.programmed"]
    assert result["api_requests"] < 23


@pytest.mark.parametrize("args, message", [
    ({"checks": ["gatway"]}, "checks: unknown check id or prefix 'gatway'"),
    ({"namespace": " "}, "namespace: must not be empty"),
    ({"expected": {"decode_replicas": -1}}, "expected.decode_replicas: must be >= 0, got -1"),
    ({"expected": {"chart_versions": {"ms-sim": ""}}}, "expected.chart_versions.ms-sim: must be a version string"),
    ({"fail_on": "sometimes"}, "value of fail_on must be one of: never, fail, warn"),
    ({"expected": {"provider": "nginx"}}, "value of provider must be one of: istio, kgateway, agentgateway"),
])
def test_bad_input_fails_early_in_one_line(args, message):
    cluster, params = fakeapi.build_cluster("v1_istio")
    full = module_args(params)
    full.update(args)
    outcome, result = run(full, cluster)
    assert outcome == "fail"
    assert message in result["msg"] and "\n" not in result["msg"]
    assert cluster.requests == []  # nothing was read


def test_forbidden_is_one_line_without_traceback():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.errors["/apis/gateway.networking.k8s.io/v1/namespaces/llm-d-sim/httproutes"] = fakeapi.FakeApiError(403, "httproutes is forbidden")
    outcome, result = run(module_args(params), cluster)
    assert outcome == "fail"
    assert result["msg"].startswith("forbidden (403): cannot list httproutes.gateway.networking.k8s.io in namespace llm-d-sim")
    assert "exception" not in result and "Traceback" not in result["msg"]
    assert result["api_requests"] >= 2


def test_unreachable_api_is_one_line():
    cluster, params = fakeapi.build_cluster("v1_istio")
    cluster.unreachable = True
    outcome, result = run(module_args(params), cluster)
    assert outcome == "fail"
    assert result["msg"] == "cannot reach the Kubernetes API at https://127.0.0.1:6443: [Errno 111] Connection refused"


def test_client_configuration_error_is_one_line():
    class CoreException(Exception):
        pass

    cluster, params = fakeapi.build_cluster("v1_istio")
    outcome, result = run(module_args(params), cluster,
                          client_error=CoreException("Could not create API client: Invalid kube-config file. No configuration found."))
    assert outcome == "fail"
    assert result["msg"].startswith("cannot load the Kubernetes client configuration: Could not create API client: Invalid kube-config file.")
    assert "K8S_AUTH_" in result["msg"] and "\n" not in result["msg"]


def _doc_options():
    return yaml.safe_load(llmd_stack_facts.DOCUMENTATION)["options"]


def _compare(doc, spec, where):
    for name, option in spec.items():
        assert name in doc, "%s%s is in the argspec but not documented" % (where, name)
        documented = doc[name]
        assert documented.get("type", "str") == option.get("type", "str"), where + name
        assert documented.get("default") == option.get("default"), where + name
        assert documented.get("choices") == option.get("choices"), where + name
        assert documented.get("elements") == option.get("elements"), where + name
        assert bool(documented.get("required")) == bool(option.get("required")), where + name
        if "options" in option:
            _compare(documented["suboptions"], option["options"], where + name + ".")
    assert set(doc) == set(spec), where


def test_documentation_matches_the_argument_spec():
    spec = dict((k, v) for k, v in llmd_stack_facts.argument_spec().items() if k not in AUTH_ARG_SPEC)
    _compare(_doc_options(), spec, "")


def test_return_documents_every_key_with_a_sample():
    returned = yaml.safe_load(llmd_stack_facts.RETURN)

    def walk(node, where):
        for key, value in node.items():
            assert "sample" in value, where + key
            walk(value.get("contains", {}), where + key + ".")
    walk(returned, "")
    cluster, params = fakeapi.build_cluster("v1_istio")
    _outcome, result = run(module_args(params), cluster)
    documented = set(returned["ansible_facts"]["contains"]["llmd_stack"]["contains"])
    assert set(result["ansible_facts"]["llmd_stack"]) == documented
    assert set(result) - {"changed"} == set(returned)


def test_examples_use_fqcn():
    assert re.findall(r"^  (\w+\.\w+\.\w+):", llmd_stack_facts.EXAMPLES, re.M)
    assert "llmd_stack_facts:" not in re.sub(r"llmd\.stack\.llmd_stack_facts:", "", llmd_stack_facts.EXAMPLES)
