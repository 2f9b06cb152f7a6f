"""
Tests of L{harbour.amp.hub}: a worker's link to its hub, seen as its bus.
"""

from __future__ import annotations

from typing import Any

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from harbour.amp import commands
from harbour.amp.hub import HubLink
from harbour.bus import SubscriptionTable
from harbour.errors import StoreUnavailable
from harbour.interfaces import IEvent
from harbour.test.helpers import TOKEN


@attr.s(auto_attribs=True)
class RecordingProtocol:
    """
    Stands for a connection to the hub: records the commands sent on it.
    """

    sent: list[tuple[type[amp.Command], dict[str, Any]]] = attr.ib(factory=list)
    table: SubscriptionTable = attr.ib(factory=SubscriptionTable)

    def callRemote(self, command: type[amp.Command], **arguments: Any) -> Deferred[dict[str, Any]]:
        """
        Record C{command}, and answer as the hub would.
        """
        self.sent.append((command, arguments))
        return succeed({"delivered": 0})


class LocalTopicsTests(SynchronousTestCase):
    """
    The events of the worker's own connection to Redis stay in the worker.
    """

    def setUp(self) -> None:
        self.link = HubLink(MemoryReactorClock(), "tcp:127.0.0.1:7750", TOKEN)
        self.heard: list[IEvent] = []

    def test_heardWithoutHub(self) -> None:
        """
        While the hub is away, a C{store.*} event still reaches the
        worker's own subscribers, and its publication succeeds; another
        event fails as before.
        """
        self.successResultOf(self.link.subscribe("store.*", self.heard.append))
        self.assertEqual(self.successResultOf(self.link.publish("store.disconnected", {"redis": "r"})), 1)
        self.assertEqual([(e.topic, e.payload) for e in self.heard], [("store.disconnected", {"redis": "r"})])
        self.failureResultOf(self.link.publish("task.done", {}), StoreUnavailable)

    def test_neverSentToHub(self) -> None:
        """
        With the hub connected, neither a C{store.*} event nor a
        subscription to one goes to it: the hub's services would take the
        worker's connection for the hub's own, and the hub's connection
        is not the worker's.
        """
        protocol = RecordingProtocol()
        self.link._protocol = protocol  # type: ignore[assignment]
        self.successResultOf(self.link.subscribe("store.connected", self.heard.append))
        self.successResultOf(self.link.subscribe("task.*", self.heard.append))
        self.successResultOf(self.link.publish("store.connected", {"redis": "r"}))
        self.successResultOf(self.link.publish("task.done", {"id": "t"}))
        self.assertEqual(
            [(command, arguments.get("topic")) for command, arguments in protocol.sent],
            [(commands.Subscribe, "task.*"), (commands.Publish, "task.done")],
        )
        self.assertEqual([e.topic for e in self.heard], ["store.connected"])

    def test_unsubscribed(self) -> None:
        """
        A local subscription given up hears nothing more.
        """
        subscription = self.successResultOf(self.link.subscribe("store.connected", self.heard.append))
        self.successResultOf(self.link.unsubscribe(subscription))
        self.assertEqual(self.successResultOf(self.link.publish("store.connected", {})), 0)
        self.assertEqual(self.heard, [])
