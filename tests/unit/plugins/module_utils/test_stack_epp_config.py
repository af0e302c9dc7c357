"""EPP scheduling-config parsing (_epp_config)."""

import yaml

from ansible_collections.llmd.stack.plugins.module_utils._epp_config import (
    config_source,
    flag_value,
    parse_epp_config,
    plugin_category,
    select_epp_config,
    summarize_epp_config,
)

CHART_DEFAULT = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
  parameters: {blockSize: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""


def test_chart_default_config():
    summary = parse_epp_config(CHART_DEFAULT, yaml.safe_load)
    assert summary["valid"] is True and summary["errors"] == [] and summary["pd"] is False
    assert [(p["ref"], p["category"], p["weight"]) for p in summary["profiles"][0]["plugins"]] == [
        ("queue-scorer", "scorer", 2), ("kv-cache-utilization-scorer", "scorer", 2), ("prefix-cache-scorer", "scorer", 3)]
    assert summary["plugins"][2]["parameters"]["blockSize"] == 64


def test_named_plugins_default_weight_and_errors():
    summary = summarize_epp_config({
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "by-label", "name": "gpu-only", "parameters": {"label": "gpu"}}, {"type": "max-score-picker"}, {"name": "no-type"}],
        "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "gpu-only"}, {"pluginRef": "max-score-picker", "weight": "1.5"},
                                                               {"pluginRef": "missing"}, {"weight": 3}]}],
    })
    refs = summary["profiles"][0]["plugins"]
    assert refs[0] == {"ref": "gpu-only", "type": "by-label", "category": "other", "weight": 1}
    assert refs[1]["weight"] == 1.5
    assert refs[2] == {"ref": "missing", "type": None, "category": "unknown", "weight": 1}
    assert summary["errors"] == ["plugins[2] has no type", "profile default references undefined plugin missing",
                                 "profile default plugins[3] has no pluginRef"]
    assert summary["valid"] is False


def test_pd_detection():
    handler = summarize_epp_config({"plugins": [{"type": "disagg-profile-handler"}], "schedulingProfiles": [{"name": "x", "plugins": []}]})
    assert handler["pd"] is True
    profiles = summarize_epp_config({"schedulingProfiles": [{"name": "prefill"}, {"name": "decode"}]})
    assert profiles["pd"] is True


def test_bad_documents_never_raise():
    assert parse_epp_config("plugins: [", yaml.safe_load)["errors"][0].startswith("invalid YAML:")
    assert parse_epp_config("", yaml.safe_load)["errors"] == ["the scheduling config is empty"]
    assert parse_epp_config("a: 1", None)["errors"] == ["no YAML loader available to read the scheduling config"]
    assert summarize_epp_config(["not", "a", "mapping"])["errors"] == ["the scheduling config is not a mapping"]
    assert "kind is Other, expected EndpointPickerConfig" in summarize_epp_config({"kind": "Other", "schedulingProfiles": []})["errors"]
    assert summarize_epp_config({"plugins": "x", "schedulingProfiles": 3})["errors"] == [
        "plugins is not a list", "schedulingProfiles is not a list", "no schedulingProfiles defined"]


def test_categories():
    assert [plugin_category(t) for t in ("queue-scorer", "max-score-picker", "decode-filter", "pd-profile-handler",
                                         "prefix-based-pd-decider", "prefill-header-handler", "tokenizer", None)] == [
        "scorer", "picker", "filter", "profile-handler", "decider", "handler", "other", "other"]


def test_config_source_from_args():
    assert config_source(["--pool-name", "p", "--config-file", "/config/custom.yaml"]) == {"file": "custom.yaml", "path": "/config/custom.yaml"}
    assert config_source(["--config-file=/config/a.yaml"])["file"] == "a.yaml"
    assert config_source(["--config-text", "kind: EndpointPickerConfig"]) == {"text": "kind: EndpointPickerConfig"}
    assert config_source(["--pool-name p --config-file /config/x.yaml"])["file"] == "x.yaml"  # one shell-style string
    assert config_source([]) == {}
    assert flag_value(["--v", "4"], "--v") == "4" and flag_value(["--v"], "--v") is None


def test_select_config_from_mounted_configmaps():
    configmaps = [{"name": "gaie-epp", "data": {"default-plugins.yaml": CHART_DEFAULT, "other.yaml": "x: 1"}}]
    chosen = select_epp_config(["--config-file", "/config/default-plugins.yaml"], configmaps, yaml.safe_load)
    assert chosen["source"] == "configmap gaie-epp/default-plugins.yaml" and chosen["valid"]
    assert chosen["available_files"] == ["gaie-epp/default-plugins.yaml", "gaie-epp/other.yaml"]
    missing = select_epp_config(["--config-file", "/config/absent.yaml"], configmaps, yaml.safe_load)
    assert missing["errors"] == ["--config-file /config/absent.yaml is in no mounted ConfigMap"]
    assert select_epp_config([], configmaps, yaml.safe_load)["source"] == "built-in default"
    inline = select_epp_config(["--config-text", CHART_DEFAULT], [], yaml.safe_load)
    assert inline["source"] == "args (--config-text)" and inline["valid"]
