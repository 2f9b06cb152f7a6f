"""
Tests of L{harbour.web.service}: the listening policy, the token, and the
services a daemon gets from C{--http}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.interfaces import IListeningPort
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import INonQueuedRequestFactory
from twisted.web.resource import EncodingResourceWrapper, Resource
from twisted.web.server import NOT_DONE_YET, GzipEncoderFactory, Request
from twisted.web.static import Data
from zope.interface import directlyProvides, implementer

from harbour.admission import EVICTION_GRACE
from harbour.bus import Bus
from harbour.errors import ConfigurationError
from harbour.service import HarbourService, Options
from harbour.test.helpers import capture_log
from harbour.web.monitor import Monitor
from harbour.web.resources import COOKIE
from harbour.web.service import (
    ANSWER_TIMEOUT,
    CLOSE_TIMEOUT,
    CONNECTION_LIMIT,
    DEFAULT_HTTP,
    MAX_BODY,
    PIECE,
    REQUEST_TIMEOUT,
    UNSENT_LIMIT,
    WAITING_LIMIT,
    WAITING_PER_HOST,
    BoundedRequest,
    HttpService,
    ReadingSite,
    reachable_from_elsewhere,
    web_services,
)
from harbour.web.test.helpers import FakeDaemon, healthy_services


class PolicyTests(SynchronousTestCase):
    """
    L{reachable_from_elsewhere} and the control port's rule.
    """

    def test_loopback(self) -> None:
        """
        Plain listeners on loopback and unix sockets are local.
        """
        for endpoint in (DEFAULT_HTTP, "tcp6:7752:interface=\\:\\:1", "unix:/tmp/h.sock"):
            self.assertFalse(reachable_from_elsewhere(endpoint), endpoint)

    def test_tls(self) -> None:
        """
        A TLS listener off loopback is reachable; on loopback it is not.
        """
        self.assertTrue(reachable_from_elsewhere("ssl:7752:privateKey=k.pem:certKey=c.pem"))
        self.assertFalse(
            reachable_from_elsewhere("ssl:7752:privateKey=k.pem:certKey=c.pem:interface=127.0.0.1")
        )

    def test_otherKinds(self) -> None:
        """
        A listener of any other kind (handed over by systemd, or a
        plugin's) may be reachable from elsewhere, so the page needs the
        token there.
        """
        self.assertTrue(reachable_from_elsewhere("systemd:domain=INET:index=0"))
        self.assertTrue(reachable_from_elsewhere("someplugin:7752"))

    def test_plainElsewhereRefused(self) -> None:
        """
        A plain listener off loopback is refused, as the control port's is.
        """
        self.assertRaises(ConfigurationError, reachable_from_elsewhere, "tcp:7752")
        self.assertRaises(ConfigurationError, reachable_from_elsewhere, "tcp:7752:interface=0.0.0.0")

    def test_options(self) -> None:
        """
        C{--http} is checked before start; C{none} is accepted.
        """
        config = self.mktemp()
        Path(config).mkdir()
        options = Options()
        options.parseOptions(["--config-dir", config, "--http", "none"])
        self.assertEqual(options["http"], "none")
        self.assertEqual(Options()["http"], DEFAULT_HTTP)
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--config-dir", config, "--http", "tcp:7752"])
        self.assertIn("refusing to listen on every interface without TLS", str(caught.exception))
        # What it suggests instead listens on the port asked for.
        self.assertIn("(tcp:7752:interface=127.0.0.1)", str(caught.exception))


class ServicesTests(SynchronousTestCase):
    """
    L{web_services} and L{HttpService}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.daemon = FakeDaemon(self.reactor)
        self.token = Path(self.mktemp())
        self.token.write_text("the-token\n")

    def test_none(self) -> None:
        """
        C{none}: the monitor only.
        """
        services = web_services(self.reactor, "none", Bus(), self.daemon, self.token)
        self.assertEqual([name for name, ignored in services], ["monitor"])
        self.assertIsInstance(services[0][1], Monitor)

    def test_listens(self) -> None:
        """
        The site listens on the endpoint when privileged start-up runs, and
        stops listening when stopped; on loopback it needs no token.
        """
        [(ignored, monitor), (name, http)] = web_services(
            self.reactor, "tcp:7752:interface=127.0.0.1", Bus(), self.daemon, self.token
        )
        assert isinstance(http, HttpService)
        self.assertEqual(name, "http")
        self.assertIsNone(http.token)
        http.privilegedStartService()
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (7752, "127.0.0.1"))
        # A memory reactor's ports say they are on every interface.
        self.assertEqual(http.status()["listening"], "http://0.0.0.0:7752/")
        http.startService()
        http.stopService()
        self.assertIsNone(http.status()["listening"])

    def test_unusableEndpoint(self) -> None:
        """
        An endpoint Twisted cannot use (a TLS key that cannot be read) is
        logged as one the site cannot listen on, and the daemon starts
        without it, rather than failing its start with a traceback.
        """
        messages = capture_log(self)
        key = self.mktemp()
        http = HttpService(
            self.reactor,
            f"ssl:0:interface=127.0.0.1:privateKey={key}",
            Monitor(self.reactor, Bus(), self.daemon),
        )
        http.privilegedStartService()
        self.assertIsNone(http.status()["listening"])
        self.assertTrue(any("cannot listen on ssl:0" in message for message in messages), messages)

    def test_malformedEndpointRefused(self) -> None:
        """
        A description Twisted cannot parse (a typo: C{tpc:7752}, or a port
        that is no number) stops start-up, naming C{--http}, rather than
        leaving the page and metrics off.
        """
        for endpoint, why in [
            ("garbage", "Unknown endpoint type: 'garbage'"),
            ("tpc:7752", "Unknown endpoint type: 'tpc'"),
            ("tcp:notaport", "invalid literal for int()"),
        ]:
            with self.assertRaises(ConfigurationError) as caught:
                web_services(self.reactor, endpoint, Bus(), self.daemon, self.token)
            self.assertTrue(str(caught.exception).startswith(f"--http: cannot use endpoint {endpoint!r}: "))
            self.assertIn(why, str(caught.exception))

    def test_urlOfIPv6(self) -> None:
        """
        An IPv6 listener's address is shown in brackets, as a URL needs.
        """
        http = HttpService(
            self.reactor, r"tcp6:7752:interface=\:\:1", Monitor(self.reactor, Bus(), self.daemon)
        )

        @implementer(IListeningPort)
        class Listening:
            def startListening(self) -> None:
                pass

            def stopListening(self) -> None:
                pass

            def getHost(self) -> IPv6Address:
                return IPv6Address("TCP", "::1", 7752)

        http._listening(Listening())
        self.assertEqual(http.status()["listening"], "http://[::1]:7752/")

    def test_tokenRead(self) -> None:
        """
        A listener other hosts may reach reads the control token; one that
        cannot be read stops start-up with a clear error.
        """
        endpoint = "ssl:7752:privateKey=k.pem:certKey=c.pem"
        http = HttpService.from_config(
            self.reactor, endpoint, Monitor(self.reactor, Bus(), self.daemon), self.token
        )
        self.assertEqual(http.token, "the-token")
        missing = Path(self.mktemp())
        with self.assertRaises(ConfigurationError) as caught:
            HttpService.from_config(
                self.reactor, endpoint, Monitor(self.reactor, Bus(), self.daemon), missing
            )
        self.assertIn("cannot read token file", str(caught.exception))

    def test_systemdNeedsToken(self) -> None:
        """
        A listener systemd hands over reads the control token: the page
        is not served to whoever connects.
        """
        http = HttpService.from_config(
            self.reactor,
            "systemd:domain=INET:index=0",
            Monitor(self.reactor, Bus(), self.daemon),
            self.token,
        )
        self.assertEqual(http.token, "the-token")

    def test_portInUse(self) -> None:
        """
        A port in use is logged, and the daemon goes on without its site.
        """

        class Occupied(MemoryReactorClock):
            def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> Any:
                raise CannotListenError(interface, port, OSError(98, "Address already in use"))

        reactor = Occupied()
        http = HttpService.from_config(
            reactor, DEFAULT_HTTP, Monitor(reactor, Bus(), self.daemon), self.token
        )
        messages = capture_log(self)
        http.privilegedStartService()
        self.assertIsNone(http.status()["listening"])
        [message] = [m for m in messages if m.startswith("cannot listen")]
        self.assertIn(
            "Address already in use.; the status page, /metrics and the health checks are off", message
        )


