#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmd.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: llmd_benchmark_local
short_description: Run guidellm on the control node against an llm-d gateway
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Runs C(guidellm benchmark run) where the module runs (normally the control node) against a URL or, through an
    in-process Kubernetes port-forward, against the gateway Service, and leaves guidellm's JSON report and log
    in O(output_dir).
  - Builds the same command line as the in-cluster Job of the R(llmd.stack.benchmark,ansible_collections.llmd.stack.benchmark_role)
    role, for guidellm 0.3 to 0.6 (0.7 replaced C(guidellm benchmark) and is refused with a message).
  - A failed or timed-out run fails the task with guidellm's last output lines; the process is stopped and the
    port-forward closed either way.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: In check mode the command is built and returned, guidellm is not run and nothing is written.
  diff_mode:
    support: none
    description: The module writes a new report; there is nothing to diff.
requirements:
  - python >= 3.9
  - guidellm 0.3 to 0.6 on the control node (an optional extra; 0.4 and later pull torch)
  - kubernetes >= 24.2.0 (only for O(port_forward))
notes:
  - guidellm sizes synthetic prompts with a Hugging Face tokenizer, by default the model's, downloaded from the
    Hub. Offline, point O(processor) at a local tokenizer directory and set E(HF_HUB_OFFLINE=1) in O(environment).
