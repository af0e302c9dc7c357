"""Endpoint-picker (EPP) scheduling of the lab's gateway data-plane simulator.

LAB-ONLY SIMULATOR. Nothing here is used outside the local lab. It imitates
the plugin-based scheduler of the GAIE / llm-d endpoint picker closely enough
that routing in the lab behaves, and logs, like the real stack:

* ``parse_config`` reads an EndpointPickerConfig (plugins + schedulingProfiles).
* ``schedule`` runs the profile handler, and per profile the filters, the
  weighted scorers and the picker, over plain endpoint dicts. It returns the
  chosen endpoint(s) and the events the EPP would log, in order.
* ``EppState`` is the little memory a real EPP keeps between requests:
  in-flight requests per endpoint, the approximate prefix-cache index and
  round-robin positions.

Endpoints are dicts: {"key": "ns/name", "name", "namespace", "address",
"labels": {...}, "metrics": {"waiting", "running", "kv_cache_usage",
"update_time"}}. Events are (level, msg, fields) tuples; dataplane_epplog.py
turns them into JSON lines. Nothing here does I/O.
"""

import collections
import hashlib
import math
import random

import yaml

ROLE_LABEL = "llm-d.ai/role"
PREFILL_HEADER = "x-prefiller-host-port"
CHARS_PER_TOKEN = 4  # the approximate prefix scorer's token estimate

# What the inferencepool chart ships as default-plugins.yaml; also what an EPP
# started without --config-file/--config-text runs in the lab.
DEFAULT_CONFIG_TEXT = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
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

# Plugin types by role. Aliases name the same behaviour under older names.
SCORERS = {
    "queue-scorer": "queue",
    "kv-cache-utilization-scorer": "kv",
    "kv-cache-scorer": "kv",
    "prefix-cache-scorer": "prefix",
    "prefix-aware-scorer": "prefix",
    "load-aware-scorer": "load",
}
FILTERS = {"decode-filter": "decode", "prefill-filter": "prefill"}
PICKERS = {
    "max-score-picker": "max",
    "random-picker": "random",
    "round-robin-picker": "round-robin",
    "round-robin": "round-robin",
    "weighted-random-picker": "weighted-random",
}
PROFILE_HANDLERS = ("single-profile-handler", "pd-profile-handler", "disagg-profile-handler")
DECIDERS = ("prefix-based-pd-decider", "always-disagg-pd-decider")
# Recognised, but with no effect on which endpoint is picked in the lab.
PASSIVE = ("prefill-header-handler", "disagg-headers-handler", "approx-prefix-cache-producer")

DEFAULT_BLOCK_CHARS = 64
DEFAULT_MAX_BLOCKS = 256
DEFAULT_LRU_PER_SERVER = 31250
DEFAULT_LOAD_THRESHOLD = 128


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _number(value, default):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return value


# --- Configuration ------------------------------------------------------------


