#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmd.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: llmd_inference_probe
short_description: Send real OpenAI-style requests to an llm-d stack and check the answers
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Sends C(GET /v1/models), C(POST /v1/completions) and C(POST /v1/chat/completions) to an llm-d inference
    gateway, a Service or a model-server pod, and checks each answer (status, OpenAI object shape, choices,
    finish_reason, token usage against O(completions.max_tokens)).
  - Measures latency, time to first token (TTFT, from the first streamed content chunk) and inter-token latency,
    and records routing evidence, the C(x-went-into-resp-headers) header the endpoint picker (EPP) adds and the
    C(x-inference-pod) header that names the answering pod.
  - On failure each result carries the HTTP status, a body excerpt and the likely cause and fix from the
    documented error table (400 missing model or prompt, 404 no route, 429 saturation, 500 missing pool or
    ReferenceGrant, 502/503 port mismatch or no ready pods, connection refused, TLS errors).
  - Optional small measured burst (success rate, latency and TTFT percentiles, tokens per second, answering
    pods) and a prefix-affinity check (prompts sharing a long prefix should land on the same pod).
  - Only reads. It never changes anything, so it always reports C(changed=false) and runs unchanged in check mode.
  - The target is one of O(url), O(port_forward) (in-process through the Kubernetes API, no C(kubectl port-forward)
    process) or O(endpoint) as reported by M(llmd.stack.llmd_stack_facts).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: The module only sends inference requests; it changes nothing in the cluster.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0 (only for O(port_forward), or O(endpoint) without a URL)
notes:
  - The Kubernetes options (O(kubeconfig), O(context), O(host), O(api_key), O(ca_cert), ...) are only used to
    port-forward. O(validate_certs), O(client_cert) and O(client_key) apply to the probed endpoint, not to the
    Kubernetes API; for the API use the kubeconfig or the E(K8S_AUTH_VERIFY_SSL), E(K8S_AUTH_CERT_FILE) and
    E(K8S_AUTH_KEY_FILE) environment variables.
  - TTFT is measured from just before the request is sent to the arrival of the first streamed chunk with
    content, so it includes connection set-up. Without streaming, TTFT is reported only when max_tokens is 1
    (then the whole answer is the first token).
  - Each request uses a new connection (C(Connection close)), so latency includes connection set-up, as for a
    first request from a client.
