#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmd.stack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: llmd_log_analyze
short_description: Filter llm-d logs and reconstruct request traces and P/D evidence
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Reads the logs of one diagnostics run from C(<src>/raw/<pod>/<container>.log), where the
    C(llmd.stack.diagnostics) role stores what it collects from the EPP, C(routing-proxy) and C(vllm)
    containers.
  - Drops known noise (metric scrapes, idle throughput lines, the sidecar waiting for vLLM,
    EPP metric refresh and health lines) and writes what is left to C(<dest>/filtered/).
  - Reconstructs one trace per request from the EPP JSON logs, in the older scheduler format
    and the plugin- and profile-based formats, with candidates, filter results, scores, the pick,
    whether the pick was a random tie-break, the pod that handled the request and the token usage.
  - Joins the routing-proxy sidecar and vLLM logs into P/D evidence per request, from the request
    sent to the prefiller to the finished KV transfer, and says whether the P/D path really ran.
  - Flags known anomalies, writes C(<dest>/traces.json) and a readable C(<dest>/summary.md).
  - The analysis never talks to a cluster; it only reads and writes local files.
options:
  src:
    description:
      - Directory of one diagnostics run.
      - Logs are read from C(<src>/raw/<pod>/<container>.log); a restarted container's previous
        instance may be stored as C(<container>.previous.log).
    type: path
    required: true
  dest:
    description:
      - Directory that receives C(filtered/), C(traces.json) and C(summary.md).
      - Defaults to O(src).
    type: path
  pods:
    description:
      - The pods whose logs were collected, with their role and IP address.
      - The IP address maps the C(ip:port) endpoints newer EPPs log, and the prefiller URL of the
        sidecar, to pod names.
      - When omitted, C(<src>/pods.json) (a list of the same dictionaries) is read if it exists;
        otherwise the role is guessed from the pod name. In C(pods.json) an entry may also list
        C(not_started) containers, which the report names.
    type: list
    elements: dict
    suboptions:
      name:
        description: Pod name, as used for the directory under C(raw/).
        type: str
        required: true
      role:
        description: What the pod runs.
        type: str
        choices: [epp, decode, prefill, other]
        default: other
      ip:
        description: The pod IP address (C(status.podIP)).
        type: str
  noise_patterns:
    description:
      - Python regular expressions; a log line that matches one of them anywhere is dropped.
      - When omitted, the built-in list is used, the same list the C(llmd.stack.diagnostics) role has
        as its default C(diagnostics_noise_patterns).
    type: list
    elements: str
  extra_noise_patterns:
    description:
      - More regular expressions, added to O(noise_patterns).
    type: list
    elements: str
    default: []
  title:
    description:
      - First heading of C(summary.md).
    type: str
    default: llm-d diagnostics
attributes:
  check_mode:
    description: In check mode the logs are analyzed and the results returned, but nothing is written.
    support: full
  diff_mode:
    description: Does not return a diff.
    support: none
  action_group:
    description: Use C(group/llmd.stack.llmd) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - llmd.stack.llmd
notes:
  - Requests are keyed by the EPP's C(x-request-id). Older EPPs log no request id; their lines are
    grouped in log order, so requests scheduled at the same moment may be mixed up.
  - A sidecar exchange is linked to its request by the vLLM request id when the gateway's
    C(x-request-id) reaches vLLM, otherwise by order and time on the decode pod that handled it.
seealso:
  - module: kubernetes.core.k8s_log
"""

EXAMPLES = r"""
- name: Analyze logs collected under reports/diagnostics/20250812T142000Z
  llmd.stack.llmd_log_analyze:
    src: reports/diagnostics/20250812T142000Z
    pods:
      - name: gaie-sim-epp-5f6d7c8b9-n4k2s
        role: epp
        ip: 10.42.3.2
      - name: ms-sim-llm-d-modelservice-decode-6d9b8c7f5-a1b2c
        role: decode
        ip: 10.42.3.10
    extra_noise_patterns:
      - "GET /health HTTP/1\\.1"
  register: diagnosis

- name: Fail when a P/D request did not transfer its KV cache
  ansible.builtin.assert:
    that: diagnosis.anomalies | selectattr('kind', 'equalto', 'pd_no_kv_transfer') | list | length == 0
    fail_msg: "{{ diagnosis.anomalies | selectattr('kind', 'equalto', 'pd_no_kv_transfer') | map(attribute='detail') | list }}"
