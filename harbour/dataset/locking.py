"""
The exclusive lock of one window of a report, between processes (sharing a
data directory) and between threads of one process: an C{flock} of a file
C{.<part name>.lock} in the report's directory, which its holder removes
on release.  A file removed while another waits for it locks nothing any
more, so a taker checks that the file it locked is still the one in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

#: The suffix of a window's lock file.
LOCK_SUFFIX = ".lock"


def remove_lock_if_free(path: Path) -> None:
    """
    Remove a lock file unless someone holds it: only its holder may remove
    it, lest a second process lock a new file of the same name meanwhile.

    @raise OSError: If the file cannot be opened or removed.
    """
    descriptor = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        if os.fstat(descriptor).st_ino == path.stat().st_ino:
            path.unlink()
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def window_lock(report_dir: Path, name: str) -> Iterator[Path]:
    """
    Hold the exclusive lock of one window of a report (between processes,
    and between threads of one process) while its files change.  The lock
    file goes when the lock is released.  Blocks: run it in a thread.

    @param report_dir: The report's directory, which the caller made: if
        it went since (another window's aborted parse removes the report's
        directory it made, once empty), it is made again.
    @param name: The window's part name (L{harbour.dataset.write.part_name}).
    @return: A context manager giving the lock file's path.
    """
    path = report_dir / f".{name}{LOCK_SUFFIX}"
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # Gone just now, as it was empty: the caller would take the
            # error for its zip gone from this host.  (Without the
            # tables' directory, the error stands.)
            report_dir.mkdir(exist_ok=True)
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            # Its holder removes the file on release: the file locked here
            # may be one that is gone, which locks nothing any more.
            if os.fstat(descriptor).st_ino == path.stat().st_ino:
                break
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
    try:
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            # Released even if the file cannot go: the next holder locks it.
            os.close(descriptor)
