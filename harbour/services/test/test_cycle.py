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

    def test_replan(self) -> None:
        """
        L{Cycle.replan} plans the next run C{next_delay} from now while
        the cycle waits, and none once it is not C{active}; a run under way
        is left alone, and plans the next by what they say as it ends.
        """
        clock = Clock()
        runs: list[Deferred[None]] = []
        delay, active = [10.0], [True]

        def job() -> Deferred[None]:
            runs.append(Deferred())
            return runs[-1]

        cycle = Cycle(clock, job, lambda: delay[0], lambda: active[0], "test")
        cycle.replan()
        self.assertEqual(cycle.next_run(), 10.0)
        clock.advance(5)
        delay[0] = 20.0
        cycle.replan()
        self.assertEqual(cycle.next_run(), 25.0)
        active[0] = False
        cycle.replan()
        self.assertEqual((cycle.next_run(), clock.getDelayedCalls()), (None, []))
        active[0] = True
        cycle.replan()
        clock.advance(20)
        self.assertEqual(len(runs), 1)
        delay[0] = 30.0
        cycle.replan()
        self.assertEqual((len(runs), clock.getDelayedCalls()), (1, []))
        runs[0].callback(None)
        self.assertEqual(cycle.next_run(), 55.0)