class BodyTests(SynchronousTestCase):
    """
    The site reads at most L{MAX_BODY} bytes of a request's body, before
    any token is asked for.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        monitor = Monitor(self.reactor, Bus(), FakeDaemon(self.reactor))
        site = HttpService(self.reactor, "systemd:domain=INET:index=0", monitor, "the-token").site()
        # The site's requests, as it makes them.
        self.requests: list[Request] = []
        factory = site.requestFactory

        def made(channel: Any) -> Request:
            self.requests.append(factory(channel))
            return self.requests[-1]

        directlyProvides(made, INonQueuedRequestFactory)
        # A factory need only be callable so, as Twisted's interface says.
        site.requestFactory = made  # type: ignore[assignment]
        self.channel = site.buildProtocol(IPv4Address("TCP", "10.0.0.8", 40000))
        assert self.channel is not None
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)
        self.addCleanup(self.channel.connectionLost, Failure(ConnectionDone()))

    def post(self, *headers: bytes) -> None:
        """
        Send the request line and C{headers} of a POST of the login form.
        """
        self.channel.dataReceived(
            b"POST /login HTTP/1.1\r\nHost: harbour.test\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + b"".join(h + b"\r\n" for h in headers)
            + b"\r\n"
        )

    def assertRefused(self) -> None:
        """
        The request was answered 413, and its connection is closing.
        """
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 413 "), self.transport.value()[:80])
        self.assertTrue(self.transport.value().endswith(b"\r\n\r\nrequest body too large\n"))
        self.assertTrue(self.transport.disconnecting)

    def test_announcedTooLarge(self) -> None:
        """
        A body whose C{Content-Length} is over the limit is refused at
        once, before any of it comes, and with no C{100 Continue}.
        """
        self.post(b"Content-Length: 200000000", b"Expect: 100-continue")
        self.assertRefused()
        self.assertNotIn(b"100 Continue", self.transport.value())
        self.channel.dataReceived(b"token=" + b"x" * MAX_BODY)
        self.assertRefused()

    def test_chunkedTooLarge(self) -> None:
        """
        A body sent in chunks is refused once they add up to more than the
        limit; what came is all that was kept, and no more is.
        """
        self.post(b"Transfer-Encoding: chunked")
        [request] = self.requests
        chunk = b"x" * 10_000
        for ignored in range(MAX_BODY // len(chunk)):
            self.channel.dataReceived(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.assertEqual(self.transport.value(), b"")
        self.channel.dataReceived(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.assertRefused()
        body = request.content
        assert body is not None
        self.assertLessEqual(body.tell(), MAX_BODY)
        self.channel.dataReceived(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        self.assertLessEqual(body.tell(), MAX_BODY)
        self.assertEqual(self.transport.value().count(b"HTTP/1.1"), 1)

    def test_withinLimit(self) -> None:
        """
        A login form of the limit's length, by its C{Content-Length} or in
        chunks, is read and answered.
        """
        form = b"token=the-token&pad=" + b"x" * (MAX_BODY - 20)
        self.assertEqual(len(form), MAX_BODY)
        self.post(b"Content-Length: %d" % len(form))
        self.channel.dataReceived(form)
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 302 "), self.transport.value()[:80])
        self.assertIn(b"Set-Cookie: " + COOKIE, self.transport.value())
        self.transport.clear()
        self.post(b"Transfer-Encoding: chunked")
        self.channel.dataReceived(b"%x\r\n%s\r\n0\r\n\r\n" % (len(form), form))
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 302 "), self.transport.value()[:80])


class SmallBufferTransport(StringTransport):
    """
    A transport whose send buffer holds C{limit} bytes: past them it asks
    its producer to pause, as a socket's transport does, until the client
    reads what it holds (L{read}).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.full = False

    def write(self, data: bytes) -> None:
        """
        Hold C{data}; pause the producer once the buffer is full.
        """
        super().write(data)
        if not self.full and len(self.value()) > self.limit and self.producer is not None:
            self.full = True
            self.producer.pauseProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer, if any, as a socket's transport does (a
        closing channel unregisters it again).
        """
        if self.producer is not None:
            super().unregisterProducer()

    def read(self) -> bytes:
        """
        The client reads everything held: the producer may go on.

        @return: What it read.
        """
        data = self.value()
        self.clear()
        if self.full and self.producer is not None:
            self.full = False
            self.producer.resumeProducing()
        return data


class UnreadAnswersTests(SynchronousTestCase):
    """
    The site answers pipelined requests only while their client reads the
    answers: one that leaves the send buffer full has its connection
    aborted, not thousands of answers kept for it.
    """

    #: Three requests in one packet.
    PIPELINED = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3

    def setUp(self) -> None:
        """
        A site of a daemon on a memory reactor.
        """
        reactor = MemoryReactorClock()
        monitor = Monitor(reactor, Bus(), FakeDaemon(reactor))
        self.site = HttpService(reactor, DEFAULT_HTTP, monitor).site()

    def connect(self, limit: int) -> tuple[Any, SmallBufferTransport]:
        """
        @return: The channel and transport of a new connection to the
            site, whose send buffer holds C{limit} bytes.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert channel is not None
        transport = SmallBufferTransport(limit)
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        return channel, transport

    def test_pipelinedAnswered(self) -> None:
        """
        Pipelined requests are all answered while the answers fit the
        send buffer.
        """
        channel, transport = self.connect(limit=64 * 1024)
        channel.dataReceived(self.PIPELINED)
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 3)
        self.assertFalse(transport.disconnecting)

    def test_unreadAborted(self) -> None:
        """
        A request that comes to be answered while the answers before it
        fill the send buffer, unread, aborts the connection, and says so.
        """
        messages = capture_log(self)
        channel, transport = self.connect(limit=50)
        channel.dataReceived(self.PIPELINED)
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 1)
        self.assertTrue(transport.disconnected)
        self.assertIn(
            "closed a connection from 192.168.1.1: it sent requests without reading the answers",
            messages,
        )

    def test_unreadLoggedOncePerInterval(self) -> None:
        """
        A peer whose connections are aborted for unread answers again and
        again is logged once per interval, as other refusals are, not
        once per connection.
        """
        messages = capture_log(self)
        for ignored in range(3):
            channel, transport = self.connect(limit=50)
            channel.dataReceived(self.PIPELINED)
            self.assertTrue(transport.disconnected)
        self.assertEqual(
            [message for message in messages if "without reading the answers" in message],
            ["closed a connection from 192.168.1.1: it sent requests without reading the answers"],
        )

    def test_readingClientServed(self) -> None:
        """
        A client that reads its answers is served whatever their size: the
        buffer that filled has been read before its next request.
        """
        channel, transport = self.connect(limit=50)
        for ignored in range(3):
            channel.dataReceived(self.PIPELINED[: len(self.PIPELINED) // 3])
            self.assertEqual(transport.read().count(b"HTTP/1.1 200 OK"), 1)
        self.assertFalse(transport.disconnecting)


class Unanswered(Resource):
    """
    A resource that never answers: its requests keep their connections
    busy.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> int:
        """
        @return: L{NOT_DONE_YET}, for ever.
        """
        return NOT_DONE_YET


class LimitTests(SynchronousTestCase):
    """
    The site keeps at most L{CONNECTION_LIMIT} connections open, lets at
    most L{WAITING_LIMIT} (L{WAITING_PER_HOST} of one host) wait for a
    complete request, closing the oldest past them, and gives each
    L{REQUEST_TIMEOUT} to send one.
    """

    #: A whole request.
    REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def setUp(self) -> None:
        self.log = capture_log(self)
        self.reactor = MemoryReactorClock()
        monitor = Monitor(self.reactor, Bus(), FakeDaemon(self.reactor))
        self.site = HttpService(self.reactor, DEFAULT_HTTP, monitor).site()
        self.site.resource.putChild(b"never", Unanswered())
        self.ports = iter(range(1024, 65536))

    def connect(self, host: str = "203.0.113.9") -> tuple[Any, StringTransport]:
        """
        @return: The channel and transport of a new connection of C{host}.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", host, next(self.ports)))
        assert channel is not None
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        return channel, transport

    def refusals(self) -> list[str]:
        """
        @return: The refusals logged.
        """
        return [line for line in self.log if "a connection from" in line]

    def test_trickleClosed(self) -> None:
        """
        A connection that sends its request a byte at a time is closed
        L{REQUEST_TIMEOUT} after it was made, however often a byte comes
        (Twisted's own idle timeout starts again with each), and logged.
        """
        channel, transport = self.connect()
        for byte in self.REQUEST[:-3]:
            channel.dataReceived(bytes([byte]))
            self.reactor.advance(REQUEST_TIMEOUT / len(self.REQUEST))
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(REQUEST_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            self.refusals(),
            [f"closed a connection from 203.0.113.9: no complete request within {REQUEST_TIMEOUT:g} s"],
        )

    def test_unixSocketPeer(self) -> None:
        """
        On a UNIX socket, whose peers have no address, the log names the
        socket's peer as such.
        """
        channel = self.site.buildProtocol(UNIXAddress(None))
        assert channel is not None
        transport = StringTransport(peerAddress=UNIXAddress(None))
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.reactor.advance(REQUEST_TIMEOUT)
        why = f"no complete request within {REQUEST_TIMEOUT:g} s"
        self.assertEqual(self.refusals(), [f"closed a connection from a UNIX socket's peer: {why}"])

    def test_keptAlive(self) -> None:
        """
        A kept-alive connection has L{REQUEST_TIMEOUT} from the end of each
        answer for its next request; an idle one is closed then, without a
        word in the log.
        """
        channel, transport = self.connect()
        for ignored in range(3):
            self.reactor.advance(REQUEST_TIMEOUT - 1)
            channel.dataReceived(self.REQUEST)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))
            transport.clear()
        self.reactor.advance(REQUEST_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.refusals(), [])

    def test_waitingPerHost(self) -> None:
        """
        Past L{WAITING_PER_HOST} of one host waiting for a request, a new
        one closes the oldest (not another host's), once it has waited
        L{EVICTION_GRACE}; one that has its request waits no more.
        """
        other = self.connect("198.51.100.7")
        waiting = [self.connect() for ignored in range(WAITING_PER_HOST)]
        self.reactor.advance(EVICTION_GRACE)
        busy, busyTransport = waiting[0]
        busy.dataReceived(b"GET /never HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.connect()
        self.assertEqual(self.refusals(), [])
        self.connect()
        self.assertFalse(busyTransport.disconnecting)
        self.assertTrue(waiting[1][1].disconnecting)
        for ignored, transport in [other, *waiting[2:]]:
            self.assertFalse(transport.disconnecting)
        self.assertEqual(
            self.refusals(),
            [
                (
                    f"closed a connection from 203.0.113.9: the oldest of {WAITING_PER_HOST} of its"
                    " connections waiting for a complete request"
                )
            ],
        )

    def test_waitingInAll(self) -> None:
        """
        Past L{WAITING_LIMIT} waiting in all, a new connection closes the
        oldest of all.
        """
        waiting = [self.connect(f"10.0.0.{n}") for n in range(WAITING_LIMIT)]
        self.reactor.advance(EVICTION_GRACE)
        self.connect("198.51.100.7")
        self.assertTrue(waiting[0][1].disconnecting)
        self.assertFalse(waiting[1][1].disconnecting)

    def test_connectionLimit(self) -> None:
        """
        Past L{CONNECTION_LIMIT} open, a new connection is closed at once;
        once one closes, another is let in.
        """
        busy = []
        for n in range(CONNECTION_LIMIT):
            channel, transport = self.connect(f"10.0.0.{n}")
            channel.dataReceived(b"GET /never HTTP/1.1\r\nHost: localhost\r\n\r\n")
            busy.append((channel, transport))
        refused, transport = self.connect("198.51.100.7")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            self.refusals(),
            [f"refused a connection from 198.51.100.7: {CONNECTION_LIMIT} connections are open"],
        )
        refused.connectionLost(Failure(ConnectionDone()))
        busy[0][0].connectionLost(Failure(ConnectionDone()))
        self.assertFalse(self.connect("198.51.100.7")[1].disconnecting)


