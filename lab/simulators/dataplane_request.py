"""The whole routing decision for one request through the simulated gateway.

LAB-ONLY SIMULATOR. Nothing here is used outside the local lab. ``decide``
chains the pure steps of dataplane_routing.py (what Envoy decides) and
dataplane_epp.py (what the endpoint picker decides) into one answer for the
shell in gateway_dataplane.py, together with the EPP log events of the
request. It does no I/O; the caller serialises calls that share EppState.
"""

import random

from . import dataplane_epp as epp
from . import dataplane_epplog as epplog
from . import dataplane_routing as routing


def endpoint(pod, metrics):
    """The EPP's view of one candidate pod."""
    namespace, name = routing.obj_key(pod)
    key = "%s/%s" % (namespace, name)
    return {
        "key": key,
        "name": name,
        "namespace": namespace,
        "address": str(((pod.get("status") or {}).get("podIP")) or ""),
        "labels": (pod.get("metadata") or {}).get("labels") or {},
        "metrics": (metrics or {}).get(key) or epp.parse_sim_metrics(""),
        "pod": pod,
    }


def load_epp_config(view, epp_pod, parse=epp.parse_config):
    """(config, error) of an EPP pod, as that EPP would have loaded it."""
    source = epp.config_source(epp_pod, view["configmaps"])
    if source["error"]:
        return None, "%s (%s)" % (source["error"], source["source"])
    parsed = parse(source["text"])
    if not parsed["ok"]:
        return None, "%s (%s)" % (parsed["error"], source["source"])
    return parsed["config"], ""


def _answer(decision, epp_pod=None, events=None):
    return {"action": "reject", "decision": decision, "epp_pod": epp_pod, "events": events or []}


def _forward(view, plan, target, port, headers, via_epp, epp_pod=None, events=None, prefix=False):
    """Envoy connects to the picked pod's target port; in the lab that port
    must be one the pod's kwok PortForward maps to its simulator."""
    address = None
    if port is not None:
        address = routing.forward_target(view["portforwards"].get(routing.obj_key(target["pod"])), port)
    if address is None:
        return _answer(routing.reject(
            503, routing.BODY_CONNECT_FAILURE, "UF", "upstream_reset_before_response_started{connection_failure}",
            "pod %s does not serve the pool's target port %s (not in its PortForward)" % (target["key"], port)),
            epp_pod, events)
    return {
        "action": "forward",
        "target": target,
        "port": port,
        "address": address,
        "headers": headers,
        "via_epp": via_epp,
        "epp_pod": epp_pod,
        "events": events or [],
        "prefix": prefix,
        "track": None,
        "pool": plan["pool"],
        "timeout_s": plan["timeout_s"],
    }


def decide(view, gateway_key, method, path, headers, body, states, metrics=None, rng=random,
           parse=epp.parse_config):
    """Route one request.

    headers: lower-case names, including x-request-id. states: {pool key:
    EppState}, updated (in-flight count, prefix index) when the EPP picks a
    pod. Returns {"action": "reject", "decision": routing.reject(...),
    "epp_pod", "events"} or {"action": "forward", "target": endpoint, "port",
    "address": (host, port) of the pod's simulator, "headers": extra request headers, "via_epp", "epp_pod": (ns, name) whose
    log gets "events", "prefix", "track": (pool key, endpoint key) to release
    with EppState.end when the response is done, "pool", "timeout_s"}."""
    request_id = headers.get("x-request-id", "")
    plan = routing.plan_request(view, gateway_key, method, path, headers, rng)
    if plan["outcome"] == "reject":
        return _answer(plan)
    pool, reach = plan["pool"], plan["epp"]
    pool_key = (pool["namespace"], pool["name"], pool["group"])
    port = pool["target_ports"][0] if pool["target_ports"] else None
    epp_pod, config, problem = None, None, reach["reason"]
    if reach["available"]:
        epp_pod = rng.choice(reach["pods"])
        config, problem = load_epp_config(view, epp_pod, parse)
    if config is None:
        # The ext_proc call fails; an EPP that cannot load its config never
        # becomes ready in a real cluster, so it counts as unreachable too.
        if (pool["epp"] or {}).get("failure_mode", "FailClose") == "FailClose":
            return _answer(routing.reject_epp_unavailable(pool, dict(reach, reason=problem)))
        if not plan["candidates"]:
            return _answer(routing.reject(
                503, routing.BODY_NO_HEALTHY_UPSTREAM, "UH", "no_healthy_upstream",
                "EPP unavailable (%s; FailOpen) and no ready pod in the pool" % problem))
        target = endpoint(rng.choice(plan["candidates"]), metrics)
        return _forward(view, plan, target, port, {}, via_epp=False)

    epp_key = routing.obj_key(epp_pod)
    parsed = routing.parse_inference_request(method, path, body)
    if not parsed["ok"]:
        return _answer(routing.reject(
            400, routing.epp_error_body("BadRequest", parsed["message"]), "-", "ext_proc_immediate_response",
            parsed["message"]), epp_key, [epplog.request_failed(request_id, "BadRequest", parsed["message"])])
    candidates = plan["candidates"] if epp.serves_pool(epp_pod, pool["namespace"], pool["name"]) else []
    if not candidates:
        message = "failed to find candidate pods for serving the request"
        return _answer(routing.reject(
            503, routing.BODY_NO_HEALTHY_UPSTREAM, "UH", "no_healthy_upstream",
            "no ready pod matches InferencePool %s/%s (for this EPP)" % (pool["namespace"], pool["name"])),
            epp_key, [epplog.request_failed(request_id, "ServiceUnavailable", message)])
    endpoints = [endpoint(p, metrics) for p in candidates]
    dest = {}
    if parsed["kind"] == "passthrough":
        target = rng.choice(endpoints)
        dest["x-gateway-destination-endpoint"] = "%s:%s" % (target["address"], port)
        return _forward(view, plan, target, port, dest, True, epp_key,
                        epplog.passthrough_handled(request_id, target, method, path))

    request = {
        "model": parsed["model"],
        "prompt": parsed["prompt"],
        "request_id": request_id,
        "summary": epp.request_summary(parsed["model"], parsed["prompt"]),
    }
    state = states.get(pool_key)
    if state is None:
        state = states[pool_key] = epp.EppState()
    result = epp.schedule(config, request, endpoints, state, rng, "%s/%s" % pool_key[:2], port)
    events = [epplog.request_assembled(request["summary"], request_id, None, parsed["model"])] + result["events"]
    target = result["target"]
    if target is None:
        events.append(epplog.request_failed(request_id, "ServiceUnavailable", "failed to find target pod"))
        return _answer(routing.reject(
            503, routing.epp_error_body("ServiceUnavailable", "failed to find target pod"), "-",
            "ext_proc_immediate_response", "the EPP's filters left no endpoint"), epp_key, events)
    passive = [p["name"] for p in config["plugins"].values() if p["type"] in epp.PASSIVE]
    events += epplog.request_handled(request_id, parsed["model"], target, passive, result["headers"])
    dest.update(result["headers"])
    dest["x-gateway-destination-endpoint"] = "%s:%s" % (target["address"], port)
    answer = _forward(view, plan, target, port, dest, True, epp_key, events, prefix=epp.uses_prefix_scorer(config))
    if answer["action"] == "forward":
        state.begin(target["key"])
        answer["track"] = (pool_key, target["key"])
    return answer
