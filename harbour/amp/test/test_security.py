"""
Tests for the control port's defences: configuration topics cannot be
published from outside, strangers are timed out and only so many are
let in at once, wrong tokens are refused slowly and logged sparingly,
shutdown does not wait for a peer that stops reading, and clients refuse
TLS endpoints that check no certificate.
"""

from __future__ import annotations

import os
import socket
from typing import Any, cast

import attr
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from harbour.admission import EVICTION_GRACE, REFUSAL_LOG_INTERVAL
from harbour.amp import commands
from harbour.amp.client import client_endpoint, connect
from harbour.amp.hub import HubLink
from harbour.amp.server import (
    AUTHENTICATION_TIMEOUT,
    CLOSE_TIMEOUT,
    REFUSAL_DELAY,
    UNAUTHENTICATED_LIMIT,
    UNAUTHENTICATED_PER_HOST,
    ControlProtocol,
    ControlService,
)
from harbour.bus import Bus
from harbour.config.watcher import is_configuration_topic
from harbour.errors import BadRequest, ConfigurationError, Unauthorized
from harbour.test.helpers import TOKEN, RecordingConfig, call, capture_log, connected, control_service


@attr.s(auto_attribs=True)
class OwningConfig(RecordingConfig):
    """
    A configuration source that owns the configuration topics, as
    L{harbour.config.watcher.ConfigService} does.
    """

    def owns(self, topic: str) -> bool:
        """
        @return: Whether C{topic} is a configuration topic.
        """
        return is_configuration_topic(topic)


def clock_of(service: ControlService) -> MemoryReactorClock:
    """
    @return: The fake reactor of a service made by L{control_service}.
    """
    return cast(MemoryReactorClock, service.clock)


class ConfigurationTopicTests(SynchronousTestCase):
    """
    C{Publish} refuses the topics of the configuration directory.
    """

    def setUp(self) -> None:
        self.bus = Bus()
        self.service = control_service(self.bus, config=OwningConfig())
        self.client, self.server, self.pump = connected(self.service)
        call(self.client, self.pump, commands.Authenticate, token=TOKEN)

    def publish(self, topic: str) -> Deferred[Any]:
        """
        Publish C{{}} on C{topic}, retained, and move the bytes.
        """
        return call(self.client, self.pump, commands.Publish, topic=topic, payload="{}", retain=True)

    def test_refused(self) -> None:
        """
        Every configuration topic gets C{BAD_REQUEST}, saying whose it is;
        nothing reaches the bus and the connection stays usable.
        """
        for topic in ["manifest", "work", "download", "reports", "reports.0", "reports.12"]:
            failure = self.failureResultOf(self.publish(topic), BadRequest)
            self.assertEqual(
                failure.getErrorMessage(),
                f"topic {topic} belongs to the configuration directory: edit its file",
            )
            self.assertIsNone(self.bus.retained(topic))
        self.successResultOf(call(self.client, self.pump, commands.Status))

    def test_othersPublished(self) -> None:
        """
        Other topics, even ones that start like a configuration topic, are
        published.
        """
        for topic in ["note", "task.done", "workers", "manifests"]:
            self.successResultOf(self.publish(topic))
            self.assertEqual(self.bus.retained(topic), {})

    def test_withoutConfigurationService(self) -> None:
        """
        A daemon whose configuration source owns nothing lets any topic be
        published.
        """
        service = control_service(self.bus, config=RecordingConfig())
        client, server, pump = connected(service)
        call(client, pump, commands.Authenticate, token=TOKEN)
        self.successResultOf(call(client, pump, commands.Publish, topic="work", payload="{}"))

    def test_topics(self) -> None:
        """
        L{is_configuration_topic} names the schema's topics, the reports
        index and anything under C{reports.}.
        """
        owned = ["manifest", "reports", "reports.3", "reports.x", "work", "download"]
        self.assertEqual(
            [t for t in [*owned, "report", "reports3", "task.done"] if is_configuration_topic(t)], owned
        )


