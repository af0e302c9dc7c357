"""Measure llmd_inference_probe against a real llm-d-inference-sim.

1. Overhead: the probe's send + check of one request against a bare
   http.client request (new connection each, as the probe does), alternating
   the two on the same simulator so both see the same machine load.
2. TTFT accuracy: streamed TTFT the probe reports against the simulator's
   --time-to-first-token, with a bare client's first-chunk time alongside.

Run: .venv/bin/python tests/integration/probe/bench_probe.py [--requests 300] [--ttft-requests 40]
Prints a Markdown summary for docs/benchmarks.md.
"""
import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.llmd.stack.plugins.module_utils import _probe_core as core  # noqa: E402
from ansible_collections.llmd.stack.plugins.module_utils import _probe_http as probe_http  # noqa: E402
from ansible_collections.llmd.stack.plugins.module_utils import _portforward as pf  # noqa: E402

MODEL = "bench-model"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sim(flags):
    binary = os.path.join(subprocess.run(["bash", os.path.join(REPO, "lab", "build-tools.sh"), "--print-bin"],
                                         check=True, capture_output=True, text=True).stdout.strip(),
                          "llm-d-inference-sim")
    port = free_port()
    process = subprocess.Popen([binary, "--model", MODEL, "--port", str(port), "--mode", "random",
                                "--force-dummy-tokenizer"] + flags,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            raw_request(port, "GET", "/v1/models", None)
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("llm-d-inference-sim did not start")


def raw_request(port, method, path, body, first_chunk=False):
    """Bare http.client exchange; returns (total_ms, first_data_line_ms)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = json.dumps(body) if body is not None else None
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
    response = conn.getresponse()
    first = None
    if first_chunk:
        while True:
            line = response.readline()
            if not line:
                break
            if first is None and line.startswith(b"data: ") and b'"content":"' in line:
                first = (time.perf_counter() - started) * 1000.0
    else:
        response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit("raw request failed: HTTP %d" % response.status)
    return (time.perf_counter() - started) * 1000.0, first


def overhead(port, count):
    sender = probe_http.Sender("http://127.0.0.1:%d" % port, 30.0)
    request = core.build_request("completions", MODEL, {"prompt": "measure the probe", "max_tokens": 4})
    raw, probed = [], []
    for _warmup in range(10):  # warm up both paths
        raw_request(port, "POST", request["path"], request["body"])
        sender.send(request)
    for _round in range(count):
        raw.append(raw_request(port, "POST", request["path"], request["body"])[0])
        started = time.perf_counter()
        result = core.evaluate("completions", sender.send(request), 4)
        probed.append((time.perf_counter() - started) * 1000.0)
        if not result["ok"]:
            raise SystemExit("probe failed: %s" % result["error"])
    return raw, probed


def ttft(port, configured_ms, count):
    sender = probe_http.Sender("http://127.0.0.1:%d" % port, 30.0)
    request = core.build_request("chat", MODEL, {"max_tokens": 8, "stream": True})
    probed, raw = [], []
    for _round in range(count):
        result = core.evaluate("chat", sender.send(request), 8)
        if not result["ok"]:
            raise SystemExit("probe failed: %s" % result["error"])
        probed.append(result["ttft_ms"])
        raw.append(raw_request(port, "POST", request["path"], request["body"], first_chunk=True)[1])
    return {"configured": configured_ms, "probe": probed, "raw": raw}


def module_runs(port, count):
    """Wall time of whole `ansible localhost -m llmd.stack.llmd_inference_probe` runs (one /v1/models each)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    command = [os.path.join(REPO, ".venv", "bin", "ansible"), "localhost", "-m", "llmd.stack.llmd_inference_probe",
               "-a", "url=http://127.0.0.1:%d checks=models" % port]
    times = []
    for _round in range(count):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def forwarded(target, kubeconfig, count):
    """GET /v1/models latency through the in-process port-forward to NAMESPACE/POD:PORT."""
    namespace, rest = target.split("/", 1)
    pod, port = rest.rsplit(":", 1)
    api = pf.core_api({"kubeconfig": kubeconfig})
    plan = pf.resolve(api, namespace, pod=pod, port=port)
    with pf.PortForwarder(api, plan["namespace"], plan["pod"], plan["remote_port"]) as forward:
        sender = probe_http.Sender("http://127.0.0.1:%d" % forward.local_port, 30.0)
        request = core.build_request("models")
        times = []
        for _round in range(count + 5):
            record = sender.send(request)
            if record["status"] != 200:
                raise SystemExit("port-forwarded request failed: %s" % (record["error"] or record["status"]))
            times.append(record["latency_ms"])
    return times[5:]


def stats(values):
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": core.percentile(ordered, 95), "mean": statistics.mean(ordered)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--ttft-requests", type=int, default=40)
    parser.add_argument("--module-runs", type=int, default=5)
    parser.add_argument("--pod-forward", metavar="NAMESPACE/POD:PORT",
                        help="also time GET /v1/models through port_forward to this pod (needs --kubeconfig)")
    parser.add_argument("--kubeconfig")
    args = parser.parse_args()

    process, port = start_sim([])
    try:
        raw, probed = overhead(port, args.requests)
        runs = module_runs(port, args.module_runs)
    finally:
        process.kill()
    ttfts = []
    for configured in (50, 200, 500):
        process, port = start_sim(["--time-to-first-token", "%dms" % configured, "--inter-token-latency", "5ms"])
        try:
            ttfts.append(ttft(port, configured, args.ttft_requests))
        finally:
            process.kill()

    raw_s, probe_s = stats(raw), stats(probed)
    print("machine: %s, %d cores, Python %s, load average %s" % (
        platform.machine(), os.cpu_count(), platform.python_version(), " ".join("%.2f" % v for v in os.getloadavg())))
    print()
    print("| per request (%d, alternating) | p50 ms | p95 ms | mean ms |" % args.requests)
    print("| --- | ---: | ---: | ---: |")
    print("| bare http.client | %.2f | %.2f | %.2f |" % (raw_s["p50"], raw_s["p95"], raw_s["mean"]))
    print("| probe send + check | %.2f | %.2f | %.2f |" % (probe_s["p50"], probe_s["p95"], probe_s["mean"]))
    print("| ratio probe / bare | %.2f | %.2f | %.2f |" % (
        probe_s["p50"] / raw_s["p50"], probe_s["p95"] / raw_s["p95"], probe_s["mean"] / raw_s["mean"]))
    print()
    print("whole module run through `ansible localhost -m` (checks=models), %d runs: p50 %.0f ms, max %.0f ms" % (
        len(runs), statistics.median(runs), max(runs)))
    if args.pod_forward:
        direct, through = [], forwarded(args.pod_forward, args.kubeconfig, 100)
        process, port = start_sim([])
        try:
            sender = probe_http.Sender("http://127.0.0.1:%d" % port, 30.0)
            direct = [sender.send(core.build_request("models"))["latency_ms"] for _round in range(100)]
        finally:
            process.kill()
        print()
        print("GET /v1/models, 100 each: direct to a local simulator p50 %.2f ms p95 %.2f ms; "
              "through port_forward to %s p50 %.2f ms p95 %.2f ms" % (
                  stats(direct)["p50"], stats(direct)["p95"], args.pod_forward, stats(through)["p50"],
                  stats(through)["p95"]))
    print()
    print("| configured TTFT | probe p50 | probe p95 | probe mean error | bare client p50 | requests |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for item in ttfts:
        probe_stats, raw_stats = stats(item["probe"]), stats(item["raw"])
        print("| %d ms | %.1f ms | %.1f ms | %+.1f %% | %.1f ms | %d |" % (
            item["configured"], probe_stats["p50"], probe_stats["p95"],
            (probe_stats["mean"] - item["configured"]) * 100.0 / item["configured"], raw_stats["p50"],
            len(item["probe"])))


if __name__ == "__main__":
    main()
