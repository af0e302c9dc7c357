"""Fixtures for llmd_inference_probe against real servers.

- `sim`: starts real llm-d-inference-sim processes (from the lab tools) on free
  ports, waits for /v1/models, kills them afterwards.
- `tiny_server`: a local HTTP server whose handler a test writes (bad JSON,
  500/503 bodies, a server slower than the timeout...).
- `round_robin` / `tls_proxy`: TCP fronts for real simulators, one connection
  to the next backend each time / TLS with a self-signed certificate.
- `probe` / `ansible_probe`: run the module in-process or through the
  `ansible` CLI.
- `running_lab`: the default lab's kubeconfig, or a skip when no lab runs.
"""
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from processes import stop_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SIM_START_TIMEOUT = 20


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tools_bin():
    return subprocess.run(["bash", os.path.join(REPO, "lab", "build-tools.sh"), "--print-bin"],
                          check=True, capture_output=True, text=True).stdout.strip()


class Sim(object):
    """One llm-d-inference-sim process."""

    def __init__(self, binary, log_dir, model="probe-model", mode="echo", pod=None, namespace="probe-tests",
                 port=None, flags=()):
        self.model = model
        self.pod = pod
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ)
        if pod:
            env.update(POD_NAME=pod, POD_NAMESPACE=namespace)
        self.log_path = os.path.join(log_dir, "sim-%d.log" % self.port)
        self.command = [binary, "--model", model, "--port", str(self.port), "--mode", mode,
                        "--force-dummy-tokenizer"] + list(flags)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=SIM_START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url + "/v1/models", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        with open(self.log_path) as log:
            pytest.fail("llm-d-inference-sim did not serve /v1/models within %ss: %s\n%s" % (
                timeout, " ".join(self.command), log.read()[-2000:]))

    def stop(self):
        stop_process(self.process)


@pytest.fixture(scope="session")
def sim_binary():
    path = os.path.join(tools_bin(), "llm-d-inference-sim")
    if not os.access(path, os.X_OK):
        pytest.fail("llm-d-inference-sim is missing at %s: run `bash lab/build-tools.sh`" % path)
    return path


@pytest.fixture
def sim(sim_binary, tmp_path):
    """Factory: sim(model=..., mode=..., pod=..., flags=[...], wait=True) -> Sim."""
    started = []

    def start(wait=True, **kwargs):
        process = Sim(sim_binary, str(tmp_path), **kwargs)
        started.append(process)
        return process.wait_ready() if wait else process

    yield start
    for process in started:
        process.stop()


# ---------------------------------------------------------------- tiny servers

class _Server(object):
    def __init__(self, server):
        self.server = server
        self.port = server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiny_server():
    """Factory: tiny_server(handle) where handle(handler) answers one request."""
    servers = []

    def start(handle):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                handle(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        servers.append(_Server(server))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _reply(handler, status, body, content_type="application/json", headers=None, read_request=True):
    """Send a complete answer from a tiny_server handler (reading the request body first)."""
    data = body.encode() if isinstance(body, str) else body
    length = int(handler.headers.get("Content-Length") or 0)
    if length and read_request:
        handler.rfile.read(length)
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Connection", "close")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def reply():
    """reply(handler, status, body, content_type=..., headers=..., read_request=True) for tiny_server handlers."""
    return _reply


# ------------------------------------------------------------------ TCP fronts

class TcpFront(object):
    """Accepts on 127.0.0.1 and pipes each connection to a backend chosen per connection."""

    def __init__(self, backends, wrap=None):
        self._next = itertools.cycle(backends)
        self._wrap = wrap
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                conn, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, next(self._next)), daemon=True).start()

    def _serve(self, conn, backend_port):
        try:
            if self._wrap:
                conn = self._wrap(conn)
            upstream = socket.create_connection(("127.0.0.1", backend_port))
        except (OSError, ssl.SSLError):
            conn.close()
            return
        pumps = [threading.Thread(target=_pump, args=(a, b), daemon=True) for a, b in ((conn, upstream), (upstream, conn))]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        conn.close()
        upstream.close()

    def close(self):
        self._closed = True
        self._listener.close()


def _pump(source, target):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except (OSError, ssl.SSLError):
        pass
    for sock in (source, target):
        with contextlib.suppress(OSError, ssl.SSLError):
            sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def round_robin():
    fronts = []

    def start(*sims):
        front = TcpFront([s.port for s in sims])
        fronts.append(front)
        return "http://127.0.0.1:%d" % front.port

    yield start
    for front in fronts:
        front.close()


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory):
    """(cert_path, key_path) of a self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmd-probe-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_proxy(self_signed):
    """Factory: tls_proxy(sim) -> https URL that terminates TLS in front of a real simulator."""
    fronts = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)

    def start(backend):
        front = TcpFront([backend.port], wrap=lambda conn: context.wrap_socket(conn, server_side=True))
        fronts.append(front)
        return "https://127.0.0.1:%d" % front.port

    yield start
    for front in fronts:
        front.close()


# ------------------------------------------------------------ running the module

@pytest.fixture
def probe():
    """Run llmd_inference_probe in-process with args; return its result dict."""
    from ansible_collections.llmd.stack.plugins.modules import llmd_inference_probe as module

    from module_args import run_module

    def run(**args):
        return run_module(module.main, args)

    return run


@pytest.fixture
def ansible_probe():
    """Run the module through `ansible localhost -m` as a user would; return (rc, result dict)."""
    venv_bin = os.path.join(REPO, ".venv", "bin")

    def run(args):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="0",
                   PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
        done = subprocess.run([os.path.join(venv_bin, "ansible"), "localhost", "-m", "llmd.stack.llmd_inference_probe",
                               "-a", args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
        report = json.loads(done.stdout)
        return done.returncode, report["plays"][0]["tasks"][0]["hosts"]["localhost"]

    return run


# ------------------------------------------------------------------------ lab

@pytest.fixture(scope="session")
def running_lab():
    """The default lab when its API server answers; a skip otherwise (this suite never starts a lab)."""
    from kubernetes import client, config

    lab_dir = os.environ.get("LLMD_LAB_DIR") or os.path.join(REPO, ".lab")
    kubeconfig = os.path.join(lab_dir, "kubeconfig")
    if not os.path.exists(kubeconfig):
        pytest.skip("no lab at %s (start one with `make lab-up`)" % lab_dir)
    try:
        api = config.new_client_from_config(config_file=kubeconfig)
        client.VersionApi(api).get_code(_request_timeout=5)
        api.close()
    except Exception as err:  # pylint: disable=broad-except
        pytest.skip("the lab at %s is not running: %s" % (lab_dir, str(err).splitlines()[0]))
    return {"dir": lab_dir, "kubeconfig": kubeconfig}
