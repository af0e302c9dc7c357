"""llmd_inference_probe against servers that misbehave: each failure must come
back in bounded time with the status, an excerpt and the documented hint."""
import json
import socket
import time

import pytest
import requests

MODELS = json.dumps({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "vllm"}]})


def serve(tiny_server, reply, answers):
    """A tiny server answering by path: answers[path] = (status, body[, content_type])."""
    def handle(handler):
        path = handler.path.split("?")[0]
        status, body, *rest = answers.get(path, (404, "Not Found", "text/plain"))
        reply(handler, status, body, *rest)
    return tiny_server(handle)


def timed(probe, **args):
    started = time.monotonic()
    result = probe(**args)
    return result, time.monotonic() - started


def test_invalid_json_is_named_with_the_hint(tiny_server, reply, probe):
    server = serve(tiny_server, reply, {"/v1/models": (200, MODELS),
                                        "/v1/completions": (200, "<html>OpenShift console</html>", "text/html")})
    result = probe(url=server.url, checks=["models", "completions"], fail_on_error=False)
    models, completions = result["results"]
    assert models["ok"] and completions["ok"] is False
    assert completions["error"] == "answer is not JSON: <html>OpenShift console</html>"
    assert "not point at an OpenAI-compatible server" in completions["hint"]
    assert completions["body_excerpt"] == "<html>OpenShift console</html>"


def test_wrong_schema_is_named(tiny_server, reply, probe):
    server = serve(tiny_server, reply, {"/v1/models": (200, MODELS),
                                        "/v1/chat/completions": (200, json.dumps({"id": "x", "object": "chat.completion"}))})
    result = probe(url=server.url, checks=["chat"], chat={"stream": False}, fail_on_error=False)
    chat = result["results"][0]
    assert chat["ok"] is False and "answer has no choices" in chat["error"] and "answer has no usage" in chat["error"]
    assert "OpenAI shape" in chat["hint"]


def test_models_listing_with_wrong_shape(tiny_server, reply, probe):
    server = serve(tiny_server, reply, {"/v1/models": (200, json.dumps({"models": ["m"]}))})
    result = probe(url=server.url, fail_on_error=False)
    assert result["results"][0]["error"] == "/v1/models answer is not {object: list, data: [...]}"
    assert [r["error"] for r in result["results"][1:]] == ["not sent: no model to probe (see the models check)"] * 2


@pytest.mark.parametrize("status, body, hint", [
    (500, "fault filter abort", "ReferenceGrant"),
    (503, "no healthy upstream", "no Ready model-server pod"),
    (503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", "targetPorts"),
    (429, "system saturated, sheddable request dropped", "saturated"),
    (400, "prompt not found in request", "found no prompt/messages"),
])
def test_error_bodies_get_the_documented_hint(tiny_server, reply, probe, status, body, hint):
    server = serve(tiny_server, reply, {"/v1/models": (200, MODELS), "/v1/completions": (status, body, "text/plain")})
    result = probe(url=server.url, checks=["completions"], model="m")
    assert result["failed"] is True
    assert result["msg"].startswith("inference probe failed: completions: HTTP %d: %s (likely cause: " % (status, body))
    check = result["results"][0]
    assert (check["status"], check["body_excerpt"]) == (status, body)
    assert hint in check["hint"]


def test_not_ready_answers_are_retried_then_reported(tiny_server, reply, probe):
    server = serve(tiny_server, reply, {"/v1/models": (503, "no healthy upstream", "text/plain")})
    result = probe(url=server.url, checks=["models"], retries=2, delay=0.1, fail_on_error=False)
    check = result["results"][0]
    assert (check["ok"], check["status"], check["attempts"]) == (False, 503, 3)


def test_unknown_path_is_a_route_problem(tiny_server, reply, probe):
    server = serve(tiny_server, reply, {})
    result = probe(url=server.url + "/v1", checks=["models"], retries=1, delay=0.1, fail_on_error=False)
    check = result["results"][0]
    assert (check["status"], check["attempts"], check["url"]) == (404, 2, server.url + "/v1/models")
    assert "no HTTPRoute matched" in check["hint"]


def test_a_server_slower_than_the_timeout_is_cut_off(tiny_server, reply, probe):
    def slow(handler):
        time.sleep(5)
        reply(handler, 200, MODELS)
    server = tiny_server(slow)
    result, elapsed = timed(probe, url=server.url, checks=["models"], timeout=1, fail_on_error=False)
    check = result["results"][0]
    assert elapsed < 2.5, elapsed
    assert (check["ok"], check["error"]) == (False, "no answer within 1s")
    assert "raise timeout" in check["hint"]


def test_a_stream_that_stalls_is_cut_off(tiny_server, reply, probe):
    def stall(handler):
        if handler.path.startswith("/v1/models"):
            return reply(handler, 200, MODELS)
        handler.rfile.read(int(handler.headers["Content-Length"]))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
        handler.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode())
        handler.wfile.flush()
        time.sleep(5)
    server = tiny_server(stall)
    result, elapsed = timed(probe, url=server.url, checks=["chat"], timeout=1, fail_on_error=False)
    assert elapsed < 2.5, elapsed
    assert result["results"][0]["error"] == "no answer within 1s"


