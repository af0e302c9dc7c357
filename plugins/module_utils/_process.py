# This file is for internal use by the llmd.stack collection only.
"""Run a long command with a deadline, its output in a file.

AnsibleModule.run_command has no timeout and keeps the whole output in
memory; a benchmark runs for minutes and starts worker processes, so it runs
in its own session and the whole process group is stopped at the deadline.
"""

import os
import signal
import subprocess
import time

GRACE_SECONDS = 10


def run_with_deadline(argv, env, cwd, log_path, timeout):
    """(exit code or None when stopped at the deadline, seconds taken)."""
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                   start_new_session=True)
        try:
            rc = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            _stop_group(process)
    return rc, round(time.monotonic() - started, 1)


def _stop_group(process):
    """SIGTERM, then SIGKILL, to whatever of the group still runs (workers too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; give its workers the same grace
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def tail(path, count):
    with open(path, errors="replace") as handle:
        return [line.rstrip("\n") for line in handle.readlines()[-count:]]
