"""
Tests of the simulator's answers against the real OASIS samples and the
interface specification: the names of their members, the error document,
the shape of C{SLD_FCST} in each market, the error of an empty query, and
how numbers are written.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path
from xml.etree import ElementTree

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.classify import BAD_REQUEST, classify
from harbour.testing.simulator import (
    CATALOGUE,
    NAMESPACE,
    UTC,
    GenericReport,
    OasisSimulator,
    error_document,
)
from harbour.testing.simulator.documents import Row, csv_document
from harbour.testing.simulator.formats import oasis_number
from harbour.testing.simulator.reports import report_xml
from harbour.testing.test.rendering import members, render

#: The real OASIS samples.
SAMPLES = Path(__file__).parents[2] / "test" / "samples"


def simulator() -> OasisSimulator:
    """
    @return: A simulator at 2026-01-05 whose data ends on 2025-12-31.
    """
    clock = Clock()
    clock.advance(datetime.datetime(2026, 1, 5, tzinfo=UTC).timestamp())
    return OasisSimulator(clock, last_day=datetime.date(2025, 12, 31))


def member_names(path: str) -> list[str]:
    """
    @return: The names of the members of the answer to C{path}.
    """
    return list(members(render(simulator(), path)[1]))


class MemberNameTests(SynchronousTestCase):
    """
    Members are named as OASIS names them.
    """

    def test_realRequest(self) -> None:
        """
        The answer to the real sample's request (PRC_LMP, all APNodes, from
        2020-01-02T00:00Z for 24 hours: 16:00 to 16:00 Pacific) is named
        as the real one, C{20200101_20200101_PRC_LMP_DAM_<created>_v1.csv}.
        """
        [name] = member_names(
            "/oasisapi/SingleZip?queryname=PRC_LMP&startdatetime=20200102T00:00-0000"
            "&enddatetime=20200103T00:00-0000&version=1&market_run_id=DAM&grp_type=ALL_APNODES"
            "&resultformat=6"
        )
        self.assertRegex(name, r"^20200101_20200101_PRC_LMP_DAM_\d{8}_\d\d_\d\d_\d\d_v1\.csv$")

    def test_tradingDays(self) -> None:
        """
        A window of whole trading days is named by its first and last, on
        the change days too; an hour by its day.
        """
        for start, end, days in [
            ("20250114T08:00-0000", "20250117T08:00-0000", "20250114_20250116"),
            ("20250309T08:00-0000", "20250310T07:00-0000", "20250309_20250309"),
            ("20250308T08:00-0000", "20250310T07:00-0000", "20250308_20250309"),
            ("20251102T07:00-0000", "20251103T08:00-0000", "20251102_20251102"),
            ("20250115T15:00-0000", "20250115T16:00-0000", "20250115_20250115"),
        ]:
            [name] = member_names(
                f"/oasisapi/SingleZip?queryname=SLD_FCST&startdatetime={start}&enddatetime={end}"
                "&version=1&market_run_id=DAM&resultformat=6"
            )
            self.assertTrue(name.startswith(f"{days}_SLD_FCST_DAM_"), (start, end, name))

    def test_errorNamesItsMarket(self) -> None:
        """
        An error's member names the report's market, as the real ones
        (C{20210215_20210215_PUB_BID_RTM_v3.xml}) do.
        """
        self.assertEqual(
            member_names(
                "/oasisapi/SingleZip?queryname=PRC_LMP&startdatetime=20300102T08:00-0000"
                "&enddatetime=20300103T08:00-0000&version=1&market_run_id=DAM"
            ),
            ["20300102_20300102_PRC_LMP_DAM_v1.xml"],
        )


class ErrorDocumentTests(SynchronousTestCase):
    """
    Error documents are laid out as the real one is, byte for byte.
    """

    def test_likeTheRealOne(self) -> None:
        """
        The document of error 1000 made at the real sample's time is the
        real sample's 729 bytes: no newline after C{</m:OASISReport>},
        the time to the millisecond.
        """
        real = (SAMPLES / "xml_error_1000_no_data_SLD_REN_FCST_erw.xml").read_bytes()
        made = datetime.datetime(2026, 10, 6, 9, 34, 35, 839000, tzinfo=UTC)
        self.assertEqual(error_document(1000, made), real)
        self.assertEqual(len(real), 729)

    def test_requestTime(self) -> None:
        """
        A refusal's C{TimeDate} is the time of the request, milliseconds
        and all, as the real ones vary; its member is as long as the real
        sample's.
        """
        clock = Clock()
        clock.advance(datetime.datetime(2026, 1, 5, 17, 2, 3, 456789, tzinfo=UTC).timestamp())
        path = (
            "/oasisapi/SingleZip?queryname=PRC_LMP&startdatetime=20300102T08:00-0000"
            "&enddatetime=20300103T08:00-0000&version=1&market_run_id=DAM"
        )
        [document] = members(render(OasisSimulator(clock), path)[1]).values()
        self.assertIn(b"<m:TimeDate>2026-01-05T17:02:03.456Z</m:TimeDate>", document)
        self.assertEqual(len(document), 729)


def csv_rows(path: str) -> list[dict[str, str]]:
    """
    @return: The rows of the one CSV member of the answer to C{path}.
    """
    [data] = members(render(simulator(), path)[1]).values()
    return list(csv.DictReader(io.StringIO(data.decode())))


class LoadSampleTests(SynchronousTestCase):
    """
    C{SLD_FCST} answers are shaped as the real samples are.
    """

    def test_actual(self) -> None:
        """
        The actual demand of the autumn change day has the real sample's
        columns in its order and 25 hours an area, and each row of the
        sample is found with the same times, hour, label, data item,
        C{POS} and every other column but the value and C{GROUP}; the
        values are whole megawatts, as the sample's are.
        """
        with (SAMPLES / "csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv").open() as sample:
            real = list(csv.DictReader(sample))
        ours = csv_rows(
            "/oasisapi/SingleZip?queryname=SLD_FCST&startdatetime=20251102T07:00-0000"
            "&enddatetime=20251103T08:00-0000&version=1&market_run_id=ACTUAL&resultformat=6"
        )
        self.assertEqual(list(ours[0]), list(real[0]))
        self.assertEqual(len(ours), 25 * len({row["TAC_AREA_NAME"] for row in ours}))
        found = {(row["TAC_AREA_NAME"], row["INTERVALSTARTTIME_GMT"]): row for row in ours}
        for row in real:
            mine = found[row["TAC_AREA_NAME"], row["INTERVALSTARTTIME_GMT"]]
            for column in set(row) - {"MW", "GROUP"}:
                self.assertEqual(mine[column], row[column], (column, row))
        self.assertEqual([row["MW"] for row in ours if not row["MW"].isdigit()], [])

    def test_dayAheadForecasts(self) -> None:
        """
        Each day-ahead forecast is its own series: the spec's data item
        for its market (section 5) and the label OASIS gives it, as in a
        real 2DA answer (C{Demand Forecast 2-Day Ahead},
        C{SYS_FCST_2DA_MW}).
        """
        for market, label, item in [
            ("DAM", "Demand Forecast Day Ahead", "SYS_FCST_DA_MW"),
            ("2DA", "Demand Forecast 2-Day Ahead", "SYS_FCST_2DA_MW"),
            ("7DA", "Demand Forecast 7-Day Ahead", "SYS_FCST_7DA_MW"),
        ]:
            rows = csv_rows(
                "/oasisapi/SingleZip?queryname=SLD_FCST&startdatetime=20250508T07:00-0000"
                f"&enddatetime=20250509T07:00-0000&version=1&market_run_id={market}&resultformat=6"
            )
            self.assertEqual(
                {(row["MARKET_RUN_ID"], row["LABEL"], row["XML_DATA_ITEM"]) for row in rows},
                {(market, label, item)},
            )

    def test_realTime(self) -> None:
        """
        C{SLD_FCST} in RTM answers as the real RTPD sample of 2014-05-08
        does (on daylight time, as 2025-05-08 is): each C{REPORT_HEADER}
        is the sample's, naming the execution type after the market, and
        each C{REPORT_DATA} holds the sample's elements in its order;
        RTPD is 15-minute C{SYS_FCST_15MIN_MW}, RTD 5-minute
        C{SYS_FCST_5MIN_MW} (the sample's header says RTPD and 900 s over
        both: its rows were cut from one answer), a whole day of
        intervals an area, in whole megawatts; and each of the sample's
        rows is found, its interval numbered and timed alike.
        """
        sample = ElementTree.parse(SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").getroot()
        [header] = sample.iter(tag("REPORT_HEADER"))
        real_header = [(child.tag, child.text) for child in header]
        real_tags = {tuple(child.tag for child in data) for data in sample.iter(tag("REPORT_DATA"))}
        real_rows = [row_of(data) for data in sample.iter(tag("REPORT_DATA"))]
        for execution, item, minutes in [("RTPD", "SYS_FCST_15MIN_MW", 15), ("RTD", "SYS_FCST_5MIN_MW", 5)]:
            [data] = members(render(simulator(), real_time_path(execution))[1]).values()
            root = ElementTree.fromstring(data)
            wanted = {
                tag("EXECUTION_TYPE"): execution,
                tag("SEC_PER_INTERVAL"): str(minutes * 60),
            }
            for header in root.iter(tag("REPORT_HEADER")):
                self.assertEqual(
                    [(child.tag, child.text) for child in header],
                    [(name, wanted.get(name, text)) for name, text in real_header],
                )
            datas = list(root.iter(tag("REPORT_DATA")))
            self.assertEqual({tuple(child.tag for child in data) for data in datas}, real_tags)
            rows = [row_of(data) for data in datas]
            self.assertEqual({row[0] for row in rows}, {item})
            per_area: dict[str, int] = {}
            for row in rows:
                per_area[row[1]] = per_area.get(row[1], 0) + 1
            self.assertEqual(set(per_area.values()), {24 * 60 // minutes}, execution)
            values = [data.findtext(tag("VALUE")) or "" for data in datas]
            self.assertEqual([value for value in values if not value.isdigit()], [])
            for row in real_rows:
                if row[0] == item:
                    self.assertIn(tuple(field.replace("2014-", "2025-") for field in row), rows)

    def test_realTimeCsv(self) -> None:
        """
        In CSV, C{SLD_FCST} in RTM has the real C{SLD_FCST} sample's
        columns in its order, market RTM, the execution type asked for,
        its label and the intervals of each hour.
        """
        with (SAMPLES / "csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv").open() as sample:
            columns = next(csv.reader(sample))
        for execution, label, per_hour in [
            ("RTPD", "RTM 15Min Load Forecast", 4),
            ("RTD", "RTM 5Min Load Forecast", 12),
        ]:
            rows = csv_rows(real_time_path(execution) + "&resultformat=6")
            self.assertEqual(list(rows[0]), columns)
            self.assertEqual(
                {(row["MARKET_RUN_ID"], row["EXECUTION_TYPE"], row["LABEL"]) for row in rows},
                {("RTM", execution, label)},
            )
            self.assertEqual({int(row["OPR_INTERVAL"]) for row in rows}, set(range(1, per_hour + 1)))

    def test_executionTypeRequired(self) -> None:
        """
        C{SLD_FCST} in RTM without C{execution_type}, which harbour's
        catalogue requires there, or with one it lacks, is refused with
        1001, "Invalid Parameters of the given report name".
        """
        for path in [real_time_path("").replace("&execution_type=", ""), real_time_path("HASP")]:
            verdict = classify(render(simulator(), path)[1])
            self.assertEqual((verdict.kind, verdict.code), (BAD_REQUEST, 1001), path)


def tag(name: str) -> str:
    """
    @return: The qualified name of element C{name} of the C{OASISReport}
        layout.
    """
    return f"{{{NAMESPACE}}}{name}"


def row_of(data: ElementTree.Element) -> tuple[str, ...]:
    """
    @return: The data item, resource, interval number, start and end of a
        C{REPORT_DATA}.
    """
    fields = ("DATA_ITEM", "RESOURCE_NAME", "INTERVAL_NUM", "INTERVAL_START_GMT", "INTERVAL_END_GMT")
    return tuple(data.findtext(tag(field)) or "" for field in fields)


def real_time_path(execution: str) -> str:
    """
    @return: The path of C{SLD_FCST} in RTM for C{execution} on trading
        day 2025-05-08, in XML.
    """
    return (
        "/oasisapi/SingleZip?queryname=SLD_FCST&startdatetime=20250508T07:00-0000"
        f"&enddatetime=20250509T07:00-0000&version=1&market_run_id=RTM&execution_type={execution}"
    )


class EmptyQueryTests(SynchronousTestCase):
    """
    A request without any parameter is an empty query (1011).
    """

    def test_empty(self) -> None:
        """
        SingleZip and GroupZip without parameters answer 1011.
        """
        for servlet in ("SingleZip", "GroupZip"):
            self.assertEqual(classify(render(simulator(), f"/oasisapi/{servlet}")[1]).code, 1011, servlet)

    def test_noReport(self) -> None:
        """
        Parameters without a report name are still an unknown report.
        """
        path = "/oasisapi/SingleZip?startdatetime=20250102T08:00-0000&version=1"
        self.assertEqual(classify(render(simulator(), path)[1]).code, 1005)


class NumberTests(SynchronousTestCase):
    """
    Numbers are written as in the real files: plainly, without trailing
    zeros, C{0} for zero.
    """

    def test_formats(self) -> None:
        """
        Floats are written to at most five decimals without trailing
        zeros, never in exponent notation nor as C{-0}; other values as
        they are.
        """
        self.assertEqual(
            [oasis_number(v) for v in (38.1942, 37.36854, 9e-05, -0.0, 0.0, -0.10312, 20536.0, 3.8, 12, "x")],
            ["38.1942", "37.36854", "0.00009", "0", "0", "-0.10312", "20536", "3.8", 12, "x"],
        )

    def test_documents(self) -> None:
        """
        CSV and XML documents write their numbers so, not as Python does
        (C{9e-05}, C{-0.0}, which large answers hold: small congestion and
        GHG prices, a loss rounded to zero).
        """
        rows: list[Row] = [
            {"OPR_DT": "2025-01-01", "OPR_HR": 1, "OPR_INTERVAL": 0, "NODE": "N", "XML_DATA_ITEM": "LMP_PRC"}
            | {"INTERVALSTARTTIME_GMT": "s", "INTERVALENDTIME_GMT": "e", "MW": value}
            for value in (9e-05, -0.0)
        ]
        self.assertEqual(csv_document(["MW"], rows), b"MW\n0.00009\n0\n")
        xml = report_xml(CATALOGUE["PRC_LMP"], "DAM", rows, datetime.datetime(2026, 1, 1, tzinfo=UTC), "NODE")
        self.assertEqual(re.findall(rb"<VALUE>([^<]*)</VALUE>", xml), [b"0.00009", b"0"])
        generic = GenericReport("PRC_CNSTR", "DAM", 60)
        xml = generic.xml(
            [
                row
                | {"INTERVAL_START_GMT": "s", "INTERVAL_END_GMT": "e", "DATA_ITEM": "X", "VALUE": row["MW"]}
                for row in rows
            ],
            datetime.datetime(2026, 1, 1, tzinfo=UTC),
        )
        self.assertEqual(re.findall(rb"<VALUE>([^<]*)</VALUE>", xml), [b"0.00009", b"0"])
