"""
Tests of the simulator's data as its log describes it: a trading day's
values are the same in every answer that holds it, whatever the window,
until a revision of that day changes them, as the log then says.
"""

from __future__ import annotations

import csv
import datetime
import io

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.publications import parse_log
from harbour.testing.simulator import GMT_FORMAT, UTC, OasisSimulator
from harbour.testing.simulator.formats import day_start
from harbour.testing.test.rendering import members, render

#: 2025-06-01T00:00Z: every day of the tests is published.
JUNE = datetime.datetime(2025, 6, 1, tzinfo=UTC).timestamp()
MARCH1 = datetime.date(2025, 3, 1)

#: A report of each kind of data: (queryname, market, extra arguments).
KINDS = [
    ("PRC_LMP", "DAM", ""),
    ("PRC_INTVL_LMP", "RTM", "&node=TH_NP15_GEN-APND"),
    ("SLD_FCST", "DAM", ""),
    ("ENE_SLRS", "DAM", ""),
    # Generic data.
    ("PRC_CNSTR", "DAM", ""),
]


def single(
    queryname: str, market: str, start: datetime.datetime, end: datetime.datetime, extra: str = ""
) -> str:
    """
    @return: The path of a SingleZip CSV request for [start, end).
    """
    return (
        f"/oasisapi/SingleZip?queryname={queryname}&market_run_id={market}&version=1&resultformat=6"
        f"&startdatetime={start:{GMT_FORMAT}}&enddatetime={end:{GMT_FORMAT}}{extra}"
    )


def days(first: datetime.date, count: int) -> tuple[datetime.datetime, datetime.datetime]:
    """
    @return: The window of C{count} trading days from C{first}.
    """
    return day_start(first), day_start(first + datetime.timedelta(days=count))


def rows(simulator: OasisSimulator, path: str) -> list[dict[str, str]]:
    """
    @return: The rows of the CSV answer to C{path}.
    """
    [data] = members(render(simulator, path)[1]).values()
    return list(csv.DictReader(io.StringIO(data.decode())))


def day_rows(simulator: OasisSimulator, path: str, day: datetime.date) -> list[dict[str, str]]:
    """
    @return: The rows of trading day C{day} in the CSV answer to C{path}.
    """
    return [row for row in rows(simulator, path) if row["OPR_DT"] == day.isoformat()]


