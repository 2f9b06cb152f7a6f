"""
Moving a harbour's keys from their names before hash tags (C{harbour:t:<id>})
to their names under the tagged prefix (C{{harbour}:t:<id>}), once, as its
store starts.

The keys are found with C{SCAN} and renamed in batches, each batch one
script, so nothing runs long.  Only keys of the exact names and types the
older store wrote are moved (see L{harbour.store.keys.legacy_key_type}):
another harbour on the same Redis whose prefix begins with this one's
(C{harbour:s} beside C{harbour}) keeps its keys.  A key is renamed only if
it is still there and its new name is free: two processes starting
together, or one starting again after being stopped halfway, move each key
once and lose none.  Only
when a scan has finished is the move marked done (C{P keys:tagged}), so
later starts skip it.  A key whose new name is taken already (a process of
this version wrote it meanwhile) is left under its old name and logged.

Every harbour process of an older version sharing the Redis must be
stopped before the first process of this version starts: an older process
still running after the move would go on writing under the old names,
beside the moved keys, and its work would be lost to this version (no
rolling upgrade across this change).

Old stores ran on one Redis (their scripts declared no keys, so could not
run on Redis Cluster): the move renames across slots there, harmlessly.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.interfaces import IRedis
from harbour.store.keys import legacy_key_type

#: Set (under the new prefix) once every old key has been moved.
MARKER = "keys:tagged"

#: Keys asked for per C{SCAN} call, and so at most renamed per script.
BATCH = 500

#: Rename each of the first half of KEYS to the name at the same place in
#: the second half, if it is still there with the type at the same place
#: in ARGV (gone: moved by another process; another type: not harbour's),
#: unless the new name is taken.  Returns {renamed, {old names left because
#: taken}}.
MOVE = """
local n = #KEYS / 2
local moved, taken = 0, {}
for i = 1, n do
  local old, new = KEYS[i], KEYS[i + n]
  if redis.call('TYPE', old).ok == ARGV[i] then
    if redis.call('EXISTS', new) == 0 then
      redis.call('RENAME', old, new)
      moved = moved + 1
    else
      table.insert(taken, old)
    end
  end
end
return {moved, taken}
"""


def glob_escape(text: str) -> str:
    """
    @return: C{text} as a Redis glob pattern that matches only itself.
    """
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


@attr.s(frozen=True, eq=False)
class KeyMigration:
    """
    Moves the keys under C{legacy} (C{harbour:}) to C{prefix}
    (C{{harbour}:}).
    """

    log = Logger()

    redis: IRedis = attr.ib()
    legacy: str = attr.ib()
    prefix: str = attr.ib()

    @inlineCallbacks
    def run(self) -> Generator[Deferred[Any], Any, int]:
        """
        Move every old key, unless that was done already.

        @return: A L{Deferred} firing with how many keys this call moved.
        """
        if self.legacy == self.prefix or (yield self.redis.execute("GET", self.prefix + MARKER)):
            return 0
        reports = yield self._reports()
        pattern = glob_escape(self.legacy) + "*"
        cursor, moved, taken = "0", 0, []
        while True:
            cursor, found = yield self.redis.execute("SCAN", cursor, "MATCH", pattern, "COUNT", BATCH)
            types = {}
            for key in found:
                wanted = legacy_key_type(key[len(self.legacy) :], reports)
                if wanted is not None:
                    types[key] = wanted
            old = sorted(types)
            if old:
                if not moved:
                    self.log.info(
                        "moving keys from {legacy}* to {prefix}* (hash-tagged names)",
                        legacy=self.legacy,
                        prefix=self.prefix,
                        service="store",
                    )
                new = [self.prefix + key[len(self.legacy) :] for key in old]
                count, left = yield self.redis.eval(MOVE, old + new, [types[key] for key in old])
                moved += int(count)
                taken += left
            if str(cursor) == "0":
                break
        if taken:
            self.log.warn(
                "{count} keys left under {legacy}*: their new names were taken already ({keys})",
                count=len(taken),
                legacy=self.legacy,
                keys=", ".join(taken[:10]),
                service="store",
            )
        if moved:
            self.log.info("moved {count} keys to {prefix}*", count=moved, prefix=self.prefix, service="store")
        yield self.redis.execute("SET", self.prefix + MARKER, "1")
        return moved

    @inlineCallbacks
    def _reports(self) -> Generator[Deferred[Any], Any, frozenset[str]]:
        """
        @return: A L{Deferred} firing with the older store's reports: the
            names in its C{reports} set, and in the new one's (a move
            begun before may have moved the set already).
        """
        reports: set[str] = set()
        for key in (self.legacy + "reports", self.prefix + "reports"):
            # Another program's key of that name is none of harbour's.
            if (yield self.redis.execute("TYPE", key)) == "set":
                reports.update((yield self.redis.execute("SMEMBERS", key)))
        return frozenset(reports)
