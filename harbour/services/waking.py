"""
Idle workers that sleep until there may be work: woken at once by an event
(a task was created, a file was downloaded, the store is back), or after a
poll interval at the latest, so that nothing depends on an event arriving.
"""

from __future__ import annotations

from typing import TypeVar

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

_R = TypeVar("_R")


@attr.s(eq=False)
class Waker:
    """
    Where idle workers wait.

    @ivar poll_interval: How long an idle worker waits when nothing wakes it.
    """

    reactor: IReactorTime = attr.ib()
    poll_interval: float = attr.ib()
    _waiting: set[Deferred[None]] = attr.ib(factory=set, init=False)

    def wake(self) -> None:
        """
        End every wait now.
        """
        waiting, self._waiting = self._waiting, set()
        for d in waiting:
            if not d.called:
                d.callback(None)

    def idle(self, delay: float | None = None) -> Deferred[None]:
        """
        @param delay: How long to wait at most (C{poll_interval} if
            L{None}).
        @return: A L{Deferred} firing on L{wake} or after C{delay}.
        """
        d: Deferred[None] = Deferred()
        self._waiting.add(d)

        def elapsed() -> None:
            # A wait that ran out is forgotten at once: a quiet worker waits
            # every poll interval, for months.
            self._waiting.discard(d)
            if not d.called:
                d.callback(None)

        timer = self.reactor.callLater(self.poll_interval if delay is None else delay, elapsed)

        def woken(result: _R) -> _R:
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(woken)
