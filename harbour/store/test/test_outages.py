"""
Tests for L{harbour.store.outages}.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from harbour.errors import StoreUnavailable
from harbour.store.outages import QUIET, Outages


class OutagesTests(SynchronousTestCase):
    """
    Tests for L{Outages}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.logged: list[LogEvent] = []
        log = Logger(namespace="store", observer=cast(ILogObserver, self.logged.append))
        self.outages = Outages(self.clock, lambda: "unix:///redis.sock?db=0", log)

    def levels(self) -> list[LogLevel]:
        """
        @return: The levels of the store's log lines so far.
        """
        return [event["log_level"] for event in self.logged if event.get("service") == "store"]

    def test_failures_are_one_outage(self) -> None:
        """
        The failures of one outage are counted and logged once; each is
        remembered as the last error and returned as L{StoreUnavailable}.
        """
        self.outages.issue()
        first = self.outages.failed("BUSY one")
        self.clock.advance(2)
        self.outages.issue()
        second = self.outages.failed("BUSY two")
        self.assertIsInstance(first, StoreUnavailable)
        self.assertEqual(str(second), "BUSY two")
        self.assertEqual((self.outages.count, self.outages.last_error), (1, "BUSY two"))
        self.assertEqual(self.outages.since, 0)
        self.assertEqual(self.levels(), [LogLevel.warn])

    def test_only_a_later_command_ends_it(self) -> None:
        """
        A reply to a command issued before the last failure leaves the
        outage under way; one to a command issued after ends it, once
        nothing has failed for L{QUIET} seconds, logged with how long it
        lasted until Redis first answered; the next failure is a new
        outage.
        """
        self.outages.issue()
        # The last issued before it began, answered late.
        in_flight = self.outages.issue()
        self.outages.failed("connection lost")
        self.clock.advance(QUIET)
        self.assertEqual(self.outages.answered("late", in_flight), "late")
        self.assertEqual(self.outages.since, 0)
        later = self.outages.issue()
        self.outages.answered("OK", later)
        self.assertIsNone(self.outages.since)
        self.assertEqual(self.levels(), [LogLevel.warn, LogLevel.info])
        self.assertEqual(self.logged[-1]["seconds"], QUIET)
        self.outages.issue()
        self.outages.failed("connection lost again")
        self.assertEqual(self.outages.count, 2)

    def test_over_after_quiet(self) -> None:
        """
        Answers in the L{QUIET} seconds after a failure do not end the
        outage; the first answer past them does, the outage having lasted
        until the first of them.
        """
        self.outages.issue()
        self.outages.failed("connection lost")
        self.clock.advance(3)
        self.outages.answered("OK", self.outages.issue())
        self.clock.advance(QUIET - 3.5)
        self.outages.answered("OK", self.outages.issue())
        self.assertEqual((self.outages.since, self.levels()), (0, [LogLevel.warn]))
        self.clock.advance(0.5)
        self.outages.answered("OK", self.outages.issue())
        self.assertIsNone(self.outages.since)
        self.assertEqual(self.levels(), [LogLevel.warn, LogLevel.info])
        self.assertEqual(self.logged[-1]["seconds"], 3)

    def test_writes_refused_reads_answered(self) -> None:
        """
        A Redis that refuses writes (C{OOM}, C{MISCONF}) but answers the
        reads between them for ten seconds is in one outage, logged and
        counted once, over only once the writes have gone through for
        L{QUIET} seconds: every answered read ended it, and the next
        refused write began another, fifty of each in ten seconds.
        """
        for tick in range(100):
            command = self.outages.issue()
            if tick % 2:
                self.outages.answered("v", command)
            else:
                self.outages.failed("OOM command not allowed when used memory > 'maxmemory'.")
            self.clock.advance(0.1)
        self.assertEqual((self.outages.count, self.levels()), (1, [LogLevel.warn]))
        self.assertEqual(self.outages.since, 0)
        for ignored in range(int(QUIET / 0.1) + 1):
            self.outages.answered("OK", self.outages.issue())
            self.clock.advance(0.1)
        self.assertEqual((self.outages.count, self.levels()), (1, [LogLevel.warn, LogLevel.info]))
        self.assertIsNone(self.outages.since)
        self.assertAlmostEqual(self.logged[-1]["seconds"], 9.9)

    def test_answers_without_outage(self) -> None:
        """
        Replies while no outage is under way log nothing.
        """
        self.outages.answered(None, self.outages.issue())
        self.assertEqual((self.outages.count, self.levels()), (0, []))
