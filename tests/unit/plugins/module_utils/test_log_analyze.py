"""Line-level parsers and the noise filter of _log_analyze."""
import os

import pytest
import yaml

from ansible_collections.llmd.stack.plugins.module_utils import _log_analyze as la

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


# --------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------

NOISE_EXAMPLES = [
    'INFO:     10.42.0.2:41872 - "GET /metrics HTTP/1.1" 200 OK',
    '(APIServer pid=1) INFO:     10.42.3.2:50110 - "GET /metrics HTTP/1.1" 200 OK',
    'I0812 14:20:01.800617       1 http.go:970] "HTTP request" method="GET" requestURI="/metrics" remoteAddr="10.42.3.2:51144"',
    "INFO 06-03 08:14:00 [loggers.py:111] Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 tokens/s, "
    "Running: 0 reqs, Waiting: 0 reqs, GPU KV cache usage: 0.0%, Prefix cache hit rate: 0.0%",
    'E0603 08:13:45.000912       1 proxy.go:268] "waiting for vLLM to be ready" err="dial tcp [::1]:8001: connect: connection refused"',
    "2025/06/03 08:13:47 http: proxy error: dial tcp [::1]:8001: connect: connection refused",
    '{"level":"info","ts":"2025-07-01T09:00:03Z","msg":"Failed to refreshed metrics:","pod":"qwen-decode-1"}',
    '{"level":"Level(-4)","ts":"2025-07-01T09:00:03Z","msg":"Refreshed metrics","updated":1}',
    '{"level":"Level(-4)","ts":"2025-07-01T09:00:03Z","msg":"Refreshing Prometheus Metrics","ReadyPods":2}',
    '{"level":"info","ts":"2025-08-12T14:20:06Z","msg":"gRPC health check serving","service":"inference-extension"}',
]

KEPT_EXAMPLES = [
    'INFO:     127.0.0.1:60010 - "POST /v1/completions HTTP/1.1" 200 OK',
    "INFO 06-03 08:14:10 [loggers.py:111] Engine 000: Avg prompt throughput: 0.3 tokens/s, Avg generation throughput: 3.2 tokens/s",
    'I0604 10:02:11.310577       1 chat_completions.go:172] "sending request to prefiller" url="http://10.42.1.30:8000"',
    '{"level":"Level(-4)","ts":"2025-07-01T09:00:01Z","msg":"LLM request assembled","x-request-id":"r-1"}',
]


@pytest.fixture(name="default_noise")
def fixture_default_noise():
    compiled, errors = la.compile_noise_patterns(la.DEFAULT_NOISE_PATTERNS)
    assert errors == []
    return compiled


@pytest.mark.parametrize("line", NOISE_EXAMPLES)
def test_default_noise_patterns_drop_known_noise(default_noise, line):
    kept, dropped, per_pattern = la.filter_noise([line], default_noise)
    assert kept == []
    assert dropped == 1
    assert sum(per_pattern.values()) == 1


@pytest.mark.parametrize("line", KEPT_EXAMPLES)
def test_default_noise_patterns_keep_request_lines(default_noise, line):
    kept, dropped, per_pattern = la.filter_noise([line], default_noise)
    assert kept == [line]
    assert dropped == 0
    assert per_pattern == {}


def test_multi_line_record_counts_every_line_it_drops(default_noise):
    record = ('I0812 14:20:01.800617       1 http.go:970] "HTTP request" method="GET" requestURI="/metrics" headers=<\n'
              "\tHost: 10.42.3.11:8200\n >")
    kept, dropped, per_pattern = la.filter_noise([record], default_noise)
    assert kept == []
    assert dropped == 3
    assert per_pattern == {'requestURI="/metrics"': 3}


def test_simulator_metrics_answer_is_noise_but_a_completion_answer_is_not(default_noise):
    text = ('I1122 11:51:49.063982   13441 http.go:989] "HTTP response" statusCode=200 headers=<\n'
            "\tContent-Type: text/plain; version=0.0.4; charset=utf-8; escaping=underscores\n"
            "\tServer: fasthttp\n"
            " > body=<\n"
            "\t# HELP vllm:kv_cache_usage_perc Fraction of KV-cache blocks in use.\n"
            '\tvllm:kv_cache_usage_perc{model_name="fake-model"} 0\n'
            " >\n"
            'I1122 11:51:50.008634   13441 http.go:989] "HTTP response" statusCode=200 headers=<\n'
            "\tContent-Type: application/json\n"
            ' > body="{\\"object\\":\\"text_completion\\"}"\n')
    records = la.split_records(text)
    assert len(records) == 2
    kept, dropped, _per_pattern = la.filter_noise(records, default_noise)
    assert dropped == 7
    assert kept == [records[1]]
    msg, fields = la.parse_klog_fields(records[0].split("] ", 1)[1])
    assert msg == "HTTP response" and fields["body"].startswith("# HELP vllm:kv_cache_usage_perc")