"""

RETURN = r"""
traces:
  description:
    - One entry per request seen by the EPP, in log order.
    - C(filters), C(scores), C(total_scores), C(picked) and C(tie_break_random) describe the primary
      profile (C(decode) when there is one); C(profiles) holds every profile that ran.
    - C(pd) is C(enabled) when the EPP scheduled a prefill and a decode pod, C(disabled) when it
      scheduled the decode pod only, else C(unknown).
  returned: always
  type: list
  elements: dict
  sample:
    - request_id: 3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c
      index: 1
      model: random
      ts: "2025-08-12T14:20:05Z"
      format: plugin
      pd: enabled
      pd_decision: prefill profile picked a pod
      pd_ran: true
      candidates: [ms-sim-decode-a1b2c, ms-sim-decode-d3e4f, ms-sim-prefill-g5h6j]
      filters: [{plugin: decode-filter, kept: [ms-sim-decode-a1b2c, ms-sim-decode-d3e4f]}]
      scores: {prefix-cache-scorer: {ms-sim-decode-a1b2c: 0.8, ms-sim-decode-d3e4f: 0.1}}
      total_scores: {ms-sim-decode-a1b2c: 2.6, ms-sim-decode-d3e4f: 1.2}
      picked: ms-sim-decode-a1b2c
      prefill_picked: ms-sim-prefill-g5h6j
      tie_break_random: false
      scorers_without_scores: []
      profiles: {}
      handled_by: ms-sim-decode-a1b2c
      handled_endpoint: "10.42.3.10:8000"
      status: "200"
      served: true
      usage: {prompt_tokens: 128, completion_tokens: 64, total_tokens: 192}
      errors: []
pd_evidence:
  description:
    - One entry per P/D exchange seen in a decode pod's routing-proxy log, and one per request the
      EPP scheduled for P/D without such an exchange.
    - C(pd_ran) is true when the request went to the prefiller, the prefiller answered with remote
      block ids, the request went to the decoder and a KV transfer finished; C(missing) lists the
      steps not seen.
  returned: always
  type: list
  elements: dict
  sample:
    - request_id: 3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c
      trace_index: 1
      decode_pod: ms-sim-decode-a1b2c
      prefill_pod: ms-sim-prefill-g5h6j
      prefill_sent: true
      prefill_response: {remote_block_ids: [4, 5], remote_engine_id: 5f443848-0eda-46d6-a5fe-a293deb30eca,
                         remote_host: 10.42.3.20, remote_port: 5600}
      decode_sent: true
      nixl_handshake: true
      kv_transfer_done_prefill: true
      kv_transfer_done_decode: true
      kv_request_id: cmpl-3f2a9c1e-7d4b-4e8a-9b6c-1d2e3f4a5b6c-0
      pd_ran: true
      missing: []
anomalies:
  description:
    - Known failure patterns, each with C(kind), the request and a one-line C(detail).
    - C(scores_all_equal) (the pick was a random tie-break), C(scorer_no_scores),
      C(pd_no_kv_transfer) (P/D scheduled, KV transfer not seen), C(not_served) (no model server
      answered).
  returned: always
  type: list
  elements: dict
  sample:
    - kind: scores_all_equal
      request_id: a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
      detail: "profile decode: 2 candidate pods all scored 2; the pick (ms-sim-decode-d3e4f) was a random tie-break"
summary:
  description: Counts over the whole run.
  returned: always
  type: dict
  sample:
    requests: 4
    served: 3
    picks_per_pod: {ms-sim-decode-a1b2c: 2, ms-sim-decode-d3e4f: 1}
    handled_per_pod: {ms-sim-decode-a1b2c: 2, ms-sim-decode-d3e4f: 1}
    random_tie_breaks: 1
    pd: {enabled: 2, disabled: 2, unknown: 0, exchanges: 2, ran: 1}
    formats: {plugin: 4}
    anomalies: {not_served: 1, pd_no_kv_transfer: 1, scorer_no_scores: 1, scores_all_equal: 1}
    lines_kept: 141
    lines_dropped: 7
files:
  description: Line counts per collected log file.
  returned: always
  type: list
  elements: dict
  sample:
    - {pod: ms-sim-decode-a1b2c, container: vllm, role: decode, lines_kept: 9, lines_dropped: 2}
dropped_per_pattern:
  description: How many lines each noise pattern dropped.
  returned: always
  type: dict
  sample: {"\"GET /metrics HTTP/1\\.1\" 200": 12, "gRPC health check serving": 30}
lines_kept:
  description: Log lines kept over all files.
  returned: always
  type: int
  sample: 141
lines_dropped:
  description: Log lines dropped as noise over all files.
  returned: always
  type: int
  sample: 7
traces_path:
  description: Path of the JSON file with traces, P/D evidence, anomalies and summary.
  returned: always
  type: str
  sample: reports/diagnostics/20250812T142000Z/traces.json
summary_path:
  description: Path of the Markdown report.
  returned: always
  type: str
  sample: reports/diagnostics/20250812T142000Z/summary.md