class UnsentTests(SynchronousTestCase):
    """
    An answer is handed to the transport as its client takes it, the rest
    held and counted by the site: a client that takes none of it within
    L{ANSWER_TIMEOUT} is closed, and past L{UNSENT_LIMIT} held in all, so
    is the one whose answer has waited longest.
    """

    def setUp(self) -> None:
        self.log = capture_log(self)
        self.reactor = MemoryReactorClock()
        self.body = b"x" * (4 << 20)
        root = Resource()
        root.putChild(b"big", Data(self.body, "text/plain"))
        self.site = ReadingSite(root, requestFactory=BoundedRequest, reactor=self.reactor)

    def ask(self, host: str = "203.0.113.9", close: bool = False) -> tuple[Any, SmallBufferTransport]:
        """
        Ask for the big answer on a new connection, whose send buffer holds
        1,000 bytes.

        @param close: Whether the request asks for the connection to close
            after its answer (C{Connection: close}).
        @return: Its channel and transport.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", host, 40000))
        assert channel is not None
        transport = SmallBufferTransport(1000)
        transport.peerAddr = IPv4Address("TCP", host, 40000)
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        connection = b"Connection: close\r\n" if close else b""
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: localhost\r\n" + connection + b"\r\n")
        return channel, transport

    def test_handedOver(self) -> None:
        """
        The transport is handed a piece of the answer at a time, as the
        client reads; the site counts the rest; the answer ends whole.
        """
        channel, transport = self.ask()
        self.assertLess(len(transport.value()), PIECE + 1000)
        self.assertEqual(self.site.unsent, len(self.body) - PIECE)
        received = b""
        while transport.value():
            received += transport.read()
        self.assertTrue(received.endswith(b"\r\n\r\n" + self.body))
        self.assertEqual(self.site.unsent, 0)
        self.assertFalse(transport.disconnecting)

    def test_pipelinedBehindHeld(self) -> None:
        """
        Requests sent ahead of an answer that is held for want of reading
        (sent with the first, or after it) end the connection at once, as
        those behind answers that fill the send buffer do.
        """
        request = b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"
        # Each from a peer of its own, whose refusal is logged rather than
        # counted with the last one's.
        for peer, (first, then) in enumerate([(request * 2, b""), (request, request)]):
            messages = capture_log(self)
            channel = self.site.buildProtocol(IPv4Address("TCP", "203.0.113.9", 40000))
            assert channel is not None
            transport = SmallBufferTransport(1000)
            transport.peerAddr = IPv4Address("TCP", f"203.0.113.{peer + 1}", 40000)
            channel.makeConnection(transport)
            self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
            channel.dataReceived(first)
            if then:
                self.assertFalse(transport.disconnecting)
                channel.dataReceived(then)
            self.assertTrue(transport.disconnected)
            self.assertTrue(any("without reading the answers" in line for line in messages), messages)

    def test_slowReaderKeptAlive(self) -> None:
        """
        A kept-alive client still reading the end of its answer (handed
        over whole, the rest in the send buffer) when L{REQUEST_TIMEOUT}
        for its next request runs out has its connection closed, not
        aborted: the end still reaches it.  One that reads nothing more
        is aborted once L{ANSWER_TIMEOUT} is out.
        """
        channel, transport = self.ask()
        received = b""
        while self.site.unsent:
            received += transport.read()
        self.reactor.advance(REQUEST_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        received += transport.read()
        self.assertTrue(received.endswith(b"\r\n\r\n" + self.body))
        self.reactor.advance(ANSWER_TIMEOUT)
        self.assertTrue(transport.disconnected)

    def test_slowReaderClosing(self) -> None:
        """
        A client that asked for the connection to close and still reads
        the end of its answer (handed over whole, the rest in the send
        buffer) L{REQUEST_TIMEOUT} later is not aborted: the connection
        closes once it has read the end.  One that reads nothing more is
        aborted once L{ANSWER_TIMEOUT} is out.
        """
        channel, transport = self.ask(close=True)
        received = b""
        while self.site.unsent:
            received += transport.read()
        self.assertTrue(transport.disconnecting)
        self.reactor.advance(REQUEST_TIMEOUT)
        self.assertFalse(transport.disconnected)
        received += transport.read()
        self.assertTrue(received.endswith(b"\r\n\r\n" + self.body))
        self.reactor.advance(ANSWER_TIMEOUT - REQUEST_TIMEOUT)
        self.assertTrue(transport.disconnected)

    def head_then_get(self, headers: bytes = b"") -> tuple[bytes, bytes]:
        """
        On one kept-alive connection, ask for C{HEAD /page} (with
        C{headers}), then C{GET /big}.

        @return: The head of the first answer, and all that follows it.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        channel.dataReceived(b"HEAD /page HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n")
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head, ignored, rest = transport.value().partition(b"\r\n\r\n")
        return head, rest

    def test_headSendsNoBody(self) -> None:
        """
        The answer to C{HEAD} of a page written in pieces (longer than
        L{PIECE}) has no body: the kept-alive connection's next answer
        follows its head.
        """

        class Written(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> object:
                request.write(b"x" * (3 * PIECE))
                request.finish()
                return NOT_DONE_YET

        self.site.resource.putChild(b"page", Written())
        ignored, rest = self.head_then_get()
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK"), rest[:40])

    def test_headCompressedSendsNoBody(self) -> None:
        """
        The answer to C{HEAD} of a page compressed for a client that
        accepts gzip says so, as the C{GET} would, and has no body: the
        kept-alive connection's next answer follows its head.  (Twisted
        wrote the end of an empty gzip stream there, and the client read
        it as the start of the next answer.)
        """
        self.site.resource.putChild(
            b"page", EncodingResourceWrapper(Data(b"x" * 1000, "text/plain"), [GzipEncoderFactory()])
        )
        head, rest = self.head_then_get(b"Accept-Encoding: gzip\r\n")
        self.assertIn(b"content-encoding: gzip", head.lower().split(b"\r\n"))
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK"), rest[:40])

    def test_notTaken(self) -> None:
        """
        A client that takes nothing of its answer within L{ANSWER_TIMEOUT}
        is closed, and logged; what was held for it is dropped.
        """
        channel, transport = self.ask()
        self.reactor.advance(ANSWER_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertIn(
            f"closed a connection from 203.0.113.9: its answer was not read within {ANSWER_TIMEOUT:g} s",
            self.log,
        )
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.site.unsent, 0)

    def test_unsentLimit(self) -> None:
        """
        Past L{UNSENT_LIMIT} held in all, the connections whose answers
        have waited longest are closed, and their answers dropped.
        """
        held = len(self.body) - PIECE
        many = UNSENT_LIMIT // held
        clients = [self.ask(f"10.0.{n // 256}.{n % 256}") for n in range(many)]
        self.assertFalse(any(transport.disconnecting for ignored, transport in clients))
        newest = self.ask()
        self.assertTrue(clients[0][1].disconnecting)
        self.assertFalse(clients[1][1].disconnecting)
        self.assertFalse(newest[1].disconnecting)
        self.assertLessEqual(self.site.unsent, UNSENT_LIMIT)
        [refusal] = [line for line in self.log if "MiB" in line]
        limit = UNSENT_LIMIT >> 20
        self.assertEqual(
            refusal,
            f"closed a connection from 10.0.0.0: its answer has waited longest of more than {limit} MiB"
            " unread",
        )


class Later(Resource):
    """
    A resource whose answers the test writes: its requests wait in
    C{waiting}.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Request] = []

    def render_GET(self, request: Request) -> int:
        """
        Keep C{request} for the test to answer.
        """
        self.waiting.append(request)
        return NOT_DONE_YET


class StopTests(SynchronousTestCase):
    """
    Stopping the service closes its connections: a kept-alive one is not
    answered on by a stopped daemon.
    """

    REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        monitor = Monitor(self.reactor, Bus(), FakeDaemon(self.reactor))
        self.http = HttpService(self.reactor, DEFAULT_HTTP, monitor)
        self.http.privilegedStartService()
        self.http.startService()
        [(ignored, site, *rest)] = self.reactor.tcpServers
        self.site = cast(ReadingSite, site)
        self.later = Later()
        self.site.resource.putChild(b"later", self.later)

    def connect(self) -> tuple[Any, StringTransport]:
        """
        @return: The channel and transport of a new connection.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        return channel, transport

    def test_closed(self) -> None:
        """
        A kept-alive connection is closed at once; one whose answer is
        under way once the answer is written.  The service has stopped
        once both are gone.
        """
        idle, idleTransport = self.connect()
        idle.dataReceived(self.REQUEST)
        self.assertTrue(idleTransport.value().startswith(b"HTTP/1.1 200 OK"))
        busy, busyTransport = self.connect()
        busy.dataReceived(b"GET /later HTTP/1.1\r\nHost: localhost\r\n\r\n")
        stopped = self.http.stopService()
        self.assertTrue(idleTransport.disconnecting)
        self.assertFalse(idleTransport.disconnected)
        self.assertFalse(busyTransport.disconnecting)
        [request] = self.later.waiting
        request.write(b"the answer")
        request.finish()
        self.assertIn(b"the answer", busyTransport.value())
        self.assertTrue(busyTransport.disconnecting)
        idle.connectionLost(Failure(ConnectionDone()))
        self.assertNoResult(stopped)
        busy.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_overdue(self) -> None:
        """
        A connection still open L{CLOSE_TIMEOUT} after the service began to
        stop is aborted.
        """
        busy, transport = self.connect()
        busy.dataReceived(b"GET /later HTTP/1.1\r\nHost: localhost\r\n\r\n")
        stopped = self.http.stopService()
        self.reactor.advance(CLOSE_TIMEOUT)
        self.assertTrue(transport.disconnected)
        busy.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)


