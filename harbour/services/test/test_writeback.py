"""
Tests for L{harbour.services.writeback}.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.writeback import START_WRITING, Writeback, load_sync_file_range


def synchronously(f: Any, *args: Any) -> Deferred[Any]:
    """
    Run C{f} at once, as a thread would.
    """
    return maybeDeferred(f, *args)


class WritebackTests(SynchronousTestCase):
    """
    L{Writeback} starts the write-back of what was written, every C{every}
    bytes, on a descriptor of its own.
    """

    def test_everyFewBytes(self) -> None:
        """
        Each time C{every} more bytes have been written, the write-back of
        those bytes starts, once they are out of the file's buffer, on a
        descriptor closed after.
        """
        path = Path(self.mktemp())
        asked: list[tuple[int, int, int, bytes]] = []
        descriptors: list[int] = []

        def sync_file_range(fd: int, offset: int, length: int, flags: int) -> int:
            descriptors.append(fd)
            asked.append((offset, length, flags, path.read_bytes()[offset : offset + length]))
            return 0

        writeback = Writeback(synchronously, every=10, sync_file_range=sync_file_range)
        with open(path, "wb") as file:
            for piece in (b"abcd", b"efgh", b"ijkl", b"mnopqrstuvwx", b"yz"):
                file.write(piece)
                writeback.wrote(file, len(piece))
                for fd in descriptors:
                    self.assertRaises(OSError, os.fstat, fd)
            self.assertEqual(
                asked,
                [(0, 12, START_WRITING, b"abcdefghijkl"), (12, 12, START_WRITING, b"mnopqrstuvwx")],
            )

    def test_oneAtATime(self) -> None:
        """
        While one write-back is being started, no other is asked for: the
        next, once it is done, covers everything written meanwhile.
        """
        runs: list[tuple[Any, tuple[Any, ...], Deferred[Any]]] = []

        def later(f: Any, *args: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            runs.append((f, args, d))
            return d

        asked: list[tuple[int, int]] = []

        def sync_file_range(fd: int, offset: int, length: int, flags: int) -> int:
            asked.append((offset, length))
            return 0

        writeback = Writeback(later, every=10, sync_file_range=sync_file_range)
        with open(Path(self.mktemp()), "wb") as file:
            for ignored in range(5):
                file.write(b"x" * 10)
                writeback.wrote(file, 10)
            self.assertEqual(len(runs), 1)
            f, args, d = runs.pop()
            maybeDeferred(f, *args).chainDeferred(d)
            file.write(b"x" * 10)
            writeback.wrote(file, 10)
            f, args, d = runs.pop()
            maybeDeferred(f, *args).chainDeferred(d)
        self.assertEqual(asked, [(0, 10), (10, 50)])

    def test_neverRaises(self) -> None:
        """
        A file that cannot be flushed (a full disk), or one closed already,
        only goes without the advice.
        """

        class Unflushable:
            """
            A file on a full disk.
            """

            def flush(self) -> None:
                """
                Fail, as a full disk does.
                """
                raise OSError(28, "No space left on device")

        writeback = Writeback(synchronously, every=1, sync_file_range=lambda *args: 0)
        writeback.wrote(cast(IO[bytes], Unflushable()), 5)
        with open(Path(self.mktemp()), "wb") as file:
            file.close()
            writeback.wrote(file, 5)

    def test_nowhereToAsk(self) -> None:
        """
        Without C{sync_file_range}, nothing is asked and nothing flushed
        early: the sync does the write-back.
        """
        path = Path(self.mktemp())
        writeback = Writeback(synchronously, every=1, sync_file_range=None)
        with open(path, "wb") as file:
            file.write(b"abc")
            writeback.wrote(file, 3)
            self.assertEqual(path.read_bytes(), b"")

    def test_refusalLogged(self) -> None:
        """
        A write-back whose call raises is logged, and the descriptor closed
        (the system call's own refusals, C{-1} and C{errno}, are advice
        declined, and not reported).
        """

        given: list[int] = []

        def refused(fd: int, offset: int, length: int, flags: int) -> int:
            given.append(fd)
            raise OSError("no")

        path = Path(self.mktemp())
        writeback = Writeback(synchronously, every=1, sync_file_range=refused)
        with open(path, "wb") as file:
            file.write(b"abc")
            writeback.wrote(file, 3)
            [fd] = given
            self.assertRaises(OSError, os.fstat, fd)
        [failure] = self.flushLoggedErrors(OSError)
        self.assertEqual(str(failure.value), "no")

    def test_linux(self) -> None:
        """
        On Linux, C{sync_file_range} is found and accepts a real file.
        """
        if not os.path.exists("/proc/self"):
            raise self.skipTest("not Linux")
        sync_file_range = load_sync_file_range()
        assert sync_file_range is not None
        path = Path(self.mktemp())
        with open(path, "wb") as file:
            file.write(b"x" * 4096)
            file.flush()
            self.assertEqual(sync_file_range(file.fileno(), 0, 4096, START_WRITING), 0)
            # Offsets past 2 GiB pass whole (64-bit arguments).
            self.assertEqual(sync_file_range(file.fileno(), 3 << 30, 4096, START_WRITING), 0)
