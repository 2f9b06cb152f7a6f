"""
Politeness: request starts to one host spaced by C{min_request_interval}
across every worker that shares a Redis.

A worker reserves the next start slot for a host before each request; the
reservation is atomic, so workers in several processes and hosts get
successive slots.  A request starts on its slot whether or not earlier ones
are still streaming.  Slots are times on Redis's clock (C{TIME}, read in
the script), so the hosts need not agree on theirs: each is told only how
long to wait.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.interfaces import ILimiter, IRedis
from harbour.store.scripts import clock_argument, follows_redis_time

RESERVE = """
local key, now, interval = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
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
    Start slots kept in Redis, under the store's prefix (C{P slot:<host>}).

    @ivar server_time: Whether slots are on Redis's clock rather than
        C{clock}'s: by default, unless C{clock} is a test's L{Clock}.
    """

    redis: IRedis = attr.ib()
    clock: IReactorTime = attr.ib()
    prefix: str = attr.ib(default="{harbour}:")
    server_time: bool = attr.ib(
        default=attr.Factory(lambda self: follows_redis_time(self.clock), takes_self=True), kw_only=True
    )

    @inlineCallbacks
    def reserve(self, host: str, interval: float) -> Generator[Deferred[Any], Any, float]:
        """
        See L{ILimiter.reserve}.
        """
        if interval <= 0:
            return 0.0
        now = clock_argument(None if self.server_time else self.clock.seconds())
        wait = yield self.redis.eval(RESERVE, [self.prefix + "slot:" + host], [now, repr(interval)])
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