options:
  url:
    description:
      - Base URL of the OpenAI-compatible endpoint, for example C(http://gateway.example.com) or
        C(http://127.0.0.1:8000). A trailing C(/v1) is dropped; the probe appends the paths.
      - Exactly one of O(url), O(port_forward) and O(endpoint) is required.
    type: str
  port_forward:
    description:
      - Reach a Service or pod through the Kubernetes API port-forward, in-process.
      - A Service is resolved to a Ready pod behind its selector, and O(port_forward.port) (the service port)
        to that pod's target container port, named or numeric.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Service or pod.
        type: str
        required: true
      service:
        description: Service to forward to, for example C(infra-sim-inference-gateway-istio). Exclusive with O(port_forward.pod).
        type: str
      pod:
        description: Pod to forward to, for example a decode pod. Exclusive with O(port_forward.service).
        type: str
      port:
        description:
          - Service port (number or name) for O(port_forward.service); container port (number or name) for
            O(port_forward.pod).
        type: raw
        required: true
      scheme:
        description:
          - Scheme the forwarded port serves.
          - With V(https) the certificate is checked against C(127.0.0.1), the local end of the forward;
            pass O(ca_path) for a certificate valid for it, or set O(validate_certs=false).
        type: str
        choices: [http, https]
        default: http
  endpoint:
    description:
      - One entry of C(ansible_facts.llmd_stack.endpoints) from M(llmd.stack.llmd_stack_facts), a dict with
        C(type) (gateway-address, ingress, openshift-route or service), C(url), C(external), C(namespace),
        C(service) and C(port).
      - Its C(url) is probed when the endpoint is C(external) or names no Service; an in-cluster endpoint with a
        C(service) (its URL only resolves inside the cluster) is reached by port-forwarding to C(service) and
        C(port) in C(namespace).
    type: dict
  # The three below replace kubernetes.core options of the same name. They set
  # the probed endpoint's TLS, so the fragment's aliases (verify_ssl, cert_file,
  # key_file), which name Kubernetes API settings, are cleared.
  validate_certs:
    description: Verify the TLS certificate of the probed endpoint.
    type: bool
    default: true
    aliases: []
  ca_path:
    description: CA bundle (PEM) to verify the probed endpoint's certificate.
    type: path
  client_cert:
    description: Client certificate (PEM) presented to the probed endpoint.
    type: path
    aliases: []
  client_key:
    description: Key (PEM) for O(client_cert).
    type: path
    aliases: []
  headers:
    description:
      - Extra request headers, for example C(x-prefiller-url) for a direct-to-decode prefill/decode test.
      - Header values whose names look secret (authorization, token, key, cookie) are redacted in RV(target), but
        O(headers) itself is not C(no_log); put tokens in O(bearer_token).
    type: dict
  bearer_token:
    description: Token sent as C(Authorization Bearer). Never logged or returned.
    type: str
  use_proxy:
    description: Use the proxy from the environment (E(https_proxy), E(http_proxy), E(no_proxy)).
    type: bool
    default: true
  checks:
    description: Which endpoints to check.
    type: list
    elements: str
    choices: [models, completions, chat]
    default: [models, completions, chat]
  model:
    description:
      - Model to send. It must be listed by C(/v1/models) when the C(models) check runs.
      - When not set, the first model listed by C(/v1/models) is used.
    type: str
  completions:
    description: Request options for C(/v1/completions).
    type: dict
    suboptions:
      prompt:
        description: Prompt text.
        type: str
        default: Say hello to the llm-d inference probe.
      max_tokens:
        description: Maximum tokens to generate. V(1) turns the request into a TTFT test.
        type: int
        default: 16
      temperature:
        description: Sampling temperature.
        type: float
        default: 0.0
      seed:
        description: Sampling seed; a fresh seed makes the request unique to the model server.
        type: int
      stream:
        description: Stream the answer (Server-Sent Events) and measure TTFT and inter-token latency.
        type: bool
        default: false
  chat:
    description: Request options for C(/v1/chat/completions).
    type: dict
    suboptions:
      messages:
        description:
          - Chat messages, each a dict with C(role) and C(content). Default is one user message.
        type: list
        elements: dict
      max_tokens:
        description: Maximum tokens to generate. V(1) turns the request into a TTFT test.
        type: int
        default: 16
      temperature:
        description: Sampling temperature.
        type: float
        default: 0.0
      seed:
        description: Sampling seed.
        type: int
      stream:
        description: Stream the answer (Server-Sent Events) and measure TTFT and inter-token latency.
        type: bool
        default: true
  timeout:
    description:
      - Seconds one request may take, from sending to the last byte. Must be > 0.
      - A server that stalls is cut off, so each request returns in bounded time.
    type: float
    default: 30
  retries:
    description:
      - How often to retry answers that mean "not ready yet" (connection refused or closed, 404 no route,
        503 no healthy upstream). Other failures are reported at once.
    type: int
    default: 0
  delay:
    description: Seconds between retries.
    type: float
    default: 5
  deadline:
    description: Overall seconds to keep retrying "not ready yet" answers, across all checks. Must be > 0.
    type: float
  burst:
    description:
      - Send a small measured burst after the checks and return a summary in RV(burst).
      - Prompts differ per request (a numbered suffix), so prefix-aware routing may spread them.
    type: dict
    suboptions:
      requests:
        description: Number of requests.
        type: int
        default: 20
      concurrency:
        description: Requests in flight at once.
        type: int
        default: 4
      endpoint:
        description: Endpoint to load; request options come from O(completions) or O(chat).
        type: str
        choices: [completions, chat]
        default: completions
      stream:
        description: Stream the answers (needed for TTFT percentiles unless O(burst.max_tokens=1)).
        type: bool
        default: true
      max_tokens:
        description: Maximum tokens per request.
        type: int
        default: 16
  prefix_affinity:
    description:
      - Send O(prefix_affinity.prompts) prompts that share a long prefix, one after the other, and report the share
        served by the most used pod (from C(x-inference-pod)). Cache-aware routing should keep them together.
    type: dict
    suboptions:
      prompts:
        description: Number of prompts (at least 2).
        type: int
        default: 5
      prefix_words:
        description: Words in the shared prefix.
        type: int
        default: 200
      endpoint:
        description: Endpoint to use.
        type: str
        choices: [completions, chat]
        default: completions
      max_tokens:
        description: Maximum tokens per request.
        type: int
        default: 8
      min_share:
        description:
          - Fail when fewer than this share (0 to 1) of the prompts went to the same pod.
          - V(0) only reports the share.
        type: float
        default: 0.0
  fail_on_error:
    description:
      - V(true) fails the task when a check fails, with the cause and hint in the message.
      - V(false) returns the results only (for roles that build their own report).
    type: bool
    default: true
seealso:
  - module: llmd.stack.llmd_stack_facts
"""

EXAMPLES = r"""
- name: Probe a gateway by URL
  llmd.stack.llmd_inference_probe:
    url: http://infra-sim-inference-gateway-istio.llm-d-sim.svc.cluster.local

- name: Probe the gateway Service through the Kubernetes API, waiting up to 5 minutes for it to be ready
  llmd.stack.llmd_inference_probe:
    port_forward:
      namespace: llm-d-sim
      service: infra-sim-inference-gateway-istio
      port: 80
    retries: 30
    delay: 10
    deadline: 300

- name: TTFT test with max_tokens 1, plus a burst of 40 streamed requests
  llmd.stack.llmd_inference_probe:
    url: https://llm-d.apps.example.com
    ca_path: /etc/pki/tls/certs/ca-bundle.crt
    bearer_token: "{{ gateway_token }}"
    completions:
      max_tokens: 1
    burst:
      requests: 40
      concurrency: 8
  register: probe

- name: Direct-to-decode prefill/decode test against one pod
  llmd.stack.llmd_inference_probe:
    port_forward:
      namespace: llm-d-pd
      pod: ms-pd-llm-d-modelservice-decode-7d9f8c6b5-x2x7q
      port: 8000
    headers:
      x-prefiller-url: http://ms-pd-llm-d-modelservice-prefill.llm-d-pd.svc.cluster.local:8000
    checks: [completions]

- name: Probe every endpoint llmd_stack_facts found, collecting results for a report
  llmd.stack.llmd_inference_probe:
    endpoint: "{{ item }}"
    fail_on_error: false
    prefix_affinity:
      prompts: 6
  loop: "{{ ansible_facts.llmd_stack.endpoints }}"
  register: probes
"""

RETURN = r"""
results:
  description: One entry per endpoint check, in the order models, completions, chat.
  returned: always
  type: list
  elements: dict
  contains:
    endpoint:
      description: The check, V(models), V(completions) or V(chat).
      type: str
      sample: completions
    url:
      description: URL the request went to.
      type: str
      sample: http://127.0.0.1:8000/v1/completions
    ok:
      description: Whether the answer passed every check.
      type: bool
      sample: true
    status:
      description: HTTP status, or null when no HTTP answer came.
      type: int
      sample: 200
    latency_ms:
      description: Milliseconds from sending to the last byte of the answer.
      type: float
      sample: 312.5
    ttft_ms:
      description: Milliseconds to the first streamed content chunk (or the whole answer when max_tokens is 1).
      type: float
      sample: 204.1
    itl_ms:
      description: Mean milliseconds between streamed content chunks.
      type: float
      sample: 20.3
    model:
      description: Model the answer names (for V(models), the model chosen for the other checks).
      type: str
      sample: random
    usage:
      description: Token usage the server reported.
      type: dict
      sample: {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25}
    finish_reason:
      description: Finish reason of the first choice.
      type: str
      sample: length
    text:
      description: The start of the generated text.
      type: str
      sample: To be or not to be that is the question.
    pod:
      description: Pod that answered, from the C(x-inference-pod) header, when present.
      type: str
      sample: ms-sim-llm-d-modelservice-decode-5b9c8d7f4-abcde
    routed_by_epp:
      description: Whether the answer carries the EPP's C(x-went-into-resp-headers) header.
      type: bool
      sample: true
    routing_headers:
      description: Response headers that show the route taken (x-inference-*, x-went-into-resp-headers, server, ...).
      type: dict
      sample: {"x-inference-pod": "decode-0", "x-inference-namespace": "llm-d-sim", "x-went-into-resp-headers": "true"}
    stream:
      description: Whether the answer was streamed.
      type: bool
      sample: false
    attempts:
      description: Requests sent for this check, retries included.
      type: int
      sample: 1
    error:
      description: What went wrong, or null.
      type: str
      sample: "HTTP 503: no healthy upstream"
    hint:
      description: Likely cause and fix from the error table, or null.
      type: str
      sample: "likely cause: no Ready model-server pod behind the InferencePool; fix: wait for the decode pods ..."
    body_excerpt:
      description: Start of the answer body on failure, or null.
      type: str
      sample: no healthy upstream
model:
  description: Model used for the completions and chat checks.
  returned: always
  type: str
  sample: random
models:
  description: Model ids listed by C(/v1/models) (empty when not queried).
  returned: always
  type: list
  elements: str
  sample: ["random"]
burst:
  description: Summary of the burst, or null without O(burst).
  returned: always
  type: dict
  sample:
    endpoint: completions
    stream: true
    max_tokens: 16
    requests: 20
    concurrency: 4
    succeeded: 20
    failed: 0
    success_rate: 1.0
    ok: true
    error: null
    wall_s: 1.92
    latency_ms: {"p50": 351.2, "p95": 380.9, "p99": 384.0, "mean": 355.0, "min": 340.2, "max": 384.8}
    ttft_ms: {"p50": 205.3, "p95": 210.1, "p99": 211.0, "mean": 205.9, "min": 201.7, "max": 211.2}
    itl_ms: {"p50": 10.1, "p95": 10.4, "p99": 10.5, "mean": 10.1, "min": 10.0, "max": 10.5}
    completion_tokens: 320
    tokens_per_s: 166.7
    requests_per_s: 10.42
    pods: {"decode-0": 10, "decode-1": 10}
    status_codes: {"200": 20}
    errors: {}
    hint: null
prefix_affinity:
  description: Summary of the prefix-affinity check, or null without O(prefix_affinity).
  returned: always
  type: dict
  sample:
    prompts: 5
    prefix_words: 200
    succeeded: 5
    pods: {"decode-1": 5}
    top_pod: decode-1
    same_pod_share: 1.0
    min_share: 0.0
    ok: true
    error: null
routing:
  description: Routing evidence over every answered request (checks, burst and prefix affinity).
  returned: always
  type: dict
  sample: {"requests": 27, "pods": {"decode-0": 13, "decode-1": 14}, "via_epp": 27, "with_pod_header": 27}
target:
  description: What was probed; secret header values are redacted and the bearer token is never included.
  returned: always
  type: dict
  sample:
    mode: port_forward
    url: http://127.0.0.1:40123
    port_forward: {"namespace": "llm-d-sim", "service": "infra-sim-inference-gateway-istio", "service_port": 80,
                   "pod": "infra-sim-inference-gateway-istio-6d8f7-kx2lp", "remote_port": 80, "local_port": 40123}
    endpoint_type: null
    headers: {"x-prefiller-url": "http://prefill:8000"}
    bearer_token: false
"""

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.llmd.stack.plugins.module_utils import _probe_core as core
from ansible_collections.llmd.stack.plugins.module_utils import _probe_http as http
from ansible_collections.llmd.stack.plugins.module_utils import _portforward as pf

# These three name the probed endpoint's TLS settings here, so the Kubernetes
# client takes its own from the kubeconfig or K8S_AUTH_* instead.
PROBE_TLS_OPTIONS = ("validate_certs", "client_cert", "client_key")
KUBE_AUTH_SPEC = dict((k, copy.deepcopy(v)) for k, v in AUTH_ARG_SPEC.items() if k not in PROBE_TLS_OPTIONS)

REQUEST_OPTIONS = dict(
    max_tokens=dict(type="int", default=16, no_log=False),
    temperature=dict(type="float", default=0.0),
    seed=dict(type="int"),
)


def argument_spec():
    spec = copy.deepcopy(KUBE_AUTH_SPEC)
    spec.update(
        url=dict(type="str"),
        port_forward=dict(type="dict", options=dict(
            namespace=dict(type="str", required=True),
            service=dict(type="str"),
            pod=dict(type="str"),
            port=dict(type="raw", required=True),
            scheme=dict(type="str", choices=["http", "https"], default="http"),
        ), mutually_exclusive=[("service", "pod")], required_one_of=[("service", "pod")]),
        endpoint=dict(type="dict"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        headers=dict(type="dict"),
        bearer_token=dict(type="str", no_log=True),
        use_proxy=dict(type="bool", default=True),
        checks=dict(type="list", elements="str", choices=list(core.ENDPOINTS), default=list(core.ENDPOINTS)),
        model=dict(type="str"),
        completions=dict(type="dict", apply_defaults=True, options=dict(
            prompt=dict(type="str", default=core.DEFAULT_PROMPT),
            stream=dict(type="bool", default=False),
            **copy.deepcopy(REQUEST_OPTIONS))),
        chat=dict(type="dict", apply_defaults=True, options=dict(
            messages=dict(type="list", elements="dict"),
            stream=dict(type="bool", default=True),
            **copy.deepcopy(REQUEST_OPTIONS))),
        timeout=dict(type="float", default=30),
        retries=dict(type="int", default=0),
        delay=dict(type="float", default=5),
        deadline=dict(type="float"),
        burst=dict(type="dict", options=dict(
            requests=dict(type="int", default=20),
            concurrency=dict(type="int", default=4),
            endpoint=dict(type="str", choices=list(core.GENERATION_ENDPOINTS), default="completions"),
            stream=dict(type="bool", default=True),
            max_tokens=dict(type="int", default=16, no_log=False),
        )),
        prefix_affinity=dict(type="dict", options=dict(
            prompts=dict(type="int", default=5),
            prefix_words=dict(type="int", default=200),
            endpoint=dict(type="str", choices=list(core.GENERATION_ENDPOINTS), default="completions"),
            max_tokens=dict(type="int", default=8, no_log=False),
            min_share=dict(type="float", default=0.0),
        )),
        fail_on_error=dict(type="bool", default=True),
    )
    return spec


def forward_target(params):
    """Return (port_forward settings or None, base URL or None, target description)."""
    target = {"mode": None, "url": None, "port_forward": None, "endpoint_type": None,
              "headers": core.redact_headers(params.get("headers")), "bearer_token": bool(params.get("bearer_token"))}
    if params.get("url"):
        target["mode"] = "url"
        return None, core.normalize_base_url(params["url"])[0], target
    if params.get("port_forward"):
        target["mode"] = "port_forward"
        return dict(params["port_forward"]), None, target
    endpoint = params["endpoint"]
    target["mode"] = "endpoint"
    target["endpoint_type"] = endpoint.get("type")
    in_cluster_service = endpoint.get("service") and endpoint.get("namespace") and not endpoint.get("external")
    if endpoint.get("url") and not in_cluster_service:
        return None, core.normalize_base_url(endpoint["url"])[0], target
    forward = {"namespace": endpoint["namespace"], "service": endpoint["service"], "pod": None,
               "port": endpoint.get("port"), "scheme": "http"}
    return forward, None, target


def kube_auth(params):
    return dict((key, params[key]) for key in KUBE_AUTH_SPEC if params.get(key) is not None)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("url", "port_forward", "endpoint")],
        required_one_of=[("url", "port_forward", "endpoint")],
        supports_check_mode=True,
    )
    params = module.params
    errors = core.validate_params(params)
    if errors:
        module.fail_json(msg="; ".join(errors))

    forward, base_url, target = forward_target(params)
    forwarder = None
    try:
        if forward:
            forwarder, plan = pf.open_forward(module, kube_auth(params), forward["namespace"],
                                              service=forward.get("service"), pod=forward.get("pod"),
                                              port=forward["port"])
            base_url = "%s://127.0.0.1:%d" % (forward.get("scheme") or "http", plan["local_port"])
            target["port_forward"] = plan
        target["url"] = base_url
        sender = http.Sender(
            base_url, params["timeout"], headers=params.get("headers"), bearer_token=params.get("bearer_token"),
            validate_certs=params["validate_certs"], ca_path=params.get("ca_path"),
            client_cert=params.get("client_cert"), client_key=params.get("client_key"),
            use_proxy=params["use_proxy"], diagnose=forwarder.last_error if forwarder else None)
        outcome = http.probe(params, sender)
    except http.SetupError as err:
        module.fail_json(msg=str(err))
    except pf.PortForwardError as err:
        outcome = http.unreachable(params, "port_forward: %s" % err)
    finally:
        if forwarder is not None:
            forwarder.close()

    outcome["target"] = target
    message = core.failure_message(outcome["results"], outcome["burst"], outcome["prefix_affinity"])
    if message and params["fail_on_error"]:
        module.fail_json(msg=message, changed=False, **outcome)
    module.exit_json(changed=False, **outcome)


if __name__ == "__main__":
    main()
