"""
The C{amp} service: harbour's AMP control port.

One listener carries pub/sub and control.  Every connection must first
present the token of C{--token-file}; anything else before it, or a wrong
token, gets C{UNAUTHORIZED} and a log line naming the peer (at most one a
minute per peer).  A wrong token is answered only after
L{REFUSAL_DELAY}, so that guessing is slow, and a connection that has not
authenticated within L{AUTHENTICATION_TIMEOUT} is closed, so that idle
strangers hold no resources; at most L{UNAUTHENTICATED_LIMIT} connections
(L{UNAUTHENTICATED_PER_HOST} of one host) wait for their token at once,
and a new one closes the oldest of them (see L{harbour.admission}).  An
authenticated connection that sends nothing for L{IDLE_TIMEOUT} is closed,
and TCP's keepalive finds a peer whose host has gone (L{KEEPALIVE_IDLE}):
a peer gone without a word keeps no connection, nor its subscriptions,
for ever.  Each connection has one L{Outbox} registered as a push
producer on its transport, so a subscriber that stops reading is dropped
once its queue overflows instead of growing the daemon's memory; and a
connection's requests are read no faster than its peer reads their
answers (L{ControlProtocol}).  Topics of the
configuration directory cannot be published from outside: their value is
the directory's; and what clients keep retained is bounded
(L{Bus.dispatch_remote}).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import socket
import struct
from collections.abc import Callable, Generator
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import attr
from OpenSSL import SSL, crypto
from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, fail, inlineCallbacks, maybeDeferred
from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IListeningPort,
    IPushProducer,
    IReactorTCP,
    IReactorTime,
    IStreamServerEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.admission import Admission
from harbour.amp import commands
from harbour.bus import DEFAULT_QUEUE_BYTES, Bus, Event, Outbox, validate_pattern
from harbour.errors import BadRequest, ConfigurationError, Unauthorized
from harbour.interfaces import IDaemon, IStatusSource, StatusDocument
from harbour.services.pausing import PAUSED, announce_pauses
from harbour.store.tasks import FAILED, check_state

#: Events held for one remote subscriber that is not reading.
REMOTE_QUEUE_LIMIT = 10_000

#: Bytes of payload held for one remote subscriber that is not reading:
#: at up to 64 KiB an event, L{REMOTE_QUEUE_LIMIT} alone would let it hold
#: gigabytes of the daemon's memory before it is dropped.
REMOTE_QUEUE_BYTES = DEFAULT_QUEUE_BYTES

#: Patterns one connection may be subscribed to at once.  Each costs the
#: daemon memory, and a client needs few: one per kind of event it follows.
SUBSCRIPTION_LIMIT = 1_000

#: Seconds a connection may stay unauthenticated before it is closed: a
#: client sends its token at once, so only a stranger waits this long.
AUTHENTICATION_TIMEOUT = 10.0

#: The most connections that may wait for their token at once, in all and
#: from any one host (its address; a UNIX socket's peers are one).  A
#: client sends its token as soon as it is connected, so only strangers
#: come near these; past either, a new connection closes the oldest
#: waiting (of its host, or of all), as a refusal.  With
#: L{AUTHENTICATION_TIMEOUT}, they bound what strangers hold: sockets, and
#: the daemon's memory of each.
UNAUTHENTICATED_LIMIT = 128
UNAUTHENTICATED_PER_HOST = 32

#: The most requests a connection may have asked and not yet been
#: answered: past it, what the connection sends is left unread until an
#: answer goes out.  Most answers are written at once; those that wait
#: (the store's, the daemon's status) would otherwise be asked for without
#: bound, and all be written at once.
UNANSWERED_LIMIT = 32

#: Seconds before a wrong token is refused; attempts on one connection
#: are refused one after another, so guessing runs at most one a second.
REFUSAL_DELAY = 1.0

#: The most bytes of keys and values one box a client sends may hold,
#: before and after it is authenticated.  AMP itself bounds only each key
#: and value, not how many a box has: a box that never ends would take
#: memory without bound.  A request carries at most one payload, itself
#: one AMP value of at most 64 KiB (L{harbour.bus}); a token is far less.
BOX_LIMIT_UNAUTHENTICATED = 64 << 10
BOX_LIMIT = 1 << 20

#: The most keys one box may hold before the token: a key takes far more
#: memory than its bytes (two bytes objects and a slot of the box's dict,
#: some 75 bytes for a key of 2 bytes and an empty value), and a box of
#: 32,699 such keys, within L{BOX_LIMIT_UNAUTHENTICATED} by its bytes,
#: took some 2.5 MB.  C{Authenticate} has three (C{_command}, C{_ask},
#: C{token}); an authenticated command's box is held by its bytes alone.
KEY_LIMIT_UNAUTHENTICATED = 16

#: The most bytes of a command's name that its refusal, or the log line of
#: it, repeats: a name may be of nearly 64 KiB, and an answer repeating it
#: whole longer than AMP can send.
NAME_SHOWN = 64

#: Seconds an authenticated connection may send nothing, while none of its
#: requests waits for its answer, before it is closed, with its
#: subscriptions: its peer's host may have gone without a word (a worker's
#: host cut off or powered down), leaving a connection that nothing would
#: end on a quiet topic.  Clients send far more often: a worker its
#: heartbeat every 5 s, C{harbourctl subscribe} a C{Status} every 30 s,
#: C{harbourctl watch} one every C{--interval} (1 s); a program that only
#: subscribes must send something (a C{Status}) as often.
IDLE_TIMEOUT = 120.0

#: TCP keepalive on accepted connections (where the system has the
#: options): probes start after this many seconds of silence on the
#: socket, one every L{KEEPALIVE_INTERVAL} seconds, and L{KEEPALIVE_COUNT}
#: unanswered end the connection, so that a peer whose host has gone is
#: found within about two minutes, even one that sends nothing, before the
#: token as after it.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6

#: Seconds a closing control connection has to close before it is
#: aborted: a peer that stops reading, or over TLS never answers the
#: close, must not hold it open, nor hold up the daemon's shutdown.
CLOSE_TIMEOUT = 3.0

#: What an AMP responder answers: the response's arguments by name.
Response = dict[str, object]


#: The plain-text listening kinds, and where each takes an interface given
#: without its key (Twisted's C{tcp:PORT:INTERFACE:BACKLOG},
#: C{tcp6:PORT:BACKLOG:INTERFACE}).
INTERFACE_AT = {"tcp": 2, "tcp6": 3}


def _is_loopback(host: str) -> bool:
    """
    @return: Whether C{host} is a loopback address (a name is not).
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_endpoint(description: str) -> None:
    """
    Refuse a plain-text listener that other hosts could reach: the token
    would cross the network in the clear.  The description is read as
    Twisted reads it (kinds in any case, escapes undone), so that what is
    checked is what listens.

    @raise ConfigurationError: for a C{tcp:} or C{tcp6:} endpoint whose
        interface is not a loopback address, or whose port is not a number
        (written C{tcp:HOST:PORT}, say, as a client would).
    """
    try:
        args, options = _parse(description)
    except ValueError as e:
        raise ConfigurationError(f"cannot use endpoint {description!r}: {e}") from None
    kind = str(args[0]).lower() if args else ""
    if kind not in INTERFACE_AT:
        return
    port = str(options.get("port") or (args[1] if len(args) > 1 else ""))
    if not port.isdigit():
        # Such as tcp:HOST:PORT, a client's order: Twisted would take the
        # host for the port and the port for the interface.
        raise ConfigurationError(
            f"cannot use endpoint {description!r}: its port {port!r} is not a number "
            f"(a listener is {kind}:PORT:interface=ADDRESS)"
        )
    # Given without its key, the interface is where the kind's parser takes it.
    at = INTERFACE_AT[kind]
    interface = str(options.get("interface") or (args[at] if len(args) > at else ""))
    if interface == "localhost":
        return
    if not _is_loopback(interface):
        where = interface or "every interface"
        raise ConfigurationError(
            f"refusing to listen on {where} without TLS ({description!r}): "
            f"use an ssl: endpoint (ssl:{port}:privateKey=key.pem:certKey=cert.pem) "
            f"or a loopback interface (tcp:{port}:interface=127.0.0.1)"
        )


