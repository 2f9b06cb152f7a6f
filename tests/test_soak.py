"""
Tests of C{make soak}'s harness (L{benchmarks.soak}): what it waits for is
bounded, and its verdict fails on what it must.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from benchmarks import soak
from benchmarks.soak import HARBOURCTL_PATIENCE, REPLY_PATIENCE, Soak, Stuck
from tests.processes import STOP_PATIENCE, DidNotEnd, WatchedProcess
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
