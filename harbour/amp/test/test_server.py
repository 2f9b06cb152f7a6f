"""
Tests for L{harbour.amp.server}: the AMP control port, its authentication, and
its policies for listeners and tokens.
"""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import socket
import stat
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import _SystemdParser
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IPushProducer, ITCPTransport, ITransport
from twisted.internet.testing import MemoryReactorClock, StringTransport, _FakePort
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.python.systemd import ListenFDs
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from harbour.amp import commands, wire
from harbour.amp import server as server_module
from harbour.amp.client import HarbourClientProtocol, RemoteBus, all_requests, connect, status
from harbour.amp.server import (
    BOX_LIMIT,
    BOX_LIMIT_UNAUTHENTICATED,
    IDLE_TIMEOUT,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    KEY_LIMIT_UNAUTHENTICATED,
    REFUSAL_DELAY,
    TOKEN_LIMIT,
    UNANSWERED_LIMIT,
    ControlProtocol,
    ControlService,
    check_listen_endpoint,
    load_or_create_token,
    read_token,
)
from harbour.bus import Bus, Event
from harbour.errors import BadRequest, ConfigurationError, PayloadTooLarge, Unauthorized
from harbour.interfaces import IEvent, IManifest
from harbour.oasis.publications import Publication
from harbour.oasis.requests import ReportURL
from harbour.service import DaemonControls
from harbour.services.pausing import PAUSED
from harbour.test.helpers import (
    TOKEN,
    Pausable,
    RecordingConfig,
    call,
    capture_log,
    connected,
    control_service,
)


def disconnect(protocol: amp.AMP) -> None:
    """
    Close C{protocol}'s connection.
    """
    assert protocol.transport is not None
    protocol.transport.loseConnection()


def port_of(service: ControlService) -> int:
    """
    @return: The TCP port C{service} listens on.
    """
    address = service.address()
    assert isinstance(address, IPv4Address)
    return address.port


