"""
Tests for L{harbour.store.keys}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from harbour.store.keys import is_legacy_key, legacy_prefix, tagged_prefix


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
        Only the names harbour wrote count as its old keys.
        """
        self.assertEqual(
            [is_legacy_key(k) for k in ("t:abc", "ready", "slot:oasis", "pub:days", "other", "x:t:1")],
            [True, True, True, True, False, False],
        )
