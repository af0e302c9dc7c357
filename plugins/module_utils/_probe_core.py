# This file is for internal use by the llmd.stack collection only.
"""Pure core of llmd_inference_probe.

Everything here works on plain dicts, lists and strings: input checks, request
building, Server-Sent Events parsing, answer validation, the failure-hint table
and statistics. Nothing does I/O or reads the clock; the sender
(_probe_http.py) hands in what it saw, with timestamps in milliseconds.
"""

import json
import re

ENDPOINTS = ("models", "completions", "chat")
GENERATION_ENDPOINTS = ("completions", "chat")
ENDPOINT_PATHS = {
    "models": "/v1/models",
    "completions": "/v1/completions",
    "chat": "/v1/chat/completions",
}
ANSWER_OBJECT = {"completions": "text_completion", "chat": "chat.completion"}
CHUNK_OBJECT = {"completions": "text_completion", "chat": "chat.completion.chunk"}

DEFAULT_PROMPT = "Say hello to the llm-d inference probe."
REDIRECTS = (301, 302, 303, 307, 308)
BODY_EXCERPT_CHARS = 300
TEXT_EXCERPT_CHARS = 200

# Response headers that tell which way a request went. The EPP sets the first;
# llm-d-inference-sim and the routing sidecar set the x-inference-* ones.
EPP_HEADER = "x-went-into-resp-headers"
POD_HEADER = "x-inference-pod"
ROUTING_HEADER_PREFIXES = ("x-inference-", "x-gateway-", "x-prefiller-", "x-decoder-")
ROUTING_HEADERS = (EPP_HEADER, "x-request-id", "x-envoy-upstream-service-time", "server")
SECRET_HEADER_PATTERN = re.compile(r"authorization|cookie|token|api[-_]?key|secret|password", re.I)
REDACTED = "********"

# Words for the shared prefix of the prefix-affinity check: fixed, so the
# prefix is the same from run to run and cache-aware routing can recognise it.
_PREFIX_WORDS = (
    "gateway pool scheduler picker decode prefill cache token block score filter "
    "route header replica latency throughput queue kernel tensor model server"
).split()


# ---------------------------------------------------------------- input checks

def validate_params(params):
    """Return one line per problem in the module parameters (empty when fine).

    The argument spec already enforced types, choices and exclusivity; these
    are the value rules it cannot express.
    """
    errors = []

    def positive(value, name):
        if value is not None and value <= 0:
            errors.append("%s must be > 0, got %s" % (name, _number(value)))

    def not_negative(value, name):
        if value is not None and value < 0:
            errors.append("%s must be >= 0, got %s" % (name, _number(value)))

    positive(params.get("timeout"), "timeout")
    not_negative(params.get("retries"), "retries")
    not_negative(params.get("delay"), "delay")
    positive(params.get("deadline"), "deadline")

    if params.get("url") is not None:
        error = normalize_base_url(params["url"])[1]
        if error:
            errors.append(error)

    port_forward = params.get("port_forward")
    if port_forward:
        error = port_error(port_forward.get("port"), "port_forward.port")
        if error:
            errors.append(error)

    endpoint = params.get("endpoint")
    if endpoint:
        if endpoint.get("url"):
            error = normalize_base_url(endpoint["url"], "endpoint.url")[1]
            if error:
                errors.append(error)
        elif not (endpoint.get("service") and endpoint.get("namespace")):
            errors.append(
                "endpoint needs either url or namespace and service (as llmd_stack_facts "
                "reports them), got keys: %s" % ", ".join(sorted(k for k, v in endpoint.items() if v is not None))
            )
        else:
            error = port_error(endpoint.get("port"), "endpoint.port")
            if error:
                errors.append(error)

    for name in GENERATION_ENDPOINTS:
        options = params.get(name) or {}
        positive(options.get("max_tokens"), "%s.max_tokens" % name)
        not_negative(options.get("temperature"), "%s.temperature" % name)
    chat = params.get("chat") or {}
    if chat.get("messages") is not None:
        error = messages_error(chat["messages"])
        if error:
            errors.append(error)

    burst = params.get("burst")
    if burst:
        positive(burst.get("requests"), "burst.requests")
        positive(burst.get("concurrency"), "burst.concurrency")
        positive(burst.get("max_tokens"), "burst.max_tokens")

    affinity = params.get("prefix_affinity")
    if affinity:
        if affinity.get("prompts") is not None and affinity["prompts"] < 2:
            errors.append("prefix_affinity.prompts must be >= 2, got %s" % affinity["prompts"])
        positive(affinity.get("prefix_words"), "prefix_affinity.prefix_words")
        positive(affinity.get("max_tokens"), "prefix_affinity.max_tokens")
        share = affinity.get("min_share")
        if share is not None and not 0 <= share <= 1:
            errors.append("prefix_affinity.min_share must be between 0 and 1, got %s" % share)
    return errors


