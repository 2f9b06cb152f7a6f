"""
The oldest Redis harbour runs on, and how to tell which one it speaks to.

harbour needs Redis 5 or later: its scripts pop tasks with C{ZPOPMIN}
(Redis 5) and write after reading C{TIME}, which Redis replicates safely
only by a script's effects (the default from Redis 5 on).
"""

from __future__ import annotations

import re

#: The oldest Redis version harbour runs on.
MINIMUM_REDIS = (5, 0, 0)

_VERSION = re.compile(r"^redis_version:(\d+)\.(\d+)\.(\d+)", re.MULTILINE)


def redis_version(info: str) -> tuple[int, int, int] | None:
    """
    @param info: The reply to C{INFO server}.
    @return: The server's C{redis_version}, or L{None} if the reply does
        not say.
    """
    found = _VERSION.search(info)
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def too_old(version: tuple[int, int, int]) -> str | None:
    """
    @return: Why harbour cannot run on Redis C{version}, or L{None} if it
        can.
    """
    if version >= MINIMUM_REDIS:
        return None
    shown = ".".join(str(part) for part in version)
    needed = ".".join(str(part) for part in MINIMUM_REDIS[:1])
    return (
        f"Redis {shown} is too old: harbour needs Redis {needed} or later "
        "(ZPOPMIN, and scripts replicated by their effects)"
    )
