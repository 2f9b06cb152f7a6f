"""
Tests of L{harbour.dataset.parse}: the real samples become typed rows, and
every malformed answer a clear L{ParseError}.
"""

from __future__ import annotations

import csv
import datetime
import errno
import io
import os
import subprocess
import sys
import time
import weakref
import zipfile
import zlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pyarrow as pa
from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset import parse
from harbour.dataset.columns import TIMESTAMP, column_type
from harbour.dataset.parse import ParseError, read_csv, read_xml, read_zip
from harbour.dataset.test.helpers import FALLBACK_CSV, HUBS_CSV, HUBS_ZIP, SAMPLES, simulated, zip_of
from harbour.dataset.xmlrows import MOST_TEXT
from harbour.oasis.test.test_classify import nested, repeated

UTC = datetime.UTC


def table_of(batches: list[pa.RecordBatch]) -> pa.Table:
    """
    @return: The batches as one table.
    """
    return pa.Table.from_batches(batches)


def expected_value(source: str, text: str) -> object:
    """
    @return: What a source column's text should become.
    """
    if text == "":
        return None
    kind = column_type(source)
    if kind == TIMESTAMP:
        return datetime.datetime.fromisoformat(text).astimezone(UTC)
    if kind == pa.date32():
        return datetime.date.fromisoformat(text)
    if kind == pa.int64():
        return int(text)
    if kind == pa.float64():
        return float(text)
    return text