def test_connection_refused_and_the_deadline(probe):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, elapsed = timed(probe, url="http://127.0.0.1:%d" % port, checks=["models"], retries=100, delay=0.3,
                            deadline=1, fail_on_error=False)
    check = result["results"][0]
    assert elapsed < 2, elapsed
    assert check["error"].startswith("connection refused")
    assert "deadline reached after" in check["error"] and 2 <= check["attempts"] <= 5
    assert "nothing accepts connections" in check["hint"]


def test_self_signed_tls_with_validation_on_and_off(sim, tls_proxy, probe, self_signed):
    url = tls_proxy(sim(pod="sim-tls"))
    strict = probe(url=url, checks=["models"], fail_on_error=False)
    check = strict["results"][0]
    assert check["ok"] is False and check["error"].startswith("TLS certificate verification failed")
    assert "ca_path" in check["hint"]

    relaxed = probe(url=url, validate_certs=False, checks=["models", "completions"])
    assert all(r["ok"] for r in relaxed["results"]) and relaxed["results"][1]["pod"] == "sim-tls"

    trusted = probe(url=url, ca_path=self_signed[0], checks=["chat"])
    assert trusted["results"][0]["ok"] and trusted["results"][0]["ttft_ms"] is not None


def test_plain_http_against_a_tls_port_is_named(sim, tls_proxy, probe):
    url = tls_proxy(sim()).replace("https://", "http://")
    check = probe(url=url, checks=["models"], timeout=3, fail_on_error=False)["results"][0]
    assert check["ok"] is False and check["status"] is None and check["error"]


def test_epp_header_is_recognised_through_a_header_adding_front(sim, tiny_server, reply, probe):
    backend = sim(pod="decode-7")

    def epp_like(handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        answer = requests.request(handler.command, backend.url + handler.path, data=body,
                                  headers={"Content-Type": "application/json"}, timeout=10)
        headers = {"x-went-into-resp-headers": "true", "x-inference-pod": answer.headers.get("x-inference-pod", "")}
        reply(handler, answer.status_code, answer.content, headers=headers, read_request=False)
    front = tiny_server(epp_like)
    result = probe(url=front.url, checks=["models", "completions"], completions={"stream": False})
    completions = result["results"][1]
    assert completions["routed_by_epp"] is True and completions["pod"] == "decode-7"
    assert result["routing"]["via_epp"] == 2


def test_redirects_are_reported_not_followed(tiny_server, reply, probe):
    server = tiny_server(lambda handler: reply(handler, 302, "", headers={"Location": "https://gw.example.com" + handler.path}))
    result = probe(url=server.url, checks=["models"], fail_on_error=False)
    check = result["results"][0]
    assert (check["status"], check["error"]) == (302, "HTTP 302: redirect to https://gw.example.com/v1/models")
    assert "Location header" in check["hint"]


def test_a_server_that_ignores_stream_is_named(tiny_server, reply, probe):
    chat = {"id": "c", "object": "chat.completion", "model": "m",
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}
    server = serve(tiny_server, reply, {"/v1/models": (200, MODELS), "/v1/chat/completions": (200, json.dumps(chat))})
    check = probe(url=server.url, checks=["chat"], fail_on_error=False)["results"][0]
    assert check["error"].startswith("asked for a stream but the answer is not text/event-stream")


def test_an_error_answer_whose_body_stalls_is_cut_off(tiny_server, probe):
    def stall(handler):
        handler.send_response(503)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"no healthy")
        handler.wfile.flush()
        time.sleep(5)
    server = tiny_server(stall)
    result, elapsed = timed(probe, url=server.url, checks=["models"], timeout=1, fail_on_error=False)
    check = result["results"][0]
    assert elapsed < 2.5, elapsed
    assert (check["status"], check["error"]) == (503, "no answer within 1s")
