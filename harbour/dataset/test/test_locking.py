"""
Tests of L{harbour.dataset.locking}: a window's lock over a real file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset import locking
from harbour.dataset.locking import remove_lock_if_free, window_lock


class WindowLockTests(SynchronousTestCase):
    """
    L{window_lock} and L{remove_lock_if_free}.
    """

    def setUp(self) -> None:
        self.report_dir = Path(self.mktemp())
        self.report_dir.mkdir()

    def test_exclusive(self) -> None:
        """
        While one holds a window's lock, no one else can take it; its file
        goes when it is released.
        """
        with window_lock(self.report_dir, "part-w.parquet") as path:
            self.assertEqual(path, self.report_dir / ".part-w.parquet.lock")
            descriptor = os.open(path, os.O_RDWR)
            self.addCleanup(os.close, descriptor)
            with self.assertRaises(BlockingIOError):
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.assertFalse(path.exists())

    def test_directory_made_again(self) -> None:
        """
        A report's directory that went just before its lock is taken
        (another window's aborted parse removed it, empty) is made again
        and the lock taken; without the dataset's directory, the lock is
        not taken.
        """
        self.report_dir.rmdir()
        with window_lock(self.report_dir, "part-w.parquet") as path:
            self.assertTrue(path.exists())
        self.assertEqual(list(self.report_dir.iterdir()), [])
        with self.assertRaises(FileNotFoundError), window_lock(self.report_dir / "gone" / "lmp", "w"):
            pass

    def test_taken_after_removal(self) -> None:
        """
        A lock file its holder removed while a taker waited for it is not
        taken: the taker locks the file now in place instead.
        """
        path = self.report_dir / ".part-w.parquet.lock"
        locked: list[int] = []

        def flock(descriptor: int, operation: int) -> None:
            fcntl.flock(descriptor, operation)
            locked.append(os.fstat(descriptor).st_ino)
            if len(locked) == 1:
                # The holder released it meanwhile, and another took it anew.
                path.unlink()
                path.touch()

        self.patch(locking, "fcntl", SimpleNamespace(flock=flock, LOCK_EX=fcntl.LOCK_EX))
        with window_lock(self.report_dir, "part-w.parquet") as taken:
            self.assertEqual(len(locked), 2)
            self.assertEqual(locked[1], taken.stat().st_ino)

    def test_released_when_file_stays(self) -> None:
        """
        A lock whose file cannot be removed on release (a read-only or
        failing disk) is released all the same, and the error told: the
        next taker locks the file left in place.
        """

        def unlink(path: Path, missing_ok: bool = False) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        self.patch(Path, "unlink", unlink)
        path = self.report_dir / ".part-w.parquet.lock"
        with self.assertRaises(PermissionError), window_lock(self.report_dir, "part-w.parquet"):
            pass
        self.assertTrue(path.exists())
        descriptor = os.open(path, os.O_RDWR)
        self.addCleanup(os.close, descriptor)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_remove_if_free(self) -> None:
        """
        A lock file no one holds is removed; one held stays.
        """
        free = self.report_dir / ".part-free.parquet.lock"
        free.touch()
        remove_lock_if_free(free)
        self.assertFalse(free.exists())
        with window_lock(self.report_dir, "part-held.parquet") as held:
            remove_lock_if_free(held)
            self.assertTrue(held.exists())
