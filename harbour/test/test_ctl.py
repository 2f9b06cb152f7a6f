"""
Tests for C{harbourctl}'s offline commands and argument handling.
"""

from __future__ import annotations

import datetime
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, cast

from OpenSSL import SSL
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IReactorCore
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from harbour.amp import commands
from harbour.amp.commands import encode_event
from harbour.amp.server import ControlProtocol
from harbour.ctl import FAILED, OK, UNREACHABLE, USAGE, _status, check_config, main, parser, remote
from harbour.ctl.offline import plan_table, print_manifest, show_catalogue
from harbour.ctl.remote import _COMMANDS, ALIVE_EVERY, ANSWER_WITHIN, COMMAND_WITHIN, run_remote
from harbour.oasis.requests import ReportURL
from harbour.store.memory import MemoryTaskStore
from harbour.test.helpers import TOKEN, call, connected, control_service, run_status


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

    def test_errorsFoundAcrossTopics(self) -> None:
        """
        What only the whole configuration shows is found as the daemon
        finds it: a report too large for one bus event, and a report
        starting after the manifest's end.
        """
        (self.directory / "manifest.toml").write_text('[manifest]\nend = "2024-03-01"\n')
        (self.directory / "reports.toml").write_text(
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n'
            'start = "2024-06-01"\n'
            '[[reports]]\nname = "big"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n'
            f'params = {{ node = "{"N" * 70_000}" }}\n'
        )
        code, output = self.run_check()
        self.assertEqual(code, FAILED)
        lines = output.splitlines()
        self.assertEqual(len(lines), 2, output[:500])
        self.assertTrue(lines[0].startswith("reports.toml:5: reports[0].start: "), lines[0])
        self.assertTrue(
            lines[1].startswith("reports.toml:6: reports[1]: cannot publish: it is "), lines[1][:200]
        )

    def test_publishedAheadBlocks(self) -> None:
        """
        A window of several days for a report OASIS serves only current
        data of and publishes ahead is an error at its line, saying that
        its past days would be lost; without a window, it is asked a day
        at a time.
        """
        (self.directory / "reports.toml").write_text(
            '[[reports]]\nname = "usage"\nqueryname = "TRNS_CURR_USAGE"\n'
            'params = { ti_id = "ALL", ti_direction = "ALL" }\nwindow = "31d"\n'
        )
        code, output = self.run_check()
        self.assertEqual(code, FAILED)
        [line] = output.splitlines()
        self.assertTrue(line.startswith("reports.toml:5: reports[0].window: TRNS_CURR_USAGE: "), line)
        self.assertIn("a window of 31d asked again from today on would lose its past days", line)
        (self.directory / "reports.toml").write_text(
            '[[reports]]\nname = "usage"\nqueryname = "TRNS_CURR_USAGE"\n'
            'params = { ti_id = "ALL", ti_direction = "ALL" }\n'
        )
        code, output = self.run_check()
        self.assertEqual(code, OK, output)

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

    def test_badTaskArguments(self) -> None:
        """
        A state, limit or offset the daemon would refuse is a usage error
        saying what is expected, before anything is sent.
        """
        for arguments, said in (
            (["tasks", "--state", "bogus"], "argument --state: invalid choice: 'bogus'"),
            (["tasks", "--limit", "0"], "argument --limit: 0 is not from 1 to 500"),
            (["tasks", "--limit", "501"], "argument --limit: 501 is not from 1 to 500"),
            (["tasks", "--limit", "many"], "argument --limit: 'many' is not a whole number"),
            (["tasks", "--offset", "-5"], "argument --offset: -5 is not 0 or more"),
            (["retry", "--state", "downloaded"], "argument --state: invalid choice: 'downloaded'"),
        ):
            errors = io.StringIO()
            self.patch(sys, "stderr", errors)
            error = self.assertRaises(SystemExit, parser().parse_args, arguments)
            self.assertEqual(error.code, USAGE, arguments)
            self.assertIn(said, errors.getvalue())
        args = parser().parse_args(["tasks", "--state", "empty", "--limit", "500", "--offset", "0"])
        self.assertEqual((args.state, args.limit, args.offset), ("empty", 500, 0))

    def test_notUTF8(self) -> None:
        """
        An argument with bytes the locale could not decode (as Python
        passes them: lone surrogates) is a usage error naming it, before
        anything is parsed or sent.
        """
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        error = self.assertRaises(SystemExit, main, ["tasks", "--report", "\udcfe\udcff"])
        self.assertEqual(error.code, USAGE)
        self.assertEqual(errors.getvalue(), "harbourctl: argument '\\udcfe\\udcff' is not UTF-8 text\n")

    def test_checkUsageUnknown(self) -> None:
        """
        A command line C{status --check} cannot parse is no verdict on the
        daemon: it exits 3 (UNKNOWN to monitoring, which reads 2 as
        CRITICAL) with a plugin's line, and argparse's reason on standard
        error.
        """
        out, errors = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", errors)
        error = self.assertRaises(SystemExit, main, ["status", "--check", "--bogus"])
        self.assertEqual(error.code, UNREACHABLE)
        self.assertEqual(
            out.getvalue(),
            "HARBOUR UNKNOWN - harbourctl: the command line is wrong (see standard error)\n",
        )
        self.assertIn("unrecognized arguments: --bogus", errors.getvalue())

    def test_otherUsageErrors(self) -> None:
        """
        Other commands' usage errors, and C{status} without C{--check},
        exit with code 2 and print nothing on standard output.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", io.StringIO())
        for arguments in (["status", "--bogus"], ["tasks", "--check"], ["--check", "status", "\udcfe"]):
            error = self.assertRaises(SystemExit, main, arguments)
            self.assertEqual(error.code, USAGE, arguments)
        self.assertEqual(out.getvalue(), "")

    def test_badPatterns(self) -> None:
        """
        C{subscribe} with what is no topic or pattern, even one another
        pattern covers, is a usage error saying why, before anything is
        sent: it connected, then exited 1 with the daemon's refusal, where
        C{publish} with a bad topic exits 2.
        """
        for patterns, said in (
            (["bad topic"], "bad topic 'bad topic': use letters"),
            (["a**"], "bad pattern 'a**': a topic, or the start of one followed by one '*'"),
            (["demo.*", "demo.a b"], "bad topic 'demo.a b'"),
        ):
            errors = io.StringIO()
            self.patch(sys, "stderr", errors)
            error = self.assertRaises(SystemExit, parser().parse_args, ["subscribe", *patterns])
            self.assertEqual(error.code, USAGE, patterns)
            self.assertIn(f"argument TOPIC: {said}", errors.getvalue())
        args = parser().parse_args(["subscribe", "demo.*", "task.done", "*"])
        self.assertEqual(args.topics, ["demo.*", "task.done", "*"])

    def test_watchInterval(self) -> None:
        """
        C{watch --interval} is a number of seconds from 0.1 to 60: 0, a
        negative number or C{nan} would ask the daemon its status without
        pause, C{inf} once, and more than a minute would leave the
        connection silent long enough to be closed as idle; each is a usage
        error saying what is expected.
        """
        for bad in ("0", "-1", "0.01", "nan", "inf", "60.5", "soon"):
            errors = io.StringIO()
            self.patch(sys, "stderr", errors)
            error = self.assertRaises(SystemExit, parser().parse_args, ["watch", "--interval", bad])
            self.assertEqual(error.code, USAGE, bad)
            self.assertIn(f"argument --interval: {bad!r} is not a number of seconds", errors.getvalue())
        self.assertEqual(parser().parse_args(["watch", "--interval", "0.1"]).interval, 0.1)
        self.assertEqual(parser().parse_args(["watch", "--interval", "60"]).interval, 60.0)
        self.assertEqual(parser().parse_args(["watch"]).interval, 1.0)

    def test_manifestDates(self) -> None:
        """
        C{manifest --start} and C{--end} take dates OASIS could have, and
        say what they expect of anything else; a start after the end is a
        usage error, not an empty manifest.
        """
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        for bad, why in [
            ("2025-02-30", "is not a date (YYYY-MM-DD)"),
            ("0001-01-01", "is not a year between 1900 and 9998"),
        ]:
            error = self.assertRaises(SystemExit, parser().parse_args, ["manifest", "--start", bad])
            self.assertEqual(error.code, USAGE)
            self.assertIn(f"{bad!r} {why}", errors.getvalue())
        args = parser().parse_args(["manifest", "--start", "2025-03-05", "--end", "2025-03-01"])
        out = io.StringIO()
        self.assertEqual(print_manifest(args, out), USAGE)
        self.assertEqual(out.getvalue(), "")
        self.assertIn("--start 2025-03-05 is after --end 2025-03-01", errors.getvalue())

    def test_configDirectoryMissing(self) -> None:
        """
        The offline commands that read a configuration fail, saying so,
        for a directory that does not exist, instead of treating it as
        one with no reports.
        """
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        args = parser().parse_args(["manifest", "--config-dir", "/nonexistent/config"])
        out = io.StringIO()
        self.assertEqual(print_manifest(args, out), FAILED)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(errors.getvalue(), "harbourctl: /nonexistent/config: not a directory\n")

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
        result, text = run_status(
            {
                "publications": {
                    "mode": "following",
                    "last_read": "2025-03-10T20:00:00Z",
                    "error": "HTTP 503",
                    "lagging": {
                        "lmp": "the log's newest day of PRC_LMP DAM is 2025-03-07, 3 days before 2025-03-10"
                    },
                },
                "work": {
                    "tasks": {"lmp": {"downloaded": 4, "pending": 2}},
                    "revisions": {"lmp": 2},
                    "backlog": {"requests": 2, "hours": 0.01},
                },
            },
        )
        self.assertEqual(result, OK)
        self.assertIn(
            "publications log: following, read 2025-03-10T20:00:00Z (last read failed: HTTP 503)", text
        )
        self.assertIn("2 requests to go: about 1 min to catch up", text)
        self.assertIn("lmp: on date ranges: the log's newest day of PRC_LMP DAM is 2025-03-07", text)
        header, row = [line.split() for line in text.splitlines()[-3:-1]]
        self.assertEqual(
            dict(zip(header, row)),
            {
                "report": "lmp",
                "pending": "2",
                "downloading": "0",
                "downloaded": "4",
                "empty": "0",
                "failed": "0",
                "retired": "0",
                "total": "6",
                "revised": "2",
            },
        )

    def test_refreshFailing(self) -> None:
        """
        Refreshes failing are said, with since when and the last error;
        none failing says nothing of them.
        """
        services: dict[str, Any] = {
            "work": {"tasks": {}, "refresh_error": {"error": "ERR boom", "since": "2026-11-24T10:00:00Z"}}
        }
        result, text = run_status(services)
        self.assertEqual(result, OK)
        self.assertIn("refreshes fail since 2026-11-24T10:00:00Z: ERR boom\n", text)
        services["work"]["refresh_error"] = None
        result, text = run_status(services)
        self.assertNotIn("refreshes fail", text)

    def test_waitingForConfiguration(self) -> None:
        """
        Downloads waiting for a valid configuration say so where they
        would say they run, beside the configuration's errors.
        """
        services: dict[str, Any] = {
            "download": {
                "paused": False,
                "waiting": "a valid configuration",
                "in_flight": [],
                "bytes_per_second": 0,
            },
            "config": {"errors": ["manifest.toml:7: work.lease_second: unknown key"]},
        }
        result, text = run_status(services)
        self.assertEqual(result, OK)
        self.assertIn("download waiting for a valid configuration, 0 in flight, 0 B/s\n", text)
        self.assertIn("config error: manifest.toml:7: work.lease_second: unknown key\n", text)

    def test_paused(self) -> None:
        """
        Every paused service is named, not only C{download}; with none
        paused, nothing is said of pauses.
        """
        services: dict[str, Any] = {
            "download": {"paused": False, "in_flight": [], "bytes_per_second": 0},
            "work": {"paused": True, "tasks": {}},
            "tables": {"paused": True},
        }
        result, text = run_status(services)
        self.assertEqual(result, OK)
        self.assertIn("download running, 0 in flight, 0 B/s\npaused: tables, work\n", text)
        services["work"]["paused"] = services["tables"]["paused"] = False
        result, text = run_status(services)
        self.assertNotIn("paused", text)

    def test_checkJSON(self) -> None:
        """
        C{--check --json} prints the document and exits with the check's
        code, as C{--check} alone does: it exited 0 whatever the check.
        """
        services = {"config": {"errors": ["a.toml:1: bad"]}, "store": {"connected": False, "redis": "r"}}
        for extra, code in ((["--json"], OK), (["--check"], 2), (["--check", "--json"], 2)):
            result, text = run_status(services, *extra)
            self.assertEqual(result, code, extra)
            if "--json" in extra:
                self.assertEqual(json.loads(text)["services"], services)

    def test_redisOutage(self) -> None:
        """
        Redis is up only if connected with no outage under way: one that
        refuses every write (out of memory) keeps its connections, and
        was counted as up.  C{--check} says it is critical, first, in the
        store's words; the table says since when, and why.
        """
        oom = "OOM command not allowed when used memory > 'maxmemory'."
        services: dict[str, Any] = {
            "store": {
                "redis": "unix:/r.sock",
                "connected": True,
                "outage_since": 1_750_000_000.0,
                "last_error": oom,
            },
            "monitor": {"reports": {"lmp": {"health": "behind", "why": "2025-06-14 not mirrored"}}},
        }
        said = f"Redis commands fail ({oom}); lmp behind (2025-06-14 not mirrored); 1 reports: 1 behind"
        self.assertEqual(run_status(services, "--check"), (2, f"HARBOUR CRITICAL - {said}\n"))
        self.assertEqual(run_status(services, "--check", "--json")[0], 2)
        self.assertIn(
            f"redis unix:/r.sock (connected, outage since 2025-06-15T15:06:40Z: {oom})\n",
            run_status(services)[1],
        )
        services["store"] = {
            "redis": "unix:/r.sock",
            "connected": True,
            "outage_since": None,
            "last_error": oom,
        }
        self.assertEqual(
            run_status(services, "--check"),
            (1, "HARBOUR WARNING - lmp behind (2025-06-14 not mirrored); 1 reports: 1 behind\n"),
        )
        self.assertIn("redis unix:/r.sock (connected)\n", run_status(services)[1])

    def test_reportNamedError(self) -> None:
        """
        A report may be named C{error}: its counts are in the table with
        the others'.  The daemon says it cannot count tasks as
        C{{"error": why}}, text, and the table was left out whenever
        C{work.tasks} had the key C{error}.
        """
        services: dict[str, Any] = {
            "work": {"tasks": {"error": {"downloaded": 3}, "lmp": {"pending": 1}}, "revisions": {}}
        }
        result, text = run_status(services)
        self.assertEqual(result, OK)
        rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()}
        self.assertIn("report", rows)
        self.assertEqual(dict(zip(rows["report"], rows["error"]))["downloaded"], "3")
        self.assertEqual(dict(zip(rows["report"], rows["lmp"]))["pending"], "1")

    def test_tasksNotCounted(self) -> None:
        """
        A daemon that cannot count its tasks (its Redis stalled, before the
        store finds it down) has its reason said where the table would
        be, as C{watch} says it: the table was left out without a word.
        """
        stalled = "Redis at unix:/r.sock: Not received Redis response in 5.0 seconds"
        services: dict[str, Any] = {
            "store": {"redis": "unix:/r.sock", "connected": True, "outage_since": None},
            "work": {"tasks": {"error": stalled}},
        }
        result, text = run_status(services)
        self.assertEqual(result, OK)
        self.assertIn(f"no task counts: {stalled}\n", text)
        self.assertNotIn("report", text)

    def test_redisNotConnected(self) -> None:
        """
        Redis not connected is critical, said as ever, with the last error.
        """
        services: dict[str, Any] = {
            "store": {"redis": "unix:/r.sock", "connected": False, "last_error": "refused"}
        }
        self.assertEqual(
            run_status(services, "--check"),
            (2, "HARBOUR CRITICAL - Redis not connected (refused); 0 reports\n"),
        )
        self.assertIn("redis unix:/r.sock (NOT connected: refused)\n", run_status(services)[1])


class LargeStatusTests(SynchronousTestCase):
    """
    C{harbourctl status} with thousands of reports, over AMP (in memory):
    a document far larger than one AMP value.
    """

    def setUp(self) -> None:
        self.names = [f"r{i:04d}" for i in range(2000)]
        self.document = {
            "harbour": "1",
            "pid": 1,
            "uptime": 5,
            "services": {
                "work": {
                    "tasks": {name: {"pending": 1} for name in self.names},
                    "revisions": dict.fromkeys(self.names, 0),
                },
                "download": {"last_success": dict.fromkeys(self.names, "2025-01-01T00:00:00Z")},
            },
        }
        self.assertGreater(len(json.dumps(self.document)), 2 * 0xFFFF)
        service = control_service(status_document=lambda: self.document)
        self.client, self.server, self.pump = connected(service)
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)

    def run_status(self, *extra: str) -> str:
        """
        Run C{harbourctl status} against the in-memory daemon.

        @return: What it printed.
        """
        out = io.StringIO()
        # Status needs no reactor.
        reactor = cast(IReactorCore, Clock())
        result = _status(reactor, self.client, parser().parse_args(["status", *extra]), out)
        self.pump.flush()
        self.assertEqual(self.successResultOf(result), OK)
        return out.getvalue()

    def test_table(self) -> None:
        """
        The table has a row for every report.
        """
        words = [line.split() for line in self.run_status().splitlines()]
        [header] = [row for row in words if row[:1] == ["report"]]
        rows = [row for row in words if row and row[0] in self.names]
        self.assertEqual([row[0] for row in rows], self.names)
        first = dict(zip(header, rows[0]))
        self.assertEqual((first["pending"], first["total"]), ("1", "1"))

    def test_json(self) -> None:
        """
        C{--json} prints the whole document.
        """
        self.assertEqual(json.loads(self.run_status("--json")), self.document)


class TaskPagesTests(SynchronousTestCase):
    """
    C{harbourctl tasks} over AMP (in memory) with more tasks than one
    C{ListTasks} page holds: the daemon stops a page at one AMP value.
    """

    def setUp(self) -> None:
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)
        store = MemoryTaskStore(Clock())
        store.create(
            [
                ReportURL(
                    f"http://oasis.example/oasisapi/SingleZip?queryname=PRC_LMP&day={i}&{'x' * 200}",
                    f"lmp/{i:04d}.zip",
                    "lmp",
                    start + datetime.timedelta(days=i),
                    start + datetime.timedelta(days=i + 1),
                )
                for i in range(1000)
            ]
        )
        self.client, self.server, self.pump = connected(control_service(tasks=store))
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)
        page = self.successResultOf(
            call(self.client, self.pump, commands.ListTasks, state="pending", offset=0, limit=500)
        )
        self.assertLess(len(json.loads(page["tasks"])), 250)

    def run_tasks(self, *extra: str) -> str:
        """
        Run C{harbourctl tasks --state pending} against the in-memory
        daemon.

        @return: What it printed.
        """
        out = io.StringIO()
        reactor = cast(IReactorCore, Clock())
        args = parser().parse_args(["tasks", "--state", "pending", *extra])
        result = _COMMANDS["tasks"](reactor, self.client, args, out)
        self.pump.flush()
        self.assertEqual(self.successResultOf(result), OK)
        return out.getvalue()

    def test_wholePages(self) -> None:
        """
        C{--json} lists C{--limit} tasks from C{--offset}, or as many as
        are left, in the daemon's order: paging by C{--limit} sees every
        task once.
        """
        pages = [
            [
                task["filename"]
                for task in json.loads(self.run_tasks("--limit", "500", "--offset", offset, "--json"))
            ]
            for offset in ("0", "500", "950")
        ]
        self.assertEqual([len(page) for page in pages], [500, 500, 50])
        self.assertEqual(pages[0] + pages[1], [f"lmp/{i:04d}.zip" for i in reversed(range(1000))])
        self.assertEqual(pages[2], pages[1][-50:])

    def test_text(self) -> None:
        """
        The table has a row per task asked for, and the last line counts
        them.
        """
        lines = self.run_tasks("--limit", "300").splitlines()
        self.assertEqual(lines[-1], "300 of 1000 pending tasks")
        self.assertEqual(len([line for line in lines if ".zip" in line]), 300)


class ClosedPipe(io.StringIO):
    """
    Output whose reader has gone: every write fails as a closed pipe's.

    @ivar terminal: Whether it says it is a terminal.
    """

    def __init__(self, terminal: bool = False) -> None:
        super().__init__()
        self.terminal = terminal

    def write(self, text: str) -> int:
        """
        @raise BrokenPipeError: Always.
        """
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self) -> bool:
        """
        @return: Whether it was made as a terminal.
        """
        return self.terminal


class WatchTests(SynchronousTestCase):
    """
    C{harbourctl watch} over AMP (in memory).
    """

    def setUp(self) -> None:
        self.document: dict[str, Any] = {
            "services": {
                "download": {"bytes_per_second": 1_500_000},
                "work": {"tasks": {"lmp": {"downloaded": 3, "pending": 1}, "load": {"empty": 2}}},
            }
        }
        self.client, self.server, self.pump = connected(
            control_service(status_document=lambda: self.document)
        )
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_750_000_000)

    def watch(self, out: TextIO) -> Deferred[int]:
        """
        Run C{harbourctl watch}, writing to C{out}, up to its first wait.

        @return: Its exit code to come.
        """
        args = parser().parse_args(["watch"])
        d = _COMMANDS["watch"](cast(IReactorCore, self.reactor), self.client, args, out)
        self.pump.flush()
        return d

    def test_lines(self) -> None:
        """
        Output that is not a terminal (a pipe, a file) has a plain line per
        report at each interval, written at once (progress bars are drawn
        on a terminal alone: a pipe had nothing until the command ended);
        a time the daemon has no task counts for, a line saying so.
        """
        out = io.StringIO()
        d = self.watch(out)
        self.assertEqual(
            out.getvalue(),
            "2025-06-15T15:06:40Z lmp 3/4 1.50 MB/s\n2025-06-15T15:06:40Z load 2/2 1.50 MB/s\n",
        )
        self.document["services"]["work"]["tasks"] = {"error": "not connected to Redis"}
        self.reactor.advance(1)
        self.pump.flush()
        self.assertEqual(
            out.getvalue().splitlines()[-1], "2025-06-15T15:06:41Z no task counts: not connected to Redis"
        )
        self.assertNoResult(d)

    def test_readerGone(self) -> None:
        """
        A reader gone (C{harbourctl watch | head -1}) ends the command with
        L{BrokenPipeError} at its next line, which C{harbourctl} turns into
        a quiet exit: it went on asking the daemon's status without end.
        """
        self.failureResultOf(self.watch(ClosedPipe()), BrokenPipeError)

    def test_terminalGone(self) -> None:
        """
        On a terminal, a reader gone ends the command with
        L{BrokenPipeError} too, not with rich's C{SystemExit} (a traceback
        within the reactor), and the bars stopped as the reactor stops
        write nothing more.
        """
        # rich would point the process's standard output at /dev/null.
        self.patch(sys, "stdout", io.StringIO())
        self.failureResultOf(self.watch(ClosedPipe(terminal=True)), BrokenPipeError)
        interrupt(self.reactor)


class SubscribeTests(SynchronousTestCase):
    """
    C{harbourctl subscribe} over AMP (in memory).
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.client, self.server, self.pump = connected(self.service)
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)

    def subscribe(self, *patterns: str) -> tuple[Deferred[int], io.StringIO]:
        """
        Run C{harbourctl subscribe} with C{patterns} up to its wait for
        events.

        @return: Its exit code to come, and what it prints.
        """
        out = io.StringIO()
        args = parser().parse_args(["subscribe", *patterns])
        d = _COMMANDS["subscribe"](cast(IReactorCore, MemoryReactorClock()), self.client, args, out)
        self.pump.flush()
        return d, out

    def test_eventOnce(self) -> None:
        """
        An event, or a retained value, that several of the patterns match
        is printed once: a pattern repeated, or one another covers, is no
        subscription of its own.
        """
        self.service.bus.publish("demo.kept", {"n": 0}, retain=True)
        d, out = self.subscribe("demo.*", "demo.x", "demo.*", "de*", "demo.x*", "demo.kept", "task.done")
        for topic in ("demo.x", "task.done", "other"):
            self.service.bus.publish(topic, {"n": 1})
        self.pump.flush()
        self.assertNoResult(d)
        self.assertEqual(
            [json.loads(line)["topic"] for line in out.getvalue().splitlines()],
            ["demo.kept", "demo.x", "task.done"],
        )


