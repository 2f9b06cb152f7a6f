"""
Tests of L{harbour.services.claiming}: claims asked a batch at a time.
"""

from __future__ import annotations

import attr
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.claiming import Claims
from harbour.store.tasks import Task
from harbour.store.test.test_tasks import request


class HeldStore:
    """
    A store whose every C{claim_many} call waits until the test answers it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int, Deferred[list[Task]]]] = []
        self.released: list[tuple[str, str, float, bool, int | None]] = []

    def claim_many(self, owner: str, lease_seconds: float, count: int) -> Deferred[list[Task]]:
        """
        @return: A L{Deferred} the test fires.
        """
        d: Deferred[list[Task]] = Deferred()
        self.calls.append((owner, lease_seconds, count, d))
        return d

    def release(
        self, task_id: str, owner: str, delay: float, *, counted: bool, token: int | None
    ) -> Deferred[bool]:
        """
        Record a claim given back.
        """
        self.released.append((task_id, owner, delay, counted, token))
        return succeed(True)


def task(day: int) -> Task:
    """
    @return: A claimed task for day C{day} of a report.
    """
    return Task.from_request(request("a", day), 0.0)


class ClaimsTests(SynchronousTestCase):
    """
    L{Claims}.
    """

    def setUp(self) -> None:
        self.store = HeldStore()
        self.claims = Claims(self.store)  # type: ignore[arg-type]

    def test_alone_at_once(self) -> None:
        """
        A claim asked for while no call is under way goes at once, alone,
        and its L{Deferred} fires with the task the store claimed.
        """
        d = self.claims.claim("w", 60.0)
        [(owner, lease, count, call)] = self.store.calls
        self.assertEqual((owner, lease, count), ("w", 60.0, 1))
        self.assertNoResult(d)
        call.callback([task(1)])
        self.assertEqual(self.successResultOf(d), task(1))

    def test_waiting_go_together(self) -> None:
        """
        Claims asked for while a call is under way go together in the next,
        once it is answered, each given one task in turn; those the store
        had no task for get L{None}.
        """
        first = self.claims.claim("w", 60.0)
        later = [self.claims.claim("w", 60.0) for ignored in range(3)]
        self.assertEqual(len(self.store.calls), 1)
        self.store.calls[0][3].callback([])
        self.assertIsNone(self.successResultOf(first))
        [ignored, (owner, lease, count, call)] = self.store.calls
        self.assertEqual(count, 3)
        call.callback([task(3), task(2)])
        self.assertEqual([self.successResultOf(d) for d in later], [task(3), task(2), None])

    def test_same_owner_and_lease(self) -> None:
        """
        Claims go together only with those right after them for the same
        owner and lease (each worker trusts the lease it asked for), and
        every claim keeps its turn.
        """
        self.claims.claim("w", 60.0)
        self.claims.claim("w", 30.0)
        self.claims.claim("w", 30.0)
        self.claims.claim("w", 60.0)
        self.claims.claim("v", 60.0)
        for ignored in range(3):
            self.store.calls[-1][3].callback([])
        self.assertEqual(
            [(owner, lease, count) for owner, lease, count, ignored in self.store.calls],
            [("w", 60.0, 1), ("w", 30.0, 2), ("w", 60.0, 1), ("v", 60.0, 1)],
        )

    def test_too_many(self) -> None:
        """
        A reply with more tasks than claims fails each of them, and the
        next call is still sent.
        """
        first, waiting = self.claims.claim("w", 60.0), self.claims.claim("w", 60.0)
        self.store.calls[0][3].callback([task(1), task(2)])
        self.failureResultOf(first, ValueError)
        self.assertEqual(self.store.calls[1][2], 1)
        self.store.calls[1][3].callback([task(3)])
        self.assertEqual(self.successResultOf(waiting), task(3))

    def test_store_raises(self) -> None:
        """
        A store that raises instead of answering fails the claims of that
        call, and the next ones are still sent.
        """
        claim_many = self.store.claim_many
        calls: list[int] = []

        def broken(owner: str, lease_seconds: float, count: int) -> Deferred[list[Task]]:
            calls.append(count)
            if len(calls) == 1:
                raise RuntimeError("a bug")
            return claim_many(owner, lease_seconds, count)

        self.patch(self.store, "claim_many", broken)
        self.failureResultOf(self.claims.claim("w", 60.0), RuntimeError)
        d = self.claims.claim("w", 60.0)
        self.store.calls[0][3].callback([task(1)])
        self.assertEqual(self.successResultOf(d), task(1))

    def test_given_back(self) -> None:
        """
        A task claimed for a waiter that gave up (cancelled its claim while
        the call was under way) is given back at once, due now, its attempt
        not counted; one cancelled before its call claims nothing.
        """
        self.claims.claim("w", 60.0)
        gave_up, waiting = self.claims.claim("w", 60.0), self.claims.claim("w", 60.0)
        self.store.calls[0][3].callback([])
        gave_up.cancel()
        waiting.cancel()
        self.failureResultOf(gave_up, CancelledError)
        self.failureResultOf(waiting, CancelledError)
        claimed = attr.evolve(task(2), owner="w", claim=3)
        self.store.calls[1][3].callback([claimed])
        self.assertEqual(self.store.released, [(claimed.id, "w", 0.0, False, 3)])
        self.claims.claim("w", 60.0)
        never = self.claims.claim("w", 60.0)
        never.cancel()
        self.failureResultOf(never, CancelledError)
        self.store.calls[2][3].callback([])
        self.assertEqual(len(self.store.calls), 3)
