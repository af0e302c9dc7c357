"""run_with_deadline: exit codes, output in the log, and the whole process
group stopped at the deadline (a benchmark's workers included)."""
import subprocess
import sys

import pytest

from ansible.module_utils.basic import AnsibleModule

from module_args import patch_module_args

from ansible_collections.llmd.stack.plugins.module_utils import _process


@pytest.fixture(name="module")
def fixture_module():
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


def test_exit_code_output_and_environment(module, tmp_path):
    log = str(tmp_path / "out.log")
    script = "import os, sys; print(os.environ['LLMD_TEST']); print('oops', file=sys.stderr); raise SystemExit(3)"
    rc, seconds = _process.run_with_deadline(module, [sys.executable, "-c", script], {"LLMD_TEST": "hello"},
                                             str(tmp_path), log, timeout=30)
    assert rc == 3 and seconds < 30
    assert _process.tail(log, 5) == ["hello", "oops"]


def test_deadline_stops_the_command_and_its_children(module, tmp_path):
    log = str(tmp_path / "out.log")
    marker = "llmd-process-test-%s" % tmp_path.name
    # the command starts a child that would outlive it, then both sleep
    script = ("import subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', %r]); "
              "print('started', flush=True); time.sleep(60)" % marker)
    rc, seconds = _process.run_with_deadline(module, [sys.executable, "-c", script, marker], {},
                                             str(tmp_path), log, timeout=2)
    assert rc is None and 2 <= seconds < 20
    assert _process.tail(log, 5) == ["started"]
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout.split()
    assert left == []


def test_children_left_by_a_finished_command_are_stopped(module, tmp_path):
    marker = "llmd-process-orphan-%s" % tmp_path.name
    script = ("import subprocess, sys; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', %r])" % marker)
    rc, _seconds = _process.run_with_deadline(module, [sys.executable, "-c", script], {}, str(tmp_path),
                                              str(tmp_path / "out.log"), timeout=30)
    assert rc == 0
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout.split()
    assert left == []


def test_tail_keeps_the_last_lines(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join("line %d\n" % i for i in range(50)))
    assert _process.tail(str(path), 3) == ["line 47", "line 48", "line 49"]