class PlanProgressTests(SynchronousTestCase):
    """
    C{harbourctl plan} over AMP (in memory), with the daemon's progress.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "2025-01-31"\n'
            '[[reports]]\nname = "error"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "1d"\n'
        )
        self.document: dict[str, Any] = {
            "services": {"work": {"tasks": {"error": {"empty": 30, "pending": 1}}}}
        }
        self.client, self.server, self.pump = connected(
            control_service(status_document=lambda: self.document)
        )
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)

    def plan(self) -> tuple[int, dict[str, Any], str]:
        """
        Run C{harbourctl plan --json} against the in-memory daemon.

        @return: Its exit code, its one report's row and what it wrote on
            standard error.
        """
        out, errors = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", errors)
        args = parser().parse_args(["plan", "--config-dir", str(self.directory), "--json"])
        d = _COMMANDS["plan"](cast(IReactorCore, MemoryReactorClock()), self.client, args, out)
        self.pump.flush()
        [row] = json.loads(out.getvalue())["reports"]
        return self.successResultOf(d), row, errors.getvalue()

    def test_reportNamedError(self) -> None:
        """
        The progress of a report named C{error} is planned with, as any
        other's: it was dropped without a word, taken for the daemon
        saying it cannot count tasks (C{{"error": why}}).
        """
        code, row, errors = self.plan()
        self.assertEqual((code, row["report"], row["done"]), (OK, "error", 30))
        self.assertEqual(errors, "")

    def test_tasksNotCounted(self) -> None:
        """
        A daemon that cannot count its tasks is planned without, saying
        why and that the plan is without its progress: it was planned
        without, without a word.
        """
        self.document["services"]["work"]["tasks"] = {"error": "Redis stalled"}
        code, row, errors = self.plan()
        self.assertEqual(code, OK)
        self.assertNotIn("done", row)
        self.assertEqual(
            errors.splitlines(),
            [
                "harbourctl: the daemon cannot count its tasks: Redis stalled",
                "harbourctl: planning without the daemon's progress",
            ],
        )


class CatalogueCommandTests(SynchronousTestCase):
    """
    Tests for C{harbourctl catalogue}.
    """

    def test_lists(self) -> None:
        """
        Without a name, every report and group is listed with its window.
        """
        out = io.StringIO()
        self.assertEqual(show_catalogue(None, out), OK)
        text = out.getvalue()
        self.assertIn("PRC_INTVL_LMP", text)
        self.assertIn("DAM_LMP_GRP", text)

    def test_one(self) -> None:
        """
        With a name, its markets, limits, publication and parameters.
        """
        out = io.StringIO()
        self.assertEqual(show_catalogue("PRC_LMP", out), OK)
        text = out.getvalue()
        self.assertIn("one request covers at most 31d (1d for all nodes)", text)
        self.assertIn("grp_type", text)

    def test_monthlyGroup(self) -> None:
        """
        A group whose one answer holds its calendar month says it is asked
        for once a month, listed and alone.
        """
        out = io.StringIO()
        self.assertEqual(show_catalogue("ENE_OIC_GRP", out), OK)
        self.assertIn("asked for once a month (window month)", out.getvalue())
        self.assertNotIn("covers at most", out.getvalue())
        listing = io.StringIO()
        show_catalogue(None, listing)
        [line] = [line for line in listing.getvalue().splitlines() if "ENE_OIC_GRP" in line]
        self.assertEqual(line.split()[2], "month")

    def test_unknown(self) -> None:
        """
        An unknown name exits 1 and suggests the closest known one.
        """
        out = io.StringIO()
        self.assertEqual(show_catalogue("PRC_LMPX", out), FAILED)
        self.assertIn('did you mean "PRC_LMP"?', out.getvalue())


class PlanCommandTests(SynchronousTestCase):
    """
    Tests for C{harbourctl plan}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "2025-03-31"\n'
            "[download]\nmin_request_interval = 5\n"
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "31d"\n'
            '[[reports]]\nname = "lmp"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\nwindow = "1d"\n'
            'params = { grp_type = "ALL_APNODES" }\n'
        )

    def run_plan(
        self,
        *extra: str,
        done: dict[str, dict[str, int]] | None = None,
        sizes: dict[str, float] | None = None,
    ) -> tuple[int, str]:
        out = io.StringIO()
        args = parser().parse_args(["plan", "--config-dir", str(self.directory), *extra])
        return plan_table(args, out, done, sizes), out.getvalue()

    def test_counts(self) -> None:
        """
        Each report's requests over its range, the hours they take at
        C{min_request_interval}, and the total against one request per
        trading day.
        """
        code, text = self.run_plan("--json")
        self.assertEqual(code, OK)
        document = json.loads(text)
        by_report = {row["report"]: row for row in document["reports"]}
        self.assertEqual(by_report["lmp"]["requests"], 90)
        self.assertEqual(by_report["load"]["requests"], 4)
        self.assertEqual(document["total"]["requests"], 94)
        self.assertEqual(document["total"]["hours"], round(94 * 5 / 3600, 2))
        self.assertEqual(document["total"]["one_per_trading_day"], 180)
        self.assertEqual(document["total"]["saved"], 1.91)

    def test_done(self) -> None:
        """
        With a daemon's counts, what is done and the hours left.
        """
        code, text = self.run_plan("--json", done={"lmp": {"downloaded": 80, "pending": 10}})
        rows = {row["report"]: row for row in json.loads(text)["reports"]}
        self.assertEqual((rows["lmp"]["done"], rows["load"]["done"]), (80, 0))
        self.assertEqual(rows["lmp"]["hours_left"], round(10 * 5 / 3600, 2))

    def test_estimatedBytes(self) -> None:
        """
        With the mean size of a report's files so far, the bytes its
        requests will bring; a report with no file yet has no estimate.
        """
        code, text = self.run_plan("--json", done={"lmp": {"downloaded": 2}}, sizes={"lmp": 1000.0})
        document = json.loads(text)
        rows = {row["report"]: row for row in document["reports"]}
        self.assertEqual((rows["lmp"]["est_bytes"], rows["load"]["est_bytes"]), (90_000, None))
        self.assertEqual(document["total"]["est_bytes"], 90_000)

    def test_table(self) -> None:
        """
        Without C{--json}, a table and a summary line.
        """
        code, text = self.run_plan()
        self.assertEqual(code, OK)
        self.assertIn("94 requests", text)
        self.assertIn("one request per trading day would take 180", text)

    def test_shorterThanADay(self) -> None:
        """
        A report asked in windows shorter than a day cannot be asked one
        request a day: it is left out of that comparison, which is made
        with the others' requests alone, and said to be; with only such
        reports there is none (it was "0x as many").
        """
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "2025-01-10"\n'
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "1d"\n'
            '[[reports]]\nname = "rt"\nqueryname = "PRC_INTVL_LMP"\nmarket_run_id = "RTM"\n'
            'params = { grp_type = "ALL_APNODES" }\n'
        )
        code, text = self.run_plan("--json")
        total = json.loads(text)["total"]
        self.assertEqual(
            {key: total[key] for key in ("requests", "one_per_trading_day", "compared_requests", "saved")},
            {"requests": 10 + 240, "one_per_trading_day": 10, "compared_requests": 10, "saved": 1.0},
        )
        self.assertEqual(total["shorter_than_a_day"], ["rt"])
        code, text = self.run_plan()
        self.assertIn(
            "one request per trading day would take 10 (1x as many as their 10); "
            "left out, asked in windows shorter than a day: rt",
            text,
        )
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "2025-01-10"\n'
            '[[reports]]\nname = "rt"\nqueryname = "PRC_INTVL_LMP"\nmarket_run_id = "RTM"\n'
            'params = { grp_type = "ALL_APNODES" }\n'
        )
        code, text = self.run_plan("--json")
        total = json.loads(text)["total"]
        self.assertEqual((total["one_per_trading_day"], total["saved"]), (0, None))
        code, text = self.run_plan()
        self.assertNotIn("x as many", text)
        self.assertIn("every report is asked in windows shorter than a day", text)

    def test_currentOnlyFromToday(self) -> None:
        """
        A report OASIS serves only current data of is planned from today,
        as the daemon asks for it: its first day is today, its past days
        cost nothing, and of today's hours (its default window) all but
        the last, which is over only once today is past.
        """
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "today"\n'
            '[[reports]]\nname = "curr"\nqueryname = "PRC_CURR_LMP"\nversion = 2\n'
            'params = { node = "ALL" }\n'
        )
        code, text = self.run_plan("--json", "--today", "2026-01-15")
        [row] = json.loads(text)["reports"]
        self.assertEqual(
            (row["window"], row["first"], row["last"], row["requests"]),
            ("1h", "2026-01-15", "2026-01-15", 23),
        )

    def test_publishedAheadAgainDaily(self) -> None:
        """
        A report OASIS serves only current data of and publishes ahead is
        planned a day at a time from today to its last day published, each
        request counted once; those of the days after today, made again
        every day until their day, are said apart (a day ahead is fetched
        up to seven times).
        """
        (self.directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "+6d"\n'
            '[[reports]]\nname = "usage"\nqueryname = "TRNS_CURR_USAGE"\n'
            'params = { ti_id = "ALL", ti_direction = "ALL" }\n'
        )
        code, text = self.run_plan("--json", "--today", "2026-01-15")
        document = json.loads(text)
        [row] = document["reports"]
        self.assertEqual(
            (row["window"], row["first"], row["last"], row["requests"], row["again_daily"]),
            ("1d", "2026-01-15", "2026-01-21", 7, 6),
        )
        self.assertEqual((document["total"]["requests"], document["total"]["again_daily"]), (7, 6))
        code, text = self.run_plan("--today", "2026-01-15")
        self.assertIn(
            "made again every day while their days are ahead, not counted above: "
            "usage 6 (each day up to 7 times)",
            text,
        )

    def test_badConfiguration(self) -> None:
        """
        A configuration with errors plans nothing and exits 1.
        """
        (self.directory / "b.toml").write_text("[work]\nmax_attempts = 0\n")
        code, text = self.run_plan()
        self.assertEqual(code, FAILED)