class AuthenticationDefenceTests(SynchronousTestCase):
    """
    Strangers are closed out after L{AUTHENTICATION_TIMEOUT}, and wrong
    tokens are answered late and logged once a minute.
    """

    def setUp(self) -> None:
        self.log = capture_log(self)
        self.serve()

    def serve(self, **settings: Any) -> None:
        """
        Connect to a new control service of C{settings}.
        """
        self.service = control_service(**settings)
        self.clock = clock_of(self.service)
        self.client, self.server, self.pump = connected(self.service)

    def authenticate(self, token: str) -> list[object]:
        """
        Send C{Authenticate} and move the bytes.

        @return: A list that will hold its outcome.
        """
        outcome: list[object] = []
        self.client.callRemote(commands.Authenticate, token=token).addBoth(outcome.append)
        self.pump.flush()
        return outcome

    def advance(self, seconds: float) -> None:
        """
        Let C{seconds} pass, then move the bytes.
        """
        self.clock.advance(seconds)
        self.pump.flush()

    def test_strangerClosed(self) -> None:
        """
        A connection that has not authenticated within the timeout is
        closed, with a log line naming the peer.
        """
        self.advance(AUTHENTICATION_TIMEOUT - 0.5)
        self.assertIn(self.server, self.service.connections)
        self.advance(0.5)
        self.assertNotIn(self.server, self.service.connections)
        self.assertTrue(any("not authenticated within 10 s" in line for line in self.log), self.log)

    def test_authenticatedKept(self) -> None:
        """
        Authenticating cancels the timeout: the connection's one timer is
        then its idle deadline (see L{harbour.amp.server.IDLE_TIMEOUT}).
        """
        self.assertEqual(self.authenticate(TOKEN), [{}])
        self.advance(AUTHENTICATION_TIMEOUT * 10)
        self.assertIn(self.server, self.service.connections)
        [idle] = self.clock.getDelayedCalls()
        self.assertEqual(cast(DelayedCall, idle).func, self.server._idle)

    def test_closedConnectionForgetsTimeout(self) -> None:
        """
        A connection that closes cancels its timeout.
        """
        assert self.client.transport is not None
        self.client.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wrongTokenAnsweredLate(self) -> None:
        """
        A wrong token is refused only after L{REFUSAL_DELAY}; attempts on
        one connection are refused one after another.
        """
        first, second = self.authenticate("guess"), self.authenticate("guess again")
        self.advance(REFUSAL_DELAY - 0.1)
        self.assertEqual((first, second), ([], []))
        self.advance(0.1)
        self.assertEqual(len(first), 1)
        self.assertEqual(second, [])
        self.advance(REFUSAL_DELAY)
        for outcome in (first, second):
            failure = outcome[0]
            assert isinstance(failure, Failure)
            failure.trap(Unauthorized)
        # A right token is still accepted, at once.
        self.assertEqual(self.authenticate(TOKEN), [{}])

    def test_guessesBeyondTimeout(self) -> None:
        """
        More wrong tokens queued than could be refused before the timeout
        close the connection at once.
        """
        for ignored in range(int(AUTHENTICATION_TIMEOUT / REFUSAL_DELAY)):
            self.authenticate("guess")
        self.assertIn(self.server, self.service.connections)
        self.authenticate("guess")
        self.assertNotIn(self.server, self.service.connections)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closedWhileRefusing(self) -> None:
        """
        A connection that closes with refusals pending leaves nothing
        scheduled.
        """
        self.authenticate("guess")
        assert self.client.transport is not None
        self.client.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refusalsLoggedOncePerMinute(self) -> None:
        """
        Refusals of one peer make one log line a minute, which counts those
        left out.
        """
        # Outlast the minute on one connection.
        self.serve(auth_timeout=REFUSAL_LOG_INTERVAL * 2)
        for ignored in range(3):
            self.authenticate("guess")
            self.advance(REFUSAL_DELAY)
        refusals = [line for line in self.log if "wrong token" in line]
        self.assertEqual(len(refusals), 1, refusals)
        self.advance(REFUSAL_LOG_INTERVAL)
        self.authenticate("guess")
        refusals = [line for line in self.log if "wrong token" in line]
        self.assertEqual(len(refusals), 2, refusals)
        self.assertIn("2 more refusals since the last line", refusals[1])


