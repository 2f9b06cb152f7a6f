"""
Tests for L{harbour.services.files}.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import zipfile
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis import classify as verdicts
from harbour.services.files import (
    KeptFresh,
    open_fresh,
    prepare,
    record,
    record_path,
    remove_abandoned,
    temporary_name,
    verify,
)


def data_zip() -> bytes:
    """
    @return: A zip holding data.
    """
    answer = io.BytesIO()
    with zipfile.ZipFile(answer, "w") as archive:
        archive.writestr("a.csv", b"x,y\n1,2\n")
    return answer.getvalue()


def damaged_zip() -> bytes:
    """
    @return: A zip of deflated data with one byte of its deflate stream
        damaged, so that it does not inflate (C{zlib.error}).
    """
    answer = io.BytesIO()
    with zipfile.ZipFile(answer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.csv", b"A,B\n" + b"1,2\n" * 1000)
    damaged = bytearray(answer.getvalue())
    damaged[40] ^= 0xFF
    return bytes(damaged)


class PrepareTests(SynchronousTestCase):
    """
    Tests for L{prepare}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.target = self.directory / "a" / "x.zip"

    def test_opensTemporary(self) -> None:
        """
        With nothing in place, C{prepare} makes the directory and opens the
        temporary file.
        """
        temporary = temporary_name(self.target, 1, 0)
        opened = prepare(self.target, temporary, 1, "", "http://oasis/x", 30.0, 0.0)
        assert not isinstance(opened, tuple)
        opened.close()
        self.assertTrue(temporary.exists())

    def test_recordedFileIsTheAnswer(self) -> None:
        """
        A file in place whose record names the URL and its hash is the
        answer: nothing is opened.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(data_zip())
        digest = hashlib.sha256(data_zip()).hexdigest()
        record_path(self.target).write_text(record("http://oasis/x", digest))
        temporary = temporary_name(self.target, 1, 0)
        found = prepare(self.target, temporary, 1, "", "http://oasis/x", 30.0, 0.0)
        assert isinstance(found, tuple)
        self.assertEqual((found[0].kind, found[1], found[2]), (verdicts.DATA, len(data_zip()), digest))
        self.assertFalse(temporary.exists())

    def test_recordedFileMadeDurable(self) -> None:
        """
        A file in place is the answer only once it, its record and their
        directory are synced: its rename may not have been yet.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(data_zip())
        digest = hashlib.sha256(data_zip()).hexdigest()
        record_path(self.target).write_text(record("http://oasis/x", digest))
        synced: list[int] = []

        def fsync(fd: int) -> None:
            synced.append(os.fstat(fd).st_ino)

        found = prepare(
            self.target, temporary_name(self.target, 1, 0), 1, "", "http://oasis/x", 30.0, 0.0, fsync
        )
        assert isinstance(found, tuple)
        expected = [
            path.stat().st_ino for path in (self.target, record_path(self.target), self.target.parent)
        ]
        self.assertEqual(synced, expected)

    def test_notMadeDurableIfFetched(self) -> None:
        """
        Nothing is synced when no file is in place.
        """
        synced: list[int] = []
        opened = prepare(
            self.target, temporary_name(self.target, 1, 0), 1, "", "http://oasis/x", 30.0, 0.0, synced.append
        )
        assert not isinstance(opened, tuple)
        opened.close()
        self.assertEqual(synced, [])

    def test_failedSyncNotTheAnswer(self) -> None:
        """
        A file in place that cannot be made durable is not the answer: the
        error reaches the attempt, which retries.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(data_zip())
        digest = hashlib.sha256(data_zip()).hexdigest()
        record_path(self.target).write_text(record("http://oasis/x", digest))

        def fsync(fd: int) -> None:
            raise OSError(errno.EIO, "I/O error")

        with self.assertRaises(OSError):
            prepare(self.target, temporary_name(self.target, 1, 0), 1, "", "http://oasis/x", 30.0, 0.0, fsync)

    def test_recordOfAnotherRequest(self) -> None:
        """
        A file in place recorded for another URL is fetched again.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(data_zip())
        digest = hashlib.sha256(data_zip()).hexdigest()
        record_path(self.target).write_text(record("http://oasis/other", digest))
        opened = prepare(self.target, temporary_name(self.target, 1, 0), 1, "", "http://oasis/x", 30.0, 0.0)
        assert not isinstance(opened, tuple)
        opened.close()

    def test_damagedFileFetchedAgain(self) -> None:
        """
        A file in place recorded for the URL but damaged since (its
        deflate stream no longer inflates) is fetched again: the temporary
        file is opened.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(damaged_zip())
        digest = hashlib.sha256(data_zip()).hexdigest()
        record_path(self.target).write_text(record("http://oasis/x", digest))
        opened = prepare(self.target, temporary_name(self.target, 1, 0), 1, "", "http://oasis/x", 30.0, 0.0)
        assert not isinstance(opened, tuple)
        opened.close()


class OpenFreshTests(SynchronousTestCase):
    """
    Tests for L{open_fresh}.
    """

    def setUp(self) -> None:
        self.target = Path(self.mktemp()) / "a" / "x.zip"
        self.temporary = temporary_name(self.target, 1, 0)

    def test_opensTemporary(self) -> None:
        """
        The directory is made and noted as made, and the temporary file
        opened for writing.
        """
        made: set[Path] = set()
        file = open_fresh(self.target, self.temporary, made)
        assert file is not None
        with file:
            file.write(b"x")
        self.assertEqual(self.temporary.read_bytes(), b"x")
        self.assertEqual(made, {self.target.parent})

    def test_directoryMadeOnce(self) -> None:
        """
        A directory noted as made is not made again.
        """
        with self.assertRaises(FileNotFoundError):
            open_fresh(self.target, self.temporary, {self.target.parent})

    def test_fileInPlace(self) -> None:
        """
        Where a file is in place, nothing is opened: L{None}, for
        L{prepare} to judge it.
        """
        self.target.parent.mkdir(parents=True)
        self.target.write_bytes(data_zip())
        self.assertIsNone(open_fresh(self.target, self.temporary))
        self.assertFalse(self.temporary.exists())


class VerifyTests(SynchronousTestCase):
    """
    Tests for L{verify}.
    """

    def test_keepsData(self) -> None:
        """
        A file holding data is kept.
        """
        path = Path(self.mktemp())
        path.write_bytes(data_zip())
        self.assertEqual(verify(path).kind, verdicts.DATA)
        self.assertTrue(path.exists())

    def test_removesTheRest(self) -> None:
        """
        A file holding no data is removed.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"<html>throttled</html>")
        self.assertEqual(verify(path).kind, verdicts.RETRY_LATER)
        self.assertFalse(path.exists())

    def test_removesDamaged(self) -> None:
        """
        A download damaged on the way (its deflate stream does not
        inflate) is cut short or corrupt, and removed.
        """
        path = Path(self.mktemp())
        path.write_bytes(damaged_zip())
        verdict = verify(path)
        self.assertEqual(verdict.kind, verdicts.RETRY_LATER)
        self.assertIn("cut short or corrupt", verdict.description)
        self.assertFalse(path.exists())


