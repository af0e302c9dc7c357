"""Log lines of the lab gateway data-plane simulator: shape, and that the
collection's own log analyzer reads them like real EPP logs."""
import json
import random

import dataplane_fixtures as fx
from simulators import dataplane_epp as epp
from simulators import dataplane_epplog as epplog

from ansible_collections.llmd.stack.plugins.module_utils import _log_analyze as analyzer

TS = "2026-01-02T03:04:05Z"


def test_epp_line_is_zap_json_in_zap_key_order():
    line = epplog.epp_line("Level(-4)", "Got pod scores",
                           {"logger": "prefix-cache-scorer", "x-request-id": "r", "scores": {"ns/a": 0.5}}, TS)
    record = json.loads(line)
    assert list(record) == ["level", "ts", "logger", "caller", "msg", "x-request-id", "scores"]
    assert record["level"] == "Level(-4)" and record["ts"] == TS and record["logger"] == "prefix-cache-scorer"
    assert "\n" not in line


def test_callers_look_like_go_sources():
    assert epplog.caller_for("LLM request assembled") == "handlers/request.go:74"
    assert epplog.caller_for("Selecting a random pod from 2 candidates: []").startswith("picker/")
    assert epplog.caller_for("something new").endswith(".go:112")


def test_request_handled_names_the_endpoint_like_the_epp():
    endpoint = {"key": "ns/pod-a", "address": "10.0.0.7"}
    events = epplog.request_handled("r", "m", endpoint, ["prefill-header-handler"], {"x-prefiller-host-port": "x:1"})
    assert [m for _l, m, _f in events] == ["Running post-schedule plugin", "Request handled"]
    assert events[1][0] == "Level(-2)"
    assert events[1][2]["endpoint"] == "{NamespacedName:ns/pod-a Address:10.0.0.7}"
    assert events[1][2]["mutatedHeaders"] == {"x-prefiller-host-port": "x:1"}


def test_response_events():
    endpoint = {"key": "ns/pod-a", "address": "10.0.0.7"}
    events = epplog.response_events("r", endpoint, 200, {"total_tokens": 3}, True)
    assert [m for _l, m, _f in events] == [
        "PostResponse called", "LLM response assembled", "Response generated", "Prefix aware scorer cleanup"]
    assert events[1][2]["response"] == {"Headers": {":status": "200"}}
    assert events[2] == ("Level(-3)", "Response generated", {"x-request-id": "r", "usage": {"total_tokens": 3}})
    assert len(epplog.response_events("r", endpoint, 200, {}, False)) == 3


def test_parse_usage_json_and_sse():
    body = json.dumps({"usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5, "x": 1}})
    assert epplog.parse_usage(body.encode(), "application/json") == {
        "prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    sse = (b'data: {"usage":null,"choices":[]}\n\n'
           b'data: {"usage":{"prompt_tokens":6,"completion_tokens":1,"total_tokens":7},"choices":[]}\n\n'
           b'data: [DONE]\n\n')
    assert epplog.parse_usage(sse, "text/event-stream") == {"prompt_tokens": 6, "completion_tokens": 1,
                                                            "total_tokens": 7}
    assert epplog.parse_usage(b"not json", "application/json") == {}
    assert epplog.parse_usage(b"[1, 2]", "application/json") == {}


def test_access_log_line_follows_istio_default_format():
    line = epplog.access_log_line({
        "start": "2026-01-02T03:04:05.678Z", "method": "POST", "path": "/v1/completions", "protocol": "HTTP/1.1",
        "status": 503, "flag": "UH", "detail": "no_healthy_upstream", "bytes_in": 40, "bytes_out": 19,
        "duration_ms": 2, "upstream_ms": None, "user_agent": "curl/8.5.0", "request_id": "rid",
        "authority": "localhost:8000", "upstream": None, "cluster": None})
    assert line.startswith('[2026-01-02T03:04:05.678Z] "POST /v1/completions HTTP/1.1" 503 UH no_healthy_upstream')
    assert '"curl/8.5.0" "rid" "localhost:8000" "-"' in line


def epp_text(events):
    return "\n".join(epplog.epp_line(level, msg, fields, TS) for level, msg, fields in events) + "\n"


def traces_of(text):
    records = [analyzer.parse_line(r, 2026) for r in analyzer.split_records(text)]
    traces, _ts = analyzer.parse_epp_records(records)
    return traces


def endpoint(name, role="decode"):
    return {"key": "%s/%s" % (fx.NS, name), "name": name, "namespace": fx.NS, "address": "10.0.0.%d" % len(name),
            "labels": {"llm-d.ai/role": role}, "metrics": epp.parse_sim_metrics("")}


def one_request(cfg, pods, request_id, prompt, state, rng):
    request = {"model": "m", "prompt": prompt, "request_id": request_id, "summary": epp.request_summary("m", prompt)}
    result = epp.schedule(epp.parse_config(cfg)["config"], request, pods, state, rng, "p", 8000)
    events = [epplog.request_assembled(request["summary"], request_id, None, "m")] + result["events"]
    events += epplog.request_handled(request_id, "m", result["target"], [], result["headers"])
    events += epplog.response_events(request_id, result["target"], 200, {"total_tokens": 9}, True)
    return result, events


def test_log_analyzer_reconstructs_the_scheduling_trace():
    pods = [endpoint("pod-a"), endpoint("pod-bb")]
    state, rng = epp.EppState(), random.Random(4)
    first, events_1 = one_request(fx.CHART_DEFAULT_CONFIG, pods, "req-1", "z" * 300, state, rng)
    second, events_2 = one_request(fx.CHART_DEFAULT_CONFIG, pods, "req-2", "z" * 300, state, rng)
    # interleave the two requests' lines: x-request-id keeps them apart
    mixed = [e for pair in zip(events_1, events_2) for e in pair] + events_1[len(events_2):] + events_2[len(events_1):]
    traces = {t["request_id"]: t for t in traces_of(epp_text(mixed))}
    one, two = traces["req-1"], traces["req-2"]
    assert one["picked"] == first["target"]["name"] and one["handled_by"] == first["target"]["name"]
    assert one["tie_break_random"] is True  # nothing cached, nothing in flight: a random tie-break
    assert one["format"] == "plugin" and one["model"] == "m"
    assert set(one["scores"]) == {"queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer"}
    assert one["usage"] == {"total_tokens": 9} and one["status"] == "200"
    assert two["picked"] == first["target"]["name"]  # prefix affinity
    assert two["tie_break_random"] is False
    assert two["scores"]["prefix-cache-scorer"][first["target"]["name"]] == 1.0
    assert one["scorers_without_scores"] == [] and one["errors"] == []


def test_log_analyzer_sees_prefill_decode_decisions():
    pods = [endpoint("decode-a"), endpoint("prefill-a", "prefill")]
    result, events = one_request(fx.PD_CONFIG, pods, "req-pd", "q" * 200, epp.EppState(), random.Random(0))
    (trace,) = traces_of(epp_text(events))
    assert trace["pd"] == "enabled"
    assert trace["picked"] == "decode-a" and trace["prefill_picked"] == "prefill-a"
    _result, short = one_request(fx.PD_CONFIG, pods, "req-short", "hi", epp.EppState(), random.Random(0))
    (trace,) = traces_of(epp_text(short))
    assert trace["pd"] == "disabled" and trace["prefill_picked"] is None


def test_log_analyzer_reports_epp_errors():
    text = epp_text([epplog.request_failed("req-x", "BadRequest", "model not found in request body")])
    (trace,) = traces_of(text)
    assert trace["errors"] == ["Failed to process request: inference error: BadRequest - model not found in request body"]
