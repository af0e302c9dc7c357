# This file is for internal use by the llmd.stack collection only.
# It may change or disappear in any release without notice.
"""Pure log analysis for llm-d stacks: noise filter, EPP request traces, P/D evidence.

Everything here works on plain strings, lists and dicts and never does I/O, so
it is unit-tested on fixture log lines. The thin shell (the llmd_log_analyze
module) reads the collected log files, calls analyze() and writes the results.

Formats understood (one function per concern, all tolerant of missing keys):

* EPP JSON lines (zap): the older scheduler format (``scheduling/scheduler.go``
  messages: "Scheduling a request", "Filter plugin result", "After running
  picker plugins" ...), the plugin-based llm-d format ("Running scorer",
  "Got pod scores", "After running picker plugin" ..., with ``x-request-id``)
  and the profile-based GAIE format ("Running scheduler profile", "Calculated
  score", "Completed running picker plugin successfully" ...).
* routing-proxy sidecar lines (klog text or JSON): "sending request to
  prefiller", "received prefiller response", "sending request to decoder".
* vLLM lines ("Received request", "start_load_kv", "NIXL handshake",
  "Finished recving/sending KV transfer") and llm-d-inference-sim klog lines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

# Regular expressions (Python syntax, matched anywhere in a line) for log lines
# that carry no information about requests. The diagnostics role keeps the same
# list in its defaults; a unit test keeps the two identical.
DEFAULT_NOISE_PATTERNS = [
    # vLLM access log of every Prometheus scrape
    r'"GET /metrics HTTP/1\.1" 200',
    # llm-d-inference-sim HTTP log (--log-http) of every Prometheus scrape and its answer
    r'requestURI="/metrics"',
    r'(?s)"HTTP response" statusCode=200 .*Content-Type: text/plain; version=0\.0\.4',
    # vLLM engine statistics while idle
    r"Avg prompt throughput: 0\.0 tokens/s, Avg generation throughput: 0\.0 tokens/s",
    # routing-proxy while vLLM is still starting
    r"waiting for vLLM to be ready",
    r"http: proxy error: dial tcp .*connect: connection refused",
    # EPP metric refresh and health probes
    r"Failed to refreshed metrics",
    r"Refreshed metrics",
    r"Refreshing Prometheus Metrics",
    r"gRPC health check serving",
]

POD_ROLES = ("epp", "decode", "prefill", "other")

# A KV transfer logged up to this many seconds before the sidecar exchange
# still belongs to it: vLLM and the EPP log whole seconds only.
_CLOCK_SLACK_SECONDS = 1.0

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_GO_POD_RE = re.compile(r"NamespacedName:([A-Za-z0-9.-]+)/([A-Za-z0-9.-]+)")
_GO_SCORED_POD_RE = re.compile(r"score:([-+0-9.eE]+) Pod:\{NamespacedName:[A-Za-z0-9.-]+/([A-Za-z0-9.-]+)")
_BARE_POD_RE = re.compile(r"^[a-z0-9.-]+/([a-z0-9][a-z0-9.-]*)$")
_KLOG_RE = re.compile(r"^([IWEF])(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s+\d+\s+[^\]]*\]\s?(.*)$")
_VLLM_RE = re.compile(
    r"^(?:\([^)]*\)\s+)?(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(\d{2})-(\d{2})\s+(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?\s+\[[^\]]*\]\s?(.*)$"
)
_ACCESS_RE = re.compile(r'"(GET|POST) (/v1/[^ ?"]+)[^"]*" (\d{3})')


# --------------------------------------------------------------------------
# Records and the noise filter
# --------------------------------------------------------------------------

def split_records(text):
    """Split a log text into records: one per line, except that a klog value
    spread over several lines (``key=<`` ... ``>``) stays with its line."""
    records = []
    block = None
    for line in (text or "").splitlines():
        if block is not None:
            block.append(line)
            if line.startswith(" >") and not line.rstrip().endswith("=<"):
                # klog closes the block with " >", possibly followed by more fields
                # (" > body=<" closes one block and opens the next)
                records.append("\n".join(block))
                block = None
            continue
        if line.rstrip().endswith("=<"):
            block = [line]
            continue
        if line.strip():
            records.append(line)
    if block is not None:
        records.append("\n".join(block))
    return records


def compile_noise_patterns(patterns):
    """Compile the noise patterns. Returns (compiled, errors); every error is
    one line naming the pattern and why it is not a valid regular expression."""
    compiled = []
    errors = []
    for pattern in patterns or []:
        if not isinstance(pattern, str) or not pattern:
            errors.append("noise pattern %r is not a non-empty string" % (pattern,))
            continue
        try:
            compiled.append((pattern, re.compile(pattern)))
        except re.error as exc:
            errors.append("noise pattern %r is not a valid regular expression: %s" % (pattern, exc))
    return compiled, errors


def filter_noise(records, compiled):
    """Drop the records a noise pattern matches.

    Returns (kept_records, dropped_line_count, dropped_per_pattern)."""
    kept = []
    dropped = 0
    per_pattern = {}
    for record in records:
        hit = None
        for pattern, regex in compiled:
            if regex.search(record):
                hit = pattern
                break
        if hit is None:
            kept.append(record)
            continue
        lines = record.count("\n") + 1
        dropped += lines
        per_pattern[hit] = per_pattern.get(hit, 0) + lines
    return kept, dropped, per_pattern


def count_lines(records):
    return sum(record.count("\n") + 1 for record in records)


# --------------------------------------------------------------------------
# Line parsing: JSON (zap), klog text and vLLM text
# --------------------------------------------------------------------------

_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z


def _epoch(dt):
    return (dt - datetime.datetime(1970, 1, 1)).total_seconds()


def parse_iso_ts(value):
    """EPP 'ts' (RFC 3339 string or epoch number) -> seconds since the epoch, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        # zap's epoch encoder; anything outside years 1970..9999 is not a time
        return float(value) if 0 <= value < _MAX_EPOCH else None
    if not isinstance(value, str):
        return None
    match = re.match(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?", value)
    if not match:
        return None
    try:
        dt = datetime.datetime(*[int(part) for part in match.groups()[:6]])
    except ValueError:
        return None
    fraction = float("0." + match.group(7)) if match.group(7) else 0.0
    return _epoch(dt) + fraction


def _month_day_ts(year, month, day, hour, minute, second, fraction=None):
    try:
        dt = datetime.datetime(year, int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    return _epoch(dt) + (float("0." + fraction) if fraction else 0.0)


def format_ts(seconds):
    if seconds is None:
        return None
    dt = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_quoted(text, pos):
    """Read a double-quoted Go string starting at text[pos]; returns (value, next_pos)."""
    end = pos + 1
    while end < len(text):
        char = text[end]
        if char == "\\":
            end += 2
            continue
        if char == '"':
            break
        end += 1
    raw = text[pos:end + 1]
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw.strip('"')
    return value, end + 1


def _read_bracketed(text, pos):
    """Read a JSON-like [...] or {...} value starting at text[pos]."""
    closing = {"[": "]", "{": "}"}
    stack = []
    end = pos
    while end < len(text):
        char = text[end]
        if char == '"':
            end = _read_quoted(text, end)[1]
            continue
        if char in closing:
            stack.append(closing[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                break
        end += 1
    raw = text[pos:end + 1]
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return value, end + 1


def parse_klog_fields(text):
    """Parse klog structured text ``"msg" key=value key="quoted" key=[1,2]``.

    Returns (msg, fields). Keys may contain spaces (``req id="..."``), as the
    llm-d-inference-sim writes them."""
    text = text.strip()
    fields = {}
    if text.startswith('"'):
        msg, pos = _read_quoted(text, 0)
    else:
        # printf-style klog line: no structured fields follow
        return text, fields
    while pos < len(text):
        while pos < len(text) and text[pos] == " ":
            pos += 1
        equals = text.find("=", pos)
        if equals < 0:
            break
        key = text[pos:equals].strip()
        pos = equals + 1
        if pos >= len(text):
            fields[key] = ""
            break
        char = text[pos]
        if char == '"':
            value, pos = _read_quoted(text, pos)
        elif char in "[{":
            value, pos = _read_bracketed(text, pos)
        elif char == "<":
            # multi-line value, closed by a line starting with " >"
            close = text.find("\n >", pos)
            close = len(text) if close < 0 else close
            value = text[pos + 1:close].strip()
            pos = close + 3
        else:
            space = text.find(" ", pos)
            space = len(text) if space < 0 else space
            value = text[pos:space]
            pos = space
            try:
                value = json.loads(value)  # numbers and booleans
            except ValueError:
                pass
        fields[key] = value
    return msg, fields


def parse_line(record, year):
    """Parse one record into {ts, level, msg, fields, kind} or None.

    kind is 'json', 'klog' or 'vllm'. ``year`` completes klog and vLLM
    timestamps, which carry no year."""
    text = record.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("msg"), str):
            return {
                "kind": "json",
                "ts": parse_iso_ts(data.get("ts")),
                "level": str(data.get("level", "")),
                "msg": data["msg"],
                "fields": data,
            }
    first_line = text.split("\n", 1)[0]
    match = _KLOG_RE.match(first_line)
    if match:
        severity, month, day, hour, minute, second, fraction, rest = match.groups()
        if len(text) > len(first_line):
            rest = rest + text[len(first_line):]
        msg, fields = parse_klog_fields(rest)
        return {
            "kind": "klog",
            "ts": _month_day_ts(year, month, day, hour, minute, second, fraction),
            "level": {"I": "info", "W": "warning", "E": "error", "F": "fatal"}[severity],
            "msg": msg,
            "fields": fields,
        }
    match = _VLLM_RE.match(first_line)
    if match:
        level, month, day, hour, minute, second, msg = match.groups()
        return {
            "kind": "vllm",
            "ts": _month_day_ts(year, month, day, hour, minute, second),
            "level": level.lower(),
            "msg": msg,
            "fields": {},
        }
    if _ACCESS_RE.search(first_line):
        return {"kind": "vllm", "ts": None, "level": "info", "msg": first_line.strip(), "fields": {}}
    return None


# --------------------------------------------------------------------------
# Pods, scores and request ids inside EPP values
# --------------------------------------------------------------------------

def _pod_name_from_namespaced(value):
    if isinstance(value, dict):
        name = value.get("Name") or value.get("name")
        return name if isinstance(name, str) and name else None
    if isinstance(value, str):
        match = _BARE_POD_RE.match(value.strip())
        if match:
            return match.group(1)
        return value.strip() or None
    return None


def pods_in(value, bare=False):
    """Pod names (in order, without duplicates) found in an EPP log value.

    Understands JSON pod objects (``NamespacedName: {Namespace, Name}``), Go
    ``%+v`` strings (``NamespacedName:ns/pod``) and, with bare=True, plain
    ``ns/pod`` strings such as GAIE's ``endpoint`` field."""
    found = []

    def add(name):
        if name and name not in found:
            found.append(name)

    def walk(item):
        if isinstance(item, dict):
            if "NamespacedName" in item:
                add(_pod_name_from_namespaced(item["NamespacedName"]))
                return
            for key in ("pod_name", "podName"):
                if isinstance(item.get(key), str):
                    add(item[key])
                    return
            for sub in item.values():
                walk(sub)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)
        elif isinstance(item, str):
            matches = _GO_POD_RE.findall(item)
            for _namespace, name in matches:
                add(name)
            if not matches and bare:
                match = _BARE_POD_RE.match(item.strip())
                if match:
                    add(match.group(1))

    walk(value)
    return found


def scored_pods_in(value):
    """{pod: score} from a picker's candidate list (Go string or JSON list)."""
    scores = {}
    if isinstance(value, str):
        for score, name in _GO_SCORED_POD_RE.findall(value):
            try:
                scores[name] = float(score)
            except ValueError:
                continue
        return scores
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, dict):
                continue
            score = item.get("Score", item.get("score"))
            names = pods_in(item)
            if names and isinstance(score, (int, float)) and not isinstance(score, bool):
                scores[names[0]] = float(score)
    return scores


def plugin_name(value):
    """Plugin instance name from 'name/type', {'Name', 'Type'} or a plain string."""
    if isinstance(value, dict):
        return value.get("Name") or value.get("name") or value.get("Type") or value.get("type")
    if isinstance(value, str):
        return value.split("/", 1)[0] if "/" in value else value
    return None


def base_request_id(value):
    """The id that links log lines of one request across components: the UUID
    inside 'cmpl-<uuid>-0' / 'chatcmpl-<uuid>', else the value itself."""
    if not isinstance(value, str) or not value:
        return None
    match = _UUID_RE.search(value)
    return match.group(0).lower() if match else value


def _request_id_of(fields):
    for key in ("x-request-id", "requestId", "requestID", "request_id", "RequestId"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    response = fields.get("response")
    if isinstance(response, dict) and isinstance(response.get("RequestId"), str) and response["RequestId"]:
        return response["RequestId"]
    return None


def _model_of(fields):
    for key in ("targetModelName", "targetModel", "resolvedTargetModel", "incomingModelName", "model"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    request = fields.get("request") or fields.get("pd-schedule")
    if isinstance(request, str):
        for label in ("ResolvedTargetModel", "TargetModel", "Model"):
            match = re.search(r"(?:^|[ ,])" + label + r": ([^,]+)", request)
            if match and match.group(1).strip():
                return match.group(1).strip()
    if isinstance(request, dict):
        for key in ("TargetModel", "targetModel", "Model", "model"):
            if isinstance(request.get(key), str) and request[key]:
                return request[key]
    return None


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------
# EPP trace reconstruction
# --------------------------------------------------------------------------

def _profile_from_plugin(name):
    lowered = (name or "").lower()
    if "prefill" in lowered:
        return "prefill"
    if "decode" in lowered:
        return "decode"
    return None


def _new_trace(index, request_id):
    return {
        "index": index,
        "request_id": request_id,
        "model": None,
        "ts": None,
        "format": None,
        "pd": "unknown",
        "pd_decision": None,
        "candidates": [],
        "profiles": {},
        "filters": [],
        "scores": {},
        "total_scores": {},
        "picked": None,
        "prefill_picked": None,
        "tie_break_random": False,
        "scorers_without_scores": [],
        "handled_by": None,
        "handled_endpoint": None,
        "status": None,
        "usage": None,
        "errors": [],
        "pd_ran": None,
        "served": False,
        "passthrough": None,
        "_profile": None,
        "_scorer": None,
    }


def _profile(trace, name=None):
    name = name or trace["_profile"] or "default"
    trace["_profile"] = name
    if name not in trace["profiles"]:
        trace["profiles"][name] = {
            "filters": [],
            "scores": {},
            "total_scores": {},
            "picked": None,
            "picker": None,
            "tie_break_random": False,
            "_tie_logged": False,
            "_no_scores": [],
            "_scored": [],
        }
    return trace["profiles"][name]


_START_MESSAGES = ("llm request assembled",)
_SCHEDULE_MESSAGES = ("scheduling a request", "before running filter plugins", "running scheduler profile")


class _TraceBuilder:
    """Groups EPP records into requests. Records with an x-request-id go to
    that request; records without one (older EPPs) go to the current one."""

    def __init__(self):
        self.traces = []
        self.by_id = {}
        self.current = None

    def _open(self, request_id):
        trace = _new_trace(len(self.traces) + 1, request_id)
        self.traces.append(trace)
        if request_id:
            self.by_id[request_id] = trace
        self.current = trace
        return trace

    def trace_for(self, request_id, lowered_msg):
        if request_id:
            trace = self.by_id.get(request_id)
            if trace is None:
                trace = self._open(request_id)
            self.current = trace
            return trace
        starts = lowered_msg.startswith(_START_MESSAGES)
        scheduling = lowered_msg.startswith(_SCHEDULE_MESSAGES)
        current = self.current
        if starts or current is None:
            if starts or scheduling:
                return self._open(None)
            return None
        if scheduling and current["handled_by"] and current["request_id"] is None:
            # an older EPP logged no "LLM request assembled": a new schedule
            # after a handled request is a new request
            return self._open(None)
        return current


def picker_kind(name):
    """Normalise a picker plugin name or picker log message to a picker kind."""
    lowered = (name or "").lower()
    if "weighted" in lowered and "random" in lowered:
        return "weighted-random"
    if "round-robin" in lowered:
        return "round-robin"
    if "max score" in lowered or "max-score" in lowered:
        return "max-score"
    if "random" in lowered:
        return "random"
    return name or None


def _record_filter(trace, fields):
    name = plugin_name(fields.get("plugin")) or "filter"
    profile_name = _profile_from_plugin(name)
    if profile_name and trace["_profile"] != profile_name and not trace.get("_explicit_profile"):
        trace["_profile"] = profile_name
    profile = _profile(trace)
    kept = pods_in(fields.get("pods"))
    profile["filters"].append({"plugin": name, "kept": kept})
    for pod in kept:
        if pod not in trace["candidates"]:
            trace["candidates"].append(pod)


def _record_pick(trace, fields):
    profile = _profile(trace)
    result = fields.get("result")
    picked = None
    if isinstance(result, dict):
        for key in ("TargetPod", "TargetPods", "TargetEndpoints", "TargetEndpoint"):
            if key in result:
                names = pods_in(result[key], bare=True)
                picked = names[0] if names else None
                break
        if picked is None:
            names = pods_in(result, bare=True)
            picked = names[0] if names else None
        target = result.get("TargetPod")
        score = _number(target.get("Score")) if isinstance(target, dict) else None
        if score is None:
            score = _number(result.get("Score"))
        if score is not None and picked:
            profile["total_scores"].setdefault(picked, score)
    elif result is not None:
        names = pods_in(result, bare=True)
        picked = names[0] if names else None
    if picked:
        profile["picked"] = picked


def _apply_epp_record(trace, parsed):
    fields = parsed["fields"]
    msg = parsed["msg"]
    lowered = msg.lower()
    if trace["ts"] is None and parsed["ts"] is not None:
        trace["ts"] = parsed["ts"]
    if trace["model"] is None:
        trace["model"] = _model_of(fields)
    caller = str(fields.get("caller", ""))
    if trace["format"] is None or trace["format"] == "old":
        plugin_messages = ("running scorer", "running scheduler profile", "calculated score", "completed running")
        if fields.get("x-request-id") or lowered.startswith(plugin_messages) or "requestcontrol/" in caller:
            trace["format"] = "plugin"
        elif trace["format"] is None and ("scheduling/scheduler.go" in caller or "handlers/request.go" in caller):
            trace["format"] = "old"
    if "pd-schedule" in fields and trace["pd"] == "unknown":
        # the older P/D scheduler tags its records with the request as 'pd-schedule'
        trace["pd"] = "enabled"
        trace["pd_decision"] = "P/D scheduler"

    if lowered.startswith(("disagregated prefill/decode disabled", "disaggregated prefill/decode disabled")):
        trace["pd"] = "disabled"
        trace["pd_decision"] = "P/D disabled: decode worker only"
    elif lowered.startswith("scheduling to decode worker only"):
        trace["pd"] = "disabled"
        non_cached, threshold = _number(fields.get("nonCachedTokens")), _number(fields.get("threshold"))
        if non_cached is not None and threshold is not None:
            trace["pd_decision"] = "decode worker only (%g non-cached prompt tokens, P/D threshold %g)" % (non_cached, threshold)
        else:
            trace["pd_decision"] = "decode worker only (prompt below the P/D threshold)"
    elif lowered.startswith("no prefill pod available"):
        trace["pd"] = "disabled"
        trace["pd_decision"] = "decode worker only (no prefill pod available)"
    elif lowered.startswith("prefill header set"):
        pods = pods_in(fields.get("prefill"), bare=True)
        if pods and not trace["prefill_picked"]:
            trace["prefill_picked"] = pods[0]
    elif lowered.startswith("scheduling to separate prefill and decode workers"):
        trace["pd"] = "enabled"
        trace["pd_decision"] = "separate prefill and decode workers"
    elif lowered.startswith("scheduling a request"):
        for pod in pods_in(msg) + pods_in(fields.get("pods")):
            if pod not in trace["candidates"]:
                trace["candidates"].append(pod)
    elif lowered.startswith("running scheduler profile"):
        name = fields.get("profile") or fields.get("name")
        if isinstance(name, str) and name:
            trace["_explicit_profile"] = True
            _profile(trace, name)
    elif lowered.startswith("before running filter plugins"):
        if not trace["candidates"]:
            trace["candidates"] = pods_in(fields.get("pods"))
    elif lowered == "running filter plugin":
        name = plugin_name(fields.get("plugin"))
        profile_name = _profile_from_plugin(name)
        if profile_name and not trace.get("_explicit_profile"):
            trace["_profile"] = profile_name
        _profile(trace)
    elif lowered.startswith(("filter plugin result", "completed running filter plugin successfully")):
        _record_filter(trace, fields)
    elif lowered in ("running scorer", "running scorer plugin"):
        name = plugin_name(fields.get("scorer") or fields.get("plugin")) or "scorer"
        trace["_scorer"] = name
        profile = _profile(trace)
        profile["scores"].setdefault(name, {})
    elif lowered.startswith("calculated score"):
        name = plugin_name(fields.get("plugin")) or trace["_scorer"] or "scorer"
        pods = pods_in(fields.get("endpoint") or fields.get("pod"), bare=True)
        score = _number(fields.get("score"))
        profile = _profile(trace)
        if pods and score is not None:
            profile["scores"].setdefault(name, {})[pods[0]] = score
            if name not in profile["_scored"]:
                profile["_scored"].append(name)
    elif lowered.startswith("got pod scores"):
        name = plugin_name(fields.get("logger")) or trace["_scorer"] or "scorer"
        profile = _profile(trace)
        scores = fields.get("scores")
        if isinstance(scores, dict) and scores:
            bucket = profile["scores"].setdefault(name, {})
            for key, value in scores.items():
                pods = pods_in(key, bare=True) or [key]
                number = _number(value)
                if number is not None:
                    bucket[pods[0]] = number
            if name not in profile["_scored"]:
                profile["_scored"].append(name)
        elif name not in profile["_no_scores"]:
            profile["_no_scores"].append(name)
    elif lowered.startswith("no scores found for pods"):
        name = plugin_name(fields.get("logger")) or trace["_scorer"] or "scorer"
        profile = _profile(trace)
        if name not in profile["_no_scores"]:
            profile["_no_scores"].append(name)
    elif lowered.startswith("completed running scorer plugin successfully") or lowered == "completed running scorer plugin":
        # this generation logs "Calculated score" for every scored pod at the
        # same verbosity: none logged means the scorer returned nothing
        name = plugin_name(fields.get("plugin")) or trace["_scorer"] or "scorer"
        profile = _profile(trace)
        if name not in profile["_scored"] and name not in profile["_no_scores"]:
            profile["_no_scores"].append(name)
    elif lowered.startswith("after running scorer plugins") and isinstance(fields.get("weightedScores"), dict):
        profile = _profile(trace)
        for key, value in fields["weightedScores"].items():
            pods = pods_in(key, bare=True) or [key]
            if _number(value) is not None:
                profile["total_scores"][pods[0]] = _number(value)
    elif lowered.startswith("candidate pods for picking"):
        profile = _profile(trace)
        profile["total_scores"].update(scored_pods_in(fields.get("pods-weighted-score") or fields.get("pods")))
    elif lowered.startswith(("running picker plugin", "before running picker plugin")) and fields.get("plugin"):
        _profile(trace)["picker"] = picker_kind(plugin_name(fields["plugin"]))
    elif lowered.startswith("selecting"):
        # "Selecting the/a pod with the max score ...", "Selecting a random pod ...", ...
        profile = _profile(trace)
        if profile["picker"] is None:
            profile["picker"] = picker_kind(msg)
        for pod, score in scored_pods_in(msg).items():
            profile["total_scores"].setdefault(pod, score)
    elif lowered.startswith("multiple pods have the same max score"):
        profile = _profile(trace)
        profile["_tie_logged"] = True
    elif lowered.startswith(("after running picker plugin", "completed running picker plugin successfully")):
        _record_pick(trace, fields)
    elif lowered.startswith("request handled"):
        if (fields.get("method") or fields.get("path")) and not trace["profiles"]:
            # sent on without scheduling (GET /v1/models ...)
            trace["passthrough"] = ("%s %s" % (fields.get("method") or "", fields.get("path") or "")).strip()
        endpoint = fields.get("endpoint")
        pods = pods_in(endpoint, bare=True)
        if pods:
            trace["handled_by"] = pods[0]
        elif isinstance(endpoint, str) and endpoint:
            # newer EPPs log "ip:port[,ip:port]"; resolve_endpoints() maps it to a pod
            trace["handled_endpoint"] = endpoint
    elif lowered.startswith("postresponse called"):
        pods = pods_in(fields.get("pod"), bare=True)
        if pods and not trace["handled_by"]:
            trace["handled_by"] = pods[0]
    elif lowered.startswith("llm response assembled"):
        response = fields.get("response")
        headers = response.get("Headers") if isinstance(response, dict) else None
        if isinstance(headers, dict) and headers.get(":status") is not None:
            trace["status"] = str(headers[":status"])
    elif lowered.startswith("response generated"):
        usage = fields.get("usage")
        if isinstance(usage, dict):
            trace["usage"] = usage
    if parsed["level"].lower() in ("error", "dpanic", "panic", "fatal"):
        detail = msg
        if isinstance(fields.get("error"), str):
            detail = "%s: %s" % (msg, fields["error"])
        trace["errors"].append(detail)


def _all_equal(values):
    values = list(values)
    return len(values) >= 2 and max(values) - min(values) < 1e-9


def _finish_profile(profile):
    """Decide whether the profile's pick was a random tie-break."""
    scored_pods = set()
    for per_pod in profile["scores"].values():
        scored_pods.update(per_pod)
    pods_in_play = set(profile["total_scores"]) | scored_pods
    if profile["filters"]:
        pods_in_play |= set(profile["filters"][-1]["kept"])
    tie = False
    if len(pods_in_play) >= 2:
        if profile["_tie_logged"]:
            tie = True
        elif profile["picker"] not in (None, "max-score"):
            tie = False  # random, round-robin ... pickers ignore scores by design: no tie to break
        elif len(profile["total_scores"]) >= 2:
            tie = _all_equal(profile["total_scores"].values())
        else:
            # without weighted totals a tie is certain only when every scorer
            # gave every pod the same score (whatever the weights)
            per_scorer = [per_pod for per_pod in profile["scores"].values() if per_pod]
            tie = bool(per_scorer) and all(
                _all_equal(per_pod.values()) and set(per_pod) == set(per_scorer[0]) for per_pod in per_scorer
            )
    profile["tie_break_random"] = tie
    no_scores = list(profile["_no_scores"])
    for key in ("_tie_logged", "_no_scores", "_scored"):
        del profile[key]
    return no_scores


def _finish_trace(trace):
    for key in ("_profile", "_scorer", "_explicit_profile"):
        trace.pop(key, None)
    primary_name = None
    if "decode" in trace["profiles"]:
        primary_name = "decode"
    elif trace["profiles"]:
        non_prefill = [name for name in trace["profiles"] if name != "prefill"]
        primary_name = non_prefill[0] if non_prefill else None
    for name, profile in trace["profiles"].items():
        for scorer in _finish_profile(profile):
            entry = scorer if name in (primary_name, "default") else "%s/%s" % (name, scorer)
            if entry not in trace["scorers_without_scores"]:
                trace["scorers_without_scores"].append(entry)
    if "prefill" in trace["profiles"]:
        trace["prefill_picked"] = trace["profiles"]["prefill"]["picked"]
        if trace["prefill_picked"] and trace["pd"] == "unknown":
            trace["pd"] = "enabled"
            trace["pd_decision"] = "prefill profile picked a pod"
    if primary_name:
        primary = trace["profiles"][primary_name]
        trace["filters"] = primary["filters"]
        trace["scores"] = primary["scores"]
        trace["total_scores"] = primary["total_scores"]
        trace["picked"] = primary["picked"]
        trace["tie_break_random"] = primary["tie_break_random"]
    if not trace["picked"] and trace["handled_by"] and not trace["passthrough"]:
        trace["picked"] = trace["handled_by"]
    trace["format"] = trace["format"] or "old"
    trace["ts"] = format_ts(trace["ts"])
    return trace


def parse_epp_records(records):
    """Parsed EPP records (output of parse_line) -> (traces, {index: epoch ts}).

    The epoch timestamps (the traces carry ISO strings) let the P/D join
    compare EPP time with sidecar and vLLM time."""
    builder = _TraceBuilder()
    for parsed in records:
        if parsed is None or parsed["kind"] != "json":
            continue
        trace = builder.trace_for(_request_id_of(parsed["fields"]), parsed["msg"].lower())
        if trace is not None:
            _apply_epp_record(trace, parsed)
    epoch_by_index = dict((trace["index"], trace["ts"]) for trace in builder.traces)
    traces = [_finish_trace(trace) for trace in builder.traces]
    return traces, epoch_by_index


def resolve_endpoints(traces, pods):
    """Map 'ip:port' endpoints of "Request handled" to pod names by pod IP."""
    ip_to_pod = dict((info.get("ip"), name) for name, info in pods.items() if info.get("ip"))
    for trace in traces:
        if trace["handled_by"] or not trace["handled_endpoint"]:
            continue
        first = trace["handled_endpoint"].split(",")[0].strip()
        host = first.rsplit(":", 1)[0].strip("[]") if ":" in first else first
        trace["handled_by"] = ip_to_pod.get(host)
        if trace["handled_by"] and not trace["picked"] and not trace["passthrough"]:
            trace["picked"] = trace["handled_by"]


def infer_decode_only(traces):
    """When this EPP ran a prefill profile for some request, a request that ran
    only the decode profile was deliberately kept off the P/D path."""
    if not any("prefill" in trace["profiles"] for trace in traces):
        return
    for trace in traces:
        decode = trace["profiles"].get("decode")
        if trace["pd"] == "unknown" and decode and decode["picked"] and "prefill" not in trace["profiles"]:
            trace["pd"] = "disabled"
            trace["pd_decision"] = "decode worker only (the profile handler skipped the prefill profile)"


def trace_key(trace):
    return trace["request_id"] or "#%d" % trace["index"]


# --------------------------------------------------------------------------
# Model-server events (routing-proxy sidecar and vLLM)
# --------------------------------------------------------------------------

def _kv_params(fields):
    params = fields.get("kv_transfer_params")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    merged = dict(params) if isinstance(params, dict) else {}
    for key in ("remote_block_ids", "remote_engine_id", "remote_host", "remote_port"):
        if key in fields and merged.get(key) is None:
            merged[key] = fields[key]
    return merged


def _body(fields):
    body = fields.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, dict) else {}


def model_server_event(parsed):
    """One parsed sidecar/vLLM record -> an event dict, or None when the record
    is not evidence of a request step."""
    if parsed is None:
        return None
    msg = parsed["msg"]
    fields = parsed["fields"]
    lowered = msg.lower()
    event = None
    if lowered.startswith("running nixl protocol"):
        event = {"type": "nixl_protocol"}
    elif lowered.startswith("sending request to prefiller"):
        url = fields.get("url") or fields.get("hostPort") or fields.get("prefill_host") or ""
        event = {"type": "prefill_sent", "url": str(url), "model": _body(fields).get("model")}
    elif lowered.startswith("received prefiller response"):
        params = _kv_params(fields)
        event = {
            "type": "prefill_response",
            "remote_block_ids": params.get("remote_block_ids"),
            "remote_engine_id": params.get("remote_engine_id"),
            "remote_host": params.get("remote_host"),
            "remote_port": params.get("remote_port"),
        }
    elif lowered.startswith("sending request to decoder"):
        params = _kv_params(_body(fields))
        event = {"type": "decode_sent", "remote_engine_id": params.get("remote_engine_id"),
                 "remote_block_ids": params.get("remote_block_ids")}
    elif parsed["kind"] in ("vllm", "klog"):
        event = _vllm_event(msg, fields)
    if event is not None:
        event["ts"] = parsed["ts"]
    return event


def _vllm_event(msg, fields):
    match = re.search(r"start_load_kv for request (\S+?) from remote engine (\S+?)\.?(?:\s|$)", msg)
    if match:
        return {"type": "kv_load", "request_id": match.group(1), "remote_engine_id": match.group(2)}
    if "NIXL handshake" in msg:
        return {"type": "nixl_handshake"}
    match = re.search(r"Finished recving KV transfer for request (\S+)", msg)
    if match:
        return {"type": "kv_recv_done", "request_id": match.group(1).rstrip(".")}
    match = re.search(r"Finished sending KV transfer for request (\S+)", msg)
    if match:
        return {"type": "kv_send_done", "request_id": match.group(1).rstrip(".")}
    match = re.search(r"Received request (\S+?):", msg)
    if match:
        return {"type": "received", "request_id": match.group(1)}
    if msg == "Received":
        # llm-d-inference-sim: new HTTP="text completion request (req id <id>)"
        for value in fields.values():
            found = re.search(r"req id ([^)\s]+)", str(value))
            if found:
                return {"type": "received", "request_id": found.group(1)}
    if msg == "HTTP request" and fields.get("method") == "POST":
        # llm-d-inference-sim --log-http: the request headers are a multi-line value
        found = re.search(r"(?im)^\s*X-Request-Id:\s*(\S+)", str(fields.get("headers", "")))
        if found:
            return {"type": "received", "request_id": found.group(1)}
    if msg == "Finished processing request" and fields.get("id"):
        return {"type": "served", "request_id": str(fields["id"]), "status": None}
    match = _ACCESS_RE.search(msg)
    if match and match.group(1) == "POST":
        return {"type": "served", "request_id": None, "path": match.group(2), "status": match.group(3)}
    return None


def _exchanges(events):
    """Sidecar events of one decode pod -> P/D exchanges, in order."""
    exchanges = []
    for event in events:
        kind = event["type"]
        if kind == "prefill_sent":
            exchanges.append({"ts": event["ts"], "url": event["url"], "response": None, "decode_sent": False,
                              "engine": None})
        elif kind == "prefill_response":
            for exchange in exchanges:
                if exchange["response"] is None:
                    exchange["response"] = event
                    exchange["engine"] = event.get("remote_engine_id")
                    break
        elif kind == "decode_sent":
            for exchange in exchanges:
                if not exchange["decode_sent"]:
                    exchange["decode_sent"] = True
                    if not exchange["engine"]:
                        exchange["engine"] = event.get("remote_engine_id")
                    break
    return exchanges


def _host_of(url):
    match = re.match(r"^(?:\w+://)?\[?([^\]/:]+)\]?", url or "")
    return match.group(1) if match else None


def _after(ts, reference):
    return ts is None or reference is None or ts >= reference - _CLOCK_SLACK_SECONDS


def _pd_entry(trace, decode_pod):
    return {
        "request_id": trace["request_id"] if trace else None,
        "trace_index": trace["index"] if trace else None,
        "decode_pod": decode_pod,
        "prefill_pod": None,
        "prefill_sent": False,
        "prefill_response": None,
        "decode_sent": False,
        "nixl_handshake": False,
        "kv_transfer_done_prefill": False,
        "kv_transfer_done_decode": False,
        "kv_request_id": None,
        "pd_ran": False,
        "missing": [],
    }


def _fill_from_exchange(entry, exchange, pod_events, ip_to_pod, prefill_pods, used_loads):
    entry["prefill_sent"] = True
    response = exchange["response"]
    if response is not None:
        entry["prefill_response"] = {key: response.get(key) for key in
                                     ("remote_block_ids", "remote_engine_id", "remote_host", "remote_port")}
    entry["decode_sent"] = exchange["decode_sent"]
    host = _host_of(exchange["url"]) or (response or {}).get("remote_host")
    entry["prefill_pod"] = ip_to_pod.get(host) or (prefill_pods[0] if len(prefill_pods) == 1 else None)

    decode_events = pod_events.get(entry["decode_pod"], [])
    load = None
    candidates = [event for event in decode_events
                  if event["type"] == "kv_load" and id(event) not in used_loads and _after(event["ts"], exchange["ts"])]
    if exchange["engine"]:
        matching = [event for event in candidates if event["remote_engine_id"] == exchange["engine"]]
        candidates = matching or candidates
    if candidates:
        load = candidates[0]
        used_loads.add(id(load))
        entry["kv_request_id"] = load["request_id"]
    kv_id = base_request_id(entry["kv_request_id"])
    done_ts = None
    if kv_id:
        for event in decode_events:
            if event["type"] == "kv_recv_done" and base_request_id(event["request_id"]) == kv_id:
                entry["kv_transfer_done_decode"] = True
                done_ts = event["ts"]
                break
        search_pods = [entry["prefill_pod"]] if entry["prefill_pod"] else prefill_pods
        for pod in search_pods:
            for event in pod_events.get(pod, []):
                if event["type"] == "kv_send_done" and base_request_id(event["request_id"]) == kv_id:
                    entry["kv_transfer_done_prefill"] = True
                    entry["prefill_pod"] = entry["prefill_pod"] or pod
    limit = done_ts if done_ts is not None else (load["ts"] if load else None)
    # vLLM shakes hands once per remote engine, so a handshake before this
    # transfer also serves it
    entry["nixl_handshake"] = any(
        event["type"] == "nixl_handshake" and (limit is None or event["ts"] is None or event["ts"] <= limit + 5)
        for event in decode_events
    )


def _finish_pd_entry(entry):
    steps = [
        ("prefill_sent", entry["prefill_sent"]),
        ("prefill_response", bool(entry["prefill_response"] and entry["prefill_response"].get("remote_block_ids"))),
        ("decode_sent", entry["decode_sent"]),
        ("kv_transfer_done", entry["kv_transfer_done_decode"] or entry["kv_transfer_done_prefill"]),
    ]
    entry["missing"] = [name for name, seen in steps if not seen]
    entry["pd_ran"] = not entry["missing"]
    return entry


def reconstruct_pd(traces, trace_ts, pod_events, pods):
    """Join EPP traces with sidecar and vLLM events into P/D evidence.

    trace_ts: {trace index: epoch seconds}; pod_events: {pod: [event, ...]}
    in log order; pods: {pod: {role, ip}}.
    A request is linked to its sidecar exchange by the vLLM request id when
    the EPP's x-request-id reaches vLLM, else by order and time on the decode
    pod that handled it."""
    ip_to_pod = {info.get("ip"): name for name, info in pods.items() if info.get("ip")}
    prefill_pods = sorted(name for name, info in pods.items() if info.get("role") == "prefill")
    decode_pods = [name for name, info in pods.items() if info.get("role") in ("decode", "other")]
    used_loads = set()
    evidence = []
    linked_traces = set()

    for pod in decode_pods:
        exchanges = _exchanges(pod_events.get(pod, []))
        if not exchanges:
            continue
        waiting = [trace for trace in traces
                   if (trace["handled_by"] or trace["picked"]) == pod and trace["pd"] != "disabled"]
        for exchange in exchanges:
            entry = _pd_entry(None, pod)
            _fill_from_exchange(entry, exchange, pod_events, ip_to_pod, prefill_pods, used_loads)
            match = None
            kv_id = base_request_id(entry["kv_request_id"])
            for trace in waiting:
                if kv_id and base_request_id(trace["request_id"]) == kv_id:
                    match = trace
                    break
            if match is None:
                for trace in waiting:
                    if trace["index"] not in linked_traces and _after(exchange["ts"], trace_ts.get(trace["index"])):
                        match = trace
                        break
            if match is not None:
                linked_traces.add(match["index"])
                waiting.remove(match)
                entry["request_id"] = match["request_id"]
                entry["trace_index"] = match["index"]
            evidence.append(_finish_pd_entry(entry))

    for trace in traces:
        if trace["pd"] == "enabled" and trace["index"] not in linked_traces:
            entry = _pd_entry(trace, trace["handled_by"] or trace["picked"])
            entry["prefill_pod"] = trace["prefill_picked"]
            evidence.append(_finish_pd_entry(entry))

    by_index = dict((entry["trace_index"], entry) for entry in evidence if entry["trace_index"] is not None)
    for trace in traces:
        entry = by_index.get(trace["index"])
        if entry is not None:
            trace["pd_ran"] = entry["pd_ran"]
    return evidence


def mark_served(traces, pod_events):
    """A request reached a model server when the EPP logged its response (a
    2xx status or token usage) or a model server logged its request id."""
    seen_ids = set()
    for events in pod_events.values():
        for event in events:
            if event["type"] in ("received", "served", "kv_load") and event.get("request_id"):
                seen_ids.add(base_request_id(event["request_id"]))
    for trace in traces:
        status_ok = bool(trace["status"]) and trace["status"].startswith("2")
        trace["served"] = bool(trace["usage"]) or status_ok or (
            trace["request_id"] is not None and base_request_id(trace["request_id"]) in seen_ids)


# --------------------------------------------------------------------------
# Anomalies and summary
# --------------------------------------------------------------------------

def detect_anomalies(traces, evidence):
    """Known failure patterns -> [{kind, request_id, detail}]."""
    anomalies = []

    def add(kind, trace, detail):
        anomalies.append({"kind": kind, "request_id": trace_key(trace) if trace else None, "detail": detail})

    for trace in traces:
        for name, profile in trace["profiles"].items():
            if not profile["tie_break_random"]:
                continue
            scores = profile["total_scores"] or {}
            value = list(scores.values())[0] if scores else None
            pods = sorted(set(scores) | set(profile["filters"][-1]["kept"] if profile["filters"] else []))
            detail = "profile %s: %d candidate pods %s; the pick (%s) was a random tie-break" % (
                name, len(pods), "all scored %g" % value if value is not None else "scored equally",
                profile["picked"] or "unknown")
            add("scores_all_equal", trace, detail)
        for scorer in trace["scorers_without_scores"]:
            add("scorer_no_scores", trace, "scorer %s produced no scores, so it did not influence the pick" % scorer)
        if not trace["served"] and not trace["passthrough"]:
            if trace["picked"]:
                detail = "scheduled to %s but no response from a model server was logged" % trace["picked"]
            else:
                detail = "no pod was picked"
            if trace["errors"]:
                detail += " (EPP error: %s)" % trace["errors"][-1]
            add("not_served", trace, detail)

    traces_by_index = dict((trace["index"], trace) for trace in traces)
    for entry in evidence:
        trace = traces_by_index.get(entry["trace_index"])
        if trace is not None and trace["pd"] == "enabled" and not entry["pd_ran"]:
            add("pd_no_kv_transfer", trace, "P/D was scheduled (decode %s, prefill %s) but these steps were not seen: %s" % (
                entry["decode_pod"] or "unknown", entry["prefill_pod"] or "unknown", ", ".join(entry["missing"])))
    return anomalies


def summarize(all_traces, evidence, anomalies, lines_kept, lines_dropped):
    traces = [trace for trace in all_traces if not trace["passthrough"]]
    picks = {}
    handled = {}
    for trace in traces:
        if trace["picked"]:
            picks[trace["picked"]] = picks.get(trace["picked"], 0) + 1
        if trace["handled_by"]:
            handled[trace["handled_by"]] = handled.get(trace["handled_by"], 0) + 1
    by_kind = {}
    for anomaly in anomalies:
        by_kind[anomaly["kind"]] = by_kind.get(anomaly["kind"], 0) + 1
    formats = {}
    for trace in traces:
        formats[trace["format"]] = formats.get(trace["format"], 0) + 1
    return {
        "requests": len(traces),
        "served": sum(1 for trace in traces if trace["served"]),
        "passthrough": len(all_traces) - len(traces),
        "picks_per_pod": picks,
        "handled_per_pod": handled,
        "random_tie_breaks": sum(1 for trace in traces if trace["tie_break_random"]),
        "pd": {
            "enabled": sum(1 for trace in traces if trace["pd"] == "enabled"),
            "disabled": sum(1 for trace in traces if trace["pd"] == "disabled"),
            "unknown": sum(1 for trace in traces if trace["pd"] == "unknown"),
            "exchanges": sum(1 for entry in evidence if entry["prefill_sent"]),
            "ran": sum(1 for entry in evidence if entry["pd_ran"]),
        },
        "formats": formats,
        "anomalies": by_kind,
        "lines_kept": lines_kept,
        "lines_dropped": lines_dropped,
    }


def _reference_year(epp_parsed):
    for parsed in epp_parsed:
        if parsed and parsed["ts"] is not None:
            return (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=parsed["ts"])).year
    return None


def guess_role(pod_name):
    lowered = pod_name.lower()
    if "epp" in lowered or "endpoint-picker" in lowered:
        return "epp"
    if "prefill" in lowered:
        return "prefill"
    if "decode" in lowered:
        return "decode"
    return "other"


def analyze(sources, pods, noise_patterns, default_year=1970):
    """Analyze collected logs.

    sources: [{pod, container, text}] in collection order (a container's
    previous instance before its current one). pods: {pod: {role, ip}};
    pods missing there get a role guessed from their name. noise_patterns:
    compiled patterns from compile_noise_patterns(). default_year completes
    klog/vLLM timestamps when no EPP timestamp carries a year.

    Returns a dict with filtered texts, traces, pd_evidence, anomalies,
    summary and per-file line counts."""
    pods = dict((name, dict(info)) for name, info in (pods or {}).items())
    for source in sources:
        pods.setdefault(source["pod"], {"role": guess_role(source["pod"]), "ip": None})

    files = []
    filtered = []
    dropped_per_pattern = {}
    record_sets = []
    for source in sources:
        records = split_records(source["text"])
        kept, dropped, per_pattern = filter_noise(records, noise_patterns)
        for pattern, count in per_pattern.items():
            dropped_per_pattern[pattern] = dropped_per_pattern.get(pattern, 0) + count
        role = pods[source["pod"]].get("role") or "other"
        files.append({"pod": source["pod"], "container": source["container"], "role": role,
                      "lines_kept": count_lines(kept), "lines_dropped": dropped})
        filtered.append({"pod": source["pod"], "container": source["container"], "text": "\n".join(kept) + ("\n" if kept else "")})
        record_sets.append((source, role, records))

    epp_parsed = []
    for source, role, records in record_sets:
        if role == "epp":
            epp_parsed.extend(parse_line(record, default_year) for record in records)
    year = _reference_year(epp_parsed) or default_year

    traces, trace_ts = parse_epp_records(epp_parsed)
    pod_events = {}
    for source, role, records in record_sets:
        if role == "epp":
            continue
        events = pod_events.setdefault(source["pod"], [])
        for record in records:
            event = model_server_event(parse_line(record, year))
            if event is not None:
                events.append(event)

    resolve_endpoints(traces, pods)
    infer_decode_only(traces)
    evidence = reconstruct_pd(traces, trace_ts, pod_events, pods)
    mark_served(traces, pod_events)
    anomalies = detect_anomalies(traces, evidence)
    lines_kept = sum(item["lines_kept"] for item in files)
    lines_dropped = sum(item["lines_dropped"] for item in files)
    return {
        "pods": pods,
        "files": files,
        "filtered": filtered,
        "dropped_per_pattern": dropped_per_pattern,
        "traces": traces,
        "pd_evidence": evidence,
        "anomalies": anomalies,
        "summary": summarize(traces, evidence, anomalies, lines_kept, lines_dropped),
    }


# --------------------------------------------------------------------------
# The human report
# --------------------------------------------------------------------------

def _cell(value):
    if value is None or value == "":
        return "-"
    return str(value).replace("|", "\\|")


def render_summary(result, title="llm-d diagnostics"):
    """Markdown report of an analyze() result."""
    summary = result["summary"]
    lines = ["# %s" % title, ""]
    lines.append("- requests traced: %d (served: %d)" % (summary["requests"], summary["served"]))
    picks = ", ".join("%s: %d" % (pod, count) for pod, count in sorted(summary["picks_per_pod"].items())) or "none"
    lines.append("- picks per pod: %s" % picks)
    pd = summary["pd"]
    lines.append("- P/D: %d requests scheduled with prefill+decode, %d decode only, %d unknown; "
                 "%d sidecar exchanges, %d with a completed KV transfer" % (
                     pd["enabled"], pd["disabled"], pd["unknown"], pd["exchanges"], pd["ran"]))
    lines.append("- random tie-breaks: %d" % summary["random_tie_breaks"])
    lines.append("- log lines kept: %d, dropped as noise: %d" % (summary["lines_kept"], summary["lines_dropped"]))
    lines.append("")

    lines += ["## Anomalies", ""]
    if result["anomalies"]:
        for anomaly in result["anomalies"]:
            lines.append("- **%s** (%s): %s" % (anomaly["kind"], anomaly["request_id"] or "no request", anomaly["detail"]))
    else:
        lines.append("None found.")
    lines.append("")

    lines += ["## Requests", ""]
    if result["traces"]:
        lines.append("| request | time | model | P/D | candidates | picked | random tie | handled by | status | tokens |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for trace in result["traces"]:
            usage = trace["usage"] or {}
            lines.append("| %s |" % " | ".join(_cell(value) for value in (
                trace_key(trace), trace["ts"], trace["model"],
                trace["pd"] + ("" if trace["pd_ran"] is None else (", ran" if trace["pd_ran"] else ", did not run")),
                len(trace["candidates"]), trace["picked"], "yes" if trace["tie_break_random"] else "no",
                trace["handled_by"], trace["status"], usage.get("total_tokens"))))
        lines.append("")
        for trace in result["traces"]:
            lines.append("### %s" % trace_key(trace))
            lines.append("")
            if trace["pd_decision"]:
                lines.append("- P/D decision: %s" % trace["pd_decision"])
            for name, profile in trace["profiles"].items():
                lines.append("- profile `%s`:" % name)
                for step in profile["filters"]:
                    lines.append("  - filter `%s` kept %s" % (step["plugin"], ", ".join(step["kept"]) or "nothing"))
                for scorer, per_pod in profile["scores"].items():
                    scores = ", ".join("%s=%g" % (pod, score) for pod, score in per_pod.items()) or "no scores"
                    lines.append("  - scorer `%s`: %s" % (scorer, scores))
                if profile["total_scores"]:
                    lines.append("  - weighted: %s" % ", ".join(
                        "%s=%g" % (pod, score) for pod, score in profile["total_scores"].items()))
                lines.append("  - picked: %s%s" % (profile["picked"] or "nothing",
                                                   " (random tie-break)" if profile["tie_break_random"] else ""))
            for error in trace["errors"]:
                lines.append("- EPP error: %s" % error)
            lines.append("")
    else:
        lines.append("No EPP request traces found (is the EPP logging at verbosity 4 or more?).")
        lines.append("")

    lines += ["## P/D evidence", ""]
    if result["pd_evidence"]:
        lines.append("| request | decode | prefill | to prefiller | prefiller answer (blocks) | to decoder "
                     "| NIXL handshake | KV done decode | KV done prefill | P/D ran |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for entry in result["pd_evidence"]:
            answer = entry["prefill_response"] or {}
            lines.append("| %s |" % " | ".join(_cell(value) for value in (
                entry["request_id"] or ("#%s" % entry["trace_index"] if entry["trace_index"] else "unlinked"),
                entry["decode_pod"], entry["prefill_pod"], _yes(entry["prefill_sent"]),
                answer.get("remote_block_ids") if answer else None, _yes(entry["decode_sent"]),
                _yes(entry["nixl_handshake"]), _yes(entry["kv_transfer_done_decode"]),
                _yes(entry["kv_transfer_done_prefill"]), _yes(entry["pd_ran"]))))
    else:
        lines.append("No P/D exchange found in the routing-proxy logs.")
    lines.append("")

    lines += ["## Log files", ""]
    lines.append("| pod | container | role | lines kept | lines dropped |")
    lines.append("| --- | --- | --- | --- | --- |")
    for item in result["files"]:
        lines.append("| %s | %s | %s | %d | %d |" % (
            item["pod"], item["container"], item["role"], item["lines_kept"], item["lines_dropped"]))
    not_started = ["%s/%s" % (pod, container) for pod, info in sorted(result["pods"].items())
                   for container in info.get("not_started") or []]
    if not_started:
        lines += ["", "Containers not started (no log to read): %s" % ", ".join(not_started)]
    if result["dropped_per_pattern"]:
        lines += ["", "Noise dropped per pattern:", ""]
        for pattern, count in sorted(result["dropped_per_pattern"].items(), key=lambda item: (-item[1], item[0])):
            lines.append("- `%s`: %d" % (pattern, count))
    lines.append("")
    return "\n".join(lines)


def _yes(flag):
    return "yes" if flag else "no"
