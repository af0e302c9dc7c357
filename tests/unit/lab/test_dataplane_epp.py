"""Endpoint-picker scheduling of the lab gateway data-plane simulator."""
import random

import pytest

import dataplane_fixtures as fx
from simulators import dataplane_epp as epp


def endpoint(name, role="decode", kv=0.0, address=None, labels=None):
    return {
        "key": "%s/%s" % (fx.NS, name),
        "name": name,
        "namespace": fx.NS,
        "address": address or "10.0.0.%d" % (abs(hash(name)) % 200 + 1),
        "labels": labels if labels is not None else {"llm-d.ai/role": role},
        "metrics": {"waiting": 0, "running": 0, "kv_cache_usage": kv, "update_time": "t"},
    }


def request(prompt="hello", model="fake-model", request_id="rid-1"):
    return {"model": model, "prompt": prompt, "request_id": request_id,
            "summary": epp.request_summary(model, prompt)}


def config(text):
    parsed = epp.parse_config(text)
    assert parsed["ok"], parsed
    return parsed["config"]


def messages(events):
    return [msg for _level, msg, _fields in events]


# --- configuration ------------------------------------------------------------

def test_chart_default_config():
    cfg = config(fx.CHART_DEFAULT_CONFIG)
    (profile,) = cfg["profiles"]
    assert profile["name"] == "default"
    assert [(p["type"], w) for p, w in profile["scorers"]] == [
        ("queue-scorer", 2.0), ("kv-cache-utilization-scorer", 2.0), ("prefix-cache-scorer", 3.0)]
    assert profile["picker"]["type"] == "max-score-picker"
    assert cfg["handler"]["type"] == "single-profile-handler"
    assert cfg["unknown"] == []
    assert epp.uses_prefix_scorer(cfg) is True


def test_built_in_default_is_the_chart_default():
    assert config(epp.DEFAULT_CONFIG_TEXT)["profiles"][0]["scorers"] == config(fx.CHART_DEFAULT_CONFIG)[
        "profiles"][0]["scorers"]


def test_pd_config():
    cfg = config(fx.PD_CONFIG)
    assert [p["name"] for p in cfg["profiles"]] == ["prefill", "decode"]
    prefill, decode = cfg["profiles"]
    assert [f["type"] for f in prefill["filters"]] == ["prefill-filter"]
    assert [f["type"] for f in decode["filters"]] == ["decode-filter"]
    assert [(p["type"], w) for p, w in decode["scorers"]] == [("prefix-cache-scorer", 50.0)]
    assert epp.pd_settings(cfg) == {"decode": "decode", "prefill": "prefill", "decider": None, "threshold": 10}


def test_disagg_handler_settings():
    cfg = config("""
plugins:
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: 16}
- type: disagg-profile-handler
  parameters:
    deciders: {prefill: prefix-based-pd-decider}
- type: prefill-filter
- type: decode-filter
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}]
- name: decode
  plugins: [{pluginRef: decode-filter}]
""")
    assert epp.pd_settings(cfg) == {"decode": "decode", "prefill": "prefill",
                                    "decider": "prefix-based-pd-decider", "threshold": None}


def test_unknown_plugins_are_reported_and_ignored():
    parsed = epp.parse_config("""
plugins:
- type: session-affinity-scorer
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: session-affinity-scorer, weight: 5}, {pluginRef: queue-scorer}]
""")
    assert parsed["ok"]
    assert parsed["config"]["unknown"] == ["session-affinity-scorer"]
    assert "session-affinity-scorer" in parsed["warnings"][0]
    assert [p["type"] for p, _weight in parsed["config"]["profiles"][0]["scorers"]] == ["queue-scorer"]


def test_named_plugin_instances():
    cfg = config("""
plugins:
- {type: queue-scorer, name: q}
- {type: random-picker, name: pick}
schedulingProfiles:
- {name: default, plugins: [{pluginRef: q, weight: 1}, {pluginRef: pick}]}
""")
    assert cfg["profiles"][0]["picker"]["name"] == "pick"
    assert cfg["profiles"][0]["scorers"][0][0]["name"] == "q"


