"""
Tests of L{harbour.services.finishing}: outcomes recorded a batch at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services import finishing
from harbour.services.finishing import Finishes
from harbour.store.tasks import DOWNLOADED, Outcome


class HeldStore:
    """
    A store whose every C{finish_many} call waits until the test answers it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Deferred[list[bool]]]] = []

    def finish_many(self, outcomes: Sequence[Outcome]) -> Deferred[list[bool]]:
        """
        @return: A L{Deferred} the test fires.
        """
        d: Deferred[list[bool]] = Deferred()
        self.calls.append(([o.task_id for o in outcomes], d))
        return d


def outcome(task_id: str) -> Outcome:
    """
    @return: A download's outcome for task C{task_id}.
    """
    return Outcome(task_id, "w", DOWNLOADED, 10, "ab")


class FinishesTests(SynchronousTestCase):
    """
    L{Finishes}.
    """

    def setUp(self) -> None:
        self.store = HeldStore()
        self.finishes = Finishes(self.store)  # type: ignore[arg-type]

    def test_waiting_go_together(self) -> None:
        """
        Outcomes recorded while a call is under way go together in the
        next, each with its own answer, at most L{finishing.MOST_AT_ONCE}
        per call.
        """
        self.patch(finishing, "MOST_AT_ONCE", 2)
        self.finishes = Finishes(self.store)  # type: ignore[arg-type]
        first = self.finishes.finish(outcome("a"))
        later = [self.finishes.finish(outcome(name)) for name in "bcd"]
        self.store.calls[0][1].callback([True])
        self.assertTrue(self.successResultOf(first))
        self.store.calls[1][1].callback([True, False])
        self.store.calls[2][1].callback([True])
        self.assertEqual([ids for ids, ignored in self.store.calls], [["a"], ["b", "c"], ["d"]])
        self.assertEqual([self.successResultOf(d) for d in later], [True, False, True])

    def test_alone(self) -> None:
        """
        An outcome asked to go alone (a try after a call that failed) goes
        in a call of its own, in its turn.
        """
        self.finishes.finish(outcome("a"))
        self.finishes.finish(outcome("b"))
        self.finishes.finish(outcome("c"), alone=True)
        self.finishes.finish(outcome("d"))
        self.finishes.finish(outcome("e"))
        for ignored in range(4):
            self.store.calls[-1][1].callback([True] * len(self.store.calls[-1][0]))
        self.assertEqual([ids for ids, ignored in self.store.calls], [["a"], ["b"], ["c"], ["d", "e"]])