def parse_config(text):
    """Parse EndpointPickerConfig YAML.

    Returns {"ok": True, "config": {...}, "warnings": [...]} or {"ok": False,
    "error": "..."} when a real EPP would refuse to start. The config is
    {"plugins": {name: {"type", "name", "parameters"}}, "profiles": [{"name",
    "filters": [plugin], "scorers": [(plugin, weight)], "picker": plugin}],
    "handler": plugin, "unknown": [plugin names]}."""
    try:
        data = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as exc:
        return {"ok": False, "error": "invalid EndpointPickerConfig YAML: %s" % str(exc).replace("\n", " ")}
    if not isinstance(data, dict):
        return {"ok": False, "error": "EndpointPickerConfig must be a YAML mapping"}
    plugins, warnings, unknown = {}, [], []
    for entry in _list(data.get("plugins")):
        entry = _dict(entry)
        ptype = entry.get("type")
        if not isinstance(ptype, str) or not ptype:
            return {"ok": False, "error": "a plugin entry has no type"}
        name = entry.get("name") if isinstance(entry.get("name"), str) and entry.get("name") else ptype
        if name in plugins:
            return {"ok": False, "error": "plugin name %r is defined twice" % name}
        plugins[name] = {"type": ptype, "name": name, "parameters": _dict(entry.get("parameters"))}
        if not _known_type(ptype):
            unknown.append(name)
            warnings.append("plugin %s of type %s is not simulated by the lab EPP and is ignored" % (name, ptype))

    profiles = []
    raw_profiles = _list(data.get("schedulingProfiles"))
    if not raw_profiles:
        # Same fallback as a config that only lists plugins: one default profile.
        raw_profiles = [{"name": "default", "plugins": [{"pluginRef": n} for n in plugins]}]
    for raw in raw_profiles:
        raw = _dict(raw)
        pname = raw.get("name")
        if not isinstance(pname, str) or not pname:
            return {"ok": False, "error": "a scheduling profile has no name"}
        profile = {"name": pname, "filters": [], "scorers": [], "picker": None}
        for ref in _list(raw.get("plugins")):
            ref = _dict(ref)
            plugin = plugins.get(ref.get("pluginRef"))
            if plugin is None:
                return {"ok": False, "error": "profile %s references undefined plugin %r" % (pname, ref.get("pluginRef"))}
            ptype = plugin["type"]
            if ptype in SCORERS:
                weight = _number(ref.get("weight"), 1)
                profile["scorers"].append((plugin, float(weight)))
            elif ptype in FILTERS:
                profile["filters"].append(plugin)
            elif ptype in PICKERS:
                if profile["picker"] is not None:
                    return {"ok": False, "error": "profile %s has more than one picker" % pname}
                profile["picker"] = plugin
        if profile["picker"] is None:
            profile["picker"] = {"type": "max-score-picker", "name": "max-score-picker", "parameters": {}}
        profiles.append(profile)

    handlers = [p for p in plugins.values() if p["type"] in PROFILE_HANDLERS]
    if len(handlers) > 1:
        return {"ok": False, "error": "more than one profile handler configured"}
    if handlers:
        handler = handlers[0]
    elif len(profiles) == 1:
        handler = {"type": "single-profile-handler", "name": "single-profile-handler", "parameters": {}}
    else:
        return {"ok": False, "error": "%d scheduling profiles need a profile handler" % len(profiles)}
    config = {"plugins": plugins, "profiles": profiles, "handler": handler, "unknown": unknown}
    problem = _check_pd(config)
    if problem:
        return {"ok": False, "error": problem}
    return {"ok": True, "config": config, "warnings": warnings}


def _known_type(ptype):
    return ptype in SCORERS or ptype in FILTERS or ptype in PICKERS or ptype in PROFILE_HANDLERS \
        or ptype in DECIDERS or ptype in PASSIVE


def _profile(config, name):
    for profile in config["profiles"]:
        if profile["name"] == name:
            return profile
    return None


def pd_settings(config):
    """Profile names and decider of a P/D handler, or None for one profile.

    pd-profile-handler: {decodeProfile, prefillProfile, threshold,
    deciderPluginName}; disagg-profile-handler: {profiles: {decode, prefill},
    deciders: {prefill}} (older: deciderPluginName)."""
    handler = config["handler"]
    params = handler["parameters"]
    if handler["type"] == "pd-profile-handler":
        return {
            "decode": str(params.get("decodeProfile") or "decode"),
            "prefill": str(params.get("prefillProfile") or "prefill"),
            "decider": params.get("deciderPluginName"),
            "threshold": _number(params.get("threshold"), 0),
        }
    if handler["type"] == "disagg-profile-handler":
        profiles = _dict(params.get("profiles"))
        deciders = _dict(params.get("deciders"))
        decider = deciders.get("prefill") or params.get("deciderPluginName")
        return {
            "decode": str(profiles.get("decode") or params.get("decodeProfile") or "decode"),
            "prefill": str(profiles.get("prefill") or params.get("prefillProfile") or "prefill"),
            "decider": decider,
            # Without a prefill decider this handler never disaggregates.
            "threshold": None,
        }
    return None


