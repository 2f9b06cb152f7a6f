"""
What a service tells the bus without waiting for its answer: the
announcements of outcomes already recorded in the store, and the end of
its subscriptions as it stops.

The outcome is durable once recorded; its event only wakes its followers
sooner.  A worker's bus is its link to the hub, whose answer may never
come (a hub stopped but still connected), so an attempt or a parse that
waited for it would hold its slot, its lease and its service's stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attr
from twisted.internet.error import ConnectionClosed
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.bus import Subscription
from harbour.interfaces import IBus


@attr.s(eq=False)
class Announcements:
    """
    Publishes events, each without waiting for it; one that cannot be sent
    is logged only if the last one was sent, so that an outage is logged
    once, not once per event.  One lost with its connection is not logged:
    the link logs that.

    @ivar failing: Whether the last event that was answered could not be
        sent.
    """

    failing: bool = attr.ib(default=False)

    def announce(
        self, bus: IBus, log: Logger, topic: str, payload: dict[str, Any], unsent: str, **fields: object
    ) -> None:
        """
        Publish C{payload} on C{topic} through C{bus}; nobody waits for it.

        @param log: Where a failure to send it is logged.
        @param unsent: The warning logged if it cannot be sent, with
            C{topic}, C{error} and C{fields}.
        """

        def sent(delivered: object) -> None:
            self.failing = False

        def failed(failure: Failure) -> None:
            if failure.check(ConnectionClosed) or self.failing:
                return
            self.failing = True
            error = str(failure.value) or getattr(failure.type, "__name__", "")
            log.warn(unsent, topic=topic, error=error, **fields)

        bus.publish(topic, payload).addCallbacks(sent, failed)


def unsubscribe_all(bus: IBus, subscriptions: Iterable[Subscription], log: Logger, service: str) -> None:
    """
    End C{subscriptions} on C{bus}, without waiting for its answer: each
    bus sends a subscription nothing more at once, and a hub that answers
    late (or never: stopped but still connected) must not hold up the
    stop of a worker's service.
    """
    for subscription in subscriptions:

        def failed(failure: Failure, pattern: str = subscription.pattern) -> None:
            # A connection lost ends its subscriptions with it.
            if not failure.check(ConnectionClosed):
                log.failure("cannot unsubscribe from {pattern}", failure, pattern=pattern, service=service)

        bus.unsubscribe(subscription).addErrback(failed)
