"""
Politeness: request starts to one host spaced by C{min_request_interval}
across every worker that shares a Redis.

A worker reserves the next start slot for a host before each request; the
reservation is atomic, so workers in several processes and hosts get
successive slots.  A request starts on its slot whether or not earlier ones
are still streaming.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.interfaces import ILimiter, IRedis

RESERVE = """
local key, now, interval = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', key) or '0')
if slot < now then slot = now end
-- %.17g: Lua's tostring keeps 14 digits, a tenth of a millisecond today.
local ttl = math.ceil((slot - now + interval) * 1000) + 60000
redis.call('SET', key, string.format('%.17g', slot + interval), 'PX', ttl)
return string.format('%.17g', slot - now)
"""


@implementer(ILimiter)
@attr.s(eq=False)
class RedisLimiter:
    """
    Start slots kept in Redis, under the store's prefix.
    """

    redis: IRedis = attr.ib()
    clock: IReactorTime = attr.ib()
    prefix: str = attr.ib(default="harbour:")

    @inlineCallbacks
    def reserve(self, host: str, interval: float) -> Generator[Deferred[Any], Any, float]:
        """
        See L{ILimiter.reserve}.
        """
        if interval <= 0:
            return 0.0
        wait = yield self.redis.eval(
            RESERVE, [self.prefix + "slot:" + host], [repr(self.clock.seconds()), repr(interval)]
        )
        return float(wait)


@implementer(ILimiter)
@attr.s(eq=False)
class MemoryLimiter:
    """
    Start slots kept in memory: for one process, and for tests.
    """

    clock: IReactorTime = attr.ib()
    _slots: dict[str, float] = attr.ib(factory=dict, init=False)

    def reserve(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.reserve}.
        """
        if interval <= 0:
            return succeed(0.0)  # no rule for this host: no wait, as in Redis
        now = self.clock.seconds()
        slot = max(now, self._slots.get(host, 0.0))
        self._slots[host] = slot + interval
        return succeed(slot - now)