class AuthenticationTests(SynchronousTestCase):
    """
    Every command but C{Authenticate} needs the token first.
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.client, self.server, self.pump = connected(self.service)

    def call(self, command: type[amp.Command], **kwargs: object) -> Deferred[Any]:
        """
        Call C{command} on the connection and move the bytes until it is
        answered.
        """
        return call(self.client, self.pump, command, **kwargs)

    def test_commandBeforeAuthenticate(self) -> None:
        """
        A command before C{Authenticate} fails with C{UNAUTHORIZED}, is
        logged with the peer, and leaves the connection usable.
        """
        messages = capture_log(self)
        self.failureResultOf(self.call(commands.Status), Unauthorized)
        self.assertIn("refused Status from", " ".join(messages))
        self.successResultOf(self.call(commands.Authenticate, token=TOKEN))
        self.successResultOf(self.call(commands.Status))

    def test_longNameBeforeAuthenticate(self) -> None:
        """
        A command before C{Authenticate} is refused whatever its name: the
        refusal and its log line repeat only the first
        L{server_module.NAME_SHOWN} bytes of it, escaped, and the
        connection stays usable.  Repeated whole, a name of nearly 64 KiB
        made an answer longer than AMP can send, and a traceback of every
        connection that sent one.
        """
        messages = capture_log(self)
        shown = server_module.NAME_SHOWN
        for name, expected in [
            (b"A" * 65_520, "A" * shown + "..."),
            (b"B" * shown, "B" * shown),
            (b"Sta\ntus\xff", "Sta\\ntus\\xff"),
        ]:
            answers: list[object] = []
            self.client.callRemoteString(name).addBoth(answers.append)
            self.pump.flush()
            [refusal] = answers
            assert isinstance(refusal, Failure)
            error = refusal.value
            assert isinstance(error, amp.RemoteAmpError)
            self.assertEqual(error.errorCode, b"UNAUTHORIZED")
            self.assertEqual(error.description, f"authenticate before {expected}")
            self.assertIn(f"refused {expected} from", messages[-1])
            # Each line of the log file is one event.
            self.assertNotIn("\n", messages[-1])
            # Refusals are logged once a minute per peer: forget this one's.
            self.service.admission._refusals.clear()
        self.assertEqual(self.flushLoggedErrors(), [])
        self.successResultOf(self.call(commands.Authenticate, token=TOKEN))

    def test_authenticatedLogged(self) -> None:
        """
        A connection that sends the right token is logged with its peer,
        once; nothing else of it is.
        """
        messages = capture_log(self)
        peer = self.server._peer
        self.successResultOf(self.call(commands.Authenticate, token=TOKEN))
        self.successResultOf(self.call(commands.Status))
        disconnect(self.client)
        self.pump.flush()
        # The client, an AMP protocol as it comes, logs its own lines.
        daemon = [m for m in messages if "HarbourClientProtocol" not in m]
        self.assertEqual(len(daemon), 1, daemon)
        self.assertIn(f"authenticated a connection from {peer}", daemon[0])

    def test_wrongToken(self) -> None:
        """
        A wrong token fails with C{UNAUTHORIZED}, after a delay, and
        authorises nothing.
        """
        refusal: list[Failure] = []
        self.client.callRemote(commands.Authenticate, token="guess").addErrback(refusal.append)
        self.pump.flush()
        self.assertEqual(refusal, [])
        cast(MemoryReactorClock, self.service.clock).advance(REFUSAL_DELAY)
        self.pump.flush()
        self.assertTrue(refusal[0].check(Unauthorized))
        self.failureResultOf(self.call(commands.Subscribe, topic="x"), Unauthorized)


class BackpressureTests(SynchronousTestCase):
    """
    A peer that does not read what it is sent does not make the daemon hold
    more and more of it.
    """

    def test_readingPausedWithWriting(self) -> None:
        """
        While the transport's buffer is full, no more commands are read
        (their answers would pile up behind it) and events wait; once it
        drains, both go on.
        """
        protocol = ControlProtocol(control_service())
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertIs(transport.producer, protocol)
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        transport.loseConnection()
        protocol.connectionLost(Failure(ConnectionDone()))


class UnreadTransport(StringTransport):
    """
    A transport whose peer reads only when told to: as a TCP transport
    does, it pauses its producer while more than L{bufferSize} bytes wait
    to be read, and resumes it once they have been.
    """

    bufferSize = 1000
    producerPaused = False

    def write(self, data: bytes) -> None:
        """
        Keep C{data} for the peer, pausing the producer if too much waits.
        """
        super().write(data)
        if self.producer is not None and len(self.value()) > self.bufferSize:
            self.producerPaused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        """
        Let the peer read what waits, then resume the producer if it was
        paused.

        @return: What the peer read.
        """
        data = self.value()
        self.clear()
        if self.producer is not None and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()
        return data


class UnreadConnection(SynchronousTestCase):
    """
    A client authenticated on a control connection whose transport pauses
    the daemon once more than its buffer waits unread, as a real one
    does.
    """

    server: ControlProtocol
    transport: UnreadTransport
    client: HarbourClientProtocol

    def connect(self, service: ControlService) -> None:
        """
        Connect a client to C{service} and authenticate it.
        """
        self.server = ControlProtocol(service)
        self.transport = UnreadTransport()
        self.server.makeConnection(self.transport)
        self.client = HarbourClientProtocol()
        self.client.makeConnection(StringTransport())
        authenticated = self.client.callRemote(commands.Authenticate, token=TOKEN)
        self.send()
        self.read()
        self.successResultOf(authenticated)

    def send(self) -> None:
        """
        Hand the daemon what the client has written, in one read.
        """
        transport = cast(StringTransport, self.client.transport)
        data = transport.value()
        transport.clear()
        self.server.dataReceived(data)

    def read(self) -> None:
        """
        Let the client read what the daemon has written.
        """
        self.client.dataReceived(self.transport.drain())


class PipelineTests(UnreadConnection):
    """
    A peer that sends requests without reading their answers is read only
    as fast as it reads them: the daemon holds a bounded number of answers
    for it, however many requests it sends.
    """

    def setUp(self) -> None:
        self.later = False
        self.waiting: list[Deferred[Any]] = []
        self.connect(control_service(status_document=self.status))

    def status(self) -> object:
        """
        The daemon's status document: later, once the test gives it, if
        C{self.later}.
        """
        if not self.later:
            return {"services": {}}
        later: Deferred[object] = Deferred()
        self.waiting.append(later)
        return later

    def test_answersHeldWhileBufferFull(self) -> None:
        """
        Of requests read in one go, those past a full transport buffer wait,
        read but not parsed, until it drains; then each is answered once.
        """
        answers = [self.client.callRemote(commands.Status) for ignored in range(200)]
        self.send()
        self.assertEqual(self.transport.producerState, "paused")
        self.assertLess(len(self.transport.value()), 2 * self.transport.bufferSize)
        for ignored in range(len(answers)):
            self.read()
        self.assertEqual(self.transport.producerState, "producing")
        for answer in answers:
            self.assertEqual(json.loads(self.successResultOf(answer)["status"]), {"services": {}})

    def test_unansweredBounded(self) -> None:
        """
        Requests whose answers come later are taken
        L{UNANSWERED_LIMIT} at a time: past it, the rest wait, read but not
        parsed, and each answer sent lets one more in.
        """
        self.later = True
        answers = [self.client.callRemote(commands.Status) for ignored in range(100)]
        self.send()
        self.assertEqual(len(self.waiting), UNANSWERED_LIMIT)
        self.assertEqual(self.transport.producerState, "paused")
        self.waiting[0].callback({"services": {}})
        self.assertEqual(len(self.waiting), UNANSWERED_LIMIT + 1)
        self.assertEqual(self.transport.producerState, "paused")
        # Each answer lets the next request in.
        answered = 1
        while answered < len(self.waiting):
            self.waiting[answered].callback({"services": {}})
            answered += 1
            self.read()
        self.assertEqual(len(self.waiting), len(answers))
        self.read()
        self.assertEqual(self.transport.producerState, "producing")
        for answer in answers:
            self.assertEqual(json.loads(self.successResultOf(answer)["status"]), {"services": {}})

    def test_commandWithoutAsk(self) -> None:
        """
        After the token, a command that asks no answer closes the
        connection, with a warning: counted by nothing, it was taken however
        many requests waited for their answers.  Nothing read with it, after
        it, is taken either.
        """
        messages = capture_log(self)
        self.later = True
        requests = [amp.AmpBox(_command=b"Status", _ask=b"%x" % (n + 2)) for n in range(100)]
        self.server.dataReceived(
            b"".join(box.serialize() for box in [amp.AmpBox(_command=b"Status"), *requests])
        )
        self.assertEqual(self.waiting, [])
        self.assertTrue(self.transport.disconnecting)
        self.assertFalse(self.transport.disconnected, "the connection is closed, not aborted")
        [warning] = messages
        self.assertIn("closed the connection from 192.168.1.1: a command without _ask", warning)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_malformedAfterToken(self) -> None:
        """
        After the token, an answer to no question, or a box with no
        command, closes the connection with a warning, not a traceback;
        nothing read after it is taken.
        """
        for box in [amp.AmpBox(_answer=b"99"), amp.AmpBox(foo=b"bar")]:
            self.setUp()
            messages = capture_log(self)
            self.later = True
            after = amp.AmpBox(_command=b"Status", _ask=b"a")
            self.server.dataReceived(box.serialize() + after.serialize())
            self.assertEqual(self.waiting, [])
            self.assertTrue(self.transport.disconnecting)
            [warning] = messages
            self.assertIn("closed the connection of 192.168.1.1: a malformed box", warning)
            self.assertEqual(self.flushLoggedErrors(), [])

    def test_commandsWithoutAskLoggedOncePerMinute(self) -> None:
        """
        Connections closed for commands that ask no answer are logged as
        refusals are, at most once a minute per peer.
        """
        messages = capture_log(self)
        service = control_service()
        for port in range(100):
            protocol = ControlProtocol(service)
            transport = StringTransport(peerAddress=IPv4Address("TCP", "203.0.113.9", 4000 + port))
            protocol.makeConnection(transport)
            protocol.dataReceived(
                amp.AmpBox(_command=b"Authenticate", _ask=b"1", token=TOKEN.encode()).serialize()
                + amp.AmpBox(_command=b"Subscribe", topic=b"x").serialize()
            )
            self.assertTrue(transport.disconnecting)
            self.assertEqual(list(service.bus.patterns(protocol._connected_outbox)), [])
            protocol.connectionLost(Failure(ConnectionDone()))
        [warning] = [m for m in messages if "without _ask" in m]
        self.assertIn("closed the connection from 203.0.113.9: a command without _ask", warning)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_closingReadsOn(self) -> None:
        """
        A connection that is closing reads on (TLS closes only once it has
        read the peer's answer to its close), whatever answers are sent
        meanwhile.
        """
        self.later = True
        for ignored in range(UNANSWERED_LIMIT + 1):
            self.client.callRemote(commands.Status).addErrback(lambda failure: None)
        self.send()
        self.assertEqual(self.transport.producerState, "paused")
        self.server.close()
        self.assertEqual(self.transport.producerState, "producing")
        for later in self.waiting:
            later.callback({"services": {}})
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(len(self.waiting), UNANSWERED_LIMIT)


class RetainedBurstTests(UnreadConnection):
    """
    A subscriber sent more retained values on subscribing than its
    connection's queue may hold is not dropped for them, as long as it
    reads.
    """

    def setUp(self) -> None:
        self.patch(server_module, "REMOTE_QUEUE_BYTES", 2000)
        self.bus = Bus()
        self.service = control_service(self.bus, queue_limit=5)
        self.seen: list[object] = []
        self.connect(self.service)

    def test_readerNotDropped(self) -> None:
        """
        Forty retained values of 100 bytes, eight times the queue's bound
        in events and twice in bytes, all reach a subscriber that reads
        as the transport lets it, and its connection stays; once it stops
        reading, the events published afterwards past the bound drop it.
        """
        for i in range(40):
            self.bus.dispatch_remote(Event.create(f"junk.t{i}", "x" * 98), retain=True)
        subscribed = RemoteBus(self.client).subscribe("junk.*", lambda e: self.seen.append(e.topic))
        self.send()
        self.assertEqual(self.transport.producerState, "paused")
        while self.transport.value() and not self.transport.disconnecting:
            self.read()
        self.assertFalse(self.transport.disconnecting)
        self.successResultOf(subscribed)
        self.assertEqual(self.seen, [f"junk.t{i}" for i in range(40)])
        self.assertIn(self.server, self.service.connections)
        for ignored in range(30):
            self.bus.publish("junk.t0", "x" * 98)
        self.assertTrue(self.transport.disconnecting)


class QueueMemoryTests(SynchronousTestCase):
    """
    What a connection that stopped reading holds is what its queue's bound
    counts, the events' JSON text, however the daemon read or sent them
    meanwhile.
    """

    #: The queue's bound in these tests.
    BOUND = 1 << 20

    def setUp(self) -> None:
        self.patch(server_module, "REMOTE_QUEUE_BYTES", self.BOUND)
        self.bus = Bus()
        self.service = control_service(self.bus)
        self.publisher, ignored = self.connection()
        self.slow, ignored = self.connection()
        self.slow.subscribe("x")
        # As its transport does once its peer stops reading.
        self.slow.pauseProducing()
        self.fast, self.fast_transport = self.connection()
        self.fast.subscribe("x")
        # As the hub's workers service reads every heartbeat.
        self.successResultOf(self.bus.subscribe("x", lambda event: event.payload))

    def connection(self) -> tuple[ControlProtocol, StringTransport]:
        """
        @return: An authenticated connection to the service, and its
            transport.
        """
        protocol = ControlProtocol(self.service)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.authenticate(TOKEN)
        return protocol, transport

    def held(self, publish: Callable[[int], object]) -> int:
        """
        Publish events with C{publish(n)}, each of some 8 KiB of JSON text
        (C{[n,[],[],...]}, whose decoded copy takes some twenty times that),
        until the slow connection's queue is nearly full.

        @return: The bytes of memory the events held then.
        """
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(self.BOUND // 8200):
            publish(n)
            # The fast peer reads all at once.
            self.fast_transport.clear()
        self.assertEqual(self.slow.backlog, self.BOUND // 8200)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before

    def test_clientsEvents(self) -> None:
        """
        Events a client published, read in the daemon and sent to another
        connection, hold their text alone while queued: neither the
        decoded payload nor the box sent stays on them.
        """
        held = self.held(lambda n: self.publisher.publish("x", f"[{n},{','.join(['[]'] * 2730)}]"))
        self.assertLess(held, 1.25 * self.BOUND)

    def test_daemonsEvents(self) -> None:
        """
        Events the daemon published hold their text alone while queued for
        a connection, not their publisher's payload too.
        """
        held = self.held(lambda n: self.bus.publish("x", [n] + [[] for ignored in range(2730)]))
        self.assertLess(held, 1.25 * self.BOUND)

    def test_boxBuiltOnce(self) -> None:
        """
        An event sent to several connections is made into its box once,
        not once per connection.
        """
        built: list[str] = []
        encode = commands.encode_event

        def counted(topic: str, text: str, tag: int | None = None) -> bytes:
            built.append(text)
            return encode(topic, text, tag)

        self.patch(commands, "encode_event", counted)
        other, other_transport = self.connection()
        other.subscribe("x")
        self.bus.publish("x", 1)
        self.bus.publish("x", 2)
        self.assertEqual(built, ["1", "2"])
        self.assertIn(b"payload\x00\x012", other_transport.value())
        self.assertIn(b"payload\x00\x012", self.fast_transport.value())


class IdleTests(SynchronousTestCase):
    """
    An authenticated connection whose peer sends nothing for
    L{IDLE_TIMEOUT} (its host gone without a word) is closed, with its
    subscriptions; one that sends, or waits for an answer, stays.
    """

    def setUp(self) -> None:
        self.bus = Bus()
        self.answers: list[Deferred[object]] = []
        self.service = control_service(self.bus, status_document=self.status)
        self.clock = cast(MemoryReactorClock, self.service.clock)
        self.client, self.server, self.pump = connected(self.service)
        self.messages = capture_log(self)
        self.successResultOf(call(self.client, self.pump, commands.Authenticate, token=TOKEN))
        self.successResultOf(call(self.client, self.pump, commands.Subscribe, topic="paused"))
        self.successResultOf(call(self.client, self.pump, commands.Subscribe, topic="task.*"))

    def status(self) -> object:
        """
        The daemon's status document, once the test gives it.
        """
        answer: Deferred[object] = Deferred()
        self.answers.append(answer)
        return answer

    def test_silentClosed(self) -> None:
        """
        A connection that has sent nothing for L{IDLE_TIMEOUT} is closed,
        with a warning naming its peer, and its subscriptions are gone;
        events still reaching it meanwhile do not keep it.
        """
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.bus.publish("task.done", {})
        self.pump.flush()
        self.assertIn(self.server, self.service.connections)
        self.clock.advance(1)
        self.pump.flush()
        self.assertNotIn(self.server, self.service.connections)
        self.assertEqual(self.bus.status()["subscriptions"], 0)
        self.assertIn(f"nothing heard from it for {IDLE_TIMEOUT:g} s", "\n".join(self.messages))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sendingKept(self) -> None:
        """
        A connection that sends something within each L{IDLE_TIMEOUT} (as a
        worker's heartbeat does, or C{harbourctl subscribe}'s C{Status})
        stays, and is closed L{IDLE_TIMEOUT} after it last sent.
        """
        for ignored in range(5):
            self.clock.advance(IDLE_TIMEOUT - 1)
            self.successResultOf(call(self.client, self.pump, commands.Publish, topic="t", payload="1"))
        self.assertIn(self.server, self.service.connections)
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.pump.flush()
        self.assertIn(self.server, self.service.connections)
        self.clock.advance(1)
        self.pump.flush()
        self.assertNotIn(self.server, self.service.connections)

    def test_waitingForAnswerKept(self) -> None:
        """
        A connection waiting for an answer (a refresh may take minutes) is
        not idle, however long it waits; it is idle from the answer on.
        """
        asked = self.client.callRemote(commands.Status)
        self.pump.flush()
        self.clock.advance(3 * IDLE_TIMEOUT)
        self.pump.flush()
        self.assertIn(self.server, self.service.connections)
        self.answers[0].callback({"services": {}})
        self.pump.flush()
        self.successResultOf(asked)
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.pump.flush()
        self.assertIn(self.server, self.service.connections)
        self.clock.advance(IDLE_TIMEOUT)
        self.pump.flush()
        self.assertNotIn(self.server, self.service.connections)


class _Socket:
    """
    A socket's handle that records the options set on it.
    """

    def __init__(self) -> None:
        self.options: dict[tuple[int, int], int] = {}

    def setsockopt(self, level: int, option: int, value: int) -> None:
        """
        Record C{option}.
        """
        self.options[level, option] = value


class _SocketTransport(StringTransport):
    """
    A transport with the TCP transport's keepalive switch and handle.
    """

    def __init__(self, peer: IAddress) -> None:
        super().__init__(peerAddress=peer)
        self.handle = _Socket()
        self.keepalive: int | None = None

    def setTcpKeepAlive(self, enabled: int) -> None:
        """
        Record it.
        """
        self.keepalive = enabled

    def getHandle(self) -> _Socket:
        """
        @return: The recording handle.
        """
        return self.handle


class KeepAliveTests(SynchronousTestCase):
    """
    Accepted TCP connections have TCP keepalive on, so that a peer whose
    host has gone is found even if it sends nothing.
    """

    def accept(self, peer: IAddress) -> _SocketTransport:
        """
        @return: The transport of a connection accepted from C{peer}.
        """
        transport = _SocketTransport(peer)
        ControlProtocol(control_service()).makeConnection(transport)
        return transport

    def test_tcp(self) -> None:
        """
        A TCP connection has keepalive on, probing after L{KEEPALIVE_IDLE}
        seconds of silence, every L{KEEPALIVE_INTERVAL}, up to
        L{KEEPALIVE_COUNT} times, where the system has these options.
        """
        transport = self.accept(IPv4Address("TCP", "192.168.1.1", 40000))
        self.assertEqual(transport.keepalive, 1)
        expected = {
            (socket.IPPROTO_TCP, getattr(socket, name)): value
            for name, value in [
                ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
                ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                ("TCP_KEEPCNT", KEEPALIVE_COUNT),
            ]
            if hasattr(socket, name)
        }
        self.assertEqual(transport.handle.options, expected)

    def test_unix(self) -> None:
        """
        A UNIX socket's connection, whose peer is on this host, is left as
        it is.
        """
        transport = self.accept(UNIXAddress(None))
        self.assertIsNone(transport.keepalive)
        self.assertEqual(transport.handle.options, {})

    def test_noSwitch(self) -> None:
        """
        A transport without the switch is accepted all the same.
        """
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.168.1.1", 40000))
        protocol = ControlProtocol(control_service())
        protocol.makeConnection(transport)
        self.assertIn(protocol, protocol._service.connections)


class UnsendableAnswerTests(SynchronousTestCase):
    """
    An answer AMP cannot send (a key or value longer than it allows) ends
    the connection, logged in one line: not as a traceback, which AMP logs
    as critical, once for each such answer.
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.client, self.server, self.pump = connected(self.service)
        self.messages = capture_log(self)

    def test_beforeTheToken(self) -> None:
        """
        Before the token, an answer AMP cannot send aborts the connection
        as a refusal.
        """
        self.server.sendBox(amp.AmpBox(_answer=b"1", text=b"x" * 70_000))
        self.pump.flush()
        self.assertIsNone(self.server.transport, "the connection is closed")
        # The client, an AMP protocol as it comes, logs its own lines.
        [refusal] = [m for m in self.messages if "HarbourClientProtocol" not in m]
        self.assertIn("closed the connection from", refusal)
        self.assertIn("an answer with a value of 70,000 bytes", refusal)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_afterTheToken(self) -> None:
        """
        After the token, an answer AMP cannot send (such as its error for a
        command it does not know, which repeats the command's whole name)
        closes the connection with one warning.
        """
        self.successResultOf(call(self.client, self.pump, commands.Authenticate, token=TOKEN))
        del self.messages[:]
        outcome: list[object] = []
        self.client.callRemoteString(b"A" * 65_520).addBoth(outcome.append)
        self.pump.flush()
        self.assertIsNone(self.server.transport, "the connection is closed")
        [lost] = outcome
        assert isinstance(lost, Failure)
        lost.trap(ConnectionDone)
        # The client, an AMP protocol as it comes, logs its own lines.
        [warning] = [m for m in self.messages if "HarbourClientProtocol" not in m]
        self.assertIn("closed the connection of", warning)
        self.assertIn("an answer with a value of", warning)
        self.assertEqual(self.flushLoggedErrors(), [])


class MalformedBeforeAuthenticationTests(SynchronousTestCase):
    """
    Before the token is known, boxes AMP cannot take end the connection as
    refusals, logged as refusals are: no traceback a stranger could write
    into the log at will.
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.client, self.server, self.pump = connected(self.service)
        self.messages = capture_log(self)

    def send(self, box: amp.AmpBox) -> None:
        """
        Send C{box} as it is, and move the bytes.
        """
        cast(ITransport, self.client.transport).write(box.serialize())
        self.pump.flush()

    def assertRefused(self, why: str) -> None:
        """
        Assert that the connection was closed, with one refusal logged
        saying C{why}, and no error logged.
        """
        self.assertIsNone(self.server.transport, "the connection is closed")
        refusals = [m for m in self.messages if "refused" in m or "closed the connection" in m]
        self.assertEqual(len(refusals), 1, refusals)
        self.assertIn(why, refusals[0])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_answerToNothing(self) -> None:
        """
        An answer to no question ends the connection.
        """
        self.send(amp.AmpBox(_answer=b"99"))
        self.assertRefused("a malformed box (KeyError)")

    def test_emptyBox(self) -> None:
        """
        A box without a command ends the connection.
        """
        self.send(amp.AmpBox(nothing=b"here"))
        self.assertRefused("a malformed box (NoEmptyBoxes)")

    def test_commandWithoutAsk(self) -> None:
        """
        A command that asks no answer ends the connection: AMP would have
        no answer to refuse it with.  So does an C{Authenticate} that asks
        none, whatever its token.
        """
        for box in (
            amp.AmpBox(_command=b"Status"),
            amp.AmpBox(_command=b"Authenticate", token=b"guess"),
            amp.AmpBox(_command=b"Authenticate", token=TOKEN.encode()),
        ):
            self.setUp()
            self.send(box)
            self.assertRefused("a command without _ask")
            self.assertFalse(self.server._authenticated)

    def test_nothingAfterAbortTaken(self) -> None:
        """
        Nothing read with a box that aborts the connection, after it, is
        taken: not even the right token, and no command after it.
        """
        requests = [
            amp.AmpBox(_command=b"Status"),
            amp.AmpBox(_command=b"Authenticate", _ask=b"1", token=TOKEN.encode()),
            amp.AmpBox(_command=b"Status", _ask=b"2"),
        ]
        cast(ITransport, self.client.transport).write(b"".join(box.serialize() for box in requests))
        self.pump.flush()
        self.assertRefused("a command without _ask")
        self.assertFalse(self.server._authenticated)
        self.assertNotIn("authenticated", "\n".join(self.messages))

    def test_strangersLoggedOncePerMinute(self) -> None:
        """
        Many connections of one peer, each closed for a command without
        C{_ask}, make one log line between them: nothing is logged of each
        connection made and lost.
        """
        for port in range(100):
            protocol = ControlProtocol(self.service)
            transport = StringTransport(peerAddress=IPv4Address("TCP", "203.0.113.9", 4000 + port))
            protocol.makeConnection(transport)
            protocol.dataReceived(amp.AmpBox(_command=b"Status").serialize())
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.messages), 1, self.messages)
        self.assertIn("closed the connection from 203.0.113.9: a command without _ask", self.messages[0])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_authenticateUnreadable(self) -> None:
        """
        C{Authenticate} without a token, or with one that is not UTF-8,
        is refused and ends the connection.
        """
        for arguments in ({}, {"token": b"\xff\xfe"}):
            self.setUp()
            answers: list[object] = []
            self.client.callRemoteString(b"Authenticate", **arguments).addBoth(answers.append)
            self.pump.flush()
            [refusal] = answers
            assert isinstance(refusal, Failure)
            self.assertEqual(refusal.getErrorMessage(), "Code<UNAUTHORIZED>: malformed Authenticate")
            self.assertRefused("malformed")


class BoxLimitTests(SynchronousTestCase):
    """
    A box may hold only so many bytes of keys and values, and before the
    token only so many keys: AMP bounds each, not how many there are, and
    a box that never ends would take memory without bound.
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.client, self.server, self.pump = connected(self.service)
        self.messages = capture_log(self)
        self.received: list[amp.AmpBox] = []
        self.patch(self.server, "ampBoxReceived", self.received.append)

    def endless(self, keys: int) -> None:
        """
        Send C{keys} keys of a box, each with a value of 60,000 bytes,
        without ending it.
        """
        write = cast(ITransport, self.client.transport).write
        for key in range(keys):
            write(amp.AmpBox({f"k{key}": b"v" * 60_000}).serialize()[:-2])
            self.pump.flush()

    def test_beforeTheToken(self) -> None:
        """
        Before the token, a box past 64 KiB ends the connection as a
        refusal, and nothing of it is handed on or kept.
        """
        self.endless(2)
        self.assertIsNone(self.server.transport, "the connection is closed")
        self.assertEqual(self.received, [])
        self.assertLessEqual(len(self.server._currentBox or {}), 1)
        [refusal] = [m for m in self.messages if "closed the connection" in m]
        self.assertIn(f"a box of more than {BOX_LIMIT_UNAUTHENTICATED} bytes", refusal)

    def test_afterTheToken(self) -> None:
        """
        Once authenticated, a box may hold a payload of 64 KiB and more,
        up to 1 MiB; past that, the connection is closed with a warning.
        """
        self.server._authenticated = True
        self.endless(2)
        self.assertIsNotNone(self.server.transport, "a box of 120,000 bytes is allowed")
        self.endless(16)
        self.assertIsNone(self.server.transport, "the connection is closed")
        self.assertEqual(self.received, [])
        [warning] = [m for m in self.messages if "closed the connection" in m]
        self.assertIn(f"a box of more than {BOX_LIMIT} bytes", warning)

    def tiny(self, keys: int) -> None:
        """
        Send C{keys} keys of two bytes, each with an empty value, of a box,
        without ending it.
        """
        cast(ITransport, self.client.transport).write(
            b"".join(struct.pack("!HHH", 2, key, 0) for key in range(1, keys + 1))
        )
        self.pump.flush()

    def test_manyTinyKeysBeforeTheToken(self) -> None:
        """
        Before the token, a box may hold at most
        L{KEY_LIMIT_UNAUTHENTICATED} keys: one of 32,699 keys of two bytes
        with empty values, 65,398 bytes and so within 64 KiB, but some
        2.5 MB of Python objects, ends the connection as a refusal at its
        key past the limit, and nothing of it is kept.
        """
        self.tiny(32_699)
        self.assertIsNone(self.server.transport, "the connection is closed")
        self.assertEqual(self.received, [])
        self.assertIsNone(self.server._currentBox)
        [refusal] = [m for m in self.messages if "closed the connection" in m]
        self.assertIn(f"a box of more than {KEY_LIMIT_UNAUTHENTICATED} keys", refusal)

    def test_keysUpToTheLimitBeforeTheToken(self) -> None:
        """
        Before the token, a box of L{KEY_LIMIT_UNAUTHENTICATED} keys is
        handed on: C{Authenticate} has three.
        """
        self.tiny(KEY_LIMIT_UNAUTHENTICATED)
        cast(ITransport, self.client.transport).write(b"\x00\x00")
        self.pump.flush()
        self.assertIsNotNone(self.server.transport)
        [box] = self.received
        self.assertEqual(len(box), KEY_LIMIT_UNAUTHENTICATED)

    def test_manyKeysAfterTheToken(self) -> None:
        """
        Once authenticated, a box of thousands of keys is handed on: only
        before the token are its keys counted.
        """
        self.server._authenticated = True
        self.tiny(4_000)
        cast(ITransport, self.client.transport).write(b"\x00\x00")
        self.pump.flush()
        self.assertIsNotNone(self.server.transport)
        [box] = self.received
        self.assertEqual(len(box), 4_000)

    def test_boxesCountedOneByOne(self) -> None:
        """
        Each box is counted on its own: many boxes, each within the limit,
        are all handed on.
        """
        for ignored in range(4):
            cast(ITransport, self.client.transport).write(amp.AmpBox({"k": b"v" * 60_000}).serialize())
            self.pump.flush()
        self.assertEqual(len(self.received), 4)
        self.assertIsNotNone(self.server.transport)


class ClosedConnectionTests(SynchronousTestCase):
    """
    A closed connection keeps nothing of what it was reading: AMP's
    protocol is its own box receiver, a reference cycle, and stays in
    memory until the garbage collector's next full pass, with the box it
    was reading.
    """

    def test_nothingKept(self) -> None:
        """
        The box half read and the bytes read and not parsed are dropped
        as the connection is lost.
        """
        server = ControlProtocol(control_service())
        server.makeConnection(StringTransport())
        # Two whole pairs, then part of a key.
        server.dataReceived(amp.AmpBox(a=b"1", b=b"2").serialize()[:-2] + b"\x00\x10abc")
        self.assertEqual(len(server._currentBox or {}), 2)
        self.assertNotEqual(server._unprocessed, b"")
        server.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(server._currentBox)
        self.assertIsNone(server._currentKey)
        self.assertEqual(server._unprocessed, b"")


class KeyLimitTests(SynchronousTestCase):
    """
    A key longer than AMP allows ends the connection, and a connection
    that is closing keeps nothing of what it is sent meanwhile: TLS reads
    on until its peer answers the close, and AMP's parser kept all of it,
    copied anew with each read.  Nor does it stay open long: past its
    deadline, it is aborted.
    """

    def setUp(self) -> None:
        self.service = control_service()
        self.server = ControlProtocol(self.service)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)
        self.messages = capture_log(self)

    def authenticate(self) -> None:
        """
        Send the token, and forget the answer.
        """
        self.server.dataReceived(
            amp.AmpBox(_command=b"Authenticate", _ask=b"1", token=TOKEN.encode()).serialize()
        )
        self.assertTrue(self.server._authenticated)
        self.transport.clear()

    def flood(self) -> None:
        """
        Send a key of 256 bytes, one more than AMP allows, then 10 MiB
        more, as a TLS transport hands on what it reads until its peer
        answers its close.
        """
        self.server.dataReceived(b"\x01\x00")
        for ignored in range(160):
            self.server.dataReceived(b"k" * 65_536)

    def test_beforeTheToken(self) -> None:
        """
        Before the token, a key longer than AMP allows aborts the
        connection, as a refusal, and what follows it is not kept.
        """
        self.flood()
        self.assertTrue(self.transport.disconnected, "the connection is aborted")
        self.assertEqual(self.server._unprocessed, b"")
        [refusal] = self.messages
        self.assertIn("closed the connection from 192.168.1.1: a key of 256 bytes", refusal)

    def test_afterTheToken(self) -> None:
        """
        After the token, a key longer than AMP allows closes the
        connection (what was written goes out first), and what follows it
        is not kept.
        """
        self.authenticate()
        del self.messages[:]
        self.flood()
        self.assertTrue(self.transport.disconnecting)
        self.assertFalse(self.transport.disconnected, "the connection is closed, not aborted")
        self.assertEqual(self.server._unprocessed, b"")
        [warning] = self.messages
        self.assertIn("closed the connection of 192.168.1.1: a key of 256 bytes", warning)

    def test_closingOverdue(self) -> None:
        """
        A connection that has not closed L{ControlService.close_timeout}
        seconds after the daemon closed it (its peer reads nothing, or
        never answers TLS's close, and goes on sending) is aborted, with a
        warning; one that closes in time leaves no timer behind.
        """
        clock = cast(MemoryReactorClock, self.service.clock)
        self.authenticate()
        del self.messages[:]
        self.flood()
        del self.messages[:]
        clock.advance(self.service.close_timeout - 0.1)
        self.assertFalse(self.transport.disconnected)
        self.server.dataReceived(b"k" * 65_536)
        clock.advance(0.1)
        self.assertTrue(self.transport.disconnected, "the connection is aborted")
        [warning] = self.messages
        self.assertIn("aborting the connection of 192.168.1.1: not closed within 3 s", warning)
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_unhandledErrorOverdue(self) -> None:
        """
        A connection AMP closes for an error nothing handled is aborted
        too, if it has not closed in time.
        """
        clock = cast(MemoryReactorClock, self.service.clock)
        self.authenticate()
        self.server.unhandledError(Failure(RuntimeError("unforeseen")))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.transport.disconnecting)
        clock.advance(self.service.close_timeout)
        self.assertTrue(self.transport.disconnected, "the connection is aborted")

    def test_quitBoxOverdue(self) -> None:
        """
        A connection AMP closes itself, sending its last answer (to an
        error a responder did not foresee), is aborted too if it has not
        closed in time, and the service's stop ends.
        """

        def unforeseen() -> None:
            raise RuntimeError("unforeseen")

        self.service = control_service(status_document=unforeseen)
        self.server = ControlProtocol(self.service)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)
        clock = cast(MemoryReactorClock, self.service.clock)
        self.authenticate()
        self.server.dataReceived(amp.AmpBox(_command=b"Status", _ask=b"2").serialize())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.transport.disconnecting)
        stopping = self.service.stopService()
        clock.advance(self.service.close_timeout)
        self.assertTrue(self.transport.disconnected, "the connection is aborted")
        self.server.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopping)

    def test_malformedArguments(self) -> None:
        """
        After the token, a command whose arguments AMP cannot read gets
        C{BAD_REQUEST} naming the command, with no traceback, and the
        connection stays open.
        """
        self.authenticate()
        for number, (box, name) in enumerate(
            [
                (amp.AmpBox(_command=b"Reports", offset=b"x", limit=b"10"), "Reports"),
                (amp.AmpBox(_command=b"Reports", offset=b"9" * 5000, limit=b"10"), "Reports"),
                (amp.AmpBox(_command=b"Subscribe", topic=b"a", tag=b"abc"), "Subscribe"),
                (amp.AmpBox(_command=b"Publish", topic=b"a", payload=b"1", retain=b"yes"), "Publish"),
                (amp.AmpBox(_command=b"Publish", topic=b"a\xff", payload=b"1"), "Publish"),
                (amp.AmpBox(_command=b"Publish", topic=b"a"), "Publish"),
            ],
            start=2,
        ):
            box[b"_ask"] = str(number).encode()
            self.server.dataReceived(box.serialize())
            reader = wire.BoxReader()
            reader.receive(self.transport.value())
            [answer] = list(reader.boxes())
            self.transport.clear()
            self.assertEqual(answer[b"_error_code"], b"BAD_REQUEST", box)
            self.assertTrue(answer[b"_error_description"].startswith(f"malformed {name}: ".encode()))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertFalse(self.transport.disconnecting)

    def test_closedInTime(self) -> None:
        """
        A connection that closes before its deadline leaves no timer
        behind, and closing it again sets none.
        """
        clock = cast(MemoryReactorClock, self.service.clock)
        self.authenticate()
        self.server.close()
        self.server.close()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closingReadsNothing(self) -> None:
        """
        A connection that is closing (here, as the daemon stops) takes no
        more requests, and keeps nothing of them.
        """
        self.authenticate()
        self.server.close()
        # A box's first byte last, that a parser would keep for the next read.
        self.server.dataReceived(amp.AmpBox(_command=b"Status", _ask=b"2").serialize() * 100 + b"\x00")
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.server._unprocessed, b"")


