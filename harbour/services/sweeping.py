"""
Returning expired leases to C{pending}: the claims of workers that died.

The hub and every worker each run a L{LeaseSweeper}, so that while the hub
is away a killed worker's tasks are taken up by the workers left, not held
until the hub returns.  A sweep is one atomic script, so two sweepers never
return a task twice.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from harbour.bus import Subscription
from harbour.config.schema import WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IEvent, ITaskStore
from harbour.services.announcing import unsubscribe_all
from harbour.services.cycle import guarded


def sweep_interval(work: WorkTopic) -> float:
    """
    @return: Seconds between sweeps under C{work}'s lease: a quarter of it,
        at least a second.
    """
    return max(1.0, work.lease_seconds / 4)


@attr.s(eq=False)
class LeaseSweeper(Service):
    """
    Sweeps expired leases every quarter lease, the lease being the
    C{work} setting (on a worker, the hub's).

    @ivar ready: Called at start; fires once the store can be used.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    bus: IBus = attr.ib()
    ready: Callable[[], Deferred[Any]] = attr.ib()
    work: WorkTopic = attr.ib(factory=WorkTopic)
    _subscription: Subscription | None = attr.ib(default=None, init=False)
    _timer: LoopingCall | None = attr.ib(default=None, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the C{work} settings, and sweep on schedule once the store
        is ready.
        """
        super().startService()
        self._subscription = yield self.bus.subscribe("work", self._work_changed)
        yield self.ready()
        if self.running:
            self._schedule()

    def _work_changed(self, event: IEvent) -> None:
        # The retained value comes again at each reconnection to a hub:
        # starting the timer afresh each time would put off every sweep
        # while the hub comes and goes.
        work = WorkTopic.from_payload(event.payload)
        changed = sweep_interval(work) != sweep_interval(self.work)
        self.work = work
        if changed and self._timer is not None:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self._timer = LoopingCall(guarded(self.log, "lease sweep", self._sweep, service="work"))
        self._timer.clock = self.reactor
        self._timer.start(sweep_interval(self.work), now=False)

    @inlineCallbacks
    def _sweep(self) -> Generator[Deferred[Any], Any, None]:
        try:
            swept = yield self.store.sweep()
        except StoreUnavailable as e:
            # The store logs an outage, once: a sweep every few seconds
            # would repeat it.
            self.log.debug("cannot sweep leases: {error}", error=str(e), service="work")
            return
        if swept:
            self.log.warn("{count} expired leases returned to pending", count=swept, service="work")

    def stopService(self) -> None:
        """
        Sweep no more (the subscription ends without waiting for a hub's
        answer: a worker's stop must not wait on a silent hub).
        """
        super().stopService()
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self._timer = None
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            unsubscribe_all(self.bus, [subscription], self.log, "work")
