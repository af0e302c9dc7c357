"""OpenShift Service Mesh in the way of upstream Istio: deploy.yml stops before
changing anything unless removal is allowed; with removal allowed it deletes
exactly the Service Mesh objects and Istio installs."""
import os
import uuid

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MAISTRA = [("maistra.io/v2", "ServiceMeshControlPlane", "istio-system", "data-science-smcp"),
           ("maistra.io/v1", "ServiceMeshMemberRoll", "istio-system", "default")]


@pytest.fixture()
def service_mesh(lab, dynamic_client, namespace):
    """Service Mesh objects as OpenShift AI leaves them: a control plane, a member roll, a member."""
    for name in ("servicemeshcontrolplanes", "servicemeshmemberrolls", "servicemeshmembers"):
        path = os.path.join(REPO, "lab", "fixtures", "crds", "openshift", "%s.maistra.io.yaml" % name)
        lab.kubectl("apply", "--server-side", "-f", path)
        lab.kubectl("wait", "--for=condition=Established", "crd/%s.maistra.io" % name, "--timeout=60s")
    created = MAISTRA + [("maistra.io/v1", "ServiceMeshMember", namespace, "default")]
    for api_version, kind, ns, name in created:
        spec = {"members": [namespace]} if kind == "ServiceMeshMemberRoll" else (
            {"controlPlaneRef": {"name": "data-science-smcp", "namespace": "istio-system"}}
            if kind == "ServiceMeshMember" else {"version": "v2.6"})
        dynamic_client.resources.get(api_version=api_version, kind=kind).create(
            {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec},
            namespace=ns)
    yield created
    for api_version, kind, ns, name in created:
        resource = dynamic_client.resources.get(api_version=api_version, kind=kind)
        if resource.get(namespace=ns, field_selector="metadata.name=%s" % name).items:
            resource.delete(name=name, namespace=ns)


def present(dynamic_client, objects):
    found = []
    for api_version, kind, ns, name in objects:
        resource = dynamic_client.resources.get(api_version=api_version, kind=kind)
        if resource.get(namespace=ns, field_selector="metadata.name=%s" % name).items:
            found.append(kind)
    return found


def test_service_mesh_stops_the_deploy_unless_removal_is_allowed(service_mesh, run_playbook, lab, dynamic_client):
    stack_ns = "t-ossm-%s" % uuid.uuid4().hex[:5]
    extra = {"stack_namespace": stack_ns, "stack_release_postfix": "om"}
    stopped = run_playbook("deploy.yml", extra)
    assert stopped.rc != 0
    assert "OpenShift Service Mesh is installed" in stopped.output, stopped.tail()
    assert "ServiceMeshControlPlane istio-system/data-science-smcp" in stopped.output, stopped.tail()
    assert "gateway_provider_remove_service_mesh: true" in stopped.output
    assert stopped.changed == 0, stopped.tail()
    assert lab.kubectl("get", "namespace", stack_ns, check=False).returncode != 0
    assert present(dynamic_client, service_mesh) == ["ServiceMeshControlPlane", "ServiceMeshMemberRoll", "ServiceMeshMember"]

    allowed = run_playbook("deploy.yml", dict(extra, gateway_provider_remove_service_mesh=True))
    try:
        assert allowed.rc == 0, allowed.tail()
        assert present(dynamic_client, service_mesh) == []
        assert "Remove OpenShift Service Mesh" in allowed.output
        istiod = lab.kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o",
                             "jsonpath={.status.availableReplicas}")
        assert istiod.stdout == "1"
    finally:
        cleanup = run_playbook("cleanup.yml", dict(extra, cleanup_namespace=True))
        assert cleanup.rc == 0, cleanup.tail()