class CommandTests(SynchronousTestCase):
    """
    The commands of an authenticated connection.
    """

    def setUp(self) -> None:
        self.bus = Bus()
        self.config = RecordingConfig(topics=["work"])
        self.service = control_service(
            self.bus, config=self.config, status_document=lambda: {"services": {"bus": {"ok": 1}}}
        )
        self.client, self.server, self.pump = connected(self.service)
        self.call(commands.Authenticate, token=TOKEN)

    def call(self, command: type[amp.Command], **kwargs: object) -> Deferred[Any]:
        """
        Call C{command} on the connection and move the bytes until it is
        answered.
        """
        return call(self.client, self.pump, command, **kwargs)

    def test_status(self) -> None:
        """
        C{Status} answers the service's status document as JSON.
        """
        answer = self.successResultOf(self.call(commands.Status))
        self.assertEqual(json.loads(answer["status"]), {"services": {"bus": {"ok": 1}}})

    def test_reload(self) -> None:
        """
        C{Reload} reloads the configuration and reports what changed.
        """
        answer = self.successResultOf(self.call(commands.Reload))
        self.assertEqual(self.config.reloads, 1)
        self.assertEqual((json.loads(answer["topics"]), json.loads(answer["errors"])), (["work"], []))

    def test_publishBadJSON(self) -> None:
        """
        A payload that is not JSON gets C{BAD_REQUEST}, not a dropped
        connection; so does one carrying C{NaN} or C{Infinity}, which
        Python reads but JSON has not.
        """
        self.failureResultOf(self.call(commands.Publish, topic="t", payload="{nope"), BadRequest)
        for constant in ["NaN", "Infinity", "-Infinity"]:
            failure = self.failureResultOf(
                self.call(commands.Publish, topic="t", payload=f'{{"x": [1, {constant}]}}'), BadRequest
            )
            self.assertIn(f"{constant} is not a JSON number", str(failure.value))
        self.successResultOf(self.call(commands.Status))

    def test_publishBadTopic(self) -> None:
        """
        A bad topic gets C{BAD_REQUEST}; so does a bad subscription pattern.
        """
        self.failureResultOf(self.call(commands.Publish, topic="a b", payload="1"), BadRequest)
        self.failureResultOf(self.call(commands.Subscribe, topic="a*b"), BadRequest)

    def test_publishRetain(self) -> None:
        """
        C{Publish} with C{retain} keeps the payload for later subscribers.
        """
        self.successResultOf(self.call(commands.Publish, topic="t", payload="[1]", retain=True))
        self.assertEqual(self.bus.retained("t"), [1])

    def test_publishRetainBounded(self) -> None:
        """
        A C{Publish} retaining a new topic past the bus's bound on the
        topics clients keep retained gets C{BAD_REQUEST} saying so, and the
        connection stays open.
        """
        self.bus.retained_limit = 2
        for topic in ["t1", "t2"]:
            self.successResultOf(self.call(commands.Publish, topic=topic, payload="1", retain=True))
        failure = self.failureResultOf(
            self.call(commands.Publish, topic="t3", payload="1", retain=True), BadRequest
        )
        self.assertIn("clients keep 2 topics retained", str(failure.value))
        self.assertIsNone(self.bus.retained("t3"))
        self.successResultOf(self.call(commands.Publish, topic="t1", payload="2", retain=True))
        self.assertEqual(self.bus.retained("t1"), 2)

    def test_publishRetainNullClears(self) -> None:
        """
        C{Publish} of a retained C{null} clears the topic's retained value,
        so later subscribers get none; on a configuration topic or
        C{paused} it is refused as any publishing there is, and the value
        stays.
        """
        self.successResultOf(self.call(commands.Publish, topic="junk", payload="[1]", retain=True))
        self.successResultOf(self.call(commands.Publish, topic="junk", payload="null", retain=True))
        self.assertEqual(self.bus.retained_events("junk"), [])
        self.config.owned = frozenset({"work"})
        self.bus.publish("work", {"concurrency": 2}, retain=True)
        self.bus.publish(PAUSED, {"services": []}, retain=True)
        for topic in ["work", PAUSED]:
            self.failureResultOf(
                self.call(commands.Publish, topic=topic, payload="null", retain=True), BadRequest
            )
        self.assertEqual(
            (self.bus.retained("work"), self.bus.retained(PAUSED)), ({"concurrency": 2}, {"services": []})
        )

    def test_subscribeTagged(self) -> None:
        """
        The retained values answering a C{Subscribe} with a C{tag} are sent
        carrying it, and later events are not; without a C{tag}, none is.
        """
        events: list[tuple[str, str, int | None]] = []

        def event(topic: str, payload: str, tag: int | None = None) -> dict[str, object]:
            events.append((topic, payload, tag))
            return {}

        self.patch(self.client, "event", event)
        self.bus.publish("a.x", [1], retain=True)
        self.bus.publish("a.y", [2], retain=True)
        self.successResultOf(self.call(commands.Subscribe, topic="a.*", tag=7))
        self.bus.publish("a.x", [3], retain=True)
        self.successResultOf(self.call(commands.Subscribe, topic="a.y"))
        self.pump.flush()
        self.assertEqual(
            events, [("a.x", "[1]", 7), ("a.y", "[2]", 7), ("a.x", "[3]", None), ("a.y", "[2]", None)]
        )

    def test_oversizePayload(self) -> None:
        """
        An oversize payload is refused on the client before anything is
        sent, with a message naming the limit.
        """
        d = RemoteBus(self.client).publish("t", "x" * 70_000)
        self.pump.flush()
        failure = self.failureResultOf(d, PayloadTooLarge)
        self.assertIn("65,535", str(failure.value))

    def test_subscriberThatStopsReadingIsDisconnected(self) -> None:
        """
        When the transport pauses the connection's outbox (its peer stopped
        reading) and more events wait than the limit, the daemon drops the
        connection with a logged reason and keeps serving others.
        """
        self.service.queue_limit = 5
        slow_client, slow_server, slow_pump = connected(self.service)
        call(slow_client, slow_pump, commands.Authenticate, token=TOKEN)
        self.successResultOf(call(slow_client, slow_pump, commands.Subscribe, topic="t"))
        seen: list[object] = []
        d = RemoteBus(self.client).subscribe("t", lambda e: seen.append(e.payload))
        self.pump.flush()
        self.successResultOf(d)
        # What a TCP transport does when its send buffer fills up.
        assert isinstance(slow_server.transport, iosim.FakeTransport)
        slow_server.transport.producer.pauseProducing()
        for i in range(7):
            self.bus.dispatch(Event.create("t", i))
        self.pump.flush()
        slow_pump.flush()
        self.successResultOf(slow_client.disconnected)
        self.assertNotIn(slow_server, self.service.connections)
        self.assertEqual(seen, list(range(7)))
        self.assertEqual(self.bus.status()["subscriptions"], 1)

    def test_subscriberHoldingTooManyBytesIsDisconnected(self) -> None:
        """
        A connection whose peer stopped reading is dropped, with a logged
        reason, once the payloads waiting for it pass
        L{server_module.REMOTE_QUEUE_BYTES}, however few events they are.
        """
        self.patch(server_module, "REMOTE_QUEUE_BYTES", 1000)
        messages = capture_log(self)
        slow_client, slow_server, slow_pump = connected(self.service)
        call(slow_client, slow_pump, commands.Authenticate, token=TOKEN)
        self.successResultOf(call(slow_client, slow_pump, commands.Subscribe, topic="t"))
        assert isinstance(slow_server.transport, iosim.FakeTransport)
        slow_server.transport.producer.pauseProducing()
        event = Event.create("t", "x" * 298)
        for ignored in range(3):
            self.bus.dispatch(event)
        self.assertEqual((slow_server.backlog, self.bus.status()["subscriptions"]), (3, 1))
        self.bus.dispatch(event)
        slow_pump.flush()
        self.successResultOf(slow_client.disconnected)
        self.assertNotIn(slow_server, self.service.connections)
        self.assertEqual(self.bus.status()["subscriptions"], 0)
        self.assertIn(
            "more than 1,000 bytes of events waiting: subscriber is not reading", "\n".join(messages)
        )

    def test_droppedSubscriberToldWhy(self) -> None:
        """
        A connection dropped for not reading its events is sent one last
        L{commands.Event} on L{commands.DROPPED} naming the reason, past
        its paused outbox, and is then closed, not aborted: once its peer
        reads again, it reads the events written before, then the reason,
        which its client keeps and hands to no subscriber.
        """
        self.service.queue_limit = 2
        slow_client, slow_server, slow_pump = connected(self.service)
        call(slow_client, slow_pump, commands.Authenticate, token=TOKEN)
        seen: list[object] = []
        d = RemoteBus(slow_client).subscribe("*", lambda e: seen.append(e.payload))
        slow_pump.flush()
        self.successResultOf(d)
        assert isinstance(slow_server.transport, iosim.FakeTransport)
        slow_server.transport.producer.pauseProducing()
        for i in range(4):
            self.bus.dispatch(Event.create("t", i))
        self.assertTrue(slow_server.transport.disconnecting)
        slow_pump.flush()
        self.successResultOf(slow_client.disconnected)
        self.assertEqual(seen, [])
        self.assertEqual(slow_client.dropped, "more than 2 events waiting: subscriber is not reading")
        self.assertNotIn(slow_server, self.service.connections)

    def test_droppedTopicNotPublished(self) -> None:
        """
        No client may publish on L{commands.DROPPED}: its subscribers
        would take it for the daemon dropping them.
        """
        failure = self.failureResultOf(
            self.call(commands.Publish, topic=commands.DROPPED, payload='{"reason": "x"}'), BadRequest
        )
        self.assertIn("belongs to the daemon", str(failure.value))

    def test_noSubscriptionWhileClosing(self) -> None:
        """
        A subscription asked for once the connection has begun closing is
        not taken, nor would it put anything on the bus if it were.
        """
        self.server._let_go()
        self.assertNoResult(self.call(commands.Subscribe, topic="a"))
        self.assertEqual(self.server.subscribe("a"), {})
        self.assertEqual(self.bus.status()["subscriptions"], 0)

    def test_subscriptionLimit(self) -> None:
        """
        A connection may hold at most L{server_module.SUBSCRIPTION_LIMIT}
        patterns: one more gets C{BAD_REQUEST} saying so, and the
        connection stays open; subscribing again to a pattern it holds
        still passes, and so does a new one once another is given up.
        """
        self.patch(server_module, "SUBSCRIPTION_LIMIT", 3)
        for pattern in ["a", "b.*", "c"]:
            self.successResultOf(self.call(commands.Subscribe, topic=pattern))
        failure = self.failureResultOf(self.call(commands.Subscribe, topic="d"), BadRequest)
        self.assertIn("subscribed to 3 patterns, the most one may be", str(failure.value))
        self.successResultOf(self.call(commands.Subscribe, topic="b.*"))
        self.successResultOf(self.call(commands.Unsubscribe, topic="a"))
        self.successResultOf(self.call(commands.Subscribe, topic="d"))
        self.assertEqual(self.bus.status()["subscriptions"], 3)
        self.assertIn(self.server, self.service.connections)

    def test_connectionLostForgetsSubscriptions(self) -> None:
        """
        A closed connection's subscriptions are removed from the bus.
        """
        self.successResultOf(self.call(commands.Subscribe, topic="a"))
        self.successResultOf(self.call(commands.Subscribe, topic="b.*"))
        self.assertEqual(self.bus.status()["subscriptions"], 2)
        disconnect(self.client)
        self.pump.flush()
        self.assertEqual(self.bus.status()["subscriptions"], 0)
        self.assertNotIn(self.server, self.service.connections)


