#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the llmd.stack collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: llmd_verify_report
short_description: Turn llm-d stack checks and probe results into one pass/fail report
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Builds one results list C({check, status, detail, fix}) from the checks of M(llmd.stack.llmd_stack_facts) and the
    result of M(llmd.stack.llmd_inference_probe), with a summary and one line per failing check.
  - Optionally writes a report directory with C(report.json), C(report.md) (for people) and C(junit.xml) (for CI).
  - It never fails on failing checks; the caller decides (the verify role ends with one assert).
options:
  checks:
    description: The C(checks) list returned by M(llmd.stack.llmd_stack_facts).
    type: list
    elements: dict
    default: []
  probe:
    description:
      - The registered result of M(llmd.stack.llmd_inference_probe).
      - Empty or skipped when no endpoint could be probed; the report then has a skipped C(probe.endpoint) entry.
    type: dict
    default: {}
  expect_epp:
    description:
      - Whether answers must carry the EPP's C(x-went-into-resp-headers) header.
      - When false, answers that bypassed the EPP are a warning instead of a failure.
    type: bool
    default: true
  output_dir:
    description:
      - Directory to write C(report.json), C(report.md) and C(junit.xml) into; created when missing.
      - Nothing is written when unset, or in check mode.
    type: path
  title:
    description: Title of the human report and name of the JUnit test suite.
    type: str
    default: llm-d stack verification
  context:
    description: Extra facts for the report header, for example the namespace, the release and the endpoint probed.
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode the report is built and returned but no file is written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - The results are built by a pure function; this module only writes the files.
seealso:
  - module: llmd.stack.llmd_stack_facts
  - module: llmd.stack.llmd_inference_probe
"""

EXAMPLES = r"""
- name: Gather the stack state and its checks
  llmd.stack.llmd_stack_facts:
    namespace: llm-d-sim
  register: stack

- name: Probe the gateway through an in-process port-forward
  llmd.stack.llmd_inference_probe:
    port_forward:
      namespace: llm-d-sim
      service: infra-sim-inference-gateway-istio
      port: 80
    fail_on_error: false
  register: probe

- name: Build and write the report
  llmd.stack.llmd_verify_report:
    checks: "{{ stack.checks }}"
    probe: "{{ probe }}"
    output_dir: reports/verify
    context:
      namespace: llm-d-sim
  register: report

- name: Fail with every failing check and its fix
  ansible.builtin.assert:
    that: report.summary.ok
    fail_msg: "{{ report.failures | join('\n') }}"
"""

RETURN = r"""
results:
  description: Every check, facts checks first, then the probe's evidence.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: Check id, for example V(httproute.exists) or V(probe.completions).
      type: str
      sample: httproute.exists
    source:
      description: The module that produced it.
      type: str
      sample: llmd_stack_facts
    status:
      description: V(pass), V(fail), V(warn) or V(skip).
      type: str
      sample: fail
    resource:
      description: The object or URL checked.
      type: str
      sample: HTTPRoute llm-d-sim/llm-d-sim
    detail:
      description: What was found.
      type: str
      sample: no HTTPRoute references Gateway infra-sim-inference-gateway
    fix:
      description: What to do about it (empty when it passed).
      type: str
      sample: apply the HTTPRoute (deploy.yml --tags stack)
  sample: [{check: httproute.exists, source: llmd_stack_facts, status: fail, resource: "", detail: missing, fix: apply it}]
summary:
  description: Counts per status, the total, and whether nothing failed.
  returned: always
  type: dict
  sample: {pass: 30, fail: 1, warn: 0, skip: 2, total: 33, ok: false}
failures:
  description: One line per failing check, with its fix.
  returned: always
  type: list
  elements: str
  sample: ["httproute.exists: no HTTPRoute references the Gateway -> fix: apply the HTTPRoute"]
table:
  description: A compact fixed-width summary table, one line per result.
  returned: always
  type: list
  elements: str
  sample: ["STATUS CHECK             DETAIL", "PASS   gateway.exists    Gateway llm-d-sim/infra-sim-inference-gateway: found"]
files:
  description: Paths of the files written, or null when nothing was written.
  returned: always
  type: dict
  sample: {json: reports/verify/report.json, markdown: reports/verify/report.md, junit: reports/verify/junit.xml}
"""

import datetime
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmd.stack.plugins.module_utils import _verify_report as report


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", default=[]),
            probe=dict(type="dict", default={}),
            expect_epp=dict(type="bool", default=True),
            output_dir=dict(type="path"),
            title=dict(type="str", default="llm-d stack verification"),
            context=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    results = report.build_results(params["checks"], params["probe"], params["expect_epp"])
    summary = report.summarize(results)
    out = dict(changed=False, results=results, summary=summary, failures=report.failures(results),
               table=report.table(results), files=None)

    if params["output_dir"] and not module.check_mode:
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        directory = params["output_dir"]
        files = dict(json=os.path.join(directory, "report.json"), markdown=os.path.join(directory, "report.md"),
                     junit=os.path.join(directory, "junit.xml"))
        context = dict(params["context"], generated=timestamp)
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory)
            write(files["json"], json.dumps(dict(title=params["title"], context=context, summary=summary,
                                                 results=results), indent=2, sort_keys=True) + "\n")
            write(files["markdown"], report.markdown(results, summary, params["title"], context))
            write(files["junit"], report.junit(results, params["title"], timestamp))
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot write the report into %s: %s" % (directory, exc), **out)
        out.update(changed=True, files=files)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