def test_plugins_without_profiles_make_one_default_profile():
    cfg = config("plugins:\n- type: queue-scorer\n- type: round-robin-picker\n")
    assert cfg["profiles"][0]["name"] == "default"
    assert cfg["profiles"][0]["picker"]["type"] == "round-robin-picker"


@pytest.mark.parametrize("text, error", [
    ("plugins: [", "invalid EndpointPickerConfig YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("plugins:\n- {name: x}\n", "has no type"),
    ("plugins:\n- {type: queue-scorer}\n- {type: queue-scorer}\n", "defined twice"),
    ("plugins: [{type: queue-scorer}]\nschedulingProfiles:\n- {name: d, plugins: [{pluginRef: nope}]}\n",
     "undefined plugin"),
    ("plugins: [{type: random-picker}, {type: max-score-picker}]\nschedulingProfiles:\n"
     "- {name: d, plugins: [{pluginRef: random-picker}, {pluginRef: max-score-picker}]}\n", "more than one picker"),
    ("plugins: [{type: queue-scorer}]\nschedulingProfiles:\n- {name: a, plugins: []}\n- {name: b, plugins: []}\n",
     "need a profile handler"),
    ("plugins: [{type: pd-profile-handler}]\nschedulingProfiles:\n- {name: decode, plugins: []}\n",
     "named prefill"),
    ("plugins: [{type: disagg-profile-handler, parameters: {deciders: {prefill: ghost}}}]\n"
     "schedulingProfiles:\n- {name: decode, plugins: []}\n- {name: prefill, plugins: []}\n", "not defined"),
])
def test_config_errors_stop_the_epp(text, error):
    parsed = epp.parse_config(text)
    assert parsed["ok"] is False
    assert error in parsed["error"]


# --- scorers ------------------------------------------------------------------

def test_queue_scorer_prefers_fewer_in_flight():
    state = epp.EppState()
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    for key in (a["key"], a["key"], b["key"]):
        state.begin(key)
    scores = epp.run_scorer({"type": "queue-scorer", "parameters": {}}, [a, b, c], request(), state)
    assert scores == {a["key"]: 0.0, b["key"]: 0.5, c["key"]: 1.0}
    for key in (a["key"], a["key"], b["key"], b["key"]):
        state.end(key)
    assert state.in_flight[b["key"]] == 0
    scores = epp.run_scorer({"type": "queue-scorer", "parameters": {}}, [a, b, c], request(), state)
    assert set(scores.values()) == {1.0}


def test_kv_cache_scorer_prefers_free_cache():
    a, b = endpoint("a", kv=0.9), endpoint("b", kv=0.1)
    scores = epp.run_scorer({"type": "kv-cache-utilization-scorer", "parameters": {}}, [a, b], request(),
                            epp.EppState())
    assert scores[a["key"]] == pytest.approx(0.1) and scores[b["key"]] == pytest.approx(0.9)


def test_load_aware_scorer():
    state = epp.EppState()
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    for key in [b["key"]] * 2 + [c["key"]] * 5:
        state.begin(key)
    plugin = {"type": "load-aware-scorer", "parameters": {"threshold": 4}}
    assert epp.run_scorer(plugin, [a, b, c], request(), state) == {a["key"]: 0.5, b["key"]: 0.25, c["key"]: 0.0}


def test_prefix_scorer_remembers_served_blocks():
    state = epp.EppState()
    a, b = endpoint("a"), endpoint("b")
    plugin = {"type": "prefix-cache-scorer", "parameters": {"blockSize": 8}}
    prompt = "abcdefgh" * 4  # 4 blocks
    assert set(epp.run_scorer(plugin, [a, b], request(prompt), state).values()) == {0.0}
    hashes = epp.prompt_block_hashes("fake-model", prompt, 8, 256)
    state.prefix.record(hashes, a["key"], 100)
    scores = epp.run_scorer(plugin, [a, b], request(prompt[:16] + "zzzzzzzzzzzzzzzz"), state)
    assert scores == {a["key"]: 0.5, b["key"]: 0.0}
    other_model = dict(request(prompt), model="other")
    assert epp.run_scorer(plugin, [a, b], other_model, state)[a["key"]] == 0.0


def test_prefix_index_lru_capacity_and_forget():
    index = epp.PrefixIndex()
    index.record(["h1", "h2", "h3"], "ns/a", capacity=2)
    assert index.matched_blocks(["h1"], "ns/a") == 0
    assert index.matched_blocks(["h2", "h3"], "ns/a") == 2
    index.forget_missing({"ns/b"})
    assert index.matched_blocks(["h2"], "ns/a") == 0


def test_block_hashes_are_prefix_chained():
    one = epp.prompt_block_hashes("m", "aaaabbbbcccc", 4, 10)
    two = epp.prompt_block_hashes("m", "aaaaXbbbcccc", 4, 10)
    assert len(one) == 3 and one[0] == two[0] and one[1] != two[1] and one[2] != two[2]
    assert epp.prompt_block_hashes("m", "aaaabbbbcccc", 4, 2) == one[:2]
    assert epp.prompt_block_hashes("m", "abc", 4, 10) == []


def test_prefix_params_units():
    assert epp.prefix_params({"parameters": {"blockSizeTokens": 16}})["block_chars"] == 64
    assert epp.prefix_params({"parameters": {"hashBlockSize": 5}})["block_chars"] == 5
    assert epp.prefix_params(None) == {"block_chars": 64, "max_blocks": 256, "lru": 31250}


# --- pickers and whole profiles ----------------------------------------------

def test_max_score_picker_breaks_ties_randomly_and_logs_it():
    a, b = endpoint("a"), endpoint("b")
    seen = set()
    for seed in range(20):
        choice, events = epp.run_picker({"type": "max-score-picker"}, [(a, 0.5), (b, 0.5)], epp.EppState(),
                                        random.Random(seed), "k")
        seen.add(choice["key"])
        assert messages(events) == [
            "Selecting a pod with the max score from 2 candidates: "
            "[{score:0.5 Pod:{NamespacedName:%s Address:%s}} {score:0.5 Pod:{NamespacedName:%s Address:%s}}]"
            % (a["key"], a["address"], b["key"], b["address"]),
            "Multiple pods have the same max score (0.500000): %s %s" % (a["key"], b["key"]),
            "Selecting a random pod from 2 candidates: [%s %s]" % (a["key"], b["key"]),
        ]
    assert seen == {a["key"], b["key"]}


def test_max_score_picker_without_tie():
    a, b = endpoint("a"), endpoint("b")
    choice, events = epp.run_picker({"type": "max-score-picker"}, [(a, 0.2), (b, 0.7)], epp.EppState(),
                                    random.Random(0), "k")
    assert choice is b and len(events) == 1


def test_round_robin_picker_cycles():
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    state = epp.EppState()
    picks = [epp.run_picker({"type": "round-robin-picker"}, [(c, 0), (a, 0), (b, 0)], state, random, "k")[0]["name"]
             for _round in range(4)]
    assert picks == ["a", "b", "c", "a"]


def test_weighted_random_picker_never_picks_zero_score():
    a, b = endpoint("a"), endpoint("b")
    rng = random.Random(3)
    picks = {epp.run_picker({"type": "weighted-random-picker"}, [(a, 0.0), (b, 1.0)], epp.EppState(), rng, "k")[0]
             ["name"] for _round in range(50)}
    assert picks == {"b"}


def test_filters_by_role_label():
    decode, both, bare, prefill = endpoint("d"), endpoint("x", "both"), endpoint("n", labels={}), endpoint("p", "prefill")
    pool = [decode, both, bare, prefill]
    assert epp.run_filter({"type": "decode-filter"}, pool) == [decode, both, bare]
    assert epp.run_filter({"type": "prefill-filter"}, pool) == [prefill]


def test_schedule_default_profile_weights_and_logs():
    cfg = config(fx.CHART_DEFAULT_CONFIG)
    state = epp.EppState()
    a, b = endpoint("a", kv=0.0), endpoint("b", kv=0.5)
    state.begin(b["key"])
    result = epp.schedule(cfg, request(), [a, b], state, random.Random(0), "pool", 8000)
    assert result["target"] is a and result["prefill"] is None and result["headers"] == {}
    msgs = messages(result["events"])
    assert msgs[:3] == ["Running scheduler profile", "Scheduling a request", "Before running filter plugins"]
    assert msgs.count("Running scorer") == 3 and msgs.count("Got pod scores") == 3
    after = [f for _l, m, f in result["events"] if m == "After running scorer plugins"][0]
    # a: (2*1 + 2*1 + 3*0) / 7; b: (2*0 + 2*0.5 + 0) / 7
    assert after["weightedScores"] == {a["key"]: pytest.approx(4 / 7.0, abs=1e-6),
                                       b["key"]: pytest.approx(1 / 7.0, abs=1e-6)}
    picked = [f for _l, m, f in result["events"] if m == "After running picker plugin"][0]
    assert picked["result"]["TargetPod"]["NamespacedName"] == {"Namespace": fx.NS, "Name": "a"}
    assert all(f["x-request-id"] == "rid-1" for _l, _m, f in result["events"])


def test_schedule_sticks_to_the_pod_holding_the_prefix():
    cfg = config(fx.CHART_DEFAULT_CONFIG)
    state = epp.EppState()
    pods = [endpoint("a"), endpoint("b"), endpoint("c")]
    long_prompt = "You are a helpful assistant for the llm-d lab. " * 8
    first = epp.schedule(cfg, request(long_prompt + "question one"), pods, state, random.Random(1))["target"]
    for i in range(5):
        again = epp.schedule(cfg, request(long_prompt + "question %d" % i), pods, state, random.Random(i))
        assert again["target"] is first


def test_schedule_spreads_ties_when_nothing_is_cached():
    cfg = config("plugins: [{type: queue-scorer}]\n")
    state = epp.EppState()
    pods = [endpoint("a"), endpoint("b")]
    rng = random.Random(5)
    picks = {epp.schedule(cfg, request("p%d" % i), pods, state, rng)["target"]["name"] for i in range(20)}
    assert picks == {"a", "b"}


def test_filters_leaving_nothing():
    cfg = config("plugins: [{type: prefill-filter}]\n")
    result = epp.schedule(cfg, request(), [endpoint("a")], epp.EppState(), random.Random(0))
    assert result["target"] is None
    assert messages(result["events"])[-1] == "After running filter plugins"


# --- P/D ----------------------------------------------------------------------

def pd_pods():
    return [endpoint("decode-a", address="10.0.1.1"), endpoint("prefill-a", "prefill", address="10.0.2.1")]


def test_pd_long_uncached_prompt_picks_prefill_and_sets_header():
    cfg = config(fx.PD_CONFIG)
    result = epp.schedule(cfg, request("x" * 200), pd_pods(), epp.EppState(), random.Random(0), "pool", 8000)
    assert result["target"]["name"] == "decode-a"
    assert result["prefill"]["name"] == "prefill-a"
    assert result["headers"] == {"x-prefiller-host-port": "10.0.2.1:8000"}
    msgs = messages(result["events"])
    assert "Scheduling to separate prefill and decode workers" in msgs
    profiles = [f["profile"] for _l, m, f in result["events"] if m == "Running scheduler profile"]
    assert profiles == ["decode", "prefill"]


def test_pd_short_prompt_stays_on_decode():
    cfg = config(fx.PD_CONFIG)
    result = epp.schedule(cfg, request("short"), pd_pods(), epp.EppState(), random.Random(0))
    assert result["prefill"] is None and result["headers"] == {}
    decision = [f for _l, m, f in result["events"] if m == "Scheduling to decode worker only"][0]
    assert decision["nonCachedTokens"] == 2 and decision["threshold"] == 10


def test_pd_cached_prompt_goes_to_decode_only():
    cfg = config(fx.PD_CONFIG)
    state = epp.EppState()
    prompt = "y" * 200
    assert epp.schedule(cfg, request(prompt), pd_pods(), state, random.Random(0))["prefill"] is not None
    again = epp.schedule(cfg, request(prompt), pd_pods(), state, random.Random(0))
    assert again["prefill"] is None


def test_disagg_without_decider_logs_pd_disabled():
    cfg = config("""
plugins: [{type: disagg-profile-handler}, {type: decode-filter}]
schedulingProfiles: [{name: decode, plugins: [{pluginRef: decode-filter}]}]
""")
    result = epp.schedule(cfg, request("x" * 400), pd_pods(), epp.EppState(), random.Random(0))
    assert result["target"]["name"] == "decode-a" and result["prefill"] is None
    assert "Disagregated prefill/decode disabled - scheduling to decode worker only" in messages(result["events"])


def test_always_disagg_decider_and_missing_prefill_pods():
    cfg = config("""
plugins:
- {type: always-disagg-pd-decider}
- {type: disagg-profile-handler, parameters: {deciders: {prefill: always-disagg-pd-decider}}}
- {type: decode-filter}
- {type: prefill-filter}
schedulingProfiles:
- {name: decode, plugins: [{pluginRef: decode-filter}]}
- {name: prefill, plugins: [{pluginRef: prefill-filter}]}
""")
    result = epp.schedule(cfg, request("a"), pd_pods(), epp.EppState(), random.Random(0))
    assert result["prefill"]["name"] == "prefill-a"
    only_decode = epp.schedule(cfg, request("a"), pd_pods()[:1], epp.EppState(), random.Random(0))
    assert only_decode["prefill"] is None and only_decode["target"]["name"] == "decode-a"
    assert "No prefill pod available - scheduling to decode worker only" in messages(only_decode["events"])


# --- EPP pod flags and config files -------------------------------------------

def test_config_source_from_configmap_mount():
    cms = {(fx.NS, fx.EPP): fx.configmap(fx.EPP, {"default-plugins.yaml": "plugins: []"})}
    source = epp.config_source(fx.epp_pod(), cms)
    assert source == {"text": "plugins: []", "source": "ConfigMap llm-d-sim/gaie-sim-epp key default-plugins.yaml",
                      "error": ""}


def test_config_source_missing_key_is_an_error():
    cms = {(fx.NS, fx.EPP): fx.configmap(fx.EPP, {"other.yaml": "x"})}
    source = epp.config_source(fx.epp_pod(), cms)
    assert source["text"] is None
    assert source["error"] == "open /config/default-plugins.yaml: no such file or directory"


def test_config_source_items_mapping_and_inline_text_and_default():
    pod = fx.epp_pod(args=["--config-file=/config/custom.yaml"])
    pod["spec"]["volumes"][0]["configMap"]["items"] = [{"key": "pd.yaml", "path": "custom.yaml"}]
    cms = {(fx.NS, fx.EPP): fx.configmap(fx.EPP, {"pd.yaml": "PD"})}
    assert epp.config_source(pod, cms)["text"] == "PD"
    assert epp.config_source(fx.epp_pod(args=["--config-text", "INLINE"]), {})["text"] == "INLINE"
    assert epp.config_source(fx.epp_pod(args=[]), {})["source"] == "built-in default"
    unmounted = fx.epp_pod(args=["--config-file", "/etc/x.yaml"])
    assert epp.config_source(unmounted, cms)["error"].startswith("open /etc/x.yaml")


def test_serves_pool_follows_flags():
    assert epp.serves_pool(fx.epp_pod(), fx.NS, fx.POOL)
    assert not epp.serves_pool(fx.epp_pod(), fx.NS, "other-pool")
    assert epp.serves_pool(fx.epp_pod(args=[]), fx.NS, "anything")


def test_parse_sim_metrics():
    text = """# HELP vllm:kv_cache_usage_perc KV-cache usage
vllm:kv_cache_usage_perc{model_name="fake-model"} 0.25
vllm:num_requests_running{model_name="fake-model"} 3
vllm:num_requests_waiting{model_name="fake-model"} 1
vllm:num_requests_waiting_broken{model_name="fake-model"} x
"""
    assert epp.parse_sim_metrics(text, "now") == {"waiting": 1, "running": 3, "kv_cache_usage": 0.25,
                                                  "update_time": "now"}
    assert epp.parse_sim_metrics(None)["kv_cache_usage"] == 0.0


def test_pod_json_shape():
    item = epp.pod_json(endpoint("a", kv=0.5, address="10.1.1.1"))
    assert list(item)[:3] == ["NamespacedName", "Address", "Role"]
    assert item["KVCacheUsagePercent"] == 0.5 and item["NamespacedName"]["Name"] == "a"
