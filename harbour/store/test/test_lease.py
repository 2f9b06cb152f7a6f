"""
Tests for L{harbour.store.lease}: the lease's rules against a Redis of a
few lines timed by a L{Clock}, its scripts against a real redis-server, and
hub stores sharing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis
from harbour.store.connection import StoreService
from harbour.store.lease import GIVE_UP, LEASE, RENEW, TAKE, HubLease
from harbour.test.helpers import capture_log, private_redis, short_directory

KEY = "{h}:hub"


class LeaseRedis:
    """
    The part of Redis the lease's scripts use: keys with their ends, on
    the test's clock.

    @ivar keys: Each key's value and when it ends (L{None}: never).
    @ivar down: Whether every call fails, as in an outage.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.keys: dict[str, tuple[str, float | None]] = {}
        self.down = False

    def set(self, key: str, value: str, lasts: float | None) -> None:
        """
        Set C{key} to C{value} for C{lasts} seconds (L{None}: for ever).
        """
        self.keys[key] = (value, None if lasts is None else self.clock.seconds() + lasts)

    def get(self, key: str) -> str | None:
        """
        @return: The value of C{key}, unless it ended.
        """
        value, ends = self.keys.get(key, (None, None))
        if ends is not None and ends <= self.clock.seconds():
            del self.keys[key]
            return None
        return value

    def eval(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        Run C{TAKE} or C{GIVE_UP} as Redis would.
        """
        if self.down:
            return fail(StoreUnavailable("not connected to Redis"))
        key, owner = keys[0], str(args[0])
        holder = self.get(key)
        if script == GIVE_UP:
            if holder != owner:
                return succeed(0)
            del self.keys[key]
            return succeed(1)
        assert script == TAKE
        if holder is None or holder == owner:
            lasts = int(cast(int, args[1]))
            self.set(key, owner, lasts / 1000)
            return succeed([owner, lasts])
        ends = self.keys[key][1]
        return succeed([holder, -1 if ends is None else int((ends - self.clock.seconds()) * 1000)])

    def execute(self, *args: object) -> Deferred[Any]:
        """
        No other command is used.
        """
        raise NotImplementedError(args)


class LateRedis:
    """
    A L{LeaseRedis} whose replies are handled late: each after the next
    of C{lags} seconds (none after the last).
    """

    def __init__(self, clock: Clock, redis: LeaseRedis, lags: Sequence[float]) -> None:
        self.clock = clock
        self.redis = redis
        self.lags = list(lags)

    def eval(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        Run the script at once, and hand its reply on late.
        """
        late: Deferred[Any] = Deferred()
        lag = self.lags.pop(0) if self.lags else 0.0
        self.redis.eval(script, keys, args).addCallback(
            lambda reply: self.clock.callLater(lag, late.callback, reply)
        )
        return late


class HubLeaseTests(SynchronousTestCase):
    """
    Tests for L{HubLease}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.redis = LeaseRedis(self.clock)
        self.logged: list[LogEvent] = []
        self.log = Logger(namespace="store", observer=cast(ILogObserver, self.logged.append))

    def lease(self, owner: str = "this hub") -> HubLease:
        """
        @return: The lease of the hub C{owner} on L{KEY}.
        """
        return HubLease(
            self.clock, cast(IRedis, self.redis), KEY, "{h}:", lambda: "redis://r:6379/0", self.log, owner
        )

    def test_free(self) -> None:
        """
        A free lease is taken at once, for L{LEASE} seconds, and renewed
        every L{RENEW} seconds once started.
        """
        lease = self.lease()
        self.successResultOf(lease.acquire())
        self.assertTrue(lease.held)
        self.assertEqual(self.redis.keys[KEY], ("this hub", LEASE))
        lease.start()
        for ignored in range(10):
            self.clock.advance(RENEW)
        self.assertEqual(self.redis.keys[KEY], ("this hub", 10 * RENEW + LEASE))
        lease.stop()

    def test_killedHubWaitedOut(self) -> None:
        """
        A lease left by a hub killed without stopping (never renewed) is
        waited for, saying so once, and taken when it ends: the next hub
        starts within L{LEASE} seconds.
        """
        self.redis.set(KEY, "killed hub", LEASE - 4)
        lease = self.lease()
        acquired = lease.acquire()
        self.clock.pump([1.0] * 25)
        self.assertNoResult(acquired)
        self.assertFalse(lease.held)
        self.clock.advance(1.0)
        self.successResultOf(acquired)
        self.assertEqual(self.redis.get(KEY), "this hub")
        [waiting] = self.logged
        self.assertIn("killed hub", waiting["holder"])
        self.assertEqual(waiting["lasts"], LEASE - 4)

    def test_liveHubRefused(self) -> None:
        """
        A lease its hub renews is refused as soon as it is seen renewed,
        with a L{ConfigurationError} naming the other hub: two hubs on one
        Redis and prefix split the mirror between them, unnoticed.
        """
        self.redis.set(KEY, "live hub", LEASE - 3)
        lease = self.lease()
        acquired = lease.acquire()
        self.clock.pump([1.0] * 7)
        self.assertNoResult(acquired)
        # The other hub renews it.
        self.redis.set(KEY, "live hub", LEASE)
        self.clock.advance(1.0)
        error = self.failureResultOf(acquired, ConfigurationError).getErrorMessage()
        self.assertIn("another harbour hub (live hub) is running on Redis at redis://r:6379/0", error)
        self.assertIn("{h}:*", error)
        self.assertEqual(self.redis.get(KEY), "live hub")

    def test_lateReplyNoRenewal(self) -> None:
        """
        A lease nobody renews is waited out though a look's reply is
        handled late (a busy reactor): only the time it lasts, as Redis
        tells it, says whether it was renewed.
        """
        self.redis.set(KEY, "killed hub", 20.0)
        late = LateRedis(self.clock, self.redis, [0.0, 2.0])
        lease = HubLease(
            self.clock, cast(IRedis, late), KEY, "{h}:", lambda: "redis://r:6379/0", self.log, "this hub"
        )
        acquired = lease.acquire()
        self.clock.pump([0.5] * 50)
        self.successResultOf(acquired)
        self.assertEqual(self.redis.get(KEY), "this hub")

    def test_heldForeverRefused(self) -> None:
        """
        A lease set without an end (not by a hub) is refused at once.
        """
        self.redis.set(KEY, "someone", None)
        self.failureResultOf(self.lease().acquire(), ConfigurationError)

    def test_outageWhileAcquiring(self) -> None:
        """
        Redis unreachable while the lease is looked at is waited out.
        """
        self.redis.down = True
        lease = self.lease()
        acquired = lease.acquire()
        self.clock.pump([1.0] * 5)
        self.assertNoResult(acquired)
        self.redis.down = False
        self.clock.advance(1.0)
        self.successResultOf(acquired)

    def test_outageWhileRenewing(self) -> None:
        """
        A lease that ended while Redis was unreachable is taken again, if
        no other hub took it meanwhile: it is not lost.
        """
        lease = self.lease()
        self.successResultOf(lease.acquire())
        lease.start()
        lost = lease.when_lost()
        self.redis.down = True
        self.clock.pump([RENEW] * 5)
        self.assertIsNone(self.redis.get(KEY))
        self.redis.down = False
        self.clock.advance(RENEW)
        self.assertEqual(self.redis.get(KEY), "this hub")
        self.assertTrue(lease.held)
        self.assertNoResult(lost)
        lease.stop()

    def test_lost(self) -> None:
        """
        A lease another hub took (it ended while this one could not reach
        Redis) is lost at the next renewal: L{HubLease.when_lost} fails
        with a L{ConfigurationError} naming the other, and the renewals
        stop.
        """
        lease = self.lease()
        self.successResultOf(lease.acquire())
        lease.start()
        lost = lease.when_lost()
        self.redis.set(KEY, "other hub", LEASE)
        self.clock.advance(RENEW)
        self.assertIn(
            "another harbour hub (other hub)",
            self.failureResultOf(lost, ConfigurationError).getErrorMessage(),
        )
        self.assertFalse(lease.held)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_giveUp(self) -> None:
        """
        A hub gives its lease up as it stops, for the next to take it at
        once; never another's.
        """
        lease = self.lease()
        self.successResultOf(lease.acquire())
        lease.start()
        self.successResultOf(lease.give_up())
        self.assertIsNone(self.redis.get(KEY))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.redis.set(KEY, "other hub", LEASE)
        self.successResultOf(lease.give_up())
        self.assertEqual(self.redis.get(KEY), "other hub")


class ScriptTests(TestCase):
    """
    The lease's scripts on a real redis-server.
    """

    async def test_scripts(self) -> None:
        """
        C{TAKE} takes a free lease or renews one's own, and answers the
        holder and its time left otherwise; C{GIVE_UP} removes only one's
        own.
        """
        redis = await private_redis(self)
        key = redis.key("hub")
        self.assertEqual(await redis.eval(TAKE, [key], ["a", 30000]), ["a", 30000])
        self.assertEqual(await redis.eval(TAKE, [key], ["a", 30000]), ["a", 30000])
        holder, left = await redis.eval(TAKE, [key], ["b", 30000])
        self.assertEqual(holder, "a")
        self.assertTrue(25000 < int(left) <= 30000, left)
        self.assertEqual(await redis.eval(GIVE_UP, [key], ["b"]), 0)
        self.assertEqual(await redis.eval(GIVE_UP, [key], ["a"]), 1)
        self.assertEqual(await redis.eval(TAKE, [key], ["b", 30000]), ["b", 30000])


class HubStoreTests(TestCase):
    """
    Hub stores on one external Redis.
    """

    async def started(self, path: str, hub: bool, ready: bool = True) -> StoreService:
        """
        Start a store on the Redis at C{path} under the prefix C{{p}:}, its
        lease (if a hub) renewed every tenth of a second, stopped after the
        test.

        @param ready: Whether to wait until it is ready.
        """
        from twisted.internet import reactor

        store = StoreService.from_config(reactor, f"unix://{path}?db=0", short_directory(self), "p", hub=hub)
        if store.lease is not None:
            store.lease.renew_every = 0.1
            store.lease.look_every = 0.05
        store.startService()
        self.addCleanup(store.stopService)
        if ready:
            await store.when_ready()
        return store

    async def test_secondHubRefused(self) -> None:
        """
        A second hub on the same Redis and prefix refuses to start, naming
        the first, which Status shows holding the lease; a worker starts;
        once the first hub stopped, the next starts at once.
        """
        redis = await private_redis(self)
        assert redis.address is not None and redis.address.path is not None
        path = redis.address.path
        first = await self.started(path, hub=True)
        assert first.lease is not None
        self.assertEqual(first.status()["lease"], first.lease.owner)
        second = await self.started(path, hub=True, ready=False)
        with self.assertRaises(ConfigurationError) as caught:
            await second.when_ready()
        self.assertIn(f"another harbour hub ({first.lease.owner})", str(caught.exception))
        self.assertIsNone(second.status()["lease"])
        worker = await self.started(path, hub=False)
        self.assertIsNone(worker.lease)
        await first.stopService()
        third = await self.started(path, hub=True)
        assert third.lease is not None
        self.assertEqual(await redis.execute("GET", "{p}:hub"), third.lease.owner)
        self.flushLoggedErrors(ConfigurationError)

    async def test_killedHubWaitedOut(self) -> None:
        """
        A hub killed without stopping leaves its lease, which the next hub
        waits for, saying so, until it ends.
        """
        redis = await private_redis(self)
        assert redis.address is not None and redis.address.path is not None
        await redis.execute("SET", "{p}:hub", "host gone pid 1 run dead", "PX", "300")
        logged = capture_log(self)
        store = await self.started(redis.address.path, hub=True)
        assert store.lease is not None
        self.assertEqual(await redis.execute("GET", "{p}:hub"), store.lease.owner)
        self.assertEqual(len([line for line in logged if "host gone pid 1 run dead" in line]), 1)
