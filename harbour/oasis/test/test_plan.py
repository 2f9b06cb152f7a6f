"""
Tests for L{harbour.oasis.plan}.
"""

from __future__ import annotations

import datetime

from twisted.trial.unittest import SynchronousTestCase

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.plan import plan

TODAY = datetime.date(2026, 1, 15)


class PublishedAheadPlanTests(SynchronousTestCase):
    """
    L{plan} of a report OASIS serves only current data of and publishes
    ahead (C{TRNS_CURR_USAGE}, six days).
    """

    def _plan(self, end: str) -> tuple[int, int]:
        """
        @return: The requests and the requests made again every day of the
            report asked from C{TODAY} to C{end}.
        """
        usage = ReportTopic(name="usage", queryname="TRNS_CURR_USAGE", kind="single_zip", params={})
        [planned] = plan(ManifestTopic(start="2025-01-01", end=end), [usage], TODAY)
        return planned.requests, planned.again_daily

    def test_againCappedAtDaysPublished(self) -> None:
        """
        Only the days ahead its publication delay makes out are made again
        every day, however far the range ends: the later ones are asked
        once each, on the day they are first published.
        """
        self.assertEqual(self._plan("+30d"), (31, 6))

    def test_againWithinRange(self) -> None:
        """
        A range that ends before the days published has fewer made again.
        """
        self.assertEqual(self._plan("+6d"), (7, 6))
        self.assertEqual(self._plan("+2d"), (3, 2))
        self.assertEqual(self._plan("today"), (1, 0))