class KeptFreshTests(SynchronousTestCase):
    """
    Tests for L{KeptFresh}.
    """

    def test_flushedWhenDue(self) -> None:
        """
        A file written to in a trickle is flushed once C{every} seconds
        have passed since the start or the last flush, at the next write,
        so its bytes (and its modification time) reach the disk; writes in
        between leave the buffer alone.
        """
        clock = Clock()
        path = Path(self.mktemp())
        fresh = KeptFresh(clock, 10.0)
        on_disk = {}
        with open(path, "wb", buffering=1 << 10) as file:
            for second in range(25):
                file.write(b"x")
                fresh.wrote(file)
                on_disk[second] = path.stat().st_size
                clock.advance(1.0)
        self.assertEqual([on_disk[second] for second in (0, 9, 10, 19, 20, 24)], [0, 0, 11, 11, 21, 21])


class RemoveAbandonedTests(SynchronousTestCase):
    """
    Tests for L{remove_abandoned}.
    """

    def test_liveKept(self) -> None:
        """
        A temporary file named as one of this process's attempts under way
        is kept, however long nothing was written to it; another as old
        is removed.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        live = temporary_name(directory / "a.zip", 1, 1)
        dead = temporary_name(directory / "b.zip", 1, 2)
        for path in (live, dead):
            path.write_bytes(b"x")
            os.utime(path, (1000, 1000))
        self.assertEqual(remove_abandoned(directory, 300, 10_000, {live}), 1)
        self.assertEqual(list(directory.iterdir()), [live])
