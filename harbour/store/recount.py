"""
The task counts rebuilt from the tasks' listings, and the parse counts from
the tasks.

A report's counts (C{c:<report>}) and parse counts (C{pc:<report>}, see
L{harbour.store.tasks}) move with every transition, in the script that
makes it.  A script that fails halfway (Redis keeps what it wrote before
an error: a key of another type under the prefix, another program's, say)
may leave them wrong, as may a task whose hash is gone; no transition puts
them right.  The listings (C{s:<state>:<report>}) are what the counts
count: L{recount} sets each report's counts to its listings' sizes, one
script per report (a few commands each).  The parse counts have no
listing: L{recount} walks each report's downloaded tasks (the only ones
with a parse state) in steps of L{RECOUNT_BATCH}, one script each, tallying
their parse states while the tasks go on moving (see
C{lua/recount_parse.lua}), and sets the parse counts to the tally.  So no
script runs long.  A hub's store recounts as it starts
(L{harbour.store.connection}), so that counts left wrong by a fault are
right again at the next start once the fault is gone.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.interfaces import IRedis
from harbour.store.keys import FIXED_KEYS
from harbour.store.scripts import clock_argument, load_script

RECOUNT = load_script("recount")
RECOUNT_PARSE = load_script("recount_parse")

#: Downloaded tasks looked at per step of a parse recount (the C{COUNT} of
#: its C{ZSCAN} step).
RECOUNT_BATCH = 2_000

#: What L{recount} found wrong: {report: {state: (what its count said,
#: its count now)}}; a parse state's count as C{"parse <state>"}.
Recounted = dict[str, dict[str, tuple[str, int]]]

#: How L{Recounted} names the count of a parse state.
PARSE = "parse "


@inlineCallbacks
def recount(redis: IRedis, prefix: str) -> Generator[Deferred[Any], Any, Recounted]:
    """
    Set every report's counts to the sizes of its listings, and its parse
    counts to its tasks' parse states.

    @param prefix: The store's prefix (see L{harbour.store.keys}).
    @return: A L{Deferred} firing with the counts that were wrong: none
        when every count followed its tasks.
    """
    keys = [prefix + name for name in FIXED_KEYS]
    wrong: Recounted = {}
    for report in sorted((yield redis.execute("SMEMBERS", prefix + "reports"))):
        flat = yield redis.eval(RECOUNT, keys, [prefix, clock_argument(None), report])
        found = _wrong(flat)
        cursor = "0"
        while True:
            cursor, flat = yield redis.eval(
                RECOUNT_PARSE, keys, [prefix, clock_argument(None), report, str(cursor), str(RECOUNT_BATCH)]
            )
            if str(cursor) == "0":
                break
        found.update({PARSE + state: count for state, count in _wrong(flat).items()})
        if found:
            wrong[report] = found
    return wrong


def _wrong(flat: list[Any]) -> dict[str, tuple[str, int]]:
    """
    @return: A recount script's reply (state, what its count said, its
        count now...) as L{Recounted} holds one report's.
    """
    return {flat[i]: (flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)}


def described(wrong: Recounted) -> str:
    """
    @return: The counts L{recount} put right, for the log: C{"a: pending 1
        (was 0), parse queued 0 (was 1)"}, reports apart with C{"; "}.
    """
    return "; ".join(
        f"{report}: " + ", ".join(f"{state} {now} (was {said})" for state, (said, now) in states.items())
        for report, states in sorted(wrong.items())
    )
