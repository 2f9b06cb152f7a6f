"""
The link from a download worker to its hub (C{twistd harbour --role
worker --hub ENDPOINT}).

L{HubLink} keeps one authenticated AMP connection to the hub's control port,
reconnecting with backoff, and provides L{IBus} over it: subscriptions are
made again on every new connection (so retained configuration arrives again),
and events published while the hub is away are dropped with a log line (they
are announcements; the task store in Redis is the truth).

A hub that leaves a call unanswered for L{ANSWER_DEADLINE} (stopped, or
cut off without the connection's end reaching the worker) is taken for
gone: the connection is dropped and made again, rather than calls piling
up unanswered for as long as the connection seems open.  A stop closes
the connection, and drops it if it has not closed within L{CLOSE_GRACE}.

The events of the worker's own connection to Redis (C{store.*}) stay in
the worker: its services hear them, and the hub's do not, which would take
them for the hub's own connection (its readiness, its refresh and drain on
C{store.connected}); nor do the worker's hear the hub's.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar, cast

import attr
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Factory
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.admission import REFUSAL_LOG_INTERVAL
from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, RemoteBus, client_endpoint
from harbour.amp.server import AUTHENTICATION_TIMEOUT
from harbour.bus import DEFAULT_QUEUE_LIMIT, Bus, Outbox, Subscription, callback_outbox, validate_pattern
from harbour.errors import BadRequest, StoreUnavailable, Unauthorized
from harbour.interfaces import IBus, IEvent, IStatusSource

#: Topics about this process's own connections, kept in it (see above).
LOCAL_TOPICS = "store."
#: How long, in seconds, the hub may leave a call unanswered before its
#: connection is taken for dead.
ANSWER_DEADLINE = 60.0
#: How long, in seconds, a stop waits for the connection to close before
#: dropping it: a hub that reads nothing would keep it open for ever.
CLOSE_GRACE = 5.0
#: How often, in seconds, the link says that the hub is still away: its
#: attempts to reconnect (every 10 s at most) are not logged one by one.
AWAY_REMINDER = 3600.0

_T = TypeVar("_T")


@implementer(IBus, IStatusSource)
@attr.s(eq=False)
class HubLink(Service):
    """
    A reconnecting, authenticated connection to a hub, seen as its bus.

    @ivar reactor: Times the reconnections; also the reactor the endpoint
        connects with, so it provides what the endpoint's kind needs (see
        L{harbour.amp.client.client_endpoint}).
    @ivar endpoint: The hub's control port, as a Twisted client endpoint
        string.
    @raise ConfigurationError: On creation, for an endpoint that
        L{harbour.amp.client.client_endpoint} refuses.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    endpoint: str = attr.ib()
    token: str = attr.ib(repr=False)
    _connect_to: IStreamClientEndpoint = attr.ib(init=False)
    _client: ClientService | None = attr.ib(default=None, init=False)
    _protocol: HarbourClientProtocol | None = attr.ib(default=None, init=False)
    #: Every connection not yet closed, ready or not.
    _connections: set[HarbourClientProtocol] = attr.ib(factory=set, init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    #: The bus of L{LOCAL_TOPICS}.
    _local: Bus = attr.ib(factory=Bus, init=False)
    _waiting: list[Deferred[None]] = attr.ib(factory=list, init=False)
    #: Whether the connection is authenticated and subscribed.
    _ready: bool = attr.ib(default=False, init=False)
    _refusals: int = attr.ib(default=0, init=False)
    _refusal_logged: float = attr.ib(default=float("-inf"), init=False)
    #: Since when the link has not been ready (since it started, until
    #: its first connection), or None while it is.
    _away_since: float | None = attr.ib(default=None, init=False)
    #: Whether the link has been ready before: its next readiness is a
    #: return.
    _was_ready: bool = attr.ib(default=False, init=False)
    #: Whether a connection given up since the link was last ready was
    #: logged: the next are not, one per attempt.
    _give_up_logged: bool = attr.ib(default=False, init=False)
    _reminder: IDelayedCall | None = attr.ib(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        # Refused when the daemon is made, before anything connects.
        self._connect_to = client_endpoint(self.reactor, self.endpoint)

    def startService(self) -> None:
        """
        Connect, and keep connecting.
        """
        super().startService()
        self._away(self.reactor.seconds())
        self._client = _QuietClientService(
            self._connect_to,
            _LinkFactory(self),
            retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=10.0),
            clock=self.reactor,
        )
        self._client.startService()

    @inlineCallbacks
    def _linked(self, protocol: HarbourClientProtocol) -> Generator[Deferred[Any], Any, None]:
        """
        A connection to the hub is made: authenticate, and subscribe again.
        (Not C{ClientService}'s C{prepareConnection}: a connection that
        fails its preparation and is then closed is a transition Twisted's
        reconnecting machine does not have, and it logs a traceback.)
        """
        self._connections.add(protocol)
        protocol.disconnected.addBoth(lambda ignored: self._connections.discard(protocol))
        try:
            yield self._answer_due(protocol, protocol.callRemote(commands.Authenticate, token=self.token))
        except Unauthorized as e:
            self._refused(protocol, str(e))
            return
        except Exception as e:
            self._give_up(protocol, f"cannot authenticate: {e or type(e).__name__}")
            return
        self._refusals = 0
        self._protocol = protocol
        protocol.disconnected.addCallback(self._lost, protocol)
        try:
            for subscription in list(self._subscriptions):
                if subscription not in self._subscriptions:
                    continue  # given up meanwhile
                try:
                    yield self._answer_due(protocol, protocol.subscribe(subscription))
                except BadRequest as e:
                    # A hub that now refuses it (a newer one, with a lower
                    # limit, say) would refuse it at every reconnection.
                    self._withdraw(subscription)
                    self.log.warn(
                        "hub {endpoint} refused the subscription to {pattern}: {error}",
                        endpoint=self.endpoint,
                        pattern=subscription.pattern,
                        error=str(e),
                        service="hub",
                    )
        except Exception as e:
            self._give_up(protocol, f"cannot subscribe: {e or type(e).__name__}")
            return
        if self._protocol is not protocol:
            return  # lost meanwhile
        self._ready = True
        self._back()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def _refused(self, protocol: HarbourClientProtocol, reason: str) -> None:
        """
        The hub refused the token: say so (the first time, and then at most
        every L{REFUSAL_LOG_INTERVAL} seconds), and leave the connection
        for the hub to close once its authentication time is out, so that
        a wrong token costs one attempt per that time.
        """
        self._refusals += 1
        now = self.reactor.seconds()
        if self._refusals == 1 or now - self._refusal_logged >= REFUSAL_LOG_INTERVAL:
            self._refusal_logged = now
            self.log.error(
                "the hub {endpoint} refused this worker's token ({reason}; {count} refusals): "
                "is --token-file the hub's?",
                endpoint=self.endpoint,
                reason=reason,
                count=self._refusals,
                service="hub",
            )
        closing = self.reactor.callLater(AUTHENTICATION_TIMEOUT, _close, protocol)
        protocol.disconnected.addBoth(lambda ignored: closing.cancel() if closing.active() else None)

    def _give_up(self, protocol: HarbourClientProtocol, reason: str) -> None:
        """
        A connection could not be made ready: close it, to be made again.
        """
        if self.running and not self._give_up_logged:
            # Once per absence: a hub that accepts and fails each attempt
            # would have it logged every few seconds.
            self._give_up_logged = True
            self.log.warn("hub {endpoint}: {reason}", endpoint=self.endpoint, reason=reason, service="hub")
        if self._protocol is protocol:
            self._protocol = None
            self._not_ready()
        _close(protocol)

    def _answer_due(self, protocol: HarbourClientProtocol, call: Deferred[_T]) -> Deferred[_T]:
        """
        Drop C{protocol}'s connection if C{call}, a command sent on it, is
        not answered within L{ANSWER_DEADLINE}.

        @return: C{call}.
        """
        return _unless_over(self.reactor, ANSWER_DEADLINE, call, self._unanswered, protocol)

    def _unanswered(self, protocol: HarbourClientProtocol) -> None:
        """
        The hub has not answered a call on C{protocol} in time: drop the
        connection (its calls fail as lost), to be made again.
        """
        if protocol not in self._connections:
            return  # dropped already, by an earlier call's deadline
        self._connections.discard(protocol)
        if self._protocol is protocol:
            self._protocol = None
            self._not_ready()
        self.log.warn(
            "the hub {endpoint} has not answered for {seconds:g} s; reconnecting",
            endpoint=self.endpoint,
            seconds=ANSWER_DEADLINE,
            service="hub",
        )
        _abort(protocol)

    def _lost(self, ignored: object, protocol: HarbourClientProtocol) -> None:
        if self._protocol is protocol:
            self._protocol = None
            # A connection lost before it was ready is one more attempt of
            # an absence already said.
            if not self._not_ready() or not self.running:
                return
            if protocol.dropped is not None:
                # Dropped for not reading: the events published meanwhile
                # never reach this worker.
                self.log.warn(
                    "the hub {endpoint} dropped this worker's connection: {reason}; events were "
                    "missed; reconnecting",
                    endpoint=self.endpoint,
                    reason=protocol.dropped,
                    service="hub",
                )
            else:
                self.log.warn("lost the hub {endpoint}; reconnecting", endpoint=self.endpoint, service="hub")

    def _not_ready(self) -> bool:
        """
        The connection in use is gone: the hub is away from now, if the
        link was ready.

        @return: Whether it was.
        """
        if not self._ready:
            return False
        self._ready = False
        self._away(self.reactor.seconds())
        return True

    def _away(self, since: float) -> None:
        """
        The hub is away from C{since}: remind of it every
        L{AWAY_REMINDER} seconds until it is back.
        """
        self._away_since = since
        self._give_up_logged = False
        self._cancel_reminder()
        self._reminder = self.reactor.callLater(AWAY_REMINDER, self._remind)

    def _remind(self) -> None:
        self._reminder = None
        if self._away_since is None or not self.running:
            return
        self.log.warn(
            "still no connection to the hub {endpoint}, for {away}; reconnecting",
            endpoint=self.endpoint,
            away=_duration(self.reactor.seconds() - self._away_since),
            service="hub",
        )
        self._reminder = self.reactor.callLater(AWAY_REMINDER, self._remind)

    def _back(self) -> None:
        """
        The link is ready: say so, with how long the hub was away if it
        had been connected before.
        """
        self._cancel_reminder()
        since, self._away_since = self._away_since, None
        if self._was_ready and since is not None:
            self.log.info(
                "connected to hub {endpoint} again, after {away} away",
                endpoint=self.endpoint,
                away=_duration(self.reactor.seconds() - since),
                service="hub",
            )
        else:
            self.log.info("connected to hub {endpoint}", endpoint=self.endpoint, service="hub")
        self._was_ready = True

    def _cancel_reminder(self) -> None:
        if self._reminder is not None and self._reminder.active():
            self._reminder.cancel()
        self._reminder = None

    def when_connected(self) -> Deferred[None]:
        """
        @return: A Deferred firing once a connection is up, authenticated
            and subscribed; failing with L{CancelledError} if the link
            stops first.
        """
        if not self.running:
            return fail(CancelledError("the link to the hub is stopped"))
        if self._ready:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        See L{IBus.publish}; fails with L{StoreUnavailable} while the hub is
        away, but for L{LOCAL_TOPICS}, delivered here.
        """
        if topic.startswith(LOCAL_TOPICS):
            return self._local.publish(topic, payload, retain)
        if self._protocol is None:
            return fail(StoreUnavailable(f"not connected to the hub at {self.endpoint}"))
        return self._answer_due(self._protocol, RemoteBus(self._protocol).publish(topic, payload, retain))

    def subscribe(self, pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
        """
        See L{IBus.subscribe}: in force now if connected, and again after
        every reconnection.
        """
        try:
            validate_pattern(pattern)
        except BadRequest as e:
            return fail(e)
        if pattern.startswith(LOCAL_TOPICS):
            return self._local.subscribe(pattern, callback)
        subscription = Subscription(
            pattern, callback_outbox(callback, pattern, DEFAULT_QUEUE_LIMIT, self._drop)
        )
        self._subscriptions.append(subscription)
        if self._protocol is None:
            return succeed(subscription)
        # A Deferred of its own: AMP drops the connection if the failure of
        # a command is left unhandled by the callbacks added before its
        # answer comes, and a caller may add its own only later.
        subscribed: Deferred[Subscription] = Deferred()
        self._answer_due(self._protocol, self._protocol.subscribe(subscription)).addCallbacks(
            lambda ignored: subscribed.callback(subscription),
            self._refused_subscription,
            errbackArgs=(subscription, subscribed),
        )
        return subscribed

    def _refused_subscription(
        self, failure: Failure, subscription: Subscription, subscribed: Deferred[Subscription]
    ) -> None:
        """
        The hub refused C{subscription} (too many patterns, say): it is no
        more, rather than refused again at every reconnection, each time
        giving up the link, and C{subscribed} fails with C{failure}.  A
        subscription that failed otherwise (the connection lost) stands:
        it is made again on the next connection, as one made while the hub
        is away is, so C{subscribed} fires with it (its subscriber could
        not end it otherwise).
        """
        if failure.check(BadRequest):
            self._withdraw(subscription)
            subscribed.errback(failure)
        else:
            subscribed.callback(subscription)

    def _withdraw(self, subscription: Subscription) -> None:
        """
        Route no more events to C{subscription}, on this connection or the
        next, and send its subscriber nothing more.
        """
        subscription.outbox.stopProducing()
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        if self._protocol is not None:
            self._protocol.table.remove(subscription)

    def _drop(self, outbox: Outbox, reason: str) -> None:
        dropped = [s for s in self._subscriptions if s.outbox is outbox]
        for subscription in dropped:
            self._forget(subscription)
        self.log.warn(
            "dropped a subscriber to {patterns}: {reason}; it hears nothing more until this worker restarts",
            patterns=", ".join(sorted({s.pattern for s in dropped})) or "nothing",
            reason=reason,
            service="hub",
        )

    def unsubscribe(self, subscription: Subscription) -> Deferred[None]:
        """
        See L{IBus.unsubscribe}: the hub's subscription ends with the last
        local one to its pattern.
        """
        if subscription.pattern.startswith(LOCAL_TOPICS):
            return self._local.unsubscribe(subscription)
        return self._forget(subscription)

    def _forget(self, subscription: Subscription) -> Deferred[None]:
        """
        Make C{subscription} no more, and unsubscribe from its pattern on
        the hub if no other subscription to it is left.
        """
        self._withdraw(subscription)
        if self._protocol is None:
            return succeed(None)
        return self._answer_due(self._protocol, self._protocol.release(subscription.pattern))

    def status(self) -> dict[str, object]:
        """
        See L{IStatusSource.status}.
        """
        return {"hub": self.endpoint, "connected": self._protocol is not None}

    def stopService(self) -> Deferred[None] | None:
        """
        Disconnect and stop reconnecting; a connection not closed within
        L{CLOSE_GRACE} is dropped.
        """
        super().stopService()
        self._cancel_reminder()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(CancelledError("the link to the hub stopped"))
        if self._client is None:
            return None
        stopped: Deferred[None] = self._client.stopService()
        return _unless_over(self.reactor, CLOSE_GRACE, stopped, self._drop_connections)

    def _drop_connections(self) -> None:
        for protocol in list(self._connections):
            _abort(protocol)


def _duration(seconds: float) -> str:
    """
    @return: C{seconds} as a log line says a time away: C{45 s},
        C{12 min}, C{3.5 h}.
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _warnings_only(event: LogEvent) -> None:
    """
    Pass on C{event} if it is a warning or worse.
    """
    if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical):
        globalLogPublisher(event)


