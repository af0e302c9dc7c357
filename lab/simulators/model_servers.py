"""Lab model-server simulator: one real llm-d-inference-sim process per vLLM pod.

Lab-only (see lab/simulators/__init__.py). kwok makes pods Running without
running anything, so for every Running pod with a container named `vllm` this
controller starts `llm-d-inference-sim` on 127.0.0.1:<free port> with the model
flags of that container, and creates two kwok objects named like the pod:

- a `PortForward` sending every declared port of the `vllm` and `routing-proxy`
  containers to the simulator, so `kubectl port-forward` to the pod (or to a
  Service selecting it) reaches it;
- a `Logs` object mapping `kubectl logs -c vllm` (and `-c routing-proxy`) to the
  log files written here, in the CRI format kubelet uses.

No routing proxy runs: the proxy's ports go straight to the simulator.
Pods annotated `lab.llmd.dev/simulate: "false"` get nothing (scale benchmarks
create hundreds of them).

The pure functions at the top decide; `Controller` does the I/O.
"""
import json
import os
import re
import subprocess
import time

from kubernetes import client as kube_client

from . import common

VLLM_CONTAINER = "vllm"
PROXY_CONTAINER = "routing-proxy"
SIMULATE_ANNOTATION = "lab.llmd.dev/simulate"
MANAGED_BY = "llmd-lab-model-servers"
KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"

# llm-d-inference-sim (v0.10.2) flags passed through from the vllm container.
# Everything else is dropped: real-vLLM-only flags, and sim flags that point at
# files or addresses inside the pod (--config, --dataset-path, --ssl-*,
# --zmq-endpoint, --render-url), need the network (--dataset-url) or open more
# ports (--data-parallel-*). --port is always ours.
SIM_VALUE_FLAGS = frozenset((
    "model", "mode", "seed", "hash-seed", "v",
    "max-num-seqs", "max-model-len", "max-waiting-queue-length", "max-loras", "max-cpu-loras",
    "time-to-first-token", "time-to-first-token-std-dev",
    "inter-token-latency", "inter-token-latency-std-dev",
    "prefill-overhead", "prefill-time-per-token", "prefill-time-std-dev",
    "kv-cache-transfer-latency", "kv-cache-transfer-latency-std-dev",
    "kv-cache-transfer-time-per-token", "kv-cache-transfer-time-std-dev",
    "time-factor-under-load", "latency-calculator", "startup-duration",
    "kv-cache-size", "block-size", "event-batch-size", "global-cache-hit-threshold",
    "failure-injection-rate", "fake-metrics-refresh-interval",
    "default-embedding-dimensions", "max-request-body-size-mb",
    "max-tool-call-array-param-length", "min-tool-call-array-param-length",
    "max-tool-call-integer-param", "min-tool-call-integer-param",
    "max-tool-call-number-param", "min-tool-call-number-param",
    "tool-call-not-required-param-probability",
    "object-tool-call-not-required-field-probability",
    "image-emission-rate", "time-to-generate-image", "time-to-generate-image-std-dev",
))
# Flags taking a space-separated list of values (`--served-model-name a b`).
SIM_LIST_FLAGS = frozenset(("served-model-name", "lora-modules", "fake-metrics", "failure-types"))
SIM_BOOL_FLAGS = frozenset((
    "enable-kvcache", "enable-request-id-headers", "enable-sleep-mode", "no-enable-sleep-mode",
    "self-signed-certs", "log-http", "omni", "no-omni", "use-vllm-map-event-format",
))
# Extra flags every lab simulator gets: never reach out to Hugging Face.
SIM_FIXED_FLAGS = ("--force-dummy-tokenizer",)

_ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_REFS = {
    "metadata.name": lambda pod: _meta(pod).get("name"),
    "metadata.namespace": lambda pod: _meta(pod).get("namespace"),
    "status.podIP": lambda pod: (pod.get("status") or {}).get("podIP"),
    "spec.nodeName": lambda pod: (pod.get("spec") or {}).get("nodeName"),
}


def _meta(pod):
    return pod.get("metadata") or {}


def pod_key(pod):
    meta = _meta(pod)
    return "%s/%s" % (meta.get("namespace", ""), meta.get("name", ""))


def find_container(pod, name):
    """The container (regular or init/sidecar) called `name`, or None."""
    spec = pod.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(container, dict) and container.get("name") == name:
            return container
    return None


