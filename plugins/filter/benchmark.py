# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmd.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the benchmark role: the guidellm command line and why a benchmark pod is stuck."""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmd.stack.plugins.module_utils import _benchmark as bench


def guidellm_command(settings, version):
    """{argv, env, report} for `guidellm benchmark run`; version is '0.6.1' or an image reference."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError("guidellm_command: settings must be a dict, got %s" % type(settings).__name__)
    parsed = bench.parse_version(version)
    errors = bench.validate(settings, parsed)
    if errors:
        raise AnsibleFilterError("guidellm_command: " + "; ".join(errors))
    return bench.guidellm_command(settings, parsed)


def pod_stuck_reasons(pods, all_states=False):
    """Reasons the benchmark pods will not succeed (or, with all_states, every pod's state)."""
    if not isinstance(pods, list):
        raise AnsibleFilterError("pod_stuck_reasons: expected a list of pods, got %s" % type(pods).__name__)
    return bench.pod_stuck_reasons(pods, all_states=all_states)


class FilterModule(object):
    def filters(self):
        return {"guidellm_command": guidellm_command, "pod_stuck_reasons": pod_stuck_reasons}