class InsecureEndpointTests(SynchronousTestCase):
    """
    C{harbourctl --connect} refuses an C{ssl:} endpoint that checks no
    certificate.
    """

    def test_refusedBeforeConnecting(self) -> None:
        """
        The command exits with the usage code, saying what to use instead,
        without reading the token or connecting.
        """
        reactor = MemoryReactorClock()
        args = parser().parse_args(
            ["--connect", "ssl:host=h:port=7750", "--token-file", "/nonexistent", "status"]
        )
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        code = self.successResultOf(run_remote(cast(IReactorCore, reactor), args, io.StringIO()))
        self.assertEqual(code, USAGE)
        self.assertIn("tls:HOST:PORT:trustRoots=DIR", errors.getvalue())
        self.assertEqual((reactor.tcpClients, reactor.sslClients), ([], []))


class UnreachableTests(SynchronousTestCase):
    """
    A daemon that cannot be asked is an unknown state to monitoring.
    """

    def unreachable(self, *command: str) -> tuple[int, str, str]:
        """
        Run C{command} with a token file that does not exist.

        @return: The exit code, standard output and standard error.
        """
        reactor = MemoryReactorClock()
        args = parser().parse_args(["--token-file", "/nonexistent/amp.token", *command])
        out, errors = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", errors)
        code = self.successResultOf(run_remote(cast(IReactorCore, reactor), args, out))
        self.assertEqual(reactor.tcpClients, [])
        return code, out.getvalue(), errors.getvalue()

    def test_checkSaysUnknown(self) -> None:
        """
        C{status --check} exits 3 and prints the one line monitoring plugins
        read, C{HARBOUR UNKNOWN - } and why; the reason also goes to
        standard error.
        """
        code, out, errors = self.unreachable("status", "--check")
        self.assertEqual(code, UNREACHABLE)
        self.assertEqual(out.count("\n"), 1)
        self.assertTrue(out.startswith("HARBOUR UNKNOWN - "), out)
        self.assertIn("/nonexistent/amp.token", out)
        self.assertIn("/nonexistent/amp.token", errors)

    def test_checkJsonSaysUnknown(self) -> None:
        """
        C{status --check --json} exits 3 and prints, in place of the
        status document, a JSON document that says the check is unknown
        and why, not the plugin's plain line.
        """
        code, out, errors = self.unreachable("status", "--check", "--json")
        self.assertEqual(code, UNREACHABLE)
        document = json.loads(out)
        self.assertEqual(document["check"], "UNKNOWN")
        self.assertIn("/nonexistent/amp.token", document["error"])
        self.assertIn("/nonexistent/amp.token", errors)

    def test_notAToken(self) -> None:
        """
        A token file that holds no token (a log named by mistake, too long
        for AMP to send) is said as a daemon that cannot be asked: for
        C{status --check}, UNKNOWN with its plugin's line, not a traceback
        and exit 1 (WARNING).
        """
        token = Path(self.mktemp())
        token.write_text("x" * 70_000)
        reactor = MemoryReactorClock()
        args = parser().parse_args(["--token-file", str(token), "status", "--check"])
        out, errors = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", errors)
        code = self.successResultOf(run_remote(cast(IReactorCore, reactor), args, out))
        said = f"token file {token} does not hold a token: it has more than 1,024 bytes"
        self.assertEqual((code, out.getvalue()), (UNREACHABLE, f"HARBOUR UNKNOWN - {said}\n"))
        self.assertEqual(errors.getvalue(), f"harbourctl: {said}\n")
        self.assertEqual(reactor.tcpClients, [])

    def test_otherCommandsOnlyOnStandardError(self) -> None:
        """
        Without C{--check}, the reason goes to standard error alone.
        """
        for command in (["status"], ["pause"]):
            code, out, errors = self.unreachable(*command)
            self.assertEqual((code, out), (UNREACHABLE, ""))
            self.assertIn("/nonexistent/amp.token", errors)


