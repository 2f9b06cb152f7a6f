"""
Tests for L{harbour.store.keys}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from harbour.store.keys import legacy_key_type, legacy_prefix, tagged_prefix


class TaggedPrefixTests(SynchronousTestCase):
    """
    L{tagged_prefix} gives every key of a harbour one hash tag.
    """

    def test_name(self) -> None:
        """
        A plain name becomes the hash tag, with or without its C{:}.
        """
        self.assertEqual((tagged_prefix("harbour"), tagged_prefix("harbour:")), ("{harbour}:", "{harbour}:"))
        self.assertEqual(legacy_prefix("harbour"), "harbour:")

    def test_taggedAlready(self) -> None:
        """
        A name that holds a hash tag is kept as it is.
        """
        self.assertEqual(tagged_prefix("{fleet}:east"), "{fleet}:east:")

    def test_refused(self) -> None:
        """
        An empty name, or one with a brace but no tag, is refused.
        """
        for bad in ("", ":", "{}", "a{b"):
            with self.assertRaises(ValueError):
                tagged_prefix(bad)

    def test_legacyKeys(self) -> None:
        """
        Only the names harbour wrote count as its old keys, each with the
        type it had; per-report keys only for the old store's reports.
        """
        reports = {"a", "b:c"}
        kinds = {
            key: legacy_key_type(key, reports)
            for key in (
                "t:0123456789abcdef0123",
                "ready",
                "revise:due",
                "pub:days",
                "slot:oasis",
                "slot:127.0.0.1:8080",
                "slot:[::1]:8080",
                "s:downloaded",
                "s:downloaded:b:c",
                "c:a",
                "pc:b:c",
            )
        }
        self.assertEqual(
            kinds,
            {
                "t:0123456789abcdef0123": "hash",
                "ready": "zset",
                "revise:due": "hash",
                "pub:days": "hash",
                "slot:oasis": "string",
                "slot:127.0.0.1:8080": "string",
                "slot:[::1]:8080": "string",
                "s:downloaded": "zset",
                "s:downloaded:b:c": "zset",
                "c:a": "hash",
                "pc:b:c": "hash",
            },
        )

    def test_otherHarbourKeys(self) -> None:
        """
        The keys of a harbour whose prefix begins with this one's
        (C{h:s}, C{h:slot} beside C{h}), and names harbour never wrote, are
        not taken for this one's.
        """
        reports = {"a"}
        others = (
            "other",
            "x:t:1",
            "t:abc",
            "t:0123456789ABCDEF0123",
            "s:ids",
            "s:t:0123456789abcdef0123",
            "s:s:pending",
            "s:s:pending:a",
            "s:c:a",
            "s:pub",
            "s:downloaded:x",
            "c:x",
            "pc:",
            "slot:t:0123456789abcdef0123",
            "slot:c:a",
            "slot:slot:oasis",
        )
        self.assertEqual({key: legacy_key_type(key, reports) for key in others}, dict.fromkeys(others))
