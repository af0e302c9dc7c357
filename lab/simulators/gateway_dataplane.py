"""Gateway data-plane simulator: the lab's stand-in for Envoy + the EPP.

LAB-ONLY SIMULATOR. It is never used outside the local lab. The lab runs a
real kube-apiserver and real llm-d-inference-sim processes, but no Envoy,
Istio proxy or endpoint picker can run there. This module serves HTTP for
every Istio-class Gateway that has a Running gateway pod, and routes each
request the way Envoy (programmed by Istio for the Gateway API Inference
Extension) and the EPP would, from the live cluster objects:

    HTTPRoute match -> InferencePool -> EPP Service reachable? -> EPP body
    checks -> ready pods of the pool -> EPP scheduling profile -> pod's
    simulator (through the pod's kwok PortForward target)

including the failures the real stack shows (404 without a route, 500 for a
missing pool, 503 when the EPP or the pods are gone, connection failures for
a wrong target port). `kubectl port-forward svc/<gateway>-istio 8000:80`
reaches it through a kwok PortForward object on each gateway pod; the EPP's
JSON log lines and an Envoy-style access log are served by kwok Logs objects,
so `kubectl logs` shows them.

The decisions are pure functions in dataplane_routing.py, dataplane_epp.py and
dataplane_epplog.py; this module is the thin shell: kube reads, listeners,
forwarding, files and the kwok objects. lab/simulators/run.py calls
Controller.sync() about once a second and Controller.close() on shutdown.
"""

import datetime
import http.client
import http.server
import json
import logging
import os
import random
import socket
import threading
import time
import uuid

from kubernetes import client as kube_client

from . import common
from . import dataplane_epp as epp
from . import dataplane_epplog as epplog
from . import dataplane_request
from . import dataplane_routing as routing

KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
KWOK_PLURALS = {"PortForward": "portforwards", "Logs": "logs"}
LISTED_CUSTOM = (
    ("gateway_classes", "gateway.networking.k8s.io", "v1", "gatewayclasses"),
    ("gateways", "gateway.networking.k8s.io", "v1", "gateways"),
    ("routes", "gateway.networking.k8s.io", "v1", "httproutes"),
    ("reference_grants", "gateway.networking.k8s.io", "v1beta1", "referencegrants"),
    ("pools_v1", routing.POOL_GROUP_V1, "v1", "inferencepools"),
    ("pools_v1alpha2", routing.POOL_GROUP_V1ALPHA2, "v1alpha2", "inferencepools"),
    ("portforwards", KWOK_GROUP, KWOK_VERSION, "portforwards"),
    ("kwok_logs", KWOK_GROUP, KWOK_VERSION, "logs"),
)
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization", "expect", "content-length",
}
EPP_RESPONSE_HEADER = ("x-went-into-resp-headers", "true")
USAGE_CAPTURE_BYTES = 256 * 1024
METRICS_INTERVAL_S = 1.0
API_TIMEOUT_S = 10


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _zap_ts(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller(object):
    """Serves every Istio-class Gateway of the lab; see the module docstring."""

    def __init__(self, api_client, lab_dir, bin_dir, log):
        self._api = api_client
        self._core = kube_client.CoreV1Api(api_client)
        self._custom = kube_client.CustomObjectsApi(api_client)
        del bin_dir  # part of the supervisor's interface; the data plane runs no lab tool
        self._log_dir = os.path.join(lab_dir, "logs")
        self._log = log or logging.getLogger(__name__)
        self._view = routing.build_view({})
        self._listeners = {}
        self._metrics = {}
        self._rng = random.Random()
        self._sched_lock = threading.Lock()
        self._epp_states = {}
        self._configs = {}
        self._announced = set()
        self._foreign_reported = set()
        self._files = {}
        self._files_lock = threading.Lock()
        self._stop = threading.Event()
        self._scraper = threading.Thread(target=self._scrape_loop, name="dataplane-metrics", daemon=True)
        self._scraper.start()

    # --- the supervisor's interface -------------------------------------------

    def sync(self):
        raw = self._read_cluster()
        view = routing.build_view(raw)
        self._view = view
        self._sync_listeners(view)
        ports = {key: listener.port for key, listener in self._listeners.items()}
        wanted = routing.desired_objects(view, ports, self._log_dir)
        existing = {}
        for kind, items in (("PortForward", raw["portforwards"]), ("Logs", raw["kwok_logs"])):
            for obj in items:
                existing[(kind,) + routing.obj_key(obj)] = obj
        self._apply_objects(routing.object_actions(wanted, existing))
        self._announce_epp_configs(view)
        live = set(routing.obj_key(p) for p in view["pods"])
        with self._sched_lock:
            for state in self._epp_states.values():
                state.prefix.forget_missing(set("%s/%s" % key for key in live))
        self._announced = set(marker for marker in self._announced if marker[:2] in live)
        with self._files_lock:
            for path, (pod_key, handle) in list(self._files.items()):
                if pod_key not in live:
                    handle.close()
                    del self._files[path]

    def close(self):
        self._stop.set()
        for key in list(self._listeners):
            self._listeners.pop(key).close()
        self._scraper.join(timeout=5)
        for kind, plural in KWOK_PLURALS.items():
            try:
                items = self._list_custom(KWOK_GROUP, KWOK_VERSION, plural)
            except (kube_client.exceptions.ApiException, OSError) as exc:
                self._log.warning("gateway dataplane: cannot list %s on close: %s", plural, exc)
                continue
            for obj in items:
                if routing.is_managed(obj):
                    self._delete_object((kind,) + routing.obj_key(obj))
        with self._files_lock:
            for _pod_key, handle in self._files.values():
                handle.close()
            self._files.clear()

    # --- cluster reads and owned objects ---------------------------------------

    def _list_custom(self, group, version, plural):
        try:
            resp = self._custom.list_cluster_custom_object(
                group, version, plural, _preload_content=False, _request_timeout=API_TIMEOUT_S)
        except kube_client.exceptions.ApiException as exc:
            if exc.status == 404:  # CRD not installed (yet)
                return []
            raise
        return json.loads(resp.data).get("items") or []

    def _read_cluster(self):
        raw = {}
        for name, group, version, plural in LISTED_CUSTOM:
            raw[name] = self._list_custom(group, version, plural)
        for name, call in (
            ("pods", self._core.list_pod_for_all_namespaces),
            ("services", self._core.list_service_for_all_namespaces),
            ("configmaps", self._core.list_config_map_for_all_namespaces),
        ):
            resp = call(_preload_content=False, _request_timeout=API_TIMEOUT_S)
            raw[name] = json.loads(resp.data).get("items") or []
        return raw

    def _apply_objects(self, actions):
        for key, spec in actions["create"]:
            body = self._object_body(key, spec)
            try:
                self._custom.create_namespaced_custom_object(
                    KWOK_GROUP, KWOK_VERSION, key[1], KWOK_PLURALS[key[0]], body, _request_timeout=API_TIMEOUT_S)
                self._log.info("gateway dataplane: created %s %s/%s", *key)
            except kube_client.exceptions.ApiException as exc:
                if not common.is_conflict(exc):
                    self._log.warning("gateway dataplane: cannot create %s %s/%s: %s", key[0], key[1], key[2], exc.reason)
        for key, spec in actions["replace"]:
            patch = {"spec": spec}
            try:
                self._custom.patch_namespaced_custom_object(
                    KWOK_GROUP, KWOK_VERSION, key[1], KWOK_PLURALS[key[0]], key[2], patch,
                    _request_timeout=API_TIMEOUT_S)
                self._log.info("gateway dataplane: updated %s %s/%s", *key)
            except kube_client.exceptions.ApiException as exc:
                self._log.warning("gateway dataplane: cannot update %s %s/%s: %s", key[0], key[1], key[2], exc.reason)
        for key in actions["delete"]:
            self._delete_object(key)
        for key in actions["foreign"]:
            if key not in self._foreign_reported:
                self._foreign_reported.add(key)
                self._log.warning("gateway dataplane: %s %s/%s exists and is not ours; leaving it alone", *key)

    def _object_body(self, key, spec):
        return {
            "apiVersion": "%s/%s" % (KWOK_GROUP, KWOK_VERSION),
            "kind": key[0],
            "metadata": {"name": key[2], "namespace": key[1], "labels": {routing.MANAGED_BY[0]: routing.MANAGED_BY[1]}},
            "spec": spec,
        }

    def _delete_object(self, key):
        try:
            self._custom.delete_namespaced_custom_object(
                KWOK_GROUP, KWOK_VERSION, key[1], KWOK_PLURALS[key[0]], key[2], _request_timeout=API_TIMEOUT_S)
            self._log.info("gateway dataplane: deleted %s %s/%s", *key)
        except kube_client.exceptions.ApiException as exc:
            if not common.is_not_found(exc):
                self._log.warning("gateway dataplane: cannot delete %s %s/%s: %s", key[0], key[1], key[2], exc.reason)
        except OSError as exc:
            self._log.warning("gateway dataplane: cannot delete %s %s/%s: %s", key[0], key[1], key[2], exc)

    def _sync_listeners(self, view):
        served = set(routing.served_gateways(view))
        for key in list(self._listeners):
            if key not in served:
                self._listeners.pop(key).close()
                self._log.info("gateway dataplane: stopped serving gateway %s/%s", *key)
        for key in sorted(served - set(self._listeners)):
            listener = _GatewayListener(self, key)
            self._listeners[key] = listener
            self._log.info("gateway dataplane: serving gateway %s/%s on 127.0.0.1:%d", key[0], key[1], listener.port)

    # --- EPP configuration, state and metrics -----------------------------------

    def _parsed_config(self, text):
        parsed = self._configs.get(text)
        if parsed is None:
            parsed = epp.parse_config(text)
            if len(self._configs) > 32:
                self._configs.clear()
            self._configs[text] = parsed
        return parsed

    def _announce_epp_configs(self, view):
        """Once per EPP pod and configuration: the start-up lines a real EPP
        writes about its configuration (or why it would not start)."""
        for pods in routing.epp_pods_by_pool(view).values():
            for pod in pods:
                namespace, name = routing.obj_key(pod)
                source = epp.config_source(pod, view["configmaps"])
                marker = (namespace, name, source["text"], source["error"])
                if marker in self._announced:
                    continue
                self._announced.add(marker)
                events = []
                config, error = dataplane_request.load_epp_config(view, pod, self._parsed_config)
                if error:
                    events.append(("error", "failed to load the configuration", {"error": error}))
                    self._log.warning("gateway dataplane: EPP %s/%s cannot start: %s", namespace, name, error)
                else:
                    events.append(("info", "loaded configuration from file/text successfully", {
                        "source": source["source"],
                        "profiles": [p["name"] for p in config["profiles"]],
                        "profileHandler": config["handler"]["type"],
                    }))
                    for plugin_name in config["unknown"]:
                        plugin_type = config["plugins"][plugin_name]["type"]
                        events.append(("info", "plugin not simulated by the lab EPP, ignored", {
                            "plugin": plugin_name, "type": plugin_type}))
                        self._log.info("gateway dataplane: EPP %s/%s: plugin %s (%s) is not simulated; ignored",
                                       namespace, name, plugin_name, plugin_type)
                self._write_epp(namespace, name, events)

    def _scrape_loop(self):
        """Refresh the EPP's view of pool pods' /metrics, like its data layer."""
        while not self._stop.wait(METRICS_INTERVAL_S):
            view = self._view
            fresh = {}
            for pool in list(view["pools"].values()):
                if not pool["target_ports"]:
                    continue
                for pod in routing.pool_candidates(pool, view["pods"]):
                    target = routing.forward_target(
                        view["portforwards"].get(routing.obj_key(pod)), pool["target_ports"][0])
                    if target is None:
                        continue
                    key = "%s/%s" % routing.obj_key(pod)
                    text = _http_get_text(target, "/metrics", timeout=0.5)
                    if text is not None:
                        fresh[key] = epp.parse_sim_metrics(text, _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            self._metrics = fresh

    # --- log files ---------------------------------------------------------------

    def _file(self, namespace, pod, container):
        path = routing.container_log_path(self._log_dir, namespace, pod, container)
        with self._files_lock:
            if path not in self._files:
                self._files[path] = ((namespace, pod), common.CriLogFile(path))
            return self._files[path][1]

    def _write_epp(self, namespace, pod, events):
        handle = self._file(namespace, pod, "epp")
        ts = _zap_ts(_now())
        for level, msg, fields in events:
            handle.write("stdout", epplog.epp_line(level, msg, fields, ts))

    def _write_access(self, gateway_key, entry):
        gateway = self._view["gateways"].get(gateway_key)
        pods = routing.gateway_pods(gateway, self._view["pods"]) if gateway else []
        if pods:
            namespace, name = routing.obj_key(pods[0])
            self._file(namespace, name, "istio-proxy").write("stdout", epplog.access_log_line(entry))

    # --- one request ---------------------------------------------------------------

    def handle(self, gateway_key, exchange):
        """Route one request received on a gateway listener."""
        exchange.headers.setdefault("x-request-id", str(uuid.uuid4()))
        with self._sched_lock:
            decision = dataplane_request.decide(
                self._view, gateway_key, exchange.method, exchange.path, exchange.headers, exchange.body,
                self._epp_states, self._metrics, self._rng, self._parsed_config)
        if decision["epp_pod"] and decision["events"]:
            self._write_epp(decision["epp_pod"][0], decision["epp_pod"][1], decision["events"])
        if decision["action"] == "reject":
            return self._reject(gateway_key, exchange, decision["decision"])
        try:
            return self._forward(gateway_key, exchange, decision)
        finally:
            if decision["track"]:
                pool_key, endpoint_key = decision["track"]
                with self._sched_lock:
                    self._epp_states[pool_key].end(endpoint_key)

    def _reject(self, gateway_key, exchange, decision):
        body = decision["body"].encode("utf-8")
        headers = [("content-type", "text/plain")] if body else []
        exchange.send_head(decision["status"], headers + [("server", "istio-envoy")], len(body))
        exchange.write(body)
        self._log.debug("gateway dataplane: %s %s -> %d (%s)", exchange.method, exchange.path,
                        decision["status"], decision["reason"])
        self._write_access(gateway_key, exchange.access_entry(
            decision["status"], decision["flag"], decision["detail"], len(body), upstream=None, upstream_ms=None))

    def _forward(self, gateway_key, exchange, decision):
        """Send the request to the pod's simulator and stream the answer back."""
        target, port, address = decision["target"], decision["port"], decision["address"]
        headers = dict(exchange.headers)
        headers.update(decision["headers"])
        headers["x-forwarded-proto"] = "http"
        started = time.time()
        timeout = decision["timeout_s"]
        upstream = "%s:%s" % (target["address"], port)
        conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout or 600)
        try:
            try:
                conn.request(exchange.method, exchange.path, body=exchange.body or None,
                             headers={k: v for k, v in headers.items() if k not in HOP_BY_HOP})
                response = conn.getresponse()
            except socket.timeout:
                return self._reject(gateway_key, exchange, routing.reject(
                    504, "upstream request timeout", "UT", "response_timeout", "route timeout %ss" % timeout))
            except (OSError, http.client.HTTPException) as exc:
                return self._reject(gateway_key, exchange, routing.reject(
                    503, routing.BODY_CONNECT_FAILURE + ", transport failure reason: %s" % exc, "UF",
                    "upstream_reset_before_response_started{connection_failure}",
                    "cannot reach %s at %s:%s: %s" % (target["key"], address[0], address[1], exc)))
            upstream_ms = int((time.time() - started) * 1000)
            out_headers = [(k.lower(), v) for k, v in response.getheaders()
                           if k.lower() not in HOP_BY_HOP and k.lower() != "server"]
            out_headers.append(("server", "istio-envoy"))
            out_headers.append(("x-envoy-upstream-service-time", str(upstream_ms)))
            if decision["via_epp"]:
                out_headers.append(EPP_RESPONSE_HEADER)
            length = response.getheader("content-length")
            length = int(length) if length and length.isdigit() else None
            if length is None and exchange.handler.request_version != "HTTP/1.1":
                # No chunked encoding for HTTP/1.0 clients, and kubectl
                # port-forward does not pass on a server-side close: buffer.
                parts = []
                captured, sent, complete = self._stream(parts.append, response, conn, started, timeout)
                body = b"".join(parts)
                exchange.send_head(response.status, out_headers, len(body))
                exchange.write(body)
            else:
                exchange.send_head(response.status, out_headers, length)
                captured, sent, complete = self._stream(exchange.write, response, conn, started, timeout)
                exchange.finish_body(complete)
        finally:
            conn.close()
        if decision["track"]:
            usage = epplog.parse_usage(captured, response.getheader("content-type", ""))
            self._write_epp(decision["epp_pod"][0], decision["epp_pod"][1], epplog.response_events(
                exchange.headers["x-request-id"], target, response.status, usage, decision["prefix"]))
        pool = decision["pool"]
        self._write_access(gateway_key, exchange.access_entry(
            response.status, "-" if complete else "UT", "via_upstream" if complete else "response_timeout", sent,
            upstream=upstream, upstream_ms=upstream_ms,
            cluster="outbound|%s||%s.%s.svc.cluster.local" % (port, pool["name"], pool["namespace"])))

    def _stream(self, write, response, conn, started, timeout):
        """Copy the body chunk by chunk as it arrives (SSE stays incremental).
        Returns (tail of the body for usage parsing, bytes sent, complete)."""
        captured, sent = b"", 0
        while True:
            if timeout:
                remaining = timeout - (time.time() - started)
                if remaining <= 0:
                    return captured, sent, False
                if conn.sock is not None:
                    conn.sock.settimeout(remaining)
            try:
                chunk = response.read1(65536)
            except socket.timeout:
                return captured, sent, False
            except (OSError, http.client.HTTPException):
                return captured, sent, False
            if not chunk:
                return captured, sent, True
            if write(chunk) is False:
                return captured, sent, False
            sent += len(chunk)
            captured = (captured + chunk)[-USAGE_CAPTURE_BYTES:]


def _http_get_text(address, path, timeout):
    conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return body.decode("utf-8", "replace") if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class _Exchange(object):
    """One HTTP request/response on a gateway listener, over the handler."""

    def __init__(self, handler, body):
        self.handler = handler
        self.method = handler.command
        self.path = handler.path
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.body = body
        self.started = time.time()
        self.start_text = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.chunked = False
        self.status = None

    def send_head(self, status, headers, length):
        """Status line and headers; chunked when the length is unknown and
        the client speaks HTTP/1.1, else the connection closes at the end."""
        handler = self.handler
        self.status = status
        handler.send_response_only(status)
        if not any(name == "date" for name, _value in headers):
            handler.send_header("date", handler.date_time_string())
        for name, value in headers:
            handler.send_header(name, value)
        if length is not None:
            handler.send_header("content-length", str(length))
        elif handler.request_version == "HTTP/1.1":
            self.chunked = True
            handler.send_header("transfer-encoding", "chunked")
        else:
            handler.close_connection = True
        handler.end_headers()

    def write(self, data):
        if not data:
            return True
        try:
            if self.chunked:
                self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.handler.wfile.write(data)
            self.handler.wfile.flush()
            return True
        except OSError:
            self.handler.close_connection = True
            return False

    def finish_body(self, complete):
        if not complete:
            # Like Envoy resetting the stream: no terminating chunk.
            self.handler.close_connection = True
            return
        if self.chunked:
            try:
                self.handler.wfile.write(b"0\r\n\r\n")
                self.handler.wfile.flush()
            except OSError:
                self.handler.close_connection = True

    def access_entry(self, status, flag, detail, bytes_out, upstream, upstream_ms, cluster=None):
        return {
            "start": self.start_text,
            "method": self.method,
            "path": self.path,
            "protocol": self.handler.request_version,
            "status": status,
            "flag": flag,
            "detail": detail,
            "bytes_in": len(self.body or b""),
            "bytes_out": bytes_out,
            "duration_ms": int((time.time() - self.started) * 1000),
            "upstream_ms": upstream_ms,
            "user_agent": self.headers.get("user-agent"),
            "request_id": self.headers.get("x-request-id"),
            "authority": self.headers.get("host"),
            "upstream": upstream,
            "cluster": cluster,
        }


def _read_body(handler):
    """The request body, from Content-Length or a chunked transfer."""
    if "chunked" in (handler.headers.get("transfer-encoding") or "").lower():
        parts = []
        while True:
            size_line = handler.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline(1024)
    length = handler.headers.get("content-length")
    return handler.rfile.read(int(length)) if length and length.isdigit() else b""


class _GatewayListener(object):
    """A ThreadingHTTPServer on 127.0.0.1:<free port> for one Gateway."""

    def __init__(self, controller, gateway_key):
        def serve(handler):
            try:
                body = _read_body(handler)
            except (ValueError, OSError):
                handler.close_connection = True
                handler.send_error(400, "bad request body")
                return
            exchange = _Exchange(handler, body)
            try:
                controller.handle(gateway_key, exchange)
            except Exception:  # the server boundary: log it, answer like Envoy would
                controller._log.exception("gateway dataplane: request %s %s failed", handler.command, handler.path)
                handler.close_connection = True
                if exchange.status is None:
                    exchange.send_head(500, [("server", "istio-envoy")], 0)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "istio-envoy"
            sys_version = ""

            def do_request(self):
                serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_request

            def log_message(self, fmt, *args):
                controller._log.debug("gateway dataplane %s/%s: " + fmt, gateway_key[0], gateway_key[1], *args)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="gateway-%s-%s" % gateway_key, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
