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


class XmlRows:
    """
    Feed it bytes; take whole batches of rows as columns of text.

    @raise ValueError: From L{feed} or L{close}, for a document that is not
        an OASIS report, or for an OASIS error document.
    """

    def __init__(self, batch_rows: int) -> None:
        self._batch_rows = batch_rows
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._parser.buffer_text = True
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._depth = 0
        self._row_depth = 0
        self._header_depth = 0
        self._text_parts: list[str] = []
        self._row: dict[str, str | None] = {}
        self._header: dict[str, str | None] = {}
        self._error: dict[str, str | None] = {}
        self._columns: dict[str, list[str | None]] = {}
        self._count = 0
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
            columns, self._columns, self._count = self._columns, {}, 0
            yield columns

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        self._depth += 1
        self._text_parts = []
        if self._depth == 1 and local != ROOT_ELEMENT:
            raise ValueError(f"not an OASIS report (the document is a <{local}>)")
        if local in ROW_ELEMENTS and not self._row_depth:
            self._row_depth = self._depth
            self._row = {}
        elif local in HEADER_ELEMENTS:
            self._header_depth = self._depth
            self._header = {}
        elif local == ITEM_ELEMENT:
            self._header = {}

    def _text(self, data: str) -> None:
        self._text_parts.append(data)

    def _end(self, name: str) -> None:
        local = name.rpartition(" ")[2]
        depth = self._depth
        self._depth -= 1
        if self._row_depth:
            if depth == self._row_depth + 1:
                self._row[local] = "".join(self._text_parts).strip() or None
            elif depth == self._row_depth:
                self._row_depth = 0
                self._add_row()
        elif self._header_depth:
            if depth == self._header_depth + 1:
                self._header[local] = "".join(self._text_parts).strip() or None
            elif depth == self._header_depth:
                self._header_depth = 0
        elif local in ("ERR_CODE", "ERR_DESC"):
            self._error[local] = "".join(self._text_parts).strip()
        elif local == "ERROR":
            raise ValueError(
                f"OASIS error document: {self._error.get('ERR_CODE', '?')} {self._error.get('ERR_DESC', '')}"
            )
        self._text_parts = []

    def _add_row(self) -> None:
        values = self._header | self._row
        for key, column in self._columns.items():
            column.append(values.pop(key, None))
        for key, value in values.items():
            column = [None] * self._count
            column.append(value)
            self._columns[key] = column
        self._count += 1
        if self._count >= self._batch_rows:
            self._ready.append(self._columns)
            self._columns, self._count = {}, 0
