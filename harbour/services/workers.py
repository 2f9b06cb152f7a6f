"""
The C{workers} service: what every download worker sharing this hub is
doing, from the C{worker.status} heartbeats they publish on the bus.
"""

from __future__ import annotations

import attr
from twisted.application.service import Service
from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from harbour.interfaces import IBus, IStatusSource

#: Heartbeats a worker may miss before it is no longer listed.
MISSED = 3


@implementer(IStatusSource)
@attr.s(eq=False)
class WorkersService(Service):
    """
    Lists the download workers heard from recently.
    """

    reactor = attr.ib()
    bus: IBus = attr.ib()
    interval: float = attr.ib(default=5.0)
    _seen: dict = attr.ib(factory=dict, init=False)
    _subscription = attr.ib(default=None, init=False)

    @inlineCallbacks
    def startService(self):
        """
        Listen to heartbeats.
        """
        super().startService()
        self._subscription = yield self.bus.subscribe("worker.status", self._heard)

    def _heard(self, event) -> None:
        owner = event.payload.get("owner")
        if isinstance(owner, str):
            self._seen[owner] = (self.reactor.seconds(), event.payload)

    def status(self) -> dict:
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

    def stopService(self):
        """
        Stop listening.
        """
        super().stopService()
        if self._subscription is not None:
            return self.bus.unsubscribe(self._subscription)
        return None
