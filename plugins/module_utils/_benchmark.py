# This file is for internal use by the llmd.stack collection only.
"""guidellm command lines from benchmark settings (pure, no I/O).

One builder serves the in-cluster Job and local mode, so both run the same
benchmark. guidellm's CLI moved twice; the builder speaks the two dialects
that `guidellm benchmark` understands:

- 0.3.x: `--rate-type`; chat is chosen by GUIDELLM__PREFERRED_ROUTE.
- 0.4 to 0.6: `--profile` and `--request-type`; multi-turn (`turns=`) from 0.6.

guidellm 0.7 replaced `guidellm benchmark` with `guidellm run --backend
kind=...`; it is refused with a message rather than sent flags it rejects.
"""

import re

PROFILES = ("synchronous", "concurrent", "throughput", "constant", "poisson", "sweep")
# profiles that take --rate, and what the number means to guidellm
RATE_MEANING = {"concurrent": "streams", "constant": "requests per second", "poisson": "requests per second",
                "sweep": "number of benchmarks"}
REQUEST_TYPES = {"completions": "text_completions", "chat": "chat_completions"}
REPORT_FILE = "benchmarks.json"

DEFAULTS = {
    "target": "",
    "model": "",
    "processor": "",
    "request_type": "completions",
    "profile": "concurrent",
    "rate": [4],
    "prompt_tokens": 256,
    "output_tokens": 128,
    "max_seconds": 60,
    "max_requests": 0,
    "turns": 1,
    # requests kept verbatim in the report; all of them make it huge (and
    # the in-cluster Job reads the report from a container log)
    "sample_requests": 20,
    "output_dir": "/results",
}