#: The most bytes a token file may hold: harbour's own tokens are 43
#: characters, and a token must travel in one AMP value (64 KiB).  A file
#: of more (a log named by mistake) is no token.
TOKEN_LIMIT = 1024


def server_endpoint(reactor: object, description: str) -> IStreamServerEndpoint:
    """
    Parse an endpoint to listen on, as Twisted does.

    @param reactor: The reactor it will listen with.
    @raise ConfigurationError: for a description Twisted cannot parse, one
        whose files (a certificate, a key) it cannot read, or a C{systemd:}
        one naming a socket systemd did not hand over.
    """
    try:
        return serverFromString(reactor, description)
    except (IndexError, KeyError):
        # Only systemd's parser looks things up: the sockets handed over.
        why = "systemd handed over no such socket (is harbour started by its socket unit?)"
    except (ValueError, TypeError, OSError, SSL.Error, crypto.Error) as e:
        why = str(e) or type(e).__name__
    raise ConfigurationError(f"cannot use endpoint {description!r}: {why}")


def check_listening(description: str, address: IAddress) -> None:
    """
    Refuse, once it listens, a plain-text listener whose description did
    not say where: a C{systemd:} one, whose socket systemd made and hands
    over as it is (Twisted adopts it as plain text: there is no TLS over
    it), on an Internet address that is not loopback.

    @raise ConfigurationError: for such a listener.
    """
    try:
        args, options = _parse(description)
    except ValueError:
        return
    if not args or str(args[0]).lower() != "systemd":
        return
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return
    if not _is_loopback(address.host):
        raise ConfigurationError(
            f"refusing to listen on {address.host} without TLS ({description!r}): systemd hands over "
            f"a plain-text socket; bind it to a loopback address (ListenStream=127.0.0.1:{address.port}) "
            f"or use an ssl: endpoint"
        )


