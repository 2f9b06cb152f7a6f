"""
A file one process holds for as long as it runs (or until it lets go): an
C{flock} of it, which the system drops when the process ends, however it
ends, so that no holder killed outright leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def hold(path: Path) -> int | None:
    """
    Take the exclusive lock of the file C{path}, made if missing.

    The descriptor is not inherited by the processes this one starts (an
    embedded redis-server left running by a killed holder would otherwise
    keep the lock).

    @return: The descriptor holding the lock (closing it lets go), or
        L{None} if another process holds it.
    @raise OSError: If the file cannot be opened or made.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