def _number(value):
    """-1.0 reads as -1 in messages: floats from the argument spec stay readable."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def port_error(port, name):
    """Return an error line unless port is a port number or a port name."""
    if port is None:
        return "%s is required" % name
    number = port_number(port)
    if number is not None:
        if not 0 < number < 65536:
            return "%s must be between 1 and 65535, got %s" % (name, port)
        return None
    if isinstance(port, str) and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", port) and len(port) <= 15:
        return None
    return "%s must be a port number or a port name, got %r" % (name, port)


def port_number(port):
    """Return port as an int when it is a number (int or digit string), else None."""
    if isinstance(port, bool):
        return None
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.strip().isdigit():
        return int(port.strip())
    return None


def messages_error(messages):
    if not messages:
        return "chat.messages must not be empty"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not message.get("role") or "content" not in message:
            return "chat.messages[%d] must be a dict with role and content, got %r" % (index, message)
    return None


def normalize_base_url(url, name="url"):
    """Return (base_url, error). The base URL has no trailing slash and no /v1."""
    text = (url or "").strip()
    if not re.match(r"^https?://[^/\s]+", text):
        return None, "%s must start with http:// or https:// and name a host, got %r" % (name, url)
    text = text.rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text, None


# ----------------------------------------------------------- request building

def build_request(endpoint, model=None, options=None, stream=None, prompt_suffix=""):
    """Return {method, path, body, stream} for one probe request.

    options are the module's completions/chat dicts; stream overrides
    options.stream (bursts use their own setting); prompt_suffix makes
    otherwise equal prompts distinct.
    """
    options = options or {}
    path = ENDPOINT_PATHS[endpoint]
    if endpoint == "models":
        return {"method": "GET", "path": path, "body": None, "stream": False}
    if stream is None:
        stream = bool(options.get("stream"))
    body = {"model": model}
    if endpoint == "completions":
        body["prompt"] = (options.get("prompt") or DEFAULT_PROMPT) + prompt_suffix
    else:
        messages = [dict(m) for m in (options.get("messages") or [{"role": "user", "content": DEFAULT_PROMPT}])]
        if prompt_suffix:
            messages[-1]["content"] = "%s%s" % (messages[-1].get("content") or "", prompt_suffix)
        body["messages"] = messages
    for key in ("max_tokens", "temperature", "seed"):
        if options.get(key) is not None:
            body[key] = options[key]
    if stream:
        body["stream"] = True
        # Ask for the final usage chunk so streamed answers can be checked too.
        body["stream_options"] = {"include_usage": True}
    return {"method": "POST", "path": path, "body": body, "stream": bool(stream)}


def build_headers(extra=None, bearer_token=None, has_body=False):
    headers = {"Accept": "application/json"}
    if has_body:
        headers["Content-Type"] = "application/json"
    for key, value in (extra or {}).items():
        headers[str(key)] = str(value)
    if bearer_token:
        headers["Authorization"] = "Bearer %s" % bearer_token
    return headers


def redact_headers(headers):
    return dict(
        (key, REDACTED if SECRET_HEADER_PATTERN.search(str(key)) else value)
        for key, value in (headers or {}).items()
    )


def affinity_prompts(count, prefix_words):
    """Return count prompts that share a prefix of prefix_words words."""
    words = [_PREFIX_WORDS[i % len(_PREFIX_WORDS)] for i in range(prefix_words)]
    prefix = "Shared context: %s." % " ".join(words)
    return ["%s Question %d: summarise the context in one line." % (prefix, i + 1) for i in range(count)]


# ------------------------------------------------------------- SSE parsing

def parse_sse(lines):
    """Turn Server-Sent Events lines into a list of (index, data) events.

    lines are (t_ms, line) pairs; each event carries the time of its last data
    line. Comments (':' lines) and fields other than data are ignored.
    """
    events = []
    data = []
    stamp = None
    for t_ms, raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data:
                events.append((stamp, "\n".join(data)))
            data, stamp = [], None
            continue
        if line.startswith(":"):
            continue
        field, _sep, value = line.partition(":")
        if field != "data":
            continue
        data.append(value[1:] if value.startswith(" ") else value)
        stamp = t_ms
    if data:
        events.append((stamp, "\n".join(data)))
    return events


def assemble_stream(endpoint, events):
    """Check a streamed answer and rebuild it.

    events are (t_ms, data) from parse_sse, t_ms measured from the moment the
    request was sent. Returns the same shape as check_answer, with ttft_ms and
    itl_ms (mean gap between content chunks) filled in.
    """
    out = _empty_answer()
    errors = []
    done = False
    content_times = []
    text = []
    for index, (t_ms, data) in enumerate(events):
        if data.strip() == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            errors.append("stream chunk %d is not JSON: %s" % (index, excerpt(data, 120)))
            break
        if not isinstance(chunk, dict):
            errors.append("stream chunk %d is not a JSON object" % index)
            break
        if "error" in chunk:
            errors.append("stream carried an error: %s" % error_message(chunk))
            break
        if chunk.get("object") != CHUNK_OBJECT[endpoint]:
            errors.append("stream chunk %d has object %r, expected %r" % (index, chunk.get("object"), CHUNK_OBJECT[endpoint]))
            break
        out["id"] = out["id"] or chunk.get("id")
        out["model"] = out["model"] or chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            out["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            piece = _choice_piece(endpoint, choice)
            if piece:
                text.append(piece)
                content_times.append(t_ms)
            if choice.get("finish_reason"):
                out["finish_reason"] = choice["finish_reason"]
    out["text"] = "".join(text)
    if content_times:
        out["ttft_ms"] = content_times[0]
        if len(content_times) > 1:
            out["itl_ms"] = round((content_times[-1] - content_times[0]) / (len(content_times) - 1), 3)
    if not errors:
        if not done:
            errors.append("stream ended before 'data: [DONE]' (cut off by a proxy timeout or a crash?)")
        elif not out["id"]:
            errors.append("no stream chunk carried an id")
        elif not out["finish_reason"]:
            errors.append("no stream chunk carried a finish_reason")
        elif not content_times and out["finish_reason"] != "stop":
            errors.append("stream had no content chunk")
    out["error"] = "; ".join(errors) or None
    out["kind"] = "stream" if errors else None
    return out


def _choice_piece(endpoint, choice):
    if endpoint == "completions":
        piece = choice.get("text")
    else:
        piece = (choice.get("delta") or {}).get("content")
    return piece if isinstance(piece, str) else ""


def _empty_answer():
    """Parts of an answer; kind names the failure class for the hint table."""
    return {"id": None, "model": None, "text": "", "finish_reason": None, "usage": None,
            "ttft_ms": None, "itl_ms": None, "error": None, "kind": None}


# --------------------------------------------------------- answer validation

def parse_json(body):
    """Return (value, error) for a response body."""
    try:
        return json.loads(body), None
    except ValueError:
        return None, "answer is not JSON: %s" % excerpt(body, 120)


def check_models(payload):
    """Return (ids, error) for a /v1/models answer."""
    if not isinstance(payload, dict) or payload.get("object") != "list" or not isinstance(payload.get("data"), list):
        return [], "/v1/models answer is not {object: list, data: [...]}"
    ids = [m.get("id") for m in payload["data"] if isinstance(m, dict) and isinstance(m.get("id"), str) and m.get("id")]
    if not ids:
        return [], "/v1/models lists no model"
    return ids, None


def choose_model(ids, wanted=None):
    """Return (model, error): wanted when listed, else the first listed id."""
    if wanted:
        if wanted in ids:
            return wanted, None
        return None, "model %r is not served here; available: %s" % (wanted, ", ".join(ids) or "none")
    if ids:
        return ids[0], None
    return None, "no model to probe: /v1/models lists none"


def check_answer(endpoint, payload, max_tokens=None):
    """Check a non-streamed completions/chat answer; return its parts and error."""
    out = _empty_answer()
    if not isinstance(payload, dict):
        out["error"], out["kind"] = "answer is not a JSON object", "schema"
        return out
    if "error" in payload and "choices" not in payload:
        out["error"], out["kind"] = "server answered with an error: %s" % error_message(payload), "schema"
        return out
    errors = []
    if payload.get("object") != ANSWER_OBJECT[endpoint]:
        errors.append("object is %r, expected %r" % (payload.get("object"), ANSWER_OBJECT[endpoint]))
    out["id"] = payload.get("id") if isinstance(payload.get("id"), str) else None
    if not out["id"]:
        errors.append("answer has no id")
    out["model"] = payload.get("model")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        errors.append("answer has no choices")
    else:
        choice = choices[0]
        if endpoint == "completions":
            text = choice.get("text")
        else:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
            if not isinstance(message, dict):
                errors.append("choices[0] has no message")
        out["finish_reason"] = choice.get("finish_reason")
        if not isinstance(text, str):
            errors.append("choices[0] has no %s" % ("text" if endpoint == "completions" else "message.content"))
        else:
            out["text"] = text
            if not text and out["finish_reason"] != "stop":
                errors.append("choices[0] text is empty")
        if not out["finish_reason"]:
            errors.append("choices[0] has no finish_reason")
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        errors.append("answer has no usage")
    else:
        out["usage"] = usage
    if errors:
        out["error"], out["kind"] = "; ".join(errors), "schema"
        return out
    usage_error = check_usage(out["usage"], max_tokens, out["finish_reason"])
    if usage_error:
        out["error"], out["kind"] = usage_error, "usage"
    return out


def check_usage(usage, max_tokens=None, finish_reason=None):
    """Return an error line when the usage numbers do not add up, else None."""
    if usage is None:
        return None
    numbers = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return "usage.%s is %r, expected a count" % (key, value)
        numbers[key] = value
    if numbers["total_tokens"] != numbers["prompt_tokens"] + numbers["completion_tokens"]:
        return "usage.total_tokens %d != prompt_tokens %d + completion_tokens %d" % (
            numbers["total_tokens"], numbers["prompt_tokens"], numbers["completion_tokens"])
    if numbers["prompt_tokens"] == 0:
        return "usage.prompt_tokens is 0 for a non-empty prompt"
    if max_tokens:
        if numbers["completion_tokens"] > max_tokens:
            return "usage.completion_tokens %d exceeds max_tokens %d" % (numbers["completion_tokens"], max_tokens)
        if finish_reason == "length" and numbers["completion_tokens"] != max_tokens:
            return "finish_reason is 'length' but completion_tokens %d != max_tokens %d" % (
                numbers["completion_tokens"], max_tokens)
    return None


def error_message(payload):
    """Best-effort one-line message from an OpenAI-style or plain error body."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error is not None:
        return str(error)
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    return excerpt(json.dumps(payload), 120)


