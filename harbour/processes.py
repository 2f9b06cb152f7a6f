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
    @return: This host's name.
    """
    return socket.gethostname()


def process_started(pid: int) -> int | None:
    """
    @return: When process C{pid} started, in clock ticks since boot (what
        tells it from an earlier process that had the same pid), or
        L{None} if there is no such process.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_mark() -> str:
    """
    @return: What names this process in the names of the files it writes
        for a while, for L{left_by_dead_process}: its host, its pid
        namespace, its pid and when it started, as C{host~ns.pid.start}.
    """
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    pid = os.getpid()
    return f"{host_name()}~{namespace}.{pid}.{process_started(pid) or 0}"


def left_by_dead_process(mark: str) -> bool:
    """
    @param mark: A process's L{process_mark}.
    @return: Whether what that process left behind belongs to nobody any
        more: it ran on this host, in this pid namespace, and its pid now
        names no process, or another one (a restart that got the same pid,
        as pid 1 of a container does).  What another host's or namespace's
        process left is never known to be dead here.
    """
    try:
        place, pid_text, started_text = mark.rsplit(".", 2)
        pid, started = int(pid_text), int(started_text)
    except ValueError:
        return False
    here, ignored, ignored_too = process_mark().rsplit(".", 2)
    if place != here or not 0 < pid < 2**22:
        return False
    if not process_alive(pid):
        return True
    return process_started(pid) != started
