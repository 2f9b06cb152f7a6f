"""
Tests of L{harbour.admission}, on its own: the listeners' own tests
(L{harbour.amp.test.test_security}, L{harbour.web.test.test_service}) show
it at work on their connections.
"""

from __future__ import annotations

import attr
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.admission import EVICTION_GRACE, REFUSAL_LOG_INTERVAL, Admission
from harbour.test.helpers import capture_log


@attr.s(eq=False)
class Connection:
    """
    A connection that notes being closed.

    @ivar aborted: Whether it was.
    """

    aborted: bool = attr.ib(default=False)

    def abort(self) -> None:
        """
        Note it.
        """
        self.aborted = True


class AdmissionTests(SynchronousTestCase):
    """
    L{Admission} closes the oldest waiting connection past its limits,
    unless it is too new; and logs refusals once an interval per peer.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.log = capture_log(self)
        self.admission: Admission[Connection] = Admission(self.clock, 3, 2, "a request", "test")

    def test_oldestClosed(self) -> None:
        """
        Past C{per_host} of one host, the host's oldest is closed; past
        C{limit} in all, the oldest of all; both are logged, naming what
        the connections wait for.
        """
        first, second = Connection(), Connection()
        self.assertTrue(self.admission.admit(first, "a"))
        self.assertTrue(self.admission.admit(second, "a"))
        self.clock.advance(EVICTION_GRACE)
        self.assertTrue(self.admission.admit(Connection(), "a"))
        self.assertEqual((first.aborted, second.aborted), (True, False))
        self.assertTrue(self.admission.admit(Connection(), "b"))
        self.assertTrue(self.admission.admit(Connection(), "c"))
        self.assertTrue(second.aborted)
        self.assertEqual(
            [line for line in self.log if "closed" in line],
            # The second closing, of the same peer, is counted for the next line.
            ["closed a connection from a: the oldest of 2 of its connections waiting for a request"],
        )

    def test_tooNewRefused(self) -> None:
        """
        While the oldest is newer than C{grace}, the new connection is
        refused instead; one done waiting makes room.
        """
        first = Connection()
        self.admission.admit(first, "a")
        self.admission.admit(Connection(), "a")
        self.assertFalse(self.admission.admit(Connection(), "a"))
        self.assertFalse(first.aborted)
        self.assertIn(
            f"refused a connection from a: 2 of its connections wait for a request,"
            f" all made less than {EVICTION_GRACE:g} s ago",
            self.log,
        )
        self.admission.done_waiting(first)
        self.assertTrue(self.admission.admit(Connection(), "a"))

    def test_refusalsCounted(self) -> None:
        """
        One line per peer and interval, the next counting those left out.
        """
        for ignored in range(3):
            self.admission.log_refusal("a", "refused a thing")
        self.admission.log_refusal("b", "refused a thing", "because")
        self.clock.advance(REFUSAL_LOG_INTERVAL)
        self.admission.log_refusal("a", "refused a thing")
        self.assertEqual(
            self.log,
            [
                "refused a thing from a",
                "refused a thing from b: because",
                "refused a thing from a (2 more refusals since the last line)",
            ],
        )
