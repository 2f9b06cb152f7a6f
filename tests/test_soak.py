"""
Tests of C{make soak}'s harness (L{benchmarks.soak}): what it waits for is
bounded, and its verdict fails on what it must.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import sys
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from benchmarks import soak
from benchmarks.soak import HARBOURCTL_PATIENCE, REPLY_PATIENCE, Soak, Stuck, compare_windows, window_of
from harbour.amp import commands
from harbour.errors import BadRequest, Unauthorized
from harbour.processes import process_alive
from harbour.services.files import record_path
from harbour.test.helpers import short_directory
from harbour.testing.simulator.formats import day_start
from tests.processes import PATIENCE, STOP_PATIENCE, DidNotEnd, WatchedProcess, spawn
from tests.test_processes import FakeProcessTransport, killed, watched


class SilentClient:
    """
    A control connection whose commands are never answered.

    @ivar sent: The commands sent, by name.
    """

    def __init__(self) -> None:
        self.sent: list[str] = []

    def callRemote(self, command: type, **arguments: Any) -> Deferred:
        """
        Note the command, and answer never.
        """
        self.sent.append(command.__name__)
        return Deferred()


def fake_soak(testcase: SynchronousTestCase, reports: int = 2, days: int = 3) -> Soak:
    """
    @return: A soak on a memory reactor (nothing listens, nothing runs),
        its configuration in a directory of C{testcase}'s.
    """
    return Soak(MemoryReactorClock(), Path(testcase.mktemp()), reports, days)


class BoundedWaitTests(SynchronousTestCase):
    """
    Nothing the soak waits for can keep it waiting for ever: a hang is a
    failure that says what did not answer or end.
    """

    def setUp(self) -> None:
        self.soak = fake_soak(self)
        self.reactor = self.soak.reactor

    def test_statusUnanswered(self) -> None:
        """
        A C{Status} that gets no answer within L{REPLY_PATIENCE} seconds
        fails the soak with L{Stuck}.
        """
        self.soak.client = SilentClient()
        asking = Deferred.fromCoroutine(self.soak.status())
        self.reactor.advance(REPLY_PATIENCE - 1)
        self.assertNoResult(asking)
        self.reactor.advance(1)
        failure = self.failureResultOf(asking, Stuck)
        self.assertEqual(str(failure.value), "harbour did not answer Status within 60 s")

    def spawned(self) -> list[tuple[WatchedProcess, FakeProcessTransport]]:
        """
        @return: The processes the soak starts from now on (none runs),
            each with its transport.
        """
        started: list[tuple[WatchedProcess, FakeProcessTransport]] = []

        def spawn(reactor: object, args: list[str], cwd: Path) -> WatchedProcess:
            started.append(watched(self.reactor))
            return started[-1][0]

        self.patch(soak, "spawn", spawn)
        return started

    def test_harbourctlThatDoesNotEnd(self) -> None:
        """
        A C{harbourctl} still running after L{HARBOURCTL_PATIENCE} seconds
        is killed, and fails the soak with L{Stuck}.
        """
        started = self.spawned()
        running = Deferred.fromCoroutine(self.soak.harbourctl("tables", "--check"))
        self.reactor.advance(HARBOURCTL_PATIENCE)
        [(process, transport)] = started
        self.assertEqual(transport.signals, ["KILL"])
        killed(process)
        failure = self.failureResultOf(running, Stuck)
        self.assertEqual(str(failure.value), "harbourctl tables --check did not end within 600 s")

    def test_harbourctlOutput(self) -> None:
        """
        A C{harbourctl} that ends gives its exit code and what it said, on
        one line.
        """
        started = self.spawned()
        running = Deferred.fromCoroutine(self.soak.harbourctl("status"))
        [(process, transport)] = started
        process.outReceived(b"error: no\n  such  thing\n")
        process.processEnded(Failure(ProcessTerminated(exitCode=2)))
        self.assertEqual(self.successResultOf(running), (2, "error: no such thing"))

    def test_configErrorNeverLogged(self) -> None:
        """
        A daemon that never logs the configuration error a malformed save
        must give fails the soak with L{Stuck} after L{PATIENCE} seconds,
        saying what it waited for.
        """
        self.soak.daemon, transport = watched(self.reactor)
        saving = Deferred.fromCoroutine(self.soak.malformed_config())
        self.reactor.advance(PATIENCE - 1)
        self.assertNoResult(saving)
        self.reactor.advance(1)
        failure = self.failureResultOf(saving, Stuck)
        self.assertEqual(
            str(failure.value),
            "harbour did not log 'config error' after a malformed manifest.toml was saved within 30 s",
        )

    def test_workerEndedBeforeLogging(self) -> None:
        """
        A worker that ends before it says it is connected fails the soak
        with L{Stuck}, saying so.
        """
        started = self.spawned()
        starting = Deferred.fromCoroutine(self.soak.start_worker())
        [(process, transport)] = started
        process.processEnded(Failure(ProcessTerminated(exitCode=1)))
        failure = self.failureResultOf(starting, Stuck)
        self.assertEqual(
            str(failure.value), "the worker ended before it logged 'connected to hub' as it started"
        )

    def test_workerThatDoesNotEnd(self) -> None:
        """
        A worker still running L{STOP_PATIENCE} seconds after the soak's
        SIGTERM is killed, and the wait fails with L{DidNotEnd}.
        """
        self.soak.worker, transport = watched(self.reactor)
        ending = Deferred.fromCoroutine(self.soak.end_worker("TERM"))
        self.reactor.advance(STOP_PATIENCE)
        self.assertEqual(transport.signals, ["TERM", "KILL"])
        killed(self.soak.worker)
        failure = self.failureResultOf(ending, DidNotEnd)
        self.assertIn("the worker (pid 4321) did not end within 60 s of SIGTERM", str(failure.value))

    def test_workerEndedBySoak(self) -> None:
        """
        A worker the soak ends with SIGTERM, which says it shut down, is
        not counted as a worker's end the soak did not cause.
        """
        self.soak.worker, transport = watched(self.reactor)
        self.soak.worker.ended.addCallback(self.soak._worker_ended, self.soak.worker)
        ending = Deferred.fromCoroutine(self.soak.end_worker("TERM"))
        self.soak.worker.outReceived(b"[twisted.scripts._twistd_unix.UnixAppLogger#info] Server Shut Down.\n")
        self.soak.worker.processEnded(Failure(ProcessTerminated(signal=15)))
        self.successResultOf(ending)
        self.assertEqual(self.soak.worker_deaths, [])

    def test_stopNotesWhatWasKilled(self) -> None:
        """
        L{Soak.stop} kills a worker and a daemon that do not end, and notes
        each in C{stop_failures}, which fail the verdict.
        """
        self.soak.worker, worker = watched(self.reactor)
        self.soak.daemon, daemon = watched(self.reactor)
        stopping = Deferred.fromCoroutine(self.soak.stop())
        self.reactor.advance(STOP_PATIENCE)
        killed(self.soak.worker)
        self.reactor.advance(STOP_PATIENCE)
        killed(self.soak.daemon)
        self.successResultOf(stopping)
        self.assertEqual((worker.signals, daemon.signals), (["TERM", "KILL"], ["TERM", "KILL"]))
        self.assertEqual(
            [failure.split(" (")[0] for failure in self.soak.stop_failures], ["the worker", "harbour"]
        )

    def test_stopWaitsForWhatEnds(self) -> None:
        """
        A worker and a daemon that end when asked are not killed, and leave
        no failure.
        """
        self.soak.worker, worker = watched(self.reactor)
        self.soak.daemon, daemon = watched(self.reactor)
        stopping = Deferred.fromCoroutine(self.soak.stop())
        self.soak.worker.processEnded(Failure(ProcessDone(None)))
        self.soak.daemon.processEnded(Failure(ProcessDone(None)))
        self.successResultOf(stopping)
        self.assertEqual((worker.signals, daemon.signals, self.soak.stop_failures), (["TERM"], ["TERM"], []))


def entry(report: str, day: datetime.date) -> dict[str, str]:
    """
    @return: A request of harbour's manifest (C{Reports}) for one trading
        day of C{report}.
    """
    start, end = day_start(day), day_start(day + datetime.timedelta(days=1))
    return {
        "report": report,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "filename": f"{report}/{day}.zip",
        "url": f"http://oasis/SingleZip?report={report}&day={day}",
    }


class ManifestClient:
    """
    A control connection to a harbour that plans C{entries} and says each
    of them is downloaded and parsed.
    """

    def __init__(self, entries: list[dict[str, str]]) -> None:
        self.entries = entries

    def callRemote(self, command: type, **arguments: Any) -> Deferred:
        """
        Answer C{Reports} and C{Status}.
        """
        if command is commands.Reports:
            page = self.entries[arguments["offset"] :][: arguments["limit"]]
            return succeed({"urls": json.dumps(page), "total": len(self.entries)})
        reports = Counter(e["report"] for e in self.entries)
        status = {
            "services": {
                "work": {"tasks": {r: {"downloaded": n} for r, n in reports.items()}},
                "tables": {"reports": {r: {"parsed": n} for r, n in reports.items()}},
            }
        }
        return succeed({"status": json.dumps(status)})


class ExpectedWindowsTests(SynchronousTestCase):
    """
    The soak reckons the windows its configuration asks for itself: a
    harbour that plans too few is caught, not trusted.
    """

    def test_oneWindowPerDay(self) -> None:
        """
        Each report of the configuration (not a removed one) asks for one
        window per trading day of the manifest's days, from Pacific
        midnight to the next.
        """
        soaking = fake_soak(self, reports=3, days=3)
        soaking.definitions[1].removed = True
        starts = [datetime.datetime(2025, 12, day, 8, tzinfo=datetime.UTC) for day in (29, 30, 31)]
        windows = {(start, start + datetime.timedelta(hours=24)) for start in starts}
        self.assertEqual(soaking.expected_windows(), {"r00": windows, "r02": windows})

    def test_changeDays(self) -> None:
        """
        The autumn change day's window is 25 hours long, the spring one's 23.
        """
        soaking = fake_soak(self, reports=1, days=365)
        lengths = {
            start.date(): (end - start) / datetime.timedelta(hours=1)
            for start, end in soaking.expected_windows()["r00"]
        }
        self.assertEqual(
            (lengths[datetime.date(2025, 3, 9)], lengths[datetime.date(2025, 11, 2)], len(lengths)),
            (23, 25, 365),
        )

    def test_tooFewPlanned(self) -> None:
        """
        A harbour whose manifest leaves out a day of each report, every
        task of it final and parsed, loses a task a day left out.
        """
        soaking = fake_soak(self, reports=2, days=3)
        days = [datetime.date(2025, 12, 30), datetime.date(2025, 12, 31)]
        soaking.client = ManifestClient([entry(r, day) for r in ("r00", "r01") for day in days])
        finishing = Deferred.fromCoroutine(soaking.finish(patience=0))
        soaking.reactor.advance(1)
        outcome = self.successResultOf(finishing)
        self.assertEqual(
            {k: outcome[k] for k in ("total", "unplanned", "beyond", "lost", "unfinished")},
            {"total": 6, "unplanned": 2, "beyond": 0, "lost": 2, "unfinished": True},
        )

    def test_allPlanned(self) -> None:
        """
        A harbour that plans every day, each task final and parsed, loses
        nothing and is done at once.
        """
        soaking = fake_soak(self, reports=2, days=3)
        days = [datetime.date(2025, 12, 29), datetime.date(2025, 12, 30), datetime.date(2025, 12, 31)]
        soaking.client = ManifestClient([entry(r, day) for r in ("r00", "r01") for day in days])
        outcome = self.successResultOf(Deferred.fromCoroutine(soaking.finish(patience=0)))
        self.assertEqual(
            {k: outcome[k] for k in ("total", "unplanned", "beyond", "lost", "unfinished")},
            {"total": 6, "unplanned": 0, "beyond": 0, "lost": 0, "unfinished": False},
        )

    def test_filesMissing(self) -> None:
        """
        The audit counts a file missing for each expected window, planned
        by harbour or not: with none on disk, every window of every report.
        """
        soaking = fake_soak(self, reports=2, days=3)
        days = [datetime.date(2025, 12, 30), datetime.date(2025, 12, 31)]
        soaking.client = ManifestClient([entry(r, day) for r in ("r00", "r01") for day in days])

        async def harbourctl(*args: str) -> tuple[int, str]:
            return 0, ""

        self.patch(soaking, "harbourctl", harbourctl)
        audit = self.successResultOf(Deferred.fromCoroutine(soaking.audit()))
        self.assertEqual(audit["missing"], 6)

    def test_beyond(self) -> None:
        """
        Requests beyond the expected windows (another day, a window asked
        for twice, a report not in the configuration) are counted.
        """
        expected = {"r00": {window_of(entry("r00", datetime.date(2025, 12, 31)))}}
        entries = [
            entry("r00", datetime.date(2025, 12, 31)),
            entry("r00", datetime.date(2025, 12, 31)),
            entry("r00", datetime.date(2025, 12, 30)),
            entry("r09", datetime.date(2025, 12, 31)),
        ]
        self.assertEqual(compare_windows(expected, entries), (0, 3))
        self.assertEqual(compare_windows(expected, entries[2:]), (1, 2))


def zip_of_rows(path: Path, rows: int) -> None:
    """
    Write at C{path} a zip of one CSV member of C{rows} data rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("answer.csv", "A,B\n" + "".join(f"{n},x\n" for n in range(rows)))


