"""
Tests of L{harbour.amp.hub}: a worker's link to its hub, seen as its bus.
"""

from __future__ import annotations

from typing import Any

import attr
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionAborted, ConnectionLost
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from harbour.admission import REFUSAL_LOG_INTERVAL
from harbour.amp import commands
from harbour.amp import hub as hub_module
from harbour.amp import server as server_module
from harbour.amp.client import HarbourClientProtocol
from harbour.amp.hub import ANSWER_DEADLINE, CLOSE_GRACE, HubLink
from harbour.amp.server import AUTHENTICATION_TIMEOUT, ControlProtocol, ControlService
from harbour.bus import Bus, Event, Subscription, SubscriptionTable
from harbour.errors import BadRequest, StoreUnavailable, Unauthorized
from harbour.interfaces import IEvent
from harbour.test.helpers import TOKEN, capture_log, control_service
from harbour.test.test_bus import BusBehaviourMixin


@attr.s(auto_attribs=True, eq=False)
class RecordingProtocol:
    """
    Stands for a connection to the hub: records the commands sent on it.
    """

    sent: list[tuple[type[amp.Command], dict[str, Any]]] = attr.ib(factory=list)
    table: SubscriptionTable = attr.ib(factory=SubscriptionTable)
    dropped: str | None = None

    def callRemote(self, command: type[amp.Command], **arguments: Any) -> Deferred[dict[str, Any]]:
        """
        Record C{command}, and answer as the hub would.
        """
        self.sent.append((command, arguments))
        return succeed({"delivered": 0})

    def subscribe(self, subscription: Subscription) -> Deferred[dict[str, Any]]:
        """
        Route C{subscription}'s events, and send its C{Subscribe}.
        """
        self.table.add(subscription)
        return self.callRemote(commands.Subscribe, topic=subscription.pattern)

    # The real connection's, over the commands recorded here.
    log = HarbourClientProtocol.log
    release = HarbourClientProtocol.release
    _unsubscribe_failed = HarbourClientProtocol._unsubscribe_failed


@attr.s(auto_attribs=True, eq=False)
class SlowProtocol(RecordingProtocol):
    """
    A connection to the hub that authenticates at once and answers its
    subscriptions with C{subscribed}.
    """

    subscribed: Deferred[dict[str, Any]] = attr.ib(factory=Deferred)
    disconnected: Deferred[None] = attr.ib(factory=Deferred)
    transport: None = None

    def callRemote(self, command: type[amp.Command], **arguments: Any) -> Deferred[dict[str, Any]]:
        """
        Record C{command}; answer a subscription with C{subscribed}.
        """
        super().callRemote(command, **arguments)
        return self.subscribed if command is commands.Subscribe else succeed({})


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


@attr.s(auto_attribs=True, eq=False)
class LostProtocol(RecordingProtocol):
    """
    A connection to the hub lost before it answers a C{lost_on} command.
    """

    lost_on: type[amp.Command] = commands.Unsubscribe

    def callRemote(self, command: type[amp.Command], **arguments: Any) -> Deferred[dict[str, Any]]:
        """
        Record C{command}; fail a C{lost_on} as a lost connection does.
        """
        answer = super().callRemote(command, **arguments)
        return fail(ConnectionLost()) if command is self.lost_on else answer


class SubscribeTests(SynchronousTestCase):
    """
    A subscription whose connection is lost before the hub answers stands.
    """

    def test_lostMeanwhile(self) -> None:
        """
        The subscriber gets its subscription, which is made again on the
        next connection and can be ended.
        """
        link = HubLink(MemoryReactorClock(), "tcp:127.0.0.1:7750", TOKEN)
        link._protocol = LostProtocol(lost_on=commands.Subscribe)  # type: ignore[assignment]
        subscription = self.successResultOf(link.subscribe("task.*", lambda event: None))
        self.assertEqual(link._subscriptions, [subscription])
        link._protocol = None
        self.successResultOf(link.unsubscribe(subscription))
        self.assertEqual(link._subscriptions, [])