options:
  url:
    description: Base URL of the OpenAI-compatible endpoint, for example C(http://gateway.example.com).
    type: str
  port_forward:
    description: Reach a Service through the Kubernetes API port-forward, in-process, for the length of the run.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Service.
        type: str
        required: true
      service:
        description: Service to forward to, normally the gateway's.
        type: str
        required: true
      port:
        description: Service port, number or name.
        type: raw
        required: true
  guidellm_path:
    description: The guidellm executable; by default C(guidellm) is looked up on E(PATH).
    type: path
  guidellm_version:
    description: guidellm's version, for example C(0.3.1); by default C(guidellm --version) is asked.
    type: str
  model:
    description: Model to benchmark; empty lets guidellm take the first one the endpoint lists.
    type: str
  processor:
    description: Tokenizer (Hugging Face id or local directory) guidellm sizes prompts with; empty uses the model's.
    type: str
  request_type:
    description: Send text completions (C(/v1/completions)) or chat completions (C(/v1/chat/completions)).
    type: str
    choices: [completions, chat]
    default: completions
  profile:
    description: guidellm's rate profile.
    type: str
    choices: [synchronous, concurrent, throughput, constant, poisson, sweep]
    default: concurrent
  rate:
    description:
      - Streams for C(concurrent), requests per second for C(constant) and C(poisson), the number of benchmarks
        for C(sweep); a list runs one benchmark per value. Must be empty for C(synchronous) and C(throughput).
    type: list
    elements: raw
    default: [4]
  prompt_tokens:
    description: Synthetic prompt length in tokens.
    type: int
    default: 256
  output_tokens:
    description: Output tokens requested per answer.
    type: int
    default: 128
  turns:
    description: Turns per conversation (multi-turn, guidellm 0.6 or newer); 1 is single-turn.
    type: int
    default: 1
  max_seconds:
    description: Length of each benchmark in seconds (0 is no limit; then set O(max_requests)).
    type: int
    default: 60
  max_requests:
    description: Requests per benchmark (0 is no limit).
    type: int
    default: 0
  sample_requests:
    description: Requests kept verbatim in the report (the rest are only counted in its statistics).
    type: int
    default: 20
  output_dir:
    description: Directory for C(benchmarks.json) (guidellm's report) and C(guidellm.log); created when missing.
    type: path
    required: true
  environment:
    description: Extra environment for guidellm, for example C(HF_HUB_OFFLINE=1) or C(HF_TOKEN).
    type: dict
    default: {}
  timeout:
    description: Seconds after which guidellm is stopped and the task fails.
    type: int
    default: 1800
"""

EXAMPLES = r"""
- name: Benchmark the gateway from the control node through a port-forward
  llmd.stack.llmd_benchmark_local:
    port_forward:
      namespace: llm-d-inference-scheduling
      service: infra-inference-scheduling-inference-gateway-istio
      port: 80
    request_type: chat
    profile: concurrent
    rate: [1, 4]
    max_seconds: 30
    output_dir: /tmp/bench/run-1

- name: Benchmark a reachable endpoint offline with a local tokenizer
  llmd.stack.llmd_benchmark_local:
    url: http://gateway.example.com
    processor: /opt/tokenizers/llama-3.1
    environment:
      HF_HUB_OFFLINE: "1"
    profile: constant
    rate: [2]
    max_requests: 200
    max_seconds: 0
    output_dir: /tmp/bench/run-2
"""

RETURN = r"""
cmd:
  description: The guidellm command line that was run (or would run, in check mode).
  returned: always
  type: list
  elements: str
  sample: [guidellm, benchmark, run, --target, "http://127.0.0.1:40123", --request-type, text_completions]
version:
  description: guidellm's version the command was built for.
  returned: always
  type: str
  sample: 0.6.1
report:
  description: Path of guidellm's JSON report.
  returned: when guidellm ran
  type: str
  sample: /tmp/bench/run-1/benchmarks.json
log:
  description: Path of guidellm's combined output.
  returned: when guidellm ran
  type: str
  sample: /tmp/bench/run-1/guidellm.log
elapsed_s:
  description: Wall time of the run in seconds.
  returned: when guidellm ran
  type: float
  sample: 31.4
target:
  description: Where requests went; C(port_forward) names the pod and ports when forwarding.
  returned: always
  type: dict
  sample: {url: "http://127.0.0.1:40123", port_forward: {namespace: ns, pod: gw-0, remote_port: 80, local_port: 40123}}
rc:
  description: guidellm's exit code.
  returned: when guidellm exited with an error
  type: int
  sample: 1
output_tail:
  description: The last lines guidellm printed.
  returned: when guidellm ran
  type: list
  elements: str
"""

import copy
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.llmd.stack.plugins.module_utils import _benchmark as bench
from ansible_collections.llmd.stack.plugins.module_utils import _portforward as pf
from ansible_collections.llmd.stack.plugins.module_utils._process import run_with_deadline, tail

SETTING_KEYS = ("model", "processor", "request_type", "profile", "rate", "prompt_tokens", "output_tokens",
                "turns", "max_seconds", "max_requests", "sample_requests")
TAIL_LINES = 25


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        url=dict(type="str"),
        port_forward=dict(type="dict", options=dict(
            namespace=dict(type="str", required=True),
            service=dict(type="str", required=True),
            port=dict(type="raw", required=True),
        )),
        guidellm_path=dict(type="path"),
        guidellm_version=dict(type="str"),
        model=dict(type="str"),
        processor=dict(type="str"),
        request_type=dict(type="str", choices=["completions", "chat"], default="completions"),
        profile=dict(type="str", choices=list(bench.PROFILES), default="concurrent"),
        rate=dict(type="list", elements="raw", default=[4]),
        prompt_tokens=dict(type="int", default=256, no_log=False),
        output_tokens=dict(type="int", default=128, no_log=False),
        turns=dict(type="int", default=1),
        max_seconds=dict(type="int", default=60),
        max_requests=dict(type="int", default=0),
        sample_requests=dict(type="int", default=20),
        output_dir=dict(type="path", required=True),
        environment=dict(type="dict", default={}),
        timeout=dict(type="int", default=1800),
    )
    return spec


def detect_version(module, executable):
    rc, out, err = module.run_command([executable, "--version"])
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out + err)
    if rc != 0 or not match:
        module.fail_json(msg="cannot tell the guidellm version: '%s --version' exited %d: %s"
                         % (executable, rc, (err or out).strip()[-500:]))
    return match.group(1)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("url", "port_forward")],
        required_one_of=[("url", "port_forward")],
        supports_check_mode=True,
    )
    params = module.params
    executable = params["guidellm_path"] or module.get_bin_path("guidellm")
    if not executable or not os.access(executable, os.X_OK):
        module.fail_json(msg="guidellm is not installed on %s (%s): install it (pip install 'guidellm<0.7') "
                         "or set guidellm_path" % (os.uname()[1], params["guidellm_path"] or "not on PATH"))
    version_string = params["guidellm_version"] or detect_version(module, executable)
    version = bench.parse_version(version_string)
    settings = dict((key, params[key]) for key in SETTING_KEYS)
    settings["output_dir"] = params["output_dir"]
    # a stand-in target for validation and check mode: a forward's port is only known once it runs
    settings["target"] = params["url"] or "http://127.0.0.1:FORWARDED_PORT"
    errors = bench.validate(settings, version)
    if errors:
        module.fail_json(msg="; ".join(errors))

    target = {"url": params["url"]}
    if module.check_mode:
        command = bench.guidellm_command(settings, version)
        module.exit_json(changed=True, cmd=[executable] + command["argv"][1:], version=version_string, target=target)

    forwarder = None
    try:
        if params["port_forward"]:
            forward = params["port_forward"]
            auth = dict((key, params[key]) for key in AUTH_ARG_SPEC if params.get(key) is not None)
            forwarder, plan = pf.open_forward(module, auth, forward["namespace"], service=forward["service"],
                                              port=forward["port"])
            target = {"url": "http://127.0.0.1:%d" % plan["local_port"], "port_forward": plan}
        settings["target"] = target["url"]
        command = bench.guidellm_command(settings, version)
        argv = [executable] + command["argv"][1:]
        env = dict(command["env"])
        env.update(dict((str(k), str(v)) for k, v in params["environment"].items()))
        if not os.path.isdir(params["output_dir"]):
            os.makedirs(params["output_dir"])
        log_path = os.path.join(params["output_dir"], "guidellm.log")
        rc, elapsed = run_with_deadline(module, argv, env, params["output_dir"], log_path, params["timeout"])
    except pf.PortForwardError as err:
        module.fail_json(msg="port_forward: %s" % err, target=target)
    finally:
        if forwarder is not None:
            forwarder.close()

    result = dict(changed=True, cmd=argv, version=version_string, report=command["report"], log=log_path,
                  elapsed_s=elapsed, target=target, output_tail=tail(log_path, TAIL_LINES))
    if rc is None:
        module.fail_json(msg="guidellm did not finish within %d s and was stopped; its last lines:\n%s"
                         % (params["timeout"], "\n".join(result["output_tail"])), **result)
    if rc != 0:
        module.fail_json(msg="guidellm exited %d; its last lines:\n%s" % (rc, "\n".join(result["output_tail"])),
                         rc=rc, **result)
    if not os.path.isfile(command["report"]):
        module.fail_json(msg="guidellm exited 0 but wrote no report at %s; its last lines:\n%s"
                         % (command["report"], "\n".join(result["output_tail"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
