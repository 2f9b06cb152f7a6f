"""
Tests for L{harbour.store.politeness}: one suite for both limiters.

Time is a L{Clock} the limiter reads, never the wall clock, so every wait
is asserted exactly: a limiter that spaced requests by anything but the
interval, or that counted time the clock did not pass, fails.  The memory
limiter answers at once, so its suite runs synchronously; the Redis one
runs the same scenarios against a real redis-server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from harbour.interfaces import ILimiter
from harbour.store.politeness import MemoryLimiter, RedisLimiter, host_of
from harbour.test.helpers import private_redis

#: Where the clocks start: a present-day POSIX time, at which the interval
#: and every advance below are exact in binary floating point.
START = 1_700_000_000.0
#: The interval of most tests (exact in binary, as is every multiple used).
INTERVAL = 0.25

_Mixin = TypeVar("_Mixin", bound="LimiterBehaviourMixin")

if TYPE_CHECKING:
    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object


def scenario(
    body: Callable[[_Mixin], Coroutine[Deferred[Any], Any, None]],
) -> Callable[[_Mixin], Deferred[None] | None]:
    """
    Make a test of the coroutine C{body}, run as its test case says: to
    the end at once for a limiter that needs no reactor, or over the
    reactor for one that talks to Redis.
    """

    @functools.wraps(body)
    def test(self: _Mixin) -> Deferred[None] | None:
        return self.complete(body(self))

    return test


class LimiterBehaviourMixin(_MixinBase):
    """
    What every L{ILimiter} does.  Subclasses set C{self.limiter}, reading
    its time from C{self.clock} (at L{START}), and say how a scenario runs.
    """

    limiter: ILimiter
    clock: Clock

    def complete(self, body: Coroutine[Deferred[Any], Any, None]) -> Deferred[None] | None:
        """
        Run the scenario C{body} of a test.

        @return: What the test method returns to trial.
        """
        raise NotImplementedError()

    async def reserve(self, host: str = "oasis", interval: float = INTERVAL) -> float:
        """
        Reserve a slot with C{self.limiter}, checking the answer's type.

        @return: The seconds to wait.
        """
        wait = await self.limiter.reserve(host, interval)
        self.assertIsInstance(wait, float)
        return wait

    def test_interface(self) -> None:
        """
        It provides L{ILimiter}.
        """
        verifyObject(ILimiter, self.limiter)

    @scenario
    async def test_backToBack(self) -> None:
        """
        Reservations one after another, with no time passing, wait 0, one
        interval, two intervals, three intervals.
        """
        waits = [await self.reserve() for i in range(4)]
        self.assertEqual(waits, [0.0, INTERVAL, 2 * INTERVAL, 3 * INTERVAL])

    @scenario
    async def test_together(self) -> None:
        """
        Reservations made together get slots one interval apart, each slot
        once.
        """
        waits = await gatherResults([Deferred.fromCoroutine(self.reserve()) for i in range(4)])
        self.assertEqual(sorted(waits), [0.0, INTERVAL, 2 * INTERVAL, 3 * INTERVAL])

    @scenario
    async def test_waitsShrinkAsTimePasses(self) -> None:
        """
        The clock passing counts towards the slots already reserved: after
        three back-to-back slots, the next is three intervals away at first,
        and as much less as the clock has advanced.
        """
        for ignored in range(3):
            await self.reserve()
        self.clock.advance(0.5)
        first = await self.reserve()
        self.clock.advance(0.125)
        second = await self.reserve()
        self.assertEqual((first, second), (3 * INTERVAL - 0.5, 4 * INTERVAL - 0.625))

    @scenario
    async def test_slotReached(self) -> None:
        """
        Once the clock reaches the next slot, a request starts at once, and
        the one after waits a whole interval again.
        """
        await self.reserve()
        self.clock.advance(INTERVAL)
        waits = [await self.reserve(), await self.reserve()]
        self.assertEqual(waits, [0.0, INTERVAL])

    @scenario
    async def test_idleHostStartsNow(self) -> None:
        """
        After a quiet spell the next request starts at once: unused slots
        are not saved up for a burst.
        """
        await self.reserve()
        self.clock.advance(60)
        waits = [await self.reserve(), await self.reserve(), await self.reserve()]
        self.assertEqual(waits, [0.0, INTERVAL, 2 * INTERVAL])

    @scenario
    async def test_hostsIndependent(self) -> None:
        """
        Each host has its own slots.
        """
        await self.reserve("a")
        await self.reserve("a")
        waits = [await self.reserve("b"), await self.reserve("a")]
        self.assertEqual(waits, [0.0, 2 * INTERVAL])

    @scenario
    async def test_intervalOfEachReservation(self) -> None:
        """
        Each reservation keeps the host busy for its own interval.
        """
        waits = [
            await self.reserve(interval=5.0),
            await self.reserve(interval=1.0),
            await self.reserve(interval=1.0),
        ]
        self.assertEqual(waits, [0.0, 5.0, 6.0])

    @scenario
    async def test_zeroIntervalAfterSlots(self) -> None:
        """
        An interval of 0 (no politeness, as C{min_request_interval = 0}
        configures) starts a request at once, even while slots reserved
        under an earlier interval are pending.
        """
        await self.reserve(interval=5.0)
        wait = await self.reserve(interval=0.0)
        self.assertEqual(wait, 0.0)

    @scenario
    async def test_holdDelaysReservations(self) -> None:
        """
        Slots reserved while the host is held come after the hold, one
        interval apart.
        """
        await self.limiter.hold("oasis", 5.0)
        self.clock.advance(1.0)
        waits = [await self.reserve(), await self.reserve()]
        self.assertEqual(waits, [4.0, 4.0 + INTERVAL])

    @scenario
    async def test_confirmedWhenNotHeld(self) -> None:
        """
        A slot whose time has come, with no hold begun since it was
        reserved, is confirmed: start now, nothing more reserved.
        """
        await self.reserve()
        await self.reserve()
        self.clock.advance(INTERVAL)
        self.assertEqual(await self.limiter.confirm("oasis", INTERVAL), 0.0)
        self.assertEqual(await self.reserve(), INTERVAL)

    @scenario
    async def test_heldSlotsReservedAgain(self) -> None:
        """
        Slots reserved before a hold began are not confirmed while it
        lasts: each is given a new slot after it, one interval apart; once
        the hold is over, they are.
        """
        for ignored in range(3):
            await self.reserve()
        await self.limiter.hold("oasis", 5.0)
        self.clock.advance(INTERVAL)
        waits = [await self.limiter.confirm("oasis", INTERVAL), await self.limiter.confirm("oasis", INTERVAL)]
        self.assertEqual(waits, [5.0 - INTERVAL, 5.0])
        self.clock.advance(5.0)
        self.assertEqual(await self.limiter.confirm("oasis", INTERVAL), 0.0)

    @scenario
    async def test_holdWithoutRule(self) -> None:
        """
        With no rule (an interval of 0), a confirmation waits for a hold
        to end, and only for that: slots reserved under an earlier
        interval are not waited for, and none is reserved.
        """
        await self.reserve(interval=5.0)
        await self.reserve(interval=5.0)
        self.assertEqual(await self.limiter.confirm("oasis", 0.0), 0.0)
        await self.limiter.hold("oasis", 2.0)
        self.clock.advance(0.5)
        waits = [await self.limiter.confirm("oasis", 0.0), await self.limiter.confirm("oasis", 0.0)]
        self.assertEqual(waits, [1.5, 1.5])
        self.assertEqual(await self.reserve(interval=5.0), 9.5)
        self.clock.advance(1.5)
        self.assertEqual(await self.limiter.confirm("oasis", 0.0), 0.0)

    @scenario
    async def test_shorterHoldChangesNothing(self) -> None:
        """
        A hold that ends sooner than the one in force does not shorten it.
        """
        await self.limiter.hold("oasis", 5.0)
        await self.limiter.hold("oasis", 1.0)
        self.assertEqual(await self.reserve(), 5.0)

    @scenario
    async def test_holdOfItsHost(self) -> None:
        """
        A hold keeps back its own host only.
        """
        await self.limiter.hold("a", 5.0)
        await self.reserve("b")
        self.clock.advance(INTERVAL)
        self.assertEqual(await self.limiter.confirm("b", INTERVAL), 0.0)
        self.assertEqual(await self.reserve("b"), 0.0)

    @scenario
    async def test_presentDayClock(self) -> None:
        """
        At a present-day clock reading with a fraction of a millisecond,
        successive slots are one interval apart to within a microsecond
        (binary floating point near 1.7e9 is exact to about 0.24 us).
        """
        self.clock.advance(0.123456)
        waits = [await self.reserve(interval=0.2) for i in range(4)]
        self.assertEqual(waits[0], 0.0)
        spacing = [later - earlier for earlier, later in zip(waits, waits[1:])]
        self.assertEqual([abs(s - 0.2) < 1e-6 for s in spacing], [True] * 3, spacing)


class HostOfTests(SynchronousTestCase):
    """
    L{host_of} names a URL's server one way, however the URL spells it.
    """

    def test_spellings(self) -> None:
        """
        The name is lower-cased, the scheme's port written out where the
        URL names none, an IPv6 address kept in brackets, and credentials
        dropped.
        """
        cases = {
            "https://oasis.caiso.com/oasisapi/SingleZip?queryname=PRC_LMP": "oasis.caiso.com:443",
            "https://OASIS.caiso.com:443/oasisapi": "oasis.caiso.com:443",
            "http://Oasis.Caiso.com": "oasis.caiso.com:80",
            "http://oasis.caiso.com:8080/a": "oasis.caiso.com:8080",
            "http://[::1]:8080/a": "[::1]:8080",
            "HTTP://[FE80::1]/a": "[fe80::1]:80",
            "http://user:secret@mirror.test:81/a": "mirror.test:81",
        }
        self.assertEqual({url: host_of(url) for url in cases}, cases)

    def test_malformed(self) -> None:
        """
        A port that is no number, or an IPv6 address never closed, raises
        nothing: it is kept as written (the request fails on its own).
        """
        self.assertEqual(
            [host_of(url) for url in ("http://h:port/a", "http://H:99999/a", "http://[::1/a")],
            ["h:port", "h:99999", "[::1"],
        )


class MemoryLimiterTests(LimiterBehaviourMixin, SynchronousTestCase):
    """
    The suite against L{MemoryLimiter}, which answers synchronously.
    """

    def setUp(self) -> None:
        """
        A memory limiter reading C{self.clock}.
        """
        self.clock = Clock()
        self.clock.advance(START)
        self.limiter = MemoryLimiter(self.clock)

    def complete(self, body: Coroutine[Deferred[Any], Any, None]) -> None:
        """
        Run C{body} to its end now: it must not wait for anything.
        """
        self.successResultOf(body)

    def test_zeroIntervalAfterSlots(self) -> Deferred[None] | None:
        """
        See L{LimiterBehaviourMixin.test_zeroIntervalAfterSlots}.
        """
        return super().test_zeroIntervalAfterSlots()


class RedisLimiterTests(LimiterBehaviourMixin, TestCase):
    """
    The suite against L{RedisLimiter} on a private redis-server; two
    limiter objects (two workers) share its slots.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A Redis limiter on a private redis-server, reading C{self.clock}.
        """
        self.clock = Clock()
        self.clock.advance(START)
        self.redis = redis = await private_redis(self)
        self.limiter = RedisLimiter(redis, self.clock, redis.prefix)

    def complete(self, body: Coroutine[Deferred[Any], Any, None]) -> Deferred[None]:
        """
        Run C{body} over the reactor: Redis answers over a socket.
        """
        return Deferred.fromCoroutine(body)

    @scenario
    async def test_sharedBetweenWorkers(self) -> None:
        """
        Two workers' limiters on one Redis share the host's slots, reading
        the time from their own clocks (here the same one).
        """
        other = RedisLimiter(self.redis, self.clock, self.redis.prefix)
        waits = [await self.reserve(), await other.reserve("oasis", INTERVAL), await self.reserve()]
        self.clock.advance(0.125)
        waits.append(await other.reserve("oasis", INTERVAL))
        self.assertEqual(waits, [0.0, INTERVAL, 2 * INTERVAL, 3 * INTERVAL - 0.125])

    @scenario
    async def test_holdSharedBetweenWorkers(self) -> None:
        """
        A hold made by one worker's limiter keeps back the slot another's
        reserved before it.
        """
        other = RedisLimiter(self.redis, self.clock, self.redis.prefix)
        await self.reserve()
        self.assertEqual(await other.reserve("oasis", INTERVAL), INTERVAL)
        await self.limiter.hold("oasis", 5.0)
        self.clock.advance(INTERVAL)
        self.assertEqual(await other.confirm("oasis", INTERVAL), 5.0 - INTERVAL)

    @scenario
    async def test_prefix(self) -> None:
        """
        Limiters under different prefixes (two harbours on one Redis) keep
        separate slots.
        """
        other = RedisLimiter(self.redis, self.clock, self.redis.prefix + "other:")
        waits = [await self.reserve(), await other.reserve("oasis", INTERVAL)]
        self.assertEqual(waits, [0.0, 0.0])

    def test_presentDayClock(self) -> Deferred[None] | None:
        """
        See L{LimiterBehaviourMixin.test_presentDayClock}.
        """
        return super().test_presentDayClock()


class RedisTimeLimiterTests(TestCase):
    """
    L{RedisLimiter} on Redis's clock: the caller's clock is not read, so
    workers on hosts whose clocks disagree still get slots an interval
    apart.
    """

    async def test_slotsOnRedisTime(self) -> None:
        """
        Two limiters whose callers' clocks are an hour apart reserve slots
        one interval apart on Redis's clock: the second waits the interval
        less what Redis saw pass between the two.
        """
        redis = await private_redis(self)
        early, late = Clock(), Clock()
        late.advance(3600)
        first = RedisLimiter(redis, early, redis.prefix, server_time=True)
        second = RedisLimiter(redis, late, redis.prefix, server_time=True)
        before = await redis.execute("TIME")
        self.assertEqual(await first.reserve("oasis", 100.0), 0.0)
        wait = await second.reserve("oasis", 100.0)
        after = await redis.execute("TIME")
        passed = (int(after[0]) - int(before[0])) + (int(after[1]) - int(before[1])) / 1_000_000
        self.assertTrue(100.0 - passed <= wait <= 100.0, (wait, passed))
