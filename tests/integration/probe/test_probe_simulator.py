"""llmd_inference_probe against real llm-d-inference-sim processes."""
import json
import socket
import threading

import pytest

TTFT_MS = 200.0
ITL_MS = 20.0


def by_endpoint(result):
    return dict((r["endpoint"], r) for r in result["results"])


def within(value, target, share=0.10):
    return target * (1 - share) <= value <= target * (1 + share)


def test_cli_run_reports_models_latency_and_ttft(sim, ansible_probe):
    server = sim(pod="sim-cli", flags=["--time-to-first-token", "200ms", "--inter-token-latency", "10ms"])
    rc, result = ansible_probe("url=%s" % server.url)
    assert rc == 0, result
    assert result["changed"] is False
    assert result["models"] == [server.model] and result["model"] == server.model
    checks = by_endpoint(result)
    assert set(checks) == {"models", "completions", "chat"}
    assert all(c["ok"] and c["status"] == 200 and c["latency_ms"] > 0 for c in checks.values()), checks
    assert checks["chat"]["stream"] is True and within(checks["chat"]["ttft_ms"], TTFT_MS)
    assert checks["completions"]["pod"] == "sim-cli"


def test_cli_wrong_model_names_it_and_the_available_ones(sim, ansible_probe):
    server = sim(model="served-model")
    rc, result = ansible_probe("url=%s model=no-such-model" % server.url)
    assert rc != 0 and result["failed"] is True
    assert "model 'no-such-model' is not served here; available: served-model" in result["msg"]
    assert "\n" not in result["msg"]
    checks = by_endpoint(result)
    assert checks["completions"]["error"].startswith("not sent: no model")


@pytest.mark.parametrize("args, message", [
    ("url=http://127.0.0.1:1 checks=models,embeddings",
     "value of checks must be one or more of: models, completions, chat. Got no match for: embeddings"),
    ("url=http://127.0.0.1:1 timeout=-1", "timeout must be > 0, got -1"),
    ("port_forward={'namespace':'llm-d-sim','port':80}", "one of the following is required: service, pod found in port_forward"),
])
def test_cli_bad_input_fails_at_validation(ansible_probe, args, message):
    rc, result = ansible_probe(args)
    assert rc != 0 and result["msg"] == message


@pytest.mark.parametrize("mode", ["echo", "random"])
def test_all_three_endpoints_plain_and_streamed(sim, probe, mode):
    server = sim(mode=mode, pod="sim-%s" % mode)
    prompt = "one two three four five"
    for stream in (False, True):
        result = probe(url=server.url, completions={"prompt": prompt, "max_tokens": 8, "stream": stream},
                       chat={"messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "stream": stream})
        checks = by_endpoint(result)
        assert "failed" not in result, result.get("msg")
        for endpoint in ("completions", "chat"):
            check = checks[endpoint]
            assert check["ok"] and check["stream"] is stream and check["model"] == server.model
            assert 0 < check["usage"]["completion_tokens"] <= 8
            assert check["usage"]["total_tokens"] == check["usage"]["prompt_tokens"] + check["usage"]["completion_tokens"]
            assert check["pod"] == "sim-%s" % mode and check["routing_headers"]["x-inference-namespace"] == "probe-tests"
            assert check["routed_by_epp"] is False  # straight to the pod: no EPP header
            if mode == "echo":
                assert check["text"] == prompt
            else:
                assert check["text"]
            assert (check["ttft_ms"] is not None) is stream


def test_streamed_ttft_and_inter_token_latency_match_the_simulator(sim, probe):
    server = sim(mode="random", flags=["--time-to-first-token", "200ms", "--inter-token-latency", "20ms"])
    result = probe(url=server.url, checks=["completions", "chat"],
                   completions={"max_tokens": 10, "stream": True}, chat={"max_tokens": 10, "stream": True})
    for check in result["results"]:
        assert check["ok"], check
        assert within(check["ttft_ms"], TTFT_MS), check["ttft_ms"]
        if check["usage"]["completion_tokens"] > 2:
            assert within(check["itl_ms"], ITL_MS, 0.25), check["itl_ms"]


def test_max_tokens_one_is_a_ttft_test(sim, probe):
    server = sim(mode="random", flags=["--time-to-first-token", "200ms", "--inter-token-latency", "50ms"])
    result = probe(url=server.url, checks=["completions"], completions={"max_tokens": 1})
    check = result["results"][0]
    assert check["ok"] and check["usage"]["completion_tokens"] == 1
    assert check["ttft_ms"] == check["latency_ms"] and within(check["ttft_ms"], TTFT_MS)


def test_burst_over_two_simulators_shows_the_distribution(sim, probe, round_robin):
    sims = [sim(mode="random", pod="sim-a"), sim(mode="random", pod="sim-b")]
    url = round_robin(*sims)
    result = probe(url=url, checks=["models"], burst={"requests": 8, "concurrency": 2, "max_tokens": 6})
    burst = result["burst"]
    assert burst["ok"] and burst["success_rate"] == 1.0 and burst["succeeded"] == 8
    assert burst["pods"] == {"sim-a": 4, "sim-b": 4}
    assert burst["latency_ms"]["p50"] <= burst["latency_ms"]["p95"] <= burst["latency_ms"]["p99"]
    assert burst["ttft_ms"]["p50"] is not None and burst["tokens_per_s"] > 0
    assert burst["completion_tokens"] > 0
    # /v1/models answers carry no x-inference-pod header, so that request counts as unknown.
    assert result["routing"] == {"requests": 9, "pods": {"sim-a": 4, "sim-b": 4, "unknown": 1}, "via_epp": 0,
                                 "with_pod_header": 8}


def test_prefix_affinity_share(sim, probe, round_robin):
    single = sim(mode="random", pod="sim-only")
    result = probe(url=single.url, checks=["models"], prefix_affinity={"prompts": 4, "prefix_words": 300, "min_share": 1.0})
    affinity = result["prefix_affinity"]
    assert affinity["ok"] and affinity["same_pod_share"] == 1.0 and affinity["pods"] == {"sim-only": 4}

    # A front that alternates pods is what a prefix-blind router does: the check must fail.
    spread = round_robin(sim(mode="random", pod="sim-x"), sim(mode="random", pod="sim-y"))
    result = probe(url=spread, checks=["models"], prefix_affinity={"prompts": 4, "min_share": 0.9}, fail_on_error=False)
    affinity = result["prefix_affinity"]
    assert affinity["ok"] is False and affinity["same_pod_share"] == 0.5
    assert "only 2 of 4 prefix-sharing prompts went to one pod" in affinity["error"]


def test_probe_retries_until_a_late_simulator_is_ready(sim, probe):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    starter = threading.Timer(1.5, lambda: sim(wait=False, port=port))
    starter.start()
    try:
        result = probe(url="http://127.0.0.1:%d" % port, checks=["models"], retries=40, delay=0.25)
    finally:
        starter.join()
    check = result["results"][0]
    assert check["ok"] and check["attempts"] > 1, json.dumps(check)
