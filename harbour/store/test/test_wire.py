"""
Tests of L{harbour.store.wire}: commands built in one pass are the ones
txredisapi builds.
"""

from __future__ import annotations

import txredisapi
from OpenSSL import SSL
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from harbour.store.wire import StoreFactory, StoreProtocol, refused_for_good
from harbour.test.helpers import capture_log


class BuildCommandTests(SynchronousTestCase):
    """
    L{StoreProtocol._build_command}.
    """

    def test_same_bytes(self) -> None:
        """
        Texts (ASCII or not), bytes, integers, floats and empty values
        make the bytes txredisapi's own protocol makes of them.
        """
        commands = [
            ("EVALSHA", "a" * 40, 2, "{h}:ids", "{h}:ready", "", 1.5, b"\x00\xff", "é€", 10**20, -3),
            ("PING",),
            (),
        ]
        ours = StoreProtocol(charset="utf-8", errors="strict")
        theirs = txredisapi.RedisProtocol(charset="utf-8", errors="strict")
        for command in commands:
            self.assertEqual(ours._build_command(*command), theirs._build_command(*command))

    def test_other_charset(self) -> None:
        """
        A text is encoded with the connection's charset, or refused as
        txredisapi refuses it.
        """
        latin = StoreProtocol(charset="latin-1", errors="strict")
        self.assertEqual(latin._build_command("é"), b"*1\r\n$1\r\n\xe9\r\n")
        self.assertRaises(txredisapi.InvalidData, latin._build_command, "€")
        self.assertEqual(
            StoreProtocol(charset=None)._build_command("é"),
            txredisapi.RedisProtocol(charset=None)._build_command("é"),
        )

    def test_factory(self) -> None:
        """
        The store's pool speaks L{StoreProtocol}.
        """
        self.assertIs(StoreFactory.protocol, StoreProtocol)