class CsvTests(SynchronousTestCase):
    """
    CSV answers: every column kept, lower case, typed.
    """

    def assertRoundTrip(self, sample: Path) -> pa.Table:
        """
        Assert that a sample's rows come back whole, value for value.

        @return: The parsed table.
        """
        with sample.open("rb") as stream:
            table = table_of(list(read_csv(stream, sample.name)))
        source = list(csv.DictReader(io.StringIO(sample.read_text())))
        self.assertEqual(table.num_rows, len(source))
        parsed = table.to_pylist()
        for expected, row in zip(source, parsed, strict=True):
            for name, text in expected.items():
                self.assertEqual(row[name.lower()], expected_value(name, text), (name, text))
        return table

    def test_hubs(self) -> None:
        """
        The PRC_LMP hubs sample round-trips, with the types of its columns.
        """
        table = self.assertRoundTrip(HUBS_CSV)
        types = {f.name: f.type for f in table.schema}
        self.assertEqual(types["intervalstarttime_gmt"], TIMESTAMP)
        self.assertEqual(types["opr_dt"], pa.date32())
        self.assertEqual(types["opr_hr"], pa.int64())
        self.assertEqual(types["mw"], pa.float64())
        self.assertEqual(types["node"], pa.string())
        self.assertEqual(types["interval_start_utc"], TIMESTAMP)
        self.assertEqual(table.column("interval_start_utc"), table.column("intervalstarttime_gmt"))
        self.assertEqual(table.column("interval_end_utc"), table.column("intervalendtime_gmt"))
        self.assertEqual(table.column("trading_date"), table.column("opr_dt"))

    def test_small_blocks(self) -> None:
        """
        A member read in many blocks, each assembled from many pieces, some
        from the bytes read first and the rest from the stream, gives the
        rows it gives when read in one block: no byte is lost or doubled
        where blocks and pieces meet.
        """
        header, body = HUBS_CSV.read_bytes().split(b"\n", 1)
        text = header + b"\n" + body * 4
        self.assertGreater(len(text), 3 * 65_536)
        whole = table_of(list(read_csv(io.BytesIO(text), "hubs.csv")))
        self.patch(parse, "CSV_BLOCK_BYTES", 10_000)
        self.patch(parse, "PIECE_BYTES", 997)
        batches = list(read_csv(io.BytesIO(text), "hubs.csv"))
        self.assertGreater(len(batches), 10)
        self.assertEqual(table_of(batches), whole)
        self.assertEqual(whole.num_rows, 4 * len(body.splitlines()))

    def test_fallback_day(self) -> None:
        """
        The autumn change day's repeated hour (C{OPR_HR} 25) keeps its own
        interval start.
        """
        table = self.assertRoundTrip(FALLBACK_CSV)
        rows = table.to_pylist()
        repeated = [r for r in rows if r["opr_hr"] == 25]
        self.assertTrue(repeated)
        for row in repeated:
            self.assertEqual(row["interval_start_utc"], datetime.datetime(2025, 11, 2, 9, tzinfo=UTC))
        self.assertEqual(len({r["interval_start_utc"] for r in rows}), len({(r["opr_hr"]) for r in rows}))

    def test_atlas_shapes(self) -> None:
        """
        Columns in another order, an extra column and a quoted comma pass
        through.
        """
        table = self.assertRoundTrip(SAMPLES / "shape_ATL_PUB.csv")
        self.assertIn("extra_column", table.schema.names)
        self.assertRoundTrip(SAMPLES / "shape_ATL_PUB_scraper_columns.csv")

    def test_bad_value(self) -> None:
        """
        A value that does not fit its column's type is a L{ParseError}
        naming the member and the row.
        """
        text = HUBS_CSV.read_bytes().replace(b",38.1942,", b",lots,", 1)
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(text), "prices.csv"))
        self.assertIn("prices.csv", str(caught.exception))
        self.assertIn("lots", str(caught.exception))

    def test_short_row(self) -> None:
        """
        A row with too few fields is a L{ParseError}.
        """
        text = HUBS_CSV.read_bytes() + b"2020-01-02T01:00:00-00:00,oops\n"
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(text), "prices.csv"))
        self.assertIn("Expected 16 columns", str(caught.exception))

    def test_row_named(self) -> None:
        """
        A row with too few fields, or with a value that does not fit its
        column's type, is named by its line in the member, also in a later
        block than the first.
        """
        self.patch(parse, "CSV_BLOCK_BYTES", 1_000)
        good = b"2025-06-01,2025-06-01T07:00:00-00:00,1\n"
        for bad, words in [
            (b"2025-06-01,x\n", "Expected 3 columns, got 2"),
            (good[:-2] + b"x\n", "invalid value 'x'"),
        ]:
            for before in [10, 500]:
                text = b"OPR_DT,INTERVALSTARTTIME_GMT,MW\n" + good * before + bad + good * 100
                with self.assertRaises(ParseError) as caught:
                    list(read_csv(io.BytesIO(text), "rows.csv"))
                self.assertIn(f"Row #{before + 2}: ", str(caught.exception))
                self.assertIn(words, str(caught.exception))

    def test_no_header(self) -> None:
        """
        An empty member is a L{ParseError}.
        """
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(b""), "empty.csv"))
        self.assertEqual(str(caught.exception), "empty.csv: line 1: no header")

    def test_header_only(self) -> None:
        """
        A member holding only its header has no rows, whether a line's end
        follows the header or not, alone or in a zip.
        """
        header = b"\xef\xbb\xbfOPR_DT,INTERVALSTARTTIME_GMT,MW"
        for end in (b"", b"\n", b"\r\n"):
            self.assertEqual(list(read_csv(io.BytesIO(header + end), "empty.csv")), [], end)
            path = zip_of(Path(self.mktemp()) / "answer.zip", [("empty.csv", header + end)])
            self.assertEqual(list(read_zip(path)), [], end)

    def test_long_header(self) -> None:
        """
        A header longer than the first read of the member (64 KiB) is read
        to its end, its columns all named: a line's end in the first read
        being a newline, a carriage return (as pyarrow takes one alone)
        or none.
        """
        names = [f"C{i:03}_{'X' * 600}" for i in range(150)]
        header = ",".join(["OPR_DT", *names]).encode()
        row = ",".join(["2025-06-01", *(str(i) for i in range(150))]).encode()
        self.assertGreater(len(header), 65_536)
        for end in (b"\n", b"\r\n", b"\r"):
            table = table_of(list(read_csv(io.BytesIO(header + end + row + end), "long.csv")))
            self.assertEqual(table.num_rows, 1, end)
            self.assertEqual(table.column_names[:151], ["opr_dt", *(name.lower() for name in names)], end)
            self.assertEqual(table.column(names[-1].lower()).to_pylist(), ["149"], end)
        self.assertEqual(list(read_csv(io.BytesIO(header), "long.csv")), [])

    def test_header_too_long(self) -> None:
        """
        A header longer than L{parse.HEADER_BYTES} is a L{ParseError}
        saying so, whether the line ends after that or not.
        """
        header = ",".join(["OPR_DT", *(f"C{i}_{'X' * 12_000}" for i in range(100))]).encode()
        self.assertGreater(len(header), parse.HEADER_BYTES)
        for text in (header, header + b"\n2025-06-01" + b",1" * 100 + b"\n"):
            with self.assertRaises(ParseError) as caught:
                list(read_csv(io.BytesIO(text), "long.csv"))
            self.assertEqual(str(caught.exception), "long.csv: line 1: a header longer than 1,048,576 bytes")

    def test_too_many_columns(self) -> None:
        """
        A header of more columns than harbour takes is a L{ParseError}:
        each is a column of every row of a batch.
        """
        names = ",".join(f"C{i}" for i in range(parse.MOST_FIELDS + 1))
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(f"OPR_DT,{names}\n".encode()), "wide.csv"))
        self.assertEqual(
            str(caught.exception), "wide.csv: line 1: 202 columns, more than the 200 harbour takes"
        )

    def test_header_spaces(self) -> None:
        """
        A column is typed by its name without the spaces around it in the
        header, in every block, however its first values look.
        """
        text = b"OPR_DT, MW\n" + b"2020-01-01,1\n" * 30_000 + b"2020-01-01,1.5\n"
        self.patch(parse, "CSV_BLOCK_BYTES", 64 * 1024)
        table = table_of(list(read_csv(io.BytesIO(text), "spaced.csv")))
        self.assertEqual(table.schema.field("mw").type, pa.float64())
        self.assertEqual(table.column("mw").to_pylist()[-2:], [1.0, 1.5])

    def test_named_twice(self) -> None:
        """
        Two columns whose names differ only in case are one column named
        twice in the dataset: a L{ParseError}.
        """
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(b"OPR_DT,MW,mw\n2020-01-01,1,2\n"), "twice.csv"))
        self.assertEqual(str(caught.exception), "twice.csv: line 1: a column is named twice")

    def test_long_value_shortened(self) -> None:
        """
        A L{ParseError} quoting a value keeps its message short, however
        long the value.
        """
        text = b"OPR_DT,MW\n2020-01-01," + b"x" * 2_000_000 + b"\n"
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(text), "long.csv"))
        message = str(caught.exception)
        self.assertLess(len(message), parse.MESSAGE_CHARACTERS + 50)
        self.assertTrue(message.startswith("long.csv: "), message[:100])
        self.assertRegex(message, r"\.\.\. \([\d,]+ characters more\)$")

    def test_no_trading_day(self) -> None:
        """
        A row with neither a trading day nor an interval start is a
        L{ParseError} naming the row.
        """
        text = b"OPR_DT,MW\n2020-01-01,1\n,2\n"
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(text), "days.csv"))
        self.assertIn("days.csv: row 2: no trading day", str(caught.exception))

    def test_trade_date(self) -> None:
        """
        C{TRADE_DATE}, kept as text, gives the rows' trading day when there
        is no C{OPR_DT}; a value that is not a day is a L{ParseError}
        naming the column.
        """
        table = table_of(list(read_csv(io.BytesIO(b"TRADE_DATE,MW\n2024-01-02,1.5\n"), "trades.csv")))
        self.assertEqual(table.column("trade_date").to_pylist(), ["2024-01-02"])
        self.assertEqual(table.column("trading_date").to_pylist(), [datetime.date(2024, 1, 2)])
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(b"TRADE_DATE,MW\nsoon,1.5\n"), "trades.csv"))
        self.assertTrue(str(caught.exception).startswith("trades.csv: column trade_date: not a day ("))

    def test_added_column_named(self) -> None:
        """
        A source column named as one harbour adds is a L{ParseError}.
        """
        text = b"OPR_DT,TRADING_DATE,MW\n2024-01-02,x,1.5\n"
        with self.assertRaises(ParseError) as caught:
            list(read_csv(io.BytesIO(text), "clash.csv"))
        self.assertEqual(
            str(caught.exception),
            "clash.csv: a source column is named trading_date, as a column harbour adds",
        )

    def test_day_from_interval(self) -> None:
        """
        A report without C{OPR_DT} falls on the Pacific day its interval
        starts in.
        """
        text = b"INTERVALSTARTTIME_GMT,MW\n2025-03-09T07:30:00-00:00,1\n2025-03-10T06:30:00-00:00,2\n"
        table = table_of(list(read_csv(io.BytesIO(text), "nodays.csv")))
        self.assertEqual(
            table.column("trading_date").to_pylist(), [datetime.date(2025, 3, 8), datetime.date(2025, 3, 9)]
        )


