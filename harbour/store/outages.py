"""
A store's outages: a command that fails (no connection, an error reply, no
reply in time) begins one, logged once and counted however many commands
fail meanwhile.  It is over once Redis has answered and nothing has failed
for L{QUIET} seconds, logged with how long it lasted (until the first
answer after its last failure).  Those who wait an outage out try again
with the same backoff (L{STORE_RETRY}, L{next_retry}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import attr
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from harbour.errors import StoreUnavailable

_T = TypeVar("_T")

#: Backoff between tries of a store call during an outage: from the
#: first, doubling (L{next_retry}) up to the second.
STORE_RETRY = (0.05, 5.0)


#: How long, in seconds, Redis must go without a failure for an outage to be
#: over: a Redis that refuses only writes (C{OOM}, C{MISCONF}, C{READONLY})
#: answers the reads in between, which are no end of it.  The longest
#: backoff, so that whoever waits the outage out has tried again meanwhile.
QUIET = STORE_RETRY[1]


def next_retry(delay: float) -> float:
    """
    @return: The backoff after one of C{delay} during a store outage.
    """
    return min(STORE_RETRY[1], delay * 2)


@attr.s(eq=False)
class Outages:
    """
    Keeps track of the outages of one store.

    @ivar reactor: Times the outages.
    @ivar where: Describes the store's Redis, for the log.
    @ivar log: Where outages are logged: the store's own log.
    @ivar quiet: How long Redis must go without a failure for an outage to
        be over (L{QUIET}).
    @ivar issued: Commands issued so far: only a reply to a command issued
        after the last failure counts as an answer (older ones may still
        succeed).
    @ivar count: Outages so far.
    @ivar last_error: The last failure's message.
    @ivar since: When (on the reactor's clock) the outage under way began,
        or L{None}.
    """

    reactor: IReactorTime = attr.ib()
    where: Callable[[], str] = attr.ib()
    log: Logger = attr.ib()
    quiet: float = attr.ib(default=QUIET)
    issued: int = attr.ib(default=0, init=False)
    count: int = attr.ib(default=0, init=False)
    last_error: str = attr.ib(default="", init=False)
    since: float | None = attr.ib(default=None, init=False)
    # The last failure: when, and the last command issued by then.
    _failed_at: float = attr.ib(default=0.0, init=False)
    _failed_after: int = attr.ib(default=0, init=False)
    # When Redis first answered since the last failure, or None.
    _answered_at: float | None = attr.ib(default=None, init=False)

    def issue(self) -> int:
        """
        Note a command about to be sent.

        @return: Its number, for L{answered}.
        """
        self.issued += 1
        return self.issued

    def answered(self, reply: _T, issued: int) -> _T:
        """
        Command number C{issued} was answered: the outage under way, if
        any, is over if the command was issued after its last failure and
        nothing has failed for L{quiet} seconds.

        @return: C{reply}.
        """
        if self.since is None or issued <= self._failed_after:
            return reply
        now = self.reactor.seconds()
        if self._answered_at is None:
            self._answered_at = now
        if now - self._failed_at >= self.quiet:
            self.log.info(
                "store outage over after {seconds:.1f} s: Redis at {address} answers again",
                seconds=self._answered_at - self.since,
                address=self.where(),
                service="store",
            )
            self.since = self._answered_at = None
        return reply

    def failed(self, message: str) -> StoreUnavailable:
        """
        Note a failure: the first of an outage is logged and counted, later
        ones (before it is over) only remembered.

        @return: The error to fail the command with.
        """
        now = self.reactor.seconds()
        self.last_error = message
        self._failed_at, self._failed_after, self._answered_at = now, self.issued, None
        if self.since is None:
            self.since = now
            self.count += 1
            self.log.warn("store outage: {error} (retrying until it answers)", error=message, service="store")
        return StoreUnavailable(message)
