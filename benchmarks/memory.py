"""
How much memory a process holds, as Linux's C{/proc/<pid>/status} says.
"""

from __future__ import annotations

import resource
from pathlib import Path


def status_mb(field: str, pid: int | str = "self") -> float | None:
    """
    @param field: C{VmRSS} (resident now) or C{VmHWM} (its peak).
    @return: C{field} of process C{pid}, in MB; L{None} where there is no
        C{/proc}.
    """
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def peak_rss_mb() -> float:
    """
    @return: This process's peak resident memory, in MB (C{VmHWM}: unlike
        C{ru_maxrss}, it does not carry over the peak of the process that
        forked this one, which Linux carries over exec).
    """
    peak = status_mb("VmHWM")
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak
