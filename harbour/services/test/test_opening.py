"""
Tests of L{harbour.services.opening}: the temporary files of first claims,
opened a batch per thread call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.opening import Openings


class HeldThreads:
    """
    Runs nothing until the test says: each call waits in L{calls}.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        @return: A L{Deferred} that L{run} fires.
        """
        d: Deferred[Any] = Deferred()
        self.calls.append((f, args, d))
        return d

    def run(self) -> Any:
        """
        Run the oldest call waiting, as a thread would.

        @return: What it returned.
        """
        f, args, d = self.calls.pop(0)
        result = f(*args)
        d.callback(result)
        return result


class OpeningsTests(SynchronousTestCase):
    """
    Tests for L{Openings}.
    """

    def setUp(self) -> None:
        self.threads = HeldThreads()
        self.openings = Openings(self.threads)
        self.directory = Path(self.mktemp())

    def pair(self, name: str) -> tuple[Path, Path]:
        """
        @return: A target in a directory not made yet, and its temporary file.
        """
        target = self.directory / "day" / f"{name}.zip"
        return target, target.with_name(f".{name}.zip.part-1-0")

    def opened(self, d: Deferred[IO[bytes] | None]) -> IO[bytes]:
        """
        @return: The file C{d} fired with, failing the test if it fired
            with none.
        """
        file = self.successResultOf(d)
        if file is None:
            self.fail("no file was opened")
        return file

    def test_aloneAtOnce(self) -> None:
        """
        An opening asked for while no call is under way goes at once, alone:
        the directory is made and the temporary file opened for writing.
        """
        target, temporary = self.pair("a")
        d = self.openings.open(target, temporary)
        self.assertEqual(len(self.threads.calls), 1)
        self.assertNoResult(d)
        self.threads.run()
        with self.opened(d) as file:
            self.assertEqual(file.name, str(temporary))
            file.write(b"x")
        self.assertEqual(temporary.read_bytes(), b"x")

    def test_waitingGoTogether(self) -> None:
        """
        Openings asked for while a call is under way go together in the
        next, once it is over, each answered with its own file.
        """
        first = self.openings.open(*self.pair("a"))
        later = [self.openings.open(*self.pair(name)) for name in "bcd"]
        self.assertEqual(len(self.threads.calls), 1)
        self.threads.run()
        [(function, (files,), waiting)] = self.threads.calls
        self.assertEqual(files, [self.pair(name) for name in "bcd"])
        self.threads.run()
        for d, name in zip([first, *later], "abcd"):
            with self.opened(d) as file:
                self.assertEqual(file.name, str(self.pair(name)[1]))

    def test_fileInPlace(self) -> None:
        """
        Where a file is already in place, nothing is opened: the opening
        fires with L{None}, for the caller to judge that file.
        """
        target, temporary = self.pair("a")
        target.parent.mkdir(parents=True)
        target.write_bytes(b"in place")
        d = self.openings.open(target, temporary)
        self.threads.run()
        self.assertIsNone(self.successResultOf(d))
        self.assertFalse(temporary.exists())

    def test_failureIsItsOwn(self) -> None:
        """
        An opening that fails fails alone, with its error: those in the same
        call get their files.
        """
        first = self.openings.open(*self.pair("a"))
        blocked = Path(self.mktemp())
        blocked.write_bytes(b"a file where a directory should be")
        failing = self.openings.open(blocked / "x.zip", blocked / ".x.zip.part-1-0")
        fine = self.openings.open(*self.pair("b"))
        self.threads.run()
        self.threads.run()
        self.assertIsInstance(self.failureResultOf(failing, FileExistsError).value, FileExistsError)
        self.opened(first).close()
        with self.opened(fine) as file:
            self.assertEqual(file.name, str(self.pair("b")[1]))

    def test_cancelledWaiting(self) -> None:
        """
        An opening cancelled while it waits fails with L{CancelledError} and
        is never asked of a thread.
        """
        first = self.openings.open(*self.pair("a"))
        target, temporary = self.pair("b")
        d = self.openings.open(target, temporary)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.threads.run()
        self.opened(first).close()
        self.assertEqual(self.threads.calls, [])
        self.assertFalse(temporary.exists())

    def test_cancelledUnderWay(self) -> None:
        """
        An opening cancelled while its call is under way fails with
        L{CancelledError} at once; the file opened for it is then closed
        and removed, in a thread.
        """
        target, temporary = self.pair("a")
        d = self.openings.open(target, temporary)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        [file] = self.threads.run()
        self.assertTrue(file.closed)
        self.assertTrue(temporary.exists())
        [(function, args, waiting)] = self.threads.calls
        self.assertEqual(args, (str(temporary),))
        self.threads.run()
        self.assertFalse(temporary.exists())