def wants_simulator(pod):
    """A Running, not deleting pod with a `vllm` container, not opted out."""
    if not isinstance(pod, dict):
        return False
    meta = _meta(pod)
    if meta.get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    if str((meta.get("annotations") or {}).get(SIMULATE_ANNOTATION, "")).lower() == "false":
        return False
    return find_container(pod, VLLM_CONTAINER) is not None


def container_env(pod, container):
    """The literal values of a container's env, as Kubernetes would expand them
    in `$(NAME)` references (plain values and the common downward-API fields)."""
    env = {}
    for item in (container or {}).get("env") or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        if "value" in item:
            env[item["name"]] = _expand(str(item.get("value") or ""), env)
            continue
        field = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        value = _FIELD_REFS[field](pod) if field in _FIELD_REFS else None
        if value is not None:
            env[item["name"]] = str(value)
    return env


def _expand(token, env):
    """Kubernetes `$(VAR)` expansion; `$$(VAR)` stays a literal `$(VAR)`."""
    parts = token.split("$$")
    return "$".join(_ENV_REF.sub(lambda m: env.get(m.group(1), m.group(0)), part) for part in parts)


def container_argv(pod, container):
    """command + args of a container, with `$(VAR)` references expanded."""
    env = container_env(pod, container)
    tokens = list((container or {}).get("command") or []) + list((container or {}).get("args") or [])
    return [_expand(str(token), env) for token in tokens]


def parse_flags(argv):
    """Split a command line into ([(flag, [values])...], positionals).

    Understands `--flag=value`, `--flag value`, `--flag v1 v2` (a value list
    runs until the next `--flag`) and bare boolean flags. Flag names lose their
    leading dashes; `_` and `-` are the same, as in vLLM.
    """
    flags, positionals = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("-") or token in ("-", "--"):
            positionals.append(token)
            continue
        name, eq, inline = token.lstrip("-").partition("=")
        name = name.replace("_", "-")
        if eq:
            flags.append((name, [inline]))
            continue
        values = []
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        flags.append((name, values))
    return flags, positionals


def flag_value(flags, name):
    """The first value of the last occurrence of a flag, or None."""
    for flag, values in reversed(flags):
        if flag == name and values:
            return values[0]
    return None


def simulator_args(pod, port):
    """(argv tail for llm-d-inference-sim, dropped flag names) for a vllm pod.

    The model comes from --model, else from `vllm serve <model>`, else from the
    first served model name.
    """
    container = find_container(pod, VLLM_CONTAINER) or {}
    flags, positionals = parse_flags(container_argv(pod, container))
    args, dropped = [], []
    model = flag_value(flags, "model")
    if model is None and "serve" in positionals:
        after = positionals[positionals.index("serve") + 1:]
        model = after[0] if after else None
    for name, values in flags:
        if name == "model" or name == "port":
            continue
        if name in SIM_LIST_FLAGS and values:
            args += ["--" + name] + values
        elif name in SIM_VALUE_FLAGS and values:
            args += ["--%s=%s" % (name, values[0])]
        elif name in SIM_BOOL_FLAGS:
            # A bool flag may be followed by an explicit value (`--flag true`).
            enabled = not values or values[0].lower() not in ("false", "0", "no")
            args += ["--%s=%s" % (name, "true" if enabled else "false")]
        else:
            dropped.append("--" + name)
    if model is None:
        served = [values for name, values in flags if name == "served-model-name" and values]
        model = served[0][0] if served else "lab-model"
    return ["--model", model, "--port", str(port)] + args + list(SIM_FIXED_FLAGS), dropped


def _container_ports(container):
    ports = set()
    for item in container.get("ports") or []:
        if not isinstance(item, dict):
            continue
        number = item.get("containerPort")
        if isinstance(number, int) and (item.get("protocol") or "TCP") == "TCP":
            ports.add(number)
    return ports


def _port_flags(pod, container, names):
    flags, _ = parse_flags(container_argv(pod, container))
    ports = set()
    for name in names:
        value = flag_value(flags, name)
        if value is not None and value.isdigit():
            ports.add(int(value))
    return ports


def forwarded_ports(pod):
    """Every port a client may use to reach the model server of this pod: the
    declared ports of `vllm` and `routing-proxy`, plus the ports their command
    lines listen on (`--port`, the proxy's `--vllm-port`)."""
    ports = set()
    vllm = find_container(pod, VLLM_CONTAINER)
    if vllm:
        ports |= _container_ports(vllm) | _port_flags(pod, vllm, ("port",))
    proxy = find_container(pod, PROXY_CONTAINER)
    if proxy:
        ports |= _container_ports(proxy) | _port_flags(pod, proxy, ("port", "vllm-port"))
    return sorted(p for p in ports if 0 < p < 65536)


