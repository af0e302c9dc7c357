"""Unit tests of the lab simulators' shared helpers and the supervisor loop pieces."""
import datetime
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab")
sys.path.insert(0, LAB)

from simulators import common  # noqa: E402  (path set just above)

_spec = importlib.util.spec_from_file_location("lab_simulators_run", os.path.join(LAB, "simulators", "run.py"))
supervisor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(supervisor)


def test_cri_log_line_format():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
    assert common.cri_log_line("stderr", "I0102 started\n", when) == \
        "2026-01-02T03:04:05.678901Z stderr F I0102 started\n"


def test_cri_log_file_appends_lines(tmp_path):
    path = tmp_path / "pods" / "ns" / "pod" / "vllm.log"
    log = common.CriLogFile(str(path))
    log.write("stdout", "one")
    log.write("stderr", "two\r\n")
    log.close()
    log.write("stdout", "after close is dropped")
    lines = path.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["stdout F one", "stderr F two"]


def test_free_port_is_bindable_on_every_address():
    port = common.free_port()
    assert common.port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not common.port_is_free(port)


def test_pid_names_path_needs_the_lab_dir_in_the_command_line(tmp_path):
    lab_dir = tmp_path / "lab"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(lab_dir / "kubeconfig")])
    try:
        deadline = time.monotonic() + 10
        while common.pid_cmdline(child.pid)[-1:] != [str(lab_dir / "kubeconfig")]:  # until it has exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert common.pid_names_path(child.pid, str(lab_dir))
        assert common.pid_names_path(child.pid, str(lab_dir) + "/")
        assert not common.pid_names_path(child.pid, str(tmp_path / "la"))
        assert not common.pid_names_path(child.pid, str(tmp_path / "other"))
    finally:
        child.kill()
        child.wait()
    assert not common.pid_alive(child.pid)
    assert not common.pid_names_path(child.pid, str(lab_dir))


def test_json_round_trip(tmp_path):
    path = str(tmp_path / "state" / "x.json")
    assert common.read_json(path, {"none": True}) == {"none": True}
    common.write_json_atomic(path, {"b": 1, "a": [2]})
    assert common.read_json(path, None) == {"a": [2], "b": 1}
    assert os.listdir(os.path.dirname(path)) == ["x.json"]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_error_throttle_logs_once_then_every_minute(monkeypatch, caplog):
    clock = FakeClock()
    monkeypatch.setattr(supervisor.time, "monotonic", clock)
    throttle = supervisor.ErrorThrottle(logging.getLogger("t"))
    caplog.set_level(logging.INFO)

    def fail(message):
        try:
            raise RuntimeError(message)
        except RuntimeError as exc:
            throttle.failed("model_servers", exc)

    fail("boom")
    fail("boom")
    clock.now += 30
    fail("boom")
    assert len(caplog.records) == 1 and caplog.records[0].exc_info
    clock.now += 31
    fail("boom")
    assert caplog.records[-1].getMessage() == "controller model_servers still failing: RuntimeError: boom"
    fail("other")
    assert caplog.records[-1].getMessage() == "controller model_servers sync failed"
    throttle.succeeded("model_servers")
    throttle.succeeded("model_servers")
    assert [r.getMessage() for r in caplog.records].count("controller model_servers recovered") == 1


def test_optional_controller_may_be_absent_but_required_must_import(monkeypatch):
    log = logging.getLogger("t")
    assert supervisor.import_controller_module("model_servers", log).__name__ == "simulators.model_servers"
    monkeypatch.setattr(supervisor, "OPTIONAL", ("no_such_controller",))
    assert supervisor.import_controller_module("no_such_controller", log) is None
    with pytest.raises(ModuleNotFoundError):
        supervisor.import_controller_module("another_missing_one", log)
