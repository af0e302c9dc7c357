# -*- coding: utf-8 -*-
# Copyright: (c) 2026, llmd.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guidellm command line of a benchmark, for templates (the Job of the benchmark role)."""

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


class FilterModule(object):
    def filters(self):
        return {"guidellm_command": guidellm_command}
