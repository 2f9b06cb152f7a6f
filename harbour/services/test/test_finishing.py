"""
Tests of L{harbour.services.finishing}: outcomes recorded a batch at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.errors import StoreUnavailable
from harbour.services import finishing
from harbour.services.finishing import Finishes
from harbour.store.tasks import DOWNLOADED, FAILED, Outcome


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

    def test_alone_at_once(self) -> None:
        """
        An outcome asked for while no call is under way goes at once, alone,
        and its L{Deferred} fires with what the store answers for it.
        """
        d = self.finishes.finish(outcome("a"))
        [(ids, call)] = self.store.calls
        self.assertEqual(ids, ["a"])
        self.assertNoResult(d)
        call.callback([True])
        self.assertTrue(self.successResultOf(d))

    def test_waiting_go_together(self) -> None:
        """
        Outcomes asked for while a call is under way go together in the
        next, once it is answered; each gets its own answer.
        """
        first = self.finishes.finish(outcome("a"))
        later = [self.finishes.finish(outcome(name)) for name in "bcd"]
        self.assertEqual(len(self.store.calls), 1)
        self.store.calls[0][1].callback([True])
        self.assertTrue(self.successResultOf(first))
        [ignored, (ids, call)] = self.store.calls
        self.assertEqual(ids, ["b", "c", "d"])
        call.callback([True, False, True])
        self.assertEqual([self.successResultOf(d) for d in later], [True, False, True])

    def test_bounded(self) -> None:
        """
        No call carries more than L{finishing.MOST_AT_ONCE} outcomes: the
        rest go in the call after.
        """
        self.patch(finishing, "MOST_AT_ONCE", 2)
        self.finishes.finish(outcome("a"))
        for name in "bcde":
            self.finishes.finish(outcome(name))
        self.store.calls[0][1].callback([True])
        self.assertEqual(self.store.calls[1][0], ["b", "c"])
        self.store.calls[1][1].callback([True, True])
        self.assertEqual(self.store.calls[2][0], ["d", "e"])

    def test_failure_fails_each(self) -> None:
        """
        A call that fails fails each of its outcomes' L{Deferred}s with the
        store's error (each caller may try again), and the outcomes that
        waited meanwhile go in the next call.
        """
        first = self.finishes.finish(outcome("a"))
        waiting = [self.finishes.finish(outcome("b")), self.finishes.finish(Outcome("c", "w", FAILED))]
        self.store.calls[0][1].errback(StoreUnavailable("away"))
        self.failureResultOf(first, StoreUnavailable)
        self.assertEqual(self.store.calls[1][0], ["b", "c"])
        self.store.calls[1][1].errback(StoreUnavailable("still away"))
        for d in waiting:
            self.failureResultOf(d, StoreUnavailable)
        again = self.finishes.finish(outcome("b"))
        self.store.calls[2][1].callback([True])
        self.assertTrue(self.successResultOf(again))

    def test_alone(self) -> None:
        """
        An outcome asked to go alone (a try after a failed call) goes in a
        call of its own, between the batches of the others.
        """
        self.finishes.finish(outcome("a"))
        self.finishes.finish(outcome("b"))
        self.finishes.finish(outcome("c"), alone=True)
        self.finishes.finish(outcome("d"))
        self.finishes.finish(outcome("e"))
        for answers in ([True], [True], [True]):
            self.store.calls[-1][1].callback(answers * len(self.store.calls[-1][0]))
        self.assertEqual([ids for ids, ignored in self.store.calls], [["a"], ["b"], ["c"], ["d", "e"]])

    def test_wrong_count(self) -> None:
        """
        A reply with a different number of answers than outcomes fails
        each of them, and the next call is still sent.
        """
        first, waiting = self.finishes.finish(outcome("a")), self.finishes.finish(outcome("b"))
        self.store.calls[0][1].callback([True, True])
        self.failureResultOf(first, ValueError)
        self.assertEqual(self.store.calls[1][0], ["b"])
        self.store.calls[1][1].callback([True])
        self.assertTrue(self.successResultOf(waiting))

    def test_store_raises(self) -> None:
        """
        A store that raises instead of answering fails the outcomes of that
        call, and the next ones are still sent.
        """
        calls: list[Sequence[Outcome]] = []
        finish_many = self.store.finish_many

        def broken(outcomes: Sequence[Outcome]) -> Deferred[list[bool]]:
            calls.append(outcomes)
            if len(calls) == 1:
                raise RuntimeError("a bug")
            return finish_many(outcomes)

        self.patch(self.store, "finish_many", broken)
        self.failureResultOf(self.finishes.finish(outcome("a")), RuntimeError)
        d = self.finishes.finish(outcome("b"))
        self.store.calls[0][1].callback([True])
        self.assertTrue(self.successResultOf(d))
