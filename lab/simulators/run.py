#!/usr/bin/env python3
"""Supervisor of the lab simulators (lab-only; started by `lab/lab.sh up`).

Every ~second it calls `sync()` on each controller; a controller that raises is
logged and called again next time. SIGTERM/SIGINT stop the loop and call each
controller's `close()`.

A controller is a module `lab/simulators/<name>.py` with

    class Controller:
        def __init__(self, api_client, lab_dir, bin_dir, log): ...
        def sync(self): ...
        def close(self): ...

and optionally a module-level `describe(lab_dir) -> (lines, healthy)` used by
`--status`. `model_servers` is required; the others load when present.

    run.py --lab-dir DIR [--bin-dir DIR]     run until SIGTERM
    run.py --lab-dir DIR --status            print what the simulators run
"""
import argparse
import fcntl
import importlib
import logging
import os
import signal
import subprocess
import sys
import time

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, LAB)

REQUIRED = ("model_servers",)
OPTIONAL = ("gateway_status", "gateway_dataplane")
# A controller failing the same way every second would flood the log: repeat the
# same error at most this often.
REPEAT_ERROR_SECONDS = 60


def default_bin_dir():
    out = subprocess.run(["bash", os.path.join(LAB, "build-tools.sh"), "--print-bin"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def import_controller_module(name, log):
    """The module simulators.<name>, or None when an optional one is absent."""
    try:
        return importlib.import_module("simulators." + name)
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == "simulators." + name:
            log.info("controller %s not present; skipping it", name)
            return None
        raise


def load_controllers(api_client, lab_dir, bin_dir, log):
    controllers = []
    for name in REQUIRED + OPTIONAL:
        try:
            module = import_controller_module(name, log)
            if module is None:
                continue
            controller = module.Controller(api_client, lab_dir, bin_dir, logging.getLogger(name))
        except Exception:
            if name in REQUIRED:
                raise
            log.exception("controller %s failed to load; running without it", name)
            continue
        controllers.append((name, controller))
    return controllers


class ErrorThrottle:
    """Logs a controller's failure in full the first time, then only when it
    changes or once every REPEAT_ERROR_SECONDS while it keeps happening."""

    def __init__(self, log):
        self.log = log
        self.last = {}

    def failed(self, name, exc):
        message = "%s: %s" % (type(exc).__name__, exc)
        previous = self.last.get(name)
        now = time.monotonic()
        if previous is None or previous[0] != message:
            self.log.exception("controller %s sync failed", name)
            self.last[name] = (message, now)
        elif now - previous[1] >= REPEAT_ERROR_SECONDS:
            self.log.error("controller %s still failing: %s", name, message)
            self.last[name] = (message, now)

    def succeeded(self, name):
        if self.last.pop(name, None) is not None:
            self.log.info("controller %s recovered", name)


def hold_single_instance_lock(lab_dir):
    """An exclusive lock held for the supervisor's lifetime, or None when
    another supervisor of this lab holds it (two `lab.sh up` raced)."""
    os.makedirs(os.path.join(lab_dir, "pids"), exist_ok=True)
    handle = open(os.path.join(lab_dir, "pids", "simulators.lock"), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def run(lab_dir, bin_dir, interval, pid_file=None):
    log = logging.getLogger("supervisor")
    from simulators import common

    lock = hold_single_instance_lock(lab_dir)  # held until run() returns
    if lock is None:
        log.info("another supervisor already runs for %s; exiting", lab_dir)
        return
    kubeconfig = os.path.join(lab_dir, "kubeconfig")
    controllers = load_controllers(common.api_client(kubeconfig), lab_dir, bin_dir, log)

    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    if pid_file:
        with open(pid_file, "w") as handle:
            handle.write("%d\n" % os.getpid())
    log.info("supervisor running: pid %d, controllers %s, lab %s",
             os.getpid(), ", ".join(name for name, _ in controllers), lab_dir)

    throttle = ErrorThrottle(log)
    while not stopping:
        started = time.monotonic()
        for name, controller in controllers:
            if stopping:
                break
            try:
                controller.sync()
            except Exception as exc:
                throttle.failed(name, exc)
            else:
                throttle.succeeded(name)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))

    log.info("signal %d: stopping the controllers", stopping[0])
    for name, controller in reversed(controllers):
        try:
            controller.close()
        except Exception:
            log.exception("controller %s failed to close", name)
    if pid_file and os.path.exists(pid_file):
        os.remove(pid_file)
    log.info("supervisor stopped")


def status(lab_dir):
    """Print each controller's describe() lines; exit 1 when one is unhealthy."""
    healthy = True
    for name in REQUIRED + OPTIONAL:
        try:
            module = importlib.import_module("simulators." + name)
        except ModuleNotFoundError:
            continue
        describe = getattr(module, "describe", None)
        if describe is None:
            continue
        lines, ok = describe(lab_dir)
        print("\n".join(lines))
        healthy = healthy and ok
    return 0 if healthy else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab-dir", required=True, help="the lab state directory ($LLMD_LAB_DIR)")
    parser.add_argument("--bin-dir", help="the lab tools (default: lab/build-tools.sh --print-bin)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between syncs")
    parser.add_argument("--pid-file", help="write this process's pid here once running")
    parser.add_argument("--status", action="store_true", help="print what the simulators run, then exit")
    args = parser.parse_args()
    lab_dir = os.path.abspath(args.lab_dir)
    if args.status:
        try:
            return status(lab_dir)
        except BrokenPipeError:  # `lab.sh status | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not os.path.exists(os.path.join(lab_dir, "kubeconfig")):
        logging.getLogger("supervisor").error("no kubeconfig in %s: start the lab with lab/lab.sh up", lab_dir)
        return 2
    try:
        run(lab_dir, args.bin_dir or default_bin_dir(), args.interval, args.pid_file)
    except Exception:
        logging.getLogger("supervisor").exception("supervisor failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
