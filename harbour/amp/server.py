"""
The C{amp} service: harbour's AMP control port.

One listener carries pub/sub and control.  Every connection must first
present the token of C{--token-file}; anything else before it, or a wrong
token, gets C{UNAUTHORIZED} and a log line naming the peer.  Each
connection has one L{Outbox} registered as a push producer on its
transport, so a subscriber that stops reading is dropped once its queue
overflows instead of growing the daemon's memory.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IAddress, IConsumer, IListeningPort, IReactorTCP, ITransport
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.amp import commands
from harbour.bus import Bus, Event, Outbox, validate_pattern
from harbour.errors import BadRequest, ConfigurationError, Unauthorized
from harbour.interfaces import IDaemon, IStatusSource, StatusDocument
from harbour.store.tasks import FAILED, check_state

#: Events held for one remote subscriber that is not reading.
REMOTE_QUEUE_LIMIT = 10_000

#: What an AMP responder answers: the response's arguments by name.
Response = dict[str, object]

_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def check_listen_endpoint(description: str) -> None:
    """
    Refuse a plain-text listener that other hosts could reach: the token
    would cross the network in the clear.

    @raise ConfigurationError: for a C{tcp:} or C{tcp6:} endpoint whose
        interface is not a loopback address.
    """
    kind, *parts = [p.replace("\\:", ":") for p in _UNESCAPED_COLON.split(description)]
    if kind not in ("tcp", "tcp6"):
        return
    interface = ""
    for part in parts:
        if part.startswith("interface="):
            interface = part[len("interface=") :]
    if interface == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(interface).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        where = interface or "every interface"
        raise ConfigurationError(
            f"refusing to listen on {where} without TLS ({description!r}): "
            f"use an ssl: endpoint (ssl:7750:privateKey=key.pem:certKey=cert.pem) "
            f"or a loopback interface (tcp:7750:interface=127.0.0.1)"
        )


def load_or_create_token(path: Path) -> str:
    """
    Read the shared AMP token, creating it (mode 0600) if there is none.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return read_token(path)


def read_token(path: Path) -> str:
    """
    Read the shared AMP token.

    @raise ConfigurationError: if it is missing or empty.
    """
    try:
        token = Path(path).read_text().strip()
    except OSError as e:
        raise ConfigurationError(f"cannot read token file {path}: {e.strerror}") from None
    if not token:
        raise ConfigurationError(f"token file {path} is empty")
    return token