def _owned_metadata(pod):
    meta = _meta(pod)
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        # The garbage collector removes the object with its pod even if this
        # simulator is not running when the pod goes.
        "ownerReferences": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }],
    }


def portforward_object(pod, sim_port):
    forward = {"target": {"address": "127.0.0.1", "port": sim_port}}
    ports = forwarded_ports(pod)
    if ports:
        forward["ports"] = ports
    return {
        "apiVersion": "%s/%s" % (KWOK_GROUP, KWOK_VERSION),
        "kind": "PortForward",
        "metadata": _owned_metadata(pod),
        "spec": {"forwards": [forward]},
    }


def log_paths(lab_dir, pod):
    """{container: log file} for the containers this simulator writes logs for."""
    meta = _meta(pod)
    base = os.path.join(lab_dir, "logs", "pods", meta.get("namespace", ""), meta.get("name", ""))
    paths = {VLLM_CONTAINER: os.path.join(base, VLLM_CONTAINER + ".log")}
    if find_container(pod, PROXY_CONTAINER):
        paths[PROXY_CONTAINER] = os.path.join(base, PROXY_CONTAINER + ".log")
    return paths


def logs_object(pod, paths):
    return {
        "apiVersion": "%s/%s" % (KWOK_GROUP, KWOK_VERSION),
        "kind": "Logs",
        "metadata": _owned_metadata(pod),
        "spec": {"logs": [
            {"containers": [name], "logsFile": path, "follow": True}
            for name, path in sorted(paths.items())
        ]},
    }


def plan(desired, running):
    """Which simulators to start and stop.

    desired, running: {pod key: pod uid}. A pod recreated under the same name
    (new uid) gets a fresh simulator. Returns (to_start, to_stop), sorted.
    """
    to_stop = sorted(key for key, uid in running.items() if desired.get(key) != uid)
    to_start = sorted(key for key, uid in desired.items() if running.get(key) != uid)
    return to_start, to_stop


def restart_delay(restarts):
    """Seconds to wait before restarting a simulator that exited: 1, 2, 4 ... 60."""
    return min(60, 2 ** max(0, restarts))


class _Simulator:
    """One llm-d-inference-sim process standing in for one pod's vllm."""

    def __init__(self, pod, port, logs):
        self.key = pod_key(pod)
        self.uid = _meta(pod).get("uid")
        self.pod = pod
        self.port = port
        self.logs = logs
        self.process = None
        self.log_file = None
        self.started_at = 0.0
        self.exited_at = None
        self.restarts = 0


