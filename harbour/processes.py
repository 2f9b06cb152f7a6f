"""
Processes on this host: whether one named by a pid still runs, and the
name this one goes by.
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
    return f"{socket.gethostname()}:{os.getpid()}"