class ListenPolicyTests(SynchronousTestCase):
    """
    Plain-text listeners must be loopback-only.
    """

    def test_loopbackAccepted(self) -> None:
        """
        Loopback TCP, unix sockets and TLS are accepted.
        """
        for description in [
            "tcp:7750:interface=127.0.0.1",
            "tcp:port=7750:interface=localhost",
            r"tcp6:7750:interface=\:\:1",
            "unix:/tmp/harbour.sock",
            "ssl:7750:privateKey=k.pem:certKey=c.pem",
        ]:
            check_listen_endpoint(description)

    def test_publicRefused(self) -> None:
        """
        TCP on every interface or a routable address is refused, and the
        message says to use C{ssl:}.
        """
        for description in [
            "tcp:7750",
            "tcp:7750:interface=0.0.0.0",
            "tcp:7750:interface=10.1.2.3",
            r"tcp6:7750:interface=\:\:",
        ]:
            error = self.assertRaises(ConfigurationError, check_listen_endpoint, description)
            self.assertIn("ssl:", str(error))

    def test_readAsTwistedReads(self) -> None:
        """
        The description is read as Twisted reads it: a kind in capitals, an
        escaped key, an interface given without its key, are what Twisted
        listens on, and are refused off loopback.
        """
        for description in [
            "TCP6:7750",
            "Tcp:7750:interface=10.1.2.3",
            r"tcp:7750:interface=127.0.0.1:inter\face=0.0.0.0",
            "tcp:7750:0.0.0.0",
        ]:
            error = self.assertRaises(ConfigurationError, check_listen_endpoint, description)
            self.assertIn("ssl:", str(error))
        check_listen_endpoint("TCP:7750:127.0.0.1")
        check_listen_endpoint(r"tcp6:7750:50:\:\:1")

    def test_portNotANumber(self) -> None:
        """
        A port that is not a number (a listener written as a client would
        write it, C{tcp:HOST:PORT}) is refused saying so and how a
        listener is written, not read as a port and an interface.
        """
        for description, port in [("tcp:notaport", "notaport"), ("tcp:0.0.0.0:7750", "0.0.0.0")]:
            error = self.assertRaises(ConfigurationError, check_listen_endpoint, description)
            self.assertEqual(
                str(error),
                f"cannot use endpoint {description!r}: its port {port!r} is not a number "
                "(a listener is tcp:PORT:interface=ADDRESS)",
            )
        error = self.assertRaises(ConfigurationError, check_listen_endpoint, r"tcp6:\:\:1:7750")
        self.assertIn("(a listener is tcp6:PORT:interface=ADDRESS)", str(error))

    def listen_adopted(self, host: str) -> tuple[ControlService, list[_FakePort]]:
        """
        A control service to listen on C{systemd:domain=INET:index=0},
        the socket systemd hands over being on C{host}.

        @return: The service, and the ports it listens on.
        """
        ports: list[_FakePort] = []

        class Adopting(MemoryReactorClock):
            """
            A reactor whose adopted sockets are on C{host}.
            """

            def adoptStreamPort(self, fileno: int, addressFamily: object, factory: object) -> _FakePort:
                """
                Adopt a socket on C{host}.
                """
                port = _FakePort(IPv4Address("TCP", host, 7750))
                port.stopListening = lambda: ports.remove(port)  # type: ignore[method-assign]
                ports.append(port)
                return port

        # The descriptor systemd would pass: Twisted adopts it, then closes it.
        handed, other = os.pipe()
        self.addCleanup(os.close, other)
        self.patch(_SystemdParser, "_sddaemon", ListenFDs([handed]))
        service = control_service()
        service.reactor, service.endpoint = Adopting(), "systemd:domain=INET:index=0"
        return service, ports

    def test_systemdPublicRefused(self) -> None:
        """
        A plain-text listener systemd hands over, whose address only
        listening tells, is refused at start off loopback, and closed, as
        a C{tcp:} one is; on loopback, it listens.
        """
        service, ports = self.listen_adopted("10.1.2.3")
        error = self.assertRaises(ConfigurationError, service.privilegedStartService)
        self.assertTrue(str(error).startswith("refusing to listen on 10.1.2.3 without TLS"), str(error))
        self.assertEqual(ports, [])
        service, ports = self.listen_adopted("127.0.0.1")
        service.privilegedStartService()
        self.assertEqual(service.address(), IPv4Address("TCP", "127.0.0.1", 7750))

    def test_unusableAtStart(self) -> None:
        """
        An endpoint Twisted cannot use (an unknown kind, a key file that
        does not exist, a socket systemd did not hand over) is a
        configuration error before anything starts, which the daemon says
        in one line, not a traceback as it listens.
        """
        self.patch(_SystemdParser, "_sddaemon", ListenFDs([]))
        for description, why in (
            ("bogus:7750", "Unknown endpoint type: 'bogus'"),
            ("ssl:7750:interface=127.0.0.1:privateKey=/nonexistent/key.pem", "No such file or directory"),
            ("systemd:domain=INET:index=0", "systemd handed over no such socket"),
            ("systemd:domain=INET:name=amp", "systemd handed over no such socket"),
        ):
            error = self.assertRaises(
                ConfigurationError,
                ControlService.from_config,
                MemoryReactorClock(),
                description,
                Path(self.mktemp()),
                Bus(),
                control_service().daemon,
            )
            self.assertTrue(str(error).startswith(f"cannot use endpoint {description!r}: "), str(error))
            self.assertIn(why, str(error))


