"""
Pauses that reach every worker: the hub announces which of its services
are paused on the retained C{paused} topic, and each worker pauses and
resumes its own to match, so that C{harbourctl pause download} stops the
whole fleet claiming, not only the hub.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.bus import Subscription
from harbour.interfaces import IBus, IEvent, IPausable
from harbour.services.announcing import unsubscribe_all

#: The retained topic: C{{"services": [names of the hub's paused services]}}.
PAUSED = "paused"


def announce_pauses(bus: IBus, pausables: Mapping[str, IPausable]) -> Deferred[int]:
    """
    Publish which of C{pausables} are paused, retained for workers that
    connect later.
    """
    paused = sorted(name for name, service in pausables.items() if service.paused)
    return bus.publish(PAUSED, {"services": paused}, retain=True)


@attr.s(eq=False)
class PauseAnnouncer(Service):
    """
    On the hub: announce at start that nothing is paused, so that workers
    which followed an earlier hub's pause resume with a hub that starts
    afresh (the bus keeps retained values only while the hub runs).
    """

    bus: IBus = attr.ib()
    pausables: Mapping[str, IPausable] = attr.ib()

    log = Logger()

    def startService(self) -> None:
        """
        Announce the services' pauses as they are now.
        """
        super().startService()
        announce_pauses(self.bus, self.pausables).addErrback(
            lambda failure: self.log.failure("cannot announce pauses", failure, service="pausing")
        )


@attr.s(eq=False)
class PauseFollower(Service):
    """
    On a worker: pause and resume its services as the hub's are.
    """

    log = Logger()

    bus: IBus = attr.ib()
    pausables: Mapping[str, IPausable] = attr.ib()
    _subscription: Subscription | None = attr.ib(default=None, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the hub's pauses (its current ones arrive at once).
        """
        super().startService()
        self._subscription = yield self.bus.subscribe(PAUSED, self._follow)

    def _follow(self, event: IEvent) -> None:
        payload = event.payload
        names = payload.get("services") if isinstance(payload, dict) else None
        if not isinstance(names, list):
            self.log.warn(
                "ignored a {topic} event without a list of services", topic=PAUSED, service="pausing"
            )
            return
        for name, service in self.pausables.items():
            if name in names and not service.paused:
                service.pause()
                self.log.info("{name} paused, as on the hub", name=name, service="pausing")
            elif name not in names and service.paused:
                service.resume()
                self.log.info("{name} resumed, as on the hub", name=name, service="pausing")

    def stopService(self) -> None:
        """
        Stop following (the subscription ends without waiting for a hub's
        answer: a worker's stop must not wait on a silent hub).
        """
        super().stopService()
        if self._subscription is not None:
            unsubscribe_all(self.bus, [self._subscription], self.log, "pausing")
            self._subscription = None