class LoginTests(SynchronousTestCase):
    """
    L{StoreProtocol}'s login, first and again.
    """

    def connect(
        self, factory: StoreFactory, refusal: bytes, clock: Clock | None = None
    ) -> tuple[StringTransport, StoreProtocol]:
        """
        Connect a protocol of C{factory} and have Redis answer its first
        login command with C{refusal} (if not empty).

        @param clock: What times replies out, if not the reactor.
        """
        protocol = factory.buildProtocol(None)
        if clock is not None:
            protocol.callLater = clock.callLater
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"*2\r\n$6\r\nSELECT\r\n$1\r\n5\r\n")
        if refusal:
            protocol.dataReceived(refusal)
        return transport, protocol

    def test_refusedFirstForNowRetried(self) -> None:
        """
        A login refused on the pool's first connections for a reason that
        passes (a script running, the data loading, the client limit) drops
        the connection and leaves the pool trying, telling C{refused}: the
        daemon exited for good when Redis was busy as it started.
        """
        for refusal in [
            b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n",
            b"-LOADING Redis is loading the dataset in memory\r\n",
            b"-ERR max number of clients reached\r\n",
        ]:
            refusals: list[str] = []
            factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False, refused=refusals.append)
            first = factory.deferred
            transport, ignored = self.connect(factory, refusal)
            self.assertTrue(transport.disconnecting)
            self.assertFalse(factory.stopped)
            self.assertNoResult(first)
            [error] = refusals
            self.assertIn(refusal[1:10].decode(), error)

    def test_unansweredFirstRetried(self) -> None:
        """
        A login not answered within the reply timeout, on the pool's first
        connections, drops the connection and leaves the pool trying.
        """
        clock = Clock()
        refusals: list[str] = []
        factory = StoreFactory("u", 5, 1, isLazy=True, replyTimeout=2.0, refused=refusals.append)
        first = factory.deferred
        transport, ignored = self.connect(factory, b"", clock)
        clock.advance(2.0)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(factory.stopped)
        self.assertNoResult(first)
        self.assertIn("Not received Redis response in 2.0 seconds", refusals[0])

    def test_lostFirstRetried(self) -> None:
        """
        A first connection lost before its login was answered (not in a
        TLS handshake) leaves the pool trying.
        """
        refusals: list[str] = []
        factory = StoreFactory("u", 5, 1, isLazy=True, refused=refusals.append)
        first = factory.deferred
        transport, protocol = self.connect(factory, b"")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(factory.stopped)
        self.assertNoResult(first)
        self.assertIn("Lost connection", refusals[0])

    def test_handshakeFailedFirstEnds(self) -> None:
        """
        A first connection lost to a failed TLS handshake (the server's
        certificate not trusted) is the configuration's fault: the pool
        stops.
        """
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        first = factory.deferred
        transport, protocol = self.connect(factory, b"")
        protocol.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
        self.assertTrue(factory.stopped)
        self.assertIn(
            "could not set dbid=5: Lost connection", str(self.failureResultOf(first, ValueError).value)
        )

    def test_refusedAgainLoggedOnce(self) -> None:
        """
        Without a C{refused} of its own, the pool logs the first login of a
        run refused, not each (every connection of the pool tries again,
        for as long as the outage lasts); one logged in ends the run.
        """
        logged = capture_log(self)
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        factory.deferred = None
        for ignored in range(3):
            self.connect(factory, b"-LOADING Redis is loading the dataset in memory\r\n")
        self.assertEqual(len([line for line in logged if "refused a login" in line]), 1)
        factory.disconnectCalled = True  # a connection added is closed at once
        factory.addConnection(self.connect(factory, b"+OK\r\n")[1])
        self.connect(factory, b"-LOADING Redis is loading the dataset in memory\r\n")
        self.assertEqual(len([line for line in logged if "refused a login" in line]), 2)

    def test_refusedAgainRetried(self) -> None:
        """
        A login refused once the pool has been connected (a Redis at its
        client limit, or stalled past the reply timeout) drops the
        connection and leaves the pool trying: it is not the end.
        """
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        factory.deferred = None  # connected once
        transport, ignored = self.connect(factory, b"-ERR max number of clients reached\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertFalse(factory.stopped)

    def test_refusedFirstEnds(self) -> None:
        """
        A login refused on the pool's first connections for a reason no
        retry changes is the configuration's fault: the pool stops, and
        says why.
        """
        for refusal in [
            b"-ERR DB index is out of range\r\n",
            b"-ERR invalid DB index\r\n",
            b"-NOAUTH Authentication required.\r\n",
            b"-NOPERM this user has no permissions to run the 'select' command\r\n",
        ]:
            factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
            first = factory.deferred
            transport, ignored = self.connect(factory, refusal)
            self.assertTrue(transport.disconnecting)
            self.assertTrue(factory.stopped)
            self.assertIn("could not set dbid=5", str(self.failureResultOf(first, ValueError).value))

    def test_refusedForGood(self) -> None:
        """
        L{refused_for_good} tells the replies to C{AUTH} and C{SELECT} no
        retry changes from the others, as txredisapi words them (without
        C{ERR}).
        """
        for reply in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "invalid password",
            "NOAUTH Authentication required.",
            "AUTH <password> called without any password configured for the default user.",
            "Client sent AUTH, but no password is set",
            "NOPERM this user has no permissions to run the 'select' command",
            "DB index is out of range",
            "SELECT is not allowed in cluster mode",
        ]:
            self.assertTrue(refused_for_good(txredisapi.ResponseError(reply)), reply)
        for reply in [
            "BUSY Redis is busy running a script.",
            "LOADING Redis is loading the dataset in memory",
            "max number of clients reached",
            "MISCONF Redis is configured to save RDB snapshots",
        ]:
            self.assertFalse(refused_for_good(txredisapi.ResponseError(reply)), reply)
        self.assertFalse(
            refused_for_good(txredisapi.TimeoutError("Not received Redis response in 5 seconds"))
        )

    def test_loggedInAgain(self) -> None:
        """
        A login accepted again makes the connection ready for commands:
        those waiting for it go.
        """
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        factory.deferred = None
        transport, protocol = self.connect(factory, b"+OK\r\n")
        self.assertFalse(transport.disconnecting)
        self.assertIs(self.successResultOf(protocol.whenConnected()), protocol)


@implementer(IStreamClientEndpoint)
class RefusingEndpoint:
    """
    An endpoint whose every connection is refused at once.
    """

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Refuse.
        """
        return fail(ConnectionRefusedError("refused"))


class QuietTests(SynchronousTestCase):
    """
    What the pool does not log.
    """

    def test_retriesQuiet(self) -> None:
        """
        The pool's connections try to connect again without logging each
        try: Twisted's L{ClientService} logged one line per connection and
        try, some 1,400 an hour through an outage.
        """
        logged = capture_log(self)
        factory = StoreFactory("u", 0, 4, isLazy=True)
        factory.startConnecting(RefusingEndpoint())
        self.addCleanup(factory.disconnect)
        self.assertEqual(len(factory.slots), 4)
        self.assertEqual([line for line in logged if "retry" in line], [])

    def test_lostConnectionLeavesQueue(self) -> None:
        """
        A lost connection leaves the queue commands take connections from
        as it leaves the pool: txredisapi found it there with the next
        command, and logged C{Discarding dead connection.}.
        """
        logged = capture_log(self)
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        factory.deferred = None
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"+OK\r\n")
        factory.addConnection(protocol)
        self.assertEqual(factory.connectionQueue.pending, [protocol])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.size, factory.connectionQueue.pending), (0, []))
        self.assertNoResult(factory.getConnection(peek=True))
        self.assertEqual([line for line in logged if "dead connection" in line], [])