class SameDayTests(SynchronousTestCase):
    """
    A day's values do not depend on the window asked for.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(JUNE)
        self.simulator = OasisSimulator(self.clock)

    def test_everyWindow(self) -> None:
        """
        A day's rows are the same in a 1-day and a 7-day answer, and in
        one starting days before, for data of every kind.
        """
        for queryname, market, extra in KINDS:
            hours = 1 if queryname == "PRC_INTVL_LMP" else 24
            one = day_rows(self.simulator, single(queryname, market, *days(MARCH1, 1), extra), MARCH1)
            week = single(queryname, market, *days(MARCH1, 7), extra)
            before = single(queryname, market, *days(MARCH1 - datetime.timedelta(days=3), 5), extra)
            self.assertEqual(len(one), len(day_rows(self.simulator, week, MARCH1)), queryname)
            self.assertGreaterEqual(len(one), hours, queryname)
            self.assertEqual(day_rows(self.simulator, week, MARCH1), one, queryname)
            self.assertEqual(day_rows(self.simulator, before, MARCH1), one, queryname)

    def test_partOfADay(self) -> None:
        """
        An hour of five-minute prices is the same in an answer for the
        hour as in one for its whole day.
        """
        start = day_start(MARCH1) + datetime.timedelta(hours=13)
        hour = rows(
            self.simulator, single("PRC_INTVL_LMP", "RTM", start, start + datetime.timedelta(hours=1))
        )
        whole = rows(self.simulator, single("PRC_INTVL_LMP", "RTM", *days(MARCH1, 1), "&node=X"))
        wanted = {row["INTERVALSTARTTIME_GMT"] for row in hour}
        self.assertEqual(len(wanted), 12)
        self.assertEqual([row for row in whole if row["INTERVALSTARTTIME_GMT"] in wanted], hour)

    def test_groupAsSingle(self) -> None:
        """
        A day group's answer holds the same values as its report's.
        """
        start, end = days(MARCH1, 1)
        path = (
            f"/oasisapi/GroupZip?groupid=DAM_LMP_GRP&startdatetime={start:{GMT_FORMAT}}"
            "&version=1&resultformat=6"
        )
        render(self.simulator, path)
        grouped = rows(self.simulator, path)
        single_rows = rows(self.simulator, single("PRC_LMP", "DAM", start, end))
        self.assertEqual(
            [(row["NODE"], row["LMP_TYPE"], row["MW"]) for row in grouped],
            [(row["NODE"], row["LMP_TYPE"], row["MW"]) for row in single_rows],
        )

    def test_repeatable(self) -> None:
        """
        The same request gets the same bytes from another simulator of the
        same seed, and other values from one of another seed.
        """
        path = single("PRC_LMP", "DAM", *days(MARCH1, 3))
        answer = render(self.simulator, path)[1]
        self.assertEqual(render(OasisSimulator(self.clock), path)[1], answer)
        other = rows(OasisSimulator(self.clock, seed=1), path)
        self.assertNotEqual([row["MW"] for row in other], [row["MW"] for row in rows(self.simulator, path)])


class PublishedDayTests(SynchronousTestCase):
    """
    A published day changes only when revised, as the log says.
    """

    def test_publishedDayDoesNotChangeWithoutRevision(self) -> None:
        """
        Day D, published and never revised, holds the same values in an
        answer of the same URL once D+1 is published too.  (It held other
        values then: each answer's values were drawn from one source for
        its whole window, and D+1 came to be in it.)
        """
        clock = Clock()
        clock.advance(day_start(MARCH1).timestamp() + 3600)
        simulator = OasisSimulator(clock)
        path = single("PRC_LMP", "DAM", *days(MARCH1, 3))
        early = day_rows(simulator, path, MARCH1)
        clock.advance(2 * 86400)
        late = day_rows(simulator, path, MARCH1)
        log = render(
            simulator,
            "/oasisapi/SingleZip?queryname=ATL_PUB&startdatetime=20250301T08:00-0000"
            "&enddatetime=20250304T08:00-0000&version=1&market_run_id=DAM&resultformat=6",
        )[1]
        self.assertEqual([p for p in parse_log(log) if p.version > 1], [])
        self.assertEqual(len(rows(simulator, path)), 3 * len(early))
        self.assertEqual(late, early)

    def test_revisionChangesOnlyTheRevisedDay(self) -> None:
        """
        A revision of day D changes D's values, in every market of the
        report, and no other day's, nor another report's.
        """
        clock = Clock()
        clock.advance(JUNE)
        simulator = OasisSimulator(clock)
        paths = [single("PRC_LMP", market, *days(MARCH1, 2)) for market in ("DAM", "RUC")]
        paths.append(single("SLD_FCST", "DAM", *days(MARCH1, 2)))
        before = [rows(simulator, path) for path in paths]
        simulator.revise("PRC_LMP", MARCH1)
        after = [rows(simulator, path) for path in paths]
        changed = [
            {a["OPR_DT"] for a, b in zip(old, new, strict=True) if a != b} for old, new in zip(before, after)
        ]
        self.assertEqual(changed, [{"2025-03-01"}, {"2025-03-01"}, set()])
        simulator.revise("PRC_LMP", MARCH1)
        again = rows(simulator, paths[0])
        self.assertNotEqual(
            [row["MW"] for row in again if row["OPR_DT"] == "2025-03-01"],
            [row["MW"] for row in after[0] if row["OPR_DT"] == "2025-03-01"],
        )


class RevisionLogTests(SynchronousTestCase):
    """
    Every revision is in the log: the simulator revises only the reports
    its log covers.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(JUNE)
        self.simulator = OasisSimulator(self.clock)

    def revisions(self) -> list[tuple[str, str, datetime.date, int]]:
        """
        @return: The revisions the log lists from an hour ago: report,
            market, day and version.
        """
        start = datetime.datetime.fromtimestamp(self.clock.seconds() - 3600, UTC)
        end = start + datetime.timedelta(days=1)
        log = render(
            self.simulator,
            f"/oasisapi/SingleZip?queryname=ATL_PUB&startdatetime={start:{GMT_FORMAT}}"
            f"&enddatetime={end:{GMT_FORMAT}}&version=1&market_run_id=ALL&resultformat=6",
        )[1]
        return sorted(
            (p.queryname, p.market_run_id, p.day, p.version) for p in parse_log(log) if p.version > 1
        )

    def test_logged(self) -> None:
        """
        A revision of a report the log covers is logged in each of its
        markets.
        """
        self.clock.advance(10)
        self.simulator.revise("PRC_LMP", MARCH1)
        self.clock.advance(10)
        self.assertEqual(self.revisions(), [("PRC_LMP", "DAM", MARCH1, 2), ("PRC_LMP", "RUC", MARCH1, 2)])

    def test_unloggedRefused(self) -> None:
        """
        A report the log does not cover (one of generic data) cannot be
        revised: its data would change, the log saying nothing.
        """
        path = (
            "/oasisapi/SingleZip?queryname=PRC_AS&startdatetime=20250301T08:00-0000"
            "&enddatetime=20250302T08:00-0000&version=1&market_run_id=DAM&resultformat=6"
        )
        before = render(self.simulator, path)[1]
        error = self.assertRaises(ValueError, self.simulator.revise, "PRC_AS", MARCH1)
        self.assertIn("PRC_AS is not in the simulator's publications log", str(error))
        self.clock.advance(10)
        self.assertEqual(render(self.simulator, path)[1], before)
        self.assertEqual(self.revisions(), [])