class Stopping(Service):
    """
    A service whose stop completes when the test says so.
    """

    def __init__(self) -> None:
        self.stopping: Deferred[None] = Deferred()

    def stopService(self) -> Deferred[None]:
        """
        @return: L{stopping}.
        """
        super().stopService()
        return self.stopping


class DaemonStopTests(SynchronousTestCase):
    """
    The site in a daemon that stops, as L{harbour.service.build} lays it
    out: last of the services, after the monitor.
    """

    def test_readyzStopping(self) -> None:
        """
        While the other services stop, the site still listens, and
        C{/readyz} answers 503 C{stopping} (and C{harbour_ready} is 0); the
        site stops once they have, and the daemon with it.  (The site
        stopped first, so a probe met a refused connection.)
        """
        reactor = MemoryReactorClock()
        daemon = FakeDaemon(reactor)
        daemon.services = healthy_services()
        bus = Bus()
        root = HarbourService(reactor)
        store = Stopping()
        token_file = Path(self.mktemp())
        for name, child in [("store", store), *web_services(reactor, DEFAULT_HTTP, bus, daemon, token_file)]:
            child.setName(name)
            child.setServiceParent(root)
        root.privilegedStartService()
        root.startService()
        bus.publish("work", {}, retain=True)
        reactor.advance(0)
        [(ignored, site, *rest)] = reactor.tcpServers

        def ask(path: bytes) -> bytes:
            channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
            assert channel is not None
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
            channel.connectionLost(Failure(ConnectionDone()))
            return transport.value()

        self.assertIn(b"\r\n\r\nready\n", ask(b"/readyz"))
        stopped = root.stopService()
        http = root.getServiceNamed("http")
        self.assertEqual(http.status()["listening"], "http://0.0.0.0:7752/")
        self.assertTrue(ask(b"/readyz").startswith(b"HTTP/1.1 503 Service Unavailable\r\n"))
        self.assertIn(b"\r\n\r\nstopping\n", ask(b"/readyz"))
        self.assertIn(b"\nharbour_ready 0.0\n", ask(b"/metrics"))
        store.stopping.callback(None)
        self.successResultOf(stopped)
        self.assertIsNone(http.status()["listening"])
