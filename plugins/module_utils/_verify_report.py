# This file is for internal use by the llmd.stack collection only.
# Its contents may change without notice.
#
# Copyright: Contributors to the llmd.stack collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure core of the verify report: one results list from the llmd_stack_facts
checks and the llmd_inference_probe result, a summary, and the renderings for
people (Markdown, a compact table) and CI (JUnit XML). No I/O here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from xml.sax.saxutils import escape, quoteattr

STATUSES = ("pass", "fail", "warn", "skip")
PROBE_BLOCKED = "no endpoint to probe: the gateway has no address and no Service (see the gateway checks)"


def _text(value):
    return "" if value is None else str(value)


def _fact_result(check):
    if not isinstance(check, dict):
        return None
    status = check.get("status")
    return {
        "check": _text(check.get("id")) or "unknown",
        "source": "llmd_stack_facts",
        "status": status if status in STATUSES else "fail",
        "resource": _text(check.get("resource")),
        "detail": _text(check.get("detail")),
        "fix": _text(check.get("fix")),
    }


def _measure(entry):
    parts = []
    if entry.get("status") is not None:
        parts.append("HTTP %s" % entry["status"])
    if isinstance(entry.get("latency_ms"), (int, float)):
        parts.append("%.0f ms" % entry["latency_ms"])
    if isinstance(entry.get("ttft_ms"), (int, float)):
        parts.append("TTFT %.0f ms" % entry["ttft_ms"])
    if entry.get("model"):
        parts.append("model %s" % entry["model"])
    if entry.get("pod"):
        parts.append("pod %s" % entry["pod"])
    if entry.get("routed_by_epp"):
        parts.append("via EPP")
    return ", ".join(parts)


def _probe_endpoint_result(entry):
    ok = bool(entry.get("ok"))
    detail = _measure(entry)
    if not ok and entry.get("error"):
        detail = "%s (%s)" % (_text(entry.get("error")), detail) if detail else _text(entry.get("error"))
    return {
        "check": "probe.%s" % (_text(entry.get("endpoint")) or "request"),
        "source": "llmd_inference_probe",
        "status": "pass" if ok else "fail",
        "resource": _text(entry.get("url")),
        "detail": detail,
        "fix": "" if ok else _text(entry.get("hint")),
    }


def _percentiles(summary, key):
    values = summary.get(key)
    if not isinstance(values, dict) or values.get("p50") is None:
        return ""
    return "%s p50 %.0f / p95 %.0f ms" % (key.replace("_ms", "").upper(), values.get("p50") or 0, values.get("p95") or 0)


def _burst_result(burst):
    ok = bool(burst.get("ok"))
    parts = ["%s/%s ok" % (burst.get("succeeded", 0), burst.get("requests", 0))]
    for key in ("latency_ms", "ttft_ms"):
        text = _percentiles(burst, key)
        if text:
            parts.append(text)
    if isinstance(burst.get("tokens_per_s"), (int, float)):
        parts.append("%.1f tokens/s" % burst["tokens_per_s"])
    if isinstance(burst.get("pods"), dict) and burst["pods"]:
        parts.append("pods %s" % json.dumps(burst["pods"], sort_keys=True))
    detail = ", ".join(parts)
    if not ok and burst.get("error"):
        detail = "%s; %s" % (_text(burst.get("error")), detail)
    return {"check": "probe.burst", "source": "llmd_inference_probe", "status": "pass" if ok else "fail",
            "resource": _text(burst.get("endpoint")), "detail": detail, "fix": "" if ok else _text(burst.get("hint"))}


def _affinity_result(affinity):
    ok = bool(affinity.get("ok"))
    share = affinity.get("same_pod_share")
    detail = "%s of %s prompts sharing a prefix went to %s" % (
        "%.0f%%" % (share * 100) if isinstance(share, (int, float)) else "?",
        affinity.get("prompts", "?"), _text(affinity.get("top_pod")) or "no pod")
    if not ok and affinity.get("error"):
        detail = "%s; %s" % (_text(affinity.get("error")), detail)
    fix = "" if ok else ("check that the EPP runs the prefix-cache scorer (scheduling preset default, "
                         "multi-factor or pd) and that requests go through the gateway")
    return {"check": "probe.prefix_affinity", "source": "llmd_inference_probe", "status": "pass" if ok else "fail",
            "resource": "", "detail": detail, "fix": fix}


def _routing_result(routing, expect_epp):
    requests = routing.get("requests") or 0
    via_epp = routing.get("via_epp") or 0
    pods = routing.get("pods") if isinstance(routing.get("pods"), dict) else {}
    detail = "%s of %s answers came through the EPP; pods %s" % (via_epp, requests, json.dumps(pods, sort_keys=True))
    if not requests:
        return None
    if via_epp == requests:
        status, fix = "pass", ""
    else:
        status = "fail" if expect_epp else "warn"
        fix = ("answers without the x-went-into-resp-headers header did not pass the EPP: check that the "
               "HTTPRoute points at the InferencePool and that the gateway runs the inference extension")
    return {"check": "probe.routing", "source": "llmd_inference_probe", "status": status, "resource": "",
            "detail": detail, "fix": fix}