class ConnectingTestCase(SynchronousTestCase):
    """
    Runs a C{harbourctl} command that connects to C{tcp:127.0.0.1:7799},
    whose connection a test then makes in memory.
    """

    def connecting(
        self, *command: str, out: TextIO | None = None
    ) -> tuple[MemoryReactorClock, Deferred[int], IProtocol, io.StringIO]:
        """
        Run C{command} up to its attempt to connect.

        @param out: Where the command writes (by default, nowhere).

        @return: The reactor, the run's exit code to come, the client's
            protocol (not yet connected), and what the run writes on
            standard error.
        """
        reactor = MemoryReactorClock()
        token = Path(self.mktemp())
        token.write_text(TOKEN)
        args = parser().parse_args(["--connect", "tcp:127.0.0.1:7799", "--token-file", str(token), *command])
        errors = io.StringIO()
        self.patch(sys, "stderr", errors)
        d = run_remote(cast(IReactorCore, reactor), args, io.StringIO() if out is None else out)
        [(host, port, factory, timeout, bind)] = reactor.tcpClients
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        return reactor, d, protocol, errors


class NotHarbourTests(ConnectingTestCase):
    """
    C{--connect} naming something that is not harbour's control port ends
    with a clear error, neither a traceback nor a wait without end.
    """

    def accepted(
        self, *command: str, out: TextIO | None = None
    ) -> tuple[MemoryReactorClock, Deferred[int], IProtocol, StringTransport, io.StringIO]:
        """
        Run C{command} and accept its connection in memory.

        @param out: Where the command writes (by default, nowhere).

        @return: The reactor, the run's exit code to come, the client's
            protocol, its transport, and what it writes on standard error.
        """
        reactor, d, protocol, errors = self.connecting(*command, out=out)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return reactor, d, protocol, transport, errors

    def test_silentListener(self) -> None:
        """
        A listener that accepts the connection and never answers the token
        is given up on after L{ANSWER_WITHIN} seconds, with exit 3 and a
        question.
        """
        reactor, d, protocol, transport, errors = self.accepted("status")
        self.assertIn(b"Authenticate", transport.value())
        reactor.advance(ANSWER_WITHIN - 0.1)
        self.assertNoResult(d)
        reactor.advance(0.1)
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertIn("no answer from tcp:127.0.0.1:7799 within 10 s", errors.getvalue())
        self.assertTrue(transport.disconnecting)

    def test_stuckDaemon(self) -> None:
        """
        A daemon that takes the token and then answers nothing (stopped,
        say) is given up on: C{status --check} after L{ANSWER_WITHIN}
        seconds, as UNKNOWN to monitoring; any other command after
        L{COMMAND_WITHIN} (some work before they answer); each with exit 3
        and a line saying what went unanswered.
        """
        for command, within, asked, printed in (
            (["status", "--check"], ANSWER_WITHIN, "Status", "HARBOUR UNKNOWN - {said}\n"),
            (["tasks", "--state", "failed"], COMMAND_WITHIN, "ListTasks", ""),
        ):
            out = io.StringIO()
            reactor, d, protocol, transport, errors = self.accepted(*command, out=out)
            protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
            self.assertIn(asked.encode(), transport.value())
            reactor.advance(within - 0.1)
            self.assertNoResult(d)
            reactor.advance(0.1)
            self.assertEqual(self.successResultOf(d), UNREACHABLE)
            said = (
                f"tcp:127.0.0.1:7799: no answer to {asked} within {within:g} s: "
                "is the daemon stuck or stopped?"
            )
            self.assertEqual(errors.getvalue(), f"harbourctl: {said}\n")
            self.assertEqual(out.getvalue(), printed.format(said=said))

    def test_argumentTooLong(self) -> None:
        """
        An argument longer than an AMP value carries is a usage error
        naming it, sent nowhere.
        """
        reactor, d, protocol, transport, errors = self.accepted("tasks", "--report", "r" * 70_000)
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        self.assertEqual(self.successResultOf(d), USAGE)
        self.assertEqual(
            errors.getvalue(), "harbourctl: tasks: report is longer than the 65,535 bytes a command carries\n"
        )
        self.assertNotIn(b"ListTasks", transport.value())

    def test_greetingBeforeToken(self) -> None:
        """
        A listener that greets first (SSH, SMTP, FTP), in bytes AMP cannot
        read, is said as one that does not answer is: exit 3 with a line,
        for C{status --check} UNKNOWN, plain or as JSON; AMP's L{amp.TooLong}
        escaped as a traceback with exit 1 (WARNING, to monitoring).
        """
        said = (
            "tcp:127.0.0.1:7799 sent what AMP cannot read (a key of 21,331 bytes): "
            "is it harbour's control port?"
        )
        for command, printed in (
            (["status"], ""),
            (["status", "--check"], f"HARBOUR UNKNOWN - {said}\n"),
            (
                ["status", "--check", "--json"],
                json.dumps({"check": "UNKNOWN", "error": said}, indent=2) + "\n",
            ),
        ):
            out = io.StringIO()
            reactor, d, protocol, transport, errors = self.accepted(*command, out=out)
            protocol.dataReceived(GREETING)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(self.successResultOf(d), UNREACHABLE, command)
            self.assertEqual(errors.getvalue(), f"harbourctl: {said}\n", command)
            self.assertEqual(out.getvalue(), printed, command)

    def test_unreadableAfterToken(self) -> None:
        """
        A peer that takes the token and then sends what AMP cannot read
        ends the command with exit 3, saying so: AMP's L{amp.TooLong} was
        taken for an argument of the command too long to send (exit 2).
        """
        reactor, d, protocol, transport, errors = self.accepted("tasks")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        self.assertIn(b"ListTasks", transport.value())
        protocol.dataReceived(GREETING)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(),
            "harbourctl: tcp:127.0.0.1:7799 sent what AMP cannot read (a key of 21,331 bytes): "
            "is it harbour's control port?\n",
        )

    def test_boxesNotAnswers(self) -> None:
        """
        Boxes AMP reads but cannot take (one neither a command nor an
        answer, an answer to nothing asked) close the connection as bytes
        it cannot read do, with exit 3 and a line, rather than raise out
        of the protocol, a traceback the reactor logs; nothing after them
        is read.
        """
        for unreadable, what in (
            (b"\x00\x00", "a box neither a command nor an answer"),
            (amp.AmpBox(_answer=b"99").serialize(), "KeyError: b'99'"),
        ):
            reactor, d, protocol, transport, errors = self.accepted("status")
            protocol.dataReceived(unreadable + amp.AmpBox(_answer=b"1").serialize())
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(self.successResultOf(d), UNREACHABLE)
            self.assertEqual(
                errors.getvalue(),
                f"harbourctl: tcp:127.0.0.1:7799 sent what AMP cannot read ({what}): "
                "is it harbour's control port?\n",
            )
            self.assertNotIn(b"Status", transport.value())

    def test_tooLongReceivedNotUsage(self) -> None:
        """
        AMP's own L{amp.TooLong} for a key received, not sent, is no
        argument of the command's: exit 3, not the usage error of an
        argument too long.
        """
        self.patch(remote, "_COMMANDS", {"retry": lambda *a: fail(amp.TooLong(True, False, None, None))})
        reactor, d, protocol, transport, errors = self.accepted("retry")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(),
            "harbourctl: tcp:127.0.0.1:7799 sent what AMP cannot read: is it harbour's control port?\n",
        )

    def test_subscriberUnreadable(self) -> None:
        """
        C{subscribe} whose peer sends what AMP cannot read ends with exit
        3, saying so.
        """
        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        protocol.dataReceived(GREETING)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertIn("sent what AMP cannot read (a key of 21,331 bytes)", errors.getvalue())

    def test_daemonGoesAway(self) -> None:
        """
        A daemon that closes the connection mid-command (C{watch}, here, as
        the daemon stops) ends it with exit 3 and a line saying so, not a
        traceback.
        """
        reactor, d, protocol, transport, errors = self.accepted("watch")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        self.assertNoResult(d)
        protocol.connectionLost(Failure(ConnectionDone("the daemon stopped")))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertIn("harbourctl: lost the connection to tcp:127.0.0.1:7799", errors.getvalue())

    def test_interruptedQuietly(self) -> None:
        """
        Ctrl-C during C{watch} or C{subscribe} stops the reactor, which
        closes the connection: that is the command's end, exit 0, with
        nothing said.
        """
        for command, answered in ((["watch"], [b"1"]), (["subscribe", "task.*"], [b"1", b"2"])):
            reactor, d, protocol, transport, errors = self.accepted(*command)
            for tag in answered:
                protocol.dataReceived(amp.AmpBox(_answer=tag).serialize())
            self.assertNoResult(d)
            interrupt(reactor)
            protocol.connectionLost(Failure(ConnectionDone("the reactor stopped")))
            self.assertEqual(self.successResultOf(d), OK, command)
            self.assertEqual(errors.getvalue(), "", command)

    def test_interruptedBeforeAnswer(self) -> None:
        """
        Any other command interrupted (Ctrl-C, or the SIGTERM of a
        monitoring system's timeout) before the daemon answered has failed,
        saying so, as soon as the reactor starts to stop: C{status --check}
        exits 3, UNKNOWN to monitoring, with its plugin's line; the others
        exit 1.  The connection lost as the reactor stops says nothing
        more.
        """
        for command, code, printed in (
            (["status", "--check"], UNREACHABLE, "HARBOUR UNKNOWN - {said}\n"),
            (["status"], FAILED, ""),
            (["retry"], FAILED, ""),
            (["pause", "download"], FAILED, ""),
        ):
            out = io.StringIO()
            reactor, d, protocol, transport, errors = self.accepted(*command, out=out)
            protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
            self.assertNoResult(d)
            interrupt(reactor)
            said = f"{command[0]}: interrupted before tcp:127.0.0.1:7799 answered"
            self.assertEqual(self.successResultOf(d), code, command)
            protocol.connectionLost(Failure(ConnectionDone("the reactor stopped")))
            self.assertEqual(errors.getvalue(), f"harbourctl: {said}\n", command)
            self.assertEqual(out.getvalue(), printed.format(said=said), command)

    def test_interruptedConnecting(self) -> None:
        """
        A command interrupted while it connects has failed too, whether or
        not the connection attempt ends as the reactor stops.
        """
        out = io.StringIO()
        reactor, d, protocol, errors = self.connecting("status", "--check", out=out)
        interrupt(reactor)
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            out.getvalue(), "HARBOUR UNKNOWN - status: interrupted before tcp:127.0.0.1:7799 answered\n"
        )
        [(host, port, factory, timeout, bind)] = reactor.tcpClients
        factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionDone("the reactor stopped")))
        self.assertEqual(out.getvalue().count("\n"), 1)
        self.assertEqual(errors.getvalue().count("\n"), 1)

    def test_secureConnectionFails(self) -> None:
        """
        A TLS connection that fails mid-command ends it as a connection lost
        does, saying what OpenSSL said.
        """
        reactor, d, protocol, transport, errors = self.accepted("watch")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.connectionLost(Failure(SSL.Error([("SSL routines", "", "record layer failure")])))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(), "harbourctl: lost the connection to tcp:127.0.0.1:7799: record layer failure\n"
        )

    def test_tasksTextAsItIs(self) -> None:
        """
        C{tasks} prints each error as it is: text that looks like rich's
        markup (OASIS's C{[/oasisapi]}, a C{[link=...]}) is neither an
        error nor a hyperlink.
        """
        out = io.StringIO()
        reactor, d, protocol, transport, errors = self.accepted("tasks", out=out)
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        tasks = [
            {
                "id": "a",
                "report": "r",
                "filename": "r/1.zip",
                "attempts": 8,
                "last_error": "bad [/oasisapi] name",
            },
            {
                "id": "b",
                "report": "r",
                "filename": "r/2.zip",
                "attempts": 8,
                "last_error": "[link=http://x]see[/link]",
            },
        ]
        protocol.dataReceived(
            amp.AmpBox(_answer=b"2", tasks=json.dumps(tasks).encode(), total=b"2").serialize()
        )
        self.assertEqual(self.successResultOf(d), OK)
        self.assertIn("bad [/oasisapi] name", out.getvalue())
        self.assertIn("[link=http://x]see[/link]", out.getvalue())

    def test_subscriberDaemonGoesAway(self) -> None:
        """
        C{subscribe} whose daemon closes the connection ends as C{watch}
        does: exit 3 and a line saying so.
        """
        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        self.assertNoResult(d)
        protocol.connectionLost(Failure(ConnectionDone("the daemon stopped")))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertIn("harbourctl: lost the connection to tcp:127.0.0.1:7799", errors.getvalue())

    def test_subscriberDaemonStuck(self) -> None:
        """
        C{subscribe} asks the daemon's C{Status} every L{ALIVE_EVERY}
        seconds, and one not answered within L{ANSWER_WITHIN} (a daemon
        stopped, a host gone) ends it with exit 3 and a line saying so: it
        waited without end, as if the daemon were quiet.
        """
        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        transport.clear()
        reactor.advance(ALIVE_EVERY - 0.1)
        self.assertEqual(transport.value(), b"")
        reactor.advance(0.1)
        self.assertIn(b"Status", transport.value())
        reactor.advance(ANSWER_WITHIN - 0.1)
        self.assertNoResult(d)
        reactor.advance(0.1)
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(),
            "harbourctl: tcp:127.0.0.1:7799: no answer to Status within 10 s: "
            "is the daemon stuck or stopped?\n",
        )
        self.assertTrue(transport.disconnecting)

    def test_subscriberDaemonAnswers(self) -> None:
        """
        C{subscribe} whose daemon answers each check goes on, asking again
        every L{ALIVE_EVERY} seconds, and prints nothing of the checks.
        """
        out = io.StringIO()
        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*", out=out)
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        for tag in (b"3", b"4", b"5"):
            transport.clear()
            reactor.advance(ALIVE_EVERY)
            self.assertIn(b"Status", transport.value())
            reactor.advance(ANSWER_WITHIN - 0.1)
            protocol.dataReceived(amp.AmpBox(_answer=tag, status=b'{"services": {}}').serialize())
        reactor.advance(ANSWER_WITHIN)
        self.assertNoResult(d)
        self.assertEqual((out.getvalue(), errors.getvalue()), ("", ""))
        interrupt(reactor)
        self.assertEqual(self.successResultOf(d), OK)

    def test_subscriberDropped(self) -> None:
        """
        C{subscribe} whose daemon drops it for not reading says why, as
        the daemon said it (L{commands.DROPPED}), and that events were
        lost, with the exit code of a lost connection.
        """
        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*")
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        reason = "more than 10,000 events waiting: subscriber is not reading"
        protocol.dataReceived(encode_event(commands.DROPPED, json.dumps({"reason": reason})))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(),
            f"harbourctl: tcp:127.0.0.1:7799 dropped this connection: {reason}; "
            "the events published since are lost\n",
        )

    def test_subscriberReaderGone(self) -> None:
        """
        C{subscribe} whose reader has closed the pipe ends with
        L{BrokenPipeError} at the next event (which C{harbourctl} turns into
        a quiet exit), instead of going on writing to nobody: the bus that
        delivers the event would swallow the error.
        """

        reactor, d, protocol, transport, errors = self.accepted("subscribe", "task.*", out=ClosedPipe())
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.dataReceived(amp.AmpBox(_answer=b"2").serialize())
        self.assertNoResult(d)
        protocol.dataReceived(encode_event("task.done", '{"id": "x"}'))
        self.failureResultOf(d, BrokenPipeError)

    def test_notAnEndpoint(self) -> None:
        """
        An endpoint Twisted cannot parse is a usage error saying why,
        before the token is read.
        """
        for endpoint in ("garbage", "", "tcp:127.0.0.1:notaport"):
            reactor = MemoryReactorClock()
            args = parser().parse_args(["--connect", endpoint, "--token-file", "/nonexistent", "status"])
            errors = io.StringIO()
            self.patch(sys, "stderr", errors)
            code = self.successResultOf(run_remote(cast(IReactorCore, reactor), args, io.StringIO()))
            self.assertEqual(code, USAGE)
            self.assertIn(f"--connect: cannot use endpoint {endpoint!r}", errors.getvalue())
            self.assertEqual(reactor.tcpClients, [])


