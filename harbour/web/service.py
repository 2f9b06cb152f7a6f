"""
The C{http} service: a L{twisted.web} site on the C{--http} endpoint.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import attr
from twisted.application.service import IService, Service
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import NO_BODY_CODES, HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from zope.interface import implementer

from harbour.admission import Admission
from harbour.amp.server import check_listen_endpoint, read_token, server_endpoint
from harbour.errors import ConfigurationError
from harbour.interfaces import IBus, IDaemon, IStatusSource, StatusDocument
from harbour.web.metrics import registry
from harbour.web.monitor import Monitor
from harbour.web.resources import site_root

#: Where the site listens unless told otherwise.
DEFAULT_HTTP = "tcp:7752:interface=127.0.0.1"

#: The most bytes of a request's body read: the login form's (a token) is
#: the only body the site takes.
MAX_BODY = 64 * 1024

#: The answer to a longer body, which ends the connection.
_TOO_LARGE_BODY = b"request body too large\n"
_TOO_LARGE = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"%s"
) % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)

#: The most connections the site keeps open at once: past it, a new one is
#: closed at once.  An operator's browser uses a few, a scraper one; the
#: daemon's file descriptors are for its downloads first.
CONNECTION_LIMIT = 64

#: The most connections that may wait for a complete request at once, in
#: all and from any one host (its address; a UNIX socket's peers are one):
#: past either, a new connection closes the oldest waiting, as the control
#: port does for its token (L{harbour.admission}).  A kept-alive connection
#: waits for its next request too.
WAITING_LIMIT = 32
WAITING_PER_HOST = 16

#: Seconds a connection has to send a complete request, from when it is
#: made and from the end of the answer before: a client sends its request
#: at once, and one that trickles a byte at a time (which Twisted's idle
#: timeout allows for ever) is closed.  A browser or scraper connects
#: again for its next request.
REQUEST_TIMEOUT = 10.0

#: Seconds an answer has to be taken by its client, from when its request
#: was complete: a client that does not read would otherwise hold its
#: connection, and the answer, for ever.  A scraper's own timeout is
#: shorter (Prometheus's is 10 s).
ANSWER_TIMEOUT = 60.0

#: The most bytes of answers the site holds for clients that have not
#: taken them, in all: past it, the connection whose answer has waited
#: longest is closed.  An answer is handed to the transport a piece at a
#: time (L{PIECE}), as the client takes it; at 2,000 reports C{/metrics}
#: is about 4 MB, and each of a few hundred connections that asked and do
#: not read would otherwise hold a copy.
UNSENT_LIMIT = 64 << 20

#: The bytes of an answer handed to the transport at once.
PIECE = 64 << 10

#: Seconds the site's connections have to close as the service stops,
#: their answers under way handed over, before they are aborted: a client
#: that does not read must not hold up the daemon's shutdown.
CLOSE_TIMEOUT = 3.0

#: The kinds of listener that other hosts cannot reach (a plain C{tcp:} or
#: C{tcp6:} one is refused off loopback).
_LOCAL_KINDS = frozenset({"unix", "tcp", "tcp6"})


def reachable_from_elsewhere(endpoint: str) -> bool:
    """
    @return: Whether other hosts may connect to C{endpoint}.  Only those
        known to be local are not: a C{unix:} socket, a plain C{tcp:} or
        C{tcp6:} listener (which may only be on loopback) and an C{ssl:}
        one bound to loopback.  Any other kind (C{systemd:}, a plugin's)
        may be anywhere, so the page needs the token there.

    @raise ConfigurationError: for a plain C{tcp:} listener off loopback.
    """
    check_listen_endpoint(endpoint)
    kind, ignored, rest = endpoint.partition(":")
    if kind in _LOCAL_KINDS:
        return False
    if kind != "ssl":
        return True
    try:
        # The same rule as a tcp: listener's: is it bound to loopback?
        check_listen_endpoint("tcp:" + rest)
    except ConfigurationError:
        return True
    return False


class ReadingChannel(HTTPChannel):
    """
    An HTTP channel that answers only a client that reads its answers, and
    only for so long.

    Twisted stops reading from a client whose unread answers fill the send
    buffer, but still answers every request it had read before: one packet
    of pipelined requests from a client that never reads would have the
    daemon hold thousands of answers (L{BoundedRequest} ends such a
    connection instead).  The connection is counted by its site, and
    closed if it sends no complete request within L{REQUEST_TIMEOUT} or
    leaves an answer untaken L{ANSWER_TIMEOUT} after its request.

    @ivar unread: Whether answers the client has not read fill the send
        buffer: the transport asked its producer, this channel, to pause.
    @ivar holder: The request whose answer waits for the client to read,
        handed more of it whenever the send buffer empties.
    """

    unread = False
    holder: BoundedRequest | None = None
    # Set by the site as it builds the channel.
    site: ReadingSite
    _deadline: IDelayedCall | None = None
    # Whether the client sent part of a request since its last answer.
    _began = False

    @cached_property
    def peer(self) -> str:
        """
        Who the peer is, for the log and for counting its connections: its
        address, or on a UNIX socket (whose peers have none) that socket,
        all its peers counted as one.
        """
        address = self.transport.getPeer() if self.transport is not None else None
        if isinstance(address, UNIXAddress):
            return "a UNIX socket's peer"
        return str(getattr(address, "host", None) or address)

    def connectionMade(self) -> None:
        """
        Be counted by the site (which may refuse the connection), and wait
        for a request.
        """
        super().connectionMade()
        if self.site.opened(self):
            self._wait_for_request()

    def abort(self) -> None:
        """
        Close the connection now, dropping what the client has not read.
        """
        if self.transport is not None:
            cast(ITCPTransport, self.transport).abortConnection()

    def _wait_for_request(self) -> None:
        """
        Wait for a complete request, among those the site lets wait, until
        L{REQUEST_TIMEOUT}.
        """
        if not self.site.admission.admit(self, self.peer):
            self.abort()
            return
        self._began = False
        self._set_deadline(REQUEST_TIMEOUT, self._no_request)

    def _set_deadline(self, seconds: float, then: Any) -> None:
        self._cancel_deadline()
        self._deadline = self.site.reactor.callLater(seconds, then)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _no_request(self) -> None:
        self._deadline = None
        # An idle kept-alive connection is closed as a matter of course;
        # one that began a request and did not end it is a refusal.
        if self._began:
            self.site.admission.log_refusal(
                self.peer, "closed a connection", f"no complete request within {REQUEST_TIMEOUT:g} s"
            )
            self.abort()
            return
        # Idle: close gracefully, so that the end of the last answer still
        # in the send buffers reaches a client reading it slowly; one that
        # reads nothing is aborted once the answer's time is out.
        self.site.admission.done_waiting(self)
        self._set_deadline(ANSWER_TIMEOUT, self.abort)
        self.loseConnection()

    def _not_taken(self) -> None:
        self._deadline = None
        self.site.admission.log_refusal(
            self.peer, "closed a connection", f"its answer was not read within {ANSWER_TIMEOUT:g} s"
        )
        self.abort()

    def dataReceived(self, data: bytes) -> None:
        """
        Note that the client began a request, then read it as Twisted does.
        """
        self._began = True
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        """
        Read as Twisted does, but a client that sends more (its next
        requests) while an answer it has not read waits for it is not
        answered (see L{answering}).
        """
        if self._handlingRequest and self.holder is not None and not self.answering():
            return
        super().rawDataReceived(data)

    def pipelined(self) -> bool:
        """
        @return: Whether the client sent more (its next requests) before
            the answer under way was taken.
        """
        return bool(self._dataBuffer)

    def allContentReceived(self) -> None:
        """
        The request is complete: it waits no more, and its answer has until
        L{ANSWER_TIMEOUT} to be taken.
        """
        self.site.admission.done_waiting(self)
        self._set_deadline(ANSWER_TIMEOUT, self._not_taken)
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        """
        The answer is handed over: wait for the next request (which may
        have come already), or, the connection closing gracefully, give
        the client L{ANSWER_TIMEOUT} to take the end of the answer still in
        the send buffers, as an idle kept-alive connection has.
        """
        if self.persistent:
            self._wait_for_request()
        else:
            self._set_deadline(ANSWER_TIMEOUT, self.abort)
        super().requestDone(request)

    def close(self) -> None:
        """
        Close the connection once the answer under way, if any, is handed
        over: the service stops.
        """
        self.persistent = False
        if not self._handlingRequest:
            self._cancel_deadline()
            self.site.admission.done_waiting(self)
            self.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The site counts the connection no more.
        """
        self._cancel_deadline()
        self.site.closed(self)
        super().connectionLost(reason)

    def answering(self) -> bool:
        """
        @return: Whether a request read may be answered now; if the client
            leaves answers unread, it may not, and the connection is
            aborted (which drops those answers).
        """
        if not self.unread:
            return True
        self.site.admission.log_refusal(
            self.peer, "closed a connection", "it sent requests without reading the answers"
        )
        self.abort()
        return False

    def pauseProducing(self) -> None:
        """
        The send buffer is full: note it, then pause as Twisted does.
        """
        self.unread = True
        super().pauseProducing()

    def resumeProducing(self) -> None:
        """
        The client read enough for the send buffer to take more: hand over
        more of the answer that waits.
        """
        self.unread = False
        super().resumeProducing()
        if self.holder is not None:
            self.holder.hand_over()


class ReadingSite(Site):
    """
    A site whose connections are L{ReadingChannel}s, at most
    L{CONNECTION_LIMIT} at once, holding at most L{UNSENT_LIMIT} bytes of
    answers for them.

    @ivar admission: Counts the connections waiting for a request, and
        logs refusals.
    @ivar channels: The connections open.
    @ivar unsent: The bytes of answers held for clients to take.
    """

    # Twisted types this as its wrapper that may negotiate HTTP/2 over TLS;
    # the site speaks HTTP/1.1 only, on a channel of its own.
    protocol = ReadingChannel  # type: ignore[assignment]

    def __init__(self, resource: IResource, requestFactory: Any, reactor: IReactorTime) -> None:
        super().__init__(resource, requestFactory=requestFactory, reactor=reactor)
        self.admission: Admission[ReadingChannel] = Admission(
            reactor, WAITING_LIMIT, WAITING_PER_HOST, "a complete request", "http"
        )
        self.channels: set[ReadingChannel] = set()
        self.unsent = 0
        # The requests holding answers, in the order they began to.
        self._holders: dict[BoundedRequest, None] = {}
        # Fired once the last channel is closed, as the service stops.
        self._closing: list[Deferred[None]] = []

    def opened(self, channel: ReadingChannel) -> bool:
        """
        Count C{channel}, or, with L{CONNECTION_LIMIT} open, close it.

        @return: Whether it is counted.
        """
        if len(self.channels) >= CONNECTION_LIMIT:
            self.admission.log_refusal(
                channel.peer, "refused a connection", f"{CONNECTION_LIMIT} connections are open"
            )
            channel.abort()
            return False
        self.channels.add(channel)
        return True

    def closed(self, channel: ReadingChannel) -> None:
        """
        C{channel} is gone.
        """
        self.admission.done_waiting(channel)
        self.channels.discard(channel)
        if not self.channels:
            closing, self._closing = self._closing, []
            for d in closing:
                d.callback(None)

    def close(self) -> Deferred[None]:
        """
        Close every connection once its answer under way is handed over,
        and abort those still open after L{CLOSE_TIMEOUT}: the service
        stops, and a kept-alive connection would otherwise go on being
        answered (a scraper's C{/readyz}, from a monitor stopped or
        stopping).

        @return: Fires once every connection is closed.
        """
        if not self.channels:
            return succeed(None)
        closed: Deferred[None] = Deferred()
        self._closing.append(closed)
        for channel in list(self.channels):
            channel.close()
        overdue = self.reactor.callLater(CLOSE_TIMEOUT, self._abort_all)

        def done(result: None) -> None:
            if overdue.active():
                overdue.cancel()

        return closed.addCallback(done)

    def _abort_all(self) -> None:
        for channel in list(self.channels):
            channel.abort()

    def held(self, request: BoundedRequest, change: int) -> None:
        """
        C{request} holds C{change} more bytes of its answer (or fewer).
        """
        self.unsent += change
        if request.holding:
            self._holders.setdefault(request)
        else:
            self._holders.pop(request, None)

    def make_room(self, request: BoundedRequest) -> None:
        """
        Past L{UNSENT_LIMIT} held in all, close the connections whose
        answers have waited longest, but C{request}'s: the clients that
        read least.
        """
        while self.unsent > UNSENT_LIMIT:
            oldest = next((other for other in self._holders if other is not request), None)
            if oldest is None:
                return
            channel = oldest.channel
            if isinstance(channel, ReadingChannel):
                self.admission.log_refusal(
                    channel.peer,
                    "closed a connection",
                    f"its answer has waited longest of more than {UNSENT_LIMIT >> 20} MiB unread",
                )
                channel.abort()
            oldest.drop()


class BoundedRequest(Request):
    """
    A request whose body may hold at most L{MAX_BODY} bytes, and whose
    answer is handed to the transport as its client takes it.

    A longer body, whether its C{Content-Length} says so or its chunks add
    up to more, is answered 413 and its connection closed as soon as that
    is known: its bytes are never gathered (L{Request} keeps a body whole,
    in memory as its form is read, whoever sends it and before any token
    is asked for).

    The answer goes to the transport L{PIECE} bytes at a time, while the
    send buffer takes them: the rest is held, counted by the site
    (L{ReadingSite.held}), and the request finishes once it is all handed
    over.  The transport would otherwise keep a copy of the whole answer
    for a client that does not read it.
    """

    maximum = MAX_BODY
    _refused = False
    _body: BytesIO

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: deque[bytes] = deque()
        # How much of the first unsent piece is handed over.
        self._offset = 0
        self._unsent_bytes = 0
        self._finishing = False
        self._handing = False

    @property
    def holding(self) -> bool:
        """
        Whether some of the answer waits to be handed over.
        """
        return bool(self._unsent)

    def gotLength(self, length: int | None) -> None:
        """
        Refuse a body announced longer than L{maximum}; keep a shorter one
        (or one sent in chunks, which L{handleContentChunk} counts) in
        memory.
        """
        self.content = self._body = BytesIO()
        if length is not None and length > self.maximum:
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:
        """
        Keep C{data}, unless the body grows longer than L{maximum}: then
        refuse it.
        """
        if self._refused:
            return
        if self._body.tell() + len(data) > self.maximum:
            self._refuse()
            return
        self._body.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        Serve the request, unless its body was refused (and the end of it
        came in before the connection closed), or answers the client has
        not read fill the send buffer: then end the connection at once, so
        that the daemon does not keep answers nobody reads.
        """
        if self._refused:
            return
        if isinstance(self.channel, ReadingChannel) and not self.channel.answering():
            return
        super().requestReceived(command, path, version)

    def write(self, data: bytes) -> None:
        """
        Answer with C{data}, once what came before is handed over, as
        much of it at once as the send buffer takes.
        """
        if self._disconnected:
            return
        if self.method == b"HEAD" or self.code in NO_BODY_CODES:
            # Twisted writes the headers and drops the body.
            super().write(data)
            return
        self._unsent.append(data)
        self._count(len(data))
        self.hand_over()
        if self._unsent and isinstance(self.channel, ReadingChannel):
            self.channel.site.make_room(self)

    def finish(self) -> None:
        """
        Finish the answer once all of it is handed over.
        """
        if self._unsent:
            self._finishing = True
            return
        if self.method == b"HEAD":
            # Twisted would write the end of the gzip stream of a
            # compressed answer after the headers, past the HEAD's
            # dropping of its body: a kept-alive client would read it as
            # the start of the next answer.  The headers say gzip anyway.
            self._encoder = None
        super().finish()

    def hand_over(self) -> None:
        """
        Hand the transport what it takes of the answer held, and finish the
        request if it was finished and all of it is handed over.
        """
        if self._handing:
            return
        self._handing = True
        try:
            while self._unsent and not self._full():
                first = self._unsent[0]
                if self._offset == 0 and len(first) <= PIECE:
                    piece = first
                else:
                    piece = first[self._offset : self._offset + PIECE]
                self._offset += len(piece)
                if self._offset >= len(first):
                    self._unsent.popleft()
                    self._offset = 0
                self._count(-len(piece))
                super().write(piece)
        finally:
            self._handing = False
        if self._unsent and isinstance(self.channel, ReadingChannel) and self.channel.pipelined():
            # Requests sent ahead wait behind an answer not read.
            self.channel.answering()
        if not self._unsent and self._finishing and not self._disconnected:
            self._finishing = False
            super().finish()

    def drop(self) -> None:
        """
        Drop the answer held: its connection is gone, or going.
        """
        self._finishing = False
        self._unsent.clear()
        self._offset = 0
        self._count(-self._unsent_bytes)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Drop the answer held, then end as Twisted does.
        """
        self.drop()
        super().connectionLost(reason)

    def _full(self) -> bool:
        return isinstance(self.channel, ReadingChannel) and self.channel.unread

    def _count(self, change: int) -> None:
        """
        Count C{change} more bytes held (or fewer), with the site.
        """
        self._unsent_bytes += change
        channel = self.channel
        if isinstance(channel, ReadingChannel):
            channel.holder = self if self._unsent else None
            channel.site.held(self, change)

    def _refuse(self) -> None:
        self._refused = True
        # Asked to, the channel would otherwise say "100 Continue" after 413.
        self.requestHeaders.removeHeader(b"expect")
        if isinstance(self.channel, HTTPChannel) and self.channel.transport is not None:
            # The request knows too little of itself yet (its method and
            # version come with its end) to answer through its own methods;
            # Twisted answers a request it cannot parse this way too.
            self.channel.transport.write(_TOO_LARGE)
        self.loseConnection()


@implementer(IStatusSource)
@attr.s(eq=False)
class HttpService(Service):
    """
    Serves the status page, the metrics and the health checks.

    @ivar token: The token the page needs, or L{None} where it needs none.
    """

    log = Logger()

    reactor: IReactorTCP = attr.ib()
    endpoint: str = attr.ib()
    monitor: Monitor = attr.ib(repr=False)
    token: str | None = attr.ib(default=None, repr=False)
    _port: IListeningPort | None = attr.ib(default=None, init=False)
    _site: ReadingSite | None = attr.ib(default=None, init=False)

    @classmethod
    def from_config(
        cls, reactor: IReactorTCP, endpoint: str, monitor: Monitor, token_file: Path
    ) -> HttpService:
        """
        Check the endpoint policy; read the control token if other hosts
        may connect (the control port creates it first).

        @raise ConfigurationError: for a plain listener off loopback, an
            unreadable token, or a description Twisted cannot parse (a
            typo would leave the page and metrics off unnoticed).
        """
        try:
            serverFromString(reactor, endpoint)
        except (ValueError, TypeError) as e:
            raise ConfigurationError(f"--http: cannot use endpoint {endpoint!r}: {e}") from None
        except Exception:
            # Parsed, but a file it names cannot be read, or systemd did not
            # hand its socket over: as a port in use, that is logged at
            # start, and the mirror runs on without its page.
            pass
        token = read_token(token_file) if reachable_from_elsewhere(endpoint) else None
        return cls(reactor, endpoint, monitor, token)

    def site(self) -> ReadingSite:
        """
        @return: The site served.
        """
        root = site_root(self.monitor, registry(lambda: self.monitor.current), self.token)
        # Every reactor keeps time.
        site = ReadingSite(root, requestFactory=BoundedRequest, reactor=cast(IReactorTime, self.reactor))
        site.noisy = False
        # Scrapes and polls would fill the log: errors are logged anyway.
        site.log = lambda request: None  # type: ignore[method-assign]
        return site

    def privilegedStartService(self) -> None:
        """
        Listen now (before twistd gives up its privileges).  A port in use
        is logged as an error and leaves the site off: the mirror matters
        more than its status page, and C{Status} shows it is not listening.
        """
        super().privilegedStartService()
        self._site = self.site()
        try:
            endpoint = server_endpoint(self.reactor, self.endpoint)
        except ConfigurationError:
            # As one it cannot listen on: the daemon mirrors on without it.
            self._not_listening(Failure())
            return
        endpoint.listen(self._site).addCallbacks(self._listening, self._not_listening)

    def _not_listening(self, failure: Failure) -> None:
        self.log.error(
            "cannot listen on {endpoint}: {error}; the status page, /metrics and the health checks are off",
            endpoint=self.endpoint,
            error=failure.getErrorMessage(),
            service="http",
        )

    def _listening(self, port: IListeningPort) -> None:
        self._port = port
        self.log.info("http listening on {address}", address=self.url(), service="http")

    def url(self) -> str | None:
        """
        @return: Where the site listens, as C{http://HOST:PORT/} when it
            can, or L{None} before it listens.
        """
        if self._port is None:
            return None
        host = self._port.getHost()
        if hasattr(host, "host") and hasattr(host, "port"):
            scheme = "https" if self.endpoint.startswith("ssl:") else "http"
            name = f"[{host.host}]" if ":" in host.host else host.host
            return f"{scheme}://{name}:{host.port}/"
        return str(host)

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}.
        """
        return {
            "listening": self.url(),
            "token": self.token is not None,
        }

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop listening, and close the connections open (see
        L{ReadingSite.close}).
        """
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            stopping = port.stopListening()
            if stopping is not None:  # a port may stop at once
                yield stopping
        if self._site is not None:
            yield self._site.close()


def web_services(
    reactor: IReactorTCP, endpoint: str, bus: IBus, daemon: IDaemon, token_file: Path
) -> list[tuple[str, IService]]:
    """
    The operators' HTTP side of a daemon: the C{monitor} (whose health
    states C{Status} reports) and, unless C{endpoint} is C{none}, the
    C{http} site.

    @param token_file: The control port's token file, already created.
    """
    # Every reactor keeps time.
    monitor = Monitor(cast(IReactorTime, reactor), bus, daemon)
    services: list[tuple[str, IService]] = [("monitor", monitor)]
    if endpoint != "none":
        services.append(("http", HttpService.from_config(reactor, endpoint, monitor, token_file)))
    return services