def build_results(checks, probe, expect_epp=True):
    """The verify results list: every facts check, then the probe's evidence.

    `probe` is the registered llmd_inference_probe result, or None/{} when no
    endpoint could be probed (reported as a skipped `probe.endpoint`).
    """
    results = [r for r in (_fact_result(c) for c in (checks or [])) if r]
    if not isinstance(probe, dict) or not probe or probe.get("skipped"):
        results.append({"check": "probe.endpoint", "source": "llmd_inference_probe", "status": "skip",
                        "resource": "", "detail": PROBE_BLOCKED, "fix": ""})
        return results
    if probe.get("failed") and not probe.get("results"):
        results.append({"check": "probe.endpoint", "source": "llmd_inference_probe", "status": "fail",
                        "resource": "", "detail": _text(probe.get("msg")) or "the probe failed",
                        "fix": "see the message; check the endpoint, credentials and TLS settings"})
        return results
    for entry in probe.get("results") or []:
        if isinstance(entry, dict):
            results.append(_probe_endpoint_result(entry))
    if isinstance(probe.get("burst"), dict):
        results.append(_burst_result(probe["burst"]))
    if isinstance(probe.get("prefix_affinity"), dict):
        results.append(_affinity_result(probe["prefix_affinity"]))
    if isinstance(probe.get("routing"), dict):
        routing = _routing_result(probe["routing"], expect_epp)
        if routing:
            results.append(routing)
    return results


def summarize(results):
    summary = dict((status, 0) for status in STATUSES)
    for result in results:
        summary[result["status"]] = summary.get(result["status"], 0) + 1
    summary["total"] = len(results)
    summary["ok"] = summary["fail"] == 0
    return summary


def failures(results):
    """One line per failing check: what failed, on what, and the fix."""
    lines = []
    for result in results:
        if result["status"] != "fail":
            continue
        line = "%s%s: %s" % (result["check"], " (%s)" % result["resource"] if result["resource"] else "",
                             result["detail"] or "failed")
        if result["fix"]:
            line += " -> fix: %s" % result["fix"]
        lines.append(line)
    return lines


def table(results, width=100):
    """A compact fixed-width summary table, one line per result."""
    check_width = max([len("CHECK")] + [len(r["check"]) for r in results])
    lines = ["%-6s %-*s  %s" % ("STATUS", check_width, "CHECK", "DETAIL")]
    for result in results:
        detail = result["detail"]
        if result["resource"] and result["source"] == "llmd_stack_facts":
            detail = "%s: %s" % (result["resource"], detail)
        room = max(20, width - check_width - 9)
        if len(detail) > room:
            detail = detail[:room - 3] + "..."
        lines.append("%-6s %-*s  %s" % (result["status"].upper(), check_width, result["check"], detail))
    return lines


def _md_cell(value):
    return _text(value).replace("|", "\\|").replace("\n", " ")


def markdown(results, summary, title, context):
    """The report for people."""
    verdict = "PASSED" if summary["ok"] else "FAILED"
    out = ["# %s: %s" % (title, verdict), ""]
    for key in sorted(context):
        out.append("- **%s**: %s" % (key, _md_cell(context[key])))
    out += ["- **checks**: %s pass, %s fail, %s warn, %s skip" % (
        summary["pass"], summary["fail"], summary["warn"], summary["skip"]), ""]
    failing = [r for r in results if r["status"] == "fail"]
    if failing:
        out += ["## What to fix", ""]
        for result in failing:
            resource = " (%s)" % _md_cell(result["resource"]) if result["resource"] else ""
            fix = "  \n  **Fix:** %s" % _md_cell(result["fix"]) if result["fix"] else ""
            out.append("- `%s`%s: %s%s" % (result["check"], resource, _md_cell(result["detail"]), fix))
        out.append("")
    out += ["## All checks", "", "| status | check | resource | detail | fix |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        cells = [result["status"]] + [_md_cell(result[key]) for key in ("check", "resource", "detail", "fix")]
        out.append("| %s |" % " | ".join(cells))
    return "\n".join(out) + "\n"


def junit(results, suite_name, timestamp):
    """JUnit XML for CI: one testcase per result; fail -> failure, skip -> skipped, warn -> passes with output."""
    summary = summarize(results)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<testsuites name=%s tests="%d" failures="%d" skipped="%d">' % (
               quoteattr(suite_name), summary["total"], summary["fail"], summary["skip"]),
           '  <testsuite name=%s tests="%d" failures="%d" skipped="%d" timestamp=%s>' % (
               quoteattr(suite_name), summary["total"], summary["fail"], summary["skip"], quoteattr(_text(timestamp)))]
    for result in results:
        name = result["check"] + (" [%s]" % result["resource"] if result["resource"] else "")
        out.append("    <testcase classname=%s name=%s>" % (quoteattr(result["source"]), quoteattr(name)))
        if result["status"] == "fail":
            out.append("      <failure message=%s>%s</failure>" % (
                quoteattr(result["detail"] or "failed"), escape("fix: %s" % result["fix"] if result["fix"] else result["detail"])))
        elif result["status"] == "skip":
            out.append("      <skipped message=%s/>" % quoteattr(result["detail"] or "skipped"))
        elif result["status"] == "warn":
            out.append("      <system-out>%s</system-out>" % escape("WARN: %s %s" % (result["detail"], result["fix"])))
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>"]
    return "\n".join(out) + "\n"