class StrangerLimitTests(SynchronousTestCase):
    """
    Only so many connections may wait for their token at once, in all and
    from one host; past that, a new connection closes the oldest waiting,
    as a refusal, so that strangers cannot keep a client out, unless the
    oldest is too new to have been read: then the new one is refused.
    """

    def setUp(self) -> None:
        self.log = capture_log(self)
        self.service = control_service()
        self.ports = iter(range(1024, 65536))

    def connect(self, host: str = "203.0.113.9") -> tuple[ControlProtocol, StringTransport]:
        """
        Make a connection of C{host} to the service.
        """
        protocol = ControlProtocol(self.service)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, next(self.ports)))
        protocol.makeConnection(transport)
        return protocol, transport

    def refusals(self) -> list[str]:
        """
        @return: The lines logged about connections closed to make room.
        """
        return [line for line in self.log if "closed a connection" in line]

    def assertOpen(self, transport: StringTransport) -> None:
        """
        Assert that the connection of C{transport} is open.
        """
        self.assertFalse(transport.disconnecting)

    def assertClosed(self, protocol: ControlProtocol, transport: StringTransport) -> None:
        """
        Assert that the connection of C{protocol} over C{transport} was
        aborted, counts no more, and leaves nothing once lost.
        """
        self.assertTrue(transport.disconnecting)
        self.assertNotIn(protocol, self.service.admission._waiting)
        scheduled = len(clock_of(self.service).getDelayedCalls())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn(protocol, self.service.connections)
        # Its deadline is cancelled.
        self.assertEqual(len(clock_of(self.service).getDelayedCalls()), scheduled - 1)

    def authenticate(self, protocol: ControlProtocol) -> None:
        """
        Send C{protocol} the token.
        """
        protocol.dataReceived(
            amp.AmpBox(_command=b"Authenticate", _ask=b"1", token=TOKEN.encode()).serialize()
        )
        self.assertTrue(protocol._authenticated)

    def age(self) -> None:
        """
        Let the connections made so far wait past L{EVICTION_GRACE}.
        """
        clock_of(self.service).advance(EVICTION_GRACE)

    def test_perHost(self) -> None:
        """
        A host may have L{UNAUTHENTICATED_PER_HOST} connections waiting
        for their token; another of its connections closes its oldest, with
        one log line for all such closings of the minute.  Other hosts'
        connections are left alone.
        """
        other = self.connect("198.51.100.7")
        waiting = [self.connect() for ignored in range(UNAUTHENTICATED_PER_HOST)]
        self.age()
        for ignored, transport in waiting:
            self.assertOpen(transport)
        newest = [self.connect(), self.connect()]
        self.assertOpen(newest[0][1])
        self.assertOpen(newest[1][1])
        self.assertOpen(other[1])
        for ignored, transport in waiting[2:]:
            self.assertOpen(transport)
        [refusal] = self.refusals()
        self.assertIn(
            f"closed a connection from 203.0.113.9: the oldest of {UNAUTHENTICATED_PER_HOST} of its"
            " connections waiting for their token",
            refusal,
        )
        for protocol, transport in waiting[:2]:
            self.assertClosed(protocol, transport)

    def test_inAll(self) -> None:
        """
        At most L{UNAUTHENTICATED_LIMIT} connections wait for their token,
        whatever their hosts: another closes the oldest of all.
        """
        waiting = [self.connect(f"10.0.{n // 256}.{n % 256}") for n in range(UNAUTHENTICATED_LIMIT)]
        self.age()
        newest = self.connect("198.51.100.7")
        self.assertOpen(newest[1])
        [refusal] = self.refusals()
        self.assertIn(
            f"closed a connection from 10.0.0.0: the oldest of {UNAUTHENTICATED_LIMIT} connections"
            " waiting for their token",
            refusal,
        )
        self.assertClosed(*waiting[0])
        for ignored, transport in waiting[1:]:
            self.assertOpen(transport)

    def test_clientGetsIn(self) -> None:
        """
        A client that sends its token as soon as it is connected gets in
        however many places strangers of its own host keep taken.
        """
        for ignored in range(3):
            for ignored in range(UNAUTHENTICATED_PER_HOST):
                self.connect()
            self.age()
        protocol, transport = self.connect()
        self.authenticate(protocol)
        self.assertOpen(transport)
        self.assertEqual(len(self.service.admission._waiting), UNAUTHENTICATED_PER_HOST - 1)

    def test_authenticatedMakeRoom(self) -> None:
        """
        A connection that has sent its token, or has closed, waits no
        more: it is never closed to make room, and another takes its
        place.  Authenticated connections are not bounded here.
        """
        waiting = [self.connect() for ignored in range(UNAUTHENTICATED_PER_HOST)]
        self.age()
        self.authenticate(waiting[0][0])
        protocol, transport = waiting[1]
        transport.loseConnection()
        protocol.connectionLost(Failure(ConnectionDone()))
        for ignored in range(2):
            self.assertOpen(self.connect()[1])
        self.assertEqual(self.refusals(), [])
        self.connect()
        self.assertOpen(waiting[0][1])
        self.assertClosed(*waiting[2])

    def test_newNotClosed(self) -> None:
        """
        While the oldest of a host's waiting connections is newer than
        L{EVICTION_GRACE} (the connections of one accept are made before
        any is read), a new connection is refused instead: a client
        connected just before strangers of its host has its turn to send
        its token.
        """
        client, transport = self.connect()
        strangers = [self.connect() for ignored in range(UNAUTHENTICATED_PER_HOST)]
        self.assertOpen(transport)
        refused, refusedTransport = strangers[-1]
        self.assertTrue(refusedTransport.disconnecting)
        self.assertNotIn(refused, self.service.connections)
        [refusal] = [line for line in self.log if "refused a connection" in line]
        self.assertIn(
            f"refused a connection from 203.0.113.9: {UNAUTHENTICATED_PER_HOST} of its connections wait"
            f" for their token, all made less than {EVICTION_GRACE:g} s ago",
            refusal,
        )
        self.authenticate(client)
        self.assertOpen(transport)

    def test_refusedTakesNoRequests(self) -> None:
        """
        A refused connection takes none of the requests it sent.
        """
        for ignored in range(UNAUTHENTICATED_PER_HOST):
            self.connect()
        protocol, transport = self.connect()
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(
            amp.AmpBox(_command=b"Authenticate", _ask=b"1", token=TOKEN.encode()).serialize()
        )
        self.assertFalse(protocol._authenticated)
        self.assertEqual(transport.value(), b"")

    def test_timedOutMakeRoom(self) -> None:
        """
        A connection closed for not sending its token in time waits no
        more.
        """
        waiting = [self.connect() for ignored in range(UNAUTHENTICATED_PER_HOST)]
        clock_of(self.service).advance(AUTHENTICATION_TIMEOUT)
        for protocol, transport in waiting:
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.service.admission._waiting, {})
        self.assertOpen(self.connect()[1])
        self.assertEqual(self.refusals(), [])