class _QuietClientService(ClientService):
    """
    A C{ClientService} that does not log each retry it schedules
    (C{Scheduling retry N to connect ...}, every 10 s at most while the
    hub is away): the link says when the hub goes, comes back, and, once
    an hour, that it is still away.  Its warnings still pass.
    """

    # ClientService hands its _log to its reconnecting machine as it is made.
    _log = Logger(observer=cast(ILogObserver, _warnings_only))


class _LinkFactory(Factory):
    """
    Makes the connections of a L{HubLink}, each made ready by it once up.
    Not noisy: C{Starting factory} and C{Stopping factory} would be
    logged at every attempt to reconnect.
    """

    noisy = False

    def __init__(self, link: HubLink) -> None:
        self.link = link

    def buildProtocol(self, addr: IAddress | None) -> HarbourClientProtocol:
        """
        @return: A client protocol that the link makes ready once connected.
        """
        return _LinkProtocol(self.link)


class _LinkProtocol(HarbourClientProtocol):
    """
    A connection of a L{HubLink}.
    """

    def __init__(self, link: HubLink) -> None:
        super().__init__()
        self._link = link

    def connectionMade(self) -> None:
        """
        Hand the connection to the link, to authenticate and subscribe.
        """
        super().connectionMade()
        self._link._linked(self)


def _close(protocol: HarbourClientProtocol) -> None:
    """
    Close C{protocol}'s connection, if it is still open.
    """
    if protocol.transport is not None:
        protocol.transport.loseConnection()


def _abort(protocol: HarbourClientProtocol) -> None:
    """
    Drop C{protocol}'s connection now, with whatever it has not sent.
    """
    if protocol.transport is not None:
        cast(ITCPTransport, protocol.transport).abortConnection()


def _unless_over(
    reactor: IReactorTime, seconds: float, d: Deferred[_T], then: Callable[..., object], *args: object
) -> Deferred[_T]:
    """
    Call C{then(*args)} in C{seconds} unless C{d} has fired by then.

    @return: C{d}.
    """
    timer = reactor.callLater(seconds, then, *args)

    def over(result: _T) -> _T:
        if timer.active():
            timer.cancel()
        return result

    return d.addBoth(over)
