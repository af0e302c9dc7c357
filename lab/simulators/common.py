"""Helpers shared by the lab simulators: kube client, ports, processes, logs.

Lab-only code (see lab/simulators/__init__.py).
"""
import datetime
import json
import os
import socket
import tempfile
import threading

from kubernetes import client as kube_client
from kubernetes import config as kube_config


def api_client(kubeconfig):
    """A kubernetes ApiClient for the lab's kubeconfig file."""
    return kube_config.new_client_from_config(config_file=kubeconfig)


def free_port():
    """A TCP port nobody listens on, on any address.

    llm-d-inference-sim listens on every address (it has no bind flag), so the
    port must be free on the wildcard address, not only on 127.0.0.1.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_cmdline(pid):
    """The argv of a process, or [] when it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def pid_names_path(pid, path):
    """Whether a live process has `path` (a directory) in its command line.

    Pid files outlive their processes and pids get reused: a pid only counts as
    ours while its command line still names our lab directory.
    """
    prefix = path.rstrip("/") + "/"
    return any(prefix in arg for arg in pid_cmdline(pid))


def read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def write_json_atomic(path, data):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path, default):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def cri_log_line(stream, text, now=None):
    """One container log line in the CRI format kubelet writes and kwok reads:
    `<RFC3339Nano time> <stdout|stderr> F <text>`."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "%s %s F %s\n" % (stamp, stream, text.rstrip("\r\n"))


class CriLogFile:
    """An append-only container log file in CRI format, shared by threads."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, stream, text):
        with self._lock:
            if self._handle.closed:
                return
            self._handle.write(cri_log_line(stream, text))
            self._handle.flush()

    def pump(self, pipe, stream):
        """Copy a child's stdout/stderr into this file, line by line, in a thread."""

        def copy():
            with pipe:
                for raw in iter(pipe.readline, b""):
                    self.write(stream, raw.decode("utf-8", "replace"))

        thread = threading.Thread(target=copy, name="log-%s" % stream, daemon=True)
        thread.start()
        return thread

    def close(self):
        with self._lock:
            self._handle.close()


def is_not_found(exc):
    return isinstance(exc, kube_client.exceptions.ApiException) and exc.status == 404


def is_conflict(exc):
    return isinstance(exc, kube_client.exceptions.ApiException) and exc.status == 409