def load_or_create_token(path: Path) -> str:
    """
    Read the shared AMP token, creating it (mode 0600) if there is none.

    @raise ConfigurationError: if it cannot be read (L{read_token}) or
        created: its directory missing or not writable, the disk full.  A
        file left half written is removed, so that the next start makes a
        new one rather than stopping at an empty file.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    except OSError as e:
        raise ConfigurationError(f"cannot create token file {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    except OSError as e:
        Path(path).unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write token file {path}: {e.strerror}") from None
    return read_token(path)


def read_token(path: Path) -> str:
    """
    Read the shared AMP token: the file's text, without the white space
    around it.

    @raise ConfigurationError: if it is missing, empty, or holds no token:
        more than L{TOKEN_LIMIT} bytes, text that is not UTF-8, or
        characters that are not printable (a line break within it, say).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(TOKEN_LIMIT + 1)
    except OSError as e:
        raise ConfigurationError(f"cannot read token file {path}: {e.strerror}") from None
    if len(data) > TOKEN_LIMIT:
        raise ConfigurationError(
            f"token file {path} does not hold a token: it has more than {TOKEN_LIMIT:,} bytes"
        )
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"token file {path} is not UTF-8 text") from None
    if not token:
        raise ConfigurationError(f"token file {path} is empty")
    if not token.isprintable():
        raise ConfigurationError(
            f"token file {path} does not hold a token: it has characters that are not printable"
        )
    return token


def _peer_uid(transport: object) -> int | None:
    """
    @return: The user id of the process at the other end of C{transport}'s
        UNIX socket, or L{None} where the system does not tell it.
    """
    try:
        handle = transport.getHandle()  # type: ignore[attr-defined]
        credentials = handle.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", credentials)
    except (AttributeError, OSError, TypeError, struct.error):
        return None
    return int(uid)


def _keep_alive(transport: object) -> None:
    """
    Turn on TCP keepalive on C{transport}, with L{KEEPALIVE_IDLE},
    L{KEEPALIVE_INTERVAL} and L{KEEPALIVE_COUNT} where the system has
    them; a transport that is not TCP's (a UNIX socket's), or over it
    (TLS's, which hands both calls to it), is left as it is.
    """
    peer = transport.getPeer()  # type: ignore[attr-defined]
    if not isinstance(peer, (IPv4Address, IPv6Address)):
        return
    try:
        transport.setTcpKeepAlive(1)  # type: ignore[attr-defined]
        handle = transport.getHandle()  # type: ignore[attr-defined]
        for name, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                handle.setsockopt(socket.IPPROTO_TCP, option, value)
    except (AttributeError, OSError):
        # Not a socket's transport after all, or one already closed.
        return


def _arguments_read(
    responder: Callable[[amp.AmpBox], Deferred[amp.AmpBox]], box: amp.AmpBox, command: str
) -> Deferred[amp.AmpBox]:
    """
    Answer C{box} with C{responder}, or with C{BAD_REQUEST} if AMP cannot
    read its arguments: AMP reads them before the responder runs, raising
    what it meets at once, where the responder's own errors come in its
    L{Deferred}.
    """
    try:
        return responder(box)
    except (KeyError, ValueError, TypeError) as e:
        # UnicodeDecodeError is a ValueError.
        why = f"malformed {command}: {type(e).__name__}"
        return fail(amp.RemoteAmpError(commands.HarbourCommand.errors[BadRequest], why.encode()))


def _shown(name: bytes) -> str:
    """
    A command's name as a peer sent it, as a refusal or a log line repeats
    it: its first L{NAME_SHOWN} bytes, escaped as C{repr} escapes them (a
    name may hold a line break, or bytes that are not text), and C{...} if
    there are more.
    """
    shown = repr(name[:NAME_SHOWN])[2:-1]
    return shown + "..." if len(name) > NAME_SHOWN else shown


