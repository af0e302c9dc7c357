"""Unit tests of the lab model-server simulator's pure decision logic."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))

from simulators import model_servers as ms  # noqa: E402  (path set just above)


def make_pod(name="ms-decode-0", namespace="llm-d-sim", phase="Running", vllm=None, proxy=None,
             annotations=None, deleting=False, uid="uid-1"):
    containers = [dict(name="vllm", image="ghcr.io/llm-d/llm-d-inference-sim:v0.8.2", **(vllm or {}))]
    spec = {"containers": containers, "nodeName": "lab-gpu-0"}
    if proxy is not None:
        spec["initContainers"] = [dict(name="routing-proxy", image="proxy", restartPolicy="Always", **proxy)]
    meta = {"name": name, "namespace": namespace, "uid": uid}
    if annotations:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "podIP": "10.244.0.7"}}


# -- which pods get a simulator -------------------------------------------------

def test_running_vllm_pod_wants_a_simulator():
    assert ms.wants_simulator(make_pod())


@pytest.mark.parametrize("pod", [
    make_pod(phase="Pending"),
    make_pod(phase="Succeeded"),
    make_pod(deleting=True),
    make_pod(annotations={"lab.llmd.dev/simulate": "false"}),
    make_pod(annotations={"lab.llmd.dev/simulate": "False"}),
], ids=["pending", "succeeded", "deleting", "opted-out", "opted-out-capitalised"])
def test_pods_that_do_not_get_a_simulator(pod):
    assert not ms.wants_simulator(pod)


def test_pod_without_vllm_container_gets_no_simulator():
    pod = make_pod()
    pod["spec"]["containers"][0]["name"] = "epp"
    assert not ms.wants_simulator(pod)


def test_simulate_true_annotation_keeps_the_simulator():
    assert ms.wants_simulator(make_pod(annotations={"lab.llmd.dev/simulate": "true"}))


@pytest.mark.parametrize("junk", [None, "pod", {}, {"metadata": None, "spec": None, "status": None},
                                  {"spec": {"containers": [None, "x"]}, "status": {"phase": "Running"}}])
def test_malformed_pods_never_raise(junk):
    assert ms.wants_simulator(junk) is False


# -- command line parsing -------------------------------------------------------

def test_parse_flags_forms():
    flags, positionals = ms.parse_flags(
        ["vllm", "serve", "org/model", "--port", "8200", "--max-model-len=4096",
         "--served-model-name", "a", "b", "--enforce-eager", "--seed", "-1", "--max_num_seqs", "8"])
    assert positionals == ["vllm", "serve", "org/model"]
    assert flags == [("port", ["8200"]), ("max-model-len", ["4096"]), ("served-model-name", ["a", "b"]),
                     ("enforce-eager", []), ("seed", ["-1"]), ("max-num-seqs", ["8"])]


def test_flag_value_takes_the_last_occurrence():
    flags = ms.parse_flags(["--port", "1", "--port=2"])[0]
    assert ms.flag_value(flags, "port") == "2"
    assert ms.flag_value(flags, "model") is None


# -- simulator arguments --------------------------------------------------------

def test_sim_flags_pass_through_and_vllm_only_flags_drop():
    pod = make_pod(vllm={"args": [
        "--model", "random", "--port", "8200", "--served-model-name", "random",
        "--mode", "echo", "--time-to-first-token", "200ms", "--inter-token-latency=20ms",
        "--max-num-seqs", "16", "--gpu-memory-utilization", "0.9", "--tensor-parallel-size", "2",
        "--kv-transfer-config", '{"kv_connector":"NixlConnector"}', "--enforce-eager",
        "--zmq-endpoint", "tcp://gaie-sim-epp:5557", "--config", "/etc/sim.yaml"]})
    args, dropped = ms.simulator_args(pod, 41000)
    assert args == ["--model", "random", "--port", "41000", "--served-model-name", "random",
                    "--mode=echo", "--time-to-first-token=200ms", "--inter-token-latency=20ms",
                    "--max-num-seqs=16", "--force-dummy-tokenizer"]
    assert dropped == ["--gpu-memory-utilization", "--tensor-parallel-size", "--kv-transfer-config",
                       "--enforce-eager", "--zmq-endpoint", "--config"]


def test_model_from_vllm_serve_positional():
    pod = make_pod(vllm={"command": ["vllm", "serve"], "args": ["Qwen/Qwen3-0.6B", "--port", "8000"]})
    args = ms.simulator_args(pod, 41001)[0]
    assert args[:4] == ["--model", "Qwen/Qwen3-0.6B", "--port", "41001"]


def test_model_falls_back_to_served_model_name():
    pod = make_pod(vllm={"args": ["--served-model-name", "alias-a", "alias-b"]})
    args = ms.simulator_args(pod, 41002)[0]
    assert args[:2] == ["--model", "alias-a"]
    assert args[4:7] == ["--served-model-name", "alias-a", "alias-b"]


def test_env_references_are_expanded_like_kubernetes_does():
    pod = make_pod(vllm={
        "args": ["--model", "$(MODEL)", "--served-model-name", "$(POD)", "--seed", "$$(LITERAL)",
                 "--mode", "$(UNKNOWN)"],
        "env": [{"name": "MODEL", "value": "org/$(FAMILY)"},  # FAMILY is defined later: stays literal
                {"name": "FAMILY", "value": "x"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    args = ms.simulator_args(pod, 41003)[0]
    assert args[:2] == ["--model", "org/$(FAMILY)"]
    assert "ms-decode-0" in args
    assert "--seed=$(LITERAL)" in args
    assert "--mode=$(UNKNOWN)" in args


def test_bool_flags_with_explicit_values():
    pod = make_pod(vllm={"args": ["--model", "m", "--enable-kvcache", "--log-http=false",
                                  "--enable-request-id-headers", "true"]})
    args = ms.simulator_args(pod, 41004)[0]
    assert "--enable-kvcache=true" in args
    assert "--log-http=false" in args
    assert "--enable-request-id-headers=true" in args


def test_dummy_tokenizer_is_always_forced():
    args = ms.simulator_args(make_pod(vllm={"args": ["--model", "meta-llama/Llama-3.1-8B"]}), 41005)[0]
    assert args[-1] == "--force-dummy-tokenizer"


# -- ports ----------------------------------------------------------------------

def test_forwarded_ports_cover_vllm_and_routing_proxy():
    pod = make_pod(
        vllm={"args": ["--model", "m", "--port", "8200"], "ports": [{"containerPort": 8200, "name": "vllm"}]},
        proxy={"args": ["--port=8000", "--vllm-port=8200", "--connector=nixlv2"],
               "ports": [{"containerPort": 8000}, {"containerPort": 9999, "protocol": "UDP"}]})
    assert ms.forwarded_ports(pod) == [8000, 8200]


def test_forwarded_ports_from_flags_when_nothing_is_declared():
    assert ms.forwarded_ports(make_pod(vllm={"args": ["--port=8000"]})) == [8000]


def test_no_known_ports_forwards_everything():
    pod = make_pod()
    assert ms.forwarded_ports(pod) == []
    forward = ms.portforward_object(pod, 41006)["spec"]["forwards"][0]
    assert "ports" not in forward
    assert forward["target"] == {"address": "127.0.0.1", "port": 41006}


# -- kwok objects -----------------------------------------------------------------

def test_portforward_object_is_owned_by_the_pod():
    pod = make_pod(vllm={"ports": [{"containerPort": 8000}]})
    obj = ms.portforward_object(pod, 41007)
    assert obj["apiVersion"] == "kwok.x-k8s.io/v1alpha1"
    assert obj["kind"] == "PortForward"
    assert obj["metadata"]["name"] == "ms-decode-0"
    assert obj["metadata"]["namespace"] == "llm-d-sim"
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "ms-decode-0", "uid": "uid-1"}]
    assert obj["spec"]["forwards"] == [{"ports": [8000], "target": {"address": "127.0.0.1", "port": 41007}}]


def test_logs_object_maps_each_container_to_its_file():
    pod = make_pod(proxy={})
    paths = ms.log_paths("/lab", pod)
    assert paths == {"vllm": "/lab/logs/pods/llm-d-sim/ms-decode-0/vllm.log",
                     "routing-proxy": "/lab/logs/pods/llm-d-sim/ms-decode-0/routing-proxy.log"}
    obj = ms.logs_object(pod, paths)
    assert obj["kind"] == "Logs"
    assert obj["spec"]["logs"] == [
        {"containers": ["routing-proxy"], "logsFile": paths["routing-proxy"], "follow": True},
        {"containers": ["vllm"], "logsFile": paths["vllm"], "follow": True}]


def test_log_paths_without_routing_proxy():
    assert list(ms.log_paths("/lab", make_pod())) == ["vllm"]


# -- reconcile plan -------------------------------------------------------------

def test_plan_starts_new_stops_gone_and_replaces_recreated_pods():
    desired = {"ns/a": "u1", "ns/b": "u2-new", "ns/c": "u3"}
    running = {"ns/a": "u1", "ns/b": "u2-old", "ns/d": "u4"}
    assert ms.plan(desired, running) == (["ns/b", "ns/c"], ["ns/b", "ns/d"])


def test_plan_is_a_no_op_when_in_sync():
    assert ms.plan({"ns/a": "u1"}, {"ns/a": "u1"}) == ([], [])


def test_restart_delay_backs_off_to_a_minute():
    assert [ms.restart_delay(n) for n in (0, 1, 2, 5, 6, 20)] == [1, 2, 4, 32, 60, 60]
