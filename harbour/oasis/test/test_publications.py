"""
Tests for L{harbour.oasis.publications}: reading the publications log and
schedule, from shaped samples and from the simulator's own log.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.publications import (
    PACIFIC,
    LogUnreadable,
    Publication,
    Scheduled,
    hour_bounds,
    parse_log,
    parse_schedule,
)
from harbour.testing.simulator import OasisError, OasisSimulator, deterministic_zip, error_document

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
UTC = datetime.UTC
STAMP = datetime.datetime(2025, 3, 10, tzinfo=UTC)
#: 2025-03-10 13:00 in California.
ONE_PM = datetime.datetime(2025, 3, 10, 20, 0, tzinfo=UTC).timestamp()
#: The simulator publishes each day at 14:00 (California) of that day.
TWO_PM = 14 * 3600.0


def zipped(name: str, data: bytes) -> bytes:
    """
    @return: A zip answer holding C{data} as its one file, C{name}.
    """
    return deterministic_zip([(name, data)], STAMP)


def moment(text: str) -> float:
    """
    @return: The POSIX time of an ISO 8601 date and time.
    """
    return datetime.datetime.fromisoformat(text).timestamp()


class ParseTests(SynchronousTestCase):
    """
    L{parse_log} and L{parse_schedule} read answers by name, whatever
    their layout.
    """

    def test_csv(self) -> None:
        """
        A CSV log is read by column name, in any order, with extra columns
        ignored; entries come oldest first.
        """
        answer = zipped("20250308_20250310_ATL_PUB_v1.csv", (SAMPLES / "shape_ATL_PUB.csv").read_bytes())
        self.assertEqual(
            parse_log(answer),
            [
                Publication(
                    "PRC_LMP", "DAM", datetime.date(2025, 3, 9), moment("2025-03-08T21:00:00+00:00"), 1
                ),
                Publication(
                    "SLD_FCST", "DAM", datetime.date(2025, 3, 9), moment("2025-03-08T21:05:00+00:00"), 1
                ),
                Publication(
                    "PRC_LMP", "DAM", datetime.date(2025, 3, 5), moment("2025-03-09T17:30:00+00:00"), 2
                ),
            ],
        )

    def test_xml(self) -> None:
        """
        An XML log is read by local element name under any prefix, with the
        alternative names; C{REVISED} without a version is version 2.
        """
        answer = zipped("20250308_20250310_ATL_PUB_v1.xml", (SAMPLES / "shape_ATL_PUB.xml").read_bytes())
        entries = parse_log(answer)
        self.assertEqual(
            [(e.key, e.day.day, e.version, e.revision) for e in entries],
            [
                (("PRC_INTVL_LMP", "RTM"), 9, 1, False),
                (("PRC_INTVL_LMP", "RTM"), 7, 2, True),
            ],
        )

    def test_scraperColumns(self) -> None:
        """
        The columns public scrapers of C{ATL_PUB} read (C{PUBLICATION_DATE},
        C{ATLPUBVERSION}, C{OPR_HR}, ...) are read, in CSV and in XML alike,
        with the others (C{PUBLICATION_ID}, C{OPR_INTERVAL}, ...) ignored.  Their
        C{PUBLICATION_DATE} has no offset: it is Pacific, standard time
        before the spring change of 2025-03-09 and daylight time after.
        """
        expected = [
            Publication(
                "PRC_INTVL_LMP", "RTM", datetime.date(2025, 3, 8), moment("2025-03-09T07:50:00+00:00"), 1, 24
            ),
            Publication(
                "PRC_INTVL_LMP", "RTM", datetime.date(2025, 3, 8), moment("2025-03-09T07:55:00+00:00"), 1, 24
            ),
            Publication("SLD_FCST", "DAM", datetime.date(2025, 3, 7), moment("2025-03-09T17:15:00+00:00"), 2),
            Publication("PRC_LMP", "DAM", datetime.date(2025, 3, 11), moment("2025-03-10T20:02:00+00:00"), 1),
        ]
        for name in ("shape_ATL_PUB_scraper_columns.csv", "shape_ATL_PUB_scraper_columns.xml"):
            answer = zipped("20250308_20250310_ATL_PUB_v1" + name[-4:], (SAMPLES / name).read_bytes())
            self.assertEqual(parse_log(answer), expected, name)

    def test_hours(self) -> None:
        """
        An hour is read as OASIS numbers them, and is none where it is
        empty or out of range; a day may be given in the US form with a
        time.
        """
        header = "REPORT_NAME,MARKET_RUN_ID,OPR_DT,OPR_HR,PUBLICATION_DATE,STATUS,ATLPUBVERSION\n"
        rows = [
            "PRC_INTVL_LMP,RTM,11/02/2025 00:00:00,25,2025-11-02T02:10:00,PUBLISHED,1",
            "PRC_INTVL_LMP,RTM,2025-11-02,,2025-11-02T02:20:00,PUBLISHED,1",
            "PRC_INTVL_LMP,RTM,2025-11-02,26,2025-11-02T02:30:00,PUBLISHED,1",
        ]
        entries = parse_log(zipped("a.csv", (header + "\n".join(rows)).encode()))
        self.assertEqual(
            [(e.day, e.hour) for e in entries],
            [
                (datetime.date(2025, 11, 2), 25),
                (datetime.date(2025, 11, 2), None),
                (datetime.date(2025, 11, 2), None),
            ],
        )

    def test_hourBounds(self) -> None:
        """
        Hour ending C{n} starts at C{n - 1} o'clock, in the market's time;
        on the autumn change day hour ending 25 is the second 1 o'clock,
        and on the spring one hour ending 4 follows hour ending 2.
        """
        autumn, spring = datetime.date(2025, 11, 2), datetime.date(2025, 3, 9)
        starts = {
            (autumn, 2): "2025-11-02T08:00:00+00:00",
            (autumn, 25): "2025-11-02T09:00:00+00:00",
            (autumn, 3): "2025-11-02T10:00:00+00:00",
            (spring, 2): "2025-03-09T09:00:00+00:00",
            (spring, 4): "2025-03-09T10:00:00+00:00",
            (spring, 24): "2025-03-10T06:00:00+00:00",
        }
        for (day, hour), start in starts.items():
            low, high = hour_bounds(day, hour, PACIFIC)
            self.assertEqual((low.isoformat(), (high - low).total_seconds()), (start, 3600.0), (day, hour))

    def test_gmtColumnWithoutOffset(self) -> None:
        """
        A time without an offset in a column whose name ends in C{_GMT} is
        GMT: the same text as in C{PUBLICATION_DATE}, 8 hours earlier in
        winter and 7 in summer.
        """
        text = (SAMPLES / "shape_ATL_PUB_scraper_columns.csv").read_text()
        pacific = parse_log(zipped("a.csv", text.encode()))
        gmt = parse_log(zipped("a.csv", text.replace("PUBLICATION_DATE", "PUBLICATION_DATE_GMT").encode()))
        self.assertEqual(gmt[0].published, moment("2025-03-08T23:50:00+00:00"))
        self.assertEqual(
            [round(p.published - g.published) for p, g in zip(pacific, gmt, strict=True)],
            [8 * 3600, 8 * 3600, 7 * 3600, 7 * 3600],
        )

    def test_pacificForms(self) -> None:
        """
        A Pacific time may be ISO 8601 or the US form; the hour the autumn
        change repeats is taken as its first (daylight) occurrence; a
        version may carry letters.
        """
        header = "REPORT_NAME,MARKET_RUN_ID,OPR_DT,PUBLICATION_DATE,STATUS,ATLPUBVERSION\n"
        rows = [
            "PRC_LMP,DAM,2024-11-03,2024-11-03T01:30:00,PUBLISHED,1",
            "PRC_LMP,DAM,2024-11-04,11/03/2024 14:00,PUBLISHED,1",
            "PRC_LMP,DAM,2024-11-02,11/04/2024 09:00:30,REVISED,v3",
            "PRC_LMP,DAM,2024-11-01,2024-11-05 09:00:00+00:00,REVISED,",
        ]
        entries = parse_log(zipped("a.csv", (header + "\n".join(rows)).encode()))
        self.assertEqual(
            [(e.published, e.version) for e in entries],
            [
                (moment("2024-11-03T08:30:00+00:00"), 1),
                (moment("2024-11-03T22:00:00+00:00"), 1),
                (moment("2024-11-04T17:00:30+00:00"), 3),
                (moment("2024-11-05T09:00:00+00:00"), 2),
            ],
        )

    def test_noData(self) -> None:
        """
        OASIS's "no data" means no publication in the span: no entries.
        """
        self.assertEqual(parse_log((SAMPLES / "error_1000_no_data_repacked.zip").read_bytes()), [])

    def test_unreadable(self) -> None:
        """
        Other errors, pages that are not zips, and rows lacking a field we
        need are L{LogUnreadable}, with the reason.
        """
        error = zipped("ATL_PUB_v1.xml", error_document(1005, STAMP))
        self.assertIn("1005", str(self.assertRaises(LogUnreadable, parse_log, error)))
        self.assertIn("HTML", str(self.assertRaises(LogUnreadable, parse_log, b"<html>busy</html>")))
        columns = zipped("x.csv", b"REPORT_NAME,MARKET_RUN_ID\nPRC_LMP,DAM\n")
        self.assertIn("OPR_DT", str(self.assertRaises(LogUnreadable, parse_log, columns)))
        broken = zipped("x.xml", b"<a><b>1</b><c>")
        self.assertRaises(LogUnreadable, parse_log, broken)

    def test_badRowsAmongGood(self) -> None:
        """
        A malformed row among good ones is skipped.
        """
        text = (SAMPLES / "shape_ATL_PUB.csv").read_text() + "Prices,not a time,PRC_LMP,DAM,2025-03-10,,,,\n"
        self.assertEqual(len(parse_log(zipped("x.csv", text.encode()))), 3)

    def test_schedule(self) -> None:
        """
        The simulator's schedule (both formats) gives each report's daily
        publication time and the trading day it is for.
        """
        clock = Clock()
        clock.advance(ONE_PM)
        simulator = OasisSimulator(clock, publish_offset=-11 * 3600)
        args = {
            "queryname": "ATL_PUB_SCHED",
            "startdatetime": "20250309T00:00-0000",
            "enddatetime": "20250310T00:00-0000",
            "version": "1",
            "market_run_id": "DAM",
        }
        for answer in (
            simulator.single_zip(args, "u"),
            simulator.single_zip({**args, "resultformat": "6"}, "u"),
        ):
            entries = {e.key: e for e in parse_schedule(answer)}
            self.assertEqual(entries[("PRC_LMP", "DAM")].time, datetime.time(13, 0))
            self.assertEqual(entries[("PRC_LMP", "DAM")].day_offset, 1)
            self.assertNotIn(("PRC_LMP", "RUC"), entries)


class KeyTests(SynchronousTestCase):
    """
    An entry's or a schedule line's key matches reports in any case of
    their market.
    """

    def test_marketInAnyCase(self) -> None:
        """
        The key holds the market in upper case, the queryname as it is.
        """
        entry = Publication("PRC_LMP", "dam", datetime.date(2025, 3, 9), 0.0)
        line = Scheduled("PRC_LMP", "Dam", datetime.time(13, 0))
        self.assertEqual((entry.key, line.key), (("PRC_LMP", "DAM"), ("PRC_LMP", "DAM")))


class SimulatorLogTests(SynchronousTestCase):
    """
    The simulator's log agrees with the data it serves.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(ONE_PM)
        self.simulator = OasisSimulator(self.clock, publish_offset=TWO_PM)

    def log(self, start: str, end: str) -> list[Publication]:
        """
        @return: The simulator's publications log from C{start} to C{end}
            (OASIS's C{YYYYMMDDTHH:MM-0000}).
        """
        return parse_log(
            self.simulator.single_zip(
                {
                    "queryname": "ATL_PUB",
                    "startdatetime": start,
                    "enddatetime": end,
                    "version": "1",
                    "market_run_id": "DAM",
                },
                "u",
            )
        )

    def test_publishedDaysAreServed(self) -> None:
        """
        The log's newest day is the last day with data; the next day is
        neither logged nor served until its publication time.
        """
        entries = self.log("20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(max(e.day for e in entries), datetime.date(2025, 3, 9))
        self.assertEqual(self.simulator.available()[1], datetime.date(2025, 3, 9))
        self.clock.advance(3660)
        entries = self.log("20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(max(e.day for e in entries), datetime.date(2025, 3, 10))
        self.assertEqual(self.simulator.available()[1], datetime.date(2025, 3, 10))

    def test_revision(self) -> None:
        """
        A revision changes every answer covering the day and adds a
        C{REVISED} entry, version 2 then 3.
        """
        url = (
            "/oasisapi/SingleZip?enddatetime=20250307T08:00-0000&market_run_id=DAM"
            "&queryname=PRC_LMP&startdatetime=20250306T08:00-0000&version=1"
        )
        args = {
            "queryname": "PRC_LMP",
            "startdatetime": "20250306T08:00-0000",
            "enddatetime": "20250307T08:00-0000",
            "version": "1",
            "market_run_id": "DAM",
        }
        before = self.simulator.single_zip(args, url)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 6))
        self.clock.advance(2)
        after = self.simulator.single_zip(args, url)
        self.assertNotEqual(before, after)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 6))
        self.clock.advance(2)
        revised = [e for e in self.log("20250310T19:00-0000", "20250310T21:00-0000") if e.revision]
        self.assertEqual([(e.day.day, e.version) for e in revised], [(6, 2), (6, 3)])

    def test_brokenLog(self) -> None:
        """
        C{broken_log} answers the log with error 1005.
        """
        self.simulator.broken_log = True
        error = self.assertRaises(OasisError, self.log, "20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(error.code, 1005)
