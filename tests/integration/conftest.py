"""Fixtures for tests against the local lab (a real kube-apiserver, kwok nodes,
real llm-d-inference-sim processes).

`lab` reuses the running lab ($LLMD_LAB_DIR, default <repo>/.lab) or starts it,
and stops it at the end only when this session started it.
"""
import os
import re
import socket
import subprocess
import time
import uuid

import pytest
import requests

from processes import stop_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
LAB_UP_TIMEOUT = 600
NOT_RUNNING = 3  # `lab.sh status` exit code when there is no lab at all


class Lab:
    """Where a lab lives and how to talk to it."""

    def __init__(self, lab_dir):
        self.dir = lab_dir
        self.kubeconfig = os.path.join(lab_dir, "kubeconfig")
        self.bin_dir = subprocess.run(
            ["bash", os.path.join(REPO, "lab", "build-tools.sh"), "--print-bin"],
            check=True, capture_output=True, text=True).stdout.strip()
        self.env = dict(os.environ, LLMD_LAB_DIR=lab_dir, KUBECONFIG=self.kubeconfig,
                        PATH=self.bin_dir + os.pathsep + os.environ.get("PATH", ""))

    def lab_sh(self, command, timeout=LAB_UP_TIMEOUT):
        return subprocess.run(["bash", LAB_SH, command], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def kubectl(self, *args, check=True, timeout=60):
        result = subprocess.run(["kubectl"] + list(args), env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError("kubectl %s failed (%d): %s"
                                 % (" ".join(args), result.returncode, result.stderr.strip()))
        return result


def pinned_versions():
    """lab/versions.env as a dict."""
    versions = {}
    with open(os.path.join(REPO, "lab", "versions.env")) as handle:
        for line in handle:
            match = re.match(r"^([A-Z_]+)=(\S+)", line)
            if match:
                versions[match.group(1)] = match.group(2)
    return versions


def wait_until(predicate, timeout, what, interval=0.5):
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def start_lab(lab):
    """Start `lab` unless it runs. True when this call started it from nothing."""
    status = lab.lab_sh("status", timeout=60)
    if status.returncode == 0:
        return False
    up = lab.lab_sh("up")
    if up.returncode != 0:
        pytest.fail("lab.sh up failed (%d):\n%s%s" % (up.returncode, up.stdout, up.stderr))
    return status.returncode == NOT_RUNNING


@pytest.fixture(scope="session")
def lab():
    lab = Lab(os.environ.get("LLMD_LAB_DIR") or os.path.join(REPO, ".lab"))
    started = start_lab(lab)
    yield lab
    if started:
        down = lab.lab_sh("down", timeout=120)
        assert down.returncode == 0, "lab.sh down failed:\n%s%s" % (down.stdout, down.stderr)


@pytest.fixture(scope="session")
def api_client(lab):
    from kubernetes import config

    client = config.new_client_from_config(config_file=lab.kubeconfig)
    yield client
    client.close()


@pytest.fixture(scope="session")
def dynamic_client(api_client):
    from kubernetes import dynamic

    return dynamic.DynamicClient(api_client)


@pytest.fixture()
def namespace(request, api_client):
    """A fresh namespace named after the test, deleted afterwards."""
    from kubernetes import client

    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = "t-%s-%s" % (slug, uuid.uuid4().hex[:5])
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": name, "labels": {"llmd.dev/test": "true"}}})
    wait_until(lambda: _has_default_service_account(core, name), 30,
               "the default service account in namespace %s" % name)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def _has_default_service_account(core, namespace):
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    """`wait_until(predicate, timeout, what)` for tests (see the function above)."""
    return wait_until


@pytest.fixture(scope="session", name="pinned_versions")
def pinned_versions_fixture():
    return pinned_versions()


@pytest.fixture(name="make_lab")
def make_lab_fixture():
    """`make_lab(dir)`: a Lab handle for a private lab (start it with .lab_sh("up"))."""
    return Lab


def free_local_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortForward:
    """`kubectl port-forward <target> <local>:<remote>` in the background, as a user would run it."""

    def __init__(self, lab, namespace, target, remote_port):
        self.port = free_local_port()
        self.process = subprocess.Popen(
            ["kubectl", "-n", namespace, "port-forward", target, "%d:%d" % (self.port, remote_port)],
            env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("Forwarding from"):
            self.close()
            pytest.fail("kubectl port-forward %s %d failed: %s" % (target, remote_port, line))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, **kwargs):
        return requests.get(self.url(path), timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path, body, **kwargs):
        return requests.post(self.url(path), json=body, timeout=kwargs.pop("timeout", 30), **kwargs)

    def close(self):
        stop_process(self.process)
        self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def port_forward(lab):
    """port_forward(namespace, target, remote_port) -> PortForward, stopped after the test."""
    opened = []

    def open_forward(namespace, target, remote_port):
        forward = PortForward(lab, namespace, target, remote_port)
        opened.append(forward)
        return forward

    yield open_forward
    for forward in opened:
        forward.close()
