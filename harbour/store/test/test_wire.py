"""
Tests of L{harbour.store.wire}: commands built in one pass are the ones
txredisapi builds.
"""

from __future__ import annotations

import txredisapi
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from harbour.store.wire import StoreFactory, StoreProtocol


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

    def connect(self, factory: StoreFactory, refusal: bytes) -> tuple[StringTransport, StoreProtocol]:
        """
        Connect a protocol of C{factory} and have Redis answer its first
        login command with C{refusal}.
        """
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"*2\r\n$6\r\nSELECT\r\n$1\r\n5\r\n")
        protocol.dataReceived(refusal)
        return transport, protocol

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
        A login refused on the pool's first connections is the
        configuration's fault: the pool stops, and says why.
        """
        factory = StoreFactory("u", 5, 1, isLazy=True, convertNumbers=False)
        first = factory.deferred
        transport, ignored = self.connect(factory, b"-ERR DB index is out of range\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(factory.stopped)
        self.assertIn("could not set dbid=5", str(self.failureResultOf(first, ValueError).value))

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
