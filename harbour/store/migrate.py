"""
Moving a harbour's keys from their names before hash tags (C{harbour:t:<id>})
to their names under the tagged prefix (C{{harbour}:t:<id>}), once, as its
store starts.

The keys are found with C{SCAN} and renamed in batches, each batch one
script, so nothing runs long.  A key is renamed only if it is still there
and its new name is free: two processes starting together, or one starting
again after being stopped halfway, move each key once and lose none.  Only
when a scan has finished is the move marked done (C{P keys:tagged}), so
later starts skip it.  A key whose new name is taken already (a process of
this version wrote it meanwhile) is left under its old name and logged.

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
from harbour.store.keys import is_legacy_key

#: Set (under the new prefix) once every old key has been moved.
MARKER = "keys:tagged"

#: Keys asked for per C{SCAN} call, and so at most renamed per script.
BATCH = 500

#: Rename each of the first half of KEYS to the name at the same place in
#: the second half, unless it is gone (moved by another process) or the new
#: name is taken.  Returns {renamed, {old names left because taken}}.
MOVE = """
local n = #KEYS / 2
local moved, taken = 0, {}
for i = 1, n do
  local old, new = KEYS[i], KEYS[i + n]
  if redis.call('EXISTS', old) == 1 then
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
        pattern = glob_escape(self.legacy) + "*"
        cursor, moved, taken = "0", 0, []
        while True:
            cursor, found = yield self.redis.execute("SCAN", cursor, "MATCH", pattern, "COUNT", BATCH)
            old = sorted({key for key in found if is_legacy_key(key[len(self.legacy) :])})
            if old:
                if not moved:
                    self.log.info(
                        "moving keys from {legacy}* to {prefix}* (hash-tagged names)",
                        legacy=self.legacy,
                        prefix=self.prefix,
                        service="store",
                    )
                new = [self.prefix + key[len(self.legacy) :] for key in old]
                count, left = yield self.redis.eval(MOVE, old + new, [])
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