filtered_dir:
  description: Directory holding the filtered logs, one C(<pod>/<container>.log) per collected file.
  returned: always
  type: str
  sample: reports/diagnostics/20250812T142000Z/filtered
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmd.stack.plugins.module_utils._files import write_if_changed
from ansible_collections.llmd.stack.plugins.module_utils._log_analyze import (
    DEFAULT_NOISE_PATTERNS,
    POD_ROLES,
    analyze,
    compile_noise_patterns,
    render_summary,
)


def _read_sources(raw_dir):
    """[{pod, container, text}] for every raw/<pod>/<container>.log, previous instances first."""
    sources = []
    for pod in sorted(os.listdir(raw_dir)):
        pod_dir = os.path.join(raw_dir, pod)
        if not os.path.isdir(pod_dir):
            continue
        names = [name for name in os.listdir(pod_dir) if name.endswith(".log")]
        names.sort(key=lambda name: (name[:-len(".log")].replace(".previous", ""), not name.endswith(".previous.log")))
        for name in names:
            with open(os.path.join(pod_dir, name), "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
            sources.append({"pod": pod, "container": name[:-len(".log")], "text": text})
    return sources


def _pods_from(module, src):
    pods = module.params["pods"]
    origin = "pods"
    if pods is None:
        path = os.path.join(src, "pods.json")
        if not os.path.exists(path):
            return {}
        origin = path
        try:
            with open(path) as handle:
                pods = json.load(handle)
        except (IOError, OSError, ValueError) as exc:
            module.fail_json(msg="%s cannot be read as JSON (%s); remove it or pass the pods option" % (path, to_native(exc)))
    if not isinstance(pods, list):
        module.fail_json(msg="%s must be a list of {name, role, ip} dictionaries" % origin)
    result = {}
    for pod in pods:
        if not isinstance(pod, dict):
            pod = {}
        name = pod.get("name")
        role = pod.get("role") or "other"
        if not name or role not in POD_ROLES:
            module.fail_json(msg="%s: every entry needs a name and a role among %s, got %r" % (origin, ", ".join(POD_ROLES), pod))
        result[name] = {"role": role, "ip": pod.get("ip")}
        if isinstance(pod.get("not_started"), list):
            # written by the diagnostics role: containers that had no log to fetch
            result[name]["not_started"] = [str(container) for container in pod["not_started"]]
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path"),
            pods=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                role=dict(type="str", choices=list(POD_ROLES), default="other"),
                ip=dict(type="str"),
            )),
            noise_patterns=dict(type="list", elements="str"),
            extra_noise_patterns=dict(type="list", elements="str", default=[]),
            title=dict(type="str", default="llm-d diagnostics"),
        ),
        supports_check_mode=True,
    )
    src = module.params["src"]
    dest = module.params["dest"] or src
    raw_dir = os.path.join(src, "raw")
    if not os.path.isdir(raw_dir):
        module.fail_json(msg="src: %s has no raw/ directory; point src at a run directory holding raw/<pod>/<container>.log" % src)

    patterns = module.params["noise_patterns"]
    if patterns is None:
        patterns = DEFAULT_NOISE_PATTERNS
    compiled, errors = compile_noise_patterns(list(patterns) + module.params["extra_noise_patterns"])
    if errors:
        module.fail_json(msg="noise_patterns/extra_noise_patterns: %s" % "; ".join(errors))

    pods = _pods_from(module, src)
    try:
        sources = _read_sources(raw_dir)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read the logs under %s: %s" % (raw_dir, to_native(exc)))

    result = analyze(sources, pods, compiled)
    report = dict((key, result[key]) for key in
                  ("summary", "traces", "pd_evidence", "anomalies", "pods", "files", "dropped_per_pattern"))
    traces_path = os.path.join(dest, "traces.json")
    summary_path = os.path.join(dest, "summary.md")
    filtered_dir = os.path.join(dest, "filtered")
    changed = False
    try:
        for item in result["filtered"]:
            changed |= write_if_changed(module, os.path.join(filtered_dir, item["pod"], item["container"] + ".log"), item["text"])
        changed |= write_if_changed(module, traces_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
        changed |= write_if_changed(module, summary_path, render_summary(result, module.params["title"]))
    except (IOError, OSError) as exc:
        module.fail_json(msg="dest: cannot write the results under %s: %s" % (dest, to_native(exc)))

    module.exit_json(
        changed=changed,
        traces=result["traces"],
        pd_evidence=result["pd_evidence"],
        anomalies=result["anomalies"],
        summary=result["summary"],
        files=result["files"],
        dropped_per_pattern=result["dropped_per_pattern"],
        lines_kept=result["summary"]["lines_kept"],
        lines_dropped=result["summary"]["lines_dropped"],
        traces_path=traces_path,
        summary_path=summary_path,
        filtered_dir=filtered_dir,
    )


if __name__ == "__main__":
    main()