def excerpt(text, limit=BODY_EXCERPT_CHARS):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------- routing evidence

def routing_evidence(headers):
    """Return {pod, routed_by_epp, headers} from response headers (any case)."""
    lowered = dict((str(k).lower(), v) for k, v in (headers or {}).items())
    kept = dict(
        (k, v) for k, v in lowered.items()
        if k in ROUTING_HEADERS or k.startswith(ROUTING_HEADER_PREFIXES)
    )
    return {
        "pod": lowered.get(POD_HEADER) or None,
        "routed_by_epp": str(lowered.get(EPP_HEADER, "")).strip().lower() == "true",
        "headers": kept,
    }


# --------------------------------------------------------- failure hint table

# (status, error kind, lower-case body fragment, likely cause, fix). The first
# matching row wins; None matches anything. Sources: the GAIE troubleshooting
# guide and the llm-d guides (see docs/development.md).
HINTS = (
    (None, "model_missing", None,
     "the model is not served behind this endpoint",
     "set model to one listed by /v1/models, or leave it unset to take the first one"),
    (400, None, "model not found in request",
     "the endpoint picker (EPP) found no 'model' in the JSON body",
     "send model in the body; check that no proxy drops or rewrites the request body"),
    (400, None, "prompt not found",
     "the endpoint picker (EPP) found no prompt/messages in the JSON body",
     "send prompt (completions) or messages (chat) exactly as the OpenAI API names them"),
    (400, None, None,
     "the server rejected the request body",
     "check model, max_tokens (> 0 and within the model's max_model_len) and prompt/messages"),
    (401, None, None,
     "the endpoint wants credentials",
     "set bearer_token (or an Authorization header) that the gateway accepts"),
    (403, None, None,
     "the credentials were refused",
     "use a token allowed to call the gateway"),
    (404, None, "does not exist",
     "the model is not served behind this endpoint",
     "set model to one listed by /v1/models, or leave it unset"),
    (404, None, None,
     "no HTTPRoute matched the request, or the URL path is wrong",
     "give the base URL without /v1; check the HTTPRoute's parentRef names the Gateway, "
     "its rule matches PathPrefix /, and it is Accepted"),
    (429, None, None,
     "the EPP shed the request because the pool is saturated (queue or KV-cache limits)",
     "lower the burst concurrency, add decode replicas or raise the saturation thresholds"),
    (500, None, "fault filter abort",
     "the InferencePool in the HTTPRoute backendRef is missing, or a cross-namespace backendRef has no ReferenceGrant",
     "create the InferencePool (the gaie-<rn> release) in the route's namespace, or add a ReferenceGrant"),
    (500, None, None,
     "the gateway or the model server failed on this request",
     "read the EPP and vllm container logs (llmd.stack diagnose)"),
    (502, None, "upstream connect error",
     "the gateway could not reach the picked pod: InferencePool targetPorts differ from the model server port",
     "set the pool's targetPorts to the port the routing-proxy or vLLM listens on (8000 in the guides)"),
    (503, None, "upstream connect error",
     "the gateway could not reach the picked pod: InferencePool targetPorts differ from the model server port",
     "set the pool's targetPorts to the port the routing-proxy or vLLM listens on (8000 in the guides)"),
    (503, None, "ext_proc error",
     "the endpoint picker (EPP) is unreachable and the pool's failureMode is FailClose",
     "check the EPP Deployment is Available and its Service exposes the endpointPickerRef port"),
    (503, None, "no healthy upstream",
     "no Ready model-server pod behind the InferencePool",
     "wait for the decode pods to become Ready and check the pool selector matches their labels"),
    (503, None, None,
     "the gateway or EPP is not ready, or the EPP refused the request format",
     "retry later (retries/delay); check the EPP and model-server pods are Ready and the body is plain OpenAI JSON"),
    (502, None, None,
     "the gateway got no valid answer from the model server",
     "check the routing-proxy and vllm containers are Ready"),
    (504, None, None,
     "the gateway gave up waiting for the model server",
     "set the HTTPRoute timeouts (request, backendRequest) to 0s, or lower max_tokens"),
    (None, "port_forward", None,
     "the port-forward target could not be set up",
     "check the namespace and Service/pod names, that a Ready pod backs the Service, and that the "
     "credentials may get services and pods and create pods/portforward"),
    (None, "redirect", None,
     "the endpoint redirects (often http to https on a Route or Ingress)",
     "use the URL from the Location header"),
    (None, "connection_refused", None,
     "nothing accepts connections at this address",
     "check the URL host and port; for port_forward check the Service port and that the pod listens on it"),
    (None, "connection_closed", None,
     "the connection closed before an answer arrived",
     "for port_forward check the pod is Running and the port is a port its container serves; "
     "otherwise read the gateway logs"),
    (None, "timeout", None,
     "no complete answer within timeout seconds",
     "raise timeout or lower max_tokens; check gateway and model-server load"),
    (None, "tls_verify", None,
     "the server certificate is not trusted",
     "pass the CA bundle with ca_path, or set validate_certs=false for a lab with self-signed certificates"),
    (None, "tls", None,
     "the TLS handshake failed (https:// against a plain HTTP listener, or a client certificate problem)",
     "use the scheme the listener serves; check client_cert/client_key"),
    (None, "dns", None,
     "the host name does not resolve",
     "check the URL host, or reach the Service with port_forward"),
    (None, "invalid_json", None,
     "the answer is not JSON, so the URL may not point at an OpenAI-compatible server",
     "point url at the inference gateway or a vLLM pod"),
    (None, "schema", None,
     "the JSON does not have the OpenAI shape",
     "point url at the inference gateway or a vLLM pod, and check the model server version"),
    (None, "stream", None,
     "the streamed answer was malformed or cut short",
     "check for proxy timeouts (HTTPRoute timeouts 0s) and read the model-server logs"),
    (None, "usage", None,
     "the token counts do not match the request",
     "check the model server honours max_tokens"),
)


