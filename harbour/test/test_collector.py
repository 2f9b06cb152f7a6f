"""
Tests of L{harbour.collector}.
"""

from __future__ import annotations

import gc

from twisted.trial.unittest import SynchronousTestCase

from harbour.collector import YOUNGEST_THRESHOLD, tune_collector


class TuneCollectorTests(SynchronousTestCase):
    """
    L{tune_collector}.
    """

    def setUp(self) -> None:
        before = gc.get_threshold()

        def restore() -> None:
            gc.unfreeze()
            gc.set_threshold(*before)

        self.addCleanup(restore)

    def test_tuned(self) -> None:
        """
        The objects alive now are frozen, and the youngest generation is
        collected every L{YOUNGEST_THRESHOLD} allocations; the older
        generations keep their thresholds.
        """
        gc.set_threshold(700, 10, 11)
        alive: list[object] = []
        self.assertTrue(any(o is alive for o in gc.get_objects()))
        tune_collector()
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertFalse(any(o is alive for o in gc.get_objects()))
        self.assertEqual(gc.get_threshold(), (YOUNGEST_THRESHOLD, 10, 11))

    def test_higher_kept(self) -> None:
        """
        A youngest threshold set higher already is kept.
        """
        gc.set_threshold(YOUNGEST_THRESHOLD * 2, 10, 10)
        tune_collector()
        self.assertEqual(gc.get_threshold()[0], YOUNGEST_THRESHOLD * 2)
