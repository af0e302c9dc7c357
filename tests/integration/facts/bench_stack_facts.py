"""Benchmark: llmd.stack.llmd_stack_facts against the equivalent kubernetes.core.k8s_info tasks.

Both sides read the same kinds: the k8s_info playbook has one task per LIST the
module plans (same API version, namespace and label selector, plus the GET of
the namespace), each registered as a verify role would. Runs alternate
(module, k8s_info, module, ...) after one warm-up each, so kubernetes.core's
discovery cache is warm for both.

Measured per run:
- wall: the whole ansible-playbook process, start-up included;
- tasks: the sum of the task durations the json callback reports;
- requests: HTTP requests sent to the API, counted inside every Python process
  of the run (a sitecustomize hook on urllib3, written to a temp dir and put on
  PYTHONPATH for the benchmark only);
- peak RSS: the largest resident set of any process of the run (getrusage of
  the waited-for process tree).

    .venv/bin/python tests/integration/facts/bench_stack_facts.py --kubeconfig /tmp/facts-bench-lab/kubeconfig \
        --namespace bench-facts --setup --scale 500 --runs 5

--setup installs the stack (fixture charts, releases infra-sim/gaie-sim/ms-sim
and the HTTPRoute) when the namespace lacks it; --scale N then adds a
Deployment of N model-server pods annotated lab.llmd.dev/simulate=false and
measures again. The namespace is left in place (use a private lab).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "lab"))

from ansible_collections.llmd.stack.plugins.module_utils import _stack_checks, _stack_model  # noqa: E402

VENV_BIN = os.path.join(REPO, ".venv", "bin")
CHARTS = os.path.join(REPO, "lab", "fixtures", "charts")
RN = "sim"
KIND_NAMES = {
    "deployments": "Deployment", "pods": "Pod", "services": "Service", "configmaps": "ConfigMap",
    "helm_secrets": "Secret", "pvcs": "PersistentVolumeClaim", "gateways": "Gateway", "httproutes": "HTTPRoute",
    "gatewayclasses": "GatewayClass", "inferencepools_v1": "InferencePool", "inferencepools_v1alpha2": "InferencePool",
    "inferenceobjectives": "InferenceObjective", "inferencemodels": "InferenceModel",
    "gatewayparameters": "GatewayParameters", "agentgatewayparameters": "AgentgatewayParameters",
    "ingresses": "Ingress", "routes": "Route", "control_plane_deployments": "Deployment",
    "control_plane_helm_secrets": "Secret", "crds": "CustomResourceDefinition", "clusterversions": "ClusterVersion",
    "servicemeshcontrolplanes": "ServiceMeshControlPlane",
}
SITECUSTOMIZE = '''
import atexit, os, resource
_log = os.environ.get("BENCH_REQUEST_LOG")
if _log:
    try:
        from urllib3 import connectionpool as _cp
        _original = _cp.HTTPConnectionPool.urlopen
        def _counted(self, method, url, *args, **kwargs):
            with open(_log, "a") as handle:
                handle.write("%s %s %s\\n" % (os.getpid(), method, url.split("?")[0]))
            return _original(self, method, url, *args, **kwargs)
        _cp.HTTPConnectionPool.urlopen = _counted
    except ImportError:
        pass
'''


def sh(env, *args, timeout=600, check=True):
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise SystemExit("%s failed (%d): %s%s" % (" ".join(args), done.returncode, done.stdout, done.stderr))
    return done


def lab_env(kubeconfig):
    tools = subprocess.run(["bash", os.path.join(REPO, "lab", "build-tools.sh"), "--print-bin"], capture_output=True,
                           text=True, check=True).stdout.strip()
    return dict(os.environ, KUBECONFIG=kubeconfig, PATH=tools + os.pathsep + VENV_BIN + os.pathsep + os.environ["PATH"])


def setup_stack(env, namespace):
    if sh(env, "kubectl", "get", "namespace", namespace, check=False).returncode == 0:
        return
    sh(env, "kubectl", "create", "namespace", namespace)
    sh(env, "kubectl", "apply", "-f", os.path.join(REPO, "lab", "fixtures", "crds", "gateway-api"),
       "-f", os.path.join(REPO, "lab", "fixtures", "crds", "gaie"))
    sh(env, "kubectl", "wait", "--for", "condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=llmd-lab-fixtures")
    # The class llm-d-infra uses by default; the lab's gateway simulator plays its Istio controller.
    gateway_class = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "istio"},
                     "spec": {"controllerName": "istio.io/gateway-controller"}}
    done = subprocess.run(["kubectl", "apply", "-f", "-"], env=env, input=json.dumps(gateway_class), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    values = {
        "llm-d-infra": [],
        "inferencepool": ["--set-string", r"inferencePool.modelServers.matchLabels.llm-d\.ai/inference-serving=true",
                          "--set", "provider.name=istio"],
        "llm-d-modelservice": ["--set", "decode.replicas=2", "--set", "prefill.replicas=1"],
    }
    for release, chart in (("infra-" + RN, "llm-d-infra"), ("gaie-" + RN, "inferencepool"), ("ms-" + RN, "llm-d-modelservice")):
        sh(env, "helm", "install", release, os.path.join(CHARTS, chart), "-n", namespace, "--wait", "--timeout", "300s",
           *values[chart])
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "llm-d-" + RN},
             "spec": {"parentRefs": [{"name": "infra-%s-inference-gateway" % RN}],
                      "rules": [{"backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                                  "name": "gaie-" + RN, "port": 8000}],
                                 "timeouts": {"request": "0s", "backendRequest": "0s"}}]}}
    done = subprocess.run(["kubectl", "-n", namespace, "apply", "-f", "-"], env=env, input=json.dumps(route),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)


def scale_stack(env, namespace, replicas):
    labels = {"llm-d.ai/inference-serving": "true", "llm-d.ai/role": "decode", "bench": "scale"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ms-scale-decode"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels, "annotations": {"lab.llmd.dev/simulate": "false"}},
                              # Shaped like modelservice decode pods: vllm behind the routing-proxy sidecar.
                              "spec": {"initContainers": [{"name": "routing-proxy", "image": "ghcr.io/llm-d/llm-d-routing-sidecar:v0.4.0",
                                                           "restartPolicy": "Always", "args": ["--port=8000", "--vllm-port=8200"],
                                                           "ports": [{"containerPort": 8000}]}],
                                       "containers": [{"name": "vllm", "image": "ghcr.io/llm-d/llm-d-inference-sim:v0.8.2",
                                                       "args": ["--model", "random", "--port", "8200", "--served-model-name", "random"],
                                                       "ports": [{"containerPort": 8200}]}]}}}}
    done = subprocess.run(["kubectl", "-n", namespace, "apply", "-f", "-"], env=env, input=json.dumps(deployment),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    sh(env, "kubectl", "-n", namespace, "rollout", "status", "deployment/ms-scale-decode", "--timeout=900s", timeout=960)


def k8s_info_tasks(env, kubeconfig, namespace):
    """One k8s_info task per LIST the module plans, in the same order."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=kubeconfig)
    response = client.call_api("GET", client.configuration.host + "/apis",
                               header_params={"Accept": _stack_model.AGGREGATED_DISCOVERY_ACCEPT})
    discovery = _stack_model.parse_discovery(json.loads(response.read()))
    plan = _stack_model.plan_requests(discovery, namespace, ["istio-system", "kgateway-system", "agentgateway-system"],
                                      _stack_model.kinds_for_checks(_stack_checks.CHECK_IDS))
    tasks = [{"name": "Namespace", "kubernetes.core.k8s_info": {"kubeconfig": kubeconfig, "kind": "Namespace", "name": namespace},
              "register": "bench_namespace"}]
    for index, entry in enumerate(p for p in plan if p["served"]):
        args = {"kubeconfig": kubeconfig, "api_version": entry["api_version"], "kind": KIND_NAMES[entry["key"]]}
        if entry["namespace"]:
            args["namespace"] = entry["namespace"]
        if entry["query"].get("labelSelector"):
            args["label_selectors"] = [entry["query"]["labelSelector"]]
        tasks.append({"name": "%s %s" % (entry["key"], entry["namespace"] or ""), "kubernetes.core.k8s_info": args,
                      "register": "bench_%d" % index})
    return tasks


