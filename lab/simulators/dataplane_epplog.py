"""Log lines of the lab's gateway data-plane simulator (pure functions).

LAB-ONLY SIMULATOR. Nothing here is used outside the local lab. It renders
what the simulated endpoint picker (EPP) and Envoy write, so `kubectl logs`
of the EPP pod and of the gateway pod's istio-proxy container read like the
real components:

* EPP lines are zap JSON objects, keys in zap's order: level, ts, logger
  (when set), caller, msg, then the fields.
* The shell writes them through common.CriLogFile: kwok serves `Logs` files
  with the kubelet's CRI log reader, which rejects any other format.
* The access log follows Istio's default Envoy text format.
"""

import json

# Where the real EPP logs each message from (file:line of the Go source);
# the diagnosis tooling keys on msg, the caller only has to look familiar.
CALLERS = {
    "LLM request assembled": "handlers/request.go:74",
    "Scheduling a request": "scheduling/scheduler.go:105",
    "Before running filter plugins": "scheduling/scheduler.go:152",
    "Running filter plugin": "scheduling/scheduler.go:154",
    "Filter plugin result": "scheduling/scheduler.go:162",
    "After running filter plugins": "scheduling/scheduler.go:164",
    "Before running scorer plugins": "scheduling/scheduler.go:170",
    "Running scorer": "scheduling/scheduler.go:173",
    "Got pod scores": "scorer/scorer.go:61",
    "After running scorer": "scheduling/scheduler.go:176",
    "After running scorer plugins": "scheduling/scheduler.go:178",
    "Before running picker plugin": "scheduling/scheduler.go:186",
    "After running picker plugin": "scheduling/scheduler.go:124",
    "Running scheduler profile": "scheduling/scheduler_profile.go:118",
    "Scheduling to decode worker only": "pd/pd_profile_handler.go:96",
    "Scheduling to separate prefill and decode workers": "pd/pd_profile_handler.go:102",
    "Disagregated prefill/decode disabled - scheduling to decode worker only": "pd/pd_profile_handler.go:90",
    "No prefill pod available - scheduling to decode worker only": "pd/pd_profile_handler.go:110",
    "Prefill header set": "pd/prefill_header.go:57",
    "Running post-schedule plugin": "scheduling/scheduler.go:132",
    "Request handled": "handlers/request.go:102",
    "PostResponse called": "requestcontrol/director.go:231",
    "LLM response assembled": "handlers/response.go:41",
    "Response generated": "handlers/response.go:55",
    "Prefix aware scorer cleanup": "scorer/prefix_aware.go:128",
    "Failed to process request": "handlers/server.go:190",
}
DEFAULT_CALLER = "handlers/server.go:112"


def caller_for(msg):
    if msg in CALLERS:
        return CALLERS[msg]
    if msg.startswith("Selecting a random pod"):
        return "picker/random_picker.go:39"
    if msg.startswith("Selecting a pod in round-robin order"):
        return "picker/round_robin_picker.go:44"
    if msg.startswith("Selecting") or msg.startswith("Multiple pods"):
        return "picker/max_score_picker.go:31"
    return DEFAULT_CALLER


def epp_line(level, msg, fields, ts):
    """One zap JSON line. ``fields`` may carry "logger" (printed before caller)."""
    fields = dict(fields or {})
    record = {"level": level, "ts": ts}
    if "logger" in fields:
        record["logger"] = fields.pop("logger")
    record["caller"] = caller_for(msg)
    record["msg"] = msg
    record.update(fields)
    return json.dumps(record, separators=(",", ":"), sort_keys=False)


def endpoint_text(endpoint):
    return "{NamespacedName:%s Address:%s}" % (endpoint["key"], endpoint["address"])


def request_assembled(summary, request_id, headers, model):
    fields = {"request": summary, "x-request-id": request_id, "targetModel": model}
    if headers:
        fields["headers"] = headers
    return ("Level(-4)", "LLM request assembled", fields)


def request_handled(request_id, model, endpoint, post_schedule_plugins, extra_headers):
    """The lines after scheduling: post-schedule plugins, then the endpoint."""
    events = [("Level(-4)", "Running post-schedule plugin",
               {"x-request-id": request_id, "plugins": post_schedule_plugins})]
    fields = {"x-request-id": request_id, "model": model, "targetModel": model, "endpoint": endpoint_text(endpoint)}
    if extra_headers:
        fields["mutatedHeaders"] = extra_headers
    events.append(("Level(-2)", "Request handled", fields))
    return events


def passthrough_handled(request_id, endpoint, method, path):
    """A request without an inference body (GET /v1/models ...): the EPP
    sends it to a random endpoint without running the profiles."""
    return [("Level(-2)", "Request handled",
             {"x-request-id": request_id, "method": method, "path": path, "endpoint": endpoint_text(endpoint)})]


def request_failed(request_id, code, message):
    return ("error", "Failed to process request",
            {"x-request-id": request_id, "error": "inference error: %s - %s" % (code, message)})


def response_events(request_id, endpoint, status, usage, prefix_in_use):
    """The EPP's lines while the response streams back through it."""
    events = [("Level(-4)", "PostResponse called", {"x-request-id": request_id, "pod": endpoint_text(endpoint)})]
    events.append(("Level(-4)", "LLM response assembled",
                   {"x-request-id": request_id, "response": {"Headers": {":status": str(status)}}}))
    fields = {"x-request-id": request_id}
    if usage:
        fields["usage"] = usage
    events.append(("Level(-3)", "Response generated", fields))
    if prefix_in_use:
        events.append(("Level(-4)", "Prefix aware scorer cleanup",
                       {"logger": "prefix-aware-scorer", "x-request-id": request_id}))
    return events


def parse_usage(body, content_type):
    """usage{prompt,completion,total}_tokens of an OpenAI response, from a JSON
    body or from the last SSE event carrying usage; {} when absent."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    candidates = []
    if "text/event-stream" in (content_type or ""):
        for line in text.splitlines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                if payload and payload != "[DONE]":
                    candidates.append(payload)
    else:
        candidates.append(text)
    usage = {}
    for payload in candidates:
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        found = data.get("usage") if isinstance(data, dict) else None
        if isinstance(found, dict):
            usage = {k: found[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in found}
    return usage


def access_log_line(entry):
    """Istio's default access-log format for one request. ``entry`` holds
    start, method, path, protocol, status, flag, detail, bytes_in, bytes_out,
    duration_ms, upstream_ms, user_agent, request_id, authority, upstream,
    cluster, route_name."""
    def q(value):
        return '"%s"' % (value if value not in (None, "") else "-")

    def v(value):
        return str(value) if value not in (None, "") else "-"

    return (
        '[%s] "%s %s %s" %s %s %s - "-" %s %s %s %s "-" %s %s %s %s %s - 127.0.0.1:80 127.0.0.1:0 - %s'
        % (
            entry["start"], entry["method"], entry["path"], entry.get("protocol", "HTTP/1.1"),
            entry["status"], v(entry.get("flag")), v(entry.get("detail")),
            v(entry.get("bytes_in", 0)), v(entry.get("bytes_out", 0)), v(entry.get("duration_ms", 0)),
            v(entry.get("upstream_ms")), q(entry.get("user_agent")), q(entry.get("request_id")),
            q(entry.get("authority")), q(entry.get("upstream")), v(entry.get("cluster")),
            v(entry.get("route_name")),
        )
    )
