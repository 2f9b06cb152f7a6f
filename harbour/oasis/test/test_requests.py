"""
Tests for L{harbour.oasis.requests}: trading days, windows, URLs and file names.
"""

from __future__ import annotations

import datetime
import gc
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attr
from twisted.trial.unittest import SynchronousTestCase

from harbour.config.schema import ManifestTopic, ReportTopic, parse_file
from harbour.config.topics import TopicError
from harbour.oasis.requests import (
    ReportURL,
    UnsafeName,
    confined,
    current_only_past,
    gmt,
    market_today,
    published_ahead,
    report_range,
    report_urls,
    serves_history,
)

TODAY = datetime.date(2026, 1, 15)


def report(**kwargs: Any) -> ReportTopic:
    """
    A SingleZip report definition with defaults for the test.
    """
    values: dict[str, Any] = {
        "name": "lmp",
        "queryname": "PRC_LMP",
        "kind": "single_zip",
        "market_run_id": "DAM",
        "params": {"grp_type": "ALL_APNODES"},
    }
    values.update(kwargs)
    return ReportTopic(**values)


def urls(start: str, end: str, *reports: ReportTopic, **manifest: Any) -> list[ReportURL]:
    """
    The requests of C{reports} from C{start} to C{end}.
    """
    return report_urls(ManifestTopic(start=start, end=end, **manifest), reports, TODAY)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


class TradingDayTests(SynchronousTestCase):
    """
    Daily windows are Pacific trading days in GMT.
    """

    def test_springForward(self) -> None:
        """
        2025-03-09 has 23 hours: 08:00Z to 07:00Z.
        """
        [request] = urls("2025-03-09", "2025-03-09", report())
        self.assertIn("startdatetime=20250309T08:00-0000&enddatetime=20250310T07:00-0000", request.url)

    def test_fallBack(self) -> None:
        """
        2025-11-02 has 25 hours: 07:00Z to 08:00Z the next day.
        """
        [request] = urls("2025-11-02", "2025-11-02", report())
        self.assertIn("startdatetime=20251102T07:00-0000&enddatetime=20251103T08:00-0000", request.url)

    def test_summerAndWinter(self) -> None:
        """
        A summer day starts at 07:00Z, a winter day at 08:00Z.
        """
        (summer,) = urls("2025-07-01", "2025-07-01", report())
        (winter,) = urls("2025-01-15", "2025-01-15", report())
        self.assertEqual(query(summer.url)["startdatetime"], "20250701T07:00-0000")
        self.assertEqual(query(winter.url)["startdatetime"], "20250115T08:00-0000")

    def test_hourlyCounts(self) -> None:
        """
        Hourly windows number 23 on the spring day, 25 on the autumn day
        and 24 otherwise; each is one hour and they tile the day.
        """
        hourly = report(name="rt", queryname="PRC_INTVL_LMP", market_run_id="RTM", window="1h")
        for day, count in [("2025-03-09", 23), ("2025-11-02", 25), ("2025-06-01", 24)]:
            requests = sorted(urls(day, day, hourly), key=lambda r: r.window_start)
            self.assertEqual(len(requests), count, day)
            for before, after in zip(requests, requests[1:]):
                self.assertEqual(before.window_end, after.window_start)
                self.assertEqual(after.window_end - after.window_start, datetime.timedelta(hours=1))
        last = sorted(urls("2025-11-02", "2025-11-02", hourly), key=lambda r: r.window_start)[-1]
        self.assertEqual(last.filename, "rt/2025-11-02_H25.zip")

    def test_gmt(self) -> None:
        """
        Times are written as OASIS wants them.
        """
        moment = datetime.datetime(2025, 3, 9, 8, 0, tzinfo=datetime.UTC)
        self.assertEqual(gmt(moment), "20250309T08:00-0000")