def test_user_patterns_extend_the_list():
    compiled, errors = la.compile_noise_patterns(la.DEFAULT_NOISE_PATTERNS + [r"GET /health"])
    assert errors == []
    kept, dropped, _per_pattern = la.filter_noise(['INFO:     10.0.0.1:1 - "GET /health HTTP/1.1" 200 OK', "keep me"], compiled)
    assert kept == ["keep me"]
    assert dropped == 1


def test_invalid_patterns_are_reported_one_line_each():
    compiled, errors = la.compile_noise_patterns(["ok", "(unclosed", "", 7])
    assert [pattern for pattern, _regex in compiled] == ["ok"]
    assert len(errors) == 3
    assert "'(unclosed' is not a valid regular expression" in errors[0]
    assert all("\n" not in error for error in errors)


def test_role_defaults_carry_the_same_noise_patterns():
    with open(os.path.join(ROOT, "roles", "diagnostics", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert defaults["diagnostics_noise_patterns"] == la.DEFAULT_NOISE_PATTERNS


# --------------------------------------------------------------------------
# records and line formats
# --------------------------------------------------------------------------

def test_split_records_keeps_klog_blocks_together():
    text = ('I0812 14:20:12.407221       1 http.go:970] "HTTP request" method="POST" headers=<\n'
            "\tContent-Type: application/json\n"
            ' > body="{}"\n'
            "\n"
            'I0812 14:20:12.407685       1 http.go:282] "Received" new HTTP="text completion request (req id r-9)"\n')
    records = la.split_records(text)
    assert len(records) == 2
    assert records[0].endswith(' > body="{}"')
    assert la.count_lines(records) == 4


def test_split_records_flushes_an_unclosed_block():
    assert la.split_records('I0101 00:00:00.000000       1 a.go:1] "x" headers=<\n\tA: b') == [
        'I0101 00:00:00.000000       1 a.go:1] "x" headers=<\n\tA: b']


def test_parse_json_line():
    parsed = la.parse_line('{"level":"Level(-4)","ts":"2025-07-01T09:00:01Z","msg":"Running scorer","scorer":"load-aware-scorer"}', 2025)
    assert parsed["kind"] == "json"
    assert parsed["msg"] == "Running scorer"
    assert parsed["fields"]["scorer"] == "load-aware-scorer"
    assert la.format_ts(parsed["ts"]) == "2025-07-01T09:00:01Z"


def test_parse_json_line_with_epoch_ts():
    parsed = la.parse_line('{"level":"info","ts":1754999999.5,"msg":"x"}', 2025)
    assert parsed["ts"] == 1754999999.5


def test_parse_klog_line_with_structured_fields():
    line = ('I0604 10:02:11.402114       1 chat_completions.go:217] "received prefiller response" logger="proxy server" '
            'remote_block_ids=[7,8,9] remote_engine_id="2c4e6a80" remote_host="10.42.1.30" remote_port=5557')
    parsed = la.parse_line(line, 2025)
    assert parsed["kind"] == "klog"
    assert parsed["level"] == "info"
    assert parsed["msg"] == "received prefiller response"
    assert parsed["fields"] == {"logger": "proxy server", "remote_block_ids": [7, 8, 9], "remote_engine_id": "2c4e6a80",
                                "remote_host": "10.42.1.30", "remote_port": 5557}
    assert la.format_ts(parsed["ts"]) == "2025-06-04T10:02:11.402114Z"


def test_parse_klog_fields_with_json_object_escaped_body_and_spaced_keys():
    msg, fields = la.parse_klog_fields(
        '"received prefiller response" kv_transfer_params={"remote_block_ids":[8],"remote_host":"10.0.0.9","note":"a } b"} '
        'body="{\\"model\\":\\"random\\"}" new HTTP="text completion request (req id r-1)" flag=true')
    assert msg == "received prefiller response"
    assert fields["kv_transfer_params"] == {"remote_block_ids": [8], "remote_host": "10.0.0.9", "note": "a } b"}
    assert fields["body"] == '{"model":"random"}'
    assert fields["new HTTP"] == "text completion request (req id r-1)"
    assert fields["flag"] is True


def test_parse_klog_fields_multi_line_value_then_more_fields():
    msg, fields = la.parse_klog_fields('"HTTP request" method="POST" headers=<\n\tX-Request-Id: r-2\n > body="{}"')
    assert msg == "HTTP request"
    assert fields["headers"] == "X-Request-Id: r-2"
    assert fields["body"] == "{}"


def test_parse_printf_style_klog_line():
    parsed = la.parse_line("W0604 10:02:11.000001       1 server.go:9] plain text message", 2025)
    assert parsed["kind"] == "klog"
    assert parsed["level"] == "warning"
    assert parsed["msg"] == "plain text message"
    assert parsed["fields"] == {}


@pytest.mark.parametrize("line, level, msg", [
    ("DEBUG 06-04 10:02:12 [scheduler.py:862] Finished recving KV transfer for request cmpl-x-0", "debug",
     "Finished recving KV transfer for request cmpl-x-0"),
    ("(EngineCore_0 pid=52) DEBUG 08-12 14:20:06 [scheduler.py:1104] Finished recving KV transfer for request cmpl-y-0", "debug",
     "Finished recving KV transfer for request cmpl-y-0"),
    ("(APIServer pid=1) INFO 08-12 14:20:05 [logger.py:43] Received request cmpl-z-0: prompt: 'hi'", "info",
     "Received request cmpl-z-0: prompt: 'hi'"),
])
def test_parse_vllm_lines(line, level, msg):
    parsed = la.parse_line(line, 2025)
    assert parsed["kind"] == "vllm"
    assert parsed["level"] == level
    assert parsed["msg"] == msg
    assert parsed["ts"] is not None


def test_parse_access_log_line_without_timestamp():
    parsed = la.parse_line('INFO:     127.0.0.1:51002 - "POST /v1/completions HTTP/1.1" 200 OK', 2025)
    assert parsed["kind"] == "vllm"
    assert parsed["ts"] is None


@pytest.mark.parametrize("line", ["", "not a log line", "{not json", '{"no_msg": 1}', "[1, 2]"])
def test_unknown_lines_parse_to_none(line):
    assert la.parse_line(line, 2025) is None


# --------------------------------------------------------------------------
# values inside EPP records
# --------------------------------------------------------------------------

def test_pods_in_json_objects_go_strings_and_bare_names():
    json_pods = [{"NamespacedName": {"Namespace": "ns", "Name": "pod-a"}, "Address": "10.0.0.1"},
                 {"Pod": {"NamespacedName": {"Namespace": "ns", "Name": "pod-b"}}, "Score": 1.5}]
    assert la.pods_in(json_pods) == ["pod-a", "pod-b"]
    go = "{score:0 Pod:{NamespacedName:ns/pod-a Address:10.0.0.1}} {score:0 Pod:{NamespacedName:ns/pod-b Address:10.0.0.2}}"
    assert la.pods_in(go) == ["pod-a", "pod-b"]
    assert la.pods_in("ns/pod-c") == []
    assert la.pods_in("ns/pod-c", bare=True) == ["pod-c"]
    assert la.pods_in({"pod_name": "pod-d"}) == ["pod-d"]
    assert la.pods_in(None) == []


def test_scored_pods_in_go_string_and_json_list():
    go = "[{score:0.25 Pod:{NamespacedName:ns/pod-a Address:x}} {score:0.75 Pod:{NamespacedName:ns/pod-b Address:y}}]"
    assert la.scored_pods_in(go) == {"pod-a": 0.25, "pod-b": 0.75}
    weighted = [{"Pod": {"NamespacedName": {"Namespace": "ns", "Name": "pod-a"}}, "Score": 2},
                {"Pod": {"NamespacedName": {"Namespace": "ns", "Name": "pod-b"}}, "Score": True}]
    assert la.scored_pods_in(weighted) == {"pod-a": 2.0}


@pytest.mark.parametrize("value, name", [
    ("decode-filter/decode-filter", "decode-filter"),
    ("my-queue/queue-scorer", "my-queue"),
    ({"Type": "queue-scorer", "Name": "q"}, "q"),
    ({"Type": "queue-scorer"}, "queue-scorer"),
    ("DefaultPlugin", "DefaultPlugin"),
    (None, None),
])
def test_plugin_name(value, name):
    assert la.plugin_name(value) == name


@pytest.mark.parametrize("value, base", [
    ("cmpl-3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c-0", "3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c"),
    ("chatcmpl-3F2A9C1E-7D4B-4E8A-9B6C-1D2E3F4A5B6C", "3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c"),
    ("cmpl-4e2f7a1c9b8d4f3a-0", "cmpl-4e2f7a1c9b8d4f3a-0"),
    ("", None),
    (None, None),
])
def test_base_request_id(value, base):
    assert la.base_request_id(value) == base


@pytest.mark.parametrize("pod, role", [
    ("gaie-sim-epp-5f6d7c8b9-n4k2s", "epp"),
    ("ms-sim-llm-d-modelservice-prefill-5b8c9d7f6-g5h6j", "prefill"),
    ("ms-sim-llm-d-modelservice-decode-6d9b8c7f5-a1b2c", "decode"),
    ("redis-0", "other"),
])
def test_guess_role(pod, role):
    assert la.guess_role(pod) == role