class PeerTests(SynchronousTestCase):
    """
    A connection's peer, as the log names it and its connections are
    counted.
    """

    def test_unixSocketUser(self) -> None:
        """
        A peer of a UNIX socket, which has no address, is the user it runs
        as, so that each user's connections are counted apart.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        transport = StringTransport(peerAddress=UNIXAddress(None))
        transport.getHandle = lambda: ours  # type: ignore[attr-defined]
        protocol = ControlProtocol(control_service())
        protocol.makeConnection(transport)
        self.assertEqual(protocol._peer, f"uid {os.getuid()}")

    def test_unixSocketUnknownUser(self) -> None:
        """
        Where the system does not tell a UNIX socket's peer, it is the
        socket's address.
        """
        protocol = ControlProtocol(control_service())
        protocol.makeConnection(StringTransport(peerAddress=UNIXAddress(None)))
        self.assertEqual(protocol._peer, "UNIXAddress(None)")


class StopTests(SynchronousTestCase):
    """
    C{stopService} closes every connection, aborting those that linger.
    """

    def test_abortsLingering(self) -> None:
        """
        A connection still open L{CLOSE_TIMEOUT} after the stop began (its
        peer stopped reading) is aborted, and the stop then completes.
        """
        service = control_service()
        clock = clock_of(service)
        protocol = ControlProtocol(service)
        transport = StringTransport()
        protocol.makeConnection(transport)
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.assertEqual((transport.disconnecting, transport.disconnected), (True, False))
        clock.advance(CLOSE_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnected)
        clock.advance(0.1)
        # StringTransport only records the abort; the loss is ours to tell.
        self.assertTrue(transport.disconnected)
        self.assertNoResult(stopped)
        protocol.connectionLost(Failure(ConnectionError("aborted")))
        self.successResultOf(stopped)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closedInTime(self) -> None:
        """
        Connections that close at once leave no timer behind.
        """
        service = control_service()
        client, server, pump = connected(service)
        stopped = service.stopService()
        pump.flush()
        self.successResultOf(stopped)
        self.assertEqual(clock_of(service).getDelayedCalls(), [])


class ClientEndpointTests(SynchronousTestCase):
    """
    Clients refuse an C{ssl:} endpoint that checks no certificate.
    """

    def test_refused(self) -> None:
        """
        C{ssl:} without C{caCertsDir} (or with an empty one) is refused,
        pointing at C{tls:} and C{trustRoots}.
        """
        for description in ["ssl:host=h:port=7750", "SSL:h:7750", "ssl:h:7750:caCertsDir="]:
            error = self.assertRaises(ConfigurationError, client_endpoint, MemoryReactorClock(), description)
            self.assertIn("trustRoots=", str(error))
            self.assertIn("caCertsDir", str(error))

    def test_allowed(self) -> None:
        """
        C{ssl:} with C{caCertsDir}, C{tls:}, C{tcp:} and C{unix:} are
        allowed, and parsed.
        """
        authorities = self.mktemp()
        os.mkdir(authorities)
        for description in [
            f"ssl:h:7750:caCertsDir={authorities}",
            f"tls:h:7750:trustRoots={authorities}",
            "tls:h:7750",
            "tcp:127.0.0.1:7750",
            "unix:/run/harbour.sock",
        ]:
            endpoint = client_endpoint(MemoryReactorClock(), description)
            self.assertTrue(IStreamClientEndpoint.providedBy(endpoint), description)

    def test_notAnEndpoint(self) -> None:
        """
        What Twisted cannot parse, or whose files it cannot read (missing,
        or not certificates), is a L{ConfigurationError} naming the
        endpoint and saying why.
        """
        garbled = self.mktemp()
        os.mkdir(garbled)
        with open(os.path.join(garbled, "ca.pem"), "w") as pem:
            pem.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        for description, why in [
            ("garbage", "Unknown endpoint type"),
            ("", "Unknown endpoint type"),
            ("tcp:h:notaport", "invalid literal"),
            ("tls:h:7750:trustRoots=/nonexistent/authorities", "No such file or directory"),
            ("ssl:h:7750:caCertsDir=/nonexistent/authorities", "No such file or directory"),
            (f"tls:h:7750:trustRoots={garbled}", "PEM"),
            (f"ssl:h:7750:caCertsDir={garbled}", "PEM"),
        ]:
            error = self.assertRaises(ConfigurationError, client_endpoint, MemoryReactorClock(), description)
            self.assertIn(f"cannot use endpoint {description!r}: ", str(error))
            self.assertIn(why, str(error).split(f"{description!r}: ", 1)[1])

    def test_connectSendsNothing(self) -> None:
        """
        L{connect} fails before it connects at all, for an endpoint that
        trusts any certificate or that cannot be parsed.
        """
        for description in ["ssl:host=h:port=7750", "garbage", "tls:h:7750:trustRoots=/nonexistent"]:
            reactor = MemoryReactorClock()
            d = connect(reactor, description, TOKEN)
            self.failureResultOf(d, ConfigurationError)
            self.assertEqual((reactor.tcpClients, reactor.sslClients), ([], []))

    def test_hubRefused(self) -> None:
        """
        A worker's L{HubLink} refuses such an endpoint when it is made.
        """
        with self.assertRaises(ConfigurationError):
            HubLink(MemoryReactorClock(), "ssl:hub.example:7750", TOKEN)
