"""
The temporary files of first claims, opened a batch per thread call.

Each download writes to a temporary file beside its target, created in a
thread: creating a name waits on the file system's metadata updates, which
a commit's sync may keep busy.  For a small answer the thread call costs
more than the creation (waking a thread, then the reactor, each taking
the interpreter's lock in turn), so the files of claims made together are
opened together: one call under way at a time opens those asked for
meanwhile (L{harbour.services.batching.Batches}).

Only first claims go this way.  A later claim may find files of earlier
ones to clean up, and any claim may find a file already in place to
verify, which can take long: those go through
L{harbour.services.files.prepare} in a thread call of their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import attr
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.services.batching import TOGETHER, Batches
from harbour.services.files import InThread, open_fresh_all

#: The most files opened in one thread call.
MOST_AT_ONCE = 32

_Opened = IO[bytes] | None | Exception


@attr.s(eq=False)
class Openings:
    """
    Opens the temporary files of first claims in batches.

    @ivar in_thread: Runs a function in a thread.
    """

    log = Logger()

    in_thread: InThread = attr.ib()
    _batches: Batches[tuple[Path, Path], _Opened] = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._batches = Batches(self._open_all, MOST_AT_ONCE, self._unwanted)

    def open(self, target: Path, temporary: Path) -> Deferred[IO[bytes] | None]:
        """
        Make C{target}'s directory and open C{temporary}, unless a file is
        already at C{target} (see L{harbour.services.files.open_fresh}),
        with the next thread call.

        @return: A L{Deferred} firing with the open file, or with L{None}
            if a file is in place, or failing as the opening failed.
            Cancelled, it fails with L{CancelledError} at once, and a file
            opened for it meanwhile is closed and removed.
        """
        return self._batches.ask((target, temporary), TOGETHER).addCallback(_raised)

    def _open_all(self, files: list[tuple[Path, Path]]) -> Deferred[list[_Opened]]:
        """
        Open C{files}, (target, temporary) pairs, in one thread call.

        @return: A L{Deferred} firing with what each opening gave.
        """
        return self.in_thread(open_fresh_all, files)

    def _unwanted(self, opened: _Opened) -> None:
        """
        Close and remove a file opened for a request that was cancelled
        meanwhile.
        """
        if opened is None or isinstance(opened, Exception):
            return
        opened.close()

        def failed(failure: Failure) -> None:
            # It is a temporary file: prepare or the janitor removes it.
            self.log.failure("cannot remove {path}", failure, path=opened.name, service="download")

        self.in_thread(os.unlink, opened.name).addErrback(failed)


def _raised(opened: _Opened) -> IO[bytes] | None:
    """
    @return: C{opened}, unless it is the exception its opening raised:
        then that is raised.
    """
    if isinstance(opened, Exception):
        raise opened
    return opened