class SlowRows(io.BytesIO):
    """
    A CSV member read slowly, as a large one is inflated: its header,
    C{first}, then good rows for ever, each read taking a millisecond, so
    that pyarrow's read-ahead is still reading whenever its parse ends.
    """

    HEADER = b"OPR_DT,MW\n"
    ROW = b"2025-06-01,1\n"

    def __init__(self, first: bytes = b"") -> None:
        super().__init__()
        self._pending = self.HEADER + first

    def read(self, size: int | None = -1) -> bytes:
        """
        @return: The next C{size} bytes (64 KiB when negative).
        """
        time.sleep(0.001)
        if size is None or size < 0:
            size = 1 << 16
        while len(self._pending) < size:
            self._pending += self.ROW * (size // len(self.ROW) + 1)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def parse_error(stream: SlowRows) -> str:
    """
    @return: The message of the L{ParseError} parsing C{stream} ends with;
        no frame of the parse is kept, as the exception's would be.
    """
    try:
        list(read_csv(stream, "slow.csv"))
    except ParseError as e:
        return str(e)
    raise AssertionError("the parse ended without an error")


#: A process that parses a member whose second line is short and exits at
#: once, as C{harbourctl} or a stopping daemon may after a failed parse.
EXIT_AFTER_ERROR = """
from harbour.dataset.test.test_parse import SlowRows, parse_error
print(parse_error(SlowRows(b"2025-06-01\\n")))
"""


class CsvReadAheadTests(SynchronousTestCase):
    """
    pyarrow reads a CSV member ahead on a thread of its own: a parse that
    ends, however, has that thread let go of the member first.
    """

    def test_error_lets_go(self) -> None:
        """
        A parse that stops at an error among many good rows returns only
        once pyarrow has let go of its stream: its read-ahead went on
        reading it after the reader failed, even once its zip member was
        closed.
        """
        stream = SlowRows(b"2025-06-01\n")
        held = weakref.ref(stream)
        self.assertIn("Expected 2 columns, got 1", parse_error(stream))
        del stream
        self.assertIsNone(held())

    def test_read_error_lets_go_at_once(self) -> None:
        """
        A parse that fails as its member is read (a damaged zip, a disk
        error, memory running out) lets go of its stream as it fails: the
        error's traceback held the read's frame, and with it the stream,
        so the parse waited out its whole bound for pyarrow to let go.
        """
        header = b"INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,MW\n"
        row = b"2020-01-02T01:00:00-00:00,2020-01-02T02:00:00-00:00,2020-01-01,1.5\n"
        # Past the header's first read, so that pyarrow's own reads fail.
        data = header + row * 20_000
        raw = io.BytesIO()
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("a.csv", data)
        crc = zlib.crc32(data)
        path = Path(self.mktemp() + ".zip")
        path.write_bytes(raw.getvalue().replace(crc.to_bytes(4, "little"), (crc ^ 1).to_bytes(4, "little")))
        released: list[bool] = []
        stop = parse._Rejoined.stop

        def recorded(source: parse._Rejoined) -> Any:
            event = stop(source)

            class Waited:
                def wait(self, timeout: float) -> bool:
                    released.append(event.wait(timeout))
                    return released[-1]

            return Waited()

        self.patch(parse._Rejoined, "stop", recorded)
        self.patch(parse, "RELEASE_SECONDS", 2.0)
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertIn("Bad CRC-32", str(caught.exception))
        self.assertEqual(released, [True])

    def test_consumer_stop_lets_go(self) -> None:
        """
        A parse whose consumer stops early (a window of too many days, a
        full disk, a zip replaced mid-parse) closes only once pyarrow has
        let go of its stream.
        """
        stream = SlowRows()
        held = weakref.ref(stream)
        batches = read_csv(stream, "slow.csv")
        del stream
        assert isinstance(batches, Generator)
        self.assertGreater(next(batches).num_rows, 0)
        batches.close()
        del batches
        self.assertIsNone(held())

    def test_exit_after_error(self) -> None:
        """
        A process that exits just after a parse stopped at an error exits
        cleanly: pyarrow's thread, still reading, aborted it ("Fatal Python
        error: PyGILState_Release", or "terminate called without an active
        exception").
        """
        root = Path(__file__).parents[3]
        child = subprocess.run(
            [sys.executable, "-c", EXIT_AFTER_ERROR],
            env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual((child.returncode, child.stderr), (0, ""))
        self.assertIn("slow.csv: CSV parse error: ", child.stdout)


class CsvAsXmlTests(SynchronousTestCase):
    """
    The same values give the same rows whether OASIS answered in CSV or in
    XML.
    """

    #: Words other tools take for a missing value, and an empty value.
    WORDS = ("NA", "N/A", "NULL", "null", "#N/A", "nan", "")

    def both(self, rows: list[dict[str, str]]) -> tuple[pa.Table, pa.Table]:
        """
        @param rows: Each row's source columns, the same in every row.
        @return: The rows parsed from a CSV answer, and from an XML one.
        """
        names = list(rows[0])
        text = ",".join(names) + "\n" + "".join(",".join(row.values()) + "\n" for row in rows)
        data = "".join(
            "<REPORT_DATA>" + "".join(f"<{k}>{v}</{k}>" for k, v in row.items()) + "</REPORT_DATA>"
            for row in rows
        )
        document = (
            '<?xml version="1.0"?><OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd">'
            f"<MessagePayload><RTO><REPORT_ITEM>{data}</REPORT_ITEM></RTO></MessagePayload></OASISReport>"
        )
        return (
            table_of(list(read_csv(io.BytesIO(text.encode()), "same.csv"))),
            table_of(list(read_xml(io.BytesIO(document.encode()), "same.xml"))),
        )

    def test_only_empty_is_null(self) -> None:
        """
        Only an empty value is null, in a column of any type; the words
        other tools take for a missing value (C{NA}, C{NULL}, C{nan}...)
        are text, as XML answers have them.
        """
        rows = [
            {
                "INTERVALSTARTTIME_GMT": "" if word else "2025-01-01T08:00:00-00:00",
                "OPR_DT": "2025-01-01",
                "OPR_HR": "" if word else "1",
                "LABEL": word,
                "MW": "" if word else "1.5",
            }
            for word in self.WORDS
        ]
        from_csv, from_xml = self.both(rows)
        self.assertEqual(from_csv.column("label").to_pylist(), [*self.WORDS[:-1], None])
        self.assertEqual(from_csv.column("mw").to_pylist(), [None] * 6 + [1.5])
        self.assertEqual(from_csv.column("opr_hr").to_pylist(), [None] * 6 + [1])
        self.assertEqual(from_csv.column("intervalstarttime_gmt").null_count, 6)
        self.assertEqual(from_csv.to_pylist(), from_xml.to_pylist())
        self.assertEqual(from_csv.schema, from_xml.schema)


class XmlTests(SynchronousTestCase):
    """
    XML answers: one row per C{REPORT_DATA} with its header's fields.
    """

    def parse(self, name: str) -> pa.Table:
        """
        @return: A sample parsed.
        """
        with (SAMPLES / name).open("rb") as stream:
            return table_of(list(read_xml(stream, name)))

    def test_forecast(self) -> None:
        """
        Each C{REPORT_DATA} is a row, with the header's fields and typed
        values.
        """
        table = self.parse("xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml")
        self.assertEqual(table.num_rows, 3)
        first = table.to_pylist()[0]
        self.assertEqual(first["report"], "SLD_FCST")
        self.assertEqual(first["mkt_type"], "RTM")
        self.assertEqual(first["execution_type"], "RTPD")
        self.assertEqual(first["uom"], "MW")
        self.assertEqual(first["sec_per_interval"], 900)
        self.assertEqual(first["interval_num"], 50)
        self.assertEqual(first["opr_date"], datetime.date(2014, 5, 8))
        self.assertEqual(first["value"], 26723.0)
        self.assertEqual(first["interval_start_utc"], datetime.datetime(2014, 5, 8, 19, 15, tzinfo=UTC))
        self.assertEqual(first["interval_end_utc"], datetime.datetime(2014, 5, 8, 19, 30, tzinfo=UTC))
        self.assertEqual(first["trading_date"], datetime.date(2014, 5, 8))
        self.assertEqual(
            [r["resource_name"] for r in table.to_pylist()], ["CA ISO-TAC", "CA ISO-TAC", "PGE-TAC"]
        )

    def test_report_specific_elements(self) -> None:
        """
        Elements only some reports have become columns of their own.
        """
        table = self.parse("xml_SLD_REN_FCST_DAM_20130919_pyiso.xml")
        self.assertEqual(table.num_rows, 4)
        self.assertEqual(table.column("renewable_type").to_pylist(), ["Solar", "Solar", "Wind", "Wind"])
        self.assertEqual(table.column("value").to_pylist(), [0.01, 0.0, 478.86, 580.83])

    def test_prefixed_atlas(self) -> None:
        """
        Prefixed element names are read by their local names; atlas items
        are rows.
        """
        table = self.parse("shape_ATL_PUB.xml")
        self.assertEqual(table.column("report_name").to_pylist(), ["PRC_INTVL_LMP", "PRC_INTVL_LMP"])
        self.assertEqual(
            table.column("trading_date").to_pylist(), [datetime.date(2025, 3, 9), datetime.date(2025, 3, 7)]
        )
        self.assertEqual(
            table.column("publication_time_gmt").to_pylist()[0],
            datetime.datetime(2025, 3, 9, 8, 10, tzinfo=UTC),
        )

    def test_empty_elements(self) -> None:
        """
        Empty elements are nulls, whatever their type.
        """
        table = self.parse("shape_ATL_PUB_scraper_columns.xml")
        self.assertEqual(table.column("opr_hr").to_pylist(), [24, 24, None, None])

    def test_malformed(self) -> None:
        """
        A document that is not well-formed is a L{ParseError} with its line.
        """
        with self.assertRaises(ParseError) as caught:
            self.parse("xml_ENE_SLRS_DAM_20130919_pyiso.xml")
        self.assertEqual(
            str(caught.exception),
            "xml_ENE_SLRS_DAM_20130919_pyiso.xml: line 78: malformed XML (mismatched tag)",
        )

    def test_error_document(self) -> None:
        """
        An OASIS error document is a L{ParseError} with its code and text.
        """
        with self.assertRaises(ParseError) as caught:
            self.parse("xml_error_1000_no_data_SLD_REN_FCST_erw.xml")
        self.assertIn("OASIS error document: 1000 No data returned", str(caught.exception))

    def test_not_oasis(self) -> None:
        """
        Another XML document is a L{ParseError}.
        """
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(b"<html><body/></html>"), "page.xml"))
        self.assertEqual(str(caught.exception), "page.xml: not an OASIS report (the document is a <html>)")

    def test_unknown_encoding(self) -> None:
        """
        A document declaring an encoding Python lacks is a L{ParseError}.
        """
        text = b'<?xml version="1.0" encoding="x-unknown"?><OASISReport/>'
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(text), "odd.xml"))
        self.assertEqual(str(caught.exception), "odd.xml: unknown encoding: x-unknown")

    def test_truncated(self) -> None:
        """
        A document cut short is a L{ParseError}.
        """
        text = (SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").read_bytes()[:900]
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(text), "cut.xml"))
        self.assertIn("cut.xml: line", str(caught.exception))

    def test_long_text(self) -> None:
        """
        An element whose text is longer than harbour takes is a
        L{ParseError} naming the line, found as the text comes: expat
        hands long text over in pieces, and gathering them all would take
        time growing with the square of its length.
        """
        text = (SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").read_bytes()
        long = b"many\n" * (MOST_TEXT // 5 + 1)
        text = text.replace(b"<VALUE>26723</VALUE>", b"<VALUE>" + long + b"</VALUE>", 1)
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(text), "long.xml"))
        self.assertRegex(
            str(caught.exception), r"^long\.xml: line \d+: an element's text is longer than 65,536"
        )

    def test_named_twice(self) -> None:
        """
        Two elements whose names differ only in case are one column named
        twice in the dataset: a L{ParseError}, as for CSV.
        """
        text = (SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").read_bytes()
        text = text.replace(b"<VALUE>26723</VALUE>", b"<VALUE>26723</VALUE><Value>1</Value>", 1)
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(text), "twice.xml"))
        self.assertEqual(str(caught.exception), "twice.xml: element Value: a column is named twice")

    def test_bad_value(self) -> None:
        """
        A value that does not fit its element's type is a L{ParseError}
        naming the element.
        """
        text = (SAMPLES / "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml").read_bytes()
        text = text.replace(b"<VALUE>26723</VALUE>", b"<VALUE>many</VALUE>")
        with self.assertRaises(ParseError) as caught:
            list(read_xml(io.BytesIO(text), "values.xml"))
        self.assertIn("values.xml: element VALUE", str(caught.exception))


