"""
Tests for L{harbour.bus}: one behaviour suite for every L{IBus}, run against
the in-process L{Bus} and against L{RemoteBus} over an AMP connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from harbour import bus as bus_module
from harbour.amp import commands
from harbour.amp.client import RemoteBus
from harbour.bus import (
    MAX_VALUE_BYTES,
    Bus,
    Event,
    Outbox,
    Subscription,
    SubscriptionTable,
    matches,
    validate_pattern,
)
from harbour.config.paging import follow_reports, publish_reports
from harbour.config.topics import ReportTopic
from harbour.errors import BadRequest, PayloadTooLarge
from harbour.interfaces import IBus, IEvent, ISubscription
from harbour.test.helpers import TOKEN, connected, control_service

if TYPE_CHECKING:
    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object


class BusBehaviourMixin(_MixinBase):
    """
    What every L{IBus} does.  Subclasses provide C{self.bus}, the bus under
    test, C{self.hub}, the L{Bus} that events finally pass through, and
    C{settle()}, which lets in-flight messages arrive.
    """

    bus: IBus
    hub: Bus
    queue_limit: int
    queue_bytes: int

    def settle(self) -> None:
        """
        Deliver whatever is in flight.
        """

    def result(self, d: Deferred[Any]) -> Any:
        """
        Settle, then return C{d}'s result.
        """
        self.settle()
        return self.successResultOf(d)

    def failure(self, d: Deferred[Any], *types: type[BaseException]) -> Failure:
        """
        Settle, then return C{d}'s failure.
        """
        self.settle()
        return self.failureResultOf(d, *types)

    def collect(self, pattern: str) -> list[tuple[str, object]]:
        """
        Subscribe to C{pattern}, recording (topic, payload) pairs.
        """
        seen: list[tuple[str, object]] = []
        self.result(self.bus.subscribe(pattern, lambda e: seen.append((e.topic, e.payload))))
        return seen

    def test_interface(self) -> None:
        """
        The bus provides L{IBus}; a subscription provides L{ISubscription}.
        """
        verifyObject(IBus, self.bus)
        subscription = self.result(self.bus.subscribe("a", lambda e: None))
        verifyObject(ISubscription, subscription)

    def test_publishDelivers(self) -> None:
        """
        A published event reaches a subscriber of its topic, and C{publish}
        counts the subscribers it was handed to.
        """
        seen = self.collect("work")
        delivered = self.result(self.bus.publish("work", {"refresh_interval": 5}))
        self.settle()
        self.assertEqual(seen, [("work", {"refresh_interval": 5})])
        self.assertEqual(delivered, 1)

    def test_exactTopicOnly(self) -> None:
        """
        An exact subscription does not see other topics, even ones it is a
        prefix of.
        """
        seen = self.collect("task")
        self.result(self.bus.publish("task.done", 1))
        self.result(self.bus.publish("task", 2))
        self.settle()
        self.assertEqual(seen, [("task", 2)])

    def test_prefixPattern(self) -> None:
        """
        A pattern ending in C{*} sees every topic with that prefix.
        """
        seen = self.collect("task.*")
        for topic in ["task.done", "task.failed", "config.error"]:
            self.result(self.bus.publish(topic, topic))
        self.settle()
        self.assertEqual([t for t, _ in seen], ["task.done", "task.failed"])

    def test_orderKept(self) -> None:
        """
        Events reach a subscriber in the order they were published.
        """
        seen = self.collect("n")
        for i in range(100):
            self.bus.publish("n", i)
        self.settle()
        self.assertEqual([p for _, p in seen], list(range(100)))

    def test_retainedForLateSubscribers(self) -> None:
        """
        A retained payload is delivered to a subscriber that comes later;
        only the latest is kept, and plain events are not retained.
        """
        self.result(self.bus.publish("download", {"concurrency": 1}, retain=True))
        self.result(self.bus.publish("download", {"concurrency": 2}, retain=True))
        self.result(self.bus.publish("task.done", {"id": "x"}))
        seen = self.collect("*")
        self.settle()
        self.assertEqual(seen, [("download", {"concurrency": 2})])

    def test_unsubscribe(self) -> None:
        """
        After C{unsubscribe}, no more events arrive.
        """
        seen: list = []
        subscription = self.result(self.bus.subscribe("t", lambda e: seen.append(e.payload)))
        self.result(self.bus.publish("t", 1))
        self.result(self.bus.unsubscribe(subscription))
        self.result(self.bus.publish("t", 2))
        self.settle()
        self.assertEqual(seen, [1])

    def test_badTopicRefused(self) -> None:
        """
        Unusable topics and patterns are refused with L{BadRequest}.
        """
        for topic in ["", "has space", "a*b", "x" * 201, "*"]:
            self.failure(self.bus.publish(topic, 1), BadRequest)
        for pattern in ["", "a b*", "a*b"]:
            self.failure(self.bus.subscribe(pattern, lambda e: None), BadRequest)

    def test_payloadNotJSON(self) -> None:
        """
        A payload that JSON cannot encode is refused with L{BadRequest}: an
        object, or a number JSON has no word for (C{nan}, C{inf}), which
        Python would write as C{NaN} and C{Infinity}.
        """
        self.failure(self.bus.publish("t", {"when": object()}), BadRequest)
        for number in [float("nan"), float("inf"), -float("inf")]:
            self.failure(self.bus.publish("t", {"rate": number}), BadRequest)

    def test_payloadTooLarge(self) -> None:
        """
        A payload larger than one AMP value is refused with a message that
        gives its size and the limit; one just under the limit passes.
        """
        seen = self.collect("big")
        failure = self.failure(self.bus.publish("big", "x" * MAX_VALUE_BYTES), PayloadTooLarge)
        self.assertIn("65,535", str(failure.value))
        self.result(self.bus.publish("big", "x" * (MAX_VALUE_BYTES - 2)))
        self.settle()
        self.assertEqual(len(seen), 1)

    def test_failingSubscriberIsolated(self) -> None:
        """
        A subscriber that raises does not keep the event from the others
        and keeps receiving later events.
        """
        calls: list[object] = []

        def broken(event: IEvent) -> None:
            calls.append(event.payload)
            raise RuntimeError("subscriber bug")

        self.result(self.bus.subscribe("t", broken))
        seen = self.collect("t")
        self.result(self.bus.publish("t", 1))
        self.result(self.bus.publish("t", 2))
        self.settle()
        self.assertEqual(calls, [1, 2])
        self.assertEqual([p for _, p in seen], [1, 2])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_slowSubscriberWaitedFor(self) -> None:
        """
        A subscriber returning an unfired L{Deferred} gets its next event
        only once that Deferred fires; others are not held up.
        """
        pending: list[Deferred[None]] = []
        slow: list[object] = []

        def patient(event: IEvent) -> Deferred[None]:
            slow.append(event.payload)
            pending.append(Deferred())
            return pending[-1]

        self.result(self.bus.subscribe("t", patient))
        fast = self.collect("t")
        for i in range(3):
            self.bus.publish("t", i)
        self.settle()
        self.assertEqual((slow, [p for _, p in fast]), ([0], [0, 1, 2]))
        pending[0].callback(None)
        self.assertEqual(slow, [0, 1])

    def test_slowSubscriberDropped(self) -> None:
        """
        A subscriber that never finishes is dropped once its queue
        overflows, with a logged reason, and the others go on.
        """
        slow: list[object] = []
        pending: list[Deferred[None]] = []

        def stuck(event: IEvent) -> Deferred[None]:
            slow.append(event.payload)
            pending.append(Deferred())
            return pending[-1]

        self.result(self.bus.subscribe("t", stuck))
        fast = self.collect("t")
        for i in range(self.queue_limit + 10):
            self.bus.publish("t", i)
        self.settle()
        pending[0].callback(None)
        self.result(self.bus.publish("t", "after"))
        self.assertEqual(slow, [0])
        self.assertEqual(len(fast), self.queue_limit + 11)

    def test_slowSubscriberDroppedByBytes(self) -> None:
        """
        A subscriber that never finishes is dropped once the payloads
        waiting for it pass the byte limit, however few they are, and the
        others go on.
        """
        pending: list[Deferred[None]] = []

        def never(event: IEvent) -> Deferred[None]:
            pending.append(Deferred())
            return pending[-1]

        stuck = self.result(self.bus.subscribe("t", never))
        fast = self.collect("t")
        # Five JSON strings of a quarter of the limit fill it.
        payload = "x" * (self.queue_bytes // 4 - 2)
        for ignored in range(6):
            self.bus.publish("t", payload)
        self.settle()
        self.assertLess(6, self.queue_limit)
        self.assertEqual(len(pending), 1)
        self.assertTrue(stuck.outbox.closed)
        self.assertEqual(len(fast), 6)

    def test_followReports(self) -> None:
        """
        L{follow_reports} reassembles the paged reports through this bus,
        for a subscriber that came before they were published and for one
        that comes after (from the retained pages).
        """
        early: list[list[str]] = []
        late: list[list[str]] = []
        self.result(follow_reports(self.bus, lambda reports: early.append([r.name for r in reports])))
        reports = [ReportTopic(name=f"r{i}", queryname="SLD_FCST", market_run_id="DAM") for i in range(40)]
        self.result(publish_reports(self.hub, reports, limit=1500))
        retained = self.hub.status()["retained_topics"]
        assert isinstance(retained, list)
        self.assertGreater(len(retained), 3)
        self.result(follow_reports(self.bus, lambda reports: late.append([r.name for r in reports])))
        self.assertEqual(early, [[f"r{i}" for i in range(40)]])
        self.assertEqual(late, early)


class LocalBusTests(BusBehaviourMixin, SynchronousTestCase):
    """
    The behaviour suite against the in-process L{Bus}.
    """

    bus: Bus
    queue_limit = 20
    queue_bytes = 1000

    def setUp(self) -> None:
        self.hub = self.bus = Bus(queue_limit=self.queue_limit, queue_bytes=self.queue_bytes)

    def test_publishedWhileDelivering(self) -> None:
        """
        An event published by a subscriber while it is handed another
        reaches every subscriber after that other, the later subscribers
        included, and its publication counts the subscribers it is to
        reach.
        """
        counts: list[int] = []

        def reacting(event: IEvent) -> None:
            if event.payload == 1:
                counts.append(self.successResultOf(self.bus.publish("x.second", 2)))

        first = self.collect("x.*")
        self.successResultOf(self.bus.subscribe("x.*", reacting))
        later = self.collect("x.*")
        self.successResultOf(self.bus.publish("x.first", 1))
        self.assertEqual(first, [("x.first", 1), ("x.second", 2)])
        self.assertEqual(later, first)
        self.assertEqual(counts, [3])

    def test_publishedWhileDeliveringSubscribedBefore(self) -> None:
        """
        An event published during another's delivery goes to the
        subscribers of its topic when it was published: not to one that
        subscribes afterwards, which gets only its retained value.
        """
        late: list[object] = []

        def reacting(event: IEvent) -> None:
            self.bus.publish("y", "plain")
            self.bus.publish("z", "retained", retain=True)
            self.bus.subscribe("*", lambda e: late.append(e.payload))

        self.successResultOf(self.bus.subscribe("x", reacting))
        self.successResultOf(self.bus.publish("x", 1))
        self.assertEqual(late, ["retained"])

    def test_publishedWhileHandedRetained(self) -> None:
        """
        A new subscriber that publishes a newer value of a retained topic
        while it is handed the retained values gets the newer after every
        older one, so that it ends up holding what the bus retains.
        """
        self.successResultOf(self.bus.publish("a.1", "v1", retain=True))
        self.successResultOf(self.bus.publish("a.2", "v1", retain=True))
        seen: list[tuple[str, object]] = []

        def reacting(event: IEvent) -> None:
            seen.append((event.topic, event.payload))
            if event.topic == "a.1":
                self.bus.publish("a.2", "v2", retain=True)

        self.successResultOf(self.bus.subscribe("a.*", reacting))
        self.assertEqual(seen, [("a.1", "v1"), ("a.2", "v1"), ("a.2", "v2")])

    def test_retainedPastBoundsNotDropped(self) -> None:
        """
        A subscriber handed more retained values on subscribing than its
        queue may hold (it takes its time over each) is not dropped for
        them: it gets every one, in order; a subscriber that stops taking
        events is dropped for those published afterwards as ever.
        """
        for i in range(self.queue_limit * 2):
            self.bus.dispatch_remote(Event.create(f"r.{i}", i), retain=True)
        pending: list[Deferred[None]] = []
        seen: list[object] = []

        def patient(event: IEvent) -> Deferred[None]:
            seen.append(event.payload)
            pending.append(Deferred())
            return pending[-1]

        subscription = self.successResultOf(self.bus.subscribe("r.*", patient))
        while not pending[-1].called:
            pending[-1].callback(None)
        self.assertEqual(seen, list(range(self.queue_limit * 2)))
        self.assertFalse(subscription.outbox.closed)
        # One taken, the limit waiting, and one more.
        for i in range(self.queue_limit + 2):
            self.bus.publish("r.0", i)
        self.assertTrue(subscription.outbox.closed)
        self.assertEqual(self.bus.status()["dropped_subscribers"], 1)

    def test_statusCountsDrops(self) -> None:
        """
        A dropped subscriber is counted in the status.
        """
        self.test_slowSubscriberDropped()
        self.assertEqual(self.bus.status()["dropped_subscribers"], 1)


class RemoteBusTests(BusBehaviourMixin, SynchronousTestCase):
    """
    The behaviour suite against L{RemoteBus}, through a real AMP protocol
    pair over an in-memory transport.
    """

    queue_limit = 20
    queue_bytes = 1000

    def setUp(self) -> None:
        self.hub = Bus()
        service = control_service(self.hub)
        self.client, self.server, self.pump = connected(service)
        self.client.queue_limit = self.queue_limit
        self.client.queue_bytes = self.queue_bytes
        self.client.callRemote(commands.Authenticate, token=TOKEN)
        self.pump.flush()
        self.bus = RemoteBus(self.client)

    def settle(self) -> None:
        """
        Move every byte in flight.
        """
        self.pump.flush()

    def test_retainedOncePerSubscriber(self) -> None:
        """
        Local subscribers sharing one connection each get a retained value
        once, whether they subscribe to the same pattern or to patterns
        that overlap, and each gets a later event once.
        """
        self.result(self.hub.publish("download", {"concurrency": 2}, retain=True))
        first = self.collect("download")
        second = self.collect("download")
        everything = self.collect("*")
        self.result(self.hub.publish("download", {"concurrency": 3}))
        self.settle()
        retained, later = ("download", {"concurrency": 2}), ("download", {"concurrency": 3})
        self.assertEqual(first, [retained, later])
        self.assertEqual(second, first)
        self.assertEqual(everything, first)

    def test_remoteUnsubscribeLast(self) -> None:
        """
        The daemon's subscription ends only with the client's last local
        subscription to that pattern.
        """
        first = self.result(self.bus.subscribe("t", lambda e: None))
        second = self.result(self.bus.subscribe("t", lambda e: None))
        self.result(self.bus.unsubscribe(first))
        self.assertEqual(self.hub.status()["subscriptions"], 1)
        self.result(self.bus.unsubscribe(second))
        self.assertEqual(self.hub.status()["subscriptions"], 0)

    def test_droppedUnsubscribed(self) -> None:
        """
        A local subscriber dropped for not keeping up is unsubscribed on
        the daemon too, being the last of its pattern, so that its events
        stop coming; a pattern another subscriber has goes on.
        """
        self.result(self.bus.subscribe("t", lambda e: Deferred()))
        self.result(self.bus.subscribe("u", lambda e: Deferred()))
        self.collect("u")
        for i in range(self.queue_limit + 2):
            self.hub.publish("t", i)
            self.hub.publish("u", i)
        self.settle()
        self.assertEqual(self.hub.status()["subscriptions"], 1)
        self.assertEqual(self.result(self.hub.publish("t", "after")), 0)
        self.assertEqual(self.result(self.hub.publish("u", "after")), 1)


class OutboxTests(SynchronousTestCase):
    """
    Tests for L{Outbox} as a push producer.
    """

    def setUp(self) -> None:
        self.sent: list[Event] = []
        self.overflows: list[str] = []
        self.outbox = Outbox(self.sent.append, self.overflows.append, limit=2)
        self.a, self.b, self.c, self.d = (Event.create("t", x) for x in "abcd")

    def test_pausedQueues(self) -> None:
        """
        While paused, events wait, and they are sent in order on resume.
        """
        self.outbox.pauseProducing()
        self.outbox.put(self.a)
        self.outbox.put(self.b)
        self.assertEqual((self.sent, self.outbox.waiting), ([], 2))
        self.outbox.resumeProducing()
        self.assertEqual(self.sent, [self.a, self.b])

    def test_overflow(self) -> None:
        """
        One event more than the limit closes the outbox and reports why.
        """
        self.outbox.pauseProducing()
        results = [self.outbox.put(x) for x in (self.a, self.b, self.c)]
        self.assertEqual(results, [True, True, False])
        self.assertTrue(self.outbox.closed)
        self.assertEqual(self.overflows, ["more than 2 events waiting: subscriber is not reading"])
        self.assertFalse(self.outbox.put(self.d))

    def test_overflowBytes(self) -> None:
        """
        An event that would take the payloads waiting past the byte limit
        closes the outbox and reports why, however few events wait; the
        bytes waiting are counted down as events are sent.
        """
        outbox = Outbox(self.sent.append, self.overflows.append, limit=100, byte_limit=10)
        four = Event.create("t", "ab")
        self.assertEqual(four.size, 4)
        outbox.pauseProducing()
        self.assertEqual([outbox.put(four), outbox.put(four)], [True, True])
        self.assertEqual(outbox.waiting_bytes, 8)
        outbox.resumeProducing()
        self.assertEqual(outbox.waiting_bytes, 0)
        outbox.pauseProducing()
        self.assertEqual([outbox.put(four), outbox.put(four), outbox.put(four)], [True, True, False])
        self.assertTrue(outbox.closed)
        self.assertEqual(self.overflows, ["more than 10 bytes of events waiting: subscriber is not reading"])
        self.assertEqual(outbox.waiting_bytes, 0)

    def test_encoded(self) -> None:
        """
        An outbox given C{encode} (a connection's, which sends each event's
        box) sends and queues what C{encode} makes of each event, not the
        event, which may hold its publisher's payload too; its bounds count
        the events' sizes as ever.
        """
        sent: list[object] = []
        outbox = Outbox(sent.append, self.overflows.append, byte_limit=14, encode=lambda e: e.text.encode())
        published = Event.create("t", [[], []])
        outbox.put(published)
        outbox.pauseProducing()
        self.assertEqual([outbox.put(published), outbox.put(published, bounded=False)], [True, True])
        self.assertEqual(outbox.waiting_bytes, 14)
        self.assertEqual([item for item, topic, size, counted in outbox._queue], [b"[[],[]]"] * 2)
        outbox.resumeProducing()
        self.assertEqual(sent, [b"[[],[]]"] * 3)
        self.assertEqual(outbox.waiting_bytes, 0)

    def test_unboundedNotCounted(self) -> None:
        """
        Events put unbounded (retained values on subscribing) wait without
        counting towards the bounds, however many; those put after them
        count as ever, and all are sent in order.
        """
        outbox = Outbox(self.sent.append, self.overflows.append, limit=2, byte_limit=10)
        retained = [Event.create("r", "abcdefgh") for ignored in range(5)]
        outbox.pauseProducing()
        self.assertEqual([outbox.put(event, bounded=False) for event in retained], [True] * 5)
        self.assertEqual((outbox.waiting, outbox.waiting_bytes), (5, 50))
        self.assertEqual([outbox.put(self.a), outbox.put(self.b)], [True, True])
        self.assertEqual(self.overflows, [])
        outbox.resumeProducing()
        self.assertEqual(self.sent, [*retained, self.a, self.b])
        outbox.pauseProducing()
        self.assertEqual([outbox.put(x) for x in (self.a, self.b, self.c)], [True, True, False])
        self.assertEqual(self.overflows, ["more than 2 events waiting: subscriber is not reading"])

    def test_eventSize(self) -> None:
        """
        An event's size is the bytes of its payload's JSON text in UTF-8,
        however it was made.
        """
        self.assertEqual(Event.create("t", "\u00e9").size, 4)
        self.assertEqual(Event.from_text("t", '"\u00e9"').size, 4)
        self.assertEqual(Event("t", '"\u00e9"').size, 4)

    def test_textKeptUndecoded(self) -> None:
        """
        An event that arrived as text is checked as it arrives, and keeps
        no decoded payload, even once read: each reading decodes a copy of
        its own, so that the copies queued for a connection that reads
        slowly hold their text alone, whatever the daemon read of them.
        One made from a payload gives that payload, decoding nothing.
        """
        decoded: list[str] = []
        decoder = bus_module._DECODER

        class Counting:
            def decode(self, text: str) -> object:
                decoded.append(text)
                return decoder.decode(text)

        self.patch(bus_module, "_DECODER", Counting())
        event = Event.from_text("t", "[[],[]]")
        self.assertEqual(decoded, ["[[],[]]"])
        self.assertIs(event.given, bus_module._UNREAD)
        first, second = event.payload, event.payload
        self.assertEqual((first, second), ([[], []], [[], []]))
        self.assertIsNot(first, second)
        self.assertEqual(decoded, ["[[],[]]"] * 3)
        payload = {"a": 1}
        self.assertIs(Event.create("t", payload).payload, payload)
        self.assertEqual(len(decoded), 3)
        self.assertRaises(BadRequest, Event.from_text, "t", "[[],")


class _Unwalkable(dict[Any, Any]):
    """
    An index of a L{SubscriptionTable} that counts the keys looked up in
    it, and the walks over all of it.
    """

    looked_up = 0
    walked = 0

    def get(self, key: Any, default: Any = None) -> Any:
        """
        Count, then look up.
        """
        self.looked_up += 1
        return super().get(key, default)

    def __iter__(self) -> Iterator[Any]:
        """
        Count, then walk.
        """
        self.walked += 1
        return super().__iter__()

    def items(self) -> Any:  # dict_items, which typing does not name
        """
        Count, then walk.
        """
        self.walked += 1
        return super().items()


class RetainedBoundTests(SynchronousTestCase):
    """
    The bounds on what clients keep retained (L{Bus.dispatch_remote}), and
    the daemon's own retained topics, which they leave alone.
    """

    def setUp(self) -> None:
        self.bus = Bus(retained_limit=3, retained_bytes=20)
        self.seen: list[tuple[str, object]] = []
        self.successResultOf(self.bus.subscribe("*", lambda e: self.seen.append((e.topic, e.payload))))

    def retain(self, topic: str, payload: object) -> int:
        """
        Publish C{payload} on C{topic}, retained, as a client does.

        @return: How many subscribers it was handed to.
        """
        return self.bus.dispatch_remote(Event.create(topic, payload), retain=True)

    def test_topicsBounded(self) -> None:
        """
        A client's retained value of a new topic past C{retained_limit}
        topics is refused with L{BadRequest} saying so, and neither
        retained nor handed out; a topic retained already takes new values,
        and an event not retained still goes through.  C{Status} lists no
        more retained topics than the bound.
        """
        for topic in ["a", "b", "c"]:
            self.assertEqual(self.retain(topic, 1), 1)
        error = self.assertRaises(BadRequest, self.retain, "d", 1)
        self.assertIn("clients keep 3 topics retained, the most they may", str(error))
        self.assertIsNone(self.bus.retained("d"))
        self.assertEqual(self.retain("a", 2), 1)
        self.assertEqual(self.bus.dispatch_remote(Event.create("d", 3)), 1)
        self.assertEqual(self.seen, [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("d", 3)])
        status = self.bus.status()
        self.assertEqual(status["retained_topics"], ["a", "b", "c"])
        self.assertEqual(status["retained_by_clients"], {"topics": 3, "bytes": 3})

    def test_bytesBounded(self) -> None:
        """
        A client's retained value that would take the text of all clients'
        retained values past C{retained_bytes} is refused, a new value of a
        retained topic counted in place of its old one.
        """
        # '"abcdefgh"' is ten bytes of JSON text.
        self.retain("a", "abcdefgh")
        self.retain("b", "abcdefgh")
        error = self.assertRaises(BadRequest, self.retain, "c", "x")
        self.assertIn("past 20 bytes", str(error))
        self.assertRaises(BadRequest, self.retain, "b", "abcdefghi")
        self.assertEqual(self.bus.retained("b"), "abcdefgh")
        self.retain("b", "x")
        # Up to the bound exactly: 10 + 3 + 7 bytes.
        self.retain("c", "abcde")
        self.assertEqual(self.bus.status()["retained_by_clients"], {"topics": 3, "bytes": 20})

    def test_daemonNotBounded(self) -> None:
        """
        The daemon's own retained topics are never refused, however much
        clients keep, and do not count towards the bounds; a client may
        not retain a value of a topic the daemon retains.
        """
        for topic in ["a", "b", "c"]:
            self.retain(topic, 1)
        self.successResultOf(self.bus.publish("paused", {"services": ["download" * 10]}, retain=True))
        self.assertEqual(self.bus.retained("paused"), {"services": ["download" * 10]})
        self.assertEqual(self.bus.status()["retained_by_clients"], {"topics": 3, "bytes": 3})
        error = self.assertRaises(BadRequest, self.retain, "paused", {"services": []})
        self.assertIn("retained by the daemon", str(error))

    def test_nullClears(self) -> None:
        """
        A client's retained C{null} clears its topic's retained value,
        making room under the bounds, and is handed out so that subscribers
        know; on a topic with no retained value it is only handed out.
        """
        for topic in ["a", "b", "c"]:
            self.retain(topic, "abc")
        self.assertEqual(self.retain("a", None), 1)
        self.assertEqual(self.retain("x", None), 1)
        self.assertIsNone(self.bus.retained("a"))
        self.assertEqual(self.bus.retained_events("*"), [Event.create("b", "abc"), Event.create("c", "abc")])
        self.assertEqual(self.bus.status()["retained_by_clients"], {"topics": 2, "bytes": 10})
        self.assertEqual(self.seen[3:], [("a", None), ("x", None)])
        self.retain("d", 1)
        self.assertEqual(self.bus.status()["retained_topics"], ["b", "c", "d"])

    def test_nullLeavesDaemonsValue(self) -> None:
        """
        A client's retained C{null} on a topic the daemon retains is refused
        and clears nothing; the daemon's own retained C{null} is a value
        like any other, kept.
        """
        self.successResultOf(self.bus.publish("paused", {"services": []}, retain=True))
        self.assertRaises(BadRequest, self.retain, "paused", None)
        self.assertEqual(self.bus.retained("paused"), {"services": []})
        self.successResultOf(self.bus.publish("setting", None, retain=True))
        self.assertEqual(self.bus.retained_events("setting"), [Event.create("setting", None)])

    def test_daemonTakesOver(self) -> None:
        """
        A topic a client retained and the daemon retains afterwards is the
        daemon's: it no longer counts towards the clients' bounds.
        """
        self.retain("a", "abcdefgh")
        self.successResultOf(self.bus.publish("a", "daemon", retain=True))
        self.assertEqual(self.bus.status()["retained_by_clients"], {"topics": 0, "bytes": 0})
        self.assertRaises(BadRequest, self.retain, "a", 1)


class SubscriptionTableTests(SynchronousTestCase):
    """
    Tests for L{SubscriptionTable}, the index that routes events.
    """

    def setUp(self) -> None:
        self.table = SubscriptionTable()

    def outbox(self) -> Outbox:
        """
        @return: An outbox that sends nowhere.
        """
        return Outbox(lambda event: None, lambda reason: None)

    def subscribe(self, pattern: str, outbox: Outbox | None = None) -> Subscription:
        """
        Add a subscription of C{outbox} (a new one by default) to C{pattern}.
        """
        subscription = Subscription(pattern, outbox or self.outbox())
        self.table.add(subscription)
        return subscription

    def test_routedInSubscriptionOrder(self) -> None:
        """
        An event goes to each outbox whose exact or prefix pattern selects
        its topic, once however many of its patterns do, in the order the
        outboxes first subscribed.
        """
        a, b, c = self.outbox(), self.outbox(), self.outbox()
        self.subscribe("task.*", b)
        self.subscribe("task.done", a)
        self.subscribe("*", c)
        self.subscribe("task.done", b)
        self.subscribe("t*", a)
        self.subscribe("task.failed", self.outbox())
        self.subscribe("tasks*", self.outbox())
        self.assertEqual(list(self.table.outboxes("task.done")), [b, a, c])
        self.assertEqual(list(self.table.outboxes("config.error")), [c])

    def test_remove(self) -> None:
        """
        A removed subscription no longer routes, others of its pattern and
        outbox still do, and removing it again is no error.
        """
        a, b = self.outbox(), self.outbox()
        first = self.subscribe("x.*", a)
        self.subscribe("x.*", b)
        exact = self.subscribe("x.y", a)
        self.table.remove(first)
        self.table.remove(first)
        self.assertEqual(list(self.table.outboxes("x.y")), [b, a])
        self.table.remove(exact)
        self.assertEqual(list(self.table.outboxes("x.y")), [b])
        self.assertEqual(len(self.table), 1)
        self.assertTrue(self.table.subscribed("x.*"))
        self.assertFalse(self.table.subscribed("x.y"))

    def test_routeFollowsSubscriptions(self) -> None:
        """
        A topic looked up once is routed afresh after each subscription
        added or removed, whether exact or a prefix.
        """
        a, b = self.outbox(), self.outbox()
        exact = self.subscribe("x.y", a)
        self.assertEqual(list(self.table.outboxes("x.y")), [a])
        prefix = self.subscribe("x.*", b)
        self.assertEqual(list(self.table.outboxes("x.y")), [a, b])
        self.table.remove(exact)
        self.assertEqual(list(self.table.outboxes("x.y")), [b])
        self.table.remove(prefix)
        self.assertEqual(list(self.table.outboxes("x.y")), [])

    def test_routesKeptBounded(self) -> None:
        """
        At most L{bus_module.ROUTES_KEPT} topics' routes are kept, however many
        topics are published, and each is still routed right.
        """
        self.patch(bus_module, "ROUTES_KEPT", 3)
        a = self.outbox()
        self.subscribe("t*", a)
        for n in range(10):
            self.assertEqual(list(self.table.outboxes(f"t{n}")), [a])
            self.assertEqual(list(self.table.outboxes(f"u{n}")), [])
        self.assertLessEqual(len(self.table._routes), 3)

    def test_removeOutbox(self) -> None:
        """
        L{SubscriptionTable.remove_outbox} removes every subscription of one
        outbox, and answers them in the order they were added.
        """
        a, b = self.outbox(), self.outbox()
        first = self.subscribe("p*", a)
        self.subscribe("q", b)
        second = self.subscribe("q", a)
        self.assertEqual(sorted(self.table.patterns(a)), ["p*", "q"])
        self.assertEqual(self.table.remove_outbox(a), [first, second])
        self.assertEqual(list(self.table.patterns(a)), [])
        self.assertEqual(list(self.table.outboxes("q")), [b])
        self.assertEqual(list(self.table.outboxes("p")), [])
        self.assertEqual(len(self.table), 1)

    def test_routingLooksOnlyAtMatches(self) -> None:
        """
        Routing an event compares its topic with no pattern that cannot
        select it: its cost does not grow with the number of prefix
        subscriptions.
        """
        for i in range(1000):
            self.subscribe(f"r{i}.*")
        wanted = self.subscribe("z*")
        prefixes = _Unwalkable(self.table._prefixes)
        self.table._prefixes = prefixes
        self.assertEqual(list(self.table.outboxes("zzz")), [wanted.outbox])
        # One look-up per length of prefix subscribed ("z", and "r0." to
        # "r999."): none per subscription.
        self.assertEqual(prefixes.walked, 0)
        self.assertLessEqual(prefixes.looked_up, 4)

    def test_subscribingLooksAtNoOther(self) -> None:
        """
        Subscribing, unsubscribing and dropping a connection's
        subscriptions do not walk the bus's other subscriptions, so they
        cost the same however many there are.
        """
        bus = Bus()
        outbox = self.outbox()
        for i in range(100):
            bus.attach(f"r{i}", self.outbox())
        ranks = _Unwalkable(bus._table._rank)
        bus._table._rank = ranks
        bus.detach(outbox, "a")
        bus.attach("a", outbox)
        bus.detach(outbox, "a")
        bus.attach("b*", outbox)
        bus.detach(outbox)
        self.successResultOf(bus.unsubscribe(self.successResultOf(bus.subscribe("c", lambda e: None))))
        self.assertEqual(ranks.walked, 0)


class PatternTests(SynchronousTestCase):
    """
    Tests for topic patterns.
    """

    def test_matches(self) -> None:
        """
        An exact pattern matches only its topic; C{prefix*} its prefix;
        C{*} everything.
        """
        self.assertTrue(matches("a.b", "a.b"))
        self.assertFalse(matches("a.b", "a.bc"))
        self.assertTrue(matches("a.*", "a.b"))
        self.assertFalse(matches("a.*", "ab"))
        self.assertTrue(matches("*", "anything"))

    def test_validatePattern(self) -> None:
        """
        A prefix may end in C{.} or C{-}; a C{*} elsewhere is refused,
        the error naming the pattern as given.
        """
        self.assertEqual(validate_pattern("task.*"), "task.*")
        self.assertEqual(validate_pattern("*"), "*")
        self.assertRaises(BadRequest, validate_pattern, "ta*sk")
        error = self.assertRaises(BadRequest, validate_pattern, "a**")
        self.assertEqual(str(error), "bad pattern 'a**': a topic, or the start of one followed by one '*'")
