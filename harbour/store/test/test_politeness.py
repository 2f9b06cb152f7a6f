"""
Tests for L{harbour.store.politeness}: one suite for both limiters.
"""

from __future__ import annotations

from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from harbour.interfaces import ILimiter
from harbour.store.politeness import MemoryLimiter, RedisLimiter
from harbour.test.helpers import private_redis


class LimiterBehaviourMixin:
    """
    What every L{ILimiter} does.
    """

    limiter: ILimiter
    clock: Clock

    async def test_interface(self) -> None:
        """
        It provides L{ILimiter}.
        """
        verifyObject(ILimiter, self.limiter)

    async def test_successiveSlots(self) -> None:
        """
        Reservations made together get slots one interval apart.
        """
        waits = await gatherResults([self.limiter.reserve("oasis", 5.0) for i in range(4)])
        self.assertEqual(sorted(waits), [0.0, 5.0, 10.0, 15.0])

    async def test_idleHostStartsNow(self) -> None:
        """
        After a quiet spell the next request starts at once.
        """
        await self.limiter.reserve("oasis", 5.0)
        self.clock.advance(60)
        self.assertEqual(await self.limiter.reserve("oasis", 5.0), 0.0)

    async def test_hostsIndependent(self) -> None:
        """
        Each host has its own slots.
        """
        await self.limiter.reserve("a", 5.0)
        self.assertEqual(await self.limiter.reserve("b", 5.0), 0.0)

    async def test_partlyElapsed(self) -> None:
        """
        Time already passed counts towards the interval.
        """
        await self.limiter.reserve("oasis", 5.0)
        self.clock.advance(2)
        self.assertEqual(await self.limiter.reserve("oasis", 5.0), 3.0)


class MemoryLimiterTests(LimiterBehaviourMixin, TestCase):
    """
    The suite against L{MemoryLimiter}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.limiter = MemoryLimiter(self.clock)


class RedisLimiterTests(LimiterBehaviourMixin, TestCase):
    """
    The suite against L{RedisLimiter} on a private redis-server; two
    limiter objects (two workers) share its slots.
    """

    async def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.redis = redis = await private_redis(self)
        self.limiter = RedisLimiter(redis, self.clock, redis.prefix)

    async def test_sharedBetweenWorkers(self) -> None:
        """
        Two workers' limiters on one Redis share the host's slots.
        """
        other = RedisLimiter(self.redis, self.clock, self.redis.prefix)
        waits = [await self.limiter.reserve("oasis", 5.0), await other.reserve("oasis", 5.0)]
        self.assertEqual(waits, [0.0, 5.0])
