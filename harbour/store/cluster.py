"""
Redis Cluster: harbour's keys share one hash tag, so they live in one slot
of one node, and harbour talks to that node alone, following no
redirection.  At start the store checks that the node it reaches holds that
slot, and names the one that does if not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis
from harbour.store.version import refused_command

_MOVED = re.compile(r"\bMOVED (\d+) (\S+)")


@inlineCallbacks
def check_cluster(
    redis: IRedis, prefix: str, where: Callable[[], str]
) -> Generator[Deferred[Any], Any, bool]:
    """
    Find whether Redis is a node of a Redis Cluster, and refuse a node
    that would redirect this harbour's keys to another.

    @param redis: The Redis to ask.
    @param prefix: The prefix of every key of this harbour (its hash tag).
    @param where: Describes the Redis, for errors.
    @return: A L{Deferred} firing with whether it is a cluster's node.
    @raise ConfigurationError: For a node that does not hold the keys.
    @raise StoreUnavailable: If Redis cannot answer now.
    """
    try:
        info = yield redis.execute("INFO", "cluster")
    except StoreUnavailable as e:
        # A managed Redis may rename INFO, or an ACL user lack it: then it
        # is taken for what it says it is by answering.
        if refused_command(str(e)):
            return False
        raise
    text = info if isinstance(info, str) else info.decode("utf-8", "replace")
    if "cluster_enabled:1" not in text:
        return False
    try:
        yield redis.execute("EXISTS", prefix + "ids")
    except StoreUnavailable as e:
        moved = _MOVED.search(str(e))
        if moved is None:
            raise
        slot, node = moved.groups()
        raise ConfigurationError(
            f"Redis Cluster node at {where()} does not hold the keys of {prefix} (slot {slot}): "
            f"connect harbour to the node that does, {node} (harbour follows no redirection)"
        ) from None
    return True
