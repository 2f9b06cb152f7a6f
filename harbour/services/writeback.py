"""
Starting the write-back of a large answer while it arrives.

The sync that commits an answer (see L{harbour.services.commit}) waits for
every byte of it still to be written to disk.  For a large answer that is
most of it, unless the kernel was asked to start writing as the bytes came:
every few megabytes, a thread asks it to (C{sync_file_range(2)}, which
starts the writing and does not wait for it), one request per answer at
a time: a request still under way when the next is due grows the next.
Four 200 MB answers took 1.7 s with the whole write-back left to the
sync, and 1.5 s so.  Where the system has no C{sync_file_range} (it is
Linux's), the sync does it all.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from typing import IO

import attr
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.services.files import InThread

#: Starts the write-back of a range of an open file: C{sync_file_range(2)}.
SyncFileRange = Callable[[int, int, int, int], int]
#: C{sync_file_range}'s flag to start writing the range, without waiting.
START_WRITING = 2
#: How many bytes of an answer are written before their write-back starts.
EVERY = 8 << 20


@functools.cache
def load_sync_file_range() -> SyncFileRange | None:
    """
    @return: Linux's C{sync_file_range(2)}, or L{None} where there is none.
    """
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _start_writing(sync_file_range: SyncFileRange, fd: int, offset: int, length: int) -> None:
    """
    In a thread: start writing C{length} bytes from C{offset} of the file
    open as C{fd} (a descriptor of its own, closed here).  It is advice:
    a refusal (C{-1}, with C{errno} set) changes nothing but the time the
    sync takes, so it is not reported.
    """
    try:
        sync_file_range(fd, offset, length, START_WRITING)
    finally:
        os.close(fd)


@attr.s(eq=False)
class Writeback:
    """
    Starts the write-back of one answer's file every L{EVERY} bytes (see
    the module's docstring).

    @ivar run: Runs a function in a thread.
    @ivar every: How many bytes are written before their write-back starts.
    @ivar sync_file_range: C{sync_file_range(2)}, or L{None} to leave the
        write-back to the sync.
    """

    log = Logger()

    run: InThread = attr.ib()
    every: int = attr.ib(default=EVERY)
    sync_file_range: SyncFileRange | None = attr.ib(factory=load_sync_file_range)
    _written: int = attr.ib(default=0, init=False)
    _started: int = attr.ib(default=0, init=False)
    _running: bool = attr.ib(default=False, init=False)

    def wrote(self, file: IO[bytes], size: int) -> None:
        """
        C{size} more bytes were written to C{file}.  It never raises: the
        write-back is advice, and the answer is whole without it.
        """
        self._written += size
        if self.sync_file_range is None or self._running or self._written - self._started < self.every:
            return
        try:
            file.flush()
            # A descriptor of its own: the file may be closed before the thread runs.
            fd = os.dup(file.fileno())
        except (OSError, ValueError):
            return
        offset, self._started = self._started, self._written
        self._running = True
        d = self.run(_start_writing, self.sync_file_range, fd, offset, self._written - offset)
        d.addErrback(self._failed).addBoth(self._done)

    def _failed(self, failure: Failure) -> None:
        self.log.failure("cannot start a write-back", failure, service="download")

    def _done(self, ignored: None) -> None:
        self._running = False