def explain(status=None, kind=None, body=None):
    """Return 'likely cause: ...; fix: ...' for a failure, or None."""
    text = (body or "").lower()
    for row_status, row_kind, fragment, cause, fix in HINTS:
        if row_kind is not None and row_kind != kind:
            continue
        if row_status is not None and row_status != status:
            continue
        if row_status is None and row_kind is None:
            continue
        if fragment is not None and fragment not in text:
            continue
        return "likely cause: %s; fix: %s" % (cause, fix)
    return None


def not_ready(status=None, kind=None, body=None):
    """True for answers that mean 'not ready yet' and deserve a retry."""
    if kind in ("connection_refused", "connection_closed"):
        return True
    if status == 503:
        return True
    if status == 404:
        return "does not exist" not in (body or "").lower()
    return False


# ------------------------------------------------------------ result entries

def evaluate(endpoint, record, max_tokens=None):
    """Turn one raw exchange into a result entry.

    record (from the sender): url, stream, status, headers, body, events
    [(t_ms, data)], latency_ms, error_kind, error, attempts.
    """
    routing = routing_evidence(record.get("headers"))
    result = {
        "endpoint": endpoint,
        "url": record.get("url"),
        "ok": False,
        "status": record.get("status"),
        "latency_ms": record.get("latency_ms"),
        "ttft_ms": None,
        "itl_ms": None,
        "model": None,
        "usage": None,
        "finish_reason": None,
        "text": None,
        "pod": routing["pod"],
        "routed_by_epp": routing["routed_by_epp"],
        "routing_headers": routing["headers"],
        "stream": bool(record.get("stream")),
        "attempts": record.get("attempts", 1),
        "error": None,
        "hint": None,
        "body_excerpt": None,
    }
    kind, error = record.get("error_kind"), record.get("error")
    status = record.get("status")
    body = record.get("body") or ""
    if kind is None and status in REDIRECTS:
        kind = "redirect"
        error = "HTTP %s: redirect to %s" % (status, _header(record.get("headers"), "location") or "(no Location header)")
    elif kind is None and status != 200:
        kind = "http"
        error = "HTTP %s: %s" % (status, _body_message(body))
    if kind is None and endpoint != "models":
        answer = _evaluate_generation(endpoint, record, max_tokens)
        result.update(dict((k, answer.get(k)) for k in ("model", "usage", "finish_reason", "ttft_ms", "itl_ms")))
        result["text"] = excerpt(answer.get("text"), TEXT_EXCERPT_CHARS)
        if answer["error"]:
            kind, error = answer["kind"], answer["error"]
    if kind is not None:
        result["error"] = error
        result["hint"] = explain(status, kind, body)
        result["body_excerpt"] = excerpt(body) if body else None
        return result
    result["ok"] = True
    return result