#: What an SSH server sends as a client connects, before anything is asked.
GREETING = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"


def interrupt(reactor: MemoryReactorClock) -> None:
    """
    Do what Ctrl-C (or SIGTERM) does first to C{harbourctl}: start to stop
    C{reactor}, running what is to run before it shuts down.
    """
    for trigger, args, kwargs in reactor.triggers["before"]["shutdown"]:
        trigger(*args, **kwargs)


class ClientTransport(iosim.FakeTransport):
    """
    An in-memory client transport that says whether it is connected, as
    Twisted's own transports do.
    """

    @property
    def connected(self) -> bool:
        """
        Whether the connection is still open.
        """
        return not self.disconnected


class OlderDaemon(ControlProtocol):
    """
    A control connection of a harbour older than C{harbourctl}: it knows
    no command but C{Authenticate}.
    """

    def locateResponder(self, name: bytes) -> Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None:
        """
        @return: The responder of C{Authenticate}; for any other command,
            none.
        """
        return super().locateResponder(name) if name == b"Authenticate" else None


class BrokenDaemon(ControlProtocol):
    """
    A control connection whose every command but C{Authenticate} fails
    with an error harbour's commands do not name.
    """

    def locateResponder(self, name: bytes) -> Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None:
        """
        @return: The responder of C{Authenticate}; for any other command,
            one that fails with L{ZeroDivisionError}.
        """
        if name == b"Authenticate":
            return super().locateResponder(name)
        return lambda box: fail(ZeroDivisionError("a bug in the daemon"))


