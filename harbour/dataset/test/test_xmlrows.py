"""
Tests of L{harbour.dataset.xmlrows}: rows as columns of text, with their
header's fields, however the batches fall.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset import xmlrows
from harbour.dataset.xmlrows import XmlRows


def item(header: dict[str, str], rows: list[dict[str, str]]) -> str:
    """
    @return: A C{REPORT_ITEM} with C{header} and one C{REPORT_DATA} per row.
    """
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in header.items())
    data = "".join(
        "<REPORT_DATA>\n" + "".join(f"<{k}>{v}</{k}>\n" for k, v in row.items()) + "</REPORT_DATA>\n"
        for row in rows
    )
    return f"<REPORT_ITEM><REPORT_HEADER>{fields}</REPORT_HEADER>\n{data}</REPORT_ITEM>\n"


def document(*items: str) -> bytes:
    """
    @return: An OASIS report of C{items}.
    """
    return (
        '<OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd"><MessagePayload><RTO>'
        + "".join(items)
        + "</RTO></MessagePayload></OASISReport>"
    ).encode()


def parsed(data: bytes, batch_rows: int, chunk: int = 7) -> list[dict[str, list[str | None]]]:
    """
    @return: The batches of C{data}, fed C{chunk} bytes at a time.
    """
    rows = XmlRows(batch_rows)
    batches: list[dict[str, list[str | None]]] = []
    for offset in range(0, len(data), chunk):
        rows.feed(data[offset : offset + chunk])
        batches.extend(rows.batches())
    rows.close()
    batches.extend(rows.batches(final=True))
    return batches


class XmlRowsTests(SynchronousTestCase):
    """
    L{XmlRows}.
    """

    def test_headers_across_batches(self) -> None:
        """
        Each row has the fields of its own item's header, also where an
        item's rows fall in two batches and a batch holds two items.
        """
        data = document(
            item({"MKT_TYPE": "DAM"}, [{"VALUE": "1"}, {"VALUE": "2"}, {"VALUE": "3"}]),
            item({"MKT_TYPE": "RTM"}, [{"VALUE": "4"}, {"VALUE": "5"}]),
        )
        batches = parsed(data, batch_rows=2)
        self.assertEqual(
            batches,
            [
                {"MKT_TYPE": ["DAM", "DAM"], "VALUE": ["1", "2"]},
                {"MKT_TYPE": ["DAM", "RTM"], "VALUE": ["3", "4"]},
                {"MKT_TYPE": ["RTM"], "VALUE": ["5"]},
            ],
        )

    def test_missing_and_new_elements(self) -> None:
        """
        An element a row lacks is null in it; an element first seen in a
        later row is null in the rows before.
        """
        data = document(
            item({"UOM": "MW"}, [{"A": "1", "B": "x"}, {"A": "2"}, {"A": "3", "C": "z"}, {"B": " "}])
        )
        self.assertEqual(
            parsed(data, batch_rows=10),
            [
                {
                    "UOM": ["MW"] * 4,
                    "A": ["1", "2", "3", None],
                    "B": ["x", None, None, None],
                    "C": [None, None, "z", None],
                }
            ],
        )

    def test_row_wins_over_header(self) -> None:
        """
        A row's own element holds over its header's field of the same
        name, and the header's field fills the rows without one.
        """
        data = document(item({"UOM": "MW"}, [{"UOM": "MWh", "A": "1"}, {"A": "2"}]))
        self.assertEqual(parsed(data, batch_rows=10), [{"UOM": ["MWh", "MW"], "A": ["1", "2"]}])

    def test_repeated_element(self) -> None:
        """
        An element twice in one row: the last one holds, and the row is
        still one row.
        """
        data = document(
            item({}, [{"A": "1"}]).replace("<A>1</A>", "<A>1</A><A>9</A>"), item({}, [{"A": "2"}])
        )
        self.assertEqual(parsed(data, batch_rows=10), [{"A": ["9", "2"]}])

    def test_no_rows(self) -> None:
        """
        A report without rows gives no batch.
        """
        self.assertEqual(parsed(document(item({"UOM": "MW"}, [])), batch_rows=10), [])

    def test_most_fields(self) -> None:
        """
        A document with more than L{MOST_FIELDS} kinds of field, in its
        rows or in its headers, is refused as it reaches one more: each
        would be a column of every row.
        """
        self.patch(xmlrows, "MOST_FIELDS", 4)
        wide = {f"F{n}": "1" for n in range(4)}
        self.assertEqual(len(parsed(document(item({}, [wide])), batch_rows=10)), 1)
        rows = [{f"F{n}": "1"} for n in range(5)]
        with self.assertRaises(ValueError) as caught:
            parsed(document(item({}, rows)), batch_rows=10)
        self.assertEqual(str(caught.exception), "more than 4 kinds of field: not an OASIS report")
        headers = [item({f"H{n}": "x"}, [{"A": "1"}]) for n in range(4)]
        with self.assertRaises(ValueError):
            parsed(document(*headers), batch_rows=10)

    def test_wide_batches_sooner(self) -> None:
        """
        A batch is taken once it holds L{BATCH_VALUES} values (rows times
        kinds of field), however few rows that is: a document with many
        kinds of field has each row take them all.
        """
        self.patch(xmlrows, "BATCH_VALUES", 12)
        wide = [{f"F{n}": str(row) for n in range(4)} for row in range(7)]
        batches = parsed(document(item({}, wide)), batch_rows=100)
        self.assertEqual([len(batch["F0"]) for batch in batches], [3, 3, 1])
        self.assertEqual([value for batch in batches for value in batch["F3"]], [str(n) for n in range(7)])

    def test_long_values_batches_sooner(self) -> None:
        """
        A batch is taken once its text reaches L{BATCH_TEXT} characters,
        its header's fields counted for every row they head, however few
        rows and values that is: without it, a document of long values
        (each up to L{MOST_TEXT}) made one batch of gigabytes from a zip of
        megabytes.  No batch holds more than that bound and one row's text,
        and every row comes out once, in order.
        """
        self.patch(xmlrows, "BATCH_TEXT", 1_000)
        note = "n" * 300
        rows = [{"NOTE": note, "VALUE": str(row)} for row in range(20)]
        # A header of 150 characters, repeated into every row it heads.
        data = document(item({"COMMENT": "c" * 150}, rows[:10]), item({}, rows[10:]))
        batches = parsed(data, batch_rows=100, chunk=4096)
        longest_row = 300 + len("19") + 150
        for batch in batches:
            text = sum(len(value) for column in batch.values() for value in column if value)
            self.assertLessEqual(text, 1_000 + longest_row)
        self.assertEqual([len(batch["VALUE"]) for batch in batches], [3, 3, 3, 3, 4, 4])
        self.assertEqual(
            [value for batch in batches for value in batch["VALUE"]], [str(n) for n in range(20)]
        )
        self.assertEqual(
            [value for batch in batches for value in batch.get("COMMENT", [None] * len(batch["VALUE"]))],
            ["c" * 150] * 10 + [None] * 10,
        )
