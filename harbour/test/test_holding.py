"""
Tests of L{harbour.holding}: a file one process holds while it runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from harbour.holding import hold


class HoldTests(SynchronousTestCase):
    """
    L{hold} takes a file's exclusive lock, or says another holds it.
    """

    def setUp(self) -> None:
        """
        A directory to hold files in.
        """
        self.directory = Path(self.mktemp())
        self.directory.mkdir()

    def test_heldOnce(self) -> None:
        """
        The file is made and held; a second taker (another open of it, as
        another process's is) gets L{None} until the first lets go.
        """
        path = self.directory / "harbour.lock"
        first = hold(path)
        assert first is not None
        self.assertTrue(path.exists())
        self.assertIsNone(hold(path))
        os.close(first)
        second = hold(path)
        self.assertIsNotNone(second)
        assert second is not None
        os.close(second)

    def test_notInherited(self) -> None:
        """
        The descriptor is not inherited by processes started meanwhile,
        which would keep the lock after its holder was killed.
        """
        held = hold(self.directory / "harbour.lock")
        assert held is not None
        self.addCleanup(os.close, held)
        self.assertFalse(os.get_inheritable(held))

    def test_cannotOpen(self) -> None:
        """
        A file that cannot be made (its directory missing) is an
        L{OSError}, and no descriptor is left open.
        """
        before = len(os.listdir("/proc/self/fd"))
        self.assertRaises(FileNotFoundError, hold, self.directory / "missing" / "harbour.lock")
        self.assertEqual(len(os.listdir("/proc/self/fd")), before)