class ZipTests(SynchronousTestCase):
    """
    Zips: every member's rows, or a L{ParseError}.
    """

    def test_sample(self) -> None:
        """
        The zipped hubs sample gives the rows of its CSV member.
        """
        self.assertEqual(table_of(list(read_zip(HUBS_ZIP))).num_rows, 288)

    def test_group_members(self) -> None:
        """
        A zip with one XML member per price component gives all of their
        rows.
        """
        day = datetime.date(2025, 6, 1)
        path = simulated(Path(self.mktemp()) / "g.zip", "PRC_LMP", "DAM", day, day, csv=False, version=2)
        table = table_of(list(read_zip(path)))
        self.assertEqual(table.num_rows, 3 * 24 * 5)
        self.assertEqual(
            sorted(set(table.column("data_item").to_pylist())),
            ["LMP_CONG_PRC", "LMP_ENE_PRC", "LMP_GHG_PRC", "LMP_LOSS_PRC", "LMP_PRC"],
        )

    def test_error_zip(self) -> None:
        """
        An error zip is a L{ParseError}.
        """
        with self.assertRaises(ParseError) as caught:
            list(read_zip(SAMPLES / "error_1000_no_data_repacked.zip"))
        self.assertIn("OASIS error document: 1000", str(caught.exception))

    def test_unknown_member(self) -> None:
        """
        A member that is neither CSV nor XML is a L{ParseError} naming it.
        """
        path = zip_of(
            Path(self.mktemp()) / "odd.zip", [("a.csv", HUBS_CSV.read_bytes()), ("notes.txt", b"hi")]
        )
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertEqual(str(caught.exception), "odd.zip: member notes.txt: neither CSV nor XML")

    def test_unreadable_member(self) -> None:
        """
        An encrypted member, or one compressed by a method C{zipfile} does
        not read, is a L{ParseError} naming it.
        """
        for flag, method, why in [(0x1, 8, "encrypted"), (0, 99, "compressed by an unknown method (99)")]:
            path = zip_of(Path(self.mktemp()) / "odd.zip", [("a.csv", HUBS_CSV.read_bytes())])
            data = bytearray(path.read_bytes())
            # The central directory's entry: its flags, then its method.
            central = data.index(b"PK\x01\x02")
            data[central + 8 : central + 12] = flag.to_bytes(2, "little") + method.to_bytes(2, "little")
            path.write_bytes(bytes(data))
            with self.assertRaises(ParseError) as caught:
                list(read_zip(path))
            self.assertEqual(str(caught.exception), f"odd.zip: member a.csv: {why}")

    def test_empty_zip(self) -> None:
        """
        A zip without members is a L{ParseError}.
        """
        path = zip_of(Path(self.mktemp()) / "empty.zip", [])
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertEqual(str(caught.exception), "empty.zip: the zip holds no file")

    def test_not_a_zip(self) -> None:
        """
        A file that is not a zip is a L{ParseError}.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"<html>busy</html>")
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertIn("not a readable zip", str(caught.exception))

    def test_overlapping_members(self) -> None:
        """
        A zip whose members share bytes (one listed twice, as the download
        now refuses, though a file kept before it did may be on disk) is
        a L{ParseError} saying so, not its rows twice; so is one whose
        entry names a local header that is not there.
        """
        once = zip_of(Path(self.mktemp()) / "twice.zip", [("a.csv", HUBS_CSV.read_bytes())])
        self.assertEqual(table_of(list(read_zip(once))).num_rows, 288)
        once.write_bytes(repeated(once.read_bytes(), 2))
        with self.assertRaises(ParseError) as caught:
            list(read_zip(once))
        self.assertEqual(
            str(caught.exception),
            "twice.zip: members a.csv and a.csv overlap: their bytes would be read twice",
        )
        inside = Path(self.mktemp())
        inside.write_bytes(nested("a.csv", "b.csv", HUBS_CSV.read_bytes()))
        with self.assertRaises(ParseError) as caught:
            list(read_zip(inside))
        self.assertIn("members a.csv and b.csv overlap", str(caught.exception))
        two = zip_of(Path(self.mktemp()) / "lost.zip", [("a.csv", b"x\n"), ("b.csv", b"y\n")])
        data = bytearray(two.read_bytes())
        data[0] = ord("X")
        two.write_bytes(bytes(data))
        with self.assertRaises(ParseError) as caught:
            list(read_zip(two))
        self.assertIn("lost.zip: not a readable zip (no local header for member a.csv", str(caught.exception))

    def test_system_error_opening(self) -> None:
        """
        The system failing to open a zip (too many open files) is not a
        L{ParseError}: the zip may be fine, and another try may read it.
        """
        real = parse.zipfile.ZipFile

        def short_of_files(*args: object, **kwargs: object) -> object:
            raise OSError(errno.EMFILE, "Too many open files")

        self.patch(parse.zipfile, "ZipFile", short_of_files)
        with self.assertRaises(OSError) as caught:
            list(read_zip(HUBS_ZIP))
        self.assertNotIsInstance(caught.exception, ParseError)
        self.patch(parse.zipfile, "ZipFile", real)
        self.assertGreater(table_of(list(read_zip(HUBS_ZIP))).num_rows, 0)

    def test_system_error_reading(self) -> None:
        """
        The system failing mid-read is not a L{ParseError}; a member's
        content that its decompressor refuses (C{bz2}'s errors are
        L{OSError}s without an C{errno}) is.
        """
        for raised, expected in [
            (OSError(errno.EIO, "Input/output error"), OSError),
            (OSError("Invalid data stream"), ParseError),
        ]:

            def failing(stream: object, member: str, raised: OSError = raised) -> object:
                raise raised

            self.patch(parse, "read_csv", failing)
            with self.assertRaises(expected) as caught:
                list(read_zip(HUBS_ZIP))
            self.assertIs(type(caught.exception), expected)

    def test_corrupt_deflate(self) -> None:
        """
        A member whose deflate stream is broken is a L{ParseError} naming
        it.
        """
        path = zip_of(Path(self.mktemp()) / "bad.zip", [("a.csv", HUBS_CSV.read_bytes() * 20)])
        data = bytearray(path.read_bytes())
        # The first byte of the stream: a deflate block of a type that
        # does not exist.
        data[30 + len("a.csv")] = 0xFF
        path.write_bytes(bytes(data))
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertIn("bad.zip: member a.csv: cannot be read", str(caught.exception))

    def test_corrupt_member(self) -> None:
        """
        A member whose compressed bytes are damaged is a L{ParseError}.
        """
        path = zip_of(Path(self.mktemp()) / "bad.zip", [("a.csv", HUBS_CSV.read_bytes() * 20)])
        data = bytearray(path.read_bytes())
        data[200:240] = b"\x00" * 40
        path.write_bytes(bytes(data))
        with self.assertRaises(ParseError) as caught:
            list(read_zip(path))
        self.assertIn("bad.zip", str(caught.exception))
