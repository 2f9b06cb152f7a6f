"""
Tests for L{harbour.services.commit}.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.commit import GroupCommit, LeaseRanOut
from harbour.services.files import record, record_path


class Held:
    """
    Runs functions "in a thread" only when the test says so.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Deferred[None], Callable[..., Any], tuple[object, ...]]] = []

    def __call__(self, f: Callable[..., Any], *args: object) -> Deferred[Any]:
        """
        Hold C{f(*args)} until L{release}.
        """
        d: Deferred[None] = Deferred()
        self.calls.append((d, f, args))
        return d.addCallback(lambda ignored: f(*args))

    def release(self) -> None:
        """
        Run the oldest held call.
        """
        self.calls.pop(0)[0].callback(None)


class Syncs:
    """
    A stand-in for C{syncfs(2)} that counts its calls and answers C{result}.
    """

    def __init__(self, result: int = 0) -> None:
        self.count = 0
        self.result = result

    def __call__(self, fd: int) -> int:
        """
        Count a sync.
        """
        self.count += 1
        return self.result


def downloaded(directory: Path, name: str) -> Path:
    """
    @return: A temporary file of C{name} holding its name's bytes.
    """
    temporary = directory / f".{name}.part-1-0"
    temporary.write_bytes(name.encode())
    return temporary


class PipelinedTests(SynchronousTestCase):
    """
    Tests for L{GroupCommit} where the system has C{syncfs}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.held = Held()
        self.syncs = Syncs()
        self.commits = GroupCommit(self.held, self.syncs)

    def commit(self, name: str) -> Deferred[None]:
        """
        Commit a downloaded file called C{name}.
        """
        return self.commits.commit(
            downloaded(self.directory, name), self.directory / name, None, f"http://oasis/{name}", "ab"
        )

    def test_renamedAfterOneSyncReportedAfterTwo(self) -> None:
        """
        A file is renamed into place only once a sync has made its bytes
        durable, and its commit is reported only once a second sync has
        made the rename durable.
        """
        done = self.commit("a.zip")
        self.assertFalse((self.directory / "a.zip").exists())
        self.held.release()
        self.assertEqual(self.syncs.count, 1)
        self.assertEqual((self.directory / "a.zip").read_bytes(), b"a.zip")
        self.assertNoResult(done)
        self.held.release()
        self.assertEqual(self.syncs.count, 2)
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(self.held.calls, [])

    def test_renamedInTheThread(self) -> None:
        """
        The renames and records that follow a sync are made by the thread
        call that synced, not on the reactor's thread once it returns:
        creating a name may wait on the file system's journal.
        """
        directory = self.directory
        seen: list[tuple[bool, bool]] = []

        def run(f: Callable[..., Any], *args: object) -> Deferred[Any]:
            result = f(*args)
            target = directory / "a.zip"
            seen.append((target.exists(), record_path(target).exists()))
            return succeed(result)

        self.commits = GroupCommit(run, self.syncs)
        self.commit("a.zip")
        self.assertEqual(seen[0], (True, True))

    def test_groupsShareSyncs(self) -> None:
        """
        The files that finish while a sync runs share the next one, which
        also makes the renames of the files before them durable.
        """
        first = self.commit("a.zip")
        others = [self.commit(name) for name in ("b.zip", "c.zip")]
        self.held.release()
        self.held.release()
        self.successResultOf(first)
        for d in others:
            self.assertNoResult(d)
        self.held.release()
        for d in others:
            self.successResultOf(d)
        self.assertEqual(self.syncs.count, 3)

    def test_oneSyncPerFileSystem(self) -> None:
        """
        A group of files in several directories of one file system is made
        durable by one sync, and each lands in its own directory.
        """
        first = self.commit("a.zip")
        days = [self.directory / day for day in ("2025-01-01", "2025-01-02", "2025-01-03")]
        group = []
        for day in days:
            day.mkdir()
            url = f"http://oasis/{day.name}"
            group.append(self.commits.commit(downloaded(day, "a.zip"), day / "a.zip", None, url, "ab"))
        self.held.release()
        self.held.release()
        self.successResultOf(first)
        self.assertEqual(self.syncs.count, 2)
        self.held.release()
        for d in group:
            self.successResultOf(d)
        self.assertEqual([(day / "a.zip").read_bytes() for day in days], [b"a.zip"] * 3)

    def test_failsPerFile(self) -> None:
        """
        In a group, a file whose rename fails (its name is taken by a
        directory) fails alone: the others land, with their records, and
        their commits succeed.
        """
        (self.directory / "c.zip").mkdir()
        (self.directory / "c.zip" / "inside").write_bytes(b"")
        done = [self.commit(name) for name in ("a.zip", "b.zip", "c.zip")]
        while self.held.calls:
            self.held.release()
        self.assertIsNone(self.successResultOf(done[0]))
        self.assertIsNone(self.successResultOf(done[1]))
        self.failureResultOf(done[2], OSError)
        self.assertEqual((self.directory / "b.zip").read_bytes(), b"b.zip")
        self.assertTrue(record_path(self.directory / "b.zip").exists())
        self.assertFalse(record_path(self.directory / "c.zip").exists())

    def test_recordReplaced(self) -> None:
        """
        A file's record replaces a longer one left by an earlier file of the
        same name: it holds the new record alone.
        """
        record_path(self.directory / "a.zip").write_text(record("http://oasis/" + "x" * 200, "cd"))
        done = self.commit("a.zip")
        while self.held.calls:
            self.held.release()
        self.successResultOf(done)
        written = record_path(self.directory / "a.zip").read_text()
        self.assertEqual(written, record("http://oasis/a.zip", "ab"))

    def test_failedSyncFailsItsFiles(self) -> None:
        """
        A sync that fails fails every file it concerned, with L{OSError},
        and renames nothing.
        """
        self.syncs.result = -1
        done = self.commit("a.zip")
        self.held.release()
        self.failureResultOf(done, OSError)
        self.assertFalse((self.directory / "a.zip").exists())

    def test_keep(self) -> None:
        """
        A file a commit replaces is kept under its C{keep} name.
        """
        target = self.directory / "a.zip"
        target.write_bytes(b"old")
        kept = self.directory / "a.rev0.zip"
        done = self.commits.commit(downloaded(self.directory, "a.zip"), target, kept, "http://oasis/a", "ab")
        while self.held.calls:
            self.held.release()
        self.successResultOf(done)
        self.assertEqual((target.read_bytes(), kept.read_bytes()), (b"a.zip", b"old"))


class FileByFileTests(SynchronousTestCase):
    """
    Tests for L{GroupCommit} where the system has no C{syncfs}.
    """

    def test_synchronousBatch(self) -> None:
        """
        A commit run at once lands its file and its record.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        commits = GroupCommit(maybeDeferred, None)
        temporary = downloaded(directory, "a.zip")
        self.successResultOf(commits.commit(temporary, directory / "a.zip", None, "http://oasis/a", "ab"))
        self.assertEqual((directory / "a.zip").read_bytes(), b"a.zip")
        self.assertTrue(record_path(directory / "a.zip").exists())
        self.assertFalse(temporary.exists())

    def test_missingTemporaryFailsOnlyItself(self) -> None:
        """
        A temporary file that is gone fails its own commit; the others of
        its group land.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        commits = GroupCommit(Held(), None)
        run = commits.run
        assert isinstance(run, Held)
        first = commits.commit(
            downloaded(directory, "a.zip"), directory / "a.zip", None, "http://oasis/a", "ab"
        )
        missing = directory / ".b.zip.part-1-0"
        gone = commits.commit(missing, directory / "b.zip", None, "http://oasis/b", "ab")
        kept = commits.commit(
            downloaded(directory, "c.zip"), directory / "c.zip", None, "http://oasis/c", "ab"
        )
        run.release()
        self.successResultOf(first)
        run.release()  # b and c, one group
        self.failureResultOf(gone, FileNotFoundError)
        self.successResultOf(kept)
        self.assertEqual((directory / "c.zip").read_bytes(), b"c.zip")
        self.assertFalse((directory / "b.zip").exists())

    def test_realSync(self) -> None:
        """
        With the system's own C{syncfs} (where it has one), commits run at
        once land their files.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        commits = GroupCommit(maybeDeferred)
        done = [
            commits.commit(downloaded(directory, name), directory / name, None, "http://oasis/", "ab")
            for name in ("a.zip", "b.zip")
        ]
        for d in done:
            self.successResultOf(d)
        self.assertEqual((directory / "b.zip").read_bytes(), b"b.zip")