def _evaluate_generation(endpoint, record, max_tokens):
    if record.get("stream") and not record.get("events") and record.get("body"):
        answer = _empty_answer()
        answer["kind"] = "stream"
        answer["error"] = "asked for a stream but the answer is not text/event-stream (Content-Type %s): %s" % (
            _header(record.get("headers"), "content-type"), excerpt(record["body"], 120))
        return answer
    if record.get("stream"):
        answer = assemble_stream(endpoint, record.get("events") or [])
        if not answer["error"]:
            usage_error = check_usage(answer["usage"], max_tokens, answer["finish_reason"])
            if usage_error:
                answer["error"], answer["kind"] = usage_error, "usage"
        return answer
    payload, error = parse_json(record.get("body") or "")
    if error:
        answer = _empty_answer()
        answer["error"], answer["kind"] = error, "invalid_json"
        return answer
    answer = check_answer(endpoint, payload, max_tokens)
    if max_tokens == 1 and not answer["error"]:
        # With max_tokens 1 the whole answer is the first token: latency is TTFT.
        answer["ttft_ms"] = record.get("latency_ms")
    return answer


def _header(headers, name):
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            return value
    return None


def _body_message(body):
    payload, error = parse_json(body)
    if error is None and isinstance(payload, (dict, list)):
        return excerpt(error_message(payload), 200)
    return excerpt(body, 200) or "(empty body)"


