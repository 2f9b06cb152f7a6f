"""
Tests for L{harbour.services.sweeping}: the hub and each worker return the
expired leases of dead workers to C{pending}, a worker with or without its
hub.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.config.schema import WorkTopic
from harbour.errors import StoreUnavailable
from harbour.services.sweeping import LeaseSweeper
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import DOWNLOADING, PENDING
from harbour.store.test.test_tasks import request
from harbour.test.helpers import SilentHub, capture_log


class LeaseSweeperTests(SynchronousTestCase):
    """
    L{LeaseSweeper} sweeps every quarter of the hub's lease.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = MemoryTaskStore(self.clock)
        self.bus = Bus()
        self.messages = capture_log(self)
        self.successResultOf(self.store.create([request("lmp", 1), request("lmp", 2)]))

    def sweeper(self) -> LeaseSweeper:
        """
        @return: A started sweeper whose store is ready at once.
        """
        sweeper = LeaseSweeper(self.clock, self.store, self.bus, lambda: succeed(None))
        sweeper.startService()
        self.addCleanup(sweeper.stopService)
        return sweeper

    def counts(self) -> dict[str, int]:
        """
        @return: The tasks of C{lmp} by state.
        """
        return self.successResultOf(self.store.counts())["lmp"]

    def test_expiredReturned(self) -> None:
        """
        A claim whose lease ran out (its worker died) is pending again on
        the next sweep, a quarter lease later, with a warning; a live one
        stays claimed.
        """
        self.successResultOf(self.bus.publish("work", {"lease_seconds": 40}, retain=True))
        self.sweeper()
        self.successResultOf(self.store.claim("dead", 5))
        self.successResultOf(self.store.claim("alive", 600))
        self.clock.advance(9.9)
        self.assertEqual(self.counts(), {DOWNLOADING: 2})
        self.clock.advance(0.1)
        self.assertEqual(self.counts(), {PENDING: 1, DOWNLOADING: 1})
        self.assertIn("1 expired leases returned to pending", "\n".join(self.messages))

    def test_followsTheLease(self) -> None:
        """
        A new lease from the hub sets the pace from then on.
        """
        self.sweeper()
        self.successResultOf(self.bus.publish("work", {"lease_seconds": 5}, retain=True))
        self.successResultOf(self.store.claim("dead", 0.5))
        self.clock.advance(1.2)
        self.assertEqual(self.counts(), {PENDING: 1, DOWNLOADING: 1})
        self.clock.advance(0.05)
        self.assertEqual(self.counts(), {PENDING: 2})

    def test_sameLeaseAgain(self) -> None:
        """
        The same lease told again (as a hub tells it at each reconnection)
        leaves the sweeps on their schedule, rather than putting the next
        one off.
        """
        self.successResultOf(self.bus.publish("work", {"lease_seconds": 40}, retain=True))
        self.sweeper()
        self.successResultOf(self.store.claim("dead", 5))
        for ignored in range(4):
            self.clock.advance(2.5)
            self.successResultOf(self.bus.publish("work", {"lease_seconds": 40}, retain=True))
        self.assertEqual(self.counts(), {PENDING: 2})

    def test_outage(self) -> None:
        """
        A sweep during an outage fails quietly (the store logs outages) and
        the next sweep goes on.
        """
        self.sweeper()
        sweeps = []

        def away() -> Deferred[int]:
            sweeps.append(self.clock.seconds())
            return fail(StoreUnavailable("Redis is away"))

        self.store.sweep = away  # type: ignore[method-assign]
        self.clock.pump([WorkTopic().lease_seconds / 4] * 2)
        self.assertEqual(len(sweeps), 2)
        self.assertNotIn("expired leases", "\n".join(self.messages))

    def test_stopped(self) -> None:
        """
        Stopped, it leaves no timer and no subscription behind.
        """
        sweeper = self.sweeper()
        sweeper.stopService()
        self.assertEqual((self.clock.getDelayedCalls(), self.bus.status()["subscriptions"]), ([], 0))

    def test_stoppedHubSilent(self) -> None:
        """
        On a worker whose hub is connected but silent, it stops at once,
        not waiting for the hub to answer its unsubscription.
        """
        hub = SilentHub()
        sweeper = LeaseSweeper(self.clock, self.store, hub, lambda: succeed(None))
        sweeper.startService()
        self.successResultOf(maybeDeferred(sweeper.stopService))
        self.assertFalse(sweeper.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stoppedBeforeReady(self) -> None:
        """
        Stopped before its store is ready, it never sweeps.
        """
        ready: Deferred[None] = Deferred()
        sweeper = LeaseSweeper(self.clock, self.store, self.bus, lambda: ready)
        sweeper.startService()
        sweeper.stopService()
        ready.callback(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])