def parse_version(text):
    """(major, minor, patch) from '0.6.1', 'v0.6.1' or an image reference
    ending in such a tag; None when there is no version in it."""
    match = re.search(r"(?:^|[:v@/-])v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.\w]*)$", str(text or "").strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def version_text(version):
    return ".".join(str(part) for part in version)


INT_KEYS = ("prompt_tokens", "output_tokens", "turns", "max_seconds", "max_requests", "sample_requests")


def settings_with_defaults(settings):
    """The defaults overlaid with the given settings; whole numbers given as
    text (ansible-core < 2.19 templates `{{ x | int }}` in a dict to '256') become ints."""
    merged = dict(DEFAULTS)
    merged.update(dict((key, value) for key, value in (settings or {}).items() if value is not None))
    for key in INT_KEYS:
        value = merged[key]
        if isinstance(value, str) and re.match(r"^\s*\d+\s*$", value):
            merged[key] = int(value)
    return merged


def validate(settings, version):
    """Every reason the settings cannot become a guidellm command; [] when they can."""
    s = settings_with_defaults(settings)
    errors = []
    if version is None:
        errors.append("the guidellm version is unknown: give it explicitly (an image tag like v0.6.1 "
                      "or guidellm_version)")
    elif version >= (0, 7, 0):
        errors.append("guidellm %s replaced 'guidellm benchmark' with 'guidellm run --backend kind=...', "
                      "which this collection does not drive yet: use guidellm 0.3 to 0.6 (image tag v0.6.1)"
                      % version_text(version))
    elif version < (0, 3, 0):
        errors.append("guidellm %s is older than 0.3, the oldest CLI this collection drives" % version_text(version))
    if not s["target"]:
        errors.append("target is empty: give the gateway URL (http://host:port)")
    elif not re.match(r"^https?://[^/\s]+", s["target"]):
        errors.append("target %r is not an http(s) URL" % s["target"])
    if s["request_type"] not in REQUEST_TYPES:
        errors.append("request_type %r is not one of %s" % (s["request_type"], ", ".join(sorted(REQUEST_TYPES))))
    if s["profile"] not in PROFILES:
        errors.append("profile %r is not one of %s" % (s["profile"], ", ".join(PROFILES)))
    rates = rate_list(s["rate"])
    if rates is None:
        errors.append("rate %r is not a number or a list of positive numbers" % (s["rate"],))
    elif s["profile"] in RATE_MEANING and not rates:
        errors.append("profile %s needs a rate (%s)" % (s["profile"], RATE_MEANING[s["profile"]]))
    elif s["profile"] not in RATE_MEANING and rates:
        errors.append("profile %s takes no rate; set rate to [] (got %s)" % (s["profile"], rates))
    elif s["profile"] == "concurrent" and any(r != int(r) for r in rates):
        errors.append("concurrent streams must be whole numbers (got %s)" % rates)
    elif s["profile"] == "sweep" and len(rates) > 1:
        errors.append("a sweep takes one rate, the number of benchmarks (got %s)" % rates)
    for key in ("prompt_tokens", "output_tokens", "turns"):
        if not _positive_int(s[key]):
            errors.append("%s must be a positive whole number (got %r)" % (key, s[key]))
    for key in ("max_seconds", "max_requests"):
        if not _positive_int(s[key]) and s[key] != 0:
            errors.append("%s must be 0 (no limit) or a positive whole number (got %r)" % (key, s[key]))
    if not _positive_int(s["sample_requests"]) and s["sample_requests"] != 0:
        errors.append("sample_requests must be 0 (keep none) or a positive whole number (got %r)"
                      % (s["sample_requests"],))
    if s["max_seconds"] == 0 and s["max_requests"] == 0:
        # synthetic data never runs out, so neither does the benchmark
        errors.append("set max_seconds or max_requests: without either a %s benchmark never ends" % s["profile"])
    if version is not None and (0, 3, 0) <= version < (0, 6, 0) and _positive_int(s["turns"]) and s["turns"] > 1:
        errors.append("multi-turn (turns=%s) needs guidellm 0.6 or newer; this is %s"
                      % (s["turns"], version_text(version)))
    return errors


def guidellm_command(settings, version):
    """{"argv": [...], "env": {...}, "report": path} for `guidellm benchmark`.

    Call validate() first: this function assumes valid settings."""
    s = settings_with_defaults(settings)
    legacy = version < (0, 4, 0)
    report = s["output_dir"].rstrip("/") + "/" + REPORT_FILE
    argv = ["guidellm", "benchmark", "run", "--target", s["target"]]
    env = {}
    if s["model"]:
        argv += ["--model", s["model"]]
    if s["processor"]:
        argv += ["--processor", s["processor"]]
    if legacy:
        env["GUIDELLM__PREFERRED_ROUTE"] = REQUEST_TYPES[s["request_type"]]
        argv += ["--rate-type", s["profile"]]
    else:
        argv += ["--request-type", REQUEST_TYPES[s["request_type"]], "--profile", s["profile"]]
    rates = rate_list(s["rate"])
    if rates:
        argv += ["--rate", ",".join(_number_text(r) for r in rates)]
    argv += ["--data", data_spec(s)]
    if s["max_seconds"]:
        argv += ["--max-seconds", str(s["max_seconds"])]
    if s["max_requests"]:
        argv += ["--max-requests", str(s["max_requests"])]
    argv += ["--output-sampling" if legacy else "--sample-requests", str(s["sample_requests"])]
    if legacy:
        argv += ["--output-path", report, "--disable-progress"]
    else:
        # not --output-path: the image sets GUIDELLM_OUTPUT_DIR, which 0.6
        # refuses to combine with it
        argv += ["--output-dir", s["output_dir"], "--outputs", REPORT_FILE, "--disable-console-interactive"]
    return {"argv": argv, "env": env, "report": report}


def data_spec(settings):
    """guidellm's synthetic data string, e.g. prompt_tokens=256,output_tokens=128."""
    parts = ["prompt_tokens=%d" % settings["prompt_tokens"], "output_tokens=%d" % settings["output_tokens"]]
    if settings["turns"] > 1:
        parts.append("turns=%d" % settings["turns"])
    return ",".join(parts)


def rate_list(rate):
    """A list of positive numbers from a number, a comma string or a list; None when invalid."""
    if rate is None or rate == "":
        return []
    if isinstance(rate, str):
        rate = [part for part in rate.split(",") if part.strip()]
    if not isinstance(rate, (list, tuple)):
        rate = [rate]
    numbers = []
    for item in rate:
        if isinstance(item, bool):
            return None
        try:
            number = float(item)
        except (TypeError, ValueError):
            return None
        if number <= 0:
            return None
        numbers.append(int(number) if number == int(number) else number)
    return numbers


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number_text(number):
    return str(int(number)) if number == int(number) else repr(float(number))


# container waiting reasons that do not go away by waiting
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "CrashLoopBackOff")


def pod_stuck_reasons(pods, all_states=False):
    """Why benchmark pods will not finish successfully: stuck container waits
    and failed containers. With all_states, a description of every pod's
    state (phase, why it is not scheduled) even when nothing is stuck."""
    reasons = []
    for pod in pods or []:
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        found = []
        for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
            if waiting.get("reason") in STUCK_REASONS:
                found.append("container %s: %s: %s" % (container.get("name"), waiting["reason"],
                                                       waiting.get("message", "")))
            elif terminated and terminated.get("exitCode", 0) != 0:
                found.append("container %s exited %s (%s)"
                             % (container.get("name"), terminated.get("exitCode"), terminated.get("reason", "")))
        if all_states:
            found.insert(0, "phase %s" % status.get("phase", "unknown"))
            for condition in status.get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                    found.append("not scheduled: %s" % condition.get("message", condition.get("reason", "")))
        reasons.extend("%s: %s" % (name, text.rstrip(": ")) for text in found)
    return reasons
