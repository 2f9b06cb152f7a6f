"""
Tests of L{harbour.web.page} at the size the page must stay fast at: 100
reports of 1,200 trading days.
"""

from __future__ import annotations

import datetime
import time

from twisted.trial.unittest import SynchronousTestCase

from harbour.store.tasks import DOWNLOADED
from harbour.web.coverage import Coverage
from harbour.web.health import OK, Health
from harbour.web.page import ago, page, render
from harbour.web.snapshot import ReportView, Snapshot
from harbour.web.test.helpers import day_requests

REPORTS = 100
DAYS = 1200


class LargeMapTests(SynchronousTestCase):
    """
    The map of 100 reports × 1,200 days.
    """

    def test_compact(self) -> None:
        """
        The page carries one letter per day (well under 1 MB for 120,000
        days) and renders on the reactor in well under a second; a day's
        change is found in a fraction of a millisecond.
        """
        requests = []
        for n in range(REPORTS):
            requests += day_requests(f"report-{n:03d}", datetime.date(2022, 1, 1), DAYS)
        coverage = Coverage()
        coverage.set_requests(requests)
        for request in requests[::3]:
            coverage.record(request.filename, DOWNLOADED)
        started = time.perf_counter()
        coverage.record(requests[1].filename, DOWNLOADED)
        self.assertLess(time.perf_counter() - started, 0.01)
        views = [ReportView(f"report-{n:03d}", Health(OK)) for n in range(REPORTS)]
        shot = Snapshot(0.0, "1", reports=views)
        started = time.perf_counter()
        html = self.successResultOf(render(page(shot, coverage.rows(), coverage.version)))
        elapsed = time.perf_counter() - started
        self.assertLess(len(html), 1_000_000)
        self.assertEqual(html.count(b"&quot;states&quot;"), REPORTS)
        self.assertLess(elapsed, 1.0)
        states = [row.states for row in coverage.rows()]
        self.assertEqual({len(s) for s in states}, {DAYS})
        self.assertEqual(states[0][:4], "DDWD")


class AgoTests(SynchronousTestCase):
    """
    L{ago}.
    """

    def test_units(self) -> None:
        """
        Seconds, minutes, hours and days, rounded.
        """
        self.assertEqual(
            [ago(s) for s in (-3, 12, 300, 7200, 200000)],
            ["0 s ago", "12 s ago", "5 min ago", "2 h ago", "2 d ago"],
        )
