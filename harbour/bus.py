"""
The PUBSUB SERVER: an in-process publish/subscribe broker.

Remote subscribers reach it through the AMP listener (L{harbour.amp.server}),
which attaches one L{Outbox} per connection; in-process services call
L{Bus.subscribe} like any other L{IBus}.  Each subscriber has its own bounded
outbox, so a subscriber that stops reading is dropped without holding up the
others, and events reach each one in the order they were published.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.errors import BadRequest, PayloadTooLarge
from harbour.interfaces import IBus, IEvent, IStatusSource, ISubscription

#: The largest value one AMP box can carry.
MAX_VALUE_BYTES = 0xFFFF

#: The longest topic or pattern accepted.
MAX_TOPIC_LENGTH = 200

#: Events held for one subscriber that is not keeping up, before it is dropped.
DEFAULT_QUEUE_LIMIT = 10_000

#: Bytes of payload held for one subscriber that is not keeping up, before
#: it is dropped: with payloads of up to 64 KiB, the count alone would let
#: one stuck subscriber hold gigabytes.
DEFAULT_QUEUE_BYTES = 16 << 20

#: Topics whose subscribers a bus keeps looked up (see L{SubscriptionTable}).
ROUTES_KEPT = 1_024

#: The most topics whose values clients (through the control port's
#: C{Publish}) may keep retained at once, and the most bytes of JSON text
#: those values may hold in all.  A retained value stays in the daemon's
#: memory (its text: see L{Event}) until it is replaced or the daemon
#: stops, and each retained topic is listed in C{Status}.  The daemon's
#: own retained topics (the configuration's, C{paused}) do not count, and
#: are never refused.
RETAINED_TOPIC_LIMIT = 1_000
RETAINED_BYTES_LIMIT = 16 << 20

_TOPIC = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")


def validate_topic(topic: object) -> str:
    """
    @return: C{topic} if it is a usable topic name.
    @raise BadRequest: if it is not.
    """
    if not isinstance(topic, str) or not topic:
        raise BadRequest("a topic must be a non-empty string")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise BadRequest(f"a topic may have at most {MAX_TOPIC_LENGTH} characters")
    if not _TOPIC.match(topic):
        raise BadRequest(f"bad topic {topic!r}: use letters, digits, '_', '.' and '-'")
    return topic


def validate_pattern(pattern: object) -> str:
    """
    @return: C{pattern} if it is a topic, or a topic prefix (possibly empty)
        followed by C{*}.
    @raise BadRequest: if it is neither.
    """
    if isinstance(pattern, str) and pattern.endswith("*"):
        prefix = pattern[:-1]
        if prefix:
            # A prefix may end in '.' or '-', which a topic may not.
            try:
                validate_topic(prefix + "x")
            except BadRequest:
                raise BadRequest(
                    f"bad pattern {pattern!r}: a topic, or the start of one followed by one '*'"
                ) from None
        return pattern
    return validate_topic(pattern)


def matches(pattern: str, topic: str) -> bool:
    """
    @return: Whether C{topic} is selected by C{pattern}.
    """
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    return topic == pattern


def _not_json(constant: str) -> object:
    """
    Refuse C{NaN}, C{Infinity} and C{-Infinity}, which Python's JSON reads
    and writes but JSON has not: a subscriber in another language could
    not read an event carrying one.

    @raise ValueError: always.
    """
    raise ValueError(f"{constant} is not a JSON number")


# Made once: json.dumps and json.loads given any option make one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_not_json)


#: What L{Event.given} holds for an event that arrived as JSON text: its
#: payload is decoded when first read.
_UNREAD = object()


@implementer(IEvent)
@attr.s(frozen=True, slots=True, auto_attribs=True)
class Event:
    """
    One published event: a topic and its JSON payload, encoded once.

    An event that arrived as text (another process published it) keeps
    only the text: its payload is decoded anew each time it is read, and
    its AMP box (L{wire}) built anew each time it is asked for.  Queued
    for connections that read slowly, or retained, it holds its JSON,
    which the bus's limits count, and neither a decoded copy, which may
    take twenty times the memory (a payload of many tiny values,
    C{[[],[],...]}), nor a box, which would double it: either, kept on
    the event once a subscriber in the daemon read it or a connection was
    sent it, would stay on every copy queued, past the queue's bound.

    @ivar size: The bytes of C{text} in UTF-8.
    @ivar tag: For a retained event sent to a connection in answer to its
        C{Subscribe}, the tag that C{Subscribe} carried (see L{tagged}).
    @ivar given: The payload its publisher gave, or C{_UNREAD}.
    """

    topic: str
    text: str = attr.ib(repr=False)
    size: int = attr.ib(
        default=attr.Factory(lambda self: len(self.text.encode("utf-8")), takes_self=True), repr=False
    )
    tag: int | None = attr.ib(default=None, repr=False)
    given: object = attr.ib(default=_UNREAD, repr=False, eq=False)

    @classmethod
    def create(cls, topic: str, payload: object) -> Event:
        """
        Validate and encode a new event.

        @raise BadRequest: The topic is unusable or the payload is not JSON.
        @raise PayloadTooLarge: The encoded payload exceeds one AMP value.
        """
        try:
            text = _ENCODER.encode(payload)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"payload for {topic!r} is not JSON: {e}") from None
        return cls.from_text(topic, text, payload)

    @classmethod
    def from_text(cls, topic: str, text: str, payload: object = _UNREAD) -> Event:
        """
        Wrap an event whose payload arrived as JSON text.

        @param payload: The payload C{text} encodes, if the caller has it.
        @raise BadRequest: The topic is unusable or the text is not JSON.
        @raise PayloadTooLarge: The text exceeds one AMP value.
        """
        validate_topic(topic)
        size = len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise PayloadTooLarge(
                f"payload for {topic!r} is {size:,} bytes; the limit is {MAX_VALUE_BYTES:,} (one AMP value)"
            )
        if payload is _UNREAD:
            try:
                # Checked now, kept as text: see the class's docstring.
                _DECODER.decode(text)
            except ValueError as e:
                raise BadRequest(f"payload for {topic!r} is not JSON: {e}") from None
        return cls(topic, text, size, given=payload)

    @property
    def payload(self) -> object:
        """
        The decoded JSON value it carries: the one its publisher gave, or,
        for an event that arrived as text, a copy decoded for this reading
        (see the class's docstring).  Subscribers in the daemon are few per
        topic, and each reads an event once.
        """
        if self.given is not _UNREAD:
            return self.given
        return _DECODER.decode(self.text)

    @property
    def wire(self) -> bytes:
        """
        This event as a serialised AMP C{Event} box, built anew each time:
        what sends one event to many connections in turn keeps it for them
        (see L{harbour.amp.server.ControlService.wire}).
        """
        from harbour.amp.commands import encode_event

        return encode_event(self.topic, self.text, self.tag)

    def tagged(self, tag: int) -> Event:
        """
        @return: This event, to be sent carrying C{tag}: the retained value
            of a topic answering a C{Subscribe} tagged so.
        """
        return attr.evolve(self, tag=tag)


@implementer(IPushProducer)
class Outbox:
    """
    The ordered, bounded queue of events on their way to one subscriber.

    Events are handed to C{send} at once while the subscriber keeps up.  It
    is paused by its transport (as an L{IPushProducer}) when the peer stops
    reading, or by itself while C{send} returns an unfired L{Deferred}; while
    paused, events wait here, and once more than C{limit} wait, or more
    than C{byte_limit} bytes of payload, the subscriber is given up through
    C{overflow}.

    The retained values handed to a subscriber as it subscribes wait here
    too, but do not count towards those bounds: there may be more of them
    at once than the bounds allow (the bus bounds them itself), and a
    subscriber that reads as fast as it can is still reading the first of
    them as the rest are put, all at once.  What counts is what is
    published while they wait, as for any subscriber.

    What counts of an event is its JSON text (L{Event.size}).  An outbox
    whose subscriber is sent each event as bytes (a connection, its AMP
    box) is given C{encode}, which makes them: it sends and queues what
    C{encode} makes of each event, about its size, and not the event,
    which may hold its publisher's payload as well (a decoded copy, twenty
    times the memory for C{[[],[],...]}).  Made once for every connection
    the event goes to (see L{harbour.amp.server.ControlService.wire}),
    the bytes are shared by those that wait.
    """

    log = Logger()

    def __init__(
        self,
        send: Callable[[Any], object],
        overflow: Callable[[str], None],
        limit: int = DEFAULT_QUEUE_LIMIT,
        byte_limit: int = DEFAULT_QUEUE_BYTES,
        encode: Callable[[Event], object] | None = None,
    ) -> None:
        """
        @param send: Called with each event, or with what C{encode} makes
            of it if given.
        """
        self._send = send
        self._overflow = overflow
        self._limit = limit
        self._byte_limit = byte_limit
        self._encode = encode
        # Each event waiting (or what encode made of it), its topic and
        # size, and whether it counts towards the bounds.
        self._queue: deque[tuple[object, str, int, bool]] = deque()
        self._bytes = 0
        # How many of those count, and their bytes.
        self._counted = 0
        self._counted_bytes = 0
        self._paused = False
        self.closed = False

    def put(self, event: Event, bounded: bool = True) -> bool:
        """
        Send or queue one event.

        @param bounded: Whether, while it waits, the event counts towards
            the bounds: not for a retained value handed out on subscribing.
        @return: Whether the event was accepted.
        """
        if self.closed:
            return False
        item = event if self._encode is None else self._encode(event)
        if not (self._paused or self._queue):
            self._deliver(item, event.topic)
            return True
        if bounded:
            if self._counted >= self._limit:
                waiting = f"more than {self._limit:,} events"
            elif self._counted_bytes + event.size > self._byte_limit:
                waiting = f"more than {self._byte_limit:,} bytes of events"
            else:
                waiting = ""
            if waiting:
                self.stopProducing()
                self._overflow(f"{waiting} waiting: subscriber is not reading")
                return False
            self._counted += 1
            self._counted_bytes += event.size
        self._queue.append((item, event.topic, event.size, bounded))
        self._bytes += event.size
        return True

    @property
    def waiting(self) -> int:
        """
        How many events are queued, counted towards the bounds or not.
        """
        return len(self._queue)

    @property
    def waiting_bytes(self) -> int:
        """
        How many bytes of payload are queued, counted towards the bounds or
        not.
        """
        return self._bytes

    def _deliver(self, item: object, topic: str) -> None:
        try:
            result = self._send(item)
        except Exception:
            self.log.failure("subscriber failed on {topic}", topic=topic)
            return
        if isinstance(result, Deferred):
            result.addErrback(self._failed, topic)
            if not result.called:
                self.pauseProducing()
                result.addBoth(self._settled)

    def _failed(self, failure: Failure, topic: str) -> None:
        self.log.failure("subscriber failed on {topic}", failure, topic=topic)

    def _settled(self, ignored: object) -> None:
        self.resumeProducing()

    def pauseProducing(self) -> None:
        """
        Hold events until L{resumeProducing}.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        Send the events that waited, until paused again.
        """
        self._paused = False
        while self._queue and not self._paused and not self.closed:
            item, topic, size, counted = self._queue.popleft()
            self._bytes -= size
            if counted:
                self._counted -= 1
                self._counted_bytes -= size
            self._deliver(item, topic)

    def stopProducing(self) -> None:
        """
        Send nothing more.
        """
        self.closed = True
        self._queue.clear()
        self._bytes = self._counted = self._counted_bytes = 0


@implementer(ISubscription)
@attr.s(frozen=True, eq=False, auto_attribs=True)
class Subscription:
    """
    One pattern feeding one outbox.
    """

    pattern: str
    outbox: Outbox


class SubscriptionTable:
    """
    Finds the outboxes an event goes to.

    Subscriptions are indexed by exact topic, by prefix and by outbox, so
    that adding or removing one costs the same however many there are, and
    routing an event costs one look-up per distinct prefix length (at most
    L{MAX_TOPIC_LENGTH}), not one comparison per subscription.  The route
    of a topic is kept until the subscriptions change, for up to
    L{ROUTES_KEPT} topics: a daemon publishes few topics, again and again.
    """

    def __init__(self) -> None:
        self._next = 0
        # Every subscription, in the order it was added, with its rank.
        self._rank: dict[Subscription, int] = {}
        # Insertion-ordered sets of subscriptions, by topic and by prefix.
        self._exact: dict[str, dict[Subscription, None]] = {}
        self._prefixes: dict[str, dict[Subscription, None]] = {}
        # How many prefixes of each length there are.
        self._lengths: dict[int, int] = {}
        self._outboxes: dict[Outbox, dict[str, dict[Subscription, None]]] = {}
        self._routes: dict[str, tuple[Outbox, ...]] = {}

    def __len__(self) -> int:
        """
        @return: How many subscriptions there are.
        """
        return len(self._rank)

    def add(self, subscription: Subscription) -> None:
        """
        Start routing events to C{subscription}.
        """
        if subscription in self._rank:
            return
        self._routes.clear()
        self._rank[subscription] = self._next
        self._next += 1
        pattern = subscription.pattern
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            if prefix not in self._prefixes:
                self._lengths[len(prefix)] = self._lengths.get(len(prefix), 0) + 1
            self._prefixes.setdefault(prefix, {})[subscription] = None
        else:
            self._exact.setdefault(pattern, {})[subscription] = None
        self._outboxes.setdefault(subscription.outbox, {}).setdefault(pattern, {})[subscription] = None

    def remove(self, subscription: Subscription) -> None:
        """
        Stop routing events to C{subscription} (no error if it is gone).
        """
        if self._rank.pop(subscription, None) is None:
            return
        self._routes.clear()
        pattern = subscription.pattern
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            if _discard(self._prefixes, prefix, subscription):
                self._lengths[len(prefix)] -= 1
                if not self._lengths[len(prefix)]:
                    del self._lengths[len(prefix)]
        else:
            _discard(self._exact, pattern, subscription)
        patterns = self._outboxes[subscription.outbox]
        _discard(patterns, pattern, subscription)
        if not patterns:
            del self._outboxes[subscription.outbox]

    def remove_outbox(self, outbox: Outbox) -> list[Subscription]:
        """
        Remove every subscription feeding C{outbox}.

        @return: The subscriptions removed, in the order they were added.
        """
        gone = sorted(
            (s for bucket in self._outboxes.get(outbox, {}).values() for s in bucket),
            key=self._rank.__getitem__,
        )
        for subscription in gone:
            self.remove(subscription)
        return gone

    def find(self, outbox: Outbox, pattern: str) -> list[Subscription]:
        """
        @return: The subscriptions of C{outbox} to C{pattern}.
        """
        return list(self._outboxes.get(outbox, {}).get(pattern, ()))

    def patterns(self, outbox: Outbox) -> Collection[str]:
        """
        @return: The patterns C{outbox} is subscribed to, as a live view.
        """
        return self._outboxes.get(outbox, {}).keys()

    def subscribed(self, pattern: str) -> bool:
        """
        @return: Whether any subscription is to C{pattern}.
        """
        if pattern.endswith("*"):
            return pattern[:-1] in self._prefixes
        return pattern in self._exact

    def outboxes(self, topic: str) -> tuple[Outbox, ...]:
        """
        @return: Each outbox subscribed to C{topic}, once, in subscription order.
        """
        route = self._routes.get(topic)
        if route is None:
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            route = self._routes[topic] = self._route(topic)
        return route

    def _route(self, topic: str) -> tuple[Outbox, ...]:
        buckets = []
        exact = self._exact.get(topic)
        if exact:
            buckets.append(exact)
        for length in self._lengths:
            if length <= len(topic):
                bucket = self._prefixes.get(topic[:length])
                if bucket:
                    buckets.append(bucket)
        if not buckets:
            return ()
        if len(buckets) == 1:
            found: Iterable[Subscription] = buckets[0]
        else:
            found = sorted((s for bucket in buckets for s in bucket), key=self._rank.__getitem__)
        return tuple(dict.fromkeys(s.outbox for s in found))


def _discard(index: dict[str, dict[Subscription, None]], key: str, subscription: Subscription) -> bool:
    """
    Take C{subscription} out of C{index[key]}, and C{key} out of C{index}
    once nothing is left under it.

    @return: Whether C{key} was taken out.
    """
    bucket = index.get(key)
    if bucket is None:
        return False
    bucket.pop(subscription, None)
    if bucket:
        return False
    del index[key]
    return True


def callback_outbox(
    callback: Callable[[IEvent], object],
    pattern: str,
    limit: int,
    drop: Callable[[Outbox, str], None],
    byte_limit: int = DEFAULT_QUEUE_BYTES,
) -> Outbox:
    """
    An outbox that calls an in-process subscriber.

    @param drop: Called with the outbox and a reason when it overflows.
    """
    outbox: Outbox

    def overflow(reason: str) -> None:
        drop(outbox, reason)

    outbox = Outbox(callback, overflow, limit, byte_limit)
    return outbox


@implementer(IBus, IStatusSource)
@attr.s(eq=False)
class Bus(Service):
    """
    The event bus of one harbour process.

    @ivar queue_limit: Events held for a subscriber that is not keeping up.
    @ivar queue_bytes: Bytes of payload held for such a subscriber.
    @ivar retained_limit: Topics clients may keep retained (see
        L{dispatch_remote}).
    @ivar retained_bytes: Bytes of JSON text the values clients keep
        retained may hold in all.
    """

    log = Logger()

    queue_limit: int = attr.ib(default=DEFAULT_QUEUE_LIMIT)
    queue_bytes: int = attr.ib(default=DEFAULT_QUEUE_BYTES)
    retained_limit: int = attr.ib(default=RETAINED_TOPIC_LIMIT)
    retained_bytes: int = attr.ib(default=RETAINED_BYTES_LIMIT)
    _table: SubscriptionTable = attr.ib(factory=SubscriptionTable, init=False)
    _retained: dict[str, Event] = attr.ib(factory=dict, init=False)
    #: The size of each retained value a client published, by topic: those
    #: the bounds count.
    _remote_sizes: dict[str, int] = attr.ib(factory=dict, init=False)
    _published: int = attr.ib(default=0, init=False)
    _dropped: int = attr.ib(default=0, init=False)
    #: Events published while another is being handed out, each with the
    #: outboxes subscribed to it when it was published.
    _pending: deque[tuple[Event, tuple[Outbox, ...]]] = attr.ib(factory=deque, init=False)
    _dispatching: bool = attr.ib(default=False, init=False)

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        See L{IBus.publish}.
        """
        try:
            event = Event.create(topic, payload)
        except BadRequest as e:
            return fail(e)
        return succeed(self.dispatch(event, retain))

    def dispatch(self, event: Event, retain: bool = False) -> int:
        """
        Hand an already encoded event to every subscriber of its topic.

        An event published by a subscriber while it is handed an event
        (from its callback) is handed out once that one has reached every
        subscriber, so that each subscriber gets events in the order they
        were published.  It goes to the subscribers of its topic when it
        was published.

        This is the daemon's own publishing: a value retained here is never
        refused, nor counted towards the bounds on clients' retained
        values (see L{dispatch_remote}).

        @return: How many subscribers it was handed to, or, for an event
            published during another's delivery, how many it is to be
            handed to.
        """
        self._published += 1
        if retain:
            self._retained[event.topic] = event
            # The daemon's value now, whoever retained the topic before.
            self._remote_sizes.pop(event.topic, None)
        outboxes = self._table.outboxes(event.topic)
        if self._dispatching:
            self._pending.append((event, outboxes))
            return sum(not outbox.closed for outbox in outboxes)
        return self._hand_out((event,), outboxes)

    def dispatch_remote(self, event: Event, retain: bool = False) -> int:
        """
        Hand out an event a client published through the control port, as
        L{dispatch} does; but a client's retained values are bounded, since
        each stays in memory until the daemon stops: a retained value of a
        new topic past L{retained_limit} topics, or one that would take
        the clients' retained values past L{retained_bytes} bytes of text,
        is refused, and so is one of a topic the daemon retains itself.
        A refused event is not handed out either.

        A retained C{null} clears its topic's retained value instead of
        replacing it, so that what clients retained can be removed without
        stopping the daemon; it is handed out as any event is, telling the
        subscribers of the topic that it has no value now.

        @return: As L{dispatch}.
        @raise BadRequest: The event is refused.
        """
        if retain:
            self._retain_remote(event)
        return self.dispatch(event)

    def _retain_remote(self, event: Event) -> None:
        """
        Keep C{event} as its topic's retained value for a client, if the
        bounds allow; or, for a C{null}, clear the topic's value.

        @raise BadRequest: They do not, or the daemon retains the topic.
        """
        topic = event.topic
        before = self._remote_sizes.get(topic)
        if before is None and topic in self._retained:
            raise BadRequest(f"topic {topic} is retained by the daemon: only the daemon may change it")
        if event.payload is None:
            self._retained.pop(topic, None)
            self._remote_sizes.pop(topic, None)
            return
        if before is None and len(self._remote_sizes) >= self.retained_limit:
            raise BadRequest(
                f"clients keep {len(self._remote_sizes):,} topics retained, the most they may: "
                f"publish {topic} without retain, or clear one (retain null on it)"
            )
        total = sum(self._remote_sizes.values()) - (before or 0) + event.size
        if total > self.retained_bytes:
            raise BadRequest(
                f"retaining {topic} ({event.size:,} bytes) would take the values clients keep "
                f"retained past {self.retained_bytes:,} bytes: publish it without retain, "
                f"or clear others (retain null on them)"
            )
        self._remote_sizes[topic] = event.size
        self._retained[topic] = event

    def _hand_out(self, events: Sequence[Event], outboxes: Sequence[Outbox], bounded: bool = True) -> int:
        """
        Put each of C{events} in each of C{outboxes}; then, if this is not
        itself within a delivery, hand out the events published meanwhile.

        @param bounded: Whether C{events} count towards the outboxes' bounds
            while they wait (see L{Outbox.put}); those published meanwhile
            always do.
        @return: How many puts were taken.
        """
        if self._dispatching:
            return sum(outbox.put(event, bounded) for event in events for outbox in outboxes)
        self._dispatching = True
        try:
            delivered = sum(outbox.put(event, bounded) for event in events for outbox in outboxes)
            while self._pending:
                later, waiting = self._pending.popleft()
                for outbox in waiting:
                    outbox.put(later)
        finally:
            self._dispatching = False
        return delivered

    def subscribe(self, pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
        """
        See L{IBus.subscribe}.
        """
        try:
            validate_pattern(pattern)
        except BadRequest as e:
            return fail(e)
        outbox = callback_outbox(callback, pattern, self.queue_limit, self.drop, self.queue_bytes)
        return succeed(self.attach(pattern, outbox))

    def unsubscribe(self, subscription: Subscription) -> Deferred[None]:
        """
        See L{IBus.unsubscribe}.
        """
        self._table.remove(subscription)
        subscription.outbox.stopProducing()
        return succeed(None)

    def attach(self, pattern: str, outbox: Outbox, tag: int | None = None) -> Subscription:
        """
        Route events matching C{pattern} into C{outbox}, then deliver the
        retained events it matches: before any event published as they are
        delivered (by C{outbox}'s subscriber, say), which is newer.  They
        are put in C{outbox} at once, and those that wait there do not
        count towards its bounds (see L{Outbox}): a subscriber is never
        dropped for what it is sent as it subscribes.

        @param pattern: An already validated pattern.
        @param tag: If given, the retained events are delivered
            L{tagged<Event.tagged>} with it.
        """
        subscription = Subscription(pattern, outbox)
        self._table.add(subscription)
        retained = self.retained_events(pattern)
        if tag is not None:
            retained = [event.tagged(tag) for event in retained]
        self._hand_out(retained, (outbox,), bounded=False)
        return subscription

    def retained_events(self, pattern: str) -> list[Event]:
        """
        @return: The retained events of the topics C{pattern} selects, in
            the order their topics were first retained.
        """
        if not pattern.endswith("*"):
            event = self._retained.get(pattern)
            return [] if event is None else [event]
        return [event for topic, event in self._retained.items() if matches(pattern, topic)]

    def patterns(self, outbox: Outbox) -> Collection[str]:
        """
        @return: The patterns routed to C{outbox}, as a live view.
        """
        return self._table.patterns(outbox)

    def detach(self, outbox: Outbox, pattern: str | None = None) -> int:
        """
        Remove C{outbox}'s subscriptions to C{pattern}, or all of them.

        @return: How many subscriptions were removed.
        """
        if pattern is None:
            return len(self._table.remove_outbox(outbox))
        gone = self._table.find(outbox, pattern)
        for subscription in gone:
            self._table.remove(subscription)
        return len(gone)

    def drop(self, outbox: Outbox, reason: str) -> None:
        """
        Give up a subscriber that overflowed.
        """
        patterns = [s.pattern for s in self._table.remove_outbox(outbox)]
        self._dropped += 1
        self.log.warn(
            "dropped a subscriber to {patterns}: {reason}",
            patterns=patterns,
            reason=reason,
            service="bus",
        )

    def retained(self, topic: str) -> object | None:
        """
        @return: The retained payload of C{topic}, or L{None}.
        """
        event = self._retained.get(topic)
        return None if event is None else event.payload

    def status(self) -> dict[str, object]:
        """
        See L{IStatusSource.status}.
        """
        return {
            "subscriptions": len(self._table),
            "published": self._published,
            "dropped_subscribers": self._dropped,
            "retained_topics": sorted(self._retained),
            "retained_by_clients": {
                "topics": len(self._remote_sizes),
                "bytes": sum(self._remote_sizes.values()),
            },
        }
