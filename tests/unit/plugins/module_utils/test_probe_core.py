"""Unit tests for the pure core of llmd_inference_probe (no network, no clock)."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.llmd.stack.plugins.module_utils import _probe_core as core

# Bodies as llm-d-inference-sim v0.10.2 sends them (captured with curl).
MODELS_BODY = json.dumps({"object": "list", "data": [
    {"id": "random", "object": "model", "owned_by": "vllm", "root": "random", "parent": None},
    # The llm-d docs show a second, empty-id entry for LoRA parents; it is not a model to pick.
    {"id": "", "object": "model", "owned_by": "vllm", "root": "", "parent": "random"},
]})
COMPLETION = {
    "id": "cmpl-430df49f-0", "model": "fake-model", "object": "text_completion", "created": 1795347224,
    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    "choices": [{"index": 0, "finish_reason": "length", "text": "hello world how are you"}],
}
CHAT = {
    "id": "chatcmpl-af65", "model": "fake-model", "object": "chat.completion", "created": 1795347345,
    "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11},
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a b c"}}],
}


def chat_chunk(delta, finish=None, usage=None, choices=True):
    return json.dumps({
        "id": "chatcmpl-f090", "model": "fake-model", "object": "chat.completion.chunk", "created": 1,
        "usage": usage, "choices": [{"index": 0, "finish_reason": finish, "delta": delta}] if choices else [],
    })


# (t_ms, line) as the sender reads them: role chunk first, then content.
CHAT_STREAM_LINES = [
    (201.0, "data: %s\n" % chat_chunk({"role": "assistant"})), (201.1, "\n"),
    (203.0, "data: %s\n" % chat_chunk({"content": "hello "})), (203.1, "\n"),
    (223.0, "data: %s\n" % chat_chunk({"content": "world"})), (223.1, "\n"),
    (243.0, "data: %s\n" % chat_chunk({}, finish="length")), (243.1, "\n"),
    (243.5, "data: %s\n" % chat_chunk(None, usage={"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                                      choices=False)), (243.6, "\n"),
    (244.0, "data: [DONE]\n"), (244.1, "\n"),
]


def completion_chunk(text, finish=None, usage=None):
    return json.dumps({"id": "cmpl-5401-0", "model": "fake-model", "object": "text_completion", "created": 1,
                       "usage": usage, "choices": [] if usage else [{"index": 0, "finish_reason": finish, "text": text}]})


COMPLETION_STREAM_EVENTS = [
    (100.0, completion_chunk("one ")), (110.0, completion_chunk("two ")), (120.0, completion_chunk("three")),
    (121.0, completion_chunk("", finish="length")),
    (121.5, completion_chunk("", usage={"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6})),
    (122.0, "[DONE]"),
]


def params(**overrides):
    base = {"url": "http://127.0.0.1:8000", "port_forward": None, "endpoint": None, "timeout": 30.0,
            "retries": 0, "delay": 5.0, "deadline": None,
            "completions": {"prompt": "hi", "max_tokens": 16, "temperature": 0.0, "seed": None, "stream": False},
            "chat": {"messages": None, "max_tokens": 16, "temperature": 0.0, "seed": None, "stream": True},
            "burst": None, "prefix_affinity": None}
    base.update(overrides)
    return base


# ------------------------------------------------------------- input checks

def test_valid_params_have_no_errors():
    assert core.validate_params(params()) == []


@pytest.mark.parametrize("overrides, message", [
    ({"timeout": -1}, "timeout must be > 0, got -1"),
    ({"timeout": 0}, "timeout must be > 0, got 0"),
    ({"retries": -2}, "retries must be >= 0, got -2"),
    ({"delay": -0.5}, "delay must be >= 0, got -0.5"),
    ({"deadline": 0}, "deadline must be > 0, got 0"),
    ({"url": "gateway.example.com"}, "url must start with http:// or https:// and name a host, got 'gateway.example.com'"),
    ({"url": None, "port_forward": {"namespace": "ns", "service": "gw", "pod": None, "port": 70000}},
     "port_forward.port must be between 1 and 65535, got 70000"),
    ({"url": None, "port_forward": {"namespace": "ns", "service": "gw", "pod": None, "port": "Not A Name"}},
     "port_forward.port must be a port number or a port name, got 'Not A Name'"),
    ({"url": None, "endpoint": {"type": "service", "external": False}},
     "endpoint needs either url or namespace and service (as llmd_stack_facts reports them), got keys: external, type"),
    ({"url": None, "endpoint": {"url": "ftp://x"}}, "endpoint.url must start with http:// or https:// and name a host, got 'ftp://x'"),
    ({"url": None, "endpoint": {"namespace": "ns", "service": "gw"}}, "endpoint.port is required"),
    ({"burst": {"requests": 0, "concurrency": 1, "max_tokens": 4}}, "burst.requests must be > 0, got 0"),
    ({"burst": {"requests": 4, "concurrency": -1, "max_tokens": 4}}, "burst.concurrency must be > 0, got -1"),
    ({"prefix_affinity": {"prompts": 1, "prefix_words": 10, "max_tokens": 4, "min_share": 0.0}},
     "prefix_affinity.prompts must be >= 2, got 1"),
    ({"prefix_affinity": {"prompts": 3, "prefix_words": 10, "max_tokens": 4, "min_share": 1.5}},
     "prefix_affinity.min_share must be between 0 and 1, got 1.5"),
    ({"completions": {"max_tokens": 0}}, "completions.max_tokens must be > 0, got 0"),
    ({"chat": {"messages": [{"content": "x"}], "max_tokens": 4}},
     "chat.messages[0] must be a dict with role and content, got {'content': 'x'}"),
])
def test_bad_values_give_one_clear_line(overrides, message):
    errors = core.validate_params(params(**overrides))
    assert errors == [message]
    assert "\n" not in errors[0]


def test_named_and_numeric_ports_are_fine():
    for port in (80, "8000", "http", "grpc-ext-proc"):
        assert core.port_error(port, "p") is None


@pytest.mark.parametrize("url, base", [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("https://gw.example.com/v1/", "https://gw.example.com"),
    (" http://gw/prefix ", "http://gw/prefix"),
])
def test_normalize_base_url(url, base):
    assert core.normalize_base_url(url) == (base, None)


# -------------------------------------------------------- request building

def test_models_request_is_a_plain_get():
    assert core.build_request("models") == {"method": "GET", "path": "/v1/models", "body": None, "stream": False}


def test_completions_request_carries_model_prompt_and_options():
    request = core.build_request("completions", "m", {"prompt": "p", "max_tokens": 1, "temperature": 0.0,
                                                      "seed": 7, "stream": False})
    assert request["path"] == "/v1/completions"
    assert request["body"] == {"model": "m", "prompt": "p", "max_tokens": 1, "temperature": 0.0, "seed": 7}
    assert request["stream"] is False


def test_streamed_chat_asks_for_usage_and_default_message():
    request = core.build_request("chat", "m", {"messages": None, "max_tokens": 4, "seed": None, "stream": True})
    assert request["body"]["messages"] == [{"role": "user", "content": core.DEFAULT_PROMPT}]
    assert request["body"]["stream"] is True
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert "seed" not in request["body"]


def test_stream_override_and_suffix_do_not_touch_the_options():
    options = {"messages": [{"role": "user", "content": "q"}], "stream": True}
    request = core.build_request("chat", "m", options, stream=False, prompt_suffix=" #2")
    assert request["body"]["messages"][-1]["content"] == "q #2"
    assert "stream" not in request["body"]
    assert options["messages"][0]["content"] == "q"


def test_headers_and_redaction():
    headers = core.build_headers({"x-prefiller-url": "http://p:8000"}, "s3cret", has_body=True)
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/json"
    redacted = core.redact_headers(dict(headers, **{"X-Api-Key": "k", "Cookie": "c"}))
    assert redacted["Authorization"] == redacted["X-Api-Key"] == redacted["Cookie"] == core.REDACTED
    assert redacted["x-prefiller-url"] == "http://p:8000"


def test_affinity_prompts_share_a_long_prefix_and_differ_after_it():
    prompts = core.affinity_prompts(4, 50)
    assert len(set(prompts)) == 4
    prefix = prompts[0].split(" Question ")[0]
    assert len(prefix.split()) == 52  # "Shared context:" plus 50 words
    assert all(p.startswith(prefix) for p in prompts)


# -------------------------------------------------------------- SSE parsing

def test_parse_sse_handles_comments_fields_crlf_and_multiline_data():
    lines = [(1, ": keep-alive\n"), (2, "event: message\r\n"), (3, "data: {\"a\":\r\n"), (4, "data: 1}\r\n"),
             (5, "\r\n"), (6, "data:[DONE]")]
    assert core.parse_sse(lines) == [(4, "{\"a\":\n1}"), (6, "[DONE]")]


def test_streamed_chat_is_rebuilt_with_ttft_from_first_content_chunk():
    answer = core.assemble_stream("chat", core.parse_sse(CHAT_STREAM_LINES))
    assert answer["error"] is None
    assert answer["text"] == "hello world"
    assert answer["ttft_ms"] == 203.0  # the role-only chunk at 201 ms is not a token
    assert answer["itl_ms"] == 20.0
    assert answer["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 2


def test_streamed_completion_is_rebuilt():
    answer = core.assemble_stream("completions", COMPLETION_STREAM_EVENTS)
    assert (answer["error"], answer["text"], answer["ttft_ms"], answer["itl_ms"]) == (None, "one two three", 100.0, 10.0)


@pytest.mark.parametrize("events, fragment", [
    (COMPLETION_STREAM_EVENTS[:-1], "stream ended before 'data: [DONE]'"),
    ([(1.0, "{not json")], "stream chunk 0 is not JSON"),
    ([(1.0, json.dumps({"error": {"message": "boom"}}))], "stream carried an error: boom"),
    ([(1.0, chat_chunk({"content": "x"}))], "has object 'chat.completion.chunk', expected 'text_completion'"),
    ([(1.0, "[DONE]")], "no stream chunk carried an id"),
    ([(1.0, completion_chunk("a")), (2.0, "[DONE]")], "no stream chunk carried a finish_reason"),
])
def test_broken_streams_are_reported(events, fragment):
    assert fragment in core.assemble_stream("completions", events)["error"]


# -------------------------------------------------------- answer validation

def test_models_listing_and_model_choice():
    ids, error = core.check_models(json.loads(MODELS_BODY))
    assert (ids, error) == (["random"], None)
    assert core.choose_model(ids) == ("random", None)
    assert core.choose_model(ids, "random") == ("random", None)
    assert core.choose_model(["a", "b"], "llama") == (None, "model 'llama' is not served here; available: a, b")


@pytest.mark.parametrize("payload, error", [
    ({"data": []}, "/v1/models answer is not {object: list, data: [...]}"),
    ({"object": "list", "data": [{"id": ""}]}, "/v1/models lists no model"),
    ([], "/v1/models answer is not {object: list, data: [...]}"),
])
def test_bad_model_listings(payload, error):
    assert core.check_models(payload) == ([], error)


def test_good_answers_pass():
    completion = core.check_answer("completions", COMPLETION, max_tokens=5)
    assert (completion["error"], completion["text"], completion["finish_reason"]) == (None, "hello world how are you", "length")
    chat = core.check_answer("chat", CHAT, max_tokens=16)
    assert (chat["error"], chat["text"]) == (None, "a b c")


@pytest.mark.parametrize("endpoint, change, fragment", [
    ("completions", {"object": "chat.completion"}, "object is 'chat.completion', expected 'text_completion'"),
    ("completions", {"id": None}, "answer has no id"),
    ("completions", {"choices": []}, "answer has no choices"),
    ("completions", {"usage": None}, "answer has no usage"),
    ("completions", {"choices": [{"text": "", "finish_reason": "length"}]}, "choices[0] text is empty"),
    ("completions", {"choices": [{"text": "x", "finish_reason": None}]}, "choices[0] has no finish_reason"),
    ("chat", {"choices": [{"finish_reason": "stop"}]}, "choices[0] has no message"),
])
def test_schema_problems_are_named(endpoint, change, fragment):
    payload = dict(COMPLETION if endpoint == "completions" else CHAT, **change)
    assert fragment in core.check_answer(endpoint, payload, max_tokens=16)["error"]


def test_error_payload_is_reported_as_such():
    answer = core.check_answer("chat", {"error": {"message": "The model `x` does not exist.", "code": 404}})
    assert answer["error"] == "server answered with an error: The model `x` does not exist."


@pytest.mark.parametrize("usage, max_tokens, finish, error", [
    ({"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}, 3, "length", None),
    ({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}, 3, "stop", None),
    ({"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 7}, 3, "stop",
     "usage.total_tokens 7 != prompt_tokens 3 + completion_tokens 3"),
    ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, 3, "length", "usage.completion_tokens 4 exceeds max_tokens 3"),
    ({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}, 3, "length",
     "finish_reason is 'length' but completion_tokens 2 != max_tokens 3"),
    ({"prompt_tokens": 0, "completion_tokens": 2, "total_tokens": 2}, 3, "stop", "usage.prompt_tokens is 0 for a non-empty prompt"),
    ({"prompt_tokens": "3", "completion_tokens": 2, "total_tokens": 5}, 3, "stop", "usage.prompt_tokens is '3', expected a count"),
])
def test_usage_consistency(usage, max_tokens, finish, error):
    assert core.check_usage(usage, max_tokens, finish) == error


# --------------------------------------------------------- routing evidence

def test_routing_evidence_reads_epp_and_pod_headers_in_any_case():
    evidence = core.routing_evidence({"X-Went-Into-Resp-Headers": "true", "X-Inference-Pod": "decode-1",
                                      "X-Inference-Namespace": "llm-d-sim", "Content-Type": "application/json"})
    assert evidence["pod"] == "decode-1"
    assert evidence["routed_by_epp"] is True
    assert evidence["headers"] == {"x-went-into-resp-headers": "true", "x-inference-pod": "decode-1",
                                   "x-inference-namespace": "llm-d-sim"}
    assert core.routing_evidence({"server": "fasthttp"}) == {
        "pod": None, "routed_by_epp": False, "headers": {"server": "fasthttp"}}


# ------------------------------------------------------------- hint table

@pytest.mark.parametrize("status, kind, body, fragment", [
    (400, "http", "model not found in request body", "found no 'model'"),
    (400, "http", "prompt not found in request", "found no prompt/messages"),
    (404, "http", "", "no HTTPRoute matched"),
    (404, "http", '{"error":{"message":"The model `x` does not exist."}}', "model is not served"),
    (429, "http", "system saturated, sheddable request dropped", "saturated"),
    (500, "http", "fault filter abort", "ReferenceGrant"),
    (502, "http", "upstream connect error or disconnect/reset before headers", "targetPorts"),
    (503, "http", "upstream connect error or disconnect/reset before headers", "targetPorts"),
    (503, "http", "no healthy upstream", "no Ready model-server pod"),
    (504, "http", "upstream request timeout", "timeouts"),
    (None, "connection_refused", None, "nothing accepts connections"),
    (None, "tls_verify", None, "ca_path"),
    (None, "tls", None, "plain HTTP listener"),
    (None, "timeout", None, "raise timeout"),
    (None, "model_missing", None, "listed by /v1/models"),
    (None, "port_forward", None, "pods/portforward"),
])
def test_hints_follow_the_documented_table(status, kind, body, fragment):
    hint = core.explain(status, kind, body)
    assert hint.startswith("likely cause: ") and "; fix: " in hint
    assert fragment in hint


def test_unknown_failures_have_no_invented_hint():
    assert core.explain(418, "http", "teapot") is None


@pytest.mark.parametrize("status, kind, body, expected", [
    (None, "connection_refused", None, True),
    (None, "connection_closed", None, True),
    (503, "http", "no healthy upstream", True),
    (404, "http", "", True),
    (404, "http", "The model `x` does not exist.", False),
    (400, "http", "", False),
    (None, "timeout", None, False),
    (200, None, "", False),
])
def test_not_ready_answers(status, kind, body, expected):
    assert core.not_ready(status, kind, body) is expected


# ------------------------------------------------------------ result entries

def record(**overrides):
    base = {"url": "http://h/v1/completions", "stream": False, "status": 200, "headers": {}, "body": "",
            "events": [], "latency_ms": 12.5, "error_kind": None, "error": None, "attempts": 1}
    base.update(overrides)
    return base


def test_http_error_result_has_status_excerpt_and_hint():
    result = core.evaluate("completions", record(status=503, body="no healthy upstream"))
    assert result["ok"] is False
    assert result["error"] == "HTTP 503: no healthy upstream"
    assert "no Ready model-server pod" in result["hint"]
    assert result["body_excerpt"] == "no healthy upstream"


def test_invalid_json_and_wrong_schema_results():
    assert core.evaluate("completions", record(body="<html>console</html>"))["error"].startswith("answer is not JSON")
    result = core.evaluate("chat", record(body=json.dumps({"hello": "world"})))
    assert "object is None, expected 'chat.completion'" in result["error"]
    assert "OpenAI shape" in result["hint"]


def test_max_tokens_one_makes_latency_the_ttft():
    payload = dict(COMPLETION, usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})
    result = core.evaluate("completions", record(body=json.dumps(payload)), max_tokens=1)
    assert result["ok"] is True and result["ttft_ms"] == 12.5


def test_streamed_result_carries_ttft_itl_pod_and_epp():
    result = core.evaluate("chat", record(stream=True, events=core.parse_sse(CHAT_STREAM_LINES), latency_ms=245.0,
                                          headers={"x-inference-pod": "sim-a", "x-went-into-resp-headers": "true"}),
                           max_tokens=2)
    assert (result["ok"], result["ttft_ms"], result["itl_ms"], result["pod"], result["routed_by_epp"]) == (
        True, 203.0, 20.0, "sim-a", True)


def test_streamed_usage_over_max_tokens_fails_as_usage():
    result = core.evaluate("chat", record(stream=True, events=core.parse_sse(CHAT_STREAM_LINES)), max_tokens=1)
    assert result["error"] == "usage.completion_tokens 2 exceeds max_tokens 1"
    assert "max_tokens" in result["hint"]


def test_transport_error_result():
    result = core.evaluate("models", record(status=None, error_kind="connection_refused", error="connection refused"))
    assert (result["ok"], result["error"]) == (False, "connection refused")
    assert "nothing accepts connections" in result["hint"]


def test_wrong_model_names_it_and_the_available_ones():
    result, ids, model = core.models_result(record(body=MODELS_BODY), "llama-3")
    assert (ids, model, result["ok"]) == (["random"], None, False)
    assert result["error"] == "model 'llama-3' is not served here; available: random"
    ok, _ids, chosen = core.models_result(record(body=MODELS_BODY))
    assert ok["ok"] and chosen == "random" and ok["model"] == "random"


# --------------------------------------------------------------- statistics

def test_percentiles_interpolate_linearly():
    assert core.percentile([4, 1, 3, 2], 50) == 2.5
    assert core.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert core.percentile([7], 99) == 7
    assert core.percentile([], 50) is None
    assert core.distribution([None]) is None
    assert core.distribution([10, 20]) == {"p50": 15.0, "p95": 19.5, "p99": 19.9, "mean": 15.0, "min": 10, "max": 20}


def burst_result(ok=True, pod="a", latency=100.0, ttft=50.0, tokens=8, error=None):
    return {"ok": ok, "pod": pod, "latency_ms": latency, "ttft_ms": ttft, "itl_ms": 5.0, "status": 200 if ok else 503,
            "usage": {"completion_tokens": tokens} if ok else None, "error": error, "hint": None if ok else "h"}


def test_burst_summary():
    results = [burst_result(pod="a"), burst_result(pod="b", latency=300.0), burst_result(pod="a", latency=200.0),
               burst_result(ok=False, error="HTTP 503: no healthy upstream")]
    summary = core.summarize_burst(results, 2.0, {"endpoint": "completions", "stream": True, "concurrency": 2,
                                                  "max_tokens": 8})
    assert summary["success_rate"] == 0.75 and summary["ok"] is False
    assert summary["latency_ms"]["p50"] == 200.0
    assert summary["tokens_per_s"] == 12.0 and summary["completion_tokens"] == 24
    assert summary["pods"] == {"a": 2, "b": 1}
    assert summary["status_codes"] == {"200": 3, "503": 1}
    assert summary["error"] == "1 of 4 requests failed, first: HTTP 503: no healthy upstream"
    assert summary["hint"] == "h"


def test_affinity_summary_and_threshold():
    results = [burst_result(pod="a"), burst_result(pod="a"), burst_result(pod="b"), burst_result(pod="a")]
    summary = core.summarize_affinity(results, {"prefix_words": 200, "min_share": 0.5})
    assert (summary["top_pod"], summary["same_pod_share"], summary["ok"]) == ("a", 0.75, True)
    strict = core.summarize_affinity(results, {"prefix_words": 200, "min_share": 0.9})
    assert strict["ok"] is False and "only 3 of 4" in strict["error"]
    blind = core.summarize_affinity([burst_result(pod=None)] * 2, {"min_share": 0.5})
    assert blind["ok"] is False and "x-inference-pod" in blind["error"]


def test_failure_message_is_one_line_naming_each_failure():
    results = [core.evaluate("models", record(status=404, body="")),
               core.skipped_result("completions", "not sent: no model to probe (see the models check)")]
    burst = core.summarize_burst([burst_result(ok=False, error="boom")], 1.0, {})
    message = core.failure_message(results, burst, None)
    assert "\n" not in message
    assert message.startswith("inference probe failed: models: HTTP 404")
    assert "completions: not sent" in message and "burst: 1 of 1 requests failed, first: boom" in message
    assert core.failure_message([core.evaluate("models", record(body=MODELS_BODY))]) is None


# ------------------------------------------------- robustness (never raises)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "object", "choices", "usage", "text", "message", "delta", "content", "finish_reason",
                         "error", "data", "model", "prompt_tokens", "completion_tokens", "total_tokens"]),
        inner, max_size=6),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(payload=JSON_VALUES, endpoint=st.sampled_from(["completions", "chat"]), max_tokens=st.none() | st.integers(1, 64))
def test_answer_checks_never_raise(payload, endpoint, max_tokens):
    body = json.dumps(payload)
    for stream in (False, True):
        result = core.evaluate(endpoint, record(body=body, stream=stream, events=[(1.0, body), (2.0, "[DONE]")]),
                               max_tokens)
        assert result["ok"] in (True, False)
        assert result["ok"] or result["error"]
    core.models_result(record(body=body))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.text(max_size=40), max_size=10))
def test_sse_parser_never_raises(lines):
    events = core.parse_sse([(float(i), line) for i, line in enumerate(lines)])
    core.assemble_stream("chat", events)


def test_redirect_names_the_location():
    result = core.evaluate("models", record(status=302, headers={"Location": "https://gw.example.com/v1/models"}))
    assert result["error"] == "HTTP 302: redirect to https://gw.example.com/v1/models"
    assert "Location header" in result["hint"]


def test_a_plain_answer_to_a_stream_request_is_named():
    result = core.evaluate("chat", record(stream=True, body=json.dumps(CHAT), headers={"Content-Type": "application/json"}))
    assert result["error"].startswith("asked for a stream but the answer is not text/event-stream (Content-Type application/json)")