class WindowTests(SynchronousTestCase):
    """
    Multi-day windows.
    """

    def test_thirtyOneDays(self) -> None:
        """
        31-day windows are blocks of days counted from the anchor, named
        after their whole block, cut to the range at both ends, never over
        31 days, newest first.
        """
        requests = urls("2025-01-01", "2025-03-15", report(window="31d", params={"node": "TH_NP15_GEN-APND"}))
        self.assertEqual(
            [r.filename for r in requests],
            [
                "lmp/2025-03-07_2025-04-06.zip",
                "lmp/2025-02-04_2025-03-06.zip",
                "lmp/2025-01-04_2025-02-03.zip",
                "lmp/2024-12-04_2025-01-03.zip",
            ],
        )
        for r in requests:
            self.assertLessEqual(r.window_end - r.window_start, datetime.timedelta(days=31, hours=1))
        self.assertEqual(requests[0].window_end, datetime.datetime(2025, 3, 16, 7, 0, tzinfo=datetime.UTC))
        self.assertEqual(requests[-1].window_start, datetime.datetime(2025, 1, 1, 8, 0, tzinfo=datetime.UTC))
        self.assertEqual(
            (requests[1].window_start, requests[1].window_end),
            (
                datetime.datetime(2025, 2, 4, 8, 0, tzinfo=datetime.UTC),
                datetime.datetime(2025, 3, 7, 8, 0, tzinfo=datetime.UTC),
            ),
        )

    def test_startAhead(self) -> None:
        """
        A range whose start is still ahead of its end (a start after
        today) has no windows, rather than an empty or reversed one, for
        days and blocks of days alike.
        """
        for window in ("1d", "7d", "31d"):
            definition = report(window=window, params={"node": "TH_NP15_GEN-APND"})
            # Today is 2026-01-15 here.
            self.assertEqual(urls("2026-01-16", "today", definition), [], window)
            self.assertEqual(urls("2026-01-20", "today", definition), [], window)

    def test_stableAsDaysPass(self) -> None:
        """
        Over 60 days passing, with a fixed start: at most one request of a
        report changes each day (the window still growing), and no file
        name disappears, through the spring and the autumn change (23- and
        25-hour days inside windows).
        """
        for window, first in [(w, f) for w in ("7d", "31d") for f in ("2025-02-20", "2025-10-10")]:
            definition = report(window=window, params={"node": "TH_NP15_GEN-APND"})
            previous = None
            for day in range(60):
                end = (datetime.date.fromisoformat(first) + datetime.timedelta(days=day)).isoformat()
                current = {r.filename: r.url for r in urls("2025-01-01", end, definition)}
                if previous is not None:
                    self.assertLessEqual(set(previous), set(current), (window, end))
                    changed = [name for name in previous if previous[name] != current[name]]
                    self.assertLessEqual(len(changed), 1, (window, end, changed))
                previous = current

    def test_relativeStartAndToday(self) -> None:
        """
        A relative start counts back from today; "today" is the last day.
        """
        requests = urls("-2d", "today", report())
        self.assertEqual(
            [r.filename for r in requests], ["lmp/2026-01-15.zip", "lmp/2026-01-14.zip", "lmp/2026-01-13.zip"]
        )

    def test_reportOverridesAndDisabled(self) -> None:
        """
        A report's own start/end win over the manifest's; disabled reports
        have no requests.
        """
        requests = urls(
            "2025-01-01", "2025-01-31", report(start="2025-01-30"), report(name="off", enabled=False)
        )
        self.assertEqual([r.filename for r in requests], ["lmp/2025-01-31.zip", "lmp/2025-01-30.zip"])