#: Each command of C{harbourctl} that asks the daemon, but C{plan} (which
#: plans without an answer), and the AMP command it asks first.
FIRST_ASKED = [
    (["status"], "Status"),
    (["status", "--json"], "Status"),
    (["watch"], "Status"),
    (["tasks"], "ListTasks"),
    (["retry"], "Retry"),
    (["reparse"], "Reparse"),
    (["refresh"], "Refresh"),
    (["pause"], "Pause"),
    (["resume", "download"], "Resume"),
    (["publish", "a.topic", "{}"], "Publish"),
    (["subscribe", "task.*"], "Subscribe"),
    (["reload"], "Reload"),
]


class DaemonCannotAnswerTests(ConnectingTestCase):
    """
    A daemon that cannot answer a command, because it is an older harbour
    without it or because it failed while answering, ends the command
    with one line on standard error saying so, never a traceback.
    """

    def against(
        self,
        daemon: type[ControlProtocol],
        *command: str,
        status_document: Callable[[], object] | None = None,
    ) -> tuple[int, str, str]:
        """
        Run C{command} against an in-memory daemon whose connection is a
        C{daemon}.

        @param status_document: What the daemon's C{Status} answers (by
            default, a document of no services).

        @return: The exit code, standard output and standard error.
        """
        out = io.StringIO()
        reactor, d, client, errors = self.connecting(*command, out=out)
        service = control_service(
            status_document=status_document if status_document is not None else (lambda: {"services": {}})
        )
        server = daemon(service)
        pump = iosim.connect(server, iosim.makeFakeServer(server), client, ClientTransport(client, False))
        pump.flush()
        return self.successResultOf(d), out.getvalue(), errors.getvalue()

    def test_everyCommand(self) -> None:
        """
        The tests here run every command of C{harbourctl} that asks the
        daemon.
        """
        self.assertEqual({command[0] for command, asked in FIRST_ASKED} | {"plan"}, set(_COMMANDS))

    def test_unknownCommand(self) -> None:
        """
        A command the daemon does not know exits 1, saying which and
        asking whether the daemon is an older harbour.
        """
        for command, asked in FIRST_ASKED:
            code, out, errors = self.against(OlderDaemon, *command)
            self.assertEqual(
                (code, errors),
                (
                    FAILED,
                    f"harbourctl: the daemon does not know the command {asked}: is it an older harbour?\n",
                ),
                command,
            )

    def test_failedWhileAnswering(self) -> None:
        """
        A command the daemon failed to answer (an error it does not name,
        which it logs) exits 1, saying which and where to look.
        """
        for command, asked in FIRST_ASKED:
            code, out, errors = self.against(BrokenDaemon, *command)
            self.assertEqual(
                (code, errors),
                (FAILED, f"harbourctl: the daemon failed while answering {asked}; see its log\n"),
                command,
            )
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), len(FIRST_ASKED))

    def test_statusDocumentFails(self) -> None:
        """
        A daemon whose own status fails answers C{Status} with an error
        AMP does not name: C{harbourctl status} says so.
        """
        code, out, errors = self.against(ControlProtocol, "status", status_document=lambda: 1 / 0)
        self.assertEqual((code, out), (FAILED, ""))
        self.assertEqual(errors, "harbourctl: the daemon failed while answering Status; see its log\n")
        self.flushLoggedErrors(ZeroDivisionError)

    def test_planWithoutProgress(self) -> None:
        """
        C{plan} whose daemon cannot say what it has done plans without
        it, as it does when the daemon cannot be reached.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "a.toml").write_text(
            '[manifest]\nstart = "2025-01-01"\nend = "2025-01-31"\n'
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "31d"\n'
        )
        offline = io.StringIO()
        plan_table(parser().parse_args(["plan", "--config-dir", str(directory), "--json"]), offline)
        code, out, errors = self.against(BrokenDaemon, "plan", "--config-dir", str(directory), "--json")
        self.assertEqual((code, out), (OK, offline.getvalue()))
        self.assertEqual(
            errors.splitlines(),
            [
                "harbourctl: the daemon failed while answering Status; see its log",
                "harbourctl: planning without the daemon's progress",
            ],
        )
        self.flushLoggedErrors(ZeroDivisionError)


class StatusCheckTests(ConnectingTestCase):
    """
    C{status --check} is a monitoring plugin: whatever keeps it from the
    daemon's status, it prints one line, C{HARBOUR UNKNOWN - } and why, and
    exits 3.
    """

    def assertUnknown(self, result: tuple[int, str, str], why: str) -> None:
        """
        Assert that a run of C{status --check} said C{why} as a plugin's
        unknown state, and on standard error.

        @param result: The run's exit code, standard output and standard
            error.
        """
        self.assertEqual(result, (UNREACHABLE, f"HARBOUR UNKNOWN - {why}\n", f"harbourctl: {why}\n"))

    def answered(self, box: amp.AmpBox) -> tuple[int, str, str]:
        """
        Run C{status --check}, accept the token and answer C{Status} with
        C{box}.

        @return: The exit code, standard output and standard error.
        """
        out = io.StringIO()
        reactor, d, protocol, errors = self.connecting("status", "--check", out=out)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        box[b"_error" if b"_error_code" in box else b"_answer"] = b"2"
        protocol.dataReceived(box.serialize())
        return self.successResultOf(d), out.getvalue(), errors.getvalue()

    def test_daemonFailed(self) -> None:
        """
        A daemon that failed while answering C{Status} is an unknown state.
        """
        result = self.answered(amp.AmpBox(_error_code=b"UNKNOWN", _error_description=b"Unknown Error"))
        self.assertUnknown(result, "the daemon failed while answering Status; see its log")

    def test_newerError(self) -> None:
        """
        An error of a newer daemon, whose code this C{harbourctl} does not
        know, is an unknown state, with the daemon's reason in one line.
        """
        result = self.answered(
            amp.AmpBox(_error_code=b"BUSY", _error_description=b"too busy:\n\x1b[2J try later")
        )
        self.assertUnknown(result, "the daemon could not answer Status: too busy:\\n\\x1b[2J try later")

    def test_newerErrorLong(self) -> None:
        """
        A newer daemon's long reason is cut short.
        """
        result = self.answered(amp.AmpBox(_error_code=b"BUSY", _error_description=b"x" * 1000))
        self.assertUnknown(result, f"the daemon could not answer Status: {'x' * 200}...")

    def test_unknownCommand(self) -> None:
        """
        A daemon that does not know C{Status} is an unknown state.
        """
        result = self.answered(
            amp.AmpBox(_error_code=b"UNHANDLED", _error_description=b"Unhandled Command: b'Status'")
        )
        self.assertUnknown(result, "the daemon does not know the command Status: is it an older harbour?")

    def test_refused(self) -> None:
        """
        An error harbour names (Redis did not answer, say) is an unknown
        state too, not the warning its exit code 1 would read as.
        """
        result = self.answered(
            amp.AmpBox(_error_code=b"STORE_UNAVAILABLE", _error_description=b"Redis is away")
        )
        self.assertUnknown(result, "status failed: Redis is away")

    def test_notJSON(self) -> None:
        """
        A C{Status} answer that is not JSON (another program, or a broken
        daemon) is an unknown state, said in one line, not a traceback.
        """
        result = self.answered(amp.AmpBox(status=b"<html>"))
        self.assertUnknown(
            result, "status: the daemon's answer is not JSON: Expecting value: line 1 column 1 (char 0)"
        )

    def test_connectionLost(self) -> None:
        """
        A connection lost before C{Status} is answered is an unknown state.
        """
        out = io.StringIO()
        reactor, d, protocol, errors = self.connecting("status", "--check", out=out)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(amp.AmpBox(_answer=b"1").serialize())
        protocol.connectionLost(Failure(ConnectionDone("the daemon stopped")))
        self.assertUnknown(
            (self.successResultOf(d), out.getvalue(), errors.getvalue()),
            "lost the connection to tcp:127.0.0.1:7799: Connection was closed cleanly: the daemon stopped.",
        )

    def test_notAnEndpoint(self) -> None:
        """
        An endpoint Twisted cannot parse is an unknown state, not the
        critical one its usage exit code 2 would read as.
        """
        args = parser().parse_args(
            ["--connect", "garbage", "--token-file", "/nonexistent", "status", "--check"]
        )
        out, errors = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", errors)
        code = self.successResultOf(run_remote(cast(IReactorCore, MemoryReactorClock()), args, out))
        self.assertEqual(code, UNREACHABLE)
        self.assertTrue(
            out.getvalue().startswith("HARBOUR UNKNOWN - --connect: cannot use endpoint 'garbage'")
        )
        self.assertEqual(out.getvalue().count("\n"), 1)

    def test_certificateRefused(self) -> None:
        """
        A daemon whose certificate the client does not trust is an
        unknown state, said as OpenSSL says it.
        """
        out = io.StringIO()
        reactor, d, protocol, errors = self.connecting("status", "--check", out=out)
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
        self.assertUnknown(
            (self.successResultOf(d), out.getvalue(), errors.getvalue()),
            "cannot connect to tcp:127.0.0.1:7799: certificate verify failed",
        )


class DaemonStartsAnsweringTests(ConnectingTestCase):
    """
    Connecting to something that speaks AMP but not as harbour's control
    port does is said as such, as a daemon that cannot be asked.
    """

    def test_authenticateUnknown(self) -> None:
        """
        A peer that does not know C{Authenticate} is not harbour's control
        port: exit 3 and a question.
        """
        reactor, d, protocol, errors = self.connecting("status")
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(
            amp.AmpBox(
                _error=b"1",
                _error_code=b"UNHANDLED",
                _error_description=b"Unhandled Command: b'Authenticate'",
            ).serialize()
        )
        self.assertEqual(self.successResultOf(d), UNREACHABLE)
        self.assertEqual(
            errors.getvalue(),
            "harbourctl: tcp:127.0.0.1:7799 does not know the command Authenticate: "
            "is it harbour's control port?\n",
        )
