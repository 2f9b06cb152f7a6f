"""
Making one file or directory durable: the one place every module that
commits something to disk syncs a name or a file's bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def sync_path(path: Path, fsync: Callable[[int], None] = os.fsync) -> None:
    """
    In a thread: make the file or directory at C{path} durable: a file's
    bytes, a directory's names.

    @param fsync: Syncs an open descriptor: L{os.fsync}, or
        L{os.fdatasync} for a file's bytes without its times, or a test's
        watcher.
    @raise OSError: if it cannot be opened or synced.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fsync(descriptor)
    finally:
        os.close(descriptor)
