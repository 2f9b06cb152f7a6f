"""
Where the publications follower keeps what it learned, so that a restart
reads the log on from where the last run stopped: two hashes in Redis under
the key prefix, C{P pub} (the source and how far the log was read) and
C{P pub:days} (the newest published day of each queryname and market).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.interfaces import IRedis
from harbour.services.knowledge import Knowledge
from harbour.store.tasks import pairs


@attr.s(frozen=True, eq=False)
class KnowledgeStore:
    """
    The follower's L{Knowledge} in Redis.
    """

    redis: IRedis = attr.ib()
    prefix: str = attr.ib()

    @property
    def _key(self) -> str:
        return self.prefix + "pub"

    @inlineCallbacks
    def load(self, known: Knowledge, base_url: str) -> Generator[Deferred[Any], Any, None]:
        """
        Take up into C{known} what an earlier run learned from C{base_url};
        what it learned from another source is forgotten.
        """
        state = pairs((yield self.redis.execute("HGETALL", self._key)))
        days = pairs((yield self.redis.execute("HGETALL", self._key + ":days"))) if state else {}
        if not known.restore(base_url, state, days):
            yield self.redis.execute("DEL", self._key, self._key + ":days")

    @inlineCallbacks
    def save(self, known: Knowledge, base_url: str) -> Generator[Deferred[Any], Any, None]:
        """
        Keep C{known}, learned from C{base_url}.
        """
        state, days = known.saved(base_url)
        yield self.redis.execute("HSET", self._key, *state)
        if days:
            yield self.redis.execute("HSET", self._key + ":days", *days)