class UnsubscribeTests(SynchronousTestCase):
    """
    L{HubLink.unsubscribe} with a connection that cannot answer.
    """

    def test_lostMeanwhile(self) -> None:
        """
        An C{Unsubscribe} the hub cannot answer, its connection lost,
        still unsubscribes, quietly: the next connection subscribes to the
        pattern no more.
        """
        link = HubLink(MemoryReactorClock(), "tcp:127.0.0.1:7750", TOKEN)
        protocol = LostProtocol()
        link._protocol = protocol  # type: ignore[assignment]
        subscription = self.successResultOf(link.subscribe("task.*", lambda e: None))
        self.successResultOf(link.unsubscribe(subscription))
        self.assertEqual(
            [(command, arguments["topic"]) for command, arguments in protocol.sent],
            [(commands.Subscribe, "task.*"), (commands.Unsubscribe, "task.*")],
        )
        self.assertEqual(link._subscriptions, [])
        self.assertEqual(self.flushLoggedErrors(), [])


@attr.s(auto_attribs=True, eq=False)
class RefusingProtocol(RecordingProtocol):
    """
    A connection to a hub that refuses its token, over a
    L{StringTransport}.
    """

    transport: StringTransport = attr.ib(factory=StringTransport)
    disconnected: Deferred[None] = attr.ib(factory=Deferred)

    def callRemote(self, command: type[amp.Command], **arguments: Any) -> Deferred[dict[str, Any]]:
        """
        Record C{command}; refuse an C{Authenticate}.
        """
        answer = super().callRemote(command, **arguments)
        return fail(Unauthorized("wrong token")) if command is commands.Authenticate else answer


class LinkingTests(SynchronousTestCase):
    """
    L{HubLink} making a new connection ready, while other things happen.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.link = HubLink(self.clock, "tcp:127.0.0.1:7750", TOKEN)
        self.link.startService()
        self.addCleanup(self.link.stopService)

    def test_givenUpMeanwhile(self) -> None:
        """
        A subscription ended while a new connection subscribes again to
        those before it is not subscribed to on it.
        """
        self.successResultOf(self.link.subscribe("a", lambda event: None))
        ended = self.successResultOf(self.link.subscribe("b", lambda event: None))
        protocol = SlowProtocol()
        self.link._linked(protocol)  # type: ignore[arg-type]
        self.successResultOf(self.link.unsubscribe(ended))
        protocol.subscribed.callback({})
        self.assertEqual(
            [arguments["topic"] for command, arguments in protocol.sent if command is commands.Subscribe],
            ["a"],
        )
        self.successResultOf(self.link.when_connected())

    def test_lostMeanwhile(self) -> None:
        """
        A connection lost while it subscribes again is never taken for
        ready: L{HubLink.when_connected} waits for the next.
        """
        self.successResultOf(self.link.subscribe("a", lambda event: None))
        protocol = SlowProtocol()
        self.link._linked(protocol)  # type: ignore[arg-type]
        waiting = self.link.when_connected()
        protocol.disconnected.callback(None)
        protocol.subscribed.callback({})
        self.assertNoResult(waiting)
        self.assertFalse(self.link.status()["connected"])
        self.link.stopService()
        self.failureResultOf(waiting, CancelledError)

    def test_refusedClosedInTime(self) -> None:
        """
        A connection whose token is refused, and which the hub does not
        close, is closed by the link after L{AUTHENTICATION_TIMEOUT}.
        """
        protocol = RefusingProtocol()
        self.link._linked(protocol)  # type: ignore[arg-type]
        self.clock.advance(AUTHENTICATION_TIMEOUT - 1)
        self.assertFalse(protocol.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(protocol.transport.disconnecting)

    def test_refusedClosedByHub(self) -> None:
        """
        A refused connection the hub closes leaves no timer behind.
        """
        before = len(self.clock.getDelayedCalls())
        protocol = RefusingProtocol()
        self.link._linked(protocol)  # type: ignore[arg-type]
        protocol.disconnected.callback(None)
        self.assertEqual(len(self.clock.getDelayedCalls()), before)

    def test_refusalsCountedAfresh(self) -> None:
        """
        The refusals are counted again from the first after a connection
        is accepted: a refusal after it is logged at once, as the first.
        """
        messages = capture_log(self)
        self.link._linked(RefusingProtocol())  # type: ignore[arg-type]
        self.link._linked(SlowProtocol())  # type: ignore[arg-type]
        self.link._linked(RefusingProtocol())  # type: ignore[arg-type]
        refusals = [m for m in messages if "refused this worker's token" in m]
        self.assertEqual(len(refusals), 2)
        self.assertIn("wrong token; 1 refusals", refusals[1])


@implementer(IStreamClientEndpoint)
@attr.s(auto_attribs=True)
class HubInMemory:
    """
    Connects to a hub's control service over in-memory transports.
    """

    service: ControlService
    pumps: list[iosim.IOPump] = attr.ib(factory=list)

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect a protocol of C{factory} to a new control connection.
        """
        client = factory.buildProtocol(iosim.FakeAddress())
        assert client is not None
        server = ControlProtocol(self.service)
        self.pumps.append(
            iosim.connect(
                server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client), greet=False
            )
        )
        return succeed(client)


