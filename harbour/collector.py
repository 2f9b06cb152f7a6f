"""
How a harbour process runs Python's cyclic garbage collector.

Every file harbour downloads makes and drops a few hundred short-lived
objects (Deferreds, generators, protocol state), so with CPython's default
the youngest generation was collected every few files, and each older
collection scanned again every object made at start-up (modules, the
configuration, the services), which live as long as the process.
"""

from __future__ import annotations

import gc

#: Allocations between two collections of the youngest generation
#: (CPython's default is 700).
YOUNGEST_THRESHOLD = 5000


def tune_collector() -> None:
    """
    Set the collector up for a long-running daemon whose start-up objects
    now exist: the garbage there is collected, then what is left is moved
    out of the collector's sight (C{gc.freeze}: a start-up object later
    dropped is still freed by reference counting, but one in a reference
    cycle stays), and the youngest generation is collected every
    L{YOUNGEST_THRESHOLD} allocations.

    Reference counting still frees nearly everything at once; only cycles
    wait for a collection, a little longer than before.
    """
    gc.collect()
    gc.freeze()
    youngest, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNGEST_THRESHOLD, youngest), middle, oldest)