class TokenTests(SynchronousTestCase):
    """
    The token file.
    """

    def test_createdPrivate(self) -> None:
        """
        A missing token file is created with mode 0600 and a long random
        token, which later reads return unchanged.
        """
        path = self.mktemp()
        token = load_or_create_token(path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertGreaterEqual(len(token), 32)
        self.assertEqual(load_or_create_token(path), token)
        self.assertEqual(read_token(path), token)

    def test_missingOrEmpty(self) -> None:
        """
        Reading a missing or empty token file is a clear configuration error.
        """
        path = self.mktemp()
        self.assertIn("cannot read token file", str(self.assertRaises(ConfigurationError, read_token, path)))
        open(path, "w").close()
        self.assertIn("is empty", str(self.assertRaises(ConfigurationError, read_token, path)))

    def test_notText(self) -> None:
        """
        A token file that is not UTF-8 text is a clear configuration error.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"\xff\xfe\x00garbage")
        error = self.assertRaises(ConfigurationError, read_token, path)
        self.assertEqual(str(error), f"token file {path} is not UTF-8 text")

    def test_notAToken(self) -> None:
        """
        A token file of more than L{TOKEN_LIMIT} bytes (a log named by
        mistake), or whose text has characters that are not printable (a
        binary file that happens to be UTF-8, lines), holds no token: a
        clear configuration error, for the daemon and its clients alike.
        Before, the daemon started with a token no client could send (an
        AMP value holds 64 KiB), and the client's attempt ended in a
        traceback.
        """
        path = Path(self.mktemp())
        path.write_text("x" * 70_000)
        for read in (read_token, load_or_create_token):
            error = self.assertRaises(ConfigurationError, read, path)
            self.assertEqual(
                str(error), f"token file {path} does not hold a token: it has more than {TOKEN_LIMIT:,} bytes"
            )
        path.write_text(" " + "x" * TOKEN_LIMIT + "\n")
        error = self.assertRaises(ConfigurationError, read_token, path)
        self.assertIn("more than 1,024 bytes", str(error))
        path.write_text("x" * TOKEN_LIMIT)
        self.assertEqual(read_token(path), "x" * TOKEN_LIMIT)
        for text in ("ab\x00cd", "first\nsecond\n", "\x1b[2Jtoken"):
            path.write_text(text)
            error = self.assertRaises(ConfigurationError, read_token, path)
            self.assertEqual(
                str(error),
                f"token file {path} does not hold a token: it has characters that are not printable",
            )

    def test_cannotCreate(self) -> None:
        """
        A token file that cannot be created (its directory missing, say)
        is a clear configuration error, as the daemon's others are, not a
        traceback.
        """
        path = Path(self.mktemp()) / "missing" / "amp.token"
        error = self.assertRaises(ConfigurationError, load_or_create_token, path)
        self.assertEqual(str(error), f"cannot create token file {path}: No such file or directory")

    def test_cannotWrite(self) -> None:
        """
        A token file created and not written (the disk full) is removed as
        its error is raised, so that the next start makes one rather than
        stopping at an empty file.
        """
        path = Path(self.mktemp())

        class Full(io.StringIO):
            """
            A file on a full disk.
            """

            def write(self, text: str) -> int:
                """
                @raise OSError: Always, C{ENOSPC}.
                """
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def full(descriptor: int, mode: str) -> Full:
            """
            Open C{descriptor} as a file on a full disk.
            """
            os.close(descriptor)
            return Full()

        self.patch(os, "fdopen", full)
        error = self.assertRaises(ConfigurationError, load_or_create_token, path)
        self.assertEqual(str(error), f"cannot write token file {path}: No space left on device")
        self.assertFalse(path.exists())


class LoopbackTests(TestCase):
    """
    The control service on a real loopback port.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.bus = Bus()
        self.service = ControlService(
            reactor,
            "tcp:0:interface=127.0.0.1",
            TOKEN,
            self.bus,
            DaemonControls(lambda: succeed({"services": {}}), RecordingConfig()),
        )
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.endpoint = f"tcp:127.0.0.1:{port_of(self.service)}"

    async def test_publishSubscribeOverTCP(self) -> None:
        """
        One client's publication reaches another client's subscription.
        """
        from twisted.internet import reactor

        publisher = await connect(reactor, self.endpoint, TOKEN)
        subscriber = await connect(reactor, self.endpoint, TOKEN)
        self.addCleanup(disconnect, publisher)
        self.addCleanup(disconnect, subscriber)
        received: Deferred[IEvent] = Deferred()
        await RemoteBus(subscriber).subscribe("t", received.callback)
        self.assertEqual(await RemoteBus(publisher).publish("t", {"n": 1}), 1)
        event = await received
        self.assertEqual(event.payload, {"n": 1})

    async def test_wrongTokenOverTCP(self) -> None:
        """
        L{connect} fails with L{Unauthorized} for a wrong token.
        """
        from twisted.internet import reactor

        with self.assertRaises(Unauthorized):
            await connect(reactor, self.endpoint, "wrong")

    async def test_stopClosesConnections(self) -> None:
        """
        C{stopService} fires only after open connections are closed.
        """
        from twisted.internet import reactor

        client = await connect(reactor, self.endpoint, TOKEN)
        await self.service.stopService()
        self.assertEqual(self.service.connections, set())
        await client.disconnected

    async def test_closedWhileBuffered(self) -> None:
        """
        A connection the daemon closes (as AMP does after an answer it
        cannot name) while its transport holds more than its buffer of
        events does close once the bytes are out: the transport's producer
        lets go of it rather than being asked for more.
        """
        from twisted.internet import reactor

        subscriber = await connect(reactor, self.endpoint, TOKEN)

        def unless_closed() -> None:
            # Closed by the daemon, unless this test fails.
            if not subscriber.disconnected.called:
                disconnect(subscriber)

        self.addCleanup(unless_closed)
        received: list[IEvent] = []
        await RemoteBus(subscriber).subscribe("t", received.append)
        [protocol] = [p for p in self.service.connections if p._outbox is not None and p._outbox.waiting == 0]
        for n in range(2):
            self.bus.publish("t", {"n": n, "pad": "x" * 40_000})
        # What AMP's QuitBox does.
        protocol._stream.loseConnection()
        await subscriber.disconnected.addTimeout(10, reactor)
        self.assertEqual([e.payload["n"] for e in received], [0, 1])

    def test_portInUse(self) -> None:
        """
        A port that cannot be listened on stops start-up with a clear error.
        """
        from twisted.internet import reactor

        port = port_of(self.service)
        other = ControlService(
            reactor,
            f"tcp:{port}:interface=127.0.0.1",
            TOKEN,
            Bus(),
            DaemonControls(lambda: succeed({}), RecordingConfig()),
        )
        error = self.assertRaises(ConfigurationError, other.privilegedStartService)
        self.assertIn("cannot listen", str(error))


class OperatorCommandTests(SynchronousTestCase):
    """
    C{Refresh}, C{Pause}/C{Resume}, C{ListTasks} and C{Retry}, and their
    refusals of bad arguments.
    """

    def setUp(self) -> None:
        import datetime

        from twisted.internet.defer import succeed
        from twisted.internet.task import Clock

        from harbour.oasis.requests import ReportURL
        from harbour.store.memory import MemoryTaskStore

        class Work(Pausable):
            """
            A work service whose refreshes create three tasks.
            """

            def refresh(self) -> Deferred[int]:
                """
                Create three tasks.
                """
                return succeed(3)

        self.clock = Clock()
        self.tasks = MemoryTaskStore(self.clock)
        start = datetime.datetime(2025, 1, 1, 8, tzinfo=datetime.UTC)
        self.tasks.create(
            [
                ReportURL(
                    f"http://o/{i}",
                    f"r/{i}.zip",
                    "r",
                    start + datetime.timedelta(days=i),
                    start + datetime.timedelta(days=i + 1),
                )
                for i in range(3)
            ]
        )
        self.work, self.download = Work(), Pausable()
        service = control_service(
            tasks=self.tasks, work=self.work, pausable={"work": self.work, "download": self.download}
        )
        self.bus = service.bus
        self.client, self.server, self.pump = connected(service)
        self.call(commands.Authenticate, token=TOKEN)

    def call(self, command: type[amp.Command], **kwargs: object) -> Deferred[Any]:
        """
        Call C{command} on the connection and move the bytes until it is
        answered.
        """
        return call(self.client, self.pump, command, **kwargs)

    def test_refresh(self) -> None:
        """
        C{Refresh} answers how many tasks the work service created.
        """
        self.assertEqual(self.successResultOf(self.call(commands.Refresh)), {"created": 3})

    def test_pauseResume(self) -> None:
        """
        One service or all of them pause and resume; an unknown one is
        refused with the names of those that can.
        """
        answer = self.successResultOf(self.call(commands.Pause, service="download"))
        self.assertEqual(json.loads(answer["services"]), ["download"])
        self.assertEqual((self.download.paused, self.work.paused), (True, False))
        self.successResultOf(self.call(commands.Resume))
        self.assertEqual((self.download.paused, self.work.paused), (False, False))
        failure = self.failureResultOf(self.call(commands.Pause, service="bus"), BadRequest)
        self.assertIn("download, work", str(failure.value))

    def test_pausesAnnounced(self) -> None:
        """
        After each C{Pause} and C{Resume}, which services are paused is
        published, retained, on the C{paused} topic that workers follow;
        nobody else may publish there.
        """
        announced: list[IEvent] = []
        self.successResultOf(self.bus.subscribe(PAUSED, announced.append))
        self.successResultOf(self.call(commands.Pause, service="download"))
        self.successResultOf(self.call(commands.Pause, service="work"))
        self.successResultOf(self.call(commands.Resume, service="download"))
        self.assertEqual(
            [e.payload for e in announced],
            [{"services": ["download"]}, {"services": ["download", "work"]}, {"services": ["work"]}],
        )
        later: list[IEvent] = []
        self.successResultOf(self.bus.subscribe(PAUSED, later.append))
        self.assertEqual([e.payload for e in later], [{"services": ["work"]}])
        failure = self.failureResultOf(
            self.call(commands.Publish, topic=PAUSED, payload='{"services": []}'), BadRequest
        )
        self.assertIn("use Pause and Resume", str(failure.value))

    def test_pausesAnnouncedPastRetainedBound(self) -> None:
        """
        The daemon's own retained C{paused} is announced however many
        topics clients keep retained: their bound is theirs alone.
        """
        self.bus.retained_limit = 1
        self.successResultOf(self.call(commands.Publish, topic="junk", payload="1", retain=True))
        self.failureResultOf(self.call(commands.Publish, topic="junk2", payload="1", retain=True), BadRequest)
        self.successResultOf(self.call(commands.Pause, service="download"))
        self.assertEqual(self.bus.retained(PAUSED), {"services": ["download"]})

    def test_listTasks(self) -> None:
        """
        C{ListTasks} pages the tasks of a state, newest first.
        """
        answer = self.successResultOf(self.call(commands.ListTasks, state="pending", offset=0, limit=2))
        self.assertEqual(answer["total"], 3)
        self.assertEqual([t["filename"] for t in json.loads(answer["tasks"])], ["r/2.zip", "r/1.zip"])

    def test_listTasksBadArguments(self) -> None:
        """
        Unknown states, negative offsets or ones past any listing (Redis
        would refuse them), limits over 500 and oversized names get
        C{BAD_REQUEST} with a clear description, and the connection stays
        usable.
        """
        for kwargs, text in [
            ({"state": "done", "offset": 0, "limit": 1}, "unknown state 'done'"),
            ({"state": "pending", "offset": -1, "limit": 1}, "offset must be between 0 and"),
            ({"state": "pending", "offset": 10**20, "limit": 1}, "offset must be between 0 and 9007"),
            ({"state": "pending", "offset": 0, "limit": 501}, "limit must be between 1 and 500"),
            ({"state": "pending", "offset": 0, "limit": 1, "report": "r" * 300}, "longer than 200"),
        ]:
            failure = self.failureResultOf(self.call(commands.ListTasks, **kwargs), BadRequest)
            self.assertIn(text, str(failure.value))
        self.successResultOf(self.call(commands.Status))

    def test_retry(self) -> None:
        """
        C{Retry} revives failed tasks; a state that cannot be retried is
        refused.
        """
        task = self.successResultOf(self.tasks.claim("w", 60))
        assert task is not None
        self.tasks.finish(task.id, "w", "failed", error="1005")
        self.assertEqual(self.successResultOf(self.call(commands.Retry)), {"count": 1})
        failure = self.failureResultOf(self.call(commands.Retry, state="pending"), BadRequest)
        self.assertIn("unknown state 'pending'", str(failure.value))

    def test_retryAnnounced(self) -> None:
        """
        A C{Retry} that revives tasks announces them with C{task.created},
        marked C{retried} (they are not new); one that revives none says
        nothing.
        """
        events: list[IEvent] = []
        self.successResultOf(self.bus.subscribe("task.created", events.append))
        self.assertEqual(self.successResultOf(self.call(commands.Retry)), {"count": 0})
        self.assertEqual(events, [])
        task = self.successResultOf(self.tasks.claim("w", 60))
        assert task is not None
        self.tasks.finish(task.id, "w", "failed", error="1005")
        self.assertEqual(self.successResultOf(self.call(commands.Retry)), {"count": 1})
        self.assertEqual([e.payload for e in events], [{"report": "*", "count": 1, "retried": True}])

    def test_reparse(self) -> None:
        """
        C{Reparse} queues downloaded files to be parsed again (of one
        report, or all) and announces it with C{table.queued}, so idle
        parsers wherever they run look at once; a report with no task, or
        a name too long to be one, is refused.
        """
        events: list[IEvent] = []
        self.successResultOf(self.bus.subscribe("table.queued", events.append))
        task = self.successResultOf(self.tasks.claim("w", 60))
        assert task is not None
        self.tasks.finish(task.id, "w", "downloaded", 10, "0" * 64, "", task.claim)
        job = self.successResultOf(self.tasks.claim_parse("p", 60))
        assert job is not None
        self.tasks.finish_parse(job.id, "p", job.token, 5, "")
        self.failureResultOf(self.call(commands.Reparse, report="other"), BadRequest)
        self.assertEqual(self.successResultOf(self.call(commands.Reparse)), {"count": 1})
        self.assertEqual([e.payload for e in events], [{"report": "*", "count": 1}])
        failure = self.failureResultOf(self.call(commands.Reparse, report="r" * 300), BadRequest)
        self.assertIn("longer than 200", str(failure.value))

    def test_unknownReport(self) -> None:
        """
        C{ListTasks}, C{Retry} and C{Reparse} naming a report of which no
        task is in the store, in any state, get C{BAD_REQUEST} listing the
        reports that have tasks, instead of an answer of 0 that would read
        as "nothing to do"; a report that has tasks, none of them in the
        state asked for, answers 0.
        """
        for command, kwargs in [
            (commands.ListTasks, {"state": "failed", "offset": 0, "limit": 1}),
            (commands.Retry, {}),
            (commands.Reparse, {}),
        ]:
            failure = self.failureResultOf(self.call(command, report="rr", **kwargs), BadRequest)
            self.assertEqual(
                str(failure.value), "no task of report 'rr' is in the store (reports with tasks: r)"
            )
        answer = self.successResultOf(
            self.call(commands.ListTasks, state="failed", offset=0, limit=1, report="r")
        )
        self.assertEqual(answer["total"], 0)
        self.assertEqual(self.successResultOf(self.call(commands.Retry, report="r")), {"count": 0})


def big_status(reports: int) -> dict[str, Any]:
    """
    @return: A status document with per-report entries for C{reports}
        reports, as the daemon's grows with its configuration.
    """
    names = [f"r{i:04d}" for i in range(reports)]
    return {
        "harbour": "1",
        "services": {
            "work": {"tasks": {name: {"pending": 1, "downloaded": 2} for name in names}},
            "download": {"last_success": dict.fromkeys(names, "2025-01-01T00:00:00Z")},
            "config": {
                "warnings": [f"r.toml:{i}: warning: caf\u00e9 {name}" for i, name in enumerate(names)]
            },
        },
    }


@implementer(IManifest)
class LongManifest:
    """
    A manifest of C{count} requests whose URLs are C{url_length} long.
    """

    def __init__(self, count: int, url_length: int) -> None:
        import datetime

        from harbour.oasis.requests import ReportURL

        start = datetime.datetime(2025, 1, 1, 8, tzinfo=datetime.UTC)
        padding = "x" * max(0, url_length - 30)
        self.requests = [
            ReportURL(
                f"http://o/{i:06d}?p={padding}"[:url_length],
                f"r/{i}.zip",
                "r",
                start + datetime.timedelta(days=i),
                start + datetime.timedelta(days=i + 1),
            )
            for i in range(count)
        ]

    def reports(self) -> list[ReportURL]:
        """
        See L{IManifest.reports}.
        """
        return self.requests

    def held_back(self) -> list[ReportURL]:
        """
        See L{IManifest.held_back}: nothing.
        """
        return []

    def ahead(self) -> tuple[float, list[ReportURL]]:
        """
        See L{IManifest.ahead}: nothing is fetched again daily.
        """
        return 0.0, []

    def report_names(self) -> set[str]:
        """
        See L{IManifest.report_names}.
        """
        return {request.report for request in self.requests}

    def revised(self, entries: list[Publication]) -> list[tuple[ReportURL, Publication]]:
        """
        See L{IManifest.revised}: nothing is ever revised.
        """
        return []


class SplitUnicodeTests(SynchronousTestCase):
    """
    Tests for L{commands.SplitUnicode}.
    """

    def roundTrip(self, text: str) -> amp.AmpBox:
        """
        Encode C{text}, check that it decodes to itself, and return the box.
        """
        box = amp.AmpBox()
        commands.SplitUnicode().toBox(b"doc", box, {"doc": text}, None)
        for value in box.values():
            self.assertLessEqual(len(value), amp.MAX_VALUE_LENGTH)
        decoded: dict[str, Any] = {}
        commands.SplitUnicode().fromBox(b"doc", amp.AmpBox(box), decoded, None)
        self.assertEqual(decoded, {"doc": text})
        return box

    def test_smallAsUnicode(self) -> None:
        """
        Text that fits in one value is carried exactly as L{amp.Unicode}
        carries it, so existing peers read it.
        """
        box = self.roundTrip("caf\u00e9")
        plain = amp.AmpBox()
        amp.Unicode().toBox(b"doc", plain, {"doc": "caf\u00e9"}, None)
        self.assertEqual(box, plain)

    def test_empty(self) -> None:
        """
        Empty text is one empty value.
        """
        self.assertEqual(self.roundTrip(""), {b"doc": b""})

    def test_large(self) -> None:
        """
        Longer text (300,000 bytes) is split into values of at most 65,535
        bytes, even through multi-byte characters, and joined again.
        """
        box = self.roundTrip("\u00e9\u6f22x" * 50_000)
        self.assertEqual(sorted(box), [b"doc", b"doc.1", b"doc.2", b"doc.3", b"doc.4"])


class LargeAnswerTests(SynchronousTestCase):
    """
    Answers that grow with the configuration stay within AMP's values.
    """

    def setUp(self) -> None:
        self.config = RecordingConfig(topics=["reports"], errors=[f"r.toml:{i}: bad" for i in range(20_000)])
        self.document = big_status(2000)
        self.service = control_service(
            config=self.config, manifest=LongManifest(3000, 1000), status_document=lambda: self.document
        )
        self.client, self.server, self.pump = connected(self.service)
        self.call(commands.Authenticate, token=TOKEN)

    def call(self, command: type[amp.Command], **kwargs: object) -> Deferred[Any]:
        """
        Call C{command} on the connection and move the bytes until it is
        answered.
        """
        return call(self.client, self.pump, command, **kwargs)

    def test_status(self) -> None:
        """
        A status document of thousands of reports, far larger than one
        value, reaches the client whole, as callers have always read it.
        """
        self.assertGreater(len(json.dumps(self.document)), 3 * amp.MAX_VALUE_LENGTH)
        answer = self.successResultOf(self.call(commands.Status))
        self.assertEqual(json.loads(answer["status"]), self.document)
        document = status(self.client)
        self.pump.flush()
        self.assertEqual(self.successResultOf(document), self.document)

    def test_reload(self) -> None:
        """
        C{Reload} answers every error, however many.
        """
        answer = self.successResultOf(self.call(commands.Reload))
        self.assertEqual(json.loads(answer["errors"]), self.config.errors)

    def test_reportsLongURLs(self) -> None:
        """
        With URLs of a kilobyte, a page of C{Reports} stops within one
        value, and paging from where each page stops reaches every request.
        """
        answer = self.successResultOf(self.call(commands.Reports, offset=0, limit=500))
        self.assertLessEqual(len(answer["urls"].encode("utf-8")), amp.MAX_VALUE_LENGTH)
        self.assertLess(len(json.loads(answer["urls"])), 100)
        found = all_requests(self.client)
        self.pump.flush()
        self.assertEqual(
            [entry["url"] for entry in self.successResultOf(found)],
            [request.url for request in self.service.daemon.requests()],
        )

    def test_reportsEntryTooLarge(self) -> None:
        """
        A request too large for one value on its own is refused with
        C{PAYLOAD_TOO_LARGE} rather than answered as an empty page, which
        would leave a client paging forever.
        """
        self.service = control_service(manifest=LongManifest(3, amp.MAX_VALUE_LENGTH))
        self.client, self.server, self.pump = connected(self.service)
        self.call(commands.Authenticate, token=TOKEN)
        self.failureResultOf(self.call(commands.Reports, offset=0, limit=10), PayloadTooLarge)
        self.successResultOf(self.call(commands.Status))


class TLSTests(TestCase):
    """
    The control port over TLS, with a certificate made for the test.
    """

    def setUp(self) -> None:
        from pathlib import Path

        from twisted.internet import reactor

        from harbour.test.helpers import self_signed

        self.cas = Path(self.mktemp()).absolute() / "cas"
        cert, key = self_signed(self.cas)
        self.service = ControlService(
            reactor,
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            TOKEN,
            Bus(),
            DaemonControls(lambda: succeed({"services": {"tls": True}}), RecordingConfig()),
        )
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.port = port_of(self.service)

    async def test_closedByTheDaemon(self) -> None:
        """
        Over TLS too, a connection the daemon closes closes: when it stops
        (no connection left to abort), and when it answers a malformed
        C{Authenticate} (long before the deadline to authenticate).
        """
        from twisted.internet import reactor
        from twisted.internet.endpoints import clientFromString, connectProtocol

        self.service.auth_timeout = 3600
        endpoint = f"ssl:host=127.0.0.1:port={self.port}:caCertsDir={self.cas}"
        stranger = await connectProtocol(clientFromString(reactor, endpoint), HarbourClientProtocol())
        with self.assertRaises(amp.RemoteAmpError):
            await stranger.callRemoteString(b"Authenticate")
        await stranger.disconnected.addTimeout(10, reactor)
        client = await connect(reactor, endpoint, TOKEN)
        await client.callRemote(commands.Status)
        messages = capture_log(self)
        await self.service.stopService()
        await client.disconnected
        self.assertEqual([m for m in messages if "abort" in m], [])

    async def test_closedWhileReadingPaused(self) -> None:
        """
        A TLS connection the daemon closes while it reads no more (its
        peer was not reading its events) closes once the peer reads again:
        TLS must read the peer's answer to its close.  Stopping then finds
        nothing to abort.
        """
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        endpoint = f"ssl:host=127.0.0.1:port={self.port}:caCertsDir={self.cas}"
        client = await connect(reactor, endpoint, TOKEN)
        await RemoteBus(client).subscribe("t", lambda event: None)
        [server] = list(self.service.connections)
        cast(IPushProducer, client.transport).pauseProducing()
        paused: list[bool] = []
        pause = server.pauseProducing

        def noted() -> None:
            paused.append(True)
            pause()

        self.patch(server, "pauseProducing", noted)
        for n in range(2000):
            if paused:
                break
            self.service.bus.publish("t", {"n": n, "pad": "x" * 60_000})
            await deferLater(reactor, 0, lambda: None)
        self.assertTrue(paused)
        server.close()
        cast(IPushProducer, client.transport).resumeProducing()
        await client.disconnected.addTimeout(10, reactor)
        messages = capture_log(self)
        await self.service.stopService()
        self.assertEqual([m for m in messages if "abort" in m], [])

    async def test_keyTooLong(self) -> None:
        """
        A key longer than AMP allows closes a TLS connection as it closes
        a TCP one.
        """
        from twisted.internet import reactor

        endpoint = f"ssl:host=127.0.0.1:port={self.port}:caCertsDir={self.cas}"
        client = await connect(reactor, endpoint, TOKEN)
        cast(ITransport, client.transport).write(b"\x01\x00" + b"k" * 256)
        await client.disconnected.addTimeout(10, reactor)

    async def test_keyTooLongBeforeTheToken(self) -> None:
        """
        A key longer than AMP allows aborts a stranger's TLS connection:
        closed, it would wait for the stranger to answer its close, and
        read on meanwhile.
        """
        from twisted.internet import reactor
        from twisted.internet.endpoints import clientFromString, connectProtocol

        self.service.auth_timeout = 3600
        closed: Deferred[None] = Deferred()
        forget = self.service.connection_closed

        def noted(protocol: ControlProtocol) -> None:
            forget(protocol)
            closed.callback(None)

        self.patch(self.service, "connection_closed", noted)
        endpoint = f"ssl:host=127.0.0.1:port={self.port}:caCertsDir={self.cas}"
        stranger = await connectProtocol(clientFromString(reactor, endpoint), HarbourClientProtocol())
        # Once refused, the handshake is done; then the stranger reads
        # nothing, and so does not answer a close.
        with self.assertRaises(Unauthorized):
            await stranger.callRemote(commands.Status)
        cast(IPushProducer, stranger.transport).pauseProducing()
        cast(ITransport, stranger.transport).write(b"\x01\x00" + b"k" * 65_536)
        await closed.addTimeout(10, reactor)
        cast(ITCPTransport, stranger.transport).abortConnection()
        await stranger.disconnected

    async def test_sslClient(self) -> None:
        """
        A client trusting the certificate authenticates over C{ssl:} and
        C{tls:} (which also checks the address) and runs a command.
        """
        from twisted.internet import reactor

        for endpoint in [
            f"ssl:host=127.0.0.1:port={self.port}:caCertsDir={self.cas}",
            f"tls:127.0.0.1:{self.port}:trustRoots={self.cas}",
        ]:
            client = await connect(reactor, endpoint, TOKEN)
            answer = await client.callRemote(commands.Status)
            self.assertEqual(json.loads(answer["status"]), {"services": {"tls": True}})
            disconnect(client)
            await client.disconnected

    async def test_untrustedCertificate(self) -> None:
        """
        A client that does not trust the certificate does not get through:
        its TLS handshake fails, and fails because the certificate could
        not be verified (not, say, because nothing listened).
        """
        from OpenSSL import SSL
        from twisted.internet import reactor

        with self.assertRaises(SSL.Error) as caught:
            await connect(reactor, f"tls:127.0.0.1:{self.port}", TOKEN)
        # OpenSSL's error queue: (library, function, reason) triples.
        [queue] = caught.exception.args
        self.assertIn("certificate verify failed", [reason for library, function, reason in queue])
