"""
Processes on this host: whether one named by a pid still runs, and the
names this one goes by.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_alive(pid: int) -> bool:
    """
    @return: Whether C{pid} is a running process (a zombie is not: an
        orphan's zombie lingers where nothing reaps it).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return status != "Z"


def process_name() -> str:
    """
    @return: This process's name on its claims in a shared store: its host
        and pid.
    """
    return f"{host_name()}:{os.getpid()}"


def host_name() -> str:
    """
    @return: This host's name, as this process puts it in the names of
        the files it writes for a while.
    """
    return socket.gethostname()


def left_by_dead_process(host: str, pid: int) -> bool:
    """
    @return: Whether what process C{pid} of C{host} left behind belongs to
        nobody any more: that process ran on this host, is not this one,
        and is gone.  What another host's process left is never known to
        be dead here.
    """
    return host == host_name() and pid != os.getpid() and not process_alive(pid)
