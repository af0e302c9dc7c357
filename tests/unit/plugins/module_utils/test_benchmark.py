"""guidellm command lines from benchmark settings, per guidellm dialect."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmd.stack.plugins.filter.benchmark import guidellm_command as command_filter
from ansible_collections.llmd.stack.plugins.module_utils import _benchmark as bench

TARGET = "http://gw.ns.svc.cluster.local:80"


def option(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("text, expected", [
    ("0.6.1", (0, 6, 1)), ("v0.3.1", (0, 3, 1)), ("0.5", (0, 5, 0)),
    ("ghcr.io/vllm-project/guidellm:v0.6.1", (0, 6, 1)),
    ("registry.example.com:5000/guidellm:v0.4.0", (0, 4, 0)),
    ("ghcr.io/vllm-project/guidellm:latest", None), ("", None), (None, None),
])
def test_parse_version(text, expected):
    assert bench.parse_version(text) == expected


def test_v06_command_uses_profile_request_type_and_multi_turn_data():
    result = bench.guidellm_command({"target": TARGET, "request_type": "chat", "turns": 3, "model": "m",
                                     "processor": "tok", "max_seconds": 120}, (0, 6, 1))
    argv = result["argv"]
    assert argv[:3] == ["guidellm", "benchmark", "run"]
    assert option(argv, "--target") == TARGET
    assert option(argv, "--model") == "m" and option(argv, "--processor") == "tok"
    assert option(argv, "--request-type") == "chat_completions"
    assert option(argv, "--profile") == "concurrent" and option(argv, "--rate") == "4"
    assert option(argv, "--data") == "prompt_tokens=256,output_tokens=128,turns=3"
    assert option(argv, "--max-seconds") == "120" and "--max-requests" not in argv
    assert option(argv, "--sample-requests") == "20"
    # not --output-path: guidellm 0.6 refuses it next to the image's GUIDELLM_OUTPUT_DIR
    assert option(argv, "--output-dir") == "/results" and option(argv, "--outputs") == "benchmarks.json"
    assert "--output-path" not in argv and result["report"] == "/results/benchmarks.json"
    assert "--disable-console-interactive" in argv and "--rate-type" not in argv
    assert result["env"] == {}


def test_v03_command_uses_rate_type_and_the_route_variable():
    result = bench.guidellm_command({"target": TARGET, "request_type": "chat", "profile": "constant",
                                     "rate": [1.5, 3], "max_seconds": 0, "max_requests": 100,
                                     "output_dir": "/tmp/run/"}, (0, 3, 1))
    argv = result["argv"]
    assert option(argv, "--rate-type") == "constant" and "--profile" not in argv and "--request-type" not in argv
    assert result["env"] == {"GUIDELLM__PREFERRED_ROUTE": "chat_completions"}
    assert option(argv, "--rate") == "1.5,3"
    assert option(argv, "--max-requests") == "100" and "--max-seconds" not in argv
    assert option(argv, "--output-sampling") == "20" and "--disable-progress" in argv
    assert option(argv, "--output-path") == "/tmp/run/benchmarks.json" == result["report"]


def test_completions_is_the_default_and_model_and_processor_are_optional():
    argv = bench.guidellm_command({"target": TARGET}, (0, 5, 4))["argv"]
    assert option(argv, "--request-type") == "text_completions"
    assert "--model" not in argv and "--processor" not in argv


def test_profiles_without_a_rate_send_none():
    argv = bench.guidellm_command({"target": TARGET, "profile": "synchronous", "rate": []}, (0, 6, 1))["argv"]
    assert "--rate" not in argv


@pytest.mark.parametrize("settings, version, message", [
    ({}, (0, 6, 1), "target is empty"),
    ({"target": "gw:80"}, (0, 6, 1), "is not an http(s) URL"),
    ({"target": TARGET, "request_type": "embeddings"}, (0, 6, 1), "request_type 'embeddings' is not one of"),
    ({"target": TARGET, "profile": "burst"}, (0, 6, 1), "profile 'burst' is not one of"),
    ({"target": TARGET, "rate": []}, (0, 6, 1), "profile concurrent needs a rate (streams)"),
    ({"target": TARGET, "profile": "throughput"}, (0, 6, 1), "profile throughput takes no rate"),
    ({"target": TARGET, "rate": [2.5]}, (0, 6, 1), "concurrent streams must be whole numbers"),
    ({"target": TARGET, "rate": ["fast"]}, (0, 6, 1), "rate ['fast'] is not a number"),
    ({"target": TARGET, "rate": [-1]}, (0, 6, 1), "is not a number or a list of positive numbers"),
    ({"target": TARGET, "prompt_tokens": 0}, (0, 6, 1), "prompt_tokens must be a positive whole number"),
    ({"target": TARGET, "max_seconds": -5}, (0, 6, 1), "max_seconds must be 0 (no limit)"),
    ({"target": TARGET, "max_seconds": 0}, (0, 6, 1), "without either a concurrent benchmark never ends"),
    ({"target": TARGET, "profile": "sweep", "rate": [5], "max_seconds": 0}, (0, 6, 1),
     "without either a sweep benchmark never ends"),
    ({"target": TARGET, "profile": "sweep", "rate": [5, 10]}, (0, 6, 1), "a sweep takes one rate"),
    ({"target": TARGET, "sample_requests": -1}, (0, 6, 1), "sample_requests must be 0 (keep none)"),
    ({"target": TARGET, "prompt_tokens": "many"}, (0, 6, 1), "prompt_tokens must be a positive whole number"),
    ({"target": TARGET, "turns": 3}, (0, 5, 4), "multi-turn (turns=3) needs guidellm 0.6 or newer; this is 0.5.4"),
    ({"target": TARGET}, (0, 7, 4), "guidellm 0.7.4 replaced 'guidellm benchmark'"),
    ({"target": TARGET}, (0, 2, 1), "older than 0.3"),
    ({"target": TARGET}, None, "the guidellm version is unknown"),
])
def test_validation_names_each_problem(settings, version, message):
    errors = bench.validate(settings, version)
    assert any(message in error for error in errors), errors


def test_valid_settings_have_no_errors():
    assert bench.validate({"target": TARGET, "turns": 2, "request_type": "chat"}, (0, 6, 1)) == []
    assert bench.validate({"target": TARGET, "profile": "sweep", "rate": [5], "max_requests": 50}, (0, 3, 1)) == []


def test_whole_numbers_given_as_text_are_accepted():
    # ansible-core < 2.19 templates "{{ x | int }}" inside a dict to text
    settings = {"target": TARGET, "prompt_tokens": "256", "max_seconds": "30", "turns": "1"}
    assert bench.validate(settings, (0, 6, 1)) == []
    argv = bench.guidellm_command(settings, (0, 6, 1))["argv"]
    assert option(argv, "--max-seconds") == "30" and option(argv, "--data").startswith("prompt_tokens=256,")


def test_rate_list_accepts_numbers_strings_and_lists():
    assert bench.rate_list(4) == [4]
    assert bench.rate_list("1, 2.5") == [1, 2.5]
    assert bench.rate_list(["2", 3.0]) == [2, 3]
    assert bench.rate_list(None) == [] and bench.rate_list("") == []
    assert bench.rate_list([True]) is None and bench.rate_list([0]) is None


def test_the_filter_builds_from_an_image_reference_and_raises_with_every_problem():
    result = command_filter({"target": TARGET}, "ghcr.io/vllm-project/guidellm:v0.6.1")
    assert "--profile" in result["argv"]
    with pytest.raises(AnsibleFilterError) as raised:
        command_filter({"target": "", "profile": "burst"}, "ghcr.io/vllm-project/guidellm:latest")
    text = str(raised.value)
    assert "version is unknown" in text and "target is empty" in text and "profile 'burst'" in text
    with pytest.raises(AnsibleFilterError, match="settings must be a dict"):
        command_filter(["not", "a", "dict"], "0.6.1")


def pod(name="gl-1", phase="Pending", init=None, main=None, conditions=None):
    return {"metadata": {"name": name}, "status": {"phase": phase, "initContainerStatuses": init or [],
                                                   "containerStatuses": main or [], "conditions": conditions or []}}


def test_stuck_pods_are_named_with_the_reason():
    def guidellm(state):
        return [{"name": "guidellm", "state": state}]

    pull = pod(init=guidellm({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}))
    secret = pod("gl-2", init=guidellm({"waiting": {"reason": "CreateContainerConfigError",
                                                    "message": 'secret "hf" not found'}}))
    crashed = pod("gl-3", phase="Failed", init=guidellm({"terminated": {"exitCode": 1, "reason": "Error"}}))
    assert bench.pod_stuck_reasons([pull, secret, crashed]) == [
        "gl-1: container guidellm: ImagePullBackOff: Back-off pulling image",
        'gl-2: container guidellm: CreateContainerConfigError: secret "hf" not found',
        "gl-3: container guidellm exited 1 (Error)"]


def test_pods_that_only_wait_are_not_stuck_but_described_with_all_states():
    pending = pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": "0/2 nodes are available: 2 Insufficient cpu."}])
    creating = pod("gl-2", phase="Pending", init=[{"name": "guidellm",
                                                   "state": {"waiting": {"reason": "ContainerCreating"}}}])
    done = pod("gl-3", phase="Succeeded", init=[{"name": "guidellm", "state": {"terminated": {"exitCode": 0}}}])
    assert bench.pod_stuck_reasons([pending, creating, done]) == []
    assert bench.pod_stuck_reasons([pending, done], all_states=True) == [
        "gl-1: phase Pending", "gl-1: not scheduled: 0/2 nodes are available: 2 Insufficient cpu.",
        "gl-3: phase Succeeded"]
    assert bench.pod_stuck_reasons([]) == [] and bench.pod_stuck_reasons(None) == []
