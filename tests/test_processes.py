"""
Tests of the helpers that run harbour's programs in system tests and the
soak: a process that does not end when asked is killed, and said to be.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests import processes
from tests.processes import STOP_PATIENCE, DidNotEnd, WatchedProcess, end_process, stop_harbour


class FakeProcessTransport:
    """
    The transport of a process that ends only when its test says so.

    @ivar signals: The signals sent to it, by name.
    """

    pid = 4321

    def __init__(self) -> None:
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        """
        Note a signal.
        """
        self.signals.append(name)


def watched(clock: Clock) -> tuple[WatchedProcess, FakeProcessTransport]:
    """
    @return: A watched process on a fake transport, and the transport.
    """
    process = WatchedProcess(clock)
    transport = FakeProcessTransport()
    process.transport = transport
    return process, transport


def killed(process: WatchedProcess) -> None:
    """
    End C{process} as SIGKILL does.
    """
    process.processEnded(Failure(ProcessTerminated(signal=9)))


class EndProcessTests(SynchronousTestCase):
    """
    L{end_process} and L{stop_harbour} wait a bounded time.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.process, self.transport = watched(self.clock)

    def test_endsWhenAsked(self) -> None:
        """
        A process that ends after SIGTERM is waited for and nothing more.
        """
        ending = Deferred.fromCoroutine(end_process(self.process, "TERM", 10, "a sleeper"))
        self.assertNoResult(ending)
        self.process.processEnded(Failure(ProcessDone(None)))
        self.successResultOf(ending)
        self.assertEqual(self.transport.signals, ["TERM"])

    def test_killedAfterPatience(self) -> None:
        """
        A process still running C{patience} seconds after SIGTERM is sent
        SIGKILL, and the wait fails with L{DidNotEnd} saying so.
        """
        ending = Deferred.fromCoroutine(end_process(self.process, "TERM", 10, "a sleeper"))
        self.clock.advance(9.9)
        self.assertEqual(self.transport.signals, ["TERM"])
        self.clock.advance(0.1)
        self.assertEqual(self.transport.signals, ["TERM", "KILL"])
        self.assertNoResult(ending)
        killed(self.process)
        failure = self.failureResultOf(ending, DidNotEnd)
        self.assertEqual(
            str(failure.value), "a sleeper (pid 4321) did not end within 10 s of SIGTERM: killed"
        )
        self.assertTrue(self.process.ended.called, "ended is still fired as the process ends")

    def test_notEvenKilled(self) -> None:
        """
        A process that does not end even once killed is given up on: the
        wait still ends, saying so.
        """
        ending = Deferred.fromCoroutine(end_process(self.process, "TERM", 10, "a sleeper"))
        self.clock.advance(10)
        self.clock.advance(10)
        failure = self.failureResultOf(ending, DidNotEnd)
        self.assertIn("nor within 10 s of SIGKILL", str(failure.value))

    def test_alreadyEnded(self) -> None:
        """
        A process that has ended is sent nothing.
        """
        self.process.processEnded(Failure(ProcessDone(None)))
        self.successResultOf(Deferred.fromCoroutine(end_process(self.process)))
        self.assertEqual(self.transport.signals, [])

    def test_endWithinLeavesEnded(self) -> None:
        """
        Giving up on L{WatchedProcess.end_within} leaves L{WatchedProcess.ended}
        to fire when the process ends.
        """
        waited = self.process.end_within(1)
        self.clock.advance(1)
        self.failureResultOf(waited, TimeoutError)
        self.assertNoResult(self.process.ended)
        self.process.processEnded(Failure(ProcessDone(None)))
        self.assertEqual(self.successResultOf(self.process.ended), 0)

    def test_stopHarbourKillsItsRedis(self) -> None:
        """
        L{stop_harbour} kills a daemon that does not stop within
        L{STOP_PATIENCE} seconds, and the embedded redis-server it said it
        started last (which would outlive it otherwise), then fails.
        """
        self.process.outReceived(b"[harbour.store.server#info] redis-server 111 ready on /x/redis.sock\n")
        self.process.outReceived(b"[harbour.store.server#info] redis-server 222 ready on /x/redis.sock\n")
        redis: list[int] = []
        self.patch(processes, "kill_if_redis", redis.append)
        stopping = Deferred.fromCoroutine(stop_harbour(self.process))
        self.clock.advance(STOP_PATIENCE)
        killed(self.process)
        failure = self.failureResultOf(stopping, DidNotEnd)
        self.assertIn("harbour (pid 4321) did not end within 60 s of SIGTERM", str(failure.value))
        self.assertEqual(self.transport.signals, ["TERM", "KILL"])
        self.assertEqual(redis, [222])
