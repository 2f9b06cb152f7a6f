"""
Tests of L{harbour.web.page}: the page at the size it must stay compact
at (100 reports of 1,200 trading days), and its moments.
"""

from __future__ import annotations

import datetime

from twisted.trial.unittest import SynchronousTestCase

from harbour.store.tasks import DOWNLOADED
from harbour.web.coverage import Coverage
from harbour.web.health import OK, Health
from harbour.web.page import ago, fragment, map_heading, page, render, reports_table
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
        The page carries the map as one letter per day (well under 1 MB for
        120,000 days), each row once; a day's change hands out its own
        row only.
        """
        requests = []
        for n in range(REPORTS):
            requests += day_requests(f"report-{n:03d}", datetime.date(2022, 1, 1), DAYS)
        coverage = Coverage()
        coverage.set_requests(requests)
        for request in requests[::3]:
            coverage.record(request.filename, DOWNLOADED)
        version = coverage.version
        coverage.record(requests[1].filename, DOWNLOADED)
        changed = coverage.changed_since(version)
        assert changed is not None
        self.assertEqual([row.report for row in changed], ["report-000"])
        views = [ReportView(f"report-{n:03d}", Health(OK)) for n in range(REPORTS)]
        shot = Snapshot(0.0, "1", reports=views)
        html = self.successResultOf(render(page(shot, coverage.rows(), coverage.stamp())))
        self.assertLess(len(html), 1_000_000)
        self.assertEqual(html.count(b"&quot;states&quot;"), REPORTS)
        states = [row.states for row in coverage.rows()]
        self.assertEqual({len(s) for s in states}, {DAYS})
        self.assertEqual(states[0][:4], "DDWD")


class MomentTests(SynchronousTestCase):
    """
    Moments in the reports' table.
    """

    def test_machineReadable(self) -> None:
        """
        A last success is shown as how long ago, its moment in UTC in the
        title and, as HTML wants it, in the C{datetime} attribute.
        """
        when = 1_750_000_000.0
        view = ReportView("lmp", Health(OK), last_success=when)
        html = self.successResultOf(fragment(reports_table([view], when + 300))).decode()
        self.assertIn(
            '<time title="2025-06-15 15:06:40 UTC" datetime="2025-06-15T15:06:40Z">5 min ago</time>', html
        )


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


class MapHeadingTests(SynchronousTestCase):
    """
    L{map_heading}.
    """

    def test_layingOut(self) -> None:
        """
        While the map is laid out anew, the heading says so, and that the
        map shown is the previous layout if there is one.
        """
        coverage = Coverage()
        coverage.set_requests(day_requests("lmp", datetime.date(2025, 6, 1), 2))
        rows = coverage.rows()
        self.assertEqual(
            [self.successResultOf(fragment(map_heading(shown, True))) for shown in ([], rows)],
            [
                b"Coverage by trading day (being laid out)",
                (
                    b"Coverage by trading day, 2025-06-01 to 2025-06-02"
                    b" (being laid out again: this is the previous layout)"
                ),
            ],
        )
        self.assertEqual(self.successResultOf(fragment(map_heading([], False))), b"Coverage by trading day")
