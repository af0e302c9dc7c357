# This file is for internal use by the llmd.stack collection only.
"""In-process port-forward through the Kubernetes API (no `kubectl port-forward &`).

A Service is resolved to one Ready pod behind its selector and the service
port to that pod's container port (named or numeric), the way kubectl does.
The forward is a listener on 127.0.0.1 that pipes each accepted connection
into its own pods/portforward websocket, so any HTTP client (streaming too)
can use a plain http://127.0.0.1:PORT URL. The planning functions at the top
are pure; the rest is the I/O.
"""

import json
import select
import socket
import threading
import traceback

try:
    from kubernetes.client import ApiClient, CoreV1Api
    from kubernetes.stream import portforward
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.llmd.stack.plugins.module_utils._probe_core import port_number

PIPE_BUFFER = 65536


class PortForwardError(Exception):
    """The forward cannot be set up; the message says why and names the object."""


# ------------------------------------------------------------------ planning

def selector_string(match_labels):
    return ",".join("%s=%s" % (key, match_labels[key]) for key in sorted(match_labels))


def find_service_port(service, port):
    """Return (spec.ports entry, error) for a port number or name."""
    name = _name(service)
    ports = (service.get("spec") or {}).get("ports") or []
    number = port_number(port)
    for entry in ports:
        if (number is not None and entry.get("port") == number) or (number is None and entry.get("name") == port):
            return entry, None
    offered = ", ".join("%s(%s)" % (p.get("port"), p.get("name")) if p.get("name") else str(p.get("port")) for p in ports)
    return None, "Service %s has no port %s; it offers: %s" % (name, port, offered or "none")


def pod_is_ready(pod):
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if metadata.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def container_port(pod, port):
    """Return (number, error) for a container port number or name in a pod."""
    number = port_number(port)
    if number is not None:
        return number, None
    spec = pod.get("spec") or {}
    # Sidecars (init containers that keep running) serve ports too: routing-proxy does.
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for entry in container.get("ports") or []:
            if entry.get("name") == port:
                return entry.get("containerPort"), None
    return None, "pod %s has no container port named %r" % (_name(pod), port)


def plan_service(service, pods, port):
    """Pick a Ready pod behind the Service and map the service port to it."""
    entry, error = find_service_port(service, port)
    if error:
        return None, error
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None, "Service %s has no selector, so there is no pod to forward to" % _name(service)
    ready = sorted((p for p in pods if pod_is_ready(p)), key=lambda p: (p.get("metadata") or {}).get("name") or "")
    if not ready:
        return None, "no Ready pod matches the selector %s of Service %s (%d pods match)" % (
            selector_string(selector), _name(service), len(pods))
    pod = ready[0]
    target = entry.get("targetPort", entry.get("port"))
    remote, error = container_port(pod, target)
    if error:
        return None, error
    return _plan(pod, remote, {"service": (service.get("metadata") or {}).get("name"), "service_port": entry.get("port")}), None


def plan_pod(pod, port):
    if not pod_is_ready(pod):
        return None, "pod %s is not Ready" % _name(pod)
    remote, error = container_port(pod, port)
    if error:
        return None, error
    return _plan(pod, remote, {}), None


def _plan(pod, remote_port, extra):
    metadata = pod.get("metadata") or {}
    plan = {"pod": metadata.get("name"), "namespace": metadata.get("namespace"), "remote_port": remote_port}
    plan.update(extra)
    return plan


def _name(obj):
    metadata = obj.get("metadata") or {}
    return "%s/%s" % (metadata.get("namespace"), metadata.get("name"))


# ------------------------------------------------------------------------ I/O

def core_api(auth):
    """CoreV1Api built with kubernetes.core's auth handling (options, K8S_AUTH_* env, kubeconfig)."""
    # Imported here: kubernetes.core's client module is only needed for port_forward.
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    try:
        k8s = get_api_client(**auth)
    except Exception as err:  # pylint: disable=broad-except
        raise PortForwardError("cannot build a Kubernetes client: %s" % err)
    return CoreV1Api(k8s.client.client)