def _check_pd(config):
    settings = pd_settings(config)
    if settings is None:
        return ""
    if _profile(config, settings["decode"]) is None:
        return "profile handler %s needs a scheduling profile named %s" % (config["handler"]["type"], settings["decode"])
    wants_prefill = settings["decider"] or settings["threshold"] is not None
    if wants_prefill and _profile(config, settings["prefill"]) is None:
        return "profile handler %s needs a scheduling profile named %s" % (config["handler"]["type"], settings["prefill"])
    decider = settings["decider"]
    if decider and decider not in config["plugins"]:
        return "decider plugin %r is not defined" % decider
    return ""


def uses_prefix_scorer(config):
    return any(SCORERS.get(p["type"]) == "prefix" for prof in config["profiles"] for p, _weight in prof["scorers"])


# --- State kept between requests ----------------------------------------------


class PrefixIndex(object):
    """Approximate prefix-cache index: which endpoint recently served which
    prompt-prefix blocks. Each endpoint keeps an LRU of block hashes."""

    def __init__(self):
        self._by_endpoint = {}

    def matched_blocks(self, hashes, endpoint_key):
        lru = self._by_endpoint.get(endpoint_key)
        if not lru:
            return 0
        count = 0
        for block_hash in hashes:
            if block_hash not in lru:
                break
            count += 1
        return count

    def record(self, hashes, endpoint_key, capacity):
        lru = self._by_endpoint.setdefault(endpoint_key, collections.OrderedDict())
        for block_hash in hashes:
            lru.pop(block_hash, None)
            lru[block_hash] = True
        while len(lru) > max(int(capacity), 1):
            lru.popitem(last=False)

    def forget_missing(self, live_keys):
        for key in list(self._by_endpoint):
            if key not in live_keys:
                del self._by_endpoint[key]


class EppState(object):
    """In-flight counts, prefix index and round-robin cursors of one EPP."""

    def __init__(self):
        self.in_flight = collections.Counter()
        self.prefix = PrefixIndex()
        self.round_robin = collections.Counter()

    def begin(self, endpoint_key):
        self.in_flight[endpoint_key] += 1

    def end(self, endpoint_key):
        if self.in_flight[endpoint_key] > 0:
            self.in_flight[endpoint_key] -= 1


# --- Helpers over prompts ------------------------------------------------------


def estimate_tokens(text):
    return int(math.ceil(len(text or "") / float(CHARS_PER_TOKEN)))


def prefix_params(plugin):
    """Block size in characters, block cap and LRU size of a prefix scorer."""
    params = _dict(plugin and plugin.get("parameters"))
    if "blockSize" in params:
        block_chars = _number(params["blockSize"], DEFAULT_BLOCK_CHARS)
    elif "hashBlockSize" in params:
        block_chars = _number(params["hashBlockSize"], DEFAULT_BLOCK_CHARS)
    elif "blockSizeTokens" in params:
        block_chars = _number(params["blockSizeTokens"], 16) * CHARS_PER_TOKEN
    else:
        block_chars = DEFAULT_BLOCK_CHARS
    return {
        "block_chars": max(int(block_chars), 1),
        "max_blocks": max(int(_number(params.get("maxPrefixBlocksToMatch"), DEFAULT_MAX_BLOCKS)), 1),
        "lru": _number(params.get("lruCapacityPerServer"), DEFAULT_LRU_PER_SERVER),
    }


