"""deploy.yml stops with one clear line, before changing anything, on bad input."""
import uuid

import pytest

pytestmark = [pytest.mark.lab]


@pytest.mark.parametrize("extra, message", [
    ({"release_matrix_name": "v9"}, "value of release_matrix_name must be one of"),
    ({"gateway_provider_name": "nginx"}, "value of gateway_provider_name must be one of"),
    ({"stack_gateway_provider": "nginx"}, "value of stack_gateway_provider must be one of"),
    ({"stack_decode_replicas": -1}, "Replica counts must be >= 0"),
    ({"stack_prefill_replicas": -2}, "Replica counts must be >= 0"),
    ({"stack_model_gated": True, "stack_hf_token": ""}, "stack_model_gated is true for"),
    ({"stack_prefill_replicas": 1}, "P/D disaggregation needs both"),
    ({"gateway_provider_name": "agentgateway", "release_matrix_name": "v0.5"}, "has no pins for"),
], ids=["unknown-release", "unknown-provider", "unknown-stack-provider", "negative-decode",
        "negative-prefill", "gated-model-without-token", "prefill-without-pd-preset", "provider-not-in-release"])
def test_bad_input_stops_before_any_change(run_playbook, lab, extra, message):
    namespace = "t-bad-input-%s" % uuid.uuid4().hex[:5]
    run = run_playbook("deploy.yml", dict(extra, stack_namespace=namespace, stack_release_postfix="bad"))
    assert run.rc != 0
    assert message in run.output, run.tail()
    assert run.changed == 0, run.tail()
    assert lab.kubectl("get", "namespace", namespace, check=False).returncode != 0