def table_of_rows(path: Path, rows: int) -> None:
    """
    Write at C{path} a Parquet file of C{rows} rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"a": list(range(rows))}), path)


class AuditTablesTests(SynchronousTestCase):
    """
    The tables are audited window by window: a window missing and another
    doubled do not make up for each other.
    """

    def audit(self, tables: dict[str, int]) -> dict[str, int]:
        """
        @param tables: The rows of each Parquet file of report C{r00}, by
            its path under the report's tables.
        @return: What L{Soak.audit_tables} counts for two windows of
            C{r00}, each a zip of 3 rows, with those tables and a
            C{harbourctl tables --check} that passes.
        """
        soaking = fake_soak(self, reports=1)
        root = soaking.directory / "data" / "reports"
        urls = {f"r00/2025-12-{day}.zip": f"http://oasis/{day}" for day in (30, 31)}
        for name in urls:
            zip_of_rows(root / name, 3)
        for name, rows in tables.items():
            table_of_rows(soaking.directory / "data" / "tables" / "r00" / name, rows)

        async def harbourctl(*args: str) -> tuple[int, str]:
            return 0, ""

        self.patch(soaking, "harbourctl", harbourctl)
        self.patch(sys, "stdout", io.StringIO())
        return dict(self.successResultOf(Deferred.fromCoroutine(soaking.audit_tables(urls, root))))

    def test_eachWindowItsRows(self) -> None:
        """
        Each window's rows in its table, one window's spread over two
        days' directories: nothing wrong.
        """
        audit = self.audit(
            {
                "trading_date=2025-12-30/part-2025-12-30.parquet": 3,
                "trading_date=2025-12-31/part-2025-12-31.parquet": 2,
                "trading_date=2026-01-01/part-2025-12-31.parquet": 1,
            }
        )
        self.assertEqual(audit, {"table_rows": 6, "tables_wrong": 0, "tables_check_failed": 0})

    def test_doubledAndMissing(self) -> None:
        """
        A window's rows twice (its table and a revision's) and another
        window's not at all, the total right, is wrong.
        """
        audit = self.audit(
            {
                "trading_date=2025-12-30/part-2025-12-30.parquet": 3,
                "trading_date=2025-12-30/part-2025-12-30.rev1.parquet": 3,
            }
        )
        self.assertEqual(audit, {"table_rows": 6, "tables_wrong": 1, "tables_check_failed": 0})

    def test_doubledInTwoDays(self) -> None:
        """
        A window's rows in two days' directories, another's missing, is
        wrong.
        """
        audit = self.audit(
            {
                "trading_date=2025-12-30/part-2025-12-30.parquet": 3,
                "trading_date=2025-12-31/part-2025-12-30.parquet": 3,
            }
        )
        self.assertEqual(audit["tables_wrong"], 1)


class Stranger:
    """
    A connection the soak made, with a transport it may close.
    """

    def __init__(self) -> None:
        self.transport = StringTransport()


class AnsweringClient:
    """
    A control connection whose every command gets C{answer}: a dict, or an
    exception to fail with.
    """

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def callRemote(self, command: type, **arguments: Any) -> Deferred:
        """
        Answer.
        """
        if isinstance(self.answer, Exception):
            return fail(self.answer)
        return succeed(self.answer)


def clean_outcome() -> dict[str, Any]:
    """
    @return: What L{Soak.finish} finds of a mirror where nothing went wrong.
    """
    keys = (
        "lost",
        "unplanned",
        "beyond",
        "unretired",
        "fetched_again",
        "unparsable",
        "deleted",
        "deleted_back",
    )
    return dict.fromkeys(keys, 0) | {"unfinished": False}


class VerdictTests(SynchronousTestCase):
    """
    The soak fails on every bad input taken that must be refused, not only
    on a configuration it changed.
    """

    def setUp(self) -> None:
        self.soak = fake_soak(self)
        self.soak.worker_downloads.add("r00/2025-12-31.zip")

    def passed(self) -> bool:
        """
        @return: The verdict on a mirror where nothing else went wrong.
        """
        return soak.passed(self.soak, clean_outcome(), {}, Counter())

    def test_clean(self) -> None:
        """
        A soak where nothing went wrong passes.
        """
        self.assertTrue(self.passed())

    def test_deletedNotBack(self) -> None:
        """
        A file deleted from disk that was not downloaded again fails the
        soak; all of them back, it passes.
        """
        outcome = clean_outcome() | {"deleted": 2, "deleted_back": 1}
        self.assertFalse(soak.passed(self.soak, outcome, {}, Counter()))
        outcome["deleted_back"] = 2
        self.assertTrue(soak.passed(self.soak, outcome, {}, Counter()))

    def test_deleteDownloaded(self) -> None:
        """
        The fault deletes one downloaded file and its record, of a report
        kept enabled, and not one taken up as its report came back;
        L{Soak.deleted_back} tells when it is back.
        """
        root = self.soak.directory / "data" / "reports"
        taken = root / "r00" / "2025-12-31.zip"
        mine = root / "r00" / "2025-12-30.zip"
        for path, url in ((taken, "http://x/taken"), (mine, "http://x/mine")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"zip")
            record_path(path).write_text(json.dumps({"url": url}))
        self.soak.taken_up["http://x/taken"] = 1
        self.soak.definitions = [soak.Definition(0, "N0")]
        self.successResultOf(Deferred.fromCoroutine(self.soak.delete_downloaded()))
        self.assertEqual(
            (self.soak.deleted, taken.exists(), mine.exists()), ({"r00/2025-12-30.zip"}, True, False)
        )
        self.assertFalse(record_path(mine).exists())
        self.assertEqual(self.soak.deleted_back(), 0)
        mine.write_bytes(b"zip")
        self.assertEqual(self.soak.deleted_back(), 1)

    def test_badCommandsAndTokenTaken(self) -> None:
        """
        A daemon that takes the bad commands and lets a wrong token in
        fails the soak: each is noted as taken.
        """
        self.soak.client = AnsweringClient({})
        self.patch(soak, "connect", lambda reactor, endpoint, token: succeed(Stranger()))
        self.successResultOf(Deferred.fromCoroutine(self.soak.bad_commands()))
        self.assertEqual(
            self.soak.bad_inputs_taken,
            [
                "ListTasks state=bogus: ACCEPTED",
                "ListTasks limit=10000: ACCEPTED",
                "Publish of bad JSON: ACCEPTED",
                "wrong token: ACCEPTED",
            ],
        )
        self.assertFalse(self.passed())

    def test_wrongTokenTaken(self) -> None:
        """
        A wrong token let in, all else refused, fails the soak.
        """
        self.soak.client = AnsweringClient(BadRequest("no"))
        self.patch(soak, "connect", lambda reactor, endpoint, token: succeed(Stranger()))
        self.successResultOf(Deferred.fromCoroutine(self.soak.bad_commands()))
        self.assertEqual(self.soak.bad_inputs_taken, ["wrong token: ACCEPTED"])
        self.assertFalse(self.passed())

    def test_badCommandsRefused(self) -> None:
        """
        A daemon that refuses every bad command and the wrong token passes.
        """
        self.soak.client = AnsweringClient(BadRequest("no"))
        self.patch(soak, "connect", lambda reactor, endpoint, token: fail(Unauthorized("no")))
        self.successResultOf(Deferred.fromCoroutine(self.soak.bad_commands()))
        self.assertEqual(self.soak.bad_inputs_taken, [])
        self.assertEqual(
            [said for name, said in self.soak.bad_inputs],
            ["refused: no", "refused: no", "refused: no", "refused: UNAUTHORIZED"],
        )
        self.assertTrue(self.passed())


class NotExercisedTests(SynchronousTestCase):
    """
    A fault that did not take effect fails the soak: it tested nothing.
    """

    def setUp(self) -> None:
        self.soak = fake_soak(self)
        self.soak.worker_downloads.add("r00/2025-12-31.zip")
        self.patch(sys, "stdout", io.StringIO())

    def passed(self) -> bool:
        """
        @return: The verdict on a mirror where nothing else went wrong.
        """
        return soak.passed(self.soak, clean_outcome(), {}, Counter())

    def test_redisReplyNotSeen(self) -> None:
        """
        A Redis error reply harbour did not see (nor a starting worker)
        fails the soak; seen, it passes.
        """
        self.soak.redis_replies["BUSY seen by harbour"] += 1
        self.assertTrue(self.passed())
        for reply in ("OOM NOT seen by harbour", "BUSY NOT seen by a starting worker"):
            self.soak.redis_replies = Counter({"BUSY seen by harbour": 1, reply: 1})
            self.assertFalse(self.passed(), reply)

    def injecting(self, fault: Callable[[], Awaitable[object]]) -> Deferred:
        """
        @return: A short soak's L{Soak.run} whose one fault is C{fault},
            run to the fault.
        """
        self.patch(self.soak, "redis_busy", fault)
        running = Deferred.fromCoroutine(self.soak.run(seconds=5, every=15))
        self.soak.reactor.advance(5)
        return running

    def test_nothingToDelete(self) -> None:
        """
        With no downloaded file to delete, the fault deletes nothing, says
        so, is not counted as injected, and fails the soak.
        """
        deleting = Deferred.fromCoroutine(self.soak.delete_downloaded())
        self.assertIs(self.successResultOf(deleting), False)
        self.successResultOf(self.injecting(self.soak.delete_downloaded))
        name = "redis BUSY (Lua script past lua-time-limit)"
        self.assertEqual(self.soak.not_exercised, [f"{name}: no downloaded file to delete"])
        self.assertNotIn(name, self.soak.injected)
        self.assertFalse(self.passed())

    def test_noDownloadUnderWay(self) -> None:
        """
        A fault meant to meet downloads under way of a report just added,
        which saw none within L{soak.LANDING} seconds, is not exercised
        and fails the soak.
        """
        status = {"services": {"download": {"in_flight": [{"report": "r00"}]}}}
        self.soak.client = AnsweringClient({"status": json.dumps(status)})

        async def meeting_downloads() -> None:
            await self.soak.mid_run()

        running = self.injecting(meeting_downloads)
        self.soak.reactor.pump([0.05] * int(soak.LANDING / 0.05 + 2))
        self.successResultOf(running)
        self.assertEqual(
            self.soak.not_exercised,
            ["redis BUSY (Lua script past lua-time-limit): no download of r02 under way within 60 s"],
        )
        self.assertFalse(self.passed())

    def test_downloadUnderWay(self) -> None:
        """
        A report added whose download is under way lets the fault count as
        injected.
        """
        status = {"services": {"download": {"in_flight": [{"report": "r02"}]}}}
        self.soak.client = AnsweringClient({"status": json.dumps(status)})

        async def meeting_downloads() -> None:
            await self.soak.mid_run()

        self.successResultOf(self.injecting(meeting_downloads))
        self.assertEqual(self.soak.not_exercised, [])
        self.assertEqual(self.soak.injected["redis BUSY (Lua script past lua-time-limit)"], 1)
        self.assertTrue(self.passed())


class ShortRunTests(SynchronousTestCase):
    """
    A soak shorter than the time between faults still injects one, and its
    tables print.
    """

    def setUp(self) -> None:
        self.soak = fake_soak(self)
        self.said = io.StringIO()
        self.patch(sys, "stdout", self.said)

    def test_oneFault(self) -> None:
        """
        A run of C{seconds} no longer than C{every} injects the first fault
        once, at its end.
        """
        injected: list[float] = []

        async def redis_busy() -> None:
            injected.append(self.soak.reactor.seconds())

        self.patch(self.soak, "redis_busy", redis_busy)
        running = Deferred.fromCoroutine(self.soak.run(seconds=5, every=15))
        self.soak.reactor.advance(4)
        self.assertEqual(injected, [])
        self.soak.reactor.advance(1)
        self.successResultOf(running)
        self.assertEqual(injected, [5])
        self.assertEqual(self.soak.injected["redis BUSY (Lua script past lua-time-limit)"], 1)

    def test_emptyTable(self) -> None:
        """
        A table of no rows says so.
        """
        soak.table([])
        self.assertEqual(self.said.getvalue(), "  (none)\n")


class CleanUpTests(SynchronousTestCase):
    """
    L{Soak.clean_up} runs once, however the soak ends.
    """

    def setUp(self) -> None:
        self.soak = fake_soak(self)
        self.soak.worker, self.worker = watched(self.soak.reactor)
        self.soak.daemon, self.daemon = watched(self.soak.reactor)
        self.said = io.StringIO()
        self.patch(sys, "stdout", self.said)

    def end_both(self) -> None:
        """
        End the worker and the daemon, as SIGTERM does.
        """
        for process in (self.soak.worker, self.soak.daemon):
            process.processEnded(Failure(ProcessDone(None)))

    def test_interruptStopsEverything(self) -> None:
        """
        The reactor stopping before the soak's end (a signal) cancels the
        soak's coroutine, which stopping the reactor does not, stops the
        worker and the daemon, and removes the directory; the reactor is
        given a L{Deferred} to wait for until that is done.
        """
        soaking: Deferred = Deferred()
        waited = self.soak.interrupt(soaking)
        self.failureResultOf(soaking, CancelledError)
        self.assertTrue(self.soak.interrupted)
        self.assertIn("soak interrupted: stopping harbour", self.said.getvalue())
        self.assertEqual((self.worker.signals, self.daemon.signals), (["TERM"], []))
        self.soak.worker.processEnded(Failure(ProcessDone(None)))
        self.assertEqual(self.daemon.signals, ["TERM"])
        self.assertNoResult(waited)
        self.assertTrue(self.soak.directory.exists())
        self.soak.daemon.processEnded(Failure(ProcessDone(None)))
        self.successResultOf(waited)
        self.assertFalse(self.soak.directory.exists())

    def test_failedKept(self) -> None:
        """
        A soak that failed keeps its directory, with the output of each
        harbour and worker process it started in a file of its own, and
        says where it is; an interrupted one removes it even if it was to
        be kept.
        """
        self.soak.started = [("harbour", self.soak.daemon), ("worker", self.soak.worker)]
        self.soak.daemon.outReceived(b"harbour said this\n")
        self.soak.keep = True
        done = self.soak.clean_up()
        self.end_both()
        self.successResultOf(done)
        self.assertEqual((self.soak.directory / "harbour-1.log").read_text(), "harbour said this\n")
        self.assertTrue((self.soak.directory / "worker-1.log").exists())
        self.assertIn(f"soak: kept {self.soak.directory}", self.said.getvalue())

        interrupted = fake_soak(self)
        interrupted.worker, ignored = watched(interrupted.reactor)
        interrupted.daemon, ignored = watched(interrupted.reactor)
        interrupted.keep = True
        soaking: Deferred = Deferred()
        waited = interrupted.interrupt(soaking)
        self.failureResultOf(soaking, CancelledError)
        for process in (interrupted.worker, interrupted.daemon):
            process.processEnded(Failure(ProcessDone(None)))
        self.successResultOf(waited)
        self.assertFalse(interrupted.directory.exists())

    def test_onceForAll(self) -> None:
        """
        The soak's own clean-up and the reactor's, as it stops, are one:
        each waits for it, signals go once, and a process is not started
        meanwhile.
        """
        first = self.soak.clean_up()
        second = self.soak.interrupt(succeed(None))
        self.assertFalse(self.soak.interrupted, "the soak had ended")
        self.failureResultOf(Deferred.fromCoroutine(self.soak.start()), CancelledError)
        self.end_both()
        self.successResultOf(first)
        self.successResultOf(second)
        self.successResultOf(self.soak.clean_up())
        self.assertEqual((self.worker.signals, self.daemon.signals), (["TERM"], ["TERM"]))


def soak_processes(directory: Path) -> set[int]:
    """
    @return: The processes of a soak in C{directory}: the daemon and the
        worker name it on their command lines, the daemon's redis-server
        runs in it.
    """
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            where = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(directory) in command or where.startswith(str(directory)):
            found.add(int(entry.name))
    return found


def kill_left(pids: set[int]) -> None:
    """
    Kill those of C{pids} still running: what a failing soak left.
    """
    for pid in pids:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


class SignalTests(TestCase):
    """
    A soak stopped by a signal (a CI's timeout sends SIGTERM, an operator
    SIGINT) stops harbour, its redis-server and the worker, and removes its
    directory, before it exits.
    """

    timeout = 120

    async def stopped_by(self, name: str) -> None:
        """
        Start the soak, send it the signal C{name} once it has started
        harbour and the worker, and check that nothing of it is left.
        """
        from twisted.internet import reactor

        temporary = short_directory(self)
        process = spawn(
            reactor,
            # Long enough that only the signal ends it, however slow the machine.
            [sys.executable, "-m", "benchmarks.soak", "--seconds", "600", "--reports", "1", "--days", "1"],
            Path.cwd(),
            env={"TMPDIR": str(temporary), "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.addCleanup(lambda: process.has_ended or process.signal("KILL"))
        await process.wait_for(" a fault every ")
        running = soak_processes(temporary)
        self.addCleanup(kill_left, running)
        # The daemon, its redis-server and the worker, at least.
        self.assertGreaterEqual(len(running), 3, process.output())
        process.signal(name)
        code = await process.end_within(PATIENCE)
        self.assertEqual(code, 1, process.output())
        self.assertIn("soak interrupted", process.output())
        self.assertEqual([pid for pid in running if process_alive(pid)], [])
        self.assertEqual(list(temporary.iterdir()), [])

    async def test_terminated(self) -> None:
        """
        SIGTERM, as C{timeout(1)} and CI runners send, leaves nothing.
        """
        await self.stopped_by("TERM")

    async def test_interrupted(self) -> None:
        """
        SIGINT to the soak alone leaves nothing.
        """
        await self.stopped_by("INT")
