# This file is for internal use by the llmd.stack collection only.
"""Run a long command with a deadline through AnsibleModule.run_command.

run_command has no timeout, and a benchmark runs for minutes and starts
worker processes. So the command is started as the leader of a new process
group (a one-line Python shim calls setsid, then execs it), a timer stops
the whole group at the deadline, and whatever of the group outlives the
leader is stopped afterwards too.
"""

import os
import signal
import sys
import threading
import time

GRACE_SECONDS = 10
GROUP_LEADER_SHIM = "import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])"


def run_with_deadline(module, argv, env, cwd, log_path, timeout):
    """(exit code, or None when stopped at the deadline; seconds taken).
    stdout then stderr go to log_path."""
    state = {"pid": None, "timed_out": False, "timer": None}

    def at_deadline():
        state["timed_out"] = True
        stop_group(state["pid"])

    def started(process):
        state["pid"] = process.pid
        state["timer"] = threading.Timer(timeout, at_deadline)
        state["timer"].daemon = True
        state["timer"].start()

    began = time.monotonic()
    try:
        rc, out, err = module.run_command([sys.executable, "-c", GROUP_LEADER_SHIM] + list(argv), cwd=cwd,
                                          environ_update=env, before_communicate_callback=started)
    finally:
        if state["timer"] is not None:
            state["timer"].cancel()
        if state["pid"] is not None:
            stop_group(state["pid"])
    with open(log_path, "w") as log:
        log.write(out)
        if err:
            log.write(("" if not out or out.endswith("\n") else "\n") + err)
    return (None if state["timed_out"] else rc), round(time.monotonic() - began, 1)


def stop_group(pgid):
    """SIGTERM, then SIGKILL, to whatever of the process group still runs."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _signal_group(pgid, sig):
            return
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            if not _signal_group(pgid, 0):
                return
            time.sleep(0.2)


def _signal_group(pgid, sig):
    """False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # the group id was reused by someone else's processes: not ours to stop
        return False
    return True


def tail(path, count):
    with open(path, errors="replace") as handle:
        return [line.rstrip("\n") for line in handle.readlines()[-count:]]
