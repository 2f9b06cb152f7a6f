"""
The C{workers} service: what every download worker sharing this hub is
doing, from the C{worker.status} heartbeats they publish on the bus.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.bus import Subscription
from harbour.interfaces import IBus, IEvent, IStatusSource, StatusDocument

#: Heartbeats a worker may miss before it is no longer listed.
MISSED = 3


@implementer(IStatusSource)
@attr.s(eq=False)
class WorkersService(Service):
    """
    Lists the download workers heard from recently.
    """

    reactor: IReactorTime = attr.ib()
    bus: IBus = attr.ib()
    interval: float = attr.ib(default=5.0)
    #: {owner: (when last heard, its last heartbeat)}
    _seen: dict[str, tuple[float, dict[str, Any]]] = attr.ib(factory=dict, init=False)
    _subscription: Subscription | None = attr.ib(default=None, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Listen to heartbeats.
        """
        super().startService()
        self._subscription = yield self.bus.subscribe("worker.status", self._heard)

    def _heard(self, event: IEvent) -> None:
        owner = event.payload.get("owner")
        if isinstance(owner, str):
            self._seen[owner] = (self.reactor.seconds(), event.payload)

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}: each worker heard from within the last
        few heartbeats, with its tasks in flight.
        """
        now = self.reactor.seconds()
        for owner in [o for o, (seen, ignored) in self._seen.items() if now - seen > MISSED * self.interval]:
            del self._seen[owner]
        return {
            owner: {"seen_seconds_ago": round(now - seen, 1), **payload}
            for owner, (seen, payload) in sorted(self._seen.items())
        }

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        super().stopService()
        if self._subscription is not None:
            return self.bus.unsubscribe(self._subscription)
        return None