class URLTests(SynchronousTestCase):
    """
    The URLs of both servlets.
    """

    def test_singleZip(self) -> None:
        """
        SingleZip URLs carry the query name, times, market, version,
        C{resultformat=6} for CSV, and extra parameters in a stable order.
        """
        [request] = urls(
            "2025-01-15",
            "2025-01-15",
            report(version=12, resultformat="csv", params={"node": "B", "grp_type": "ALL"}),
            base_url="http://127.0.0.1:9/oasisapi",
        )
        self.assertEqual(
            request.url,
            "http://127.0.0.1:9/oasisapi/SingleZip?queryname=PRC_LMP&startdatetime=20250115T08:00-0000"
            "&enddatetime=20250116T08:00-0000&market_run_id=DAM&version=12&resultformat=6"
            "&grp_type=ALL&node=B",
        )

    def test_groupZip(self) -> None:
        """
        A group answering a trading day at a time is asked for it as the
        spec's Example 1 asks (section 2.2.1): the group id, the day's
        start and the version, and no C{enddatetime}, which applies only
        to HASP and real-time groups.
        """
        group = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip")
        [request] = urls("2013-09-19", "2013-09-19", group, base_url="http://oasis.caiso.com/oasisapi")
        self.assertEqual(
            request.url,
            "http://oasis.caiso.com/oasisapi/GroupZip?groupid=DAM_LMP_GRP&startdatetime=20130919T07:00-0000&version=1",
        )
        self.assertEqual(request.filename, "grp/2013-09-19.zip")
        self.assertEqual(request.window_end - request.window_start, datetime.timedelta(days=1))

    def test_groupZipForDaysPublished(self) -> None:
        """
        A day group's requests carry no C{enddatetime} when the manifest
        leaves out what is not published yet, too.
        """
        group = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip")
        requests = report_urls(
            ManifestTopic(start="2025-01-10", end="2025-01-15"),
            [group],
            TODAY,
            now=datetime.datetime(2026, 1, 15, 20, tzinfo=datetime.UTC).timestamp(),
        )
        self.assertTrue(requests)
        self.assertEqual([r for r in requests if "enddatetime" in r.url], [])

    def test_groupZipHourly(self) -> None:
        """
        A real-time group, cached by the hour, is asked for an hour at a
        time with its C{enddatetime} (the spec's Example 2).
        """
        group = ReportTopic(name="grp", groupid="HASP_LMP_GRP", kind="group_zip")
        [request] = [
            r for r in urls("2013-09-19", "2013-09-19", group) if "startdatetime=20130919T07:00" in r.url
        ]
        self.assertEqual(
            query(request.url),
            {
                "groupid": "HASP_LMP_GRP",
                "startdatetime": "20130919T07:00-0000",
                "enddatetime": "20130919T08:00-0000",
                "version": "1",
            },
        )

    def test_groupZipKeepsEnd(self) -> None:
        """
        A group the catalogue does not know keeps its C{enddatetime},
        asked for in hours or days: it may need it.
        """
        hours = ReportTopic(name="grp", groupid="NEW_GRP", kind="group_zip", window="6h")
        unknown = ReportTopic(name="new", groupid="NEW_GRP", kind="group_zip", window="1d")
        requests = urls("2025-01-15", "2025-01-15", hours, unknown)
        self.assertEqual(len(requests), 5)
        for request in requests:
            self.assertEqual(query(request.url)["enddatetime"], gmt(request.window_end))

    def test_groupZipDaysArePacific(self) -> None:
        """
        With days of another zone, a group asked for its day by
        C{startdatetime} alone is asked for OASIS's trading days, named by
        their dates: OASIS answers the trading day that starts there, and
        a UTC midnight starts none.  The change days have 23 and 25 hours
        as in Pacific; a group asked by the hour keeps the manifest's days.
        """
        group = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip")
        [request] = urls("2025-06-10", "2025-06-10", group, timezone="UTC")
        self.assertEqual(query(request.url)["startdatetime"], "20250610T07:00-0000")
        self.assertEqual(
            (request.filename, request.window_start, request.window_end),
            (
                "grp/2025-06-10.zip",
                datetime.datetime(2025, 6, 10, 7, tzinfo=datetime.UTC),
                datetime.datetime(2025, 6, 11, 7, tzinfo=datetime.UTC),
            ),
        )
        spring, fall = (urls(day, day, group, timezone="UTC")[0] for day in ("2025-03-09", "2025-11-02"))
        self.assertEqual(
            (spring.window_end - spring.window_start, fall.window_end - fall.window_start),
            (datetime.timedelta(hours=23), datetime.timedelta(hours=25)),
        )
        hourly = ReportTopic(name="hasp", groupid="HASP_LMP_GRP", kind="group_zip")
        self.assertEqual(
            min(r.window_start for r in urls("2025-06-10", "2025-06-10", hourly, timezone="UTC")),
            datetime.datetime(2025, 6, 10, tzinfo=datetime.UTC),
        )

    def test_groupZipDaysArePacificWhenPublished(self) -> None:
        """
        Such a group's trading day is asked for once it can exist (the
        catalogue's -10h for C{DAM_LMP_GRP}: 14:00 Pacific the day before),
        with days of another zone too.
        """
        group = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip")
        manifest = ManifestTopic(start="2025-06-08", end="+1d", timezone="UTC")

        def newest(now: str) -> ReportURL:
            moment = at(now)
            return report_urls(manifest, [group], market_today(manifest, moment), now=moment)[0]

        self.assertEqual(newest("2025-06-10T20:59Z").filename, "grp/2025-06-10.zip")
        latest = newest("2025-06-10T21:00Z")
        self.assertEqual(
            (latest.filename, query(latest.url)["startdatetime"]),
            ("grp/2025-06-11.zip", "20250611T07:00-0000"),
        )

    def test_groupZipCSV(self) -> None:
        """
        A group asked for in CSV says so, as a SingleZip report does
        (spec section 8: "For CSV format use resultformat=6").
        """
        group = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip", resultformat="csv")
        [request] = urls("2025-01-15", "2025-01-15", group)
        self.assertEqual(query(request.url)["resultformat"], "6")

    def test_uniqueFilenames(self) -> None:
        """
        Every request of a year of several reports has its own file name.
        """
        requests = urls(
            "2024-01-01",
            "2024-12-31",
            report(),
            report(name="h", window="1h", params={"node": "TH_NP15_GEN-APND"}),
            report(name="m", window="7d", params={"node": "TH_NP15_GEN-APND"}),
        )
        self.assertEqual(len({r.filename for r in requests}), len(requests))
        self.assertEqual(len({r.url for r in requests}), len(requests))


