"""verify.yml on the lab: passes on a healthy stack and writes its reports;
each deliberate break makes it fail and the report names the right check.

The stack lives in its own namespace (release postfix `v`); each break is
repaired before the next test, by deploy.yml where it reapplies what was broken.
"""
import glob
import json
import os

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(deploy_stack, tmp_path_factory):
    with deploy_stack("t-verify", "v") as (extra, _deploy):
        reports = tmp_path_factory.mktemp("reports")
        yield {"deploy_vars": extra, "namespace": extra["stack_namespace"], "reports": str(reports),
               "verify_vars": dict(extra, verify_report_dir=str(reports), verify_probe_deadline=10,
                                   verify_burst_requests=4)}


def latest_report(reports):
    newest = max(glob.glob(os.path.join(reports, "*", "report.json")), key=os.path.getmtime)
    with open(newest) as handle:
        return os.path.dirname(newest), json.load(handle)


def failing_checks(report):
    return sorted(set(r["check"] for r in report["results"] if r["status"] == "fail"))


def test_healthy_stack_passes_and_writes_the_reports(stack, run_playbook):
    run = run_playbook("verify.yml", stack["verify_vars"])
    assert run.rc == 0, run.tail(80)
    assert "All " in run.output and "checks passed" in run.output
    directory, report = latest_report(stack["reports"])
    assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 20
    assert {"probe.models", "probe.completions", "probe.chat", "probe.burst", "probe.routing"} <= set(
        r["check"] for r in report["results"] if r["status"] == "pass")
    assert sorted(os.listdir(directory)) == ["junit.xml", "report.json", "report.md"]
    with open(os.path.join(directory, "report.md")) as handle:
        assert handle.readline().strip() == "# llm-d stack verification: PASSED"


def assert_verify_fails_on(run_playbook, stack, expected_check):
    run = run_playbook("verify.yml", stack["verify_vars"])
    assert run.rc != 0, run.tail(80)
    _report_dir, report = latest_report(stack["reports"])
    failing = failing_checks(report)
    assert expected_check in failing, failing
    # The final assert names the check and its fix.
    assert "- %s" % expected_check in run.output and "fix:" in run.output, run.tail(80)
    return failing


def test_deleted_httproute_is_reported_as_httproute_exists(stack, run_playbook, lab):
    lab.kubectl("delete", "httproute", "llm-d-v", "-n", stack["namespace"])
    failing = assert_verify_fails_on(run_playbook, stack, "httproute.exists")
    # Without a route the gateway answers 404, which the probe reports too.
    assert "probe.models" in failing
    repair = run_playbook("deploy.yml", stack["deploy_vars"], "--tags", "stack")
    assert repair.rc == 0, repair.tail()


def test_epp_scaled_to_zero_is_reported_as_epp_available(stack, run_playbook, lab):
    lab.kubectl("scale", "deployment", "gaie-v-epp", "--replicas=0", "-n", stack["namespace"])
    failing = assert_verify_fails_on(run_playbook, stack, "epp.available")
    assert "httproute.exists" not in failing
    lab.kubectl("scale", "deployment", "gaie-v-epp", "--replicas=1", "-n", stack["namespace"])
    lab.kubectl("rollout", "status", "deployment/gaie-v-epp", "-n", stack["namespace"], "--timeout=120s", timeout=150)


def test_decode_pods_not_ready_are_reported_as_modelservers_decode(stack, run_playbook, lab, api_client, wait_until):
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(stack["namespace"], label_selector="llm-d.ai/role=decode").items
    assert pods
    for pod in pods:
        # What a failing readiness probe does: the kubelet (here kwok) marks the pod not Ready.
        for condition in pod.status.conditions:
            if condition.type in ("Ready", "ContainersReady"):
                condition.status = "False"
        core.replace_namespaced_pod_status(pod.metadata.name, stack["namespace"], pod)
    apps = client.AppsV1Api(api_client)
    wait_until(lambda: not apps.read_namespaced_deployment("ms-v-llm-d-modelservice-decode", stack["namespace"])
               .status.ready_replicas, 60, "the decode Deployment to count no ready replica")
    assert_verify_fails_on(run_playbook, stack, "modelservers.decode")
    for pod in pods:
        core.delete_namespaced_pod(pod.metadata.name, stack["namespace"])
    lab.kubectl("rollout", "status", "deployment/ms-v-llm-d-modelservice-decode", "-n", stack["namespace"],
                "--timeout=120s", timeout=150)


def test_wrong_backend_port_is_reported_as_httproute_backend_port(stack, run_playbook, lab):
    lab.kubectl("patch", "httproute", "llm-d-v", "-n", stack["namespace"], "--type=json", "-p",
                '[{"op": "replace", "path": "/spec/rules/0/backendRefs/0/port", "value": 8001}]')
    assert_verify_fails_on(run_playbook, stack, "httproute.backend_port")
    repair = run_playbook("deploy.yml", stack["deploy_vars"], "--tags", "stack")
    assert repair.rc == 0, repair.tail()
    again = run_playbook("verify.yml", stack["verify_vars"])
    assert again.rc == 0, again.tail(80)
