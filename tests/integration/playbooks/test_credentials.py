"""AAP's bearer-token credential: deploy.yml and cleanup.yml work with only
K8S_AUTH_HOST / K8S_AUTH_API_KEY / K8S_AUTH_SSL_CA_CERT / K8S_AUTH_VERIFY_SSL
(no kubeconfig), helm and helmfile get a temporary kubeconfig that is removed
afterwards, and the token never appears in the output, even at -vvv."""
import base64
import glob
import os
import tempfile
import uuid

import pytest
import yaml

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture()
def bearer_token(api_client, lab, tmp_path):
    from kubernetes import client

    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    name = "llmd-token-test-%s" % uuid.uuid4().hex[:5]
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": name}})
    rbac.create_cluster_role_binding({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}]})
    token = core.create_namespaced_service_account_token(
        name, "kube-system", {"spec": {"expirationSeconds": 3600}}).status.token
    with open(lab.kubeconfig) as handle:
        cluster = yaml.safe_load(handle)["clusters"][0]["cluster"]
    ca_file = tmp_path / "ca.crt"
    if "certificate-authority-data" in cluster:
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca_file.write_bytes(open(cluster["certificate-authority"], "rb").read())
    yield {"K8S_AUTH_HOST": cluster["server"], "K8S_AUTH_API_KEY": token,
           "K8S_AUTH_SSL_CA_CERT": str(ca_file), "K8S_AUTH_VERIFY_SSL": "True"}
    rbac.delete_cluster_role_binding(name)
    core.delete_namespaced_service_account(name, "kube-system")


def temporary_kubeconfigs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "llmd-kubeconfig-*")))


def test_bearer_token_credential_deploys_without_leaking_the_token(run_playbook, bearer_token, lab):
    namespace = "t-token-%s" % uuid.uuid4().hex[:5]
    extra = {"stack_namespace": namespace, "stack_release_postfix": "tok", "stack_wait": False}
    before = temporary_kubeconfigs()
    no_kubeconfig = ("KUBECONFIG", "K8S_AUTH_KUBECONFIG")
    home = tempfile.mkdtemp()  # no ~/.kube/config to fall back on
    env = dict(bearer_token, HOME=home)
    deploy = run_playbook("deploy.yml", extra, "-vvv", env_update=env, env_remove=no_kubeconfig)
    cleanup = run_playbook("cleanup.yml", dict(extra, cleanup_namespace=True), "-vvv", env_update=env,
                           env_remove=no_kubeconfig)
    assert deploy.rc == 0, deploy.tail(80)
    assert cleanup.rc == 0, cleanup.tail(80)
    assert deploy.changed > 0 and cleanup.changed > 0
    token = bearer_token["K8S_AUTH_API_KEY"]
    assert token not in deploy.output and token not in cleanup.output
    assert token[-24:] not in deploy.output + cleanup.output
    # helmfile ran with the temporary kubeconfig, which is gone afterwards.
    assert "KUBECONFIG" in deploy.output and "llmd-kubeconfig-" in deploy.output
    assert temporary_kubeconfigs() == before
    assert lab.kubectl("get", "namespace", namespace, check=False).returncode != 0 or \
        "Terminating" in lab.kubectl("get", "namespace", namespace, check=False).stdout
