"""
The client side of the control port.

L{RemoteBus} provides L{IBus} over an AMP connection, so that a process
subscribes to another process's bus exactly as it would to its own.
L{client_endpoint} parses (and checks) the endpoint of a control port, for
C{harbourctl} and download workers alike; L{connect} and L{authenticated}
connect to it and authenticate.  L{status} and L{all_requests} read the
answers that grow with the configuration.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Generator
from typing import Any
from weakref import WeakValueDictionary

from OpenSSL import SSL, crypto
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IStreamClientEndpoint, ITransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.python.filepath import UnlistableError
from zope.interface import implementer

from harbour.amp import commands, wire
from harbour.bus import (
    DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_LIMIT,
    Event,
    Outbox,
    Subscription,
    SubscriptionTable,
    callback_outbox,
    validate_pattern,
)
from harbour.errors import BadRequest, ConfigurationError
from harbour.interfaces import IBus, IEvent, StatusDocument

_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def client_endpoint(reactor: object, description: str) -> IStreamClientEndpoint:
    """
    Parse the endpoint of a control port to connect to, refusing one that
    would not check the server.

    @param reactor: The reactor the endpoint will connect with: one that
        provides what its kind of endpoint needs (an C{IReactorTCP}, and an
        C{IReactorSSL} or C{IReactorUNIX} for those kinds).
    @param description: A Twisted client endpoint string, such as
        C{tcp:127.0.0.1:7750} or C{tls:host:7750:trustRoots=DIR}.

    @raise ConfigurationError: For a description Twisted cannot parse, or
        whose files (trust roots, certificates, keys) it cannot read, and
        for an endpoint that trusts any certificate (L{_check_tls}).
    """
    _check_tls(description)
    try:
        return clientFromString(reactor, description)
    except (ValueError, TypeError, OSError, SSL.Error, crypto.Error) as e:
        # Twisted's parser says what it could not read by raising.
        raise ConfigurationError(f"cannot use endpoint {description!r}: {_reason(e)}") from None


def _reason(error: Exception) -> str:
    """
    @return: What C{error} says, or its kind if it says nothing (a
        directory of certificates that cannot be listed says nothing of
        itself, but carries the error that listing it met).
    """
    if isinstance(error, UnlistableError):
        error = error.originalException
    return str(error) or type(error).__name__


def _check_tls(description: str) -> None:
    """
    Refuse a TLS client endpoint that would not check the server's
    certificate: the token would go to whoever answers.

    An C{ssl:} endpoint checks the certificate only against the
    certificates of its C{caCertsDir}; without one it trusts any server.
    (A C{tls:} endpoint always checks, against C{trustRoots} or the
    platform's; C{tcp:} and C{unix:} make no claim to.)

    @raise ConfigurationError: For an C{ssl:} endpoint without
        C{caCertsDir}.
    """
    kind, *parts = [p.replace("\\:", ":") for p in _UNESCAPED_COLON.split(description)]
    if kind.strip().upper() != "SSL":
        return
    if any(part.startswith("caCertsDir=") and part != "caCertsDir=" for part in parts):
        return
    raise ConfigurationError(
        f"refusing to connect to {description!r}: an ssl: endpoint without caCertsDir= "
        f"trusts any certificate; use tls:HOST:PORT:trustRoots=DIR (which also checks the "
        f"host name) or add caCertsDir=DIR"
    )


class HarbourClientProtocol(amp.AMP):
    """
    A control connection as seen by a client: routes each incoming
    L{commands.Event} to the local subscriptions it matches, or, for a
    retained value answering a L{subscribe}, to the subscription that
    asked alone.
    """

    log = Logger()

    def __init__(
        self, queue_limit: int = DEFAULT_QUEUE_LIMIT, queue_bytes: int = DEFAULT_QUEUE_BYTES
    ) -> None:
        super().__init__()
        self.table = SubscriptionTable()
        self.queue_limit = queue_limit
        self.queue_bytes = queue_bytes
        self.disconnected: Deferred[None] = Deferred()
        self._tags = itertools.count(1)
        # The subscription of each tagged Subscribe, for the retained
        # values answering it, for as long as the subscription exists.
        self._tagged: WeakValueDictionary[int, Subscription] = WeakValueDictionary()
        self._reader = wire.BoxReader()
        #: Why the other side dropped this connection, once it has said
        #: (L{commands.DROPPED}).
        self.dropped: str | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Read the boxes of C{data}, after what was received before, a box
        at a time (L{wire.BoxReader}) rather than AMP's string at a time:
        a subscriber's events are most of what it reads.  Harbour switches
        no protocol, so AMP's parser is never needed.  After a key longer
        than AMP allows, nothing more is read, as with AMP's.
        """
        reader = self._reader
        reader.receive(data)
        try:
            for box in reader.boxes():
                self.ampBoxReceived(box)
                if self.paused:
                    break
        except wire.KeyTooLong as e:
            self.lengthLimitExceeded(e.length)

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        """
        Route L{commands.Event} boxes straight to the subscribers: they
        never carry an answer tag, and they are most of what a subscriber
        receives, so the generic command dispatch is skipped for them.
        """
        if box.get(b"_command") == b"Event" and b"_ask" not in box:
            tag = box.get(b"tag")
            self.event(
                box[b"topic"].decode("utf-8"),
                box[b"payload"].decode("utf-8"),
                None if tag is None else int(tag),
            )
        else:
            super().ampBoxReceived(box)

    @commands.Event.responder
    def event(self, topic: str, payload: str, tag: int | None = None) -> dict[str, object]:
        """
        Deliver one event to the local subscribers of its topic, or, if it
        carries a C{tag}, to the subscription whose C{Subscribe} carried it:
        the others have that retained value already.  An event on
        L{commands.DROPPED} goes to no subscriber: it says why the other
        side is closing the connection, kept in L{dropped}.
        """
        if topic == commands.DROPPED and tag is None:
            self.dropped = _dropped_reason(payload)
            return {}
        if tag is None:
            outboxes = self.table.outboxes(topic)
        else:
            subscription = self._tagged.get(tag)
            outboxes = () if subscription is None else (subscription.outbox,)
        if outboxes:
            event = Event.from_text(topic, payload)
            for outbox in outboxes:
                outbox.put(event)
        return {}

    def subscribe(self, subscription: Subscription) -> Deferred[dict[str, object]]:
        """
        Route the events of C{subscription}'s pattern to it, and subscribe
        to them on the other side, whose retained values for it are tagged
        to reach it alone.

        @return: The L{Deferred} of the C{Subscribe} command.
        """
        tag = next(self._tags)
        self._tagged[tag] = subscription
        self.table.add(subscription)
        return self.callRemote(commands.Subscribe, topic=subscription.pattern, tag=tag)

    def drop(self, outbox: Outbox, reason: str) -> None:
        """
        Give up a local subscriber that overflowed, and unsubscribe on the
        other side from each of its patterns no other subscriber has.
        """
        patterns = [s.pattern for s in self.table.remove_outbox(outbox)]
        self.log.warn(
            "dropped a local subscriber to {patterns}: {reason}",
            patterns=patterns,
            reason=reason,
        )
        for pattern in dict.fromkeys(patterns):
            self.release(pattern)

    def release(self, pattern: str) -> Deferred[None]:
        """
        Unsubscribe from C{pattern} on the other side, unless a local
        subscription to it is left.

        @return: A L{Deferred} firing once the other side has answered.  It
            never fails: if the connection is gone, so are its
            subscriptions, and otherwise the failure is logged (the events
            go on arriving, for no one).
        """
        if self.table.subscribed(pattern):
            return succeed(None)
        unsubscribed = self.callRemote(commands.Unsubscribe, topic=pattern)
        return unsubscribed.addCallbacks(
            lambda ignored: None, self._unsubscribe_failed, errbackArgs=(pattern,)
        )

    def _unsubscribe_failed(self, failure: Failure, pattern: str) -> None:
        if not failure.check(ConnectionClosed):
            self.log.failure("cannot unsubscribe from {pattern}", failure, pattern=pattern)

    def makeConnection(self, transport: ITransport) -> None:
        """
        Connect as L{amp.BinaryBoxProtocol} does, without the line AMP logs
        for each connection made (and lost, in L{connectionLost}), as the
        daemon's side does: a worker reconnecting to a hub that is away
        would log them at every attempt; the link says what matters.
        """
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Let whoever waits for the end know (without AMP's log line: see
        L{makeConnection}).
        """
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None
        self.disconnected.callback(None)


def _dropped_reason(payload: str) -> str:
    """
    @return: The reason of a L{commands.DROPPED} event's payload, or the
        payload itself if it has none.
    """
    try:
        reason = json.loads(payload).get("reason")
    except (ValueError, AttributeError):
        reason = None
    return reason if isinstance(reason, str) else payload


@implementer(IBus)
class RemoteBus:
    """
    The bus of another harbour process, reached over its control port.
    """

    def __init__(self, protocol: HarbourClientProtocol) -> None:
        self.protocol = protocol

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        See L{IBus.publish}; the payload's size is checked before sending.
        """
        try:
            event = Event.create(topic, payload)
        except BadRequest as e:
            return fail(e)
        d = self.protocol.callRemote(commands.Publish, topic=event.topic, payload=event.text, retain=retain)
        return d.addCallback(lambda answer: answer["delivered"])

    @inlineCallbacks
    def subscribe(
        self, pattern: str, callback: Callable[[IEvent], object]
    ) -> Generator[Deferred[Any], Any, Subscription]:
        """
        See L{IBus.subscribe}.
        """
        validate_pattern(pattern)
        outbox = callback_outbox(
            callback, pattern, self.protocol.queue_limit, self.protocol.drop, self.protocol.queue_bytes
        )
        subscription = Subscription(pattern, outbox)
        try:
            yield self.protocol.subscribe(subscription)
        except BaseException:
            self.protocol.table.remove(subscription)
            raise
        return subscription

    @inlineCallbacks
    def unsubscribe(self, subscription: Subscription) -> Generator[Deferred[Any], Any, None]:
        """
        See L{IBus.unsubscribe}; the remote subscription ends with the last
        local one for its pattern.
        """
        self.protocol.table.remove(subscription)
        subscription.outbox.stopProducing()
        if not self.protocol.table.subscribed(subscription.pattern):
            yield self.protocol.callRemote(commands.Unsubscribe, topic=subscription.pattern)


def connect(reactor: object, endpoint: str, token: str) -> Deferred[HarbourClientProtocol]:
    """
    Connect and authenticate to a harbour control port.

    @param reactor: A reactor that can connect to C{endpoint} (see
        L{client_endpoint}).
    @param endpoint: A Twisted client endpoint string, such as
        C{tcp:127.0.0.1:7750} or C{tls:host:7750:trustRoots=DIR}.

    @return: A L{Deferred} firing with a connected, authenticated
        L{HarbourClientProtocol}.
    @raise ConfigurationError: (In the L{Deferred}) for an endpoint that
        L{client_endpoint} refuses; nothing is sent.
    """
    try:
        parsed = client_endpoint(reactor, endpoint)
    except Exception:
        return fail()
    return authenticated(parsed, token)


@inlineCallbacks
def authenticated(
    endpoint: IStreamClientEndpoint, token: str, protocol: HarbourClientProtocol | None = None
) -> Generator[Deferred[Any], Any, HarbourClientProtocol]:
    """
    Connect to a control port and authenticate.

    @param endpoint: The control port, as L{client_endpoint} makes it.
    @param token: The control port's token.
    @param protocol: The protocol to connect (by default, a new
        L{HarbourClientProtocol}).

    @return: A L{Deferred} firing with a connected, authenticated
        L{HarbourClientProtocol}: C{protocol}, if given.
    """
    connected = yield connectProtocol(endpoint, HarbourClientProtocol() if protocol is None else protocol)
    try:
        yield connected.callRemote(commands.Authenticate, token=token)
    except BaseException:
        connected.transport.loseConnection()
        raise
    return connected


@inlineCallbacks
def status(protocol: amp.AMP) -> Generator[Deferred[Any], Any, StatusDocument]:
    """
    Ask for the daemon's C{Status} document, whatever its size (its
    answer comes in as many AMP values as it needs).

    @return: A L{Deferred} firing with the document.
    """
    answer = yield protocol.callRemote(commands.Status)
    document: StatusDocument = json.loads(answer["status"])
    return document


@inlineCallbacks
def all_requests(
    protocol: amp.AMP, page: int = commands.MAX_PAGE
) -> Generator[Deferred[Any], Any, list[dict[str, Any]]]:
    """
    Page through the daemon's manifest with C{Reports}.

    A page stops early rather than exceed one AMP value, so each next page
    starts where the last one ended.  A manifest that changes meanwhile (a
    saved configuration, a new trading day) is read partly before and
    partly after the change.

    @param page: The most requests to ask for at a time.
    @return: A L{Deferred} firing with every request, as the C{urls} of
        C{Reports} give them.
    """
    found: list[dict[str, Any]] = []
    while True:
        answer = yield protocol.callRemote(commands.Reports, offset=len(found), limit=page)
        urls = json.loads(answer["urls"])
        found.extend(urls)
        if not urls or len(found) >= answer["total"]:
            return found
