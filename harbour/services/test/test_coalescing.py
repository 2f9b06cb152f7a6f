"""
Tests for L{harbour.services.coalescing}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.coalescing import Coalesced


class CoalescedTests(SynchronousTestCase):
    """
    L{Coalesced} runs its work one run at a time.
    """

    def test_askedMeanwhileRunsOnceMore(self) -> None:
        """
        Asked three times while a run is under way, the work runs once
        more after it; every caller hears once the runs are over.
        """
        runs: list[Deferred[None]] = []

        def work() -> Deferred[None]:
            runs.append(Deferred())
            return runs[-1]

        coalesced = Coalesced(work)
        first = coalesced()
        later = [coalesced() for ignored in range(3)]
        self.assertEqual(len(runs), 1)
        runs[0].callback(None)
        self.assertEqual(len(runs), 2)
        self.assertNoResult(first)
        runs[1].callback(None)
        for d in [first, *later]:
            self.successResultOf(d)
        self.successResultOf(coalesced.idle())

    def test_synchronousWork(self) -> None:
        """
        Work that ends at once leaves nothing under way: the next call runs
        it again.
        """
        count = [0]

        def work() -> Deferred[None]:
            count[0] += 1
            d: Deferred[None] = Deferred()
            d.callback(None)
            return d

        coalesced = Coalesced(work)
        self.successResultOf(coalesced())
        self.successResultOf(coalesced())
        self.assertEqual(count[0], 2)