def resolve(api, namespace, service=None, pod=None, port=None):
    """Return the plan {pod, namespace, remote_port, ...} for a Service or a pod."""
    if service:
        svc = _read(api.read_namespaced_service, "Service %s/%s" % (namespace, service), service, namespace)
        selector = (svc.get("spec") or {}).get("selector") or {}
        pods = []
        if selector:
            listing = _read(api.list_namespaced_pod, "pods of Service %s/%s" % (namespace, service), namespace,
                            label_selector=selector_string(selector))
            pods = listing.get("items") or []
        plan, error = plan_service(svc, pods, port)
    else:
        target = _read(api.read_namespaced_pod, "pod %s/%s" % (namespace, pod), pod, namespace)
        plan, error = plan_pod(target, port)
    if error:
        raise PortForwardError(error)
    return plan


def open_forward(module, auth, namespace, service=None, pod=None, port=None):
    """Resolve the target and start forwarding: (PortForwarder, plan with local_port).
    Fails the module when the kubernetes library is missing; raises
    PortForwardError when the target cannot be reached. The caller closes it."""
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes", reason="for port_forward"),
                         exception=KUBERNETES_IMPORT_ERROR)
    api = core_api(auth)
    plan = resolve(api, namespace, service=service, pod=pod, port=port)
    forwarder = PortForwarder(api, plan["namespace"], plan["pod"], plan["remote_port"])
    plan["local_port"] = forwarder.start()
    return forwarder, plan


def _read(method, what, *args, **kwargs):
    try:
        response = method(*args, _preload_content=False, **kwargs)
        return json.loads(response.data)
    except Exception as err:  # pylint: disable=broad-except
        status = getattr(err, "status", None)
        if status == 404:
            raise PortForwardError("%s not found" % what)
        if status == 403:
            raise PortForwardError("reading %s is forbidden for these credentials" % what)
        raise PortForwardError("cannot read %s: %s" % (what, str(err).splitlines()[0] if str(err) else err))


class PortForwarder(object):
    """A 127.0.0.1 listener whose connections are piped into pod port-forwards."""

    def __init__(self, api, namespace, pod, remote_port):
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.remote_port = int(remote_port)
        self.local_port = None
        self._listener = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets = set()
        self._last_error = None

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.local_port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="llmd-portforward-accept", daemon=True).start()
        return self.local_port

    def last_error(self):
        with self._lock:
            return self._last_error

    def close(self):
        self._closed.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _note(self, message):
        with self._lock:
            self._last_error = message

    def _track(self, sock, add=True):
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _accept_loop(self):
        while not self._closed.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="llmd-portforward-pipe", daemon=True).start()

    def _serve(self, conn):
        self._track(conn)
        remote = None
        forward = None
        api = _own_client(self.api)
        try:
            try:
                forward = portforward(api.connect_get_namespaced_pod_portforward, self.pod, self.namespace,
                                      ports=str(self.remote_port))
                remote = forward.socket(self.remote_port)
            except Exception as err:  # pylint: disable=broad-except
                self._note("port-forward to pod %s/%s port %d failed: %s" % (
                    self.namespace, self.pod, self.remote_port, _first_line(err)))
                return
            self._track(remote)
            _pipe(conn, remote, self._closed)
            error = forward.error(self.remote_port)
            if error:
                self._note("pod %s/%s port %d: %s" % (self.namespace, self.pod, self.remote_port, error.strip()))
        finally:
            for sock in (conn, remote):
                if sock is not None:
                    self._track(sock, add=False)
                    _close(sock)
            api.api_client.close()


def _own_client(api):
    """A CoreV1Api on a new ApiClient with the same configuration and headers.

    kubernetes.stream.portforward swaps call_api on the client it is given and
    puts back what it found, so two forwards sharing one client can leave the
    websocket variant in place for every later API call.
    """
    source = api.api_client
    client = ApiClient(source.configuration)
    for header, value in source.default_headers.items():
        client.default_headers[header] = value
    return CoreV1Api(client)


def _pipe(left, right, closed):
    """Copy bytes both ways until one side ends or the forwarder closes."""
    while not closed.is_set():
        try:
            readable = select.select([left, right], [], [], 0.5)[0]
        except (OSError, ValueError):
            return
        for source in readable:
            target = right if source is left else left
            try:
                data = source.recv(PIPE_BUFFER)
                if not data:
                    return
                target.sendall(data)
            except OSError:
                return


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _first_line(err):
    text = str(err).strip() or err.__class__.__name__
    return text.splitlines()[0]
