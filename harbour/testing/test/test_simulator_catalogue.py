"""
Tests for L{harbour.testing.simulator.generic} and the simulator's cover of
harbour's catalogue: every catalogued report and group gets data.
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path
from xml.etree import ElementTree

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.catalogue import REPORT, CatalogueEntry, load_catalogue, span_hours
from harbour.oasis.classify import BAD_REQUEST, DATA, classify
from harbour.oasis.requests import report_urls
from harbour.testing.simulator import CATALOGUE, GMT_FORMAT, GROUPS, NAMESPACE, UTC, OasisSimulator
from harbour.testing.test.rendering import members, render

#: The real OASIS samples.
SAMPLES = Path(__file__).parents[2] / "test" / "samples"
#: 2025-03-12T12:00Z.
NOW = 1741780800.0
#: The start of trading day 2025-01-14 (Pacific).
JAN14 = datetime.datetime(2025, 1, 14, 8, tzinfo=UTC)

#: A dozen entries without generators of their own, reports and groups,
#: with and without markets, daily and hourly.
SAMPLE = [
    (REPORT, "PRC_AS"),
    (REPORT, "PRC_INTVL_AS"),
    (REPORT, "PRC_HASP_LMP"),
    (REPORT, "TRNS_ATC"),
    (REPORT, "ENE_EA"),
    (REPORT, "AS_REQ"),
    (REPORT, "ATL_PNODE"),
    (REPORT, "PUB_CRR_BID"),
    ("group", "HASP_LMP_GRP"),
    ("group", "DAM1_GRP"),
    ("group", "POST1_GRP"),
    ("group", "ENE_OIC_GRP"),
]


def path_for(entry: CatalogueEntry, hours: int | None = None, extra: str = "") -> str:
    """
    @param entry: A catalogued report or group.
    @param hours: The window from 2025-01-14; by default a day, or an hour
        where that is the limit for all nodes.
    @return: The path of a request for it, in its first market.
    """
    if hours is None:
        hours = min(24, span_hours(entry.max_window_span({"grp_type": "ALL"})))
    end = JAN14 + datetime.timedelta(hours=hours)
    window = f"startdatetime={JAN14:{GMT_FORMAT}}&enddatetime={end:{GMT_FORMAT}}&version={entry.versions[0]}"
    if entry.kind == REPORT:
        market = f"&market_run_id={entry.market_run_ids[0]}" if entry.market_run_ids else ""
        return f"/oasisapi/SingleZip?queryname={entry.name}&{window}{market}{extra}"
    return f"/oasisapi/GroupZip?groupid={entry.name}&{window}{extra}"


def interval_columns(data: bytes) -> tuple[list[str], list[str], list[str]]:
    """
    @param data: An XML member in the C{OASISReport} layout.
    @return: Its C{INTERVAL_START_GMT} and C{INTERVAL_END_GMT} values in
        order, and its distinct C{OPR_DATE} values, sorted.
    """
    root = ElementTree.fromstring(data)

    def texts(name: str) -> list[str]:
        return [element.text or "" for element in root.iter(f"{{{NAMESPACE}}}{name}")]

    return texts("INTERVAL_START_GMT"), texts("INTERVAL_END_GMT"), sorted(set(texts("OPR_DATE")))


def entry_of(kind: str, name: str) -> CatalogueEntry:
    """
    @return: The catalogue's report or group C{name}.
    """
    entry = load_catalogue().entry(queryname=name) if kind == REPORT else load_catalogue().entry(groupid=name)
    assert entry is not None, name
    return entry


class CatalogueCoverTests(SynchronousTestCase):
    """
    Catalogued reports and groups without generators of their own get
    generic data, in CSV or XML, deterministic from the seed and URL.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.simulator = OasisSimulator(self.clock, last_day=datetime.date(2025, 12, 31))

    def answer(self, path: str, simulator: OasisSimulator | None = None) -> bytes:
        """
        @return: The data answer to C{path} (a group's after its 1015).
        """
        simulator = simulator or self.simulator
        if "GroupZip" in path:
            render(simulator, path)
        code, body = render(simulator, path)
        verdict = classify(body)
        self.assertEqual((code, verdict.kind), (200, DATA), f"{path}: {verdict.description}")
        return body

    def test_sample(self) -> None:
        """
        A dozen entries, reports and groups, each answer a day (or an
        hour, where that is their limit) with data in both formats, one
        member per report.
        """
        for kind, name in SAMPLE:
            entry = entry_of(kind, name)
            reports = entry.reports if kind != REPORT else (name,)
            for extra in ("", "&resultformat=6"):
                found = members(self.answer(path_for(entry, extra=extra)))
                self.assertEqual(len(found), len(reports), name)
                for member, queryname in zip(found, reports, strict=True):
                    self.assertIn(f"_{queryname}", member)
                    self.assertTrue(member.endswith(".csv" if extra else ".xml"), member)

    def test_monthlyGroupAsAsked(self) -> None:
        """
        A group whose one answer holds its month answers the request
        harbour makes of it, a month's first trading day without
        C{enddatetime}, with data.
        """
        manifest = ManifestTopic(base_url="http://127.0.0.1:9/oasisapi", start="2025-01-14", end="2025-01-14")
        [request] = report_urls(
            manifest, [ReportTopic(name="oic", groupid="ENE_OIC_GRP", version=8)], JAN14.date()
        )
        path = request.url.removeprefix("http://127.0.0.1:9")
        self.assertEqual(
            path, "/oasisapi/GroupZip?groupid=ENE_OIC_GRP&startdatetime=20250101T08:00-0000&version=8"
        )
        [(member, data)] = members(self.answer(path)).items()
        self.assertEqual(member, "20250101_20250131_ENE_OIC_v8.xml")
        starts, ends, days = interval_columns(data)
        self.assertEqual(len(starts), 31 * 24)
        self.assertEqual((starts[0], ends[-1]), ("2025-01-01T08:00:00-00:00", "2025-02-01T08:00:00-00:00"))
        self.assertEqual(days, [f"2025-01-{day:02d}" for day in range(1, 32)])

    def test_dayGroupAsAsked(self) -> None:
        """
        A day group asked for by C{startdatetime} alone answers the whole
        trading day that starts there: 25 hours on the autumn day, 23 on
        the spring day.
        """
        for start, hours, last in [
            ("20251102T07:00-0000", 25, "2025-11-03T08:00:00-00:00"),
            ("20250309T08:00-0000", 23, "2025-03-10T07:00:00-00:00"),
        ]:
            path = f"/oasisapi/GroupZip?groupid=DAM_LMP_GRP&startdatetime={start}&version=1"
            found = members(self.answer(path))
            self.assertEqual([name.split("_")[-2] for name in found], ["LMP", "MCC", "MCE", "MCL"])
            for name, data in found.items():
                self.assertEqual(name[:17], f"{start[:8]}_{start[:8]}")
                starts, ends, days = interval_columns(data)
                self.assertEqual(len(set(starts)), hours, name)
                self.assertEqual(ends[-1], last, name)
                self.assertEqual(days, [f"{start[:4]}-{start[4:6]}-{start[6:8]}"], name)

    def test_ownGroupsFormats(self) -> None:
        """
        The simulator's own groups answer CSV for C{resultformat=6} (spec
        section 8: "For CSV format use resultformat=6") and XML otherwise,
        as every other group does.
        """
        hour = f"&enddatetime={JAN14 + datetime.timedelta(hours=1):{GMT_FORMAT}}"
        for groupid in GROUPS:
            window = f"startdatetime={JAN14:{GMT_FORMAT}}" + (hour if groupid == "RTM_LMP_GRP" else "")
            path = f"/oasisapi/GroupZip?groupid={groupid}&{window}&version=1"
            for extra, suffix in [("&resultformat=6", ".csv"), ("", ".xml")]:
                found = members(self.answer(path + extra))
                self.assertTrue(found, groupid)
                for name, data in found.items():
                    self.assertTrue(name.endswith(suffix), (groupid, name))
                    if suffix == ".csv":
                        self.assertTrue(data.startswith(b"INTERVALSTARTTIME_GMT,"), (groupid, name))

    def test_everyEntry(self) -> None:
        """
        Every report and group of the catalogue answers with data.
        """
        for entry in load_catalogue().reports + load_catalogue().groups:
            self.answer(path_for(entry))

    def test_csvRows(self) -> None:
        """
        Generic CSV has the trading-day and GMT interval columns, a data
        item and a value, and one row per interval: 25 hourly rows on the
        autumn day (its repeated hour labelled 25), four 15-minute rows for an hour of a report capped at
        an hour.
        """
        start = datetime.datetime(2025, 11, 2, 7, tzinfo=UTC)
        end = start + datetime.timedelta(hours=25)
        path = (
            f"/oasisapi/SingleZip?queryname=PRC_AS&market_run_id=DAM&version=1&resultformat=6"
            f"&startdatetime={start:{GMT_FORMAT}}&enddatetime={end:{GMT_FORMAT}}"
        )
        [(name, data)] = members(self.answer(path)).items()
        self.assertRegex(name, r"^20251102_20251102_PRC_AS_DAM_\d{8}_\d\d_\d\d_\d\d_v1\.csv$")
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(
            list(rows[0]),
            [
                "OPR_DT",
                "OPR_HR",
                "OPR_INTERVAL",
                "INTERVAL_START_GMT",
                "INTERVAL_END_GMT",
                "MARKET_RUN_ID",
                "DATA_ITEM",
                "VALUE",
            ],
        )
        self.assertEqual([int(row["OPR_HR"]) for row in rows], [1, 2, 25, *range(3, 25)])
        self.assertEqual(rows[0]["INTERVAL_START_GMT"], "2025-11-02T07:00:00-00:00")
        self.assertEqual({row["DATA_ITEM"] for row in rows}, {"PRC_AS"})
        hourly = members(self.answer(path_for(entry_of(REPORT, "PRC_INTVL_AS"), extra="&resultformat=6")))
        [data] = hourly.values()
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual([row["OPR_INTERVAL"] for row in rows], ["1", "2", "3", "4"])

    def test_xml(self) -> None:
        """
        Generic XML is an C{OASISReport} with one C{REPORT_DATA} per
        interval, each with a value.
        """
        [data] = members(self.answer(path_for(entry_of(REPORT, "TRNS_ATC")))).values()
        root = ElementTree.fromstring(data)
        self.assertEqual(root.tag, f"{{{NAMESPACE}}}OASISReport")
        values = root.findall(f".//{{{NAMESPACE}}}REPORT_DATA/{{{NAMESPACE}}}VALUE")
        self.assertEqual(len(values), 24)
        self.assertTrue(all(float(value.text or "") for value in values))

    def test_xmlIntervalNumbers(self) -> None:
        """
        XML's C{INTERVAL_NUM} numbers a sub-hourly interval within its
        trading day, as in the real C{SLD_FCST} sample of 2014-05-08 (on
        daylight time, as 2025-05-08 is): the 15-minute interval from
        19:15Z is 50, the 5-minute ones from 18:55Z and 19:05Z are 144 and
        146; the generic 15-minute data is numbered alike.  On the autumn
        change day the numbers follow the hours' labels: the repeated
        hour's first 5-minute interval is (25 - 1) * 12 + 1.
        """
        sample = ElementTree.parse(SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").getroot()
        real = [
            (
                data.findtext(f"{{{NAMESPACE}}}DATA_ITEM") or "",
                (data.findtext(f"{{{NAMESPACE}}}INTERVAL_START_GMT") or "")[11:],
                int(data.findtext(f"{{{NAMESPACE}}}INTERVAL_NUM") or ""),
            )
            for data in sample.iter(f"{{{NAMESPACE}}}REPORT_DATA")
        ]
        self.assertEqual(
            real,
            [
                ("SYS_FCST_15MIN_MW", "19:15:00-00:00", 50),
                ("SYS_FCST_5MIN_MW", "18:55:00-00:00", 144),
                ("SYS_FCST_5MIN_MW", "19:05:00-00:00", 146),
            ],
        )
        reports = {
            "SYS_FCST_15MIN_MW": ("PRC_RTPD_LMP", "RTPD"),
            "SYS_FCST_5MIN_MW": ("PRC_INTVL_LMP", "RTM"),
        }
        for item, time, number in real:
            queryname, market = reports[item]
            hour = datetime.datetime.fromisoformat(f"2025-05-08T{time[:2]}:00:00+00:00")
            numbers = self.interval_numbers(
                self.window_path(queryname, market, hour, "&node=TH_NP15_GEN-APND")
            )
            self.assertEqual(numbers[f"2025-05-08T{time}"], number, item)
        hour = datetime.datetime(2025, 5, 8, 19, tzinfo=UTC)
        numbers = self.interval_numbers(self.window_path("PRC_INTVL_AS", "RTM", hour))
        self.assertEqual(numbers["2025-05-08T19:15:00-00:00"], 50)
        repeated = datetime.datetime(2025, 11, 2, 9, tzinfo=UTC)
        numbers = self.interval_numbers(
            self.window_path("PRC_INTVL_LMP", "RTM", repeated, "&node=TH_NP15_GEN-APND")
        )
        self.assertEqual(numbers["2025-11-02T09:00:00-00:00"], 24 * 12 + 1)
        numbers = self.interval_numbers(self.window_path("PRC_INTVL_AS", "RTM", repeated))
        self.assertEqual(numbers["2025-11-02T09:15:00-00:00"], 24 * 4 + 2)

    def test_loadXmlLikeTheRealOne(self) -> None:
        """
        C{SLD_FCST} in XML names each TAC area in C{RESOURCE_NAME}, and its
        C{REPORT_DATA} holds the real sample's elements in the same order.
        """
        sample = ElementTree.parse(SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").getroot()
        real = [[child.tag for child in data] for data in sample.iter(f"{{{NAMESPACE}}}REPORT_DATA")]
        [data] = members(self.answer(path_for(entry_of(REPORT, "SLD_FCST")))).values()
        ours = list(ElementTree.fromstring(data).iter(f"{{{NAMESPACE}}}REPORT_DATA"))
        self.assertEqual({tuple(child.tag for child in element) for element in ours}, {tuple(real[0])})
        self.assertEqual(len({tuple(tags) for tags in real}), 1)
        areas = {element.findtext(f"{{{NAMESPACE}}}RESOURCE_NAME") for element in ours}
        self.assertEqual(areas, {"CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC"})

    def window_path(self, queryname: str, market: str, start: datetime.datetime, extra: str = "") -> str:
        """
        @return: The path of an hour of C{queryname} from C{start}, in XML.
        """
        end = start + datetime.timedelta(hours=1)
        return (
            f"/oasisapi/SingleZip?queryname={queryname}&market_run_id={market}&version=1"
            f"&startdatetime={start:{GMT_FORMAT}}&enddatetime={end:{GMT_FORMAT}}{extra}"
        )

    def interval_numbers(self, path: str) -> dict[str, int]:
        """
        @return: The C{INTERVAL_NUM} of each C{INTERVAL_START_GMT} in the
            first member of the XML answer to C{path}.
        """
        data = next(iter(members(self.answer(path)).values()))
        return {
            element.findtext(f"{{{NAMESPACE}}}INTERVAL_START_GMT") or "": int(
                element.findtext(f"{{{NAMESPACE}}}INTERVAL_NUM") or ""
            )
            for element in ElementTree.fromstring(data).iter(f"{{{NAMESPACE}}}REPORT_DATA")
        }

    def test_deterministic(self) -> None:
        """
        The same URL gets the same bytes; another seed gets other bytes.
        """
        path = path_for(entry_of(REPORT, "ENE_EA"), extra="&resultformat=6")
        first = self.answer(path)
        self.assertEqual(self.answer(path), first)
        other = OasisSimulator(self.clock, seed=1, last_day=datetime.date(2025, 12, 31))
        self.assertNotEqual(self.answer(path, other), first)

    def test_markets(self) -> None:
        """
        A market the catalogue does not give a report is refused with
        1001; a market it gives that the report's own generator lacks gets
        generic data; a report without markets ignores one.
        """
        code, body = render(self.simulator, path_for(entry_of(REPORT, "PRC_AS")).replace("DAM", "RTM"))
        self.assertEqual((classify(body).kind, classify(body).code), (BAD_REQUEST, 1001))
        for queryname, market in [("SLD_REN_FCST", "ACTUAL"), ("SLD_REN_FCST", "HASP"), ("ENE_SLRS", "RUC")]:
            path = path_for(entry_of(REPORT, queryname)).replace("=DAM", f"={market}")
            verdict = classify(render(self.simulator, path)[1])
            self.assertEqual((verdict.kind, verdict.code), (BAD_REQUEST, 1001), path)
        self.assertNotIn("HASP", CATALOGUE["SLD_FCST"].markets)
        sld = path_for(entry_of(REPORT, "SLD_FCST"), extra="&resultformat=6").replace("=DAM", "=HASP")
        [data] = members(self.answer(sld)).values()
        self.assertIn(b"DATA_ITEM,VALUE", data)
        [name] = members(self.answer(path_for(entry_of(REPORT, "ATL_PNODE")) + "&market_run_id=DAM"))
        self.assertEqual(name, "20250114_20250114_ATL_PNODE_v1.xml")

    def test_ownGenerators(self) -> None:
        """
        In a catalogued group, a report with a generator of its own for the
        group's market gets that generator's data: C{RUC_LMP_GRP} has
        C{PRC_LMP} prices, C{DAM1_GRP} the demand forecast of C{SLD_FCST},
        and C{RTPD_FCST_GRP} and C{RTM1_GRP} its RTPD and RTD forecasts
        (spec section 7: "RTM/RTPD", "RTM/RTD").
        """
        ruc = members(self.answer(path_for(entry_of("group", "RUC_LMP_GRP"))))
        self.assertEqual([name.split("_")[-2] for name in ruc], ["LMP", "MCC", "MCE", "MCL"])
        dam1 = members(self.answer(path_for(entry_of("group", "DAM1_GRP"), extra="&resultformat=6")))
        sld = next(data for name, data in dam1.items() if "_SLD_FCST_DAM_" in name)
        self.assertIn(b"TAC_AREA_NAME", sld)
        for groupid, execution in [("RTPD_FCST_GRP", "RTPD"), ("RTM1_GRP", "RTD")]:
            found = members(self.answer(path_for(entry_of("group", groupid), extra="&resultformat=6")))
            sld = next(data for name, data in found.items() if "_SLD_FCST_RTM_" in name)
            rows = list(csv.DictReader(io.StringIO(sld.decode())))
            self.assertEqual({row["EXECUTION_TYPE"] for row in rows}, {execution}, groupid)

    def test_simulatorNamesCatalogued(self) -> None:
        """
        Every report with a generator of its own is catalogued, in each
        market it has data in (the publications log lists those), and so
        is every group of the simulator's own or the report it holds: the
        catalogue gives all their limits.
        """
        catalogue = load_catalogue()
        for queryname, report in CATALOGUE.items():
            entry = catalogue.entry(queryname=queryname)
            assert entry is not None, queryname
            self.assertEqual(set(report.markets) - set(entry.market_run_ids), set(), queryname)
        for groupid, (queryname, ignored) in GROUPS.items():
            self.assertTrue(
                catalogue.entry(groupid=groupid) is not None
                or catalogue.entry(queryname=queryname) is not None
            )
