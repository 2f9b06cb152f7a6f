"""
Processes on this host: whether one named by a pid still runs, and the
names this one goes by.
"""

from __future__ import annotations

import hashlib
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
    fields = _stat_fields(pid)
    return not fields or fields[0] != "Z"


def _stat_fields(pid: int) -> list[str]:
    """
    @return: The fields of C{/proc/<pid>/stat} after the command's name
        (whose parentheses may hold spaces), its state first; none if
        there is no such process.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_name() -> str:
    """
    @return: This process's name, the same each time it is asked: on its
        claims in a shared store, in its heartbeats and the events it
        publishes, and in the hub's log, C{Status} and page.  Its host and
        pid, then a word of its own, as C{host:pid~word}: the host name
        and pid alone are shared by pid 1 of every container on one host
        name (with the host's network), and the pid namespace (see
        L{process_mark}) by processes of hosts of one name (the initial
        namespace is numbered alike everywhere), yet each must be told
        from the others: a hub ignores the tables its own name says it
        wrote, and lists one worker per name.  The word digests this
        boot of the machine (L{boot_id}) and L{process_mark}, which
        together no other process shares.
    """
    word = hashlib.blake2s(f"{boot_id()}/{process_mark()}".encode(), digest_size=4).hexdigest()
    return f"{host_name()}:{os.getpid()}~{word}"


def boot_id() -> str:
    """
    @return: What tells this boot of this machine from any other's (Linux's
        random C{boot_id}), or C{""} where there is none.
    """
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


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
        return int(_stat_fields(pid)[19])
    except (IndexError, ValueError):
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


def left_by_dead_process(mark: str, mine: str) -> bool:
    """
    @param mark: A process's L{process_mark}.
    @param mine: This process's (asked once by a caller that checks many).
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
    here, ignored, ignored_too = mine.rsplit(".", 2)
    if place != here or not 0 < pid < 2**22:
        return False
    if not process_alive(pid):
        return True
    return process_started(pid) != started
