"""
Tests for C{harbourctl}'s offline commands and argument handling.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.amp.client import HarbourClientProtocol
from harbour.ctl import FAILED, OK, USAGE, _status, check_config, parser


class CheckConfigTests(SynchronousTestCase):
    """
    Tests for C{harbourctl check-config}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()

    def run_check(self) -> tuple[int, str]:
        out = io.StringIO()
        return check_config(self.directory, out), out.getvalue()

    def test_clean(self) -> None:
        """
        A valid directory exits 0 and says so.
        """
        (self.directory / "a.toml").write_text("[work]\nmax_attempts = 2\n")
        code, output = self.run_check()
        self.assertEqual(code, OK)
        self.assertIn("OK", output)

    def test_everyError(self) -> None:
        """
        Every error of every file is printed as C{file:line: message}, and
        the exit code is 1.
        """
        (self.directory / "a.toml").write_text("[work]\nmax_attempts = 0\n")
        (self.directory / "b.toml").write_text("[download]\n\nconcurrency = 'x'\n")
        code, output = self.run_check()
        self.assertEqual(code, FAILED)
        self.assertEqual(
            output.splitlines(),
            [
                "a.toml:2: work.max_attempts: must be at least 1, not 0",
                "b.toml:3: download.concurrency: must be a whole number, not 'x' (str)",
            ],
        )

    def test_missingDirectory(self) -> None:
        """
        A directory that does not exist is an error, not a traceback.
        """
        out = io.StringIO()
        self.assertEqual(check_config(self.directory / "nope", out), FAILED)
        self.assertIn("not a directory", out.getvalue())


class ParserTests(SynchronousTestCase):
    """
    Tests for the argument parser.
    """

    def test_usageExitCode(self) -> None:
        """
        A usage error exits with code 2.
        """
        error = self.assertRaises(SystemExit, parser().parse_args, ["frobnicate"])
        self.assertEqual(error.code, USAGE)
        self.flushLoggedErrors()

    def test_defaults(self) -> None:
        """
        The default connection is the daemon's default loopback port.
        """
        args = parser().parse_args(["status"])
        self.assertEqual(args.connect, "tcp:127.0.0.1:7750")


class StatusTests(SynchronousTestCase):
    """
    C{harbourctl status} as a table.
    """

    def test_publicationsAndRevisions(self) -> None:
        """
        The table shows how the publications log is followed, why its last
        read failed, and each report's revisions.
        """
        document = {
            "harbour": "1",
            "pid": 1,
            "uptime": 5,
            "services": {
                "publications": {
                    "mode": "following",
                    "last_read": "2025-03-10T20:00:00Z",
                    "error": "HTTP 503",
                },
                "work": {"tasks": {"lmp": {"downloaded": 4, "pending": 2}}, "revisions": {"lmp": 2}},
            },
        }

        class Protocol:
            def callRemote(self, command: object, **kwargs: object) -> Deferred[dict[str, str]]:
                return succeed({"status": json.dumps(document)})

        out = io.StringIO()
        # Status needs no reactor, and only callRemote of the protocol.
        reactor = cast(IReactorCore, Clock())
        protocol = cast(HarbourClientProtocol, Protocol())
        result = self.successResultOf(_status(reactor, protocol, parser().parse_args(["status"]), out))
        self.assertEqual(result, OK)
        text = out.getvalue()
        self.assertIn(
            "publications log: following, read 2025-03-10T20:00:00Z (last read failed: HTTP 503)", text
        )
        header, row = [line.split() for line in text.splitlines()[-2:]]
        self.assertEqual(
            dict(zip(header, row)),
            {
                "report": "lmp",
                "pending": "2",
                "downloading": "0",
                "downloaded": "4",
                "empty": "0",
                "failed": "0",
                "total": "6",
                "revised": "2",
            },
        )
