"""
Tests for L{harbour.services.announcing}.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.logger import ILogObserver, LogEvent, Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from harbour.errors import StoreUnavailable
from harbour.services.announcing import Announcements, unsubscribe_all
from harbour.test.helpers import SilentHub


class AnsweringBus:
    """
    A bus whose answers to publications the test sets.
    """

    def __init__(self) -> None:
        self.answer: Any = lambda: succeed(1)

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        return cast("Deferred[int]", self.answer())


class AnnouncementsTests(SynchronousTestCase):
    """
    L{Announcements} publishes without waiting, and logs an outage once.
    """

    def setUp(self) -> None:
        self.bus = AnsweringBus()
        self.logged: list[LogEvent] = []
        self.log = Logger(observer=cast(ILogObserver, self.logged.append))
        self.announcements = Announcements()

    def announce(self, filename: str) -> None:
        self.announcements.announce(
            cast(Any, self.bus),
            self.log,
            "table.written",
            {"filename": filename},
            "{filename}: {topic} could not be sent: {error}",
            filename=filename,
        )

    def messages(self) -> list[str]:
        return [formatEvent(e) for e in self.logged]

    def test_onceAnOutage(self) -> None:
        """
        Of the events that cannot be sent, the first after one that was
        sent is logged, the others not.
        """
        self.bus.answer = lambda: fail(StoreUnavailable("not connected to the hub"))
        self.announce("a")
        self.announce("b")
        self.bus.answer = lambda: succeed(1)
        self.announce("c")
        self.bus.answer = lambda: fail(StoreUnavailable("not connected to the hub"))
        self.announce("d")
        self.assertEqual(
            self.messages(),
            [
                "a: table.written could not be sent: not connected to the hub",
                "d: table.written could not be sent: not connected to the hub",
            ],
        )

    def test_connectionLostQuiet(self) -> None:
        """
        An event lost with its connection is not logged: the link logs
        that.
        """
        self.bus.answer = lambda: fail(ConnectionLost())
        self.announce("a")
        self.assertEqual(self.messages(), [])

    def test_unanswered(self) -> None:
        """
        An event never answered is neither waited for nor logged.
        """
        hub = SilentHub()
        self.bus.answer = lambda: hub.publish("table.written", {})
        self.announce("a")
        self.assertEqual((hub.published, self.messages()), (["table.written"], []))


class UnsubscribeAllTests(SynchronousTestCase):
    """
    L{unsubscribe_all} ends subscriptions without waiting for the bus.
    """

    def test_silentHub(self) -> None:
        """
        Each subscription ends at once, though the hub never answers.
        """
        hub = SilentHub()
        events: list[str] = []
        subscription = self.successResultOf(hub.subscribe("a", lambda event: events.append(event.topic)))
        unsubscribe_all(hub, [subscription], Logger(), "tables")
        hub.local.publish("a", {})
        self.assertEqual(events, [])
