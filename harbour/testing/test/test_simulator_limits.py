"""
Tests for L{harbour.testing.simulator.limits}: the simulator refuses or cuts
windows as OASIS does, by the limits of harbour's catalogue.
"""

from __future__ import annotations

import csv
import datetime
import io

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.catalogue import load_catalogue, span_hours
from harbour.oasis.classify import BAD_REQUEST, DATA, EMPTY, RETRY_LATER, Verdict, classify
from harbour.testing.simulator import GMT_FORMAT, UTC, OasisSimulator
from harbour.testing.simulator.limits import allowed_hours
from harbour.testing.test.rendering import members, render

#: 2025-03-12T12:00Z.
NOW = 1741780800.0
#: The start of trading day 2025-01-14 (Pacific).
JAN14 = datetime.datetime(2025, 1, 14, 8, tzinfo=UTC)


def window(start: datetime.datetime, hours: float) -> str:
    """
    @return: The C{startdatetime} and C{enddatetime} arguments of a window.
    """
    end = start + datetime.timedelta(hours=hours)
    return f"startdatetime={start:{GMT_FORMAT}}&enddatetime={end:{GMT_FORMAT}}"


def single(
    queryname: str, market: str | None, hours: float, extra: str = "", start: datetime.datetime = JAN14
) -> str:
    """
    @return: The path of a SingleZip request of C{hours} from C{start}.
    """
    path = f"/oasisapi/SingleZip?queryname={queryname}&{window(start, hours)}&version=1"
    return path + (f"&market_run_id={market}" if market else "") + extra


def group(groupid: str, hours: float) -> str:
    """
    @return: The path of a GroupZip request of C{hours} from 2025-01-14.
    """
    return f"/oasisapi/GroupZip?groupid={groupid}&{window(JAN14, hours)}&version=1"