@implementer(IStreamClientEndpoint)
@attr.s(auto_attribs=True)
class SwitchedHub:
    """
    A hub in memory whose connections are refused while it is C{down}.
    """

    hub: HubInMemory
    down: bool = False

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Refuse the connection while down (starting and stopping
        C{factory}, as a reactor's connector does for each attempt);
        otherwise connect to the hub.
        """
        if self.down:
            factory.doStart()
            factory.doStop()
            return fail(ConnectionRefusedError())
        return self.hub.connect(factory)


class StuckTransport(StringTransport):
    """
    A connection whose close waits for ever, as one to a peer that reads
    nothing does once its buffers are full; only an abort ends it.
    """

    def __init__(self, protocol: IProtocol) -> None:
        super().__init__()
        self.protocol = protocol

    def abortConnection(self) -> None:
        """
        End the connection now.
        """
        super().abortConnection()
        self.protocol.connectionLost(Failure(ConnectionAborted()))


@implementer(IStreamClientEndpoint)
class StuckEndpoint:
    """
    Connects over a L{StuckTransport}.
    """

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect a protocol of C{factory} over a new L{StuckTransport}.
        """
        protocol = factory.buildProtocol(iosim.FakeAddress())
        assert protocol is not None
        protocol.makeConnection(StuckTransport(protocol))
        return succeed(protocol)


class ConnectionTests(SynchronousTestCase):
    """
    L{HubLink} authenticates each connection, and says why when the hub
    refuses it.
    """

    def link(self, token: str) -> tuple[HubLink, HubInMemory, MemoryReactorClock]:
        """
        A started link with C{token} to an in-memory hub.
        """
        self.hub_bus = Bus()
        service = control_service(self.hub_bus)
        clock = MemoryReactorClock()
        link = HubLink(clock, "tcp:127.0.0.1:7750", token)
        hub = HubInMemory(service)
        link._connect_to = hub
        link.startService()
        self.addCleanup(self.stop, link, hub, clock)
        return link, hub, clock

    def stop(self, link: HubLink, hub: HubInMemory, clock: MemoryReactorClock) -> None:
        """
        Stop C{link}, and see that it stops.
        """
        if link.running:
            stopped = link.stopService()
            assert stopped is not None
            self.pass_time(hub, clock, 1)
            self.successResultOf(stopped)

    def pass_time(self, hub: HubInMemory, clock: MemoryReactorClock, seconds: int) -> None:
        """
        Let C{seconds} pass, a second at a time, on both sides.
        """
        service_clock = hub.service.reactor
        for ignored in range(seconds):
            for pump in hub.pumps:
                pump.flush()
            service_clock.advance(1)  # type: ignore[attr-defined]
            clock.advance(1)

    def test_connected(self) -> None:
        """
        With the right token, L{HubLink.when_connected} fires once the link
        is authenticated and subscribed, and events flow both ways.
        """
        link, hub, clock = self.link(TOKEN)
        heard: list[IEvent] = []
        self.successResultOf(link.subscribe("task.*", heard.append))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        self.successResultOf(self.hub_bus.publish("task.done", {"id": "t"}))
        self.pass_time(hub, clock, 1)
        self.assertEqual([e.topic for e in heard], ["task.done"])
        self.successResultOf(link.when_connected())

    def test_retainedOncePerSubscriber(self) -> None:
        """
        Each of the worker's subscribers gets the hub's retained value
        once, those subscribed before the link is up and those after,
        whether their patterns are the same or overlap.
        """
        link, hub, clock = self.link(TOKEN)
        self.successResultOf(self.hub_bus.publish("download", {"concurrency": 2}, retain=True))
        heard: dict[str, list[object]] = {"one": [], "two": [], "all": [], "late": []}
        self.successResultOf(link.subscribe("download", lambda e: heard["one"].append(e.payload)))
        self.successResultOf(link.subscribe("download", lambda e: heard["two"].append(e.payload)))
        self.successResultOf(link.subscribe("*", lambda e: heard["all"].append(e.payload)))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        late = link.subscribe("download", lambda e: heard["late"].append(e.payload))
        self.pass_time(hub, clock, 1)
        self.successResultOf(late)
        retained = {"concurrency": 2}
        self.assertEqual(heard, {"one": [retained], "two": [retained], "all": [retained], "late": [retained]})

    def test_unsubscribeReachesHub(self) -> None:
        """
        Once the last of the worker's subscribers to a pattern has
        unsubscribed, the hub sends it no more events of that pattern; it
        goes on while another subscriber to it remains.
        """
        link, hub, clock = self.link(TOKEN)
        first = self.successResultOf(link.subscribe("task.*", lambda e: None))
        second = self.successResultOf(link.subscribe("task.*", lambda e: None))
        self.successResultOf(link.subscribe("download", lambda e: None))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        self.assertEqual(self.hub_bus.status()["subscriptions"], 2)
        unsubscribed = link.unsubscribe(first)
        self.pass_time(hub, clock, 1)
        self.successResultOf(unsubscribed)
        self.assertEqual(self.hub_bus.status()["subscriptions"], 2)
        unsubscribed = link.unsubscribe(second)
        self.pass_time(hub, clock, 1)
        self.successResultOf(unsubscribed)
        self.assertEqual(self.hub_bus.status()["subscriptions"], 1)
        self.assertEqual(self.successResultOf(self.hub_bus.publish("task.done", {})), 0)

    def test_refusedSubscriptionWithdrawn(self) -> None:
        """
        A subscription the hub refuses (past its limit of patterns) fails
        and is no more: the link is not given up for it, and it is not
        asked again at the next connection.
        """
        self.patch(server_module, "SUBSCRIPTION_LIMIT", 1)
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        self.successResultOf(link.subscribe("task.*", lambda e: None))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        refused = link.subscribe("download", lambda e: None)
        self.pass_time(hub, clock, 1)
        self.failureResultOf(refused, BadRequest)
        [first] = hub.service.connections
        first.abort()
        self.pass_time(hub, clock, 30)
        self.assertEqual(len(hub.pumps), 2)
        self.assertTrue(link.status()["connected"])
        self.assertEqual(self.hub_bus.status()["subscriptions"], 1)
        log = "\n".join(messages)
        self.assertNotIn("cannot subscribe", log)
        # Asked again, it would be refused again, with a warning.
        self.assertNotIn("refused the subscription", log)

    def test_refusedOnConnecting(self) -> None:
        """
        A subscription made while the hub was away, which the hub refuses
        on connecting, is no more and said to be; the link goes on with
        the others.
        """
        self.patch(server_module, "SUBSCRIPTION_LIMIT", 1)
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        heard: list[IEvent] = []
        self.successResultOf(link.subscribe("task.*", heard.append))
        self.successResultOf(link.subscribe("download", lambda e: None))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        refusal = "hub tcp:127.0.0.1:7750 refused the subscription to download"
        self.assertIn(refusal, "\n".join(messages))
        self.successResultOf(self.hub_bus.publish("task.done", {}))
        self.pass_time(hub, clock, 1)
        self.assertEqual([e.topic for e in heard], ["task.done"])
        # No more: the next connection does not ask for it again.
        [first] = hub.service.connections
        first.abort()
        self.pass_time(hub, clock, 30)
        self.assertEqual(len(hub.pumps), 2)
        self.assertTrue(link.status()["connected"])
        self.assertEqual("\n".join(messages).count(refusal), 1)

    def test_droppedSubscriberUnsubscribed(self) -> None:
        """
        A subscriber of the worker dropped for not keeping up is
        unsubscribed from the hub too, being the last of its pattern.
        """
        self.patch(hub_module, "DEFAULT_QUEUE_LIMIT", 2)
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        self.successResultOf(link.subscribe("task.*", lambda e: Deferred()))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        for i in range(4):
            self.hub_bus.dispatch(Event.create("task.done", i))
        self.pass_time(hub, clock, 1)
        self.assertIn("dropped a subscriber to task.*: ", "\n".join(messages))
        self.assertEqual(self.hub_bus.status()["subscriptions"], 0)

    def test_unsubscribeWhileAway(self) -> None:
        """
        A subscriber that unsubscribes while the hub is away is not
        subscribed again on the next connection.
        """
        link, hub, clock = self.link(TOKEN)
        subscription = self.successResultOf(link.subscribe("task.*", lambda e: None))
        self.successResultOf(link.unsubscribe(subscription))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        self.assertEqual(self.hub_bus.status()["subscriptions"], 0)

    def test_readyOnceSubscribed(self) -> None:
        """
        L{HubLink.when_connected} waits for the subscriptions to be made
        again on a new connection, not only for its authentication; once
        the link is stopped, it fails at once.
        """
        link = HubLink(MemoryReactorClock(), "tcp:127.0.0.1:7750", TOKEN)
        link.startService()
        self.successResultOf(link.subscribe("task.*", lambda event: None))
        subscribed: Deferred[dict[str, Any]] = Deferred()
        protocol = SlowProtocol(subscribed=subscribed)
        link._linked(protocol)  # type: ignore[arg-type]
        waiting = link.when_connected()
        self.assertNoResult(waiting)
        subscribed.callback({})
        self.successResultOf(waiting)
        self.successResultOf(link.when_connected())
        link.stopService()
        self.failureResultOf(link.when_connected(), CancelledError)

    def test_lostHub(self) -> None:
        """
        Once the connection to the hub is lost, the link says so: it is
        not connected, publishing fails at once, and L{HubLink.when_connected}
        waits for the next connection, which it makes.
        """
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        [first] = hub.service.connections
        first.abort()
        hub.pumps[0].flush()
        self.assertFalse(link.status()["connected"])
        self.failureResultOf(link.publish("task.done", {}), StoreUnavailable)
        waiting = link.when_connected()
        self.assertNoResult(waiting)
        self.assertIn("lost the hub tcp:127.0.0.1:7750; reconnecting", messages)
        self.pass_time(hub, clock, 3)
        self.successResultOf(waiting)
        self.assertEqual(len(hub.pumps), 2)

    def test_droppedByHub(self) -> None:
        """
        A hub that drops the link for not reading its events says why
        (L{commands.DROPPED}), and the link logs that reason, and that
        events were missed, rather than a plain loss; then reconnects.
        """
        self.patch(server_module, "REMOTE_QUEUE_BYTES", 100)
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        self.successResultOf(link.subscribe("task.*", lambda event: None))
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        [first] = hub.service.connections
        first.pauseProducing()
        for ignored in range(3):
            self.hub_bus.dispatch(Event.create("task.done", "x" * 60))
        self.pass_time(hub, clock, 1)
        [dropped] = [m for m in messages if m.startswith("the hub")]
        self.assertEqual(
            dropped,
            "the hub tcp:127.0.0.1:7750 dropped this worker's connection: more than 100 bytes of events "
            "waiting: subscriber is not reading; events were missed; reconnecting",
        )
        self.assertNotIn("lost the hub tcp:127.0.0.1:7750; reconnecting", messages)
        self.pass_time(hub, clock, 3)
        self.successResultOf(link.when_connected())

    def test_awayLoggedOnce(self) -> None:
        """
        While the hub is away, the link logs one warning as it goes, one
        reminder an hour, and, as it is back, one line saying how long it
        was away: not the lines Twisted logs for every attempt to
        reconnect (factories started and stopped, retries scheduled,
        AMP's connections made and lost).
        """
        self.hub_bus = Bus()
        clock = MemoryReactorClock()
        link = HubLink(clock, "tcp:127.0.0.1:7750", TOKEN)
        hub = HubInMemory(control_service(self.hub_bus))
        switched = SwitchedHub(hub)
        link._connect_to = switched
        link.startService()
        self.addCleanup(self.stop, link, hub, clock)
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        messages = capture_log(self)
        switched.down = True
        [first] = hub.service.connections
        first.abort()
        hub.pumps[0].flush()
        for ignored in range(2 * 360 + 30):
            clock.advance(10)
        switched.down = False
        self.pass_time(hub, clock, 12)
        self.successResultOf(link.when_connected())
        self.assertEqual(
            [m for m in messages if not m.startswith("authenticated a connection")],
            [
                "lost the hub tcp:127.0.0.1:7750; reconnecting",
                "still no connection to the hub tcp:127.0.0.1:7750, for 60 min; reconnecting",
                "still no connection to the hub tcp:127.0.0.1:7750, for 2.0 h; reconnecting",
                "connected to hub tcp:127.0.0.1:7750 again, after 2.1 h away",
            ],
        )

    def test_silentHubDropped(self) -> None:
        """
        A hub that leaves a call unanswered for L{ANSWER_DEADLINE} (here,
        stopped: nothing it sends or reads moves) is taken for gone, once:
        the connection is dropped, publishing fails at once while it is
        away, and the link connects again.
        """
        link, hub, clock = self.link(TOKEN)
        messages = capture_log(self)
        connected = link.when_connected()
        self.pass_time(hub, clock, 2)
        self.successResultOf(connected)
        first = link.publish("task.done", {"id": "a"})
        clock.advance(1)
        second = link.publish("task.done", {"id": "b"})
        clock.advance(ANSWER_DEADLINE)
        silent = [m for m in messages if "has not answered" in m]
        self.assertEqual(silent, ["the hub tcp:127.0.0.1:7750 has not answered for 60 s; reconnecting"])
        self.failureResultOf(link.publish("task.done", {"id": "c"}), StoreUnavailable)
        # In memory, the bytes sent before the drop still arrive.
        self.pass_time(hub, clock, 3)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertTrue(hub.pumps[0].clientIO.disconnected)
        self.assertEqual(len(hub.pumps), 2)
        self.successResultOf(link.when_connected())
        again = link.publish("task.done", {"id": "d"})
        self.pass_time(hub, clock, 1)
        self.successResultOf(again)

    def test_stopDropsStuckConnection(self) -> None:
        """
        A stop closes the connection, and drops it if it has not closed
        within L{CLOSE_GRACE} (a hub that reads nothing leaves unsent bytes
        that a close would wait for): the stop ends.
        """
        clock = MemoryReactorClock()
        link = HubLink(clock, "tcp:127.0.0.1:7750", TOKEN)
        link._connect_to = StuckEndpoint()
        link.startService()
        stopped = link.stopService()
        assert stopped is not None
        clock.advance(CLOSE_GRACE - 1)
        self.assertNoResult(stopped)
        clock.advance(1)
        self.successResultOf(stopped)

    def test_wrongToken(self) -> None:
        """
        A refused token is logged as such, once and then at most every
        L{REFUSAL_LOG_INTERVAL} seconds, each refused connection is left to
        the hub to close, one attempt per L{AUTHENTICATION_TIMEOUT} or so,
        and nothing else is logged: no traceback.
        """
        messages = capture_log(self)
        link, hub, clock = self.link("not the token")
        waiting = link.when_connected()
        self.pass_time(hub, clock, int(REFUSAL_LOG_INTERVAL))
        refusals = [m for m in messages if "refused this worker's token" in m]
        self.assertEqual(len(refusals), 1)
        self.assertIn("wrong token; 1 refusals", refusals[0])
        attempts = len(hub.pumps)
        self.assertGreater(attempts, 2)
        self.assertLessEqual(attempts, REFUSAL_LOG_INTERVAL / AUTHENTICATION_TIMEOUT + 1)
        # Reconnections wait a random part of a second more or less.
        self.pass_time(hub, clock, 2 * int(AUTHENTICATION_TIMEOUT) + 5)
        self.assertEqual(len([m for m in messages if "refused this worker's token" in m]), 2)
        self.assertNoResult(waiting)
        self.stop(link, hub, clock)
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(self.flushLoggedErrors(), [])


class HubLinkBusTests(BusBehaviourMixin, SynchronousTestCase):
    """
    A worker's bus, its link to the hub, passes the behaviour suite every
    L{IBus} passes (see L{harbour.interfaces}).
    """

    queue_limit = 20
    queue_bytes = 1000

    def setUp(self) -> None:
        """
        A link connected to a hub's control service in memory, its
        subscribers' queues as small as the suite's.
        """
        original = hub_module.callback_outbox

        def small(callback: Any, pattern: str, limit: int, drop: Any, byte_limit: int | None = None) -> Any:
            return original(callback, pattern, self.queue_limit, drop, self.queue_bytes)

        self.patch(hub_module, "callback_outbox", small)
        self.hub = Bus()
        self.clock = MemoryReactorClock()
        self.link = HubLink(self.clock, "tcp:127.0.0.1:7750", TOKEN)
        self.memory = HubInMemory(control_service(self.hub))
        self.link._connect_to = self.memory
        self.link.startService()
        connected = self.link.when_connected()
        self.settle()
        self.successResultOf(connected)
        self.bus = self.link
        self.addCleanup(self.stop)

    def stop(self) -> None:
        """
        Stop the link, letting its goodbye through.
        """
        self.link.stopService()
        for ignored in range(7):
            self.settle()
            self.clock.advance(1)

    def settle(self) -> None:
        """
        Deliver whatever is in flight between the link and the hub.
        """
        for ignored in range(5):
            for pump in self.memory.pumps:
                pump.flush()
