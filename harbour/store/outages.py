"""
A store's outages: a command that fails (no connection, an error reply, no
reply in time) begins one, logged once and counted however many commands
fail meanwhile; a reply to a command issued after it began ends it, logged
with how long it lasted.  Those who wait an outage out try again with the
same backoff (L{STORE_RETRY}, L{next_retry}).
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
    @ivar issued: Commands issued so far: a reply ends an outage only if its
        command was issued after the outage began (older ones may still
        succeed).
    @ivar count: Outages so far.
    @ivar last_error: The last failure's message.
    @ivar since: When (on the reactor's clock) the outage under way began,
        or L{None}.
    """

    reactor: IReactorTime = attr.ib()
    where: Callable[[], str] = attr.ib()
    log: Logger = attr.ib()
    issued: int = attr.ib(default=0, init=False)
    count: int = attr.ib(default=0, init=False)
    last_error: str = attr.ib(default="", init=False)
    since: float | None = attr.ib(default=None, init=False)
    _from: int | None = attr.ib(default=None, init=False)

    def issue(self) -> int:
        """
        Note a command about to be sent.

        @return: Its number, for L{answered}.
        """
        self.issued += 1
        return self.issued

    def answered(self, reply: _T, issued: int) -> _T:
        """
        Command number C{issued} was answered: the outage, if one is under
        way and began before the command was issued, is over.

        @return: C{reply}.
        """
        if self._from is not None and issued > self._from:
            self.log.info(
                "store outage over after {seconds:.1f} s: Redis at {address} answers again",
                seconds=self.reactor.seconds() - (self.since or 0.0),
                address=self.where(),
                service="store",
            )
            self._from = self.since = None
        return reply

    def failed(self, message: str) -> StoreUnavailable:
        """
        Note a failed command: the first failure of an outage is logged and
        counted, later ones only remembered.

        @return: The error to fail the command with.
        """
        self.last_error = message
        if self._from is None:
            self._from = self.issued
            self.since = self.reactor.seconds()
            self.count += 1
            self.log.warn("store outage: {error} (retrying until it answers)", error=message, service="store")
        return StoreUnavailable(message)
