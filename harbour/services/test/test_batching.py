"""
Tests of L{harbour.services.batching}: requests sent one call at a time,
those made meanwhile together.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.errors import StoreUnavailable
from harbour.services.batching import Batches


class HeldCalls:
    """
    Calls that wait until the test answers them.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Deferred[list[int]]]] = []

    def __call__(self, requests: list[str]) -> Deferred[list[int]]:
        """
        @return: A L{Deferred} the test fires.
        """
        d: Deferred[list[int]] = Deferred()
        self.calls.append((requests, d))
        return d

    def answer(self) -> None:
        """
        Answer the last call: each request with its length.
        """
        requests, d = self.calls[-1]
        d.callback([len(request) for request in requests])


class BatchesTests(SynchronousTestCase):
    """
    L{Batches}.
    """

    def setUp(self) -> None:
        self.held = HeldCalls()
        self.batches: Batches[str, int] = Batches(self.held, 100)

    def test_alone_at_once(self) -> None:
        """
        A request made while no call is under way goes at once, alone, and
        its L{Deferred} fires with its answer.
        """
        d = self.batches.ask("abc", "k")
        [(requests, call)] = self.held.calls
        self.assertEqual(requests, ["abc"])
        self.assertNoResult(d)
        call.callback([7])
        self.assertEqual(self.successResultOf(d), 7)

    def test_waiting_go_together(self) -> None:
        """
        Requests made while a call is under way go together in the next,
        once it is answered; each gets its own answer.
        """
        first = self.batches.ask("a", "k")
        later = [self.batches.ask(request, "k") for request in ("bb", "ccc", "d")]
        self.assertEqual(len(self.held.calls), 1)
        self.held.answer()
        self.assertEqual(self.successResultOf(first), 1)
        self.assertEqual(self.held.calls[1][0], ["bb", "ccc", "d"])
        self.held.answer()
        self.assertEqual([self.successResultOf(d) for d in later], [2, 3, 1])

    def test_keys_keep_turns(self) -> None:
        """
        A request goes only with those right after it of an equal key, and
        one of key L{None} alone: every request keeps its turn.
        """
        self.batches.ask("a", "k")
        for request, key in [("b", "k"), ("c", "j"), ("d", "j"), ("e", None), ("f", None), ("g", "k")]:
            self.batches.ask(request, key)
        for ignored in range(6):
            self.held.answer()
        self.assertEqual(
            [requests for requests, ignored in self.held.calls],
            [["a"], ["b"], ["c", "d"], ["e"], ["f"], ["g"]],
        )

    def test_bounded(self) -> None:
        """
        No call carries more than C{most} requests: the rest go in the call
        after.
        """
        self.batches = Batches(self.held, 2)
        for request in "abcde":
            self.batches.ask(request, "k")
        for ignored in range(3):
            self.held.answer()
        self.assertEqual([requests for requests, ignored in self.held.calls], [["a"], ["b", "c"], ["d", "e"]])

    def test_failure_fails_each(self) -> None:
        """
        A call that fails fails each of its requests' L{Deferred}s with its
        error (each caller may ask again), and the requests that waited
        meanwhile go in the next call.
        """
        first = self.batches.ask("a", "k")
        waiting = [self.batches.ask("b", "k"), self.batches.ask("c", "k")]
        self.held.calls[0][1].errback(StoreUnavailable("away"))
        self.failureResultOf(first, StoreUnavailable)
        self.assertEqual(self.held.calls[1][0], ["b", "c"])
        self.held.calls[1][1].errback(StoreUnavailable("still away"))
        for d in waiting:
            self.failureResultOf(d, StoreUnavailable)
        again = self.batches.ask("b", "k")
        self.held.answer()
        self.assertEqual(self.successResultOf(again), 1)

    def test_wrong_count(self) -> None:
        """
        A reply with another number of answers than requests fails each of
        them with L{ValueError}, and the next call is still sent.
        """
        first, waiting = self.batches.ask("a", "k"), self.batches.ask("b", "k")
        self.held.calls[0][1].callback([1, 1])
        self.failureResultOf(first, ValueError)
        self.assertEqual(self.held.calls[1][0], ["b"])
        self.held.answer()
        self.assertEqual(self.successResultOf(waiting), 1)

    def test_call_raises(self) -> None:
        """
        A call that raises instead of answering fails its requests, and the
        next ones are still sent.
        """

        def broken(requests: list[str]) -> Deferred[list[int]]:
            if not self.held.calls:
                self.held.calls.append((requests, Deferred()))
                raise RuntimeError("a bug")
            return self.held(requests)

        self.batches = Batches(broken, 100)
        self.failureResultOf(self.batches.ask("a", "k"), RuntimeError)
        d = self.batches.ask("bb", "k")
        self.held.answer()
        self.assertEqual(self.successResultOf(d), 2)

    def test_cancel_waiting(self) -> None:
        """
        A request cancelled while it waits fails at once with
        L{CancelledError} and is never sent; the others go as before.
        """
        self.batches.ask("a", "k")
        cancelled, kept = self.batches.ask("bb", "k"), self.batches.ask("ccc", "k")
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        self.held.answer()
        self.assertEqual(self.held.calls[1][0], ["ccc"])
        self.held.answer()
        self.assertEqual(self.successResultOf(kept), 3)

    def test_cancel_under_way(self) -> None:
        """
        A request cancelled while its call is under way fails at once with
        L{CancelledError}, and its answer, when it comes, goes to
        C{unwanted}; the others in the call get theirs.
        """
        unwanted: list[int] = []
        self.batches = Batches(self.held, 100, unwanted.append)
        self.batches.ask("a", "k")
        cancelled, kept = self.batches.ask("bb", "k"), self.batches.ask("ccc", "k")
        self.held.answer()
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        self.held.answer()
        self.assertEqual(unwanted, [2])
        self.assertEqual(self.successResultOf(kept), 3)

    def test_unwanted_raises(self) -> None:
        """
        If C{unwanted} raises, the error is logged, and the other requests
        of the call get their answers all the same; the next call goes.
        """

        def unwanted(answer: int) -> None:
            raise ZeroDivisionError(answer)

        self.batches = Batches(self.held, 100, unwanted)
        self.batches.ask("a", "k")
        cancelled, kept = self.batches.ask("bb", "k"), self.batches.ask("ccc", "k")
        self.held.answer()
        later = self.batches.ask("dddd", "k")
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        self.held.answer()
        self.assertEqual(self.successResultOf(kept), 3)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.held.answer()
        self.assertEqual(self.successResultOf(later), 4)

    def test_asked_while_answered(self) -> None:
        """
        A request made by a waiter as it is answered is sent at once, and
        the others answered with that waiter still get their own answers.
        """
        answers: list[tuple[str, int]] = []

        def again(answer: int) -> None:
            answers.append(("bb", answer))
            self.batches.ask("dddd", "k")

        self.batches.ask("a", "k")
        self.batches.ask("bb", "k").addCallback(again)
        self.batches.ask("ccc", "k").addCallback(lambda answer: answers.append(("ccc", answer)))
        self.held.answer()
        self.held.answer()
        self.assertEqual(answers, [("bb", 2), ("ccc", 3)])
        self.assertEqual(
            [requests for requests, ignored in self.held.calls], [["a"], ["bb", "ccc"], ["dddd"]]
        )
