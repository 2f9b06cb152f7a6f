"""
Tests for L{harbour.services.storage}: a directory's storage id, made once
and shared by whoever shares the directory.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.files import is_bookkeeping
from harbour.services.storage import STORAGE_FILE, StorageIds, storage_id
from harbour.test.helpers import capture_log

#: Another process's id.
THEIRS = "0123456789abcdef" * 2


class StorageIdTests(SynchronousTestCase):
    """
    L{storage_id} reads a directory's id, or makes it once.
    """

    def test_madeOnce(self) -> None:
        """
        A directory without an id (not even made yet) gets one, 32
        hexadecimal digits in L{STORAGE_FILE}, which every later call
        reads; nothing else is left in the directory.
        """
        directory = Path(self.mktemp()) / "reports"
        made = storage_id(directory)
        self.assertRegex(made, "^[0-9a-f]{32}$")
        self.assertEqual(storage_id(directory), made)
        self.assertEqual(os.listdir(directory), [STORAGE_FILE])
        self.assertEqual((directory / STORAGE_FILE).read_text(), made + "\n")
        self.assertNotEqual(storage_id(Path(self.mktemp())), made, "another directory, another id")

    def test_madeAtOnceElsewhere(self) -> None:
        """
        Another process (on this host, or another sharing the directory)
        that makes the id between this one's look and its own making
        wins: both read its id, and the one this process made is gone.
        """
        directory = Path(self.mktemp())
        link = os.link

        def beaten(source: Any, target: Any) -> None:
            (directory / STORAGE_FILE).write_text(THEIRS + "\n")
            link(source, target)

        self.patch(os, "link", beaten)
        self.assertEqual(storage_id(directory), THEIRS)
        self.assertEqual(os.listdir(directory), [STORAGE_FILE])

    def test_noHardLinks(self) -> None:
        """
        On a file system without hard links, the id is made exclusively
        under its own name instead.
        """
        directory = Path(self.mktemp())

        def refused(source: Any, target: Any) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        self.patch(os, "link", refused)
        made = storage_id(directory)
        self.assertRegex(made, "^[0-9a-f]{32}$")
        self.assertEqual(os.listdir(directory), [STORAGE_FILE])

    def test_notAnId(self) -> None:
        """
        A file that holds anything but an id (emptied, edited) is an
        error, not an id to share: nothing replaces it.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        for text in ("", "not an id\n", THEIRS.upper()):
            (directory / STORAGE_FILE).write_text(text)
            with self.assertRaises(ValueError):
                storage_id(directory)
            self.assertEqual((directory / STORAGE_FILE).read_text(), text)

    def test_cannotMake(self) -> None:
        """
        A directory that cannot be made is an L{OSError}.
        """
        blocker = Path(self.mktemp())
        blocker.write_text("a file")
        with self.assertRaises(OSError):
            storage_id(blocker / "reports")


class StorageIdsTests(SynchronousTestCase):
    """
    L{StorageIds} reads each directory's id once, in a thread, and never
    fails.
    """

    def setUp(self) -> None:
        self.calls: list[Path] = []

    def in_thread(self, f: Any, directory: Path) -> Deferred[Any]:
        """
        Run C{f} at once, counting the calls.
        """
        self.calls.append(directory)
        return maybeDeferred(f, directory)

    def test_readOnce(self) -> None:
        """
        A directory's id is read once, then known.
        """
        ids = StorageIds(self.in_thread, "tables")
        directory = Path(self.mktemp())
        made = self.successResultOf(ids.of(directory))
        self.assertEqual(self.successResultOf(ids.of(directory)), made)
        self.assertEqual(self.calls, [directory])

    def test_unknownLoggedOnce(self) -> None:
        """
        An id that cannot be told is C{""} (the caller goes on without
        it), logged once however often it is asked for, and asked for
        again each time, until it can be told.
        """
        messages = capture_log(self)
        ids = StorageIds(self.in_thread, "download")
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / STORAGE_FILE).write_text("garbled")
        self.assertEqual([self.successResultOf(ids.of(directory)) for ignored in range(2)], ["", ""])
        self.assertEqual(len(self.calls), 2)
        [message] = messages
        self.assertIn(f"cannot tell the storage of {directory}", message)
        self.assertIn("does not hold a storage id", message)
        (directory / STORAGE_FILE).write_text(THEIRS)
        self.assertEqual(self.successResultOf(ids.of(directory)), THEIRS)

    def test_mirrorLeftBehind(self) -> None:
        """
        A storage made beside a directory that holds one (the download
        directory changed with harbour stopped, its files not moved) is
        logged as a mirror left behind; one that was there already, or
        made alone, is not.
        """
        messages = capture_log(self)
        data = Path(self.mktemp())
        old, new = data / "reports", data / "other"
        # The tables directory's own storage, made first, is no mirror.
        self.successResultOf(StorageIds(self.in_thread, "tables").of(data / "tables"))
        self.successResultOf(StorageIds(self.in_thread, "download").of(old))
        self.assertEqual(messages, [])
        self.successResultOf(StorageIds(self.in_thread, "download").of(new))
        [message] = messages
        self.assertIn(f"made a new storage for {new}, beside {old}, which hold files of a mirror", message)
        self.successResultOf(StorageIds(self.in_thread, "tables").of(new))
        self.assertEqual(len(messages), 1)

    def test_otherFailuresPropagate(self) -> None:
        """
        A failure that is no trouble with the directory (a bug) is not
        taken for an unknown id.
        """

        def broken(f: Any, directory: Path) -> Deferred[Any]:
            return maybeDeferred(lambda: 1 / 0)

        self.failureResultOf(StorageIds(broken, "tables").of(Path(self.mktemp())), ZeroDivisionError)

    def test_leftOutOfListings(self) -> None:
        """
        The file is a dot file, which listings of the download directory's
        files leave out as harbour's own.
        """
        self.assertTrue(is_bookkeeping(Path("reports") / STORAGE_FILE))
        self.assertFalse(is_bookkeeping(Path("reports") / "lmp" / "2025-01-01.zip"))