class Controller:
    """Keeps one simulator per vLLM pod, with its kwok PortForward and Logs."""

    # How often to look for kwok objects whose simulator is gone.
    ORPHAN_SWEEP_SECONDS = 30
    STOP_GRACE_SECONDS = 5

    def __init__(self, api_client, lab_dir, bin_dir, log):
        self.core = kube_client.CoreV1Api(api_client)
        self.custom = kube_client.CustomObjectsApi(api_client)
        self.lab_dir = lab_dir
        self.log = log
        self.pid_dir = os.path.join(lab_dir, "pids", "sims")
        self.state_path = state_path(lab_dir)
        self.binary = self._link_binary(bin_dir)
        self.sims = {}
        self.last_sweep = 0.0
        self.last_state = None
        os.makedirs(self.pid_dir, exist_ok=True)
        self._stop_leftovers()

    def _link_binary(self, bin_dir):
        """Run the simulator through a link inside the lab directory, so every
        simulator's command line names its lab (`lab.sh down` relies on it)."""
        target = os.path.join(bin_dir, "llm-d-inference-sim")
        if not os.access(target, os.X_OK):
            raise RuntimeError("llm-d-inference-sim not found at %s (run: make lab-tools)" % target)
        link = os.path.join(self.lab_dir, "bin", "llm-d-inference-sim")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link) and os.readlink(link) != target:
            os.remove(link)
        if not os.path.lexists(link):
            os.symlink(target, link)
        return link

    def _stop_leftovers(self):
        """Stop simulators a previous supervisor left behind (it died unclean)."""
        for name in sorted(os.listdir(self.pid_dir)):
            path = os.path.join(self.pid_dir, name)
            pid = common.read_pid(path)
            if pid and common.pid_names_path(pid, self.lab_dir):
                self.log.info("stopping simulator pid %d left by an earlier supervisor", pid)
                _terminate_pid(pid, self.STOP_GRACE_SECONDS)
            os.remove(path)

    # -- the loop --------------------------------------------------------------

    def sync(self):
        pods = self._running_pods()
        desired = {pod_key(pod): pod for pod in pods if wants_simulator(pod)}
        running = {key: sim.uid for key, sim in self.sims.items()}
        to_start, to_stop = plan({k: _meta(p).get("uid") for k, p in desired.items()}, running)
        for key in to_stop:
            self._stop(self.sims.pop(key), delete_objects=key not in desired)
        failures = []
        for key in to_start:
            try:
                self._start(desired[key])
            except Exception as exc:  # one bad pod must not starve the others
                failures.append("%s (%s)" % (key, exc))
        self._restart_exited()
        now = time.monotonic()
        if now - self.last_sweep >= self.ORPHAN_SWEEP_SECONDS:
            self._sweep_orphans()
            self.last_sweep = now
        self._write_state()
        if failures:
            raise RuntimeError("could not start a simulator for: " + "; ".join(failures))

    def close(self):
        # Processes first: the objects matter less, and the cluster may be
        # going away too.
        stopped = [self.sims.pop(key) for key in sorted(self.sims)]
        for sim in stopped:
            self._stop(sim, delete_objects=False, quick=True)
        self._write_state()
        for sim in stopped:
            namespace, name = sim.key.split("/", 1)
            for plural in ("portforwards", "logs"):
                try:
                    self._delete(plural, namespace, name, timeout=2)
                except Exception as exc:  # the cluster may be gone already
                    self.log.info("could not delete %s %s on shutdown: %s", plural, sim.key, exc)

    # -- kubernetes ------------------------------------------------------------

    def _running_pods(self):
        response = self.core.list_pod_for_all_namespaces(
            field_selector="status.phase=Running", _preload_content=False, _request_timeout=30)
        return json.loads(response.data).get("items") or []

    def _apply(self, plural, body, timeout=10):
        meta = body["metadata"]
        try:
            self.custom.create_namespaced_custom_object(
                group=KWOK_GROUP, version=KWOK_VERSION, namespace=meta["namespace"], plural=plural,
                body=body, _request_timeout=timeout)
        except kube_client.exceptions.ApiException as exc:
            if not common.is_conflict(exc):
                raise
            self.custom.patch_namespaced_custom_object(
                group=KWOK_GROUP, version=KWOK_VERSION, namespace=meta["namespace"], plural=plural,
                name=meta["name"],
                body={"metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
                      "spec": body["spec"]},
                _request_timeout=timeout)

    def _delete(self, plural, namespace, name, timeout=10):
        try:
            self.custom.delete_namespaced_custom_object(
                group=KWOK_GROUP, version=KWOK_VERSION, namespace=namespace, plural=plural, name=name,
                _request_timeout=timeout)
        except kube_client.exceptions.ApiException as exc:
            if not common.is_not_found(exc):
                raise

    def _sweep_orphans(self):
        """Delete our kwok objects that no simulator backs any more (left by a
        supervisor that died, or by a pod that stopped wanting a simulator)."""
        for plural in ("portforwards", "logs"):
            listing = self.custom.list_cluster_custom_object(
                group=KWOK_GROUP, version=KWOK_VERSION, plural=plural,
                label_selector="app.kubernetes.io/managed-by=%s" % MANAGED_BY, _request_timeout=30)
            for item in listing.get("items") or []:
                meta = item.get("metadata") or {}
                key = "%s/%s" % (meta.get("namespace"), meta.get("name"))
                if key not in self.sims:
                    self.log.info("deleting orphaned %s %s", plural, key)
                    self._delete(plural, meta.get("namespace"), meta.get("name"))

    # -- processes -------------------------------------------------------------

    def _pid_file(self, key):
        return os.path.join(self.pid_dir, key.replace("/", "_") + ".pid")

    def _start(self, pod):
        sim = _Simulator(pod, common.free_port(), log_paths(self.lab_dir, pod))
        self._launch(sim)
        try:
            self._apply("portforwards", portforward_object(pod, sim.port))
            self._apply("logs", logs_object(pod, sim.logs))
        except Exception:
            # Not tracked, so the next sync starts over for this pod.
            self._stop(sim, delete_objects=False)
            raise
        self.sims[sim.key] = sim
        if PROXY_CONTAINER in sim.logs:
            proxy_log = common.CriLogFile(sim.logs[PROXY_CONTAINER])
            proxy_log.write("stdout", "lab model-server simulator: no routing proxy runs in the lab; "
                            "ports %s of this pod go straight to llm-d-inference-sim on 127.0.0.1:%d"
                            % (",".join(str(p) for p in forwarded_ports(pod)) or "all", sim.port))
            proxy_log.close()

    def _launch(self, sim):
        args, dropped = simulator_args(sim.pod, sim.port)
        meta = _meta(sim.pod)
        env = dict(os.environ)
        env.update({
            "POD_NAME": meta.get("name", ""),
            "POD_NAMESPACE": meta.get("namespace", ""),
            "POD_IP": (sim.pod.get("status") or {}).get("podIP") or "127.0.0.1",
        })
        sim.log_file = common.CriLogFile(sim.logs[VLLM_CONTAINER])
        sim.log_file.write("stdout", "lab model-server simulator: llm-d-inference-sim %s%s" % (
            " ".join(args), "; dropped flags: " + " ".join(dropped) if dropped else ""))
        sim.process = subprocess.Popen(
            [self.binary] + args, env=env, cwd=self.lab_dir,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        sim.log_file.pump(sim.process.stdout, "stdout")
        sim.log_file.pump(sim.process.stderr, "stderr")
        sim.started_at = time.monotonic()
        sim.exited_at = None
        with open(self._pid_file(sim.key), "w") as handle:
            handle.write("%d\n" % sim.process.pid)
        self.log.info("started llm-d-inference-sim pid %d for pod %s on 127.0.0.1:%d (ports %s)%s",
                      sim.process.pid, sim.key, sim.port, forwarded_ports(sim.pod) or "all",
                      "; dropped flags " + " ".join(dropped) if dropped else "")

    def _restart_exited(self):
        now = time.monotonic()
        for sim in list(self.sims.values()):
            code = sim.process.poll()
            if code is None:
                continue
            if sim.exited_at is None:
                sim.exited_at = now
                sim.log_file.close()
                self.log.warning("llm-d-inference-sim for pod %s exited with code %s (log %s); restarting in %ds",
                                 sim.key, code, sim.logs[VLLM_CONTAINER], restart_delay(sim.restarts))
            if now - sim.exited_at < restart_delay(sim.restarts):
                continue
            sim.restarts += 1
            if not common.port_is_free(sim.port):
                sim.port = common.free_port()
                self._apply("portforwards", portforward_object(sim.pod, sim.port))
            self._launch(sim)

    def _stop(self, sim, delete_objects, quick=False):
        if sim.process.poll() is None:
            _terminate_pid(sim.process.pid, 1 if quick else self.STOP_GRACE_SECONDS)
            sim.process.wait()
        sim.log_file.close()
        pid_file = self._pid_file(sim.key)
        if os.path.exists(pid_file):
            os.remove(pid_file)
        self.log.info("stopped llm-d-inference-sim for pod %s", sim.key)
        if delete_objects:
            namespace, name = sim.key.split("/", 1)
            for plural in ("portforwards", "logs"):
                self._delete(plural, namespace, name)

    def _write_state(self):
        state = {"pods": {
            key: {
                "uid": sim.uid,
                "pid": sim.process.pid,
                "port": sim.port,
                "forwarded_ports": forwarded_ports(sim.pod),
                "restarts": sim.restarts,
                "logs": sim.logs,
            } for key, sim in self.sims.items()
        }}
        if state != self.last_state:
            common.write_json_atomic(self.state_path, state)
            self.last_state = state


def _terminate_pid(pid, grace):
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not common.pid_alive(pid) or _is_zombie(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def state_path(lab_dir):
    return os.path.join(lab_dir, "simulators", "model_servers.json")


def describe(lab_dir):
    """Lines for `lab.sh status`: each pod's simulator, pid, port and ports."""
    pods = common.read_json(state_path(lab_dir), {}).get("pods") or {}
    lines = ["  model-server simulators: %d" % len(pods)]
    for key in sorted(pods):
        sim = pods[key]
        pid = sim.get("pid")
        alive = bool(pid) and common.pid_names_path(pid, lab_dir)
        lines.append("    %-48s pid %-7s %-7s 127.0.0.1:%s <- pod ports %s" % (
            key, pid, "running" if alive else "EXITED", sim.get("port"),
            ",".join(str(p) for p in sim.get("forwarded_ports") or []) or "all"))
    healthy = all(common.pid_names_path(s.get("pid") or 0, lab_dir) for s in pods.values())
    return lines, healthy
