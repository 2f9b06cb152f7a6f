"""
C{harbourctl} as a real process, where what surrounds it matters: the
pipe its output goes into.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from twisted.trial.unittest import TestCase

from harbour.ctl.codes import FAILED, UNREACHABLE
from tests.processes import PATIENCE, program

#: Twenty years of one report a day at a time: a manifest of about 1.2 MB,
#: far more than a pipe holds.
CONFIGURATION = """
[manifest]
start = "2000-01-01"
end = "2019-12-31"

[[reports]]
name = "lmp"
queryname = "PRC_LMP"
market_run_id = "DAM"
params = { node = "TH_NP15_GEN-APND" }
window = "1d"
"""


class ClosedPipeTests(TestCase):
    """
    A reader that stops reading (C{harbourctl manifest | head -1}).
    """

    def test_readerGone(self) -> None:
        """
        C{harbourctl} stops quietly with status 1 when its reader closes
        the pipe: no C{BrokenPipeError} traceback, no complaint at exit.
        """
        config = Path(self.mktemp())
        config.mkdir()
        (config / "harbour.toml").write_text(CONFIGURATION)
        ctl = subprocess.Popen(
            [program("harbourctl"), "manifest", "--config-dir", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert ctl.stdout is not None and ctl.stderr is not None
        self.assertTrue(ctl.stdout.readline())
        ctl.stdout.close()
        self.assertEqual(ctl.wait(timeout=PATIENCE), FAILED)
        self.assertEqual(ctl.stderr.read(), b"")
        ctl.stderr.close()


class InterruptedTests(TestCase):
    """
    C{harbourctl} stopped by a signal before the daemon answered.
    """

    def test_checkTimedOut(self) -> None:
        """
        C{status --check} ended by SIGTERM (a monitoring system's timeout)
        while the daemon has not answered exits 3, UNKNOWN, with its
        plugin's line, not 0, which monitoring reads as OK.
        """
        token = Path(self.mktemp())
        token.write_text("a token\n")
        # A daemon that accepts the connection and never answers.
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(PATIENCE)
        endpoint = f"tcp:127.0.0.1:{listener.getsockname()[1]}"
        ctl = subprocess.Popen(
            [program("harbourctl"), "--connect", endpoint, "--token-file", str(token), "status", "--check"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        connection, ignored = listener.accept()
        self.addCleanup(connection.close)
        connection.settimeout(PATIENCE)
        sent = b""
        while b"Authenticate" not in sent:
            received = connection.recv(4096)
            if not received:
                self.fail(f"harbourctl closed the connection before Authenticate: {sent!r}")
            sent += received
        # It waits for the answer: as it would when monitoring gives up.
        ctl.send_signal(signal.SIGTERM)
        out, errors = ctl.communicate(timeout=PATIENCE)
        self.assertEqual(ctl.returncode, UNREACHABLE, errors)
        said = f"status: interrupted before {endpoint} answered"
        self.assertEqual(out.decode(), f"HARBOUR UNKNOWN - {said}\n")
        self.assertEqual(errors.decode(), f"harbourctl: {said}\n")