def models_result(record, wanted=None):
    """Result entry for the /v1/models check plus (ids, chosen model)."""
    result = evaluate("models", record)
    if not result["ok"]:
        return result, [], None
    payload, error = parse_json(record.get("body") or "")
    if error:
        return _fail(result, "invalid_json", error, record), [], None
    ids, error = check_models(payload)
    if error:
        return _fail(result, "schema", error, record), [], None
    model, error = choose_model(ids, wanted)
    if error:
        return _fail(result, "model_missing", error, record), ids, None
    result["model"] = model
    return result, ids, model


def skipped_result(endpoint, reason):
    result = evaluate(endpoint, {"status": None, "error_kind": "skipped", "error": reason, "attempts": 0})
    result["hint"] = None
    return result


def _fail(result, kind, error, record):
    result.update({"ok": False, "error": error, "hint": explain(record.get("status"), kind, record.get("body")),
                   "body_excerpt": excerpt(record.get("body")) or None})
    return result


# ----------------------------------------------------------------- statistics

def percentile(values, q):
    """q-th percentile (0-100) with linear interpolation; None for no values."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def distribution(values):
    """{p50, p95, p99, mean, min, max} in ms, rounded to 0.1; None when empty."""
    data = [v for v in values if v is not None]
    if not data:
        return None
    return {
        "p50": round(percentile(data, 50), 1),
        "p95": round(percentile(data, 95), 1),
        "p99": round(percentile(data, 99), 1),
        "mean": round(sum(data) / len(data), 1),
        "min": round(min(data), 1),
        "max": round(max(data), 1),
    }


def pod_counts(results):
    counts = {}
    for result in results:
        if result.get("ok"):
            key = result.get("pod") or "unknown"
            counts[key] = counts.get(key, 0) + 1
    return counts


def completion_tokens(result):
    usage = result.get("usage") or {}
    tokens = usage.get("completion_tokens")
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0


def summarize_burst(results, wall_s, settings):
    """Summary of a burst: success rate, latency/TTFT percentiles, tokens/s, pods."""
    total = len(results)
    good = [r for r in results if r.get("ok")]
    tokens = sum(completion_tokens(r) for r in good)
    errors = {}
    statuses = {}
    for result in results:
        statuses[str(result.get("status"))] = statuses.get(str(result.get("status")), 0) + 1
        if not result.get("ok"):
            message = excerpt(result.get("error"), 160)
            errors[message] = errors.get(message, 0) + 1
    first_failure = next((r for r in results if not r.get("ok")), None)
    error = None
    if first_failure:
        error = "%d of %d requests failed, first: %s" % (
            total - len(good), total, excerpt(first_failure.get("error"), 160))
    return {
        "endpoint": settings.get("endpoint"),
        "stream": bool(settings.get("stream")),
        "max_tokens": settings.get("max_tokens"),
        "requests": total,
        "concurrency": settings.get("concurrency"),
        "succeeded": len(good),
        "failed": total - len(good),
        "success_rate": round(float(len(good)) / total, 4) if total else 0.0,
        "ok": bool(total) and len(good) == total,
        "error": error,
        "wall_s": round(wall_s, 3),
        "latency_ms": distribution([r.get("latency_ms") for r in good]),
        "ttft_ms": distribution([r.get("ttft_ms") for r in good]),
        "itl_ms": distribution([r.get("itl_ms") for r in good]),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall_s, 1) if wall_s > 0 else None,
        "requests_per_s": round(total / wall_s, 2) if wall_s > 0 else None,
        "pods": pod_counts(results),
        "status_codes": statuses,
        "errors": errors,
        "hint": first_failure.get("hint") if first_failure else None,
    }


def summarize_affinity(results, settings):
    """Share of the prefix-sharing prompts served by the most used pod."""
    pods = pod_counts(results)
    good = sum(pods.values())
    top_pod, top = None, 0
    for pod in sorted(pods):
        if pods[pod] > top:
            top_pod, top = pod, pods[pod]
    share = round(float(top) / good, 4) if good else 0.0
    min_share = settings.get("min_share") or 0.0
    errors = [r.get("error") for r in results if not r.get("ok")]
    problems = []
    if errors:
        problems.append("%d of %d prefix-affinity requests failed: %s" % (len(errors), len(results), excerpt(errors[0], 160)))
    elif "unknown" in pods and min_share > 0:
        problems.append("answers carry no x-inference-pod header, so the serving pod is unknown")
    elif share < min_share:
        problems.append("only %d of %d prefix-sharing prompts went to one pod (%s), below min_share %s" % (
            top, good, top_pod, min_share))
    return {
        "prompts": len(results),
        "prefix_words": settings.get("prefix_words"),
        "succeeded": good,
        "pods": pods,
        "top_pod": top_pod,
        "same_pod_share": share,
        "min_share": min_share,
        "ok": not problems,
        "error": problems[0] if problems else None,
    }


def not_sent_burst(settings, reason):
    summary = summarize_burst([], 0.0, settings)
    summary.update({"requests": 0, "error": reason})
    return summary


def not_sent_affinity(settings, reason):
    summary = summarize_affinity([], settings)
    summary.update({"ok": False, "error": reason})
    return summary


def routing_summary(results):
    """Answering pods and EPP evidence over every request the probe sent."""
    answered = [r for r in results if r.get("ok")]
    return {
        "requests": len(answered),
        "pods": pod_counts(answered),
        "via_epp": sum(1 for r in answered if r.get("routed_by_epp")),
        "with_pod_header": sum(1 for r in answered if r.get("pod")),
    }


def failure_message(results, burst=None, affinity=None):
    """One line naming every failed check with its error and hint, or None."""
    parts = []
    for result in results:
        if not result.get("ok"):
            part = "%s: %s" % (result["endpoint"], result.get("error"))
            if result.get("hint"):
                part += " (%s)" % result["hint"]
            parts.append(part)
    if burst and not burst.get("ok"):
        part = "burst: %s" % burst.get("error")
        if burst.get("hint"):
            part += " (%s)" % burst["hint"]
        parts.append(part)
    if affinity and not affinity.get("ok"):
        parts.append("prefix_affinity: %s" % affinity.get("error"))
    if not parts:
        return None
    return "inference probe failed: " + " | ".join(parts)
