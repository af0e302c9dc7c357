"""run_with_deadline: exit codes, output in the log, and the whole process
group stopped at the deadline (a benchmark's workers included)."""
import os
import subprocess
import sys

from ansible_collections.llmd.stack.plugins.module_utils import _process


def test_exit_code_and_output(tmp_path):
    log = str(tmp_path / "out.log")
    rc, seconds = _process.run_with_deadline([sys.executable, "-c", "print('hello'); raise SystemExit(3)"],
                                             dict(os.environ), str(tmp_path), log, timeout=30)
    assert rc == 3 and seconds < 30
    assert _process.tail(log, 5) == ["hello"]


def test_deadline_stops_the_command_and_its_children(tmp_path):
    log = str(tmp_path / "out.log")
    marker = "llmd-process-test-%d" % os.getpid()
    # the child starts a grandchild that would outlive it, then both sleep
    script = ("import subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', %r]); "
              "print('started', flush=True); time.sleep(60)" % marker)
    rc, seconds = _process.run_with_deadline([sys.executable, "-c", script, marker], dict(os.environ),
                                             str(tmp_path), log, timeout=2)
    assert rc is None and 2 <= seconds < 20
    assert _process.tail(log, 5) == ["started"]
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout.split()
    assert left == []


def test_tail_keeps_the_last_lines(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join("line %d\n" % i for i in range(50)))
    assert _process.tail(str(path), 3) == ["line 47", "line 48", "line 49"]
