"""
A hub's lease on its keys: one hub for each Redis and prefix.

Two hubs on one external Redis under one C{--prefix} would each plan the
work, sweep, revise and keep the views of the same tasks, each with its own
configuration and data directory: the mirror split between them, and
nothing said so.  So a hub holds the key C{<prefix>hub}, naming itself,
for L{LEASE} seconds, renewed every L{RENEW} seconds and given up as it
stops.

A hub that finds the lease held by another as it starts waits to see
whether that one is alive: a live hub renews it within L{RENEW} seconds,
and the new one then refuses to start (a L{ConfigurationError} naming the
other); a hub killed without stopping (C{kill -9}, a crash, its host lost)
renews nothing, and its lease ends within L{LEASE} seconds, when the new
one takes it.  A hub that finds, renewing, that another holds its lease
(taken while this one could not reach Redis for longer than L{LEASE}) has
lost it, and stops.

Workers take no lease: they are meant to share a hub's keys.  Nor does a
hub on an embedded Redis: its data directory's lock keeps any other out.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Generator
from contextlib import suppress
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis

#: How long, in seconds, a lease lasts unless renewed.
LEASE = 30.0

#: How often, in seconds, a hub renews its lease.
RENEW = 10.0

#: How often, in seconds, a starting hub looks again at a lease another
#: holds.
LOOK = 1.0

#: Takes the lease (C{KEYS[1]}) for C{ARGV[1]}, for C{ARGV[2]} ms, if it is
#: free or C{ARGV[1]}'s already; answers its holder and how many ms it
#: lasts yet (-1: for ever).
TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], tonumber(ARGV[2])}
end
return {holder, redis.call('PTTL', KEYS[1])}
"""

#: Gives the lease (C{KEYS[1]}) up if C{ARGV[1]} holds it.
GIVE_UP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def this_hub() -> str:
    """
    @return: A name for this process, as the holder of a lease: its host,
        its pid, and a word of its own (a restarted hub may have the same
        pid, as in a container).
    """
    return f"host {socket.gethostname()} pid {os.getpid()} run {secrets.token_hex(4)}"


@attr.s(eq=False)
class HubLease:
    """
    The lease of one hub on its Redis and prefix.

    @ivar reactor: Times the lease.
    @ivar redis: Where the lease is kept: the hub's store.
    @ivar key: The lease's key (C{<prefix>hub}).
    @ivar prefix: The prefix, for messages.
    @ivar where: Describes the store's Redis, for messages.
    @ivar log: Where the lease's warnings go: the store's own log.
    @ivar owner: How this hub names itself in the lease.
    @ivar lease: How long, in seconds, the lease lasts unless renewed
        (L{LEASE}).
    @ivar renew_every: How often, in seconds, it is renewed (L{RENEW}).
    @ivar look_every: How often, in seconds, a lease another holds is
        looked at again while starting (L{LOOK}).
    @ivar held: Whether this hub holds the lease (as last renewed).
    """

    reactor: IReactorTime = attr.ib()
    redis: IRedis = attr.ib()
    key: str = attr.ib()
    prefix: str = attr.ib()
    where: Callable[[], str] = attr.ib()
    log: Logger = attr.ib()
    owner: str = attr.ib(factory=this_hub)
    lease: float = attr.ib(default=LEASE, kw_only=True)
    renew_every: float = attr.ib(default=RENEW, kw_only=True)
    look_every: float = attr.ib(default=LOOK, kw_only=True)
    held: bool = attr.ib(default=False, init=False)
    _renewing: LoopingCall | None = attr.ib(default=None, init=False)
    _lost: list[Deferred[None]] = attr.ib(factory=list, init=False)

    def _take(self) -> Deferred[list[Any]]:
        """
        @return: A L{Deferred} firing with the lease's holder (this hub if
            it was free or its own) and how many seconds it lasts yet
            (negative: for ever).
        """
        d = self.redis.eval(TAKE, [self.key], [self.owner, int(self.lease * 1000)])
        return d.addCallback(lambda reply: [reply[0], int(reply[1]) / 1000])

    def _refusal(self, holder: str) -> ConfigurationError:
        return ConfigurationError(
            f"another harbour hub ({holder}) is running on Redis at {self.where()} with the keys "
            f"{self.prefix}*: two hubs would split the mirror between them. Stop it, or give this "
            f"one another --prefix (its own keys)"
        )

    @inlineCallbacks
    def acquire(self) -> Generator[Deferred[Any], Any, None]:
        """
        Take the lease: at once if it is free; once it ends if another hub
        holds it and does not renew it (one killed without stopping).

        @raise ConfigurationError: if another hub renews it meanwhile, or
            holds it for ever.
        """
        # The other hub, and how long its lease lasted at the last look:
        # renewed, it lasts longer than then; not renewed, it lasts less.
        # (No clock of this host's: a reply handled late would make a
        # lease nobody renews look renewed.)
        seen: tuple[str, float] | None = None
        while True:
            try:
                holder, lasts = yield self._take()
            except StoreUnavailable:
                # An outage, logged by the store: look again later.
                yield deferLater(self.reactor, self.look_every)
                continue
            if holder == self.owner:
                self.held = True
                return
            if lasts < 0:
                raise self._refusal(holder)
            if seen is None or seen[0] != holder:
                self.log.warn(
                    "Redis at {address} holds the lease of another harbour hub ({holder}) on the keys "
                    "{prefix}* for {lasts:.0f} s more: waiting to see whether that hub is alive "
                    "(one killed without stopping leaves its lease until it ends)",
                    address=self.where(),
                    holder=holder,
                    prefix=self.prefix,
                    lasts=lasts,
                    service="store",
                )
            elif lasts > seen[1]:
                raise self._refusal(holder)
            seen = (holder, lasts)
            yield deferLater(self.reactor, min(self.look_every, lasts))

    def start(self) -> None:
        """
        Renew the lease every L{renew_every} seconds.
        """
        self._renewing = LoopingCall(self._renew)
        self._renewing.clock = self.reactor
        self._renewing.start(self.renew_every, now=False)

    @inlineCallbacks
    def _renew(self) -> Generator[Deferred[Any], Any, None]:
        try:
            holder, ignored = yield self._take()
        except StoreUnavailable:
            # An outage, logged by the store: the next renewal may come
            # after the lease ended, and take it again if it is free.
            return
        if holder == self.owner:
            return
        self.held = False
        self.stop()
        lost, self._lost = self._lost, []
        for d in lost:
            d.errback(self._refusal(holder))

    def when_lost(self) -> Deferred[None]:
        """
        @return: A L{Deferred} failing with a L{ConfigurationError} if
            another hub takes the lease; it never fires otherwise.
        """
        d: Deferred[None] = Deferred()
        self._lost.append(d)
        return d

    def stop(self) -> None:
        """
        Stop renewing the lease.
        """
        if self._renewing is not None and self._renewing.running:
            self._renewing.stop()

    @inlineCallbacks
    def give_up(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop renewing the lease, and give it up if this hub holds it, so
        that the next hub need not wait for it to end.  Redis unreachable,
        the lease ends by itself within L{lease} seconds.
        """
        self.stop()
        if not self.held:
            return
        self.held = False
        with suppress(StoreUnavailable):
            yield self.redis.eval(GIVE_UP, [self.key], [self.owner])
