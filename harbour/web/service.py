"""
The C{http} service: a L{twisted.web} site on the C{--http} endpoint.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import cast

import attr
from twisted.application.service import IService, Service
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime, ITCPTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site
from zope.interface import implementer

from harbour.amp.server import check_listen_endpoint, read_token
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
    An HTTP channel that answers only a client that reads its answers.

    Twisted stops reading from a client whose unread answers fill the send
    buffer, but still answers every request it had read before: one packet
    of pipelined requests from a client that never reads would have the
    daemon hold thousands of answers (L{BoundedRequest} ends such a
    connection instead).

    @ivar unread: Whether answers the client has not read fill the send
        buffer: the transport asked its producer, this channel, to pause.
    """

    log = Logger()

    unread = False

    def answering(self) -> bool:
        """
        @return: Whether a request read may be answered now; if the client
            leaves answers unread, it may not, and the connection is
            aborted (which drops those answers).
        """
        if not self.unread:
            return True
        transport = cast(ITCPTransport, self.transport)
        self.log.warn(
            "closed a connection from {peer}: it sent requests without reading the answers",
            peer=str(transport.getPeer()),
            service="http",
        )
        transport.abortConnection()
        return False

    def pauseProducing(self) -> None:
        """
        The send buffer is full: note it, then pause as Twisted does.
        """
        self.unread = True
        super().pauseProducing()

    def resumeProducing(self) -> None:
        """
        The client read enough for the send buffer to take more.
        """
        self.unread = False
        super().resumeProducing()


class ReadingSite(Site):
    """
    A site whose connections are L{ReadingChannel}s.
    """

    # Twisted types this as its wrapper that may negotiate HTTP/2 over TLS;
    # the site speaks HTTP/1.1 only, on a channel of its own.
    protocol = ReadingChannel  # type: ignore[assignment]


class BoundedRequest(Request):
    """
    A request whose body may hold at most L{MAX_BODY} bytes.  A longer one,
    whether its C{Content-Length} says so or its chunks add up to more, is
    answered 413 and its connection closed as soon as that is known: its
    bytes are never gathered (L{Request} keeps a body whole, in memory as
    its form is read, whoever sends it and before any token is asked for).
    """

    maximum = MAX_BODY
    _refused = False
    _body: BytesIO

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
    monitor: Monitor = attr.ib()
    token: str | None = attr.ib(default=None, repr=False)
    _port: IListeningPort | None = attr.ib(default=None, init=False)

    @classmethod
    def from_config(
        cls, reactor: IReactorTCP, endpoint: str, monitor: Monitor, token_file: Path
    ) -> HttpService:
        """
        Check the endpoint policy; read the control token if other hosts
        may connect (the control port creates it first).

        @raise ConfigurationError: for a plain listener off loopback, or an
            unreadable token.
        """
        token = read_token(token_file) if reachable_from_elsewhere(endpoint) else None
        return cls(reactor, endpoint, monitor, token)

    def site(self) -> Site:
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
        d = serverFromString(self.reactor, self.endpoint).listen(self.site())
        d.addCallbacks(self._listening, self._not_listening)

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

    def stopService(self) -> object:
        """
        Stop listening.
        """
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
        return None


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
