#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmd.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: llmd_benchmark_report
short_description: Summarize guidellm reports and compare benchmark runs
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Reads guidellm JSON reports (guidellm 0.3 and later layouts), one run per subdirectory of O(results_dir),
    and writes for each run C(summary.json) and C(summary.md) (requests, errors, TTFT, inter-token latency and
    request latency p50/p95/p99, output tokens per second), then C(comparison.md) and C(comparison.json) across
    the runs in O(results_dir) (for example preset A against preset B).
  - A run directory holds guidellm's C(benchmarks.json) and optionally C(run.json) with C(name) and C(preset),
    as the R(llmd.stack.benchmark,ansible_collections.llmd.stack.benchmark_role) role writes them.
  - Files are only rewritten when their content changes, so a second call reports C(changed=false).
attributes:
  check_mode:
    support: full
    description: In check mode the summaries are computed and returned and nothing is written.
  diff_mode:
    support: none
    description: The written files are reports, not configuration.
options:
  results_dir:
    description: Directory with one subdirectory per run.
    type: path
    required: true
  runs:
    description:
      - Run directory names to summarize and compare, in this order. Empty takes every subdirectory that holds
        a C(benchmarks.json), sorted by name.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Summarize every run and compare them
  llmd.stack.llmd_benchmark_report:
    results_dir: "{{ playbook_dir }}/../reports/benchmark"
  register: bench

- name: Compare two presets
  llmd.stack.llmd_benchmark_report:
    results_dir: reports/benchmark
    runs: [load-aware-20261122T101500Z, prefix-cache-20261122T103000Z]
"""

RETURN = r"""
summaries:
  description: One summary per run, with one entry per guidellm benchmark (a sweep has several).
  returned: always
  type: list
  elements: dict
  sample:
    - name: default-20261122T101500Z
      preset: default
      guidellm_version: ""
      benchmarks:
        - strategy: concurrent
          rate: 4
          duration_s: 60.1
          requests: {successful: 240, errored: 0, incomplete: 4, total: 244}
          error_rate: 0.0
          ttft_ms: {p50: 41.2, p95: 80.3, p99: 95.0, mean: 45.1}
          itl_ms: {p50: 10.1, p95: 12.0, p99: 14.2, mean: 10.5}
          latency_s: {p50: 1.4, p95: 1.7, p99: 1.9, mean: 1.45}
          output_tokens_per_s: 350.2
          requests_per_s: 3.9
lines:
  description: Short lines per run and benchmark, for the Ansible output.
  returned: always
  type: list
  elements: str
comparison:
  description: The comparison table in Markdown.
  returned: always
  type: str
skipped:
  description: Runs left out because their report could not be read (each also gives a warning).
  returned: always
  type: list
  elements: str
files:
  description: Paths of the files written or kept (none in check mode).
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.stack.plugins.module_utils import _benchmark_report as report
from ansible_collections.llmd.stack.plugins.module_utils._files import write_if_changed

REPORT = "benchmarks.json"
RUN_INFO = "run.json"


def run_names(module, results_dir, wanted):
    """The runs to summarize: the ones asked for (each must hold a report), else every one found."""
    if not os.path.isdir(results_dir):
        module.fail_json(msg="results_dir %s does not exist" % results_dir)
    if wanted:
        missing = [name for name in wanted if not os.path.isfile(os.path.join(results_dir, name, REPORT))]
        if missing:
            module.fail_json(msg="no %s in run(s) %s under %s" % (REPORT, ", ".join(missing), results_dir))
        return list(wanted)
    names = sorted(name for name in os.listdir(results_dir)
                   if os.path.isfile(os.path.join(results_dir, name, REPORT)))
    if not names:
        module.fail_json(msg="no run under %s holds a %s" % (results_dir, REPORT))
    return names


def load_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except ValueError as err:
        raise ValueError("%s is not JSON: %s" % (path, err))


def read_run(results_dir, name):
    """The run's summary; ValueError naming the file when it cannot be read."""
    run_dir = os.path.join(results_dir, name)
    info_path = os.path.join(run_dir, RUN_INFO)
    info = load_json(info_path) if os.path.isfile(info_path) else {}
    report_path = os.path.join(run_dir, REPORT)
    try:
        return report.summarize_report(load_json(report_path), name=info.get("name") or name,
                                       preset=info.get("preset", ""))
    except report.ReportError as err:
        raise ValueError("%s: %s" % (report_path, err))


def main():
    module = AnsibleModule(argument_spec=dict(
        results_dir=dict(type="path", required=True),
        runs=dict(type="list", elements="str", default=[]),
    ), supports_check_mode=True)
    results_dir = module.params["results_dir"]
    summaries, outputs, skipped = [], [], []
    for name in run_names(module, results_dir, module.params["runs"]):
        try:
            summary = read_run(results_dir, name)
        except ValueError as err:
            # a run asked for must be readable; one broken old run must not block the others
            if module.params["runs"]:
                module.fail_json(msg=str(err))
            module.warn("skipped run %s: %s" % (name, err))
            skipped.append(name)
            continue
        summaries.append(summary)
        run_dir = os.path.join(results_dir, name)
        outputs.append((os.path.join(run_dir, "summary.json"), json.dumps(summary, indent=2, sort_keys=True) + "\n"))
        outputs.append((os.path.join(run_dir, "summary.md"), report.summary_markdown(summary)))
    if not summaries:
        module.fail_json(msg="no readable run under %s (skipped: %s)" % (results_dir, ", ".join(skipped)))
    rows = report.comparison_rows(summaries)
    comparison = report.comparison_markdown(rows)
    outputs.append((os.path.join(results_dir, "comparison.md"), comparison))
    outputs.append((os.path.join(results_dir, "comparison.json"), json.dumps(rows, indent=2, sort_keys=True) + "\n"))

    changed = False
    for path, text in outputs:
        changed = write_if_changed(module, path, text) or changed
    lines = ["%s: %s" % (summary["name"], line) for summary in summaries for line in report.summary_lines(summary)]
    module.exit_json(changed=changed, summaries=summaries, lines=lines, comparison=comparison, skipped=skipped,
                     files=[] if module.check_mode else [path for path, _text in outputs])


if __name__ == "__main__":
    main()