def write_playbook(path, tasks):
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}], handle)


def measure(env, playbook, hook_dir):
    """One ansible-playbook run: wall s, task s, requests, peak RSS MiB (any process), ok."""
    log = tempfile.NamedTemporaryFile(delete=False, suffix=".log")
    log.close()
    run_env = dict(env, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                   BENCH_REQUEST_LOG=log.name, PYTHONPATH=hook_dir)
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); wall = time.monotonic() - t; "
               "sys.stdout.write(p.stdout); "
               "sys.stderr.write('BENCH %d %.4f %d\\n' % (p.returncode, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))")
    done = subprocess.run([sys.executable, "-c", wrapper, os.path.join(VENV_BIN, "ansible-playbook"), playbook],
                          env=run_env, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    rc, wall, maxrss = done.stderr.strip().splitlines()[-1].split()[1:]
    result = json.loads(done.stdout)
    tasks = result["plays"][0]["tasks"]
    task_seconds = 0.0
    for task in tasks:
        duration = task["task"]["duration"]
        start = _parse_time(duration["start"])
        end = _parse_time(duration["end"])
        task_seconds += end - start
    with open(log.name) as handle:
        requests = [line.split(" ", 2)[2].strip() for line in handle if line.strip()]
    os.unlink(log.name)
    hosts = [t["hosts"]["localhost"] for t in tasks]
    return {"wall": float(wall), "tasks": task_seconds, "requests": len(requests), "paths": requests,
            "rss_mib": int(maxrss) / 1024.0, "ok": int(rc) == 0 and not any(h.get("failed") for h in hosts),
            "last": hosts[-1]}


def _parse_time(text):
    import datetime
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def bench(env, kubeconfig, namespace, runs, label, hook_dir, work):
    module_play = os.path.join(work, "module.yml")
    info_play = os.path.join(work, "k8s_info.yml")
    write_playbook(module_play, [{"name": "Read the stack", "llmd.stack.llmd_stack_facts": {
        "kubeconfig": kubeconfig, "namespace": namespace, "release_postfix": RN}, "register": "bench_stack"}])
    tasks = k8s_info_tasks(env, kubeconfig, namespace)
    write_playbook(info_play, tasks)
    for play in (module_play, info_play):  # warm-up: discovery caches, page cache
        warm = measure(env, play, hook_dir)
        if not warm["ok"]:
            raise SystemExit("warm-up of %s failed: %s" % (play, json.dumps(warm["last"])[:2000]))
    rows = {"module": [], "k8s_info": []}
    for _run in range(runs):
        rows["module"].append(measure(env, module_play, hook_dir))
        rows["k8s_info"].append(measure(env, info_play, hook_dir))
    pods = len(rows["module"][-1]["last"]["ansible_facts"]["llmd_stack"]["pool_pods"])
    summary = rows["module"][-1]["last"]["summary"]
    print("\n### %s: %d k8s_info tasks, %d pods in the pool, module summary %s, load %s" % (
        label, len(tasks), pods, summary, " ".join("%.2f" % x for x in os.getloadavg())))
    print("| %s | wall s (median, min-max) | tasks s (median) | API requests | peak RSS MiB (median) |" % label)
    print("| --- | ---: | ---: | ---: | ---: |")
    for side, measured in rows.items():
        walls = [m["wall"] for m in measured]
        print("| %s | %.2f (%.2f-%.2f) | %.2f | %s | %.0f |" % (
            side, statistics.median(walls), min(walls), max(walls), statistics.median(m["tasks"] for m in measured),
            "/".join(sorted(set(str(m["requests"]) for m in measured))), statistics.median(m["rss_mib"] for m in measured)))
    module_wall = statistics.median(m["wall"] for m in rows["module"])
    info_wall = statistics.median(m["wall"] for m in rows["k8s_info"])
    module_tasks = statistics.median(m["tasks"] for m in rows["module"])
    info_tasks = statistics.median(m["tasks"] for m in rows["k8s_info"])
    print("| ratio k8s_info / module | %.1fx | %.1fx | | |" % (info_wall / module_wall, info_tasks / module_tasks))
    print("\nmodule requests: %s" % " ".join(sorted(rows["module"][-1]["paths"])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="bench-facts")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--scale", type=int, default=0, help="model-server pods to add for the scaled run")
    args = parser.parse_args()
    env = lab_env(args.kubeconfig)
    if args.setup:
        setup_stack(env, args.namespace)
    with tempfile.TemporaryDirectory() as hook_dir, tempfile.TemporaryDirectory() as work:
        with open(os.path.join(hook_dir, "sitecustomize.py"), "w") as handle:
            handle.write(SITECUSTOMIZE)
        bench(env, args.kubeconfig, args.namespace, args.runs, "realistic stack", hook_dir, work)
        if args.scale:
            scale_stack(env, args.namespace, args.scale)
            bench(env, args.kubeconfig, args.namespace, args.runs, "scaled stack (+%d pods)" % args.scale, hook_dir, work)


if __name__ == "__main__":
    main()
