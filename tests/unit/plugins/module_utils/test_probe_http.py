"""Unit tests for the thin HTTP shell: failure classification and the retry loop."""
import errno
import socket
import ssl
from http.client import RemoteDisconnected
from urllib.error import URLError

import pytest

from ansible_collections.llmd.stack.plugins.module_utils import _probe_http as http


@pytest.mark.parametrize("err, kind", [
    (URLError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), "connection_refused"),
    (URLError(OSError(errno.ECONNREFUSED, "Connection refused")), "connection_refused"),
    (URLError(socket.timeout("timed out")), "timeout"),
    (socket.timeout("timed out"), "timeout"),
    (URLError(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")), "tls_verify"),
    (URLError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), "tls"),
    (URLError(socket.gaierror(-2, "Name or service not known")), "dns"),
    (RemoteDisconnected("Remote end closed connection without response"), "connection_closed"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "connection_closed"),
    (URLError("something odd"), "connection_error"),
])
def test_transport_failures_are_classified(err, kind):
    got_kind, message = http.classify(err, 2.5)
    assert got_kind == kind
    assert message and "\n" not in message
    if kind == "timeout":
        assert message == "no answer within 2.5s"


class ScriptedSender(object):
    """Answers from a script of records, one per send."""

    def __init__(self, records):
        self.records = list(records)
        self.sent = 0

    def send(self, request):
        self.sent += 1
        return dict(self.records.pop(0))


def rec(status=None, kind=None, body=""):
    return {"status": status, "error_kind": kind, "error": kind, "body": body}


def test_not_ready_answers_are_retried_until_ready():
    sender = ScriptedSender([rec(kind="connection_refused"), rec(503, body="no healthy upstream"), rec(200)])
    record = http.send_until_ready(sender, {}, retries=5, delay=0, deadline_at=None)
    assert (record["status"], record["attempts"], sender.sent) == (200, 3, 3)


def test_other_failures_are_not_retried():
    sender = ScriptedSender([rec(400, body="prompt not found"), rec(200)])
    record = http.send_until_ready(sender, {}, retries=5, delay=0, deadline_at=None)
    assert (record["status"], record["attempts"]) == (400, 1)


def test_retries_stop_at_the_count():
    sender = ScriptedSender([rec(404)] * 3)
    record = http.send_until_ready(sender, {}, retries=2, delay=0, deadline_at=None)
    assert (record["status"], record["attempts"], sender.sent) == (404, 3, 3)


def test_retries_stop_at_the_deadline():
    sender = ScriptedSender([rec(kind="connection_refused")] * 5)
    record = http.send_until_ready(sender, {}, retries=5, delay=10, deadline_at=0)
    assert record["attempts"] == 1
    assert record["error"] == "connection_refused (deadline reached after 1 attempts)"