class DeadlineTests(SynchronousTestCase):
    """
    A file is not put in place past the deadline of the lease of the claim
    that fetched it: another worker may hold the task by then.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.now = 1000.0

    def commit(self, commits: GroupCommit, deadline: float) -> Deferred[None]:
        """
        Commit a downloaded C{a.zip} under a lease running out at
        C{deadline}.
        """
        return commits.commit(
            downloaded(self.directory, "a.zip"),
            self.directory / "a.zip",
            None,
            "http://oasis/a",
            "ab",
            lambda: deadline,
        )

    def test_pastDeadlinePipelined(self) -> None:
        """
        Past the deadline when the thread comes to rename it, a file is
        refused with L{LeaseRanOut}, and nothing is put in place.
        """
        held = Held()
        commits = GroupCommit(held, Syncs(), wall=lambda: self.now)
        done = self.commit(commits, 1010.0)
        self.now = 1011.0
        held.release()
        self.failureResultOf(done, LeaseRanOut)
        self.assertFalse((self.directory / "a.zip").exists())
        self.assertFalse(record_path(self.directory / "a.zip").exists())

    def test_pastDeadlineFileByFile(self) -> None:
        """
        Without C{syncfs} too, a file past its deadline is refused.
        """
        commits = GroupCommit(maybeDeferred, None, wall=lambda: self.now)
        self.failureResultOf(self.commit(commits, 999.0), LeaseRanOut)
        self.assertFalse((self.directory / "a.zip").exists())

    def test_withinDeadline(self) -> None:
        """
        Within its deadline, a file is put in place.
        """
        commits = GroupCommit(maybeDeferred, None, wall=lambda: self.now)
        self.successResultOf(self.commit(commits, 1001.0))
        self.assertEqual((self.directory / "a.zip").read_bytes(), b"a.zip")