def prompt_block_hashes(model, prompt, block_chars, max_blocks):
    """Chained hashes of the prompt's full blocks: block i's hash covers the
    model and every character before the end of block i, so equal hashes
    mean equal prefixes."""
    hashes, running = [], hashlib.sha256(model.encode("utf-8"))
    full_blocks = min(len(prompt) // block_chars, max_blocks)
    for i in range(full_blocks):
        running.update(prompt[i * block_chars:(i + 1) * block_chars].encode("utf-8"))
        hashes.append(running.copy().hexdigest()[:16])
    return hashes


# --- Plugins -------------------------------------------------------------------


def run_filter(plugin, endpoints):
    """decode-filter keeps decode/both pods and pods without a role label;
    prefill-filter keeps prefill pods (llm-d's by-label role filters)."""
    role = FILTERS.get(plugin["type"])
    if role == "decode":
        return [e for e in endpoints if e["labels"].get(ROLE_LABEL, "decode") in ("decode", "both")]
    if role == "prefill":
        return [e for e in endpoints if e["labels"].get(ROLE_LABEL) == "prefill"]
    return list(endpoints)


def run_scorer(plugin, endpoints, request, state):
    """Scores in [0, 1] per endpoint key."""
    kind = SCORERS[plugin["type"]]
    if kind == "queue":
        queues = {e["key"]: state.in_flight[e["key"]] for e in endpoints}
        low, high = min(queues.values()), max(queues.values())
        if high == low:
            return {k: 1.0 for k in queues}
        return {k: (high - q) / float(high - low) for k, q in queues.items()}
    if kind == "kv":
        return {e["key"]: 1.0 - min(max(float(e["metrics"].get("kv_cache_usage", 0.0)), 0.0), 1.0)
                for e in endpoints}
    if kind == "load":
        threshold = _number(plugin["parameters"].get("threshold"), DEFAULT_LOAD_THRESHOLD) or DEFAULT_LOAD_THRESHOLD
        scores = {}
        for e in endpoints:
            queued = state.in_flight[e["key"]]
            if queued == 0:
                scores[e["key"]] = 0.5
            elif queued > threshold:
                scores[e["key"]] = 0.0
            else:
                scores[e["key"]] = 0.5 * (1.0 - queued / float(threshold))
        return scores
    # prefix
    params = prefix_params(plugin)
    hashes = prompt_block_hashes(request["model"], request["prompt"], params["block_chars"], params["max_blocks"])
    if not hashes:
        return {e["key"]: 0.0 for e in endpoints}
    return {e["key"]: state.prefix.matched_blocks(hashes, e["key"]) / float(len(hashes)) for e in endpoints}


def run_picker(plugin, scored, state, rng, cursor_key):
    """Pick one of [(endpoint, score)]. Returns (endpoint, events)."""
    kind = PICKERS.get(plugin["type"], "max")
    count = len(scored)
    listing = "[%s]" % " ".join(
        "{score:%s Pod:{NamespacedName:%s Address:%s}}" % (_fmt(s), e["key"], e["address"]) for e, s in scored)
    if kind == "random":
        choice = rng.choice(scored)[0]
        return choice, [("Level(-4)", "Selecting a random pod from %d candidates: %s" % (count, listing),
                         {"logger": "random-picker"})]
    if kind == "round-robin":
        ordered = sorted(scored, key=lambda item: item[0]["key"])
        choice = ordered[state.round_robin[cursor_key] % count][0]
        state.round_robin[cursor_key] += 1
        return choice, [("Level(-4)", "Selecting a pod in round-robin order from %d candidates: %s" % (count, listing),
                         {"logger": "round-robin-picker"})]
    if kind == "weighted-random":
        total = sum(score for _endpoint, score in scored)
        if total <= 0:
            choice = rng.choice(scored)[0]
        else:
            point, choice = rng.uniform(0, total), scored[-1][0]
            for endpoint, score in scored:
                point -= score
                if point <= 0:
                    choice = endpoint
                    break
        return choice, [("Level(-4)", "Selecting a pod by weighted random choice from %d candidates: %s" % (count, listing),
                         {"logger": "weighted-random-picker"})]
    events = [("Level(-4)", "Selecting a pod with the max score from %d candidates: %s" % (count, listing),
               {"logger": "max-score-picker"})]
    best = max(score for _endpoint, score in scored)
    tied = [e for e, s in scored if abs(s - best) < 1e-9]
    if len(tied) == 1:
        return tied[0], events
    events.append(("Level(-4)", "Multiple pods have the same max score (%f): %s" % (best, " ".join(e["key"] for e in tied)),
                   {"logger": "max-score-picker", "tiedPods": [e["key"] for e in tied]}))
    events.append(("Level(-4)", "Selecting a random pod from %d candidates: %s" % (
        len(tied), "[%s]" % " ".join(e["key"] for e in tied)), {"logger": "random-picker", "tieBreak": True}))
    return rng.choice(tied), events


def _fmt(score):
    return ("%.4f" % score).rstrip("0").rstrip(".") if score else "0"


# --- Scheduling -----------------------------------------------------------------


def pod_json(endpoint):
    """An endpoint as the EPP prints pods in its JSON log fields."""
    metrics = endpoint["metrics"]
    item = {
        "NamespacedName": {"Namespace": endpoint["namespace"], "Name": endpoint["name"]},
        "Address": endpoint["address"],
    }
    role = endpoint["labels"].get(ROLE_LABEL)
    if role:
        item["Role"] = role
    item.update({
        "ActiveModels": {},
        "WaitingModels": {},
        "MaxActiveModels": 0,
        "RunningQueueSize": int(metrics.get("running", 0)),
        "WaitingQueueSize": int(metrics.get("waiting", 0)),
        "KVCacheUsagePercent": float(metrics.get("kv_cache_usage", 0.0)),
        "KvCacheMaxTokenCapacity": 0,
        "UpdateTime": metrics.get("update_time", ""),
    })
    return item


def run_profile(profile, endpoints, request, state, rng, cursor_key, events):
    """Filters, weighted scorers and picker of one profile. Returns the
    picked endpoint, or None when the filters leave nothing."""
    base = {"request": request["summary"], "x-request-id": request["request_id"], "profile": profile["name"]}
    events.append(("Level(-4)", "Running scheduler profile", dict(base)))
    events.append(("info", "Scheduling a request", dict(base, pods=[pod_json(e) for e in endpoints])))
    events.append(("Level(-4)", "Before running filter plugins", dict(base, pods=[pod_json(e) for e in endpoints])))
    current = list(endpoints)
    for plugin in profile["filters"]:
        events.append(("Level(-4)", "Running filter plugin", dict(base, plugin=plugin["name"])))
        current = run_filter(plugin, current)
        events.append(("Level(-4)", "Filter plugin result",
                       dict(base, plugin=plugin["name"], pods=[pod_json(e) for e in current])))
        if not current:
            break
    events.append(("Level(-4)", "After running filter plugins", dict(base, pods=[pod_json(e) for e in current])))
    if not current:
        return None

    events.append(("Level(-4)", "Before running scorer plugins", dict(base, pods=[pod_json(e) for e in current])))
    weighted = {e["key"]: 0.0 for e in current}
    total_weight = 0.0
    for plugin, weight in profile["scorers"]:
        events.append(("Level(-4)", "Running scorer", dict(base, scorer=plugin["name"])))
        scores = run_scorer(plugin, current, request, state)
        events.append(("Level(-4)", "Got pod scores",
                       dict(base, logger=plugin["name"], scores={k: round(v, 6) for k, v in scores.items()})))
        for key, score in scores.items():
            weighted[key] += min(max(score, 0.0), 1.0) * weight
        total_weight += weight
        events.append(("Level(-4)", "After running scorer", dict(base, scorer=plugin["name"], weight=weight)))
    if total_weight > 0:
        weighted = {k: v / total_weight for k, v in weighted.items()}
    events.append(("Level(-4)", "After running scorer plugins",
                   dict(base, weightedScores={k: round(v, 6) for k, v in weighted.items()})))

    picker = profile["picker"]
    events.append(("Level(-4)", "Before running picker plugin", dict(base, plugin=picker["name"])))
    scored = [(e, weighted[e["key"]]) for e in current]
    choice, picker_events = run_picker(picker, scored, state, rng, cursor_key)
    for level, msg, fields in picker_events:
        events.append((level, msg, dict(base, **fields)))
    score = weighted[choice["key"]]
    events.append(("Level(-4)", "After running picker plugin",
                   dict(base, result={"TargetPod": pod_json(choice), "Score": round(score, 6)})))
    return choice


def schedule(config, request, endpoints, state, rng=random, pool_key="", target_port=None):
    """Pick the endpoint (and, for P/D, a prefill endpoint) for one request.

    request: {"model", "prompt", "request_id", "summary"}. Returns {"target":
    endpoint|None, "prefill": endpoint|None, "headers": {...}, "events": [...]}.
    The chosen endpoints' prefix blocks are recorded in state, as the real
    prefix plugin does before the request is sent."""
    events = []
    result = {"target": None, "prefill": None, "headers": {}, "events": events}
    settings = pd_settings(config)
    if settings is None:
        profile = config["profiles"][0]
        target = run_profile(profile, endpoints, request, state, rng, (pool_key, profile["name"]), events)
    else:
        decode = _profile(config, settings["decode"])
        target = run_profile(decode, endpoints, request, state, rng, (pool_key, decode["name"]), events)
        if target is not None:
            _pd_stage(config, settings, request, endpoints, state, rng, pool_key, target_port, target, result)
    result["target"] = target
    if target is not None:
        _record_prefix(config, request, state, [e for e in (target, result["prefill"]) if e])
    return result


def _pd_stage(config, settings, request, endpoints, state, rng, pool_key, target_port, target, result):
    """After the decode pick: decide on disaggregation and maybe pick a prefill pod."""
    events = result["events"]
    base = {"request": request["summary"], "x-request-id": request["request_id"]}
    if settings["decider"] is None and settings["threshold"] is None:
        events.append(("Level(-4)", "Disagregated prefill/decode disabled - scheduling to decode worker only", base))
        return
    decision = pd_decision(config, settings, request, target, state)
    if not decision.pop("disaggregate"):
        events.append(("Level(-4)", "Scheduling to decode worker only", dict(base, **decision)))
        return
    events.append(("Level(-4)", "Scheduling to separate prefill and decode workers", dict(base, **decision)))
    prefill = _profile(config, settings["prefill"])
    chosen = run_profile(prefill, endpoints, request, state, rng, (pool_key, prefill["name"]), events)
    if chosen is None:
        events.append(("info", "No prefill pod available - scheduling to decode worker only", base))
        return
    result["prefill"] = chosen
    port = target_port if target_port is not None else 8000
    result["headers"][PREFILL_HEADER] = "%s:%s" % (chosen["address"], port)
    events.append(("Level(-4)", "Prefill header set", dict(base, **{
        "prefill": chosen["key"], PREFILL_HEADER: result["headers"][PREFILL_HEADER]})))


def pd_decision(config, settings, request, decode_endpoint, state):
    """Whether to run the prefill profile: by the decider plugin, else by the
    pd-profile-handler threshold on the prompt tokens not already cached on
    the chosen decode endpoint."""
    prompt_tokens = estimate_tokens(request["prompt"])
    cached_tokens = _cached_tokens(config, request, decode_endpoint, state)
    non_cached = max(prompt_tokens - cached_tokens, 0)
    decision = {"promptTokens": prompt_tokens, "cachedTokens": cached_tokens, "nonCachedTokens": non_cached}
    decider = config["plugins"].get(settings["decider"]) if settings["decider"] else None
    if decider is not None:
        decision["decider"] = decider["name"]
        if decider["type"] == "always-disagg-pd-decider":
            decision["disaggregate"] = True
        elif decider["type"] == "prefix-based-pd-decider":
            limit = _number(decider["parameters"].get("nonCachedTokens"), 0)
            decision["threshold"] = limit
            decision["disaggregate"] = non_cached > 0 and non_cached >= limit
        else:
            decision["disaggregate"] = False
            decision["reason"] = "decider type %s is not simulated" % decider["type"]
        return decision
    decision["threshold"] = settings["threshold"]
    decision["disaggregate"] = non_cached > 0 and non_cached >= settings["threshold"]
    return decision


def _prefix_plugins(config):
    return [p for p in config["plugins"].values() if SCORERS.get(p["type"]) == "prefix"]


def _cached_tokens(config, request, endpoint, state):
    plugins = _prefix_plugins(config)
    params = prefix_params(plugins[0] if plugins else None)
    hashes = prompt_block_hashes(request["model"], request["prompt"], params["block_chars"], params["max_blocks"])
    blocks = state.prefix.matched_blocks(hashes, endpoint["key"])
    return int(blocks * params["block_chars"] / CHARS_PER_TOKEN)


def _record_prefix(config, request, state, chosen):
    plugins = _prefix_plugins(config)
    if not plugins:
        return
    params = prefix_params(plugins[0])
    hashes = prompt_block_hashes(request["model"], request["prompt"], params["block_chars"], params["max_blocks"])
    for endpoint in chosen:
        state.prefix.record(hashes, endpoint["key"], params["lru"])


def request_summary(model, prompt):
    """The EPP's one-line request description used in its log fields."""
    return "Model: %s, TargetModels: map[], ResolvedTargetModel: %s, Critical: false, PromptLength: %d" % (
        model, model, len(prompt or ""))


def parse_sim_metrics(text, update_time=""):
    """The three gauges the EPP reads from a vLLM (or simulator) /metrics page."""
    wanted = {
        "vllm:num_requests_waiting": "waiting",
        "vllm:num_requests_running": "running",
        "vllm:kv_cache_usage_perc": "kv_cache_usage",
        # vLLM before 0.10 named the KV gauge differently.
        "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    }
    metrics = {"waiting": 0, "running": 0, "kv_cache_usage": 0.0, "update_time": update_time}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        field = wanted.get(name)
        if field is None:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        metrics[field] = value if field == "kv_cache_usage" else int(value)
    return metrics


def epp_container(pod):
    containers = [_dict(c) for c in _list(_dict(_dict(pod).get("spec")).get("containers"))]
    for container in containers:
        if container.get("name") == "epp":
            return container
    return containers[0] if containers else {}


def flag_value(pod, flag):
    """Value of the EPP container's --flag / -flag ("--flag v" or "--flag=v")."""
    container = epp_container(pod)
    args = [str(a) for a in _list(container.get("command")) + _list(container.get("args"))]
    for i, arg in enumerate(args):
        for prefix in ("--" + flag, "-" + flag):
            if arg == prefix and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(prefix + "="):
                return arg[len(prefix) + 1:]
    return None


def serves_pool(epp_pod, pool_namespace, pool_name):
    """A real EPP only watches the pool named by its --pool-name and
    --pool-namespace flags; started for another pool it knows no endpoints
    of this one."""
    name = flag_value(epp_pod, "pool-name")
    namespace = flag_value(epp_pod, "pool-namespace")
    return (name is None or name == pool_name) and (namespace is None or namespace == pool_namespace)


def config_source(epp_pod, configmaps):
    """Where an EPP pod's EndpointPickerConfig comes from, and its text.

    Follows the container flags: --config-text inline, or --config-file
    <path> resolved through the pod's volume mounts to a ConfigMap key (as
    the inferencepool chart mounts <release>-epp at /config). Without either
    flag the EPP runs its built-in default. Returns {"text", "source",
    "error"}; error is set when a real EPP would fail to start."""
    text = flag_value(epp_pod, "config-text")
    if text is not None:
        return {"text": text, "source": "--config-text", "error": ""}
    path = flag_value(epp_pod, "config-file")
    if path is None:
        return {"text": DEFAULT_CONFIG_TEXT, "source": "built-in default", "error": ""}
    spec = _dict(_dict(epp_pod).get("spec"))
    namespace = str(_dict(_dict(epp_pod).get("metadata")).get("namespace") or "")
    volumes = {_dict(v).get("name"): _dict(v) for v in _list(spec.get("volumes"))}
    missing = {"text": None, "source": path, "error": "open %s: no such file or directory" % path}
    for mount in _list(epp_container(epp_pod).get("volumeMounts")):
        mount = _dict(mount)
        mount_path = str(mount.get("mountPath") or "").rstrip("/")
        if not mount_path or not path.startswith(mount_path + "/"):
            continue
        relative = path[len(mount_path) + 1:]
        source = _dict(_dict(volumes.get(mount.get("name"))).get("configMap"))
        if not source.get("name"):
            return missing
        key = relative
        for item in _list(source.get("items")):
            if _dict(item).get("path") == relative:
                key = _dict(item).get("key")
        where = "ConfigMap %s/%s key %s" % (namespace, source["name"], key)
        data = _dict(_dict(_dict(configmaps).get((namespace, source["name"]))).get("data"))
        if key not in data:
            return dict(missing, source=where)
        return {"text": data[key], "source": where, "error": ""}
    return missing