class ControlProtocol(amp.AMP):
    """
    One control connection, as seen by the daemon.
    """

    log = Logger()

    def __init__(self, service: ControlService) -> None:
        super().__init__()
        self._service = service
        self._authenticated = False
        self._outbox: Outbox | None = None

    @property
    def _peer(self) -> str:
        peer = self.transport.getPeer() if self.transport else None
        return str(getattr(peer, "host", None) or peer)

    @property
    def _stream(self) -> ITransport:
        """
        The transport, which is set before L{connectionMade}: before any
        command or event.
        """
        return cast(ITransport, self.transport)

    @property
    def _connected_outbox(self) -> Outbox:
        """
        The outbox, made in L{connectionMade}: before any command.
        """
        return cast(Outbox, self._outbox)

    def connectionMade(self) -> None:
        """
        Prepare this connection's outbox and let the transport pause it.
        """
        super().connectionMade()
        self._service.connections.add(self)
        self._outbox = Outbox(self._send_event, self._overflowed, self._service.queue_limit)
        # A stream transport (TCP, TLS, UNIX socket) is also a consumer.
        cast(IConsumer, self.transport).registerProducer(self._outbox, True)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Forget this connection's subscriptions.
        """
        if self._outbox is not None:
            self._service.bus.detach(self._outbox)
            self._outbox.stopProducing()
        super().connectionLost(reason)
        self._service.connection_closed(self)

    def _send_event(self, event: Event) -> None:
        self._stream.write(event.wire)

    def _overflowed(self, reason: str) -> None:
        self._service.bus.detach(self._connected_outbox)
        self.log.warn(
            "disconnecting subscriber {peer}: {reason}",
            peer=self._peer,
            reason=reason,
            service="amp",
        )
        abort = getattr(self.transport, "abortConnection", self._stream.loseConnection)
        abort()

    def locateResponder(self, name: bytes) -> Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None:
        """
        Refuse every command but C{Authenticate} until the token is known.
        """
        if self._authenticated or name == b"Authenticate":
            responder: Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None = super().locateResponder(name)
            return responder
        command = name.decode("ascii", "replace")
        self.log.warn(
            "refused {command} from {peer}: not authenticated",
            command=command,
            peer=self._peer,
            service="amp",
        )
        return lambda box: fail(
            amp.RemoteAmpError(b"UNAUTHORIZED", f"authenticate before {command}".encode())
        )

    @property
    def backlog(self) -> int:
        """
        Events waiting for this connection's peer to read.
        """
        return 0 if self._outbox is None else self._outbox.waiting

    @commands.Authenticate.responder
    def authenticate(self, token: str) -> Response:
        """
        Check the token in constant time.
        """
        if not hmac.compare_digest(token.encode("utf-8"), self._service.token.encode("utf-8")):
            self.log.warn("refused a wrong token from {peer}", peer=self._peer, service="amp")
            raise Unauthorized("wrong token")
        self._authenticated = True
        return {}

    @commands.Subscribe.responder
    def subscribe(self, topic: str) -> Response:
        """
        Route events matching C{topic} to this connection.
        """
        validate_pattern(topic)
        self._service.bus.detach(self._connected_outbox, topic)
        self._service.bus.attach(topic, self._connected_outbox)
        return {}

    @commands.Unsubscribe.responder
    def unsubscribe(self, topic: str) -> Response:
        """
        Stop routing C{topic} to this connection.
        """
        self._service.bus.detach(self._connected_outbox, validate_pattern(topic))
        return {}

    @commands.Publish.responder
    def publish(self, topic: str, payload: str, retain: bool | None = None) -> Response:
        """
        Publish on the daemon's bus.
        """
        event = Event.from_text(topic, payload)
        return {"delivered": self._service.bus.dispatch(event, bool(retain))}

    @commands.Status.responder
    @inlineCallbacks
    def status(self) -> Generator[Deferred[Any], Any, Response]:
        """
        The daemon's status document.
        """
        document = yield self._service.daemon.status()
        return {"status": json.dumps(document, sort_keys=True)}

    @commands.Refresh.responder
    @inlineCallbacks
    def refresh(self) -> Generator[Deferred[Any], Any, Response]:
        """
        Refresh the task store from the manifest now.
        """
        return {"created": (yield self._service.daemon.refresh())}

    @commands.Reports.responder
    def reports(self, offset: int, limit: int) -> Response:
        """
        One page of the manifest.
        """
        check_page(offset, limit)
        urls = self._service.daemon.requests()
        text, ignored = commands.json_page(u.to_json() for u in urls[offset : offset + limit])
        return {"urls": text, "total": len(urls)}

    @commands.Pause.responder
    def pause(self, service: str | None = None) -> Response:
        """
        Pause one pausable service, or all of them.
        """
        return self._switch(service, "pause")

    @commands.Resume.responder
    def resume(self, service: str | None = None) -> Response:
        """
        Resume one pausable service, or all of them.
        """
        return self._switch(service, "resume")

    def _switch(self, service: str | None, verb: str) -> Response:
        if service is not None:
            check_name(service, "service")
        chosen = self._service.daemon.pausable(service)
        for pausable in chosen.values():
            getattr(pausable, verb)()
        self.log.info(
            "{verb}d {services} for {peer}",
            verb=verb,
            services=sorted(chosen),
            peer=self._peer,
            service="amp",
        )
        return {"services": json.dumps(sorted(chosen))}

    @commands.ListTasks.responder
    @inlineCallbacks
    def list_tasks(
        self, state: str, offset: int, limit: int, report: str | None = None
    ) -> Generator[Deferred[Any], Any, Response]:
        """
        A page of tasks.
        """
        check_page(offset, limit)
        check_name(report, "report")
        tasks = self._service.daemon.task_store()
        try:
            check_state(state)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        found, total = yield tasks.tasks(state, report, offset, limit)
        text, ignored = commands.json_page(t.to_json() for t in found)
        return {"tasks": text, "total": total}

    @commands.Retry.responder
    @inlineCallbacks
    def retry(
        self, state: str | None = None, report: str | None = None
    ) -> Generator[Deferred[Any], Any, Response]:
        """
        Revive failed (or empty) tasks.
        """
        check_name(report, "report")
        tasks = self._service.daemon.task_store()
        try:
            count = yield tasks.retry(state or FAILED, report)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if count:
            # Wakes idle downloaders, wherever they run.
            yield self._service.bus.publish("task.created", {"report": report or "*", "count": count})
        return {"count": count}

    @commands.Reload.responder
    @inlineCallbacks
    def reload(self) -> Generator[Deferred[Any], Any, Response]:
        """
        Re-read the configuration directory.
        """
        topics, errors = yield self._service.daemon.reload()
        return {"topics": json.dumps(topics), "errors": json.dumps(errors)}


#: The longest report or service name an argument may carry.
MAX_NAME = 200


def check_name(value: str | None, what: str) -> None:
    """
    @raise BadRequest: if C{value} is too long to be a name.
    """
    if value is not None and len(value) > MAX_NAME:
        raise BadRequest(f"{what} name longer than {MAX_NAME} characters")


def check_page(offset: int, limit: int) -> None:
    """
    @raise BadRequest: unless C{offset} is 0 or more and C{limit} between 1
        and L{commands.MAX_PAGE}.
    """
    if offset < 0:
        raise BadRequest(f"offset must be 0 or more, not {offset}")
    if not 1 <= limit <= commands.MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {commands.MAX_PAGE}, not {limit}")


@implementer(IStatusSource)
@attr.s(eq=False)
class ControlService(Service):
    """
    Listens for control connections on a Twisted endpoint.

    @ivar reactor: What listens on C{endpoint}: also an
        L{twisted.internet.interfaces.IReactorSSL} or
        L{twisted.internet.interfaces.IReactorUNIX} for those kinds of
        endpoint.
    @ivar daemon: What the commands act on.
    """

    log = Logger()

    reactor: IReactorTCP = attr.ib()
    endpoint: str = attr.ib()
    token: str = attr.ib(repr=False)
    bus: Bus = attr.ib()
    daemon: IDaemon = attr.ib()
    queue_limit: int = attr.ib(default=REMOTE_QUEUE_LIMIT)
    _port: IListeningPort | None = attr.ib(default=None, init=False)
    connections: set[ControlProtocol] = attr.ib(factory=set, init=False)
    _closing: list[Deferred[None]] = attr.ib(factory=list, init=False)

    @classmethod
    def from_config(
        cls,
        reactor: IReactorTCP,
        endpoint: str,
        token_file: Path,
        bus: Bus,
        daemon: IDaemon,
        queue_limit: int = REMOTE_QUEUE_LIMIT,
    ) -> ControlService:
        """
        Check the endpoint policy and load (or create) the token.
        """
        check_listen_endpoint(endpoint)
        return cls(reactor, endpoint, load_or_create_token(token_file), bus, daemon, queue_limit)

    def privilegedStartService(self) -> None:
        """
        Listen now, so that a port in use stops start-up with a clear error.
        """
        super().privilegedStartService()
        factory = Factory.forProtocol(lambda: ControlProtocol(self))
        factory.noisy = False
        d = serverFromString(self.reactor, self.endpoint).listen(factory)
        failures: list[Failure] = []
        d.addCallbacks(self._listening, failures.append)
        if failures:
            raise ConfigurationError(f"cannot listen on {self.endpoint}: {failures[0].getErrorMessage()}")

    def _listening(self, port: IListeningPort) -> None:
        self._port = port
        self.log.info(
            "control port listening on {address}",
            address=str(port.getHost()),
            service="amp",
        )

    def address(self) -> IAddress:
        """
        @return: The address actually listened on (the port when C{tcp:0}).
        """
        assert self._port is not None, "address() before privilegedStartService()"
        return self._port.getHost()

    def backlog(self) -> int:
        """
        @return: The most events waiting for any one connection.
        """
        return max((c.backlog for c in self.connections), default=0)

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}.
        """
        return {
            "listening": str(self._port.getHost()) if self._port else None,
            "connections": len(self.connections),
            "backlog": self.backlog(),
        }

    def connection_closed(self, protocol: ControlProtocol) -> None:
        """
        Forget a connection; fire L{stopService}'s Deferred after the last.
        """
        self.connections.discard(protocol)
        if not self.connections:
            waiting, self._closing = self._closing, []
            for d in waiting:
                d.callback(None)

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop listening, close every control connection, and fire once all
        of them are closed.
        """
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            stopping = port.stopListening()
            if stopping is not None:  # a port may stop at once
                yield stopping
        if self.connections:
            closed: Deferred[None] = Deferred()
            self._closing.append(closed)
            for protocol in list(self.connections):
                protocol._stream.loseConnection()
            yield closed
