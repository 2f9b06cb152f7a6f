"""
Tests for L{harbour.services.files}' group commit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.files import GroupCommit, record_path


class GroupCommitTests(SynchronousTestCase):
    """
    Tests for L{GroupCommit}.
    """

    def test_failsPerFile(self) -> None:
        """
        In a batch, a file whose rename fails (its name is taken by a
        directory) fails alone: the others of the batch land, with their
        records, and their commits succeed.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        held: list[tuple[Deferred[None], Callable[..., Any], tuple[object, ...]]] = []

        def later(f: Callable[..., Any], *args: object) -> Deferred[Any]:
            d: Deferred[None] = Deferred()
            held.append((d, f, args))
            return d.addCallback(lambda ignored: f(*args))

        commits = GroupCommit(later)
        names = ["a.zip", "b.zip", "c.zip"]
        (directory / "c.zip").mkdir()
        (directory / "c.zip" / "inside").write_bytes(b"")
        done: list[Deferred[None]] = []
        for name in names:
            temporary = directory / f".{name}.part-1-0"
            temporary.write_bytes(name.encode())
            done.append(commits.commit(temporary, directory / name, None, f"http://oasis/{name}", "ab"))
        # The first batch holds a.zip alone; b.zip and c.zip gather for the next.
        held.pop(0)[0].callback(None)
        self.assertEqual(len(held), 1)
        held.pop(0)[0].callback(None)
        self.assertIsNone(self.successResultOf(done[0]))
        self.assertIsNone(self.successResultOf(done[1]))
        self.failureResultOf(done[2], OSError)
        self.assertEqual((directory / "b.zip").read_bytes(), b"b.zip")
        self.assertTrue(record_path(directory / "b.zip").exists())
        self.assertFalse(record_path(directory / "c.zip").exists())

    def test_synchronousBatch(self) -> None:
        """
        A commit run at once lands its file.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        temporary = directory / ".a.zip.part-1-0"
        temporary.write_bytes(b"data")
        commits = GroupCommit(maybeDeferred)
        self.successResultOf(commits.commit(temporary, directory / "a.zip", None, "http://oasis/a", "ab"))
        self.assertEqual((directory / "a.zip").read_bytes(), b"data")