class ReportURLTests(SynchronousTestCase):
    """
    A L{ReportURL} built from outside checks its values; those of the
    manifest are built without the checks and pass them all the same.
    """

    start = datetime.datetime(2025, 1, 15, 8, tzinfo=datetime.UTC)
    end = datetime.datetime(2025, 1, 16, 8, tzinfo=datetime.UTC)

    def test_valid(self) -> None:
        """
        Good values make a request; a window may be empty.
        """
        request = ReportURL("http://o/x", "lmp/x.zip", "lmp", self.start, self.start)
        self.assertEqual((request.filename, request.window_end), ("lmp/x.zip", self.start))

    def test_escapingFilename(self) -> None:
        """
        A file name that would leave the download directory is refused.
        """
        for bad in ["../x.zip", "/etc/passwd", "lmp/../../x.zip"]:
            self.assertRaises(UnsafeName, ReportURL, "http://o/x", bad, "lmp", self.start, self.end)

    def test_badWindow(self) -> None:
        """
        A window that ends before it starts, or a time without a zone, is
        refused.
        """
        naive = datetime.datetime(2025, 1, 16, 8)
        self.assertRaises(ValueError, ReportURL, "http://o/x", "lmp/x.zip", "lmp", self.end, self.start)
        self.assertRaises(ValueError, ReportURL, "http://o/x", "lmp/x.zip", "lmp", self.start, naive)
        self.assertRaises(ValueError, ReportURL, "http://o/x", "lmp/x.zip", "lmp", naive, self.end)

    def test_badTypes(self) -> None:
        """
        An empty URL or a value of the wrong type is refused.
        """
        self.assertRaises(ValueError, ReportURL, "", "lmp/x.zip", "lmp", self.start, self.end)
        self.assertRaises(TypeError, ReportURL, b"http://o/x", "lmp/x.zip", "lmp", self.start, self.end)
        self.assertRaises(TypeError, ReportURL, "http://o/x", "lmp/x.zip", "lmp", "2025-01-15", self.end)

    def test_manifestPassesTheChecks(self) -> None:
        """
        The requests of daily, hourly and multi-day reports, built without
        the checks, pass them and equal the same requests built with them;
        they are frozen like any other.
        """
        requests = urls(
            "2024-03-01",
            "2024-11-30",
            report(),
            report(name="h", window="1h", params={"node": "TH_NP15_GEN-APND"}),
            report(name="m", window="7d", params={"node": "TH_NP15_GEN-APND"}),
            ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip"),
        )
        self.assertEqual(
            {r.report for r in requests}, {"lmp", "h", "m", "grp"}, "every kind of report is looked at"
        )
        for request in requests:
            attr.validate(request)
            checked = ReportURL(
                request.url, request.filename, request.report, request.window_start, request.window_end
            )
            self.assertEqual(checked, request)
            self.assertEqual(hash(checked), hash(request))
        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, requests[0], "url", "http://o/")

    def test_collectorLeftAsFound(self) -> None:
        """
        Building a manifest pauses the garbage collector only while it
        runs: it is running afterwards if it was before, and stays off if
        it was off.
        """
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()
        urls("2025-01-01", "2025-01-31", report())
        self.assertTrue(gc.isenabled())
        gc.disable()
        urls("2025-01-01", "2025-01-31", report())
        self.assertFalse(gc.isenabled())

    def test_largeManifestSettled(self) -> None:
        """
        A large manifest pays for its own collection: its requests are
        already with the oldest objects, so whoever allocates next does not
        collect them.
        """
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()
        many = urls("2000-01-01", "2024-12-31", *(report(name=f"r{i}") for i in range(8)))
        self.assertGreater(len(many), 70_000)
        ours = {id(request) for request in many}
        young = [o for o in gc.get_objects(generation=0) + gc.get_objects(generation=1) if id(o) in ours]
        self.assertEqual(young, [])

    def test_largeManifestCollectsOnlyYoung(self) -> None:
        """
        The collection a large manifest pays for is of the young
        generations only: a full one would walk the whole heap of the
        daemon, however large, for every manifest.
        """
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()
        generations: list[int] = []

        def collecting(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                generations.append(info["generation"])

        reports = [report(name=f"r{i}") for i in range(8)]
        manifest = ManifestTopic(start="2000-01-01", end="2024-12-31")
        # Nothing young is left over to be collected on the way in.
        gc.collect()
        gc.callbacks.append(collecting)
        self.addCleanup(gc.callbacks.remove, collecting)
        many = report_urls(manifest, reports, TODAY)
        self.assertGreater(len(many), 70_000)
        self.assertEqual(generations, [1])


class ConfinementTests(SynchronousTestCase):
    """
    File names never leave the download directory.
    """

    def test_confined(self) -> None:
        """
        Relative names inside the directory pass; escapes are refused.
        """
        self.assertEqual(confined("lmp/2025-01-01.zip"), "lmp/2025-01-01.zip")
        for bad in ["../x.zip", "/etc/passwd", "a/../../x", "..", "", "a\\b", "a\x00b"]:
            self.assertRaises(UnsafeName, confined, bad)

    def test_escapingReportNameIsConfigError(self) -> None:
        """
        A report name that could escape is a configuration error.
        """
        for name in ["..", ".", ".hidden", "a/b"]:
            ignored, problems = parse_file("r.toml", f'[[reports]]\nname = "{name}"\nqueryname = "X"\n')
            self.assertEqual([p.key for p in problems], ["reports[0].name"], name)


def at(text: str) -> float:
    """
    @return: The POSIX time of an ISO date-time with its offset.
    """
    return datetime.datetime.fromisoformat(text).timestamp()


class AvailabilityTests(SynchronousTestCase):
    """
    Nothing is requested before its data can exist: a window's end plus
    its report's publication delay (negative: before its trading day).
    """

    def requests(self, now: str, *reports: ReportTopic, end: str = "+1d") -> list[ReportURL]:
        manifest = ManifestTopic(start="2025-03-01", end=end)
        return report_urls(manifest, reports, market_today(manifest, at(now)), now=at(now))

    def test_dayAheadBeforeItsDay(self) -> None:
        """
        Day-ahead prices (the catalogue: 10 hours before the trading day)
        for tomorrow are requested from 14:00 today, with C{end = "+1d"}.
        """
        lmp = report(params={"grp_type": "ALL_APNODES"})
        self.assertEqual(self.requests("2025-03-10T13:59-07:00", lmp)[0].filename, "lmp/2025-03-10.zip")
        self.assertEqual(self.requests("2025-03-10T14:00-07:00", lmp)[0].filename, "lmp/2025-03-11.zip")

    def test_realTimeHoursAfterTheyEnd(self) -> None:
        """
        Real-time hours (an hour after they end) are requested one by one
        as they become available; later hours of today are not.
        """
        hourly = report(name="rt", queryname="PRC_INTVL_LMP", market_run_id="RTM", window="1h")
        newest = max(self.requests("2025-03-10T10:30-07:00", hourly), key=lambda r: r.window_end)
        self.assertEqual(newest.filename, "rt/2025-03-10_H09.zip")
        self.assertEqual(newest.window_end, datetime.datetime(2025, 3, 10, 16, 0, tzinfo=datetime.UTC))

    def test_unknownReportAfterItsDay(self) -> None:
        """
        A report the catalogue does not know is requested once its day has
        ended; its own C{publication_delay} overrides that.
        """
        other = report(name="other", queryname="OTHER", market_run_id=None, params={})
        self.assertEqual(self.requests("2025-03-10T23:00-07:00", other)[0].filename, "other/2025-03-09.zip")
        self.assertEqual(self.requests("2025-03-11T00:00-07:00", other)[0].filename, "other/2025-03-10.zip")
        early = report(
            name="early", queryname="OTHER", market_run_id=None, params={}, publication_delay="-2h"
        )
        self.assertEqual(self.requests("2025-03-10T22:00-07:00", early)[0].filename, "early/2025-03-11.zip")

    def test_growingWindowCoversPublishedDays(self) -> None:
        """
        The newest multi-day window keeps its name and covers the days
        already out: it grows as days pass.
        """
        load = report(name="load", queryname="SLD_FCST", market_run_id="DAM", params={}, window="7d")
        monday, tuesday = (self.requests(f"2025-03-{d}T12:00-07:00", load)[0] for d in (10, 11))
        self.assertEqual(monday.filename, tuesday.filename)
        self.assertEqual(tuesday.window_end - monday.window_end, datetime.timedelta(days=1))

    def test_dayAheadInAnotherZone(self) -> None:
        """
        With days of another zone, a day is asked for once every trading
        day it holds hours of can exist: a UTC day ends at 17:00 Pacific
        in summer, so the UTC day of tomorrow's date, holding most of
        tomorrow's trading day, waits for 14:00 Pacific today as that
        trading day does.
        """
        lmp = report(params={"node": "X"}, window="1d")
        manifest = ManifestTopic(start="2025-06-08", end="+1d", timezone="UTC")

        def newest(now: str) -> ReportURL:
            moment = at(now)
            return report_urls(manifest, [lmp], market_today(manifest, moment), now=moment)[0]

        self.assertEqual(newest("2025-06-10T20:59Z").filename, "lmp/2025-06-10.zip")
        self.assertEqual(newest("2025-06-10T21:00Z").filename, "lmp/2025-06-11.zip")

    def test_afterItsDayInAnotherZone(self) -> None:
        """
        A report published a day after its trading day ends (the
        catalogue's +1d for C{PRC_FUEL}) is asked for a UTC day only once
        the later of the two trading days it holds hours of is out.
        """
        fuel = report(
            name="fuel",
            queryname="PRC_FUEL",
            market_run_id=None,
            params={"fuel_region_id": "ALL"},
            window="1d",
        )
        manifest = ManifestTopic(start="2025-06-01", end="today", timezone="UTC")

        def newest(now: str) -> str:
            moment = at(now)
            return report_urls(manifest, [fuel], market_today(manifest, moment), now=moment)[0].filename

        self.assertEqual(newest("2025-06-12T06:59Z"), "fuel/2025-06-09.zip")
        self.assertEqual(newest("2025-06-12T07:00Z"), "fuel/2025-06-10.zip")

    def test_hoursInAnotherZone(self) -> None:
        """
        Hourly windows of another zone's days are asked for hour by hour,
        each once the trading day it falls on can exist: at 07:30 Pacific,
        tomorrow's day-ahead hours are not, though the UTC day under way
        has begun, and from 14:00 they are.
        """
        hourly = report(params={"node": "X"}, window="1h")
        manifest = ManifestTopic(start="2025-06-10", end="+1d", timezone="UTC")

        def newest_end(now: str) -> datetime.datetime:
            moment = at(now)
            requests = report_urls(manifest, [hourly], market_today(manifest, moment), now=moment)
            return max(request.window_end for request in requests)

        self.assertEqual(
            newest_end("2025-06-10T14:30Z"), datetime.datetime(2025, 6, 11, 7, tzinfo=datetime.UTC)
        )
        self.assertEqual(newest_end("2025-06-10T21:00Z"), datetime.datetime(2025, 6, 12, tzinfo=datetime.UTC))

    def test_relativeEndAhead(self) -> None:
        """
        C{end} accepts days ahead of today, such as C{"+1d"}.
        """
        self.assertEqual(ManifestTopic(end="+2d").end, "+2d")
        self.assertRaises(TopicError, ManifestTopic, start="+1d")


def current(**kwargs: Any) -> ReportTopic:
    """
    A report OASIS serves only the current interval of, for all nodes.
    """
    values: dict[str, Any] = {
        "name": "curr",
        "queryname": "PRC_CURR_LMP",
        "version": 2,
        "params": {"node": "ALL"},
    }
    values.update(kwargs)
    return report(**values)


class HistoryTests(SynchronousTestCase):
    """
    A report OASIS serves only current data of (the catalogue's C{history
    = false}) is asked for no day before today: OASIS would answer a past
    day's request with the current interval, filed under the past day.
    """

    def test_fromToday(self) -> None:
        """
        Its range starts today whatever its C{start}, and so does a first
        day given instead (C{harbourctl manifest --start}); a report with
        history keeps its range.
        """
        manifest = ManifestTopic(start="2025-01-01", end="today")
        hours = [f"curr/2026-01-15_H{hour:02d}.zip" for hour in range(1, 24)]
        self.assertEqual([r.filename for r in report_urls(manifest, [current()], TODAY)], hours)
        self.assertEqual(report_range(manifest, current(), TODAY), (TODAY, TODAY))
        overridden = report_urls(manifest, [current()], TODAY, start=datetime.date(2025, 11, 1))
        self.assertEqual([r.filename for r in overridden], hours)
        self.assertEqual(report_range(manifest, report(), TODAY), (datetime.date(2025, 1, 1), TODAY))

    def test_listedAsAsked(self) -> None:
        """
        By default (an hour), the windows of a report OASIS serves only
        current data of, published once over (+0h), are those the daemon
        asks for as the day passes: every hour of today but the last,
        which is over only once today is past; the requests listed
        without a time (C{harbourctl plan} and C{manifest}) are those.
        For a group, for each market's report, and with a delay of its
        own, the windows over, delay added, by the end of their day.
        """
        manifest = ManifestTopic(start="-3d", end="today", follow_publications=False)
        reports = [
            ReportTopic(name="grp", groupid="CURR_LMP_GRP"),
            current(),
            ReportTopic(name="hub", queryname="PRC_CURR_HUB_LMP"),
            current(name="late", publication_delay="+30m", window="2h"),
        ]
        midnight = at("2026-01-15T00:00-08:00")
        asked: dict[str, set[str]] = {report.name: set() for report in reports}
        for step in range(24 * 6):
            now = midnight + step * 600
            for request in report_urls(manifest, reports, market_today(manifest, now), now=now):
                asked[request.report].add(request.filename)
        listed: dict[str, set[str]] = {report.name: set() for report in reports}
        for request in report_urls(manifest, reports, TODAY):
            listed[request.report].add(request.filename)
        self.assertEqual(listed, asked)
        self.assertEqual(sorted(asked["grp"]), [f"grp/2026-01-15_H{hour:02d}.zip" for hour in range(1, 24)])
        self.assertEqual(
            sorted(asked["late"]), [f"late/2026-01-15_H{hour:02d}.zip" for hour in range(1, 22, 2)]
        )

    def test_pastRange(self) -> None:
        """
        A range over before today asks for nothing.
        """
        self.assertEqual(urls("2025-01-01", "2025-12-31", current()), [])

    def test_hoursOfToday(self) -> None:
        """
        Asked by the hour, it is asked for the hours of today once each is
        over, and for none of the days before.
        """
        manifest = ManifestTopic(start="2026-01-01", end="today")
        now = at("2026-01-15T10:30-08:00")
        requests = report_urls(manifest, [current(window="1h")], market_today(manifest, now), now=now)
        self.assertEqual(
            [r.filename for r in requests], [f"curr/2026-01-15_H{hour:02d}.zip" for hour in range(1, 11)]
        )

    def test_currentByParameter(self) -> None:
        """
        A report whose parameters make it current-only (C{PRC_FLEX_RAMP}
        with C{grp_type=CURR}, in any case, which OASIS answers with the
        latest interval whatever window is asked) is asked for no day
        before today, by the hour, as the reports without history are;
        with C{grp_type=ALL} it keeps its history and its 31-day windows.
        """
        manifest = ManifestTopic(start="2025-10-01", end="today", follow_publications=False)
        flex = ReportTopic(
            name="flex",
            queryname="PRC_FLEX_RAMP",
            market_run_id="RTD",
            version=2,
            params={"grp_type": "curr", "baa_grp_id": "ISO"},
        )
        self.assertFalse(serves_history(flex))
        self.assertEqual(flex.window, "1h")
        self.assertEqual(report_range(manifest, flex, TODAY), (TODAY, TODAY))
        requests = report_urls(manifest, [flex], TODAY)
        self.assertEqual(
            [r.filename for r in requests], [f"flex/2026-01-15_H{hour:02d}.zip" for hour in range(1, 23)]
        )
        past = [r.filename for r in current_only_past(manifest, [flex], TODAY)]
        self.assertEqual((past[0], past[-1]), ("flex/2026-01-14_H01.zip", "flex/2025-10-01_H24.zip"))
        historical = attr.evolve(flex, params={"grp_type": "ALL"}, window=None)
        self.assertTrue(serves_history(historical))
        self.assertEqual(historical.window, "31d")
        self.assertEqual(report_range(manifest, historical, TODAY), (datetime.date(2025, 10, 1), TODAY))

    def test_daysAhead(self) -> None:
        """
        A report of current and future days (C{TRNS_CURR_USAGE}) is asked
        for today and the days ahead its range gives.
        """
        usage = report(name="usage", queryname="TRNS_CURR_USAGE", market_run_id=None, params={}, window="1d")
        self.assertEqual(
            [r.filename for r in urls("2025-01-01", "+2d", usage)],
            ["usage/2026-01-17.zip", "usage/2026-01-16.zip", "usage/2026-01-15.zip"],
        )

    def test_publishedAhead(self) -> None:
        """
        A report OASIS serves only current data of and publishes ahead (a
        negative delay, the catalogue's or its own) is asked a day at a
        time, each day fetched again daily; not one served with its
        history, nor one published once over.
        """
        cases = [
            (report(name="usage", queryname="TRNS_CURR_USAGE", market_run_id=None, params={}), True),
            (ReportTopic(name="g", groupid="CURR_LMP_GRP", publication_delay="-1h"), True),
            (ReportTopic(name="g", groupid="CURR_LMP_GRP"), False),
            (report(), False),
            (report(publication_delay="-1d"), False),
        ]
        self.assertEqual([published_ahead(topic) for topic, ignored in cases], [e for ignored, e in cases])

    def test_formerBlocksKept(self) -> None:
        """
        Of the blocks of 31 days a report published ahead was asked in
        before each of its days was asked alone, those over before the
        block holding today are kept, besides its past days: no day's
        window holds their days.  The block holding today is not.
        """
        usage = report(name="usage", queryname="TRNS_CURR_USAGE", market_run_id=None, params={})
        manifest = ManifestTopic(start="2025-11-20", end="+6d")
        kept = {r.filename for r in current_only_past(manifest, [usage], TODAY)}
        blocks = sorted(name for name in kept if "_" in name)
        self.assertEqual(blocks, ["usage/2025-11-10_2025-12-10.zip", "usage/2025-12-11_2026-01-10.zip"])
        self.assertIn("usage/2026-01-14.zip", kept)
        self.assertNotIn("usage/2026-01-11_2026-02-10.zip", kept)


def monthly(**kwargs: Any) -> ReportTopic:
    """
    A group whose one answer holds its calendar month.
    """
    return ReportTopic(name="upl", groupid="ENE_RES_UPL_GRP", version=8, **kwargs)


class MonthWindowTests(SynchronousTestCase):
    """
    A group whose one answer holds its whole calendar month (spec section
    7: "The entire month data will be cached") is asked for once a month,
    from the month's first trading day, as the spec's examples ask.
    """

    def test_oneRequestPerMonth(self) -> None:
        """
        Each month the range touches is one request, whole, newest first;
        its file is named after the month, and its window is the month's
        trading days in GMT (winter and summer offsets alike).  The request
        is the spec's example's: the month's first trading day, and no
        C{enddatetime}, which OASIS refuses a non-real-time group longer
        than a day.
        """
        requests = urls("2025-01-15", "2025-03-10", monthly())
        self.assertEqual(
            [r.filename for r in requests], ["upl/2025-03.zip", "upl/2025-02.zip", "upl/2025-01.zip"]
        )
        self.assertEqual(
            query(requests[0].url),
            {"groupid": "ENE_RES_UPL_GRP", "startdatetime": "20250301T08:00-0000", "version": "8"},
        )
        self.assertEqual(
            (requests[2].window_start, requests[2].window_end),
            (
                datetime.datetime(2025, 1, 1, 8, tzinfo=datetime.UTC),
                datetime.datetime(2025, 2, 1, 8, tzinfo=datetime.UTC),
            ),
        )

    def test_yearIsTwelveRequests(self) -> None:
        """
        A year costs 12 requests, not 365 that would each bring the month
        again.
        """
        self.assertEqual(len(urls("2024-01-01", "2024-12-31", monthly())), 12)

    def test_askedOnceTheMonthIsOver(self) -> None:
        """
        A month is asked for only once it is over and its publication
        offset (the catalogue's +31d for ENE_RES_UPL_GRP) has passed: never
        in part, as a multi-day window may be.
        """
        manifest = ManifestTopic(start="2025-01-01", end="today")

        def newest(now: str) -> str:
            moment = at(now)
            return report_urls(manifest, [monthly()], market_today(manifest, moment), now=moment)[0].filename

        self.assertEqual(newest("2025-04-01T00:00-07:00"), "upl/2025-01.zip")
        self.assertEqual(newest("2025-05-01T23:59-07:00"), "upl/2025-02.zip")
        self.assertEqual(newest("2025-05-02T00:00-07:00"), "upl/2025-03.zip")

    def test_publishedLastDay(self) -> None:
        """
        A month is asked for only once the publications log shows its last
        day published, when it names the group.
        """
        manifest = ManifestTopic(start="2025-01-01", end="2025-03-31")
        requests = report_urls(manifest, [monthly()], TODAY, published={"upl": datetime.date(2025, 3, 30)})
        self.assertEqual([r.filename for r in requests], ["upl/2025-02.zip", "upl/2025-01.zip"])

    def test_monthsArePacific(self) -> None:
        """
        A month starts at OASIS's own midnight, whatever zone the
        manifest's days are of: from another, OASIS would read the last
        day of the month before.
        """
        [request] = urls("2025-03-01", "2025-03-31", monthly(), timezone="UTC")
        self.assertEqual(query(request.url)["startdatetime"], "20250301T08:00-0000")

    def test_defaultWindow(self) -> None:
        """
        Such a group's window is C{"month"} without being asked, and it may
        be given so; another window is kept, as a configuration written
        before may give one, but warned of.
        """
        self.assertEqual((monthly().window, monthly().warnings()), ("month", []))
        self.assertEqual(monthly(window="month").window, "month")
        daily = monthly(window="1d")
        self.assertEqual(daily.window, "1d")
        [(key, warning)] = daily.warnings()
        self.assertEqual(key, "window")
        self.assertIn("with window '1d' each answer brings the month again", warning)

    def test_onlyForMonthlyGroups(self) -> None:
        """
        A report whose answers hold their window only is refused the
        C{"month"} window, naming the groups it is for, with its other
        problems; a report the catalogue does not know may have it.
        """
        with self.assertRaises(TopicError) as raised:
            report(window="month", market_run_id=None)
        self.assertIn("ENE_RES_UPL_GRP", str(raised.exception))
        self.assertIn("market_run_id is required", str(raised.exception))
        other = report(name="other", queryname="OTHER", market_run_id=None, params={}, window="month")
        self.assertEqual(
            [r.filename for r in urls("2025-01-31", "2025-02-01", other)][0], "other/2025-02.zip"
        )
