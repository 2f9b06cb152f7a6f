"""
Tests of L{harbour.store.wire}: commands built in one pass are the ones
txredisapi builds.
"""

from __future__ import annotations

import txredisapi
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
