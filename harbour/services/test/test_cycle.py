"""
Tests for L{harbour.services.cycle}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, LoopingCall
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.cycle import Cycle, guarded


class GuardedTests(SynchronousTestCase):
    """
    Tests for L{guarded}.
    """

    def test_loopingCallSurvivesFailures(self) -> None:
        """
        A job that raises, or whose L{Deferred} fails, is logged, and its
        L{LoopingCall} goes on running it.
        """
        clock = Clock()
        runs: list[int] = []

        def job() -> None:
            runs.append(len(runs))
            if len(runs) < 3:
                raise ZeroDivisionError("a bug")

        loop = LoopingCall(guarded(Logger(), "job", job, "test"))
        loop.clock = clock
        loop.start(1.0)
        clock.advance(1.0)
        clock.advance(1.0)
        clock.advance(1.0)
        self.assertTrue(loop.running)
        self.assertEqual(runs, [0, 1, 2, 3])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        loop.stop()


class CycleTests(SynchronousTestCase):
    """
    Tests for L{Cycle}'s resilience.
    """

    def test_jobRaisingAtOnce(self) -> None:
        """
        A job that raises instead of returning a L{Deferred} is a failed
        run, logged: the next run still comes.
        """
        clock = Clock()
        runs: list[int] = []

        def job() -> Deferred[None]:
            runs.append(len(runs))
            if len(runs) == 1:
                raise ZeroDivisionError("a bug")
            d: Deferred[None] = Deferred()
            d.callback(None)
            return d

        cycle = Cycle(clock, job, lambda: 5.0, lambda: True, "test")
        cycle.soon(0)
        clock.advance(0)
        clock.advance(5)
        self.assertEqual(runs, [0, 1])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
