"""The verify report core: results from facts checks and probe results, and its renderings."""
import json
from xml.etree import ElementTree

import pytest

from ansible_collections.llmd.stack.plugins.module_utils import _verify_report as report

CHECKS = [
    {"id": "gateway.exists", "status": "pass", "resource": "Gateway ns/gw", "detail": "found", "fix": ""},
    {"id": "httproute.exists", "status": "fail", "resource": "HTTPRoute ns/r", "detail": "no HTTPRoute targets the Gateway",
     "fix": "apply the HTTPRoute"},
    {"id": "storage.model_pvc", "status": "skip", "resource": "", "detail": "no PVC used", "fix": ""},
]

PROBE_OK = {
    "changed": False,
    "results": [
        {"endpoint": "models", "ok": True, "status": 200, "latency_ms": 12.3, "model": "random", "routed_by_epp": True,
         "url": "http://127.0.0.1:1/v1/models"},
        {"endpoint": "completions", "ok": True, "status": 200, "latency_ms": 30.0, "ttft_ms": 20.4, "model": "random",
         "pod": "decode-0", "routed_by_epp": True, "url": "http://127.0.0.1:1/v1/completions"},
    ],
    "burst": {"endpoint": "completions", "requests": 4, "succeeded": 4, "ok": True, "tokens_per_s": 50.0,
              "latency_ms": {"p50": 40.0, "p95": 55.0}, "ttft_ms": {"p50": 20.0, "p95": 25.0},
              "pods": {"decode-0": 2, "decode-1": 2}},
    "routing": {"requests": 6, "via_epp": 6, "pods": {"decode-0": 3, "decode-1": 3}},
}


def by_check(results):
    return dict((r["check"], r) for r in results)


def test_facts_checks_are_kept_with_their_status_resource_and_fix():
    results = report.build_results(CHECKS, PROBE_OK)
    checks = by_check(results)
    assert checks["httproute.exists"] == {"check": "httproute.exists", "source": "llmd_stack_facts", "status": "fail",
                                          "resource": "HTTPRoute ns/r", "detail": "no HTTPRoute targets the Gateway",
                                          "fix": "apply the HTTPRoute"}
    assert checks["storage.model_pvc"]["status"] == "skip"


def test_probe_results_become_checks_with_measurements():
    checks = by_check(report.build_results([], PROBE_OK))
    assert checks["probe.models"]["status"] == "pass"
    assert checks["probe.completions"]["detail"] == "HTTP 200, 30 ms, TTFT 20 ms, model random, pod decode-0, via EPP"
    assert checks["probe.burst"]["status"] == "pass"
    assert "4/4 ok" in checks["probe.burst"]["detail"] and "TTFT p50 20" in checks["probe.burst"]["detail"]
    assert checks["probe.routing"]["status"] == "pass"


def test_a_failed_request_carries_the_error_and_the_hint_as_fix():
    probe = {"results": [{"endpoint": "completions", "ok": False, "status": 404, "error": "HTTP 404: route not found",
                          "hint": "likely cause: no HTTPRoute matched; fix: apply the HTTPRoute"}]}
    result = by_check(report.build_results([], probe))["probe.completions"]
    assert result["status"] == "fail"
    assert result["detail"].startswith("HTTP 404: route not found")
    assert result["fix"] == "likely cause: no HTTPRoute matched; fix: apply the HTTPRoute"


@pytest.mark.parametrize("probe", [None, {}, {"skipped": True, "changed": False}])
def test_no_probe_is_a_skipped_endpoint_check(probe):
    results = report.build_results(CHECKS, probe)
    assert results[-1]["check"] == "probe.endpoint" and results[-1]["status"] == "skip"


def test_a_probe_that_failed_before_any_request_is_one_failing_check():
    results = report.build_results([], {"failed": True, "msg": "port_forward: service gw not found"})
    assert [(r["check"], r["status"], r["detail"]) for r in results] == [
        ("probe.endpoint", "fail", "port_forward: service gw not found")]


@pytest.mark.parametrize("expect_epp, status", [(True, "fail"), (False, "warn")])
def test_answers_that_bypassed_the_epp(expect_epp, status):
    probe = {"results": [], "routing": {"requests": 4, "via_epp": 1, "pods": {"p": 4}}}
    assert by_check(report.build_results([], probe, expect_epp))["probe.routing"]["status"] == status


def test_unknown_statuses_and_malformed_entries_never_pass_silently():
    results = report.build_results([{"id": "x", "status": "weird"}, "not-a-dict", None], {"results": ["junk"]})
    assert [(r["check"], r["status"]) for r in results] == [("x", "fail")]


def test_summary_and_failure_lines():
    results = report.build_results(CHECKS, PROBE_OK)
    summary = report.summarize(results)
    assert summary == {"pass": 5, "fail": 1, "warn": 0, "skip": 1, "total": 7, "ok": False}
    assert report.failures(results) == [
        "httproute.exists (HTTPRoute ns/r): no HTTPRoute targets the Gateway -> fix: apply the HTTPRoute"]


def test_table_is_one_line_per_result_and_bounded():
    lines = report.table(report.build_results(CHECKS, PROBE_OK), width=80)
    assert lines[0].split() == ["STATUS", "CHECK", "DETAIL"]
    assert len(lines) == 8
    assert all(len(line) <= 80 for line in lines)
    assert lines[2].startswith("FAIL   httproute.exists")


def test_markdown_lists_what_to_fix_first():
    results = report.build_results(CHECKS, PROBE_OK)
    text = report.markdown(results, report.summarize(results), "title", {"namespace": "ns|x"})
    assert text.startswith("# title: FAILED\n")
    assert "- **namespace**: ns\\|x" in text
    assert text.index("## What to fix") < text.index("## All checks")
    assert "**Fix:** apply the HTTPRoute" in text


def test_junit_is_valid_xml_with_failures_and_skips():
    results = report.build_results(CHECKS + [{"id": "a<b", "status": "fail", "detail": "x & y", "fix": "\"quote\""}], {})
    root = ElementTree.fromstring(report.junit(results, "suite", "2026-01-01T00:00:00Z"))
    suite = root.find("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "2" and suite.get("skipped") == "2"
    names = [case.get("name") for case in suite.findall("testcase")]
    assert "a<b" in names
    failing = [case for case in suite.findall("testcase") if case.find("failure") is not None]
    assert failing[1].find("failure").get("message") == "x & y"


def test_results_are_json_serializable():
    json.dumps(report.build_results(CHECKS, PROBE_OK))