class LimitTests(SynchronousTestCase):
    """
    Windows over the catalogue's limits get the OASIS error for them, which
    harbour classifies as a bad request; windows within them get data.
    """

    def setUp(self) -> None:
        clock = Clock()
        clock.advance(NOW)
        self.simulator = OasisSimulator(clock, last_day=datetime.date(2025, 12, 31))

    def verdict(self, path: str) -> Verdict:
        """
        @return: How harbour classifies the answer to C{path}.
        """
        code, body = render(self.simulator, path)
        self.assertEqual(code, 200, path)
        return classify(body)

    def assertRefused(self, path: str, code: int) -> None:
        """
        C{path} is refused with OASIS error C{code}, a bad request.
        """
        verdict = self.verdict(path)
        self.assertEqual((verdict.kind, verdict.code), (BAD_REQUEST, code), path)

    def assertData(self, path: str) -> Verdict:
        """
        C{path} is answered with data.
        """
        verdict = self.verdict(path)
        self.assertEqual(verdict.kind, DATA, f"{path}: {verdict.description}")
        return verdict

    def test_overThirtyOneDays(self) -> None:
        """
        More than 31 days is refused with 1004, for reports with generators
        of their own, generic ones and the publications log.
        """
        for path in [
            single("PRC_LMP", "DAM", 32 * 24),
            single("SLD_FCST", "DAM", 32 * 24),
            single("PRC_CNSTR", "DAM", 32 * 24),
            single("ATL_PNODE", None, 32 * 24),
            single("ATL_PUB", "ALL", 32 * 24),
        ]:
            self.assertRefused(path, 1004)

    def test_thirtyOneTradingDays(self) -> None:
        """
        A limit in days allows the autumn day's extra hour: 31 trading days
        across the change (745 hours) are served, an hour more is not.
        """
        start = datetime.datetime(2025, 10, 15, 7, tzinfo=UTC)
        verdict = self.assertData(single("SLD_FCST", "DAM", 745, "&resultformat=6", start=start))
        self.assertTrue(verdict.members[0].startswith("20251015_20251114_"), verdict.members)
        self.assertRefused(single("SLD_FCST", "DAM", 746, start=start), 1004)

    def test_allNodesOneHour(self) -> None:
        """
        The real-time LMP reports for all nodes (C{grp_type=ALL} or
        C{ALL_APNODES}, C{node=ALL}) over more than one hour are refused
        with 1018; one hour is served.
        """
        for queryname, market in [
            ("PRC_INTVL_LMP", "RTM"),
            ("PRC_HASP_LMP", "HASP"),
            ("PRC_RTPD_LMP", "RTPD"),
        ]:
            for nodes in ("&grp_type=ALL", "&grp_type=ALL_APNODES", "&node=ALL"):
                self.assertRefused(single(queryname, market, 2, nodes), 1018)
                self.assertRefused(single(queryname, market, 24, nodes), 1018)
                self.assertData(single(queryname, market, 1, nodes))

    def test_someNodesThirtyOneDays(self) -> None:
        """
        For chosen nodes the real-time LMP reports allow 31 days, as the
        catalogue says: a day of five-minute prices for one node is served.
        """
        path = single("PRC_INTVL_LMP", "RTM", 24, "&node=TH_NP15_GEN-APND&resultformat=6")
        self.assertData(path)
        [data] = members(render(self.simulator, path)[1]).values()
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(len({row["INTERVALSTARTTIME_GMT"] for row in rows}), 24 * 12)

    def test_lmpAllNodesFirstDay(self) -> None:
        """
        C{PRC_LMP} for all nodes over more than a day answers the first
        trading day only, as OASIS does (it ignores C{enddatetime}).
        """
        for nodes in ("&grp_type=ALL", "&grp_type=ALL_APNODES", "&node=ALL"):
            path = single("PRC_LMP", "DAM", 72, nodes + "&resultformat=6")
            body = render(self.simulator, path)[1]
            [(name, data)] = members(body).items()
            self.assertTrue(name.startswith("20250114_20250114_PRC_LMP_DAM_"), name)
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            self.assertEqual({row["OPR_DT"] for row in rows}, {"2025-01-14"})
            self.assertEqual(len(rows), 24 * self.simulator.nodes * 4)
            self.assertEqual(classify(body).kind, DATA)

    def test_allNodesShortWindowWholeSpan(self) -> None:
        """
        For all nodes a window shorter than the all-nodes span is answered
        with the whole span from C{startdatetime}, as OASIS answers it (it
        ignores C{enddatetime}): six hours of C{PRC_LMP} from the start of
        a trading day bring that trading day, six hours from its noon
        bring 24 hours to the next noon, and a quarter hour of
        C{PRC_INTVL_LMP} brings the hour.  Windows asked for so overlap.
        """
        noon = JAN14 + datetime.timedelta(hours=12)
        for nodes in ("&grp_type=ALL", "&grp_type=ALL_APNODES", "&node=ALL"):
            for start, days in [(JAN14, {"2025-01-14"}), (noon, {"2025-01-14", "2025-01-15"})]:
                path = single("PRC_LMP", "DAM", 6, nodes + "&resultformat=6", start)
                [data] = members(render(self.simulator, path)[1]).values()
                rows = list(csv.DictReader(io.StringIO(data.decode())))
                starts = sorted({row["INTERVALSTARTTIME_GMT"] for row in rows})
                self.assertEqual(len(starts), 24, path)
                self.assertEqual(starts[0], f"{start:%Y-%m-%dT%H:%M}:00-00:00", path)
                self.assertEqual({row["OPR_DT"] for row in rows}, days, path)
            path = single("PRC_INTVL_LMP", "RTM", 0.25, nodes + "&resultformat=6")
            [data] = members(render(self.simulator, path)[1]).values()
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            self.assertEqual(len({row["INTERVALSTARTTIME_GMT"] for row in rows}), 12, path)

    def test_someNodesShortWindowAsAsked(self) -> None:
        """
        For chosen nodes a short window is answered as asked: OASIS
        reads C{enddatetime} then.
        """
        path = single("PRC_LMP", "DAM", 6, "&node=TH_NP15_GEN-APND&resultformat=6")
        [data] = members(render(self.simulator, path)[1]).values()
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(len({row["INTERVALSTARTTIME_GMT"] for row in rows}), 6)

    def test_lmpAllNodesWholeDay(self) -> None:
        """
        C{PRC_LMP} for all nodes over the autumn day (25 hours) answers the
        whole day, as over the spring day (23 hours): within a day's limit
        nothing is cut.  Each node's hours come in order, labelled as OASIS
        labels them: the autumn day's repeated hour is 25, the spring day
        has no 3.
        """
        for start, hours, labels in [
            (datetime.datetime(2025, 11, 2, 7, tzinfo=UTC), 25, [1, 2, 25, *range(3, 25)]),
            (datetime.datetime(2025, 3, 9, 8, tzinfo=UTC), 23, [1, 2, *range(4, 25)]),
        ]:
            path = single("PRC_LMP", "DAM", hours, "&grp_type=ALL&resultformat=6", start)
            [data] = members(render(self.simulator, path)[1]).values()
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            nodes = {row["NODE"] for row in rows}
            self.assertEqual(len(nodes), self.simulator.nodes)
            for node in nodes:
                ours = [row for row in rows if row["NODE"] == node and row["LMP_TYPE"] == "LMP"]
                self.assertEqual([int(row["OPR_HR"]) for row in ours], labels, node)
                self.assertEqual(len({row["INTERVALSTARTTIME_GMT"] for row in ours}), hours, node)

    def test_shortLimits(self) -> None:
        """
        Reports whose every request is capped at a day or an hour are
        refused over it: 1004 for a day, 1018 for an hour.
        """
        self.assertRefused(single("PRC_AS", "DAM", 48), 1004)
        self.assertData(single("PRC_AS", "DAM", 24))
        self.assertRefused(single("PRC_INTVL_AS", "RTM", 2), 1018)
        self.assertData(single("PRC_INTVL_AS", "RTM", 1))

    def test_groups(self) -> None:
        """
        Group windows follow the groups' limits: a day for the day-ahead
        LMP group (1004 over it), an hour for the real-time ones (1018);
        within them the first request is in preparation, the next served.
        """
        self.assertRefused(group("DAM_LMP_GRP", 48), 1004)
        self.assertRefused(group("RTM_LMP_GRP", 2), 1018)
        self.assertRefused(group("HASP_LMP_GRP", 24), 1018)
        for path in (group("DAM_LMP_GRP", 24), group("RTM_LMP_GRP", 1), group("HASP_LMP_GRP", 1)):
            first = self.verdict(path)
            self.assertEqual((first.kind, first.code), (RETRY_LATER, 1015), path)
            self.assertData(path)

    def test_everyEntryOverItsLimit(self) -> None:
        """
        Every report and group of the catalogue refuses a window an hour
        longer than its limit allows, with 1004 for a limit in days and
        1018 for one in hours.
        """
        for entry in load_catalogue().reports + load_catalogue().groups:
            market = entry.market_run_ids[0] if entry.market_run_ids and entry.kind == "report" else None
            hours = allowed_hours(entry.max_span) + 1
            code = 1004 if entry.max_span.endswith("d") else 1018
            if entry.kind == "report":
                self.assertRefused(single(entry.name, market, hours), code)
            else:
                self.assertRefused(group(entry.name, hours), code)

    def test_limitIsTheCatalogues(self) -> None:
        """
        A window as long as the catalogue allows for all nodes is served,
        for entries with limits of a day and of an hour.
        """
        for queryname, market in [
            ("PRC_RTM_LAP", "RTM"),
            ("PRC_MPM_RTM_LMP", "HASP"),
            ("PRC_SPTIE_LMP", "DAM"),
        ]:
            entry = load_catalogue().entry(queryname=queryname)
            assert entry is not None
            hours = span_hours(entry.max_window_span({"grp_type": "ALL"}))
            self.assertData(single(queryname, market, hours, "&grp_type=ALL"))

    def test_tooManyItems(self) -> None:
        """
        A list longer than the catalogue's C{max_items} is refused with
        1017; ten items are served.
        """
        nodes = ",".join(f"N{i}" for i in range(11))
        self.assertRefused(single("PRC_LMP", "DAM", 24, f"&node={nodes}"), 1017)
        self.assertRefused(single("TRNS_CURR_USAGE", None, 24, f"&ti_id={nodes}"), 1017)
        self.assertData(single("TRNS_CURR_USAGE", None, 24, "&ti_id=" + ",".join(f"N{i}" for i in range(10))))

    def test_equalTimes(self) -> None:
        """
        An C{enddatetime} equal to C{startdatetime} is allowed (spec
        section 2.1: "equal or greater than"; the C{PRC_CURR_LMP} example
        asks so): an empty window has no data (1000, for reports and
        groups alike, and for the publications log), the publication
        schedule, which follows no window, is answered and named after
        the day asked for. An end before the start is still refused with
        1002.
        """
        for path in [
            single("PRC_LMP", "DAM", 0),
            single("PRC_CURR_LMP", None, 0, "&node=ALL"),
            single("ATL_PUB", "ALL", 0),
            group("DAM_LMP_GRP", 0),
            group("RTM_LMP_GRP", 0),
        ]:
            verdict = self.verdict(path)
            self.assertEqual((verdict.kind, verdict.code), (EMPTY, 1000), path)
        verdict = self.assertData(single("ATL_PUB_SCHED", "ALL", 0))
        self.assertTrue(verdict.members[0].startswith("20250114_20250114_ATL_PUB_SCHED_"), verdict.members)
        for path in [single("PRC_LMP", "DAM", -1), single("ATL_PUB", "ALL", -1), group("DAM_LMP_GRP", -1)]:
            self.assertRefused(path, 1002)

    def test_unknownNames(self) -> None:
        """
        Names the catalogue does not know keep their errors: 1005 for a
        report, 1016 for a group.
        """
        self.assertRefused(single("NOPE", "DAM", 24), 1005)
        self.assertRefused(group("NOPE", 24), 1016)
