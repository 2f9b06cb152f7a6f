"""
The oldest Redis harbour runs on, how to tell which one it speaks to, and
the check the store makes before it is ready (L{check_version}).

harbour needs Redis 5 or later: its scripts pop tasks with C{ZPOPMIN}
(Redis 5) and write after reading C{TIME}, which Redis replicates safely
only by a script's effects (the default from Redis 5 on).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis

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


def refused_command(message: str) -> bool:
    """
    @return: Whether an error reply says the command itself is refused
        (unknown or renamed, or not allowed to this ACL user), rather than
        that Redis cannot answer now.
    """
    return "unknown command" in message or "NOPERM" in message


@inlineCallbacks
def check_version(
    redis: IRedis, where: Callable[[], str], log: Logger
) -> Generator[Deferred[Any], Any, None]:
    """
    Refuse a Redis older than harbour runs on.  A Redis that will not say
    its version is used, with a warning.

    @param redis: The Redis to ask (C{INFO server}).
    @param where: Describes the Redis once it answered, for errors and the
        log (a Sentinel's master may have moved meanwhile).
    @param log: Where the warnings go: the store's own log.
    @raise ConfigurationError: if Redis is too old.
    @raise StoreUnavailable: if Redis cannot answer now.
    """
    try:
        info = yield redis.execute("INFO", "server")
    except StoreUnavailable as e:
        if not refused_command(str(e)):
            raise
        # A managed Redis may rename INFO, or an ACL user lack it: not
        # a reason to refuse a Redis that may well be recent enough.
        log.warn(
            "cannot check the version of Redis at {address} ({error}): it must be Redis {minimum} or later",
            address=where(),
            error=str(e),
            minimum=MINIMUM_REDIS[0],
            service="store",
        )
        return
    version = redis_version(info if isinstance(info, str) else info.decode("utf-8", "replace"))
    if version is None:
        log.warn(
            "Redis at {address} does not say its version: it must be Redis {minimum} or later",
            address=where(),
            minimum=MINIMUM_REDIS[0],
            service="store",
        )
        return
    problem = too_old(version)
    if problem is not None:
        raise ConfigurationError(f"Redis at {where()}: {problem}")
