"""Unit tests for the llmd_inference_probe module: argument handling and exit paths.

The HTTP layer and the Kubernetes client are replaced; tests/integration/probe
runs the module against real simulators.
"""
import json

import pytest


from ansible_collections.llmd.stack.plugins.module_utils import _portforward as pf
from ansible_collections.llmd.stack.plugins.module_utils import _probe_core as core
from ansible_collections.llmd.stack.plugins.module_utils import _probe_http as http
from ansible_collections.llmd.stack.plugins.modules import llmd_inference_probe as module

from module_args import run_module


def run(args):
    """Run the module's main() with args; return the JSON it printed."""
    return run_module(module.main, args)


def ok_result(endpoint):
    return dict(core.evaluate(endpoint, {"status": 200, "body": "", "error_kind": None}),
                ok=True, error=None, hint=None)


@pytest.fixture
def fake_probe(monkeypatch):
    calls = []

    def probe(params, sender):
        calls.append((params, sender))
        return {"results": [ok_result("models")], "model": "random", "models": ["random"], "burst": None,
                "prefix_affinity": None, "routing": core.routing_summary([])}

    monkeypatch.setattr(http, "probe", probe)
    return calls


@pytest.mark.parametrize("args, message", [
    ({"url": "http://h", "checks": ["models", "embeddings"]},
     "value of checks must be one or more of: models, completions, chat. Got no match for: embeddings"),
    ({"url": "http://h", "timeout": -1}, "timeout must be > 0, got -1"),
    ({"url": "http://h", "timeout": 0.5, "retries": -1}, "retries must be >= 0, got -1"),
    ({"port_forward": {"namespace": "llm-d-sim", "port": 80}},
     "one of the following is required: service, pod found in port_forward"),
    ({"port_forward": {"namespace": "llm-d-sim", "service": "gw", "pod": "p", "port": 80}},
     "parameters are mutually exclusive: service|pod found in port_forward"),
    ({"url": "http://h", "endpoint": {"url": "http://h"}}, "parameters are mutually exclusive: url|port_forward|endpoint"),
    ({}, "one of the following is required: url, port_forward, endpoint"),
    ({"url": "h:8000"}, "url must start with http:// or https:// and name a host, got 'h:8000'"),
    ({"url": "http://h", "burst": {"requests": 0}}, "burst.requests must be > 0, got 0"),
])
def test_bad_input_fails_early_with_one_line(args, message, fake_probe):
    out = run(args)
    assert out["failed"] is True
    assert out["msg"] == message
    assert fake_probe == []


def test_success_is_unchanged_and_redacts_secrets(fake_probe):
    out = run({"url": "http://gw.example.com/v1/", "bearer_token": "s3cret", "headers": {"x-api-key": "k", "x-prefiller-url": "p"},
               "_ansible_check_mode": True})
    assert out["changed"] is False and "failed" not in out
    assert out["target"] == {"mode": "url", "url": "http://gw.example.com", "port_forward": None, "endpoint_type": None,
                             "headers": {"x-api-key": core.REDACTED, "x-prefiller-url": "p"}, "bearer_token": True}
    assert "s3cret" not in json.dumps(out)
    params, sender = fake_probe[0]
    assert sender.base_url == "http://gw.example.com"
    assert params["completions"]["max_tokens"] == 16 and params["chat"]["stream"] is True


def test_failed_check_fails_the_task_unless_told_otherwise(monkeypatch):
    failed = core.evaluate("models", {"status": 503, "body": "no healthy upstream", "error_kind": None})
    monkeypatch.setattr(http, "probe", lambda params, sender: {
        "results": [failed], "model": None, "models": [], "burst": None, "prefix_affinity": None,
        "routing": core.routing_summary([])})
    out = run({"url": "http://h"})
    assert out["failed"] is True and out["changed"] is False
    assert out["msg"].startswith("inference probe failed: models: HTTP 503: no healthy upstream (likely cause: ")
    assert out["results"][0]["status"] == 503
    out = run({"url": "http://h", "fail_on_error": False})
    assert "failed" not in out and out["results"][0]["ok"] is False


def test_endpoint_from_facts_uses_its_url_when_external(fake_probe):
    out = run({"endpoint": {"type": "gateway-address", "url": "http://203.0.113.5", "external": True,
                            "namespace": "llm-d-sim", "service": "gw", "port": 80}})
    assert out["target"]["mode"] == "endpoint" and out["target"]["endpoint_type"] == "gateway-address"
    assert fake_probe[0][1].base_url == "http://203.0.113.5"


@pytest.mark.parametrize("endpoint, forward, url", [
    # An in-cluster Service URL only resolves inside the cluster: port-forward to the Service instead.
    ({"type": "service", "url": "http://gw.ns.svc.cluster.local:80", "external": False, "namespace": "ns",
      "service": "gw", "port": 80}, {"namespace": "ns", "service": "gw", "pod": None, "port": 80, "scheme": "http"}, None),
    ({"type": "ingress", "url": "http://llm.example.com", "external": True, "namespace": "ns", "service": "gw",
      "port": 80}, None, "http://llm.example.com"),
    ({"type": "gateway-address", "url": "http://10.0.0.5", "external": False}, None, "http://10.0.0.5"),
])
def test_endpoint_picks_url_or_port_forward(endpoint, forward, url):
    got_forward, got_url, target = module.forward_target({"url": None, "port_forward": None, "endpoint": endpoint,
                                                          "headers": None, "bearer_token": None})
    assert (got_forward, got_url, target["mode"]) == (forward, url, "endpoint")


def test_port_forward_needs_the_kubernetes_library(fake_probe, monkeypatch):
    monkeypatch.setattr(pf, "HAS_KUBERNETES", False)
    out = run({"port_forward": {"namespace": "n", "service": "gw", "port": 80}})
    assert out["failed"] is True and "kubernetes" in out["msg"] and "for port_forward" in out["msg"]


def test_port_forward_setup_failure_is_reported_per_check(fake_probe, monkeypatch):
    def refuse(auth):
        raise pf.PortForwardError("Service n/gw not found")

    monkeypatch.setattr(pf, "core_api", refuse)
    out = run({"port_forward": {"namespace": "n", "service": "gw", "port": 80}, "checks": ["models", "chat"],
               "fail_on_error": False})
    assert [r["endpoint"] for r in out["results"]] == ["models", "chat"]
    assert all(r["error"] == "port_forward: Service n/gw not found" for r in out["results"])
    assert "pods/portforward" in out["results"][0]["hint"]
    assert fake_probe == []


def test_unreadable_tls_files_fail_with_a_clear_message(fake_probe, tmp_path):
    out = run({"url": "https://h", "client_cert": str(tmp_path / "missing.pem")})
    assert out["failed"] is True
    assert out["msg"].startswith("cannot load the TLS files (ca_path, client_cert, client_key): ")


def test_kube_auth_passes_only_kubernetes_options():
    params = {key: None for key in module.argument_spec()}
    params.update(kubeconfig="/k", context="lab", validate_certs=False, client_cert="/c", ca_path="/ca")
    assert module.kube_auth(params) == {"kubeconfig": "/k", "context": "lab"}
