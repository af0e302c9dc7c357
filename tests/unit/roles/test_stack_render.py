"""The stack role's generated helmfile state and values, per release and option.

Runs the role's `render` entry point through ansible-playbook (no cluster) and
checks what upstream's charts of each release expect.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "render.yml")


def render(tmp_path, **extra):
    out = tmp_path / "rendered"
    extra = dict(extra, stack_render_dir=str(out))
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK,
                             "-e", "@%s" % vars_file], cwd=REPO, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    def load(name):
        with open(out / name) as handle:
            return yaml.safe_load(handle)

    return {name: load(name) for name in ("helmfile.yaml", "values-infra.yaml", "values-gaie.yaml",
                                          "values-modelservice.yaml", "httproute.yaml")}


@pytest.fixture(scope="module")
def v06(tmp_path_factory):
    return render(tmp_path_factory.mktemp("v06"), stack_namespace="ns", stack_release_postfix="x",
                  stack_model_name="meta-llama/Llama-3.1-8B-Instruct")


def test_v06_releases_follow_upstream_names_versions_and_order(v06):
    releases = v06["helmfile.yaml"]["releases"]
    assert [(r["name"], r["chart"], r["version"]) for r in releases] == [
        ("infra-x", "llm-d-infra/llm-d-infra", "v1.4.0"),
        ("gaie-x", "oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool", "v1.4.0"),
        ("ms-x", "llm-d-modelservice/llm-d-modelservice", "v0.4.9")]
    assert releases[2]["needs"] == ["ns/infra-x", "ns/gaie-x"]
    assert {r["name"] for r in v06["helmfile.yaml"]["repositories"]} == {"llm-d-infra", "llm-d-modelservice"}


def test_v06_values_use_v1_pool_new_label_and_istio(v06):
    assert v06["values-infra.yaml"] == {"gateway": {"provider": "istio", "service": {"type": "ClusterIP"}}}
    gaie = v06["values-gaie.yaml"]
    assert gaie["inferencePool"]["targetPorts"] == [{"number": 8000}]
    assert "apiVersion" not in gaie["inferencePool"]
    assert gaie["inferencePool"]["modelServers"]["matchLabels"] == {
        "llm-d.ai/inference-serving": "true", "llm-d.ai/model": "meta-llama-llama-3.1-8b-instruct"}
    assert gaie["provider"] == {"name": "istio", "istio": {"destinationRule": {"host": "gaie-x-epp.ns.svc.cluster.local"}}}
    assert gaie["inferenceExtension"]["image"] == {"hub": "ghcr.io/llm-d", "name": "llm-d-inference-scheduler", "tag": "v0.7.0"}
    assert gaie["inferenceExtension"]["pluginsConfigFile"] == "default-plugins.yaml"
    ms = v06["values-modelservice.yaml"]
    assert ms["modelArtifacts"]["labels"] == gaie["inferencePool"]["modelServers"]["matchLabels"]
    assert ms["decode"]["containers"][0]["ports"] == [{"containerPort": 8200, "name": "vllm", "protocol": "TCP"}]
    assert ms["decode"]["containers"][0]["modelCommand"] == "vllmServe"
    assert ms["prefill"]["create"] is False
    assert "modelName" not in ms["routing"]


def test_httproute_has_zero_timeouts_and_the_pool_group(v06):
    route = v06["httproute.yaml"]
    rule = route["spec"]["rules"][0]
    assert rule["timeouts"] == {"backendRequest": "0s", "request": "0s"}
    assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "gaie-x",
                                    "port": 8000, "weight": 1}]
    assert route["spec"]["parentRefs"][0]["name"] == "infra-x-inference-gateway"


def test_v03_uses_v1alpha2_pool_old_label_gateway_class_and_model_name(tmp_path):
    out = render(tmp_path, release_matrix_name="v0.3", stack_release_postfix="x", stack_model_name="random")
    assert out["values-infra.yaml"]["gateway"] == {"gatewayClassName": "istio", "service": {"type": "ClusterIP"}}
    pool = out["values-gaie.yaml"]["inferencePool"]
    assert pool["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2" and pool["targetPortNumber"] == 8000
    assert pool["modelServers"]["matchLabels"]["llm-d.ai/inferenceServing"] == "true"
    assert out["values-modelservice.yaml"]["routing"]["modelName"] == "random"
    assert out["httproute.yaml"]["spec"]["rules"][0]["backendRefs"][0]["group"] == "inference.networking.x-k8s.io"


def test_kgateway_on_openshift_sets_its_class_and_floating_user_id(tmp_path):
    out = render(tmp_path, release_matrix_name="v0.5", stack_gateway_provider="kgateway", stack_render_openshift=True)
    assert out["values-infra.yaml"]["gateway"] == {
        "gatewayClassName": "kgateway", "service": {"type": "ClusterIP"}, "gatewayParameters": {"floatingUserId": True}}
    assert out["values-gaie.yaml"]["provider"] == {"name": "none"}


def test_pd_preset_configures_prefill_and_the_decider(tmp_path):
    out = render(tmp_path, stack_prefill_replicas=1, stack_scheduling_preset="pd", stack_pd_non_cached_tokens=32)
    gaie = out["values-gaie.yaml"]["inferenceExtension"]
    assert gaie["pluginsConfigFile"] == "llmd-pd.yaml"
    config = yaml.safe_load(gaie["pluginsCustomConfig"]["llmd-pd.yaml"])
    assert [p["name"] for p in config["schedulingProfiles"]] == ["prefill", "decode"]
    decider = [p for p in config["plugins"] if p["type"] == "prefix-based-pd-decider"][0]
    assert decider["parameters"] == {"nonCachedTokens": 32}
    ms = out["values-modelservice.yaml"]
    assert ms["prefill"]["create"] is True and ms["prefill"]["replicas"] == 1
    assert ms["prefill"]["containers"][0]["ports"][0]["containerPort"] == 8000


def test_multi_factor_weights_and_the_release_scorer_name(tmp_path):
    out = render(tmp_path, release_matrix_name="ocp-wlp-2025.09", stack_scheduling_preset="multi-factor",
                 stack_scheduling_weights={"queue": 1, "kv_cache": 2, "prefix_cache": 5})
    config = yaml.safe_load(out["values-gaie.yaml"]["inferenceExtension"]["pluginsCustomConfig"]["llmd-multi-factor.yaml"])
    weights = {p["pluginRef"]: p.get("weight") for p in config["schedulingProfiles"][0]["plugins"]}
    assert weights == {"queue-scorer": 1, "kv-cache-scorer": 2, "prefix-cache-scorer": 5, "max-score-picker": None}


def test_local_and_mirror_chart_sources(tmp_path):
    out = render(tmp_path, stack_chart_sources={"infra": "/charts/llm-d-infra", "gaie": "oci://mirror.example/charts/inferencepool",
                                                "modelservice": "https://mirror.example/llm-d-modelservice/"})
    releases = {r["name"]: r for r in out["helmfile.yaml"]["releases"]}
    assert releases["infra-inference-scheduling"]["chart"] == "/charts/llm-d-infra"
    assert "version" not in releases["infra-inference-scheduling"]
    assert releases["gaie-inference-scheduling"]["chart"] == "oci://mirror.example/charts/inferencepool"
    assert releases["ms-inference-scheduling"]["chart"] == "llm-d-modelservice/llm-d-modelservice"
    assert out["helmfile.yaml"]["repositories"] == [{"name": "llm-d-modelservice", "url": "https://mirror.example/llm-d-modelservice/"}]


def test_simulation_and_user_values_files(tmp_path):
    out = render(tmp_path, stack_simulate=True, stack_simulator_args=["--mode", "echo"],
                 stack_values_files={"infra": [], "gaie": ["/tmp/my-gaie.yaml"], "modelservice": []})
    container = out["values-modelservice.yaml"]["decode"]["containers"][0]
    assert container["image"] == "ghcr.io/llm-d/llm-d-inference-sim:v0.8.2"
    assert container["modelCommand"] == "imageDefault" and container["args"] == ["--mode", "echo"]
    gaie = [r for r in out["helmfile.yaml"]["releases"] if r["name"].startswith("gaie-")][0]
    assert gaie["values"] == ["values-gaie.yaml", "/tmp/my-gaie.yaml"]
