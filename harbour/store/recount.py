"""
The task counts rebuilt from the tasks' listings.

A report's counts (C{c:<report>}, see L{harbour.store.tasks}) move with
every transition, in the script that makes it.  A script that fails
halfway (Redis keeps what it wrote before an error: a key of another type
under the prefix, another program's, say) may leave them wrong, and no
transition puts them right.  The listings (C{s:<state>:<report>}) are what
they count: L{recount} sets each report's counts to its listings' sizes,
one script per report (a few commands each), so no script runs long.  A
hub's store recounts as it starts (L{harbour.store.connection}), so that
counts left wrong by a fault are right again at the next start once the
fault is gone.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.interfaces import IRedis
from harbour.store.keys import FIXED_KEYS
from harbour.store.scripts import clock_argument, load_script

RECOUNT = load_script("recount")

#: What L{recount} found wrong: {report: {state: (what its count said,
#: its count now)}}.
Recounted = dict[str, dict[str, tuple[str, int]]]


@inlineCallbacks
def recount(redis: IRedis, prefix: str) -> Generator[Deferred[Any], Any, Recounted]:
    """
    Set every report's counts to the sizes of its listings.

    @param prefix: The store's prefix (see L{harbour.store.keys}).
    @return: A L{Deferred} firing with the counts that were wrong: none
        when every count followed its tasks.
    """
    keys = [prefix + name for name in FIXED_KEYS]
    wrong: Recounted = {}
    for report in sorted((yield redis.execute("SMEMBERS", prefix + "reports"))):
        flat = yield redis.eval(RECOUNT, keys, [prefix, clock_argument(None), report])
        if flat:
            wrong[report] = {flat[i]: (flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)}
    return wrong


def described(wrong: Recounted) -> str:
    """
    @return: The counts L{recount} put right, for the log: C{"a: pending 1
        (was 0)"}, reports apart with C{"; "}.
    """
    return "; ".join(
        f"{report}: " + ", ".join(f"{state} {now} (was {said})" for state, (said, now) in states.items())
        for report, states in sorted(wrong.items())
    )
