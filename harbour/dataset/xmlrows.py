"""
The rows of an C{OASISReport} XML document as columns of text, from
expat's callbacks, so that no more than a batch of rows is ever held.

A row is a C{REPORT_DATA} (or an atlas's C{ATL_ITEM}): its child elements,
plus the fields of the C{REPORT_HEADER} (or C{ATL_HEADER}) that came before
it in its C{REPORT_ITEM}.  Element names are local (namespaces dropped).
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.parsers import expat

#: Elements that are one row each.
ROW_ELEMENTS = frozenset({"REPORT_DATA", "ATL_ITEM"})
#: Elements whose fields go into every row that follows them.
HEADER_ELEMENTS = frozenset({"REPORT_HEADER", "ATL_HEADER"})
#: The element that starts a new set of rows with a header of its own.
ITEM_ELEMENT = "REPORT_ITEM"
#: The root element of every OASIS answer.
ROOT_ELEMENT = "OASISReport"
#: The most kinds of field (row and header element names) a document may
#: have, and the most columns of a CSV member: each is a column of every
#: row of a batch, so that a hostile document naming a new one in every
#: row would take memory growing with the square of its rows.  OASIS
#: reports have a few dozen (13 to 28 in the samples).
MOST_FIELDS = 200
#: The most characters of text one element may hold: expat hands long
#: text over in pieces, and gathering them costs time growing with the
#: square of its length.  OASIS values are short (183 characters at most
#: in the samples).
MOST_TEXT = 1 << 16
#: The most values (rows times kinds of field) a batch holds: a batch of a
#: wide document is taken sooner than L{XmlRows}'s row count says, so that
#: one holds about as many values as a batch of a typical report.
BATCH_VALUES = 65_536 * 32
#: The most characters of text a batch holds, its header's fields counted
#: once for every row they head (each is a value of every such row once
#: typed): a batch of rows whose values are long is taken sooner than
#: L{BATCH_VALUES} says, so that its memory is about that of a batch of a
#: typical report whatever the values' length (at most L{MOST_TEXT} each,
#: so a batch of 65,536 rows of long values would hold gigabytes): twice
#: a CSV block.  An all-node day of C{PRC_LMP} holds about 130 characters
#: a row, so that its batches are still cut by rows.
BATCH_TEXT = 8 << 20


class XmlRows:
    """
    Feed it bytes; take whole batches of rows as columns of text.

    A row's values go straight into their columns as its elements end; the
    header's fields are kept once per run of rows they head and repeated
    only when a batch is taken, so that a row costs little more than
    expat's own callbacks.

    @raise ValueError: From L{feed} or L{close}, for a document that is not
        an OASIS report, or for an OASIS error document.
    """

    def __init__(self, batch_rows: int) -> None:
        self._batch_rows = batch_rows
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._parser.buffer_text = True
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text_data
        self._local_names: dict[str, str] = {}
        self._fields: set[str] = set()
        self._depth = 0
        self._row_depth = 0
        self._header_depth = 0
        self._text = ""
        self._header: dict[str, str | None] = {}
        # The characters of the current header's fields, which every row
        # it heads holds once its batch is taken.
        self._header_text = 0
        self._error: dict[str, str | None] = {}
        # The batch being filled: each row element's values, and the
        # headers with the index of the first row each heads.
        self._columns: dict[str, list[str | None]] = {}
        self._headers: list[tuple[int, dict[str, str | None]]] = []
        self._count = 0
        self._filled = 0
        self._batch_text = 0
        self._ready: list[dict[str, list[str | None]]] = []

    def feed(self, data: bytes) -> None:
        """
        Parse the next bytes of the document.

        @raise expat.ExpatError: If they are not well-formed XML.
        """
        self._parser.Parse(data, False)

    def close(self) -> None:
        """
        The document has ended.

        @raise expat.ExpatError: If it ended early.
        @raise ValueError: If it had no root element.
        """
        self._parser.Parse(b"", True)

    def batches(self, final: bool = False) -> Iterator[dict[str, list[str | None]]]:
        """
        @param final: Also give the last, partial batch.
        @return: The batches complete so far, each as element name to values.
        """
        ready, self._ready = self._ready, []
        yield from ready
        if final and self._count:
            yield self._take()

    def _local(self, name: str) -> str:
        local = self._local_names.get(name)
        if local is None:
            local = self._local_names[name] = name.rpartition(" ")[2]
        return local

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self._depth += 1
        self._text = ""
        if self._row_depth:
            return
        local = self._local(name)
        if self._depth == 1 and local != ROOT_ELEMENT:
            raise ValueError(f"not an OASIS report (the document is a <{local}>)")
        if local in ROW_ELEMENTS:
            self._row_depth = self._depth
            if not self._headers or self._headers[-1][1] is not self._header:
                self._headers.append((self._count, self._header))
        elif local in HEADER_ELEMENTS:
            self._header_depth = self._depth
            self._header = {}
            self._header_text = 0
        elif local == ITEM_ELEMENT:
            self._header = {}
            self._header_text = 0

    def _text_data(self, data: str) -> None:
        if len(self._text) + len(data) > MOST_TEXT:
            line = self._parser.CurrentLineNumber
            raise ValueError(f"line {line}: an element's text is longer than {MOST_TEXT:,} characters")
        self._text += data

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth = depth - 1
        row_depth = self._row_depth
        if row_depth:
            if depth == row_depth + 1:
                # A row's value: the hot path, kept inline.
                local = self._local_names.get(name) or self._local(name)
                value_text = self._text
                value = value_text.strip() or None
                self._batch_text += len(value_text)
                count = self._count
                column = self._columns.get(local)
                if column is None:
                    self._field(local)
                    column = self._columns[local] = [None] * count
                if len(column) > count:
                    # The element came twice in one row: the last one holds.
                    column[count] = value
                else:
                    column.append(value)
                    self._filled += 1
            elif depth == row_depth:
                self._row_depth = 0
                self._end_row()
        elif self._header_depth:
            if depth == self._header_depth + 1:
                local = self._local(name)
                if local not in self._fields:
                    self._field(local)
                self._header[local] = self._text.strip() or None
                self._header_text += len(self._text)
            elif depth == self._header_depth:
                self._header_depth = 0
        else:
            local = self._local(name)
            if local in ("ERR_CODE", "ERR_DESC"):
                self._error[local] = self._text.strip()
            elif local == "ERROR":
                code, text = self._error.get("ERR_CODE", "?"), self._error.get("ERR_DESC", "")
                raise ValueError(f"OASIS error document: {code} {text}")
        self._text = ""

    def _field(self, local: str) -> None:
        """
        A row or header element named C{local} was met for the first time
        in the document (or in this batch, as a row's: then it is in the
        document's already).

        @raise ValueError: If the document has more than L{MOST_FIELDS}
            kinds of field.
        """
        self._fields.add(local)
        if len(self._fields) > MOST_FIELDS:
            raise ValueError(f"more than {MOST_FIELDS:,} kinds of field: not an OASIS report")

    def _end_row(self) -> None:
        self._count += 1
        if self._filled != len(self._columns):
            for column in self._columns.values():
                if len(column) < self._count:
                    column.append(None)
        self._filled = 0
        self._batch_text += self._header_text
        if (
            self._count >= self._batch_rows
            or self._count * len(self._fields) >= BATCH_VALUES
            or self._batch_text >= BATCH_TEXT
        ):
            self._ready.append(self._take())

    def _take(self) -> dict[str, list[str | None]]:
        """
        @return: The rows so far, the header's fields repeated into
            columns of their own; the next batch starts empty, headed by
            the current header.
        """
        count, rows = self._count, self._columns
        bounds = [start for start, ignored in self._headers[1:]] + [count]
        columns: dict[str, list[str | None]] = {}
        for key in dict.fromkeys(k for ignored, header in self._headers for k in header):
            column: list[str | None] = []
            for (start, header), end in zip(self._headers, bounds, strict=True):
                column.extend([header.get(key)] * (end - start))
            own = rows.get(key)
            if own is not None:
                # A row's own element wins over its header's field.
                column = [
                    value if value is not None else fallback
                    for value, fallback in zip(own, column, strict=True)
                ]
            columns[key] = column
        for key, own in rows.items():
            columns.setdefault(key, own)
        self._columns, self._count, self._filled, self._batch_text = {}, 0, 0, 0
        self._headers = []
        return columns
