"""
Politeness: request starts to one host spaced by C{min_request_interval}
across every worker that shares a Redis.

A worker reserves the next start slot for a host before each request; the
reservation is atomic, so workers in several processes and hosts get
successive slots.  A request starts on its slot whether or not earlier ones
are still streaming.  Slots are times on Redis's clock (C{TIME}, read in
the script), so the hosts need not agree on theirs: each is told only how
long to wait.

A throttle (HTTP 429) holds the host back for its wait: the hold is kept
beside the slots, so slots reserved during it come after it, and a worker
whose slot, reserved before it, comes round while it lasts is told to wait
for a new slot after it (L{ILimiter.confirm}): the slots already handed out
do not let requests through the throttle.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import attr
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.interfaces import ILimiter, IRedis
from harbour.store.scripts import clock_argument, follows_redis_time

#: The port of each scheme where a URL names none.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_of(url: str) -> str:
    """
    @return: The host C{url} asks, as its politeness slots and holds are
        kept: its name lower-cased and its port, the scheme's where it
        names none (C{oasis.caiso.com:443}), an IPv6 address in brackets;
        so every spelling of one server shares its slots.  A port that is
        no number, or a host that is no host, is kept as written: the
        request fails on its own.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1/": an IPv6 address never closed
        return url.partition("://")[2].partition("/")[0].lower()
    name = parts.hostname or ""
    if ":" in name:
        name = f"[{name}]"
    try:
        port = parts.port
    except ValueError:
        return f"{name}:{parts.netloc.rpartition(':')[2]}"
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower())
    return name if port is None else f"{name}:{port}"


#: Reads the time the scripts go by into C{now}: C{ARGV[1]}, or Redis's
#: clock if that is empty (see L{clock_argument}).
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
"""

#: Reserve the next slot (KEYS: the slot's key, the hold's); with ARGV[3]
#: set, only if the host is held (a confirmation), else answer 0.  With
#: no rule (an interval of 0, only confirmed), answer the hold's end and
#: reserve nothing.
RESERVE = (
    _NOW
    + """
local key, held, interval = KEYS[1], KEYS[2], tonumber(ARGV[2])
local hold = tonumber(redis.call('GET', held) or '0')
if ARGV[3] == '1' and hold <= now then return '0' end
if interval <= 0 then return string.format('%.17g', hold - now) end
local slot = tonumber(redis.call('GET', key) or '0')
if slot < now then slot = now end
if slot < hold then slot = hold end
-- %.17g: Lua's tostring keeps 14 digits, a tenth of a millisecond today.
local ttl = math.ceil((slot - now + interval) * 1000) + 60000
redis.call('SET', key, string.format('%.17g', slot + interval), 'PX', ttl)
return string.format('%.17g', slot - now)
"""
)

#: Hold a host back (KEYS: the hold's key) for ARGV[2] seconds, unless a
#: hold in force ends later.
HOLD = (
    _NOW
    + """
local key, seconds = KEYS[1], tonumber(ARGV[2])
local hold = tonumber(redis.call('GET', key) or '0')
if now + seconds > hold then
  local ttl = math.ceil(seconds * 1000) + 60000
  redis.call('SET', key, string.format('%.17g', now + seconds), 'PX', ttl)
end
return 1
"""
)


@implementer(ILimiter)
@attr.s(eq=False)
class RedisLimiter:
    """
    Start slots kept in Redis, under the store's prefix (C{P slot:<host>}),
    and holds beside them (C{P hold:<host>}).

    @ivar server_time: Whether slots are on Redis's clock rather than
        C{clock}'s: by default, unless C{clock} is a test's L{Clock}.
    """

    redis: IRedis = attr.ib()
    clock: IReactorTime = attr.ib()
    prefix: str = attr.ib(default="{harbour}:")
    server_time: bool = attr.ib(
        default=attr.Factory(lambda self: follows_redis_time(self.clock), takes_self=True), kw_only=True
    )

    def reserve(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.reserve}.
        """
        return self._reserve(host, interval, confirming=False)

    def confirm(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.confirm}.
        """
        return self._reserve(host, interval, confirming=True)

    @inlineCallbacks
    def _reserve(self, host: str, interval: float, confirming: bool) -> Generator[Deferred[Any], Any, float]:
        if interval <= 0 and not confirming:
            return 0.0
        keys = [self.prefix + "slot:" + host, self.prefix + "hold:" + host]
        wait = yield self.redis.eval(RESERVE, keys, [self._now(), repr(interval), "1" if confirming else ""])
        return float(wait)

    @inlineCallbacks
    def hold(self, host: str, seconds: float) -> Generator[Deferred[Any], Any, None]:
        """
        See L{ILimiter.hold}.
        """
        yield self.redis.eval(HOLD, [self.prefix + "hold:" + host], [self._now(), repr(seconds)])

    def _now(self) -> str:
        """
        @return: The time the scripts are to use (see L{clock_argument}).
        """
        return clock_argument(None if self.server_time else self.clock.seconds())


@implementer(ILimiter)
@attr.s(eq=False)
class MemoryLimiter:
    """
    Start slots and holds kept in memory: for one process, and for tests.
    """

    clock: IReactorTime = attr.ib()
    _slots: dict[str, float] = attr.ib(factory=dict, init=False)
    _holds: dict[str, float] = attr.ib(factory=dict, init=False)

    def reserve(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.reserve}.
        """
        if interval <= 0:
            return succeed(0.0)  # no rule for this host: no wait, as in Redis
        now = self.clock.seconds()
        slot = max(now, self._slots.get(host, 0.0), self._holds.get(host, 0.0))
        self._slots[host] = slot + interval
        return succeed(slot - now)

    def confirm(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.confirm}.
        """
        hold, now = self._holds.get(host, 0.0), self.clock.seconds()
        if hold <= now:
            return succeed(0.0)
        if interval <= 0:
            return succeed(hold - now)  # no rule: only the hold to wait for
        return self.reserve(host, interval)

    def hold(self, host: str, seconds: float) -> Deferred[None]:
        """
        See L{ILimiter.hold}.
        """
        self._holds[host] = max(self._holds.get(host, 0.0), self.clock.seconds() + seconds)
        return succeed(None)
