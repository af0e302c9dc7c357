"""deploy.yml and cleanup.yml on the lab: honest change reporting, check mode,
preset changes, cleanup, and a clear stop on bad input.

The stack goes into its own namespace (release postfix `t`), so the demo stack
in llm-d-sim is left alone. The tests of this module share one deployment and
run in file order.
"""
import json
import subprocess

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

KINDS = [
    ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("inference.networking.k8s.io/v1", "InferencePool"),
]


@pytest.fixture(scope="module")
def stack(deploy_stack):
    with deploy_stack("t-deploy", "t") as (extra, first):
        yield {"vars": extra, "namespace": extra["stack_namespace"], "first": first}


def resource_versions(dynamic_client, namespace):
    versions = {}
    for api_version, kind in KINDS:
        api = dynamic_client.resources.get(api_version=api_version, kind=kind)
        for item in api.get(namespace=namespace).items:
            versions["%s/%s" % (kind, item.metadata.name)] = item.metadata.resourceVersion
    crds = dynamic_client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for item in crds.get().items:
        if item.spec.group.endswith(("gateway.networking.k8s.io", "inference.networking.k8s.io",
                                     "inference.networking.x-k8s.io", "istio.io")):
            versions["CRD/%s" % item.metadata.name] = item.metadata.resourceVersion
    deployments = dynamic_client.resources.get(api_version="apps/v1", kind="Deployment")
    for item in deployments.get(namespace="istio-system").items:
        versions["istio-system/Deployment/%s" % item.metadata.name] = item.metadata.resourceVersion
    return versions


def helm_revisions(lab, namespace):
    listing = subprocess.run(["helm", "list", "--namespace", namespace, "--output", "json"], env=lab.env,
                             capture_output=True, text=True, check=True).stdout
    return {release["name"]: int(release["revision"]) for release in json.loads(listing)}


def test_first_deploy_installs_the_stack(stack, lab):
    assert stack["first"].changed > 0
    releases = helm_revisions(lab, stack["namespace"])
    assert set(releases) == {"infra-t", "gaie-t", "ms-t"}
    routes = lab.kubectl("get", "httproute", "llm-d-t", "-n", stack["namespace"], "-o",
                         "jsonpath={.spec.rules[0].backendRefs[0].name}:{.spec.rules[0].timeouts.request}")
    assert routes.stdout == "gaie-t:0s"


def test_second_deploy_reports_no_change(stack, run_playbook):
    second = run_playbook("deploy.yml", stack["vars"])
    assert second.rc == 0, second.tail()
    assert second.changed == 0, second.tail(120)


def test_check_mode_changes_nothing_but_reports_what_would(stack, run_playbook, dynamic_client):
    before = resource_versions(dynamic_client, stack["namespace"])
    # A real difference (one more decode replica) that check mode must report, not apply.
    check = run_playbook("deploy.yml", dict(stack["vars"], stack_decode_replicas=3), "--check", "--diff")
    assert check.rc == 0, check.tail()
    assert check.changed >= 1, check.tail(120)
    assert "+  replicas: 3" in check.output, check.tail(120)
    assert resource_versions(dynamic_client, stack["namespace"]) == before


def test_changing_the_preset_updates_only_the_gaie_release(stack, run_playbook, lab):
    before = helm_revisions(lab, stack["namespace"])
    run = run_playbook("deploy.yml", dict(stack["vars"], stack_scheduling_preset="queue-only"), "--tags", "preset")
    assert run.rc == 0, run.tail()
    after = helm_revisions(lab, stack["namespace"])
    assert after["gaie-t"] == before["gaie-t"] + 1
    assert after["infra-t"] == before["infra-t"]
    assert after["ms-t"] == before["ms-t"]
    config = lab.kubectl("get", "configmap", "gaie-t-epp", "-n", stack["namespace"], "-o",
                         "jsonpath={.data.llmd-queue-only\\.yaml}")
    assert "queue-scorer" in config.stdout and "prefix-cache-scorer" not in config.stdout
    back = run_playbook("deploy.yml", stack["vars"], "--tags", "preset")
    assert back.rc == 0, back.tail()
    assert helm_revisions(lab, stack["namespace"])["gaie-t"] == before["gaie-t"] + 2


def test_cleanup_removes_the_stack_and_a_new_deploy_converges(stack, run_playbook, lab, dynamic_client, wait_until):
    cleanup = run_playbook("cleanup.yml", stack["vars"])
    assert cleanup.rc == 0, cleanup.tail()
    assert helm_revisions(lab, stack["namespace"]) == {}

    def leftovers():
        # The namespace stays (cleanup_namespace is false) with its kube-root-ca.crt ConfigMap.
        return {key for key in resource_versions(dynamic_client, stack["namespace"])
                if not key.startswith(("CRD/", "istio-system/", "ConfigMap/kube-root-ca.crt"))}

    # The gateway's own Service/Deployment go with their owner, the Gateway, through garbage collection.
    wait_until(lambda: not leftovers(), 120, "no stack object left in %s" % stack["namespace"])
    again = run_playbook("cleanup.yml", stack["vars"])
    assert again.rc == 0 and again.changed == 0, again.tail()
    redeploy = run_playbook("deploy.yml", stack["vars"])
    assert redeploy.rc == 0, redeploy.tail()
    assert redeploy.changed > 0
    assert set(helm_revisions(lab, stack["namespace"])) == {"infra-t", "gaie-t", "ms-t"}
