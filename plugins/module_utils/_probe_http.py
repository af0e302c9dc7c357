# This file is for internal use by the llmd.stack collection only.
"""Thin I/O shell of llmd_inference_probe: send requests, time them, retry.

Sending goes through ansible.module_utils.urls (TLS options, client
certificates, proxies). Everything that decides something about an answer
lives in _probe_core.py; this file only records what happened on the wire.
"""

import errno
import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from http.client import HTTPException, RemoteDisconnected
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import Request

try:
    from ansible.module_utils.urls import make_context
except ImportError:  # ansible-core without make_context builds a context per request
    make_context = None

from ansible_collections.llmd.stack.plugins.module_utils import _probe_core as core

MAX_BODY_BYTES = 8 * 1024 * 1024
USER_AGENT = "llmd.stack-inference-probe"


class Sender(object):
    """Sends one probe request at a time (thread safe) to one base URL."""

    def __init__(self, base_url, timeout, headers=None, bearer_token=None, validate_certs=True,
                 ca_path=None, client_cert=None, client_key=None, use_proxy=True, diagnose=None):
        self.base_url = base_url
        self.timeout = timeout
        self.headers = headers or {}
        self.bearer_token = bearer_token
        self.request = _request(timeout, use_proxy, validate_certs, ca_path, client_cert, client_key)
        # Called on a connection-level failure; returns extra detail (the
        # port-forward's own error) or None.
        self.diagnose = diagnose

    def send(self, request):
        """Send {method, path, body, stream}; return a raw record for core.evaluate."""
        url = self.base_url + request["path"]
        body = request.get("body")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = core.build_headers(self.headers, self.bearer_token, has_body=data is not None)
        record = {"url": url, "stream": request.get("stream", False), "status": None, "headers": {},
                  "body": "", "events": [], "latency_ms": None, "error_kind": None, "error": None,
                  "attempts": 1}
        started = time.monotonic()
        deadline = started + self.timeout
        response = None
        try:
            try:
                response = self.request.open(request["method"], url, data=data, headers=headers)
            except HTTPError as err:
                response = err  # a 4xx/5xx/3xx is an answer too: read it like one
            record["status"] = response.getcode()
            record["headers"] = dict(response.headers.items()) if response.headers else {}
            if record["stream"] and record["status"] == 200 and _is_event_stream(record["headers"]):
                record["events"] = core.parse_sse(_read_lines(response, started, deadline))
            else:
                record["body"] = _read_body(response, deadline)
        except _Deadline:
            record["error_kind"] = "timeout"
            record["error"] = "no complete answer within %gs" % self.timeout
        except Exception as err:  # pylint: disable=broad-except
            # Every transport failure becomes a classified record, never a traceback.
            record["error_kind"], record["error"] = classify(err, self.timeout)
        finally:
            if response is not None:
                response.close()
        record["latency_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        if record["error_kind"] in ("connection_refused", "connection_closed") and self.diagnose:
            detail = self.diagnose()
            if detail:
                record["error"] = "%s (%s)" % (record["error"], detail)
        return record


def _request(timeout, use_proxy, validate_certs, ca_path, client_cert, client_key):
    """A urls.Request with the TLS context built once: building it per request
    re-reads the system CA store and adds tens of milliseconds to every timing.
    Redirects are reported, not followed: the probe checks the URL it was given."""
    settings = dict(timeout=timeout, use_proxy=use_proxy, validate_certs=validate_certs, ca_path=ca_path,
                    client_cert=client_cert, client_key=client_key, follow_redirects="none",
                    http_agent=USER_AGENT, decompress=False)
    if make_context is not None:
        try:
            context = make_context(cafile=ca_path, validate_certs=validate_certs, client_cert=client_cert,
                                   client_key=client_key)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise SetupError("cannot load the TLS files (ca_path, client_cert, client_key): %s" % err)
        try:
            return Request(context=context, **settings)
        except TypeError:  # Request() without a context argument
            pass
    return Request(**settings)


class SetupError(Exception):
    """The sender cannot be built from the given options."""


class _Deadline(Exception):
    """The whole exchange took longer than the per-request timeout."""


def _is_event_stream(headers):
    for key, value in headers.items():
        if key.lower() == "content-type":
            return "text/event-stream" in value.lower()
    return False


def _read_lines(response, started, deadline):
    """Read SSE lines with the time (ms since the request started) each arrived."""
    lines = []
    size = 0
    while True:
        line = response.readline(MAX_BODY_BYTES)
        now = time.monotonic()
        if not line:
            return lines
        size += len(line)
        lines.append((round((now - started) * 1000.0, 3), line.decode("utf-8", "replace")))
        if now > deadline:
            raise _Deadline()
        if size > MAX_BODY_BYTES:
            return lines


def _read_body(response, deadline):
    chunks = []
    size = 0
    while size <= MAX_BODY_BYTES:
        chunk = response.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise _Deadline()
    return b"".join(chunks).decode("utf-8", "replace")


def classify(err, timeout):
    """Return (kind, message) for a transport exception; kinds feed core.HINTS."""
    reason = err.reason if isinstance(err, URLError) and not isinstance(err, HTTPError) else err
    if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return "tls_verify", "TLS certificate verification failed: %s" % _reason_text(reason)
    if isinstance(reason, ssl.SSLError):
        return "tls", "TLS error: %s" % _reason_text(reason)
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
        return "timeout", "no answer within %gs" % timeout
    if isinstance(reason, ConnectionRefusedError) or getattr(reason, "errno", None) == errno.ECONNREFUSED:
        return "connection_refused", "connection refused: %s" % _reason_text(reason)
    if isinstance(reason, socket.gaierror):
        return "dns", "host name lookup failed: %s" % _reason_text(reason)
    if isinstance(reason, (RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "connection_closed", "connection closed before an answer: %s" % _reason_text(reason)
    if isinstance(reason, HTTPException):
        return "connection_closed", "broken HTTP answer: %s" % _reason_text(reason)
    return "connection_error", "request failed: %s" % _reason_text(reason)


def _reason_text(reason):
    text = str(reason) or reason.__class__.__name__
    return core.excerpt(text, 200)


def send_until_ready(sender, request, retries, delay, deadline_at):
    """Send, retrying 'not ready yet' answers up to retries times or until deadline_at."""
    attempts = 0
    while True:
        attempts += 1
        record = sender.send(request)
        record["attempts"] = attempts
        if not core.not_ready(record.get("status"), record.get("error_kind"), record.get("body")):
            return record
        if attempts > retries:
            return record
        if deadline_at is not None and time.monotonic() + delay > deadline_at:
            record["error"] = "%s (deadline reached after %d attempts)" % (
                record.get("error") or "HTTP %s" % record.get("status"), attempts)
            return record
        time.sleep(delay)


def run_burst(sender, requests, concurrency, max_tokens, endpoint):
    """Send the prepared requests with `concurrency` workers; return (results, wall_s)."""
    def one(request):
        return core.evaluate(endpoint, sender.send(request), max_tokens)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, requests))
    return results, time.monotonic() - started


def probe(params, sender):
    """Run the checks, then the burst and the prefix-affinity check; return the module's result keys."""
    retries, delay = params["retries"], params["delay"]
    deadline_at = time.monotonic() + params["deadline"] if params.get("deadline") else None
    checks = params["checks"]
    model, ids, results = params.get("model"), [], []
    generation = [e for e in core.GENERATION_ENDPOINTS if e in checks]
    if "models" in checks or (not model and (generation or params.get("burst") or params.get("prefix_affinity"))):
        record = send_until_ready(sender, core.build_request("models"), retries, delay, deadline_at)
        models_check, ids, model = core.models_result(record, model)
        # Without the models check the listing only picks the model, but a failure still has to show.
        if "models" in checks or not models_check["ok"]:
            results.append(models_check)
    for endpoint in generation:
        options = params[endpoint]
        if model is None:
            results.append(core.skipped_result(endpoint, "not sent: no model to probe (see the models check)"))
            continue
        record = send_until_ready(sender, core.build_request(endpoint, model, options), retries, delay, deadline_at)
        results.append(core.evaluate(endpoint, record, options.get("max_tokens")))

    extra = []
    burst = None
    if params.get("burst"):
        burst_results, burst = _burst(params, sender, model)
        extra.extend(burst_results)
    affinity = None
    if params.get("prefix_affinity"):
        affinity_results, affinity = _affinity(params, sender, model)
        extra.extend(affinity_results)
    return {
        "results": results,
        "model": model,
        "models": ids,
        "burst": burst,
        "prefix_affinity": affinity,
        "routing": core.routing_summary(results + extra),
    }


def unreachable(params, error):
    """The module's result keys when the target could not even be set up."""
    hint = core.explain(kind="port_forward")
    results = []
    for endpoint in params["checks"]:
        result = core.skipped_result(endpoint, error)
        result["hint"] = hint
        results.append(result)
    return {"results": results, "model": params.get("model"), "models": [], "routing": core.routing_summary([]),
            "burst": core.not_sent_burst(params["burst"], error) if params.get("burst") else None,
            "prefix_affinity": core.not_sent_affinity(params["prefix_affinity"], error)
            if params.get("prefix_affinity") else None}


def _burst(params, sender, model):
    settings = params["burst"]
    if model is None:
        return [], core.not_sent_burst(settings, "not sent: no model to probe")
    endpoint = settings["endpoint"]
    options = dict(params[endpoint], max_tokens=settings["max_tokens"])
    requests = [core.build_request(endpoint, model, options, stream=settings["stream"],
                                   prompt_suffix=" (request %d)" % (i + 1)) for i in range(settings["requests"])]
    results, wall_s = run_burst(sender, requests, settings["concurrency"], settings["max_tokens"], endpoint)
    return results, core.summarize_burst(results, wall_s, settings)


def _affinity(params, sender, model):
    settings = params["prefix_affinity"]
    if model is None:
        return [], core.not_sent_affinity(settings, "not sent: no model to probe")
    endpoint = settings["endpoint"]
    results = []
    # One after the other: cache-aware routing learns the prefix from the first answer.
    for prompt in core.affinity_prompts(settings["prompts"], settings["prefix_words"]):
        options = dict(params[endpoint], max_tokens=settings["max_tokens"], stream=False)
        if endpoint == "completions":
            options["prompt"] = prompt
        else:
            options["messages"] = [{"role": "user", "content": prompt}]
        results.append(core.evaluate(endpoint, sender.send(core.build_request(endpoint, model, options)),
                                     settings["max_tokens"]))
    return results, core.summarize_affinity(results, settings)