@implementer(IPushProducer)
class ControlProtocol(amp.AMP):
    """
    One control connection, as seen by the daemon: also its transport's
    producer, for the events of its subscriptions and, by reading requests
    no faster than its peer reads their answers, for the answers.

    Reading is paused while the transport's buffer is full (which the
    transport tells its producer) or while L{UNANSWERED_LIMIT} requests
    wait for their answers, and resumed once neither holds.  To pause is
    both to stop the transport reading (L{IPushProducer.pauseProducing})
    and to set C{paused}, which stops L{amp.BinaryBoxProtocol} parsing the
    rest of what it has read already: one read holds up to 64 KiB, a
    thousand requests and more, whose answers would otherwise all be
    written at once.  What was read and not parsed is parsed on resuming.
    A peer that sends requests and reads none of their answers is then
    held back by TCP's flow control, and the daemon holds at most a
    buffer's worth of answers and L{UNANSWERED_LIMIT} more for it.
    """

    log = Logger()

    def __init__(self, service: ControlService) -> None:
        super().__init__()
        self._service = service
        self._authenticated = False
        self._outbox: Outbox | None = None
        # The connection's one timer: its token's deadline, then its idle
        # deadline (see IDLE_TIMEOUT), then, closing, its close's.
        self._deadline: IDelayedCall | None = None
        # When it last sent something, or was last answered.
        self._active = 0.0
        # Whether this is its transport's producer still: from
        # connectionMade until the connection is let go of.
        self._producing = False
        # Whether the transport's buffer is full; how many requests wait
        # for their answers; whether boxes are being read (not to be read
        # again from within).
        self._buffer_full = False
        self._unanswered = 0
        self._receiving = False
        # When the last refusal queued on this connection is answered.
        self._refusals_until = 0.0
        # The refusals waiting for their time, cancelled if the connection
        # goes first: nothing of a closed connection stays scheduled.
        self._refusals: list[IDelayedCall] = []
        # Bytes and keys of the box being read; past its limit, the rest
        # of the connection's boxes are dropped as they are read.
        self._box_bytes = 0
        self._box_keys = 0
        self._oversized = False

    @cached_property
    def _peer(self) -> str:
        """
        Who the peer is, for the log and for counting its connections: its
        address, or on a UNIX socket (whose peers have none) the user it
        runs as, so that other users' connections are not counted as the
        operator's.  Found once, when first asked (on connecting): it does
        not change, and a socket's user takes a system call to find.
        """
        peer = self.transport.getPeer() if self.transport else None
        if isinstance(peer, UNIXAddress):
            uid = _peer_uid(self.transport)
            if uid is not None:
                return f"uid {uid}"
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

    def makeConnection(self, transport: ITransport) -> None:
        """
        Connect as L{amp.BinaryBoxProtocol} does, without the line AMP logs
        for each connection made (and lost, in L{connectionLost}): anyone
        who can reach the port could write them into the log at will.  A
        connection is logged once it has authenticated, and what a
        stranger does as a refusal, at most once a minute per peer.
        """
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionMade(self) -> None:
        """
        Count the connection among those waiting for their token (which may
        close the oldest of them, or refuse it), give it until its deadline
        to send it, prepare its outbox and let the transport pause it.
        """
        super().connectionMade()
        if not self._service.admission.admit(self, self._peer):
            self.abort()
            return
        self._service.connections.add(self)
        _keep_alive(self.transport)
        self._deadline = self._service.clock.callLater(self._service.auth_timeout, self._too_late)
        self._outbox = Outbox(
            self._send_box,
            self._overflowed,
            self._service.queue_limit,
            REMOTE_QUEUE_BYTES,
            encode=self._service.wire,
        )
        # A stream transport (TCP, TLS, UNIX socket) is also a consumer.
        cast(IConsumer, self.transport).registerProducer(self, True)
        self._producing = True

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full (its peer reads slower than it is
        answered): hold the events, and read no more commands, whose
        answers would pile up in memory, until it is drained.
        """
        self._connected_outbox.pauseProducing()
        self._buffer_full = True
        self._pace()

    @property
    def _closing(self) -> bool:
        """
        Whether the connection is closing (or closed): its transport says.
        """
        return bool(getattr(self.transport, "disconnecting", False))

    def resumeProducing(self) -> None:
        """
        The transport's buffer is empty: send the events that waited and
        read commands again, or, the connection closing, let go of the
        transport, which closes only once its producer is gone.
        """
        if self._closing:
            self._let_go()
            return
        self._buffer_full = False
        # The events first: if they fill the buffer again, no command is
        # read for them.
        self._connected_outbox.resumeProducing()
        self._pace()

    def _pace(self) -> None:
        """
        Pause reading while the transport's buffer is full or
        L{UNANSWERED_LIMIT} requests wait for their answers, and resume it,
        with the boxes read and not yet parsed, once neither holds.
        """
        if not self._producing or self.transport is None:
            return
        hold = self._buffer_full or self._unanswered >= UNANSWERED_LIMIT
        if hold == self.paused:
            return
        self.paused = hold
        if hold:
            cast(IPushProducer, self.transport).pauseProducing()
            return
        cast(IPushProducer, self.transport).resumeProducing()
        # Within dataReceived, its loop goes on by itself.
        if not self._receiving:
            self.dataReceived(b"")

    def dataReceived(self, data: bytes) -> None:
        """
        Read the boxes of C{data} (and of what was read before and not
        parsed), as many as L{_pace} lets through; or, the connection
        closing, drop C{data} and what was read before.  TLS closes only
        once the peer has answered its close, and reads on until then:
        what the peer sends meanwhile would otherwise be kept, and, after
        a key longer than AMP allows (where the parser stops, keeping what
        it has read), copied anew with each read.
        """
        if self._closing:
            self._drop_unparsed()
            return
        self._active = self._service.clock.seconds()
        self._receiving = True
        try:
            super().dataReceived(data)
        finally:
            self._receiving = False

    def stopProducing(self) -> None:
        """
        The connection is gone: send nothing more.
        """
        self._connected_outbox.stopProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Forget this connection's subscriptions, and the box it was reading
        and what it had read and not parsed: AMP's protocol is its own box
        receiver, a reference cycle, and stays in memory, with all it
        holds, until the garbage collector's next full pass.
        """
        self._service.admission.done_waiting(self)
        self._cancel_deadline()
        for refusal in self._refusals:
            if refusal.active():
                refusal.cancel()
        self._refusals = []
        self._stop_events()
        # Not AMP's, which logs a line; see makeConnection.
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None
        self._currentBox = None
        self._currentKey = None
        self._drop_unparsed()
        self._service.connection_closed(self)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _watch_idle(self, seconds: float) -> None:
        """
        Check in C{seconds} whether the connection has been idle for
        L{ControlService.idle_timeout}.
        """
        self._cancel_deadline()
        self._deadline = self._service.clock.callLater(seconds, self._idle)

    def _idle(self) -> None:
        """
        Close the connection if it has sent nothing for
        L{ControlService.idle_timeout} seconds, and none of its requests
        waits for its answer (which may take minutes: a refresh); or else
        check again when it could be.
        """
        self._deadline = None
        timeout = self._service.idle_timeout
        if self._unanswered:
            self._watch_idle(timeout)
            return
        silent = self._service.clock.seconds() - self._active
        if silent < timeout:
            self._watch_idle(timeout - silent)
            return
        self._end(f"nothing heard from it for {timeout:g} s")

    def _too_late(self) -> None:
        self._deadline = None
        self._service.admission.log_refusal(
            self._peer, "closed the connection", f"not authenticated within {self._service.auth_timeout:g} s"
        )
        self.abort()

    def close(self) -> None:
        """
        Close the connection once the bytes written are out, or abort it
        if it is still open L{ControlService.close_timeout} seconds on: a
        peer that stops reading would hold it open, and so would one that
        never answers TLS's close, while the daemon reads on (and decrypts)
        whatever it sends.
        """
        if self._closing:
            # Its deadline is set already.
            return
        self._let_go()
        self._stream.loseConnection()
        self._abort_when_overdue()

    def _abort_when_overdue(self) -> None:
        """
        The connection is closing: abort it if it is still open
        L{ControlService.close_timeout} seconds on.
        """
        if self.transport is None:
            return
        self._cancel_deadline()
        self._deadline = self._service.clock.callLater(self._service.close_timeout, self._overdue)

    def _overdue(self) -> None:
        self._deadline = None
        self.log.warn(
            "aborting the connection of {peer}: not closed within {timeout:g} s",
            peer=self._peer,
            timeout=self._service.close_timeout,
            service="amp",
        )
        self.abort()

    def _let_go(self) -> None:
        """
        The connection is to close: send no more events, take no more
        requests, and stop being its transport's producer, since a
        transport (TLS's, whether or not it is paused) closes only once its
        producer is gone.
        """
        self._stop_events()
        self._producing = False
        # Take no more requests, not even those of the read being parsed:
        # no longer its transport's producer, the connection is not paced.
        self.paused = True
        if self.transport is not None:
            # Reading again too: TLS closes only once it has read the peer's
            # answer to its close, and reading may have been paused.
            cast(IPushProducer, self.transport).resumeProducing()
            cast(IConsumer, self.transport).unregisterProducer()

    def _stop_events(self) -> None:
        """
        Send this connection no more events: off the bus, its queue dropped.
        """
        if self._outbox is not None:
            self._service.bus.detach(self._outbox)
            self._outbox.stopProducing()

    def lengthLimitExceeded(self, length: int) -> None:
        """
        A key longer than AMP allows, where AMP's parser stops: end the
        connection (see L{_end}), dropping what was read; before the token,
        it is aborted as a box past its limit is, so that no stranger's
        connection waits to close (over TLS, for the peer's answer).
        """
        self._keyLengthLimitExceeded = True
        self._drop_unparsed()
        self._end(f"a key of {length} bytes")

    def _drop_unparsed(self) -> None:
        """
        Forget what was read and not parsed.
        """
        self._unprocessed = b""
        self._compatibilityOffset = 0

    def proto_key(self, string: bytes) -> str:
        """
        A key, or the empty one that ends a box, counted towards its box's
        limit.  (A box past its limit never reaches its end: the
        connection, ended at once, parses nothing more.)
        """
        if string:
            self._box_bytes += len(string)
            self._box_keys += 1
        else:
            self._box_bytes = self._box_keys = 0
        return cast(str, super().proto_key(string))

    def proto_value(self, string: bytes) -> str:
        """
        A value: the box it is in may hold at most L{BOX_LIMIT} bytes
        (before the token, L{BOX_LIMIT_UNAUTHENTICATED} bytes and
        L{KEY_LIMIT_UNAUTHENTICATED} keys); one past it ends the
        connection, and what is read of it meanwhile is dropped.
        """
        self._box_bytes += len(string)
        limit = BOX_LIMIT if self._authenticated else BOX_LIMIT_UNAUTHENTICATED
        if not self._oversized:
            why = None
            if self._box_bytes > limit:
                why = f"a box of more than {limit} bytes"
            elif not self._authenticated and self._box_keys > KEY_LIMIT_UNAUTHENTICATED:
                why = f"a box of more than {KEY_LIMIT_UNAUTHENTICATED} keys"
            if why is not None:
                self._oversized = True
                self._end(why)
        if self._oversized:
            self._currentBox = amp.AmpBox()
        return cast(str, super().proto_value(string))

    def sendBox(self, box: amp.AmpBox) -> None:
        """
        Send C{box}; one that ends the connection (AMP's answer to an error
        it cannot name, or a fatal one) lets go of the transport first, and
        the connection is aborted if it has not closed in time.

        A box AMP cannot send, with a key or a value longer than it allows,
        ends the connection instead: AMP would log it as a critical error,
        with a traceback, and close the connection.  (Such as its error for
        a command it does not know, which repeats the command's name,
        which may be as long as a value.)
        """
        if isinstance(box, amp.QuitBox):
            self._let_go()
            # AMP closes the transport itself once the box is sent, past
            # close(): the deadline is set here.
            self._abort_when_overdue()
        try:
            super().sendBox(box)
        except amp.TooLong as e:
            self._unsendable(e)
        if amp.ANSWER in box or amp.ERROR in box:
            self._unanswered -= 1
            # Idle from its last answer, not from a long request's asking.
            self._active = self._service.clock.seconds()
            self._pace()

    def _unsendable(self, error: amp.TooLong) -> None:
        """
        End the connection for a box that AMP could not send: as a refusal
        before the token, with one warning after it.
        """
        if self._closing:
            # Closing already, for another such answer perhaps (those of
            # the requests read before it follow it): once is enough.
            return
        part = "key" if error.isKey else "value"
        self._end(f"an answer with a {part} of {len(error.value):,} bytes, more than AMP can send")

    def _end(self, why: str) -> None:
        """
        End the connection for C{why}, something its peer did: before the
        token, abort it as a refusal (logged at most once a minute per
        peer); after it, close it once what is written is out, with a
        warning.
        """
        if self._authenticated:
            self.log.warn("closed the connection of {peer}: {why}", peer=self._peer, why=why, service="amp")
            self.close()
        else:
            self._service.admission.log_refusal(self._peer, "closed the connection", why)
            self.abort()

    def unhandledError(self, failure: Failure) -> None:
        """
        AMP closes the connection: let go of the transport first.
        """
        self._let_go()
        super().unhandledError(failure)
        self._abort_when_overdue()

    def abort(self) -> None:
        """
        Close the connection now, dropping whatever the peer has not read,
        and take no more of the requests read: a stream transport says it
        is closing only once it is closed, and until then the parser would
        go on with the rest of the read.
        """
        self.paused = True
        abort = getattr(self.transport, "abortConnection", self._stream.loseConnection)
        abort()

    def _send_box(self, box: bytes) -> None:
        self._stream.write(box)

    def _overflowed(self, reason: str) -> None:
        """
        The peer is not reading its events: tell it why it is dropped, in
        one last L{commands.Event} on L{commands.DROPPED} written past the
        paused outbox, and close the connection once that is out (aborted
        after L{ControlService.close_timeout} if the peer reads nothing
        more).  Aborted without a word, a subscriber could not tell this
        from the daemon stopping, nor know that it missed events.
        """
        self._service.bus.detach(self._connected_outbox)
        self.log.warn(
            "disconnecting subscriber {peer}: {reason}",
            peer=self._peer,
            reason=reason,
            service="amp",
        )
        if self.transport is None or self._closing:
            return
        self._stream.write(commands.encode_event(commands.DROPPED, json.dumps({"reason": reason})))
        self.close()

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        """
        Before the token is known, a box AMP cannot take (an answer to no
        question, a box without a command) ends the connection as a
        refusal, logged as refusals are, not with a traceback.

        A command that asks no answer ends the connection too, before the
        token or after it, logged as a refusal: AMP would have no answer to
        refuse it with, and would log its failure as a critical error of
        the daemon's; and, counted by nothing, it would escape L{_pace},
        which counts the requests that wait for their answers.  No client
        sends such a command (only the daemon does, L{commands.Event}), so
        ending the connection costs clients nothing, where counting it
        until its responder is done would take hooking into AMP's dispatch
        for a command no client sends.
        """
        if amp.COMMAND in box and amp.ASK not in box:
            self._service.admission.log_refusal(self._peer, "closed the connection", "a command without _ask")
            if self._authenticated:
                # The answers of the requests before it go out first.
                self.close()
            else:
                self.abort()
            return
        if amp.COMMAND in box:
            # Counted until its answer is sent: see _pace.
            self._unanswered += 1
        try:
            super().ampBoxReceived(box)
        except Exception as e:
            # An answer to no question, a box with no command: AMP would
            # raise it out of dataReceived, logged with a traceback.
            self._end(f"a malformed box ({type(e).__name__})")
            return
        self._pace()

    def _malformed(self, failure: Failure) -> Failure:
        """
        An C{Authenticate} AMP could not read (no token, one that is not
        UTF-8): a refusal that ends the connection, not a traceback.
        """
        # A wrong token is already AMP's answer (UNAUTHORIZED).
        if failure.check(amp.RemoteAmpError, Unauthorized):
            return failure
        self._service.admission.log_refusal(
            self._peer, "refused Authenticate", f"malformed ({type(failure.value).__name__})"
        )
        return Failure(amp.RemoteAmpError(b"UNAUTHORIZED", b"malformed Authenticate", fatal=True))

    def locateResponder(self, name: bytes) -> Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None:
        """
        Refuse every command but C{Authenticate} until the token is known;
        after it, answer a command whose arguments AMP cannot read (an
        integer that is not one, text that is not UTF-8, one missing) with
        C{BAD_REQUEST}, keeping the connection: AMP would close it, logging
        a traceback.
        """
        if self._authenticated or name == b"Authenticate":
            responder: Callable[[amp.AmpBox], Deferred[amp.AmpBox]] | None = super().locateResponder(name)
            if responder is None:
                return None
            found = responder
            if self._authenticated:
                return lambda box: _arguments_read(found, box, _shown(name))
            # maybeDeferred: AMP reads the arguments before its Deferred.
            return lambda box: maybeDeferred(found, box).addErrback(self._malformed)
        command = _shown(name)
        self._service.admission.log_refusal(self._peer, f"refused {command}", "not authenticated")
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
    def authenticate(self, token: str) -> Response | Deferred[Response]:
        """
        Check the token in constant time, logging a connection that sent
        the right one (the only connections logged one by one); refuse a
        wrong one only after L{ControlService.refusal_delay}, one refusal
        after another.
        """
        if hmac.compare_digest(token.encode("utf-8"), self._service.token.encode("utf-8")):
            self._authenticated = True
            self._service.admission.done_waiting(self)
            self._watch_idle(self._service.idle_timeout)
            self.log.info("authenticated a connection from {peer}", peer=self._peer, service="amp")
            return {}
        self._service.admission.log_refusal(self._peer, "refused a wrong token")
        clock = self._service.clock
        now = clock.seconds()
        self._refusals_until = max(now, self._refusals_until) + self._service.refusal_delay
        if self._refusals_until - now > self._service.auth_timeout:
            # More guesses queued than could be answered before the
            # connection times out: end it now rather than hold them.  The
            # answer never comes: there is no connection to carry it.
            self.abort()
            return Deferred()
        refused: Deferred[Response] = Deferred()
        self._refusals = [r for r in self._refusals if r.active()]
        self._refusals.append(
            clock.callLater(self._refusals_until - now, refused.errback, Unauthorized("wrong token"))
        )
        return refused

    @commands.Subscribe.responder
    def subscribe(self, topic: str, tag: int | None = None) -> Response:
        """
        Route events matching C{topic} to this connection (unless it is
        closing: its outbox is stopped, and would stay on the bus until
        the connection is gone).  Subscribing again to a pattern replaces
        the subscription; a new pattern past L{SUBSCRIPTION_LIMIT} is
        refused with L{BadRequest}.  The retained values it selects are
        sent carrying C{tag}, if given.
        """
        validate_pattern(topic)
        if self._connected_outbox.closed:
            return {}
        patterns = self._service.bus.patterns(self._connected_outbox)
        if topic not in patterns and len(patterns) >= SUBSCRIPTION_LIMIT:
            raise BadRequest(
                f"this connection is subscribed to {len(patterns):,} patterns, the most one may be: "
                f"unsubscribe from one before subscribing to {topic!r}"
            )
        self._service.bus.detach(self._connected_outbox, topic)
        self._service.bus.attach(topic, self._connected_outbox, tag)
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
        Publish on the daemon's bus; refuse a topic of the configuration
        directory, whose value only the directory sets, and a retained
        value past the bounds on clients' retained values (see
        L{Bus.dispatch_remote}).
        """
        if self._service.daemon.owns(topic):
            raise BadRequest(f"topic {topic} belongs to the configuration directory: edit its file")
        if topic == PAUSED:
            raise BadRequest(f"topic {topic} belongs to the daemon: use Pause and Resume")
        if topic == commands.DROPPED:
            raise BadRequest(f"topic {topic} belongs to the daemon: it tells a subscriber why it is dropped")
        event = Event.from_text(topic, payload)
        return {"delivered": self._service.bus.dispatch_remote(event, bool(retain))}

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
        # Workers follow the hub's pauses.
        announce_pauses(self._service.bus, self._service.daemon.pausable(None)).addErrback(
            lambda failure: self.log.failure("cannot announce pauses", failure, service="amp")
        )
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
        if not total:
            yield self._known_report(report)
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
        if not count:
            yield self._known_report(report)
        else:
            # Wakes idle downloaders, wherever they run; "retried" tells
            # those who keep task states that these tasks are not new.
            yield self._service.bus.publish(
                "task.created", {"report": report or "*", "count": count, "retried": True}
            )
        return {"count": count}

    @commands.Reparse.responder
    @inlineCallbacks
    def reparse(self, report: str | None = None) -> Generator[Deferred[Any], Any, Response]:
        """
        Queue downloaded files to be parsed again.
        """
        check_name(report, "report")
        count = yield self._service.daemon.task_store().requeue_parse(report, False)
        if not count:
            yield self._known_report(report)
        else:
            # Wakes idle parsers, wherever they run.
            yield self._service.bus.publish("table.queued", {"report": report or "*", "count": count})
        return {"count": count}

    @inlineCallbacks
    def _known_report(self, report: str | None) -> Generator[Deferred[Any], Any, None]:
        """
        Tell a name the store has no task of from a report with none in the
        state asked for: an answer of 0 for a misspelt name would read as
        "nothing to do".

        @raise BadRequest: if C{report} is named and no task of it is in
            the store, in any state.
        """
        if report is None:
            return
        counts = yield self._service.daemon.task_store().counts()
        if report not in counts:
            known = sorted(counts)
            listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            raise BadRequest(
                f"no task of report {report!r} is in the store (reports with tasks: {listed or 'none'})"
            )

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


#: The largest offset of a page: Redis takes indexes up to 2**63 - 1, and no
#: listing comes near it.
MAX_OFFSET = 2**53


def check_page(offset: int, limit: int) -> None:
    """
    @raise BadRequest: unless C{offset} is between 0 and L{MAX_OFFSET} and
        C{limit} between 1 and L{commands.MAX_PAGE}.
    """
    if not 0 <= offset <= MAX_OFFSET:
        raise BadRequest(f"offset must be between 0 and {MAX_OFFSET}, not {offset}")
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
    @ivar daemon: What the commands act on; the topics it owns (its
        configuration's) cannot be published over the port.
    @ivar clock: The time of the deadlines and delays; C{reactor} unless
        given.
    @ivar auth_timeout: See L{AUTHENTICATION_TIMEOUT}.
    @ivar refusal_delay: See L{REFUSAL_DELAY}.
    @ivar close_timeout: See L{CLOSE_TIMEOUT}.
    @ivar idle_timeout: See L{IDLE_TIMEOUT}.
    @ivar admission: Counts the connections waiting for their token, and
        logs refusals.
    """

    log = Logger()

    reactor: IReactorTCP = attr.ib()
    endpoint: str = attr.ib()
    token: str = attr.ib(repr=False)
    bus: Bus = attr.ib()
    daemon: IDaemon = attr.ib()
    queue_limit: int = attr.ib(default=REMOTE_QUEUE_LIMIT)
    clock: IReactorTime = attr.ib(
        # Every reactor provides IReactorTime.
        default=attr.Factory(lambda self: cast(IReactorTime, self.reactor), takes_self=True)
    )
    auth_timeout: float = attr.ib(default=AUTHENTICATION_TIMEOUT)
    refusal_delay: float = attr.ib(default=REFUSAL_DELAY)
    close_timeout: float = attr.ib(default=CLOSE_TIMEOUT)
    idle_timeout: float = attr.ib(default=IDLE_TIMEOUT)
    _port: IListeningPort | None = attr.ib(default=None, init=False)
    connections: set[ControlProtocol] = attr.ib(factory=set, init=False)
    #: The topic, text and tag of the event last sent to a connection, and
    #: its box (see L{wire}).
    _last_sent: tuple[str, str, int | None, bytes] | None = attr.ib(default=None, init=False, repr=False)
    _closing: list[Deferred[None]] = attr.ib(factory=list, init=False)
    admission: Admission[ControlProtocol] = attr.ib(
        init=False,
        default=attr.Factory(
            lambda self: Admission(
                self.clock,
                UNAUTHENTICATED_LIMIT,
                UNAUTHENTICATED_PER_HOST,
                "their token",
                "amp",
            ),
            takes_self=True,
        ),
    )

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
        Check the endpoint (the rule on plain text, and that Twisted can
        use it) and load (or create) the token.

        @raise ConfigurationError: for either that cannot be used.
        """
        check_listen_endpoint(endpoint)
        # Parsed now, so that a mistake stops start-up as the other
        # configuration errors do; privilegedStartService parses it again.
        server_endpoint(reactor, endpoint)
        return cls(reactor, endpoint, load_or_create_token(token_file), bus, daemon, queue_limit)

    def privilegedStartService(self) -> None:
        """
        Listen now, so that a port in use stops start-up with a clear error.
        """
        super().privilegedStartService()
        factory = Factory.forProtocol(lambda: ControlProtocol(self))
        factory.noisy = False
        d = server_endpoint(self.reactor, self.endpoint).listen(factory)
        failures: list[Failure] = []
        d.addCallback(self._listening).addErrback(failures.append)
        if failures:
            if failures[0].check(ConfigurationError):
                failures[0].raiseException()
            raise ConfigurationError(f"cannot listen on {self.endpoint}: {failures[0].getErrorMessage()}")

    def _listening(self, port: IListeningPort) -> None:
        """
        Listening on C{port}: unless what listens breaks the rule on plain
        text (L{check_listening}), keep it.

        @raise ConfigurationError: if it does, the port closed.
        """
        try:
            check_listening(self.endpoint, port.getHost())
        except ConfigurationError:
            port.stopListening()
            raise
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

    def wire(self, event: Event) -> bytes:
        """
        @return: C{event}'s box (L{Event.wire}), built once for the
            connections it is put to in turn (the bus hands each event to
            every outbox subscribed to it before the next), which send or
            queue the box, not the event (see L{Outbox}).
        """
        last = self._last_sent
        # The text itself, not the event, which may hold its publisher's
        # payload too.
        if last is not None and last[1] is event.text and last[0] == event.topic and last[2] == event.tag:
            return last[3]
        box = event.wire
        self._last_sent = (event.topic, event.text, event.tag, box)
        return box

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
            # Each is aborted if it lingers (see ControlProtocol.close).
            for protocol in list(self.connections):
                protocol.close()
            yield closed
