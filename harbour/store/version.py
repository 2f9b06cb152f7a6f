"""
The Redis harbour runs on, how to tell whether it speaks to one, and the
checks the store makes before it is ready (L{check_version},
L{check_eviction}).

harbour needs Redis 5 or later: its scripts write after reading C{TIME},
which Redis replicates safely only by a script's effects (the default from
Redis 5 on).

It also needs a Redis that never evicts its tasks: a task's hash evicted
is a task lost, and the listings, counts and queues that still name it
disagree with it.  A full Redis under C{noeviction} (Redis's default)
refuses writes (C{OOM}) instead, an outage harbour rides out.  The
C{volatile-*} policies (the default of many managed services) evict only
keys with a time to live, which harbour's tasks never have: only its
politeness slots and its hub's lease, so such a Redis is used, with a
warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis

#: The oldest Redis version harbour runs on.
MINIMUM_REDIS = (5, 0, 0)

_VERSION = re.compile(r"^redis_version:(\d+)\.(\d+)\.(\d+)", re.MULTILINE)

#: The one C{maxmemory-policy} harbour runs under.
NO_EVICTION = "noeviction"

_POLICY = re.compile(r"^maxmemory_policy:(\S+)", re.MULTILINE)


#: A value read from an C{INFO} reply.
_V = TypeVar("_V")


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
        "(scripts replicated by their effects)"
    )


def eviction_policy(info: str) -> str | None:
    """
    @param info: The reply to C{INFO memory}.
    @return: The server's C{maxmemory_policy}, or L{None} if the reply does
        not say.
    """
    found = _POLICY.search(info)
    return None if found is None else found.group(1)


#: The policies that evict only keys with a time to live.
VOLATILE = "volatile-"


def evicts(policy: str) -> str | None:
    """
    @return: Why harbour cannot run on a Redis whose C{maxmemory-policy} is
        C{policy}, or L{None} if it can: under C{noeviction}, or a
        C{volatile-*} policy, which never evicts a task.
    """
    if policy == NO_EVICTION or policy.startswith(VOLATILE):
        return None
    return (
        f"its maxmemory-policy is {policy}: harbour needs {NO_EVICTION} "
        "(a full Redis that evicts keys loses tasks; under noeviction it refuses writes, "
        "an outage harbour waits out)"
    )


def refused_command(message: str) -> bool:
    """
    @return: Whether an error reply says the command itself is refused
        (unknown or renamed, or not allowed to this ACL user), rather than
        that Redis cannot answer now.
    """
    return "unknown command" in message or "NOPERM" in message


@inlineCallbacks
def _said(
    redis: IRedis,
    section: str,
    read: Callable[[str], _V | None],
    where: Callable[[], str],
    log: Logger,
    name: str,
    need: str,
) -> Generator[Deferred[Any], Any, _V | None]:
    """
    Ask Redis C{INFO section} for its C{name}.

    @param read: Finds the value in the reply, or L{None} if it is not there.
    @param need: What the value must be: said in the warning if Redis
        refuses the command or does not say it.
    @return: A L{Deferred} firing with the value, or L{None} if Redis
        refuses C{INFO} or does not say it (warned about).
    @raise StoreUnavailable: if Redis cannot answer now.
    """
    try:
        info = yield redis.execute("INFO", section)
    except StoreUnavailable as e:
        if not refused_command(str(e)):
            raise
        # A managed Redis may rename INFO, or an ACL user lack it: not
        # a reason to refuse a Redis that may well do.
        log.warn(
            "cannot check {what} of Redis at {address} ({error}): {need}",
            what=f"the {name}",
            address=where(),
            error=str(e),
            need=need,
            service="store",
        )
        return None
    value = read(info if isinstance(info, str) else info.decode("utf-8", "replace"))
    if value is None:
        log.warn(
            "Redis at {address} does not say its {name}: {need}",
            address=where(),
            name=name,
            need=need,
            service="store",
        )
    return value


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
    need = f"it must be Redis {MINIMUM_REDIS[0]} or later"
    version = yield _said(redis, "server", redis_version, where, log, "version", need)
    if version is None:
        return
    problem = too_old(version)
    if problem is not None:
        raise ConfigurationError(f"Redis at {where()}: {problem}")


@inlineCallbacks
def check_eviction(
    redis: IRedis, where: Callable[[], str], log: Logger
) -> Generator[Deferred[Any], Any, None]:
    """
    Refuse a Redis that evicts any key when full (C{allkeys-*}); warn of
    one that evicts keys with a time to live (C{volatile-*}).  A Redis
    that will not say its policy is used, with a warning.

    @param redis: The Redis to ask (C{INFO memory}).
    @param where: Describes the Redis once it answered, for errors and the
        log.
    @param log: Where the warnings go: the store's own log.
    @raise ConfigurationError: if Redis's C{maxmemory-policy} evicts any
        key.
    @raise StoreUnavailable: if Redis cannot answer now.
    """
    need = f"it must be {NO_EVICTION}"
    policy = yield _said(redis, "memory", eviction_policy, where, log, "maxmemory-policy", need)
    if policy is None:
        return
    problem = evicts(policy)
    if problem is not None:
        raise ConfigurationError(f"Redis at {where()}: {problem}")
    if policy.startswith(VOLATILE):
        log.warn(
            "Redis at {address} evicts keys with a time to live when full ({policy}): harbour's tasks have"
            " none, but its politeness slots and its hub's lease do, and may go; {need} to be safe",
            address=where(),
            policy=policy,
            need=need,
            service="store",
        )
