"""
Admission of a listener's connections while they wait for what makes them
of use (a control connection for its token, an HTTP connection for a
complete request): at most so many wait at once, in all and of one host,
and a new one closes the oldest of them; what is refused is logged at most
once a minute per peer.  Only strangers come near the limits: a client
sends what is waited for as soon as it is connected.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import attr
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

#: Seconds a waiting connection is safe from being closed to make room:
#: the connections of one accept are made before any of them is read, and
#: a client's request, sent at once, must have a turn to be read.  Short,
#: since while every place is newer than this a new connection is refused:
#: a flood of one host's connections keeps out another of that host's
#: clients either way, and the longer this is, the slower the flood may
#: be.  (On a UNIX socket, a host is a user.)
EVICTION_GRACE = 0.1

#: Seconds between two log lines about one peer's refusals: a stranger
#: hammering a port must not flood the log.
REFUSAL_LOG_INTERVAL = 60.0


class Closable(Protocol):
    """
    A connection L{Admission} may close to make room.
    """

    def abort(self) -> None:
        """
        Close the connection now, taking nothing more it sent.
        """


_Connection = TypeVar("_Connection", bound=Closable)


@attr.s(eq=False)
class Admission(Generic[_Connection]):
    """
    Counts the connections that wait, oldest first, and logs refusals.

    @ivar clock: The time of the waits and of the log's intervals.
    @ivar limit: The most connections that may wait at once, in all.
    @ivar per_host: The most connections of one host that may wait at once.
    @ivar awaited: What the connections wait for, as the log says it
        (C{"their token"}).
    @ivar service: The service the log lines are of.
    @ivar grace: See L{EVICTION_GRACE}.
    @ivar log_interval: See L{REFUSAL_LOG_INTERVAL}.
    """

    log = Logger()

    clock: IReactorTime = attr.ib()
    limit: int = attr.ib()
    per_host: int = attr.ib()
    awaited: str = attr.ib()
    service: str = attr.ib()
    grace: float = attr.ib(default=EVICTION_GRACE)
    log_interval: float = attr.ib(default=REFUSAL_LOG_INTERVAL)
    # The peers refused in the last interval: when each was last logged,
    # and how many of its refusals were left out since.
    _refusals: dict[str, tuple[float, int]] = attr.ib(factory=dict, init=False)
    # The connections waiting, oldest first, with their hosts and when
    # they began to wait.
    _waiting: dict[_Connection, tuple[str, float]] = attr.ib(factory=dict, init=False)

    def admit(self, connection: _Connection, host: str) -> bool:
        """
        Count C{connection}, of C{host}, among those waiting.  If
        L{per_host} of C{host}'s wait already, or L{limit} in all, the
        oldest of them is closed to make room, and logged as a refusal: a
        client sends what is waited for as soon as it is connected, so
        strangers who connect and wait cannot keep it out, as they could
        if the newest were refused.  But one that has waited less than
        L{grace} is not closed (the connections of one accept are made
        before any is read, a client's among them): then C{connection} is
        refused.  A flood of one host's connections still keeps out that
        host's other clients.

        @return: Whether C{connection} may wait; L{done_waiting} is then to
            be called once it has what was waited for, or is gone.
        """
        hosts = [its for its, since in self._waiting.values()]
        oldest: _Connection | None = None
        if hosts.count(host) >= self.per_host:
            oldest = next(waiting for waiting, (its, since) in self._waiting.items() if its == host)
            crowd = f"{self.per_host} of its connections"
        elif len(hosts) >= self.limit:
            oldest = next(iter(self._waiting))
            crowd = f"{len(hosts)} connections"
        now = self.clock.seconds()
        if oldest is not None:
            its, since = self._waiting[oldest]
            if now - since < self.grace:
                why = f"{crowd} wait for {self.awaited}, all made less than {self.grace:g} s ago"
                self.log_refusal(host, "refused a connection", why)
                return False
            del self._waiting[oldest]
            self.log_refusal(its, "closed a connection", f"the oldest of {crowd} waiting for {self.awaited}")
            oldest.abort()
        self._waiting[connection] = (host, now)
        return True

    def done_waiting(self, connection: _Connection) -> None:
        """
        C{connection}, counted by L{admit}, has what was waited for, or is
        gone: it waits no more.
        """
        self._waiting.pop(connection, None)

    def log_refusal(self, peer: str, what: str, why: str = "") -> None:
        """
        Log a refusal of C{peer}: the first at once, then at most one line
        per L{log_interval}, counting those left out meanwhile.

        @param what: What was refused, in words.
        @param why: Why, if C{what} does not say.
        """
        now = self.clock.seconds()
        logged, unlogged = self._refusals.get(peer, (float("-inf"), 0))
        if now - logged < self.log_interval:
            self._refusals[peer] = (logged, unlogged + 1)
            return
        # Forget quiet peers, so that the table holds only the peers
        # refused in the last interval.
        for other, (when, ignored) in list(self._refusals.items()):
            if now - when >= self.log_interval:
                del self._refusals[other]
        self._refusals[peer] = (now, 0)
        self.log.warn(
            "{what} from {peer}{why}{unlogged}",
            what=what,
            peer=peer,
            why=f": {why}" if why else "",
            unlogged=f" ({unlogged} more refusals since the last line)" if unlogged else "",
            service=self.service,
        )
