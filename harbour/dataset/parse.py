"""
An OASIS zip's members as typed Arrow record batches, streamed.

A zip holds one CSV member (C{resultformat=6}), one XML member, or one XML
member per price component (group zips and version 3 price reports); every
member's rows become rows of the same table.  CSV members are read with
pyarrow's streaming CSV reader, typed as they are parsed; XML members with
the standard library's expat parser, one row per C{REPORT_DATA} (or
C{ATL_ITEM}) with the fields of its C{REPORT_HEADER} (or C{ATL_HEADER}).

Each batch holds the typed source columns (see L{harbour.dataset.columns})
and C{interval_start_utc}, C{interval_end_utc} and C{trading_date}.
"""

from __future__ import annotations

import lzma
import re
import sys
import threading
import traceback
import weakref
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.parsers import expat
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from harbour.dataset.columns import (
    END_COLUMNS,
    INTERVAL_END,
    INTERVAL_START,
    START_COLUMNS,
    TIMESTAMP,
    TRADING_DATE,
    column_name,
    column_type,
    first_present,
)
from harbour.dataset.xmlrows import MOST_FIELDS, XmlRows
from harbour.oasis.classify import overlapping

#: The market's time zone: a row without a trading day of its own falls on
#: the Pacific day its interval starts in.
MARKET_ZONE = ZoneInfo("America/Los_Angeles")

#: Rows per XML batch; CSV batches are cut by bytes (L{CSV_BLOCK_BYTES}):
#: 4 MB blocks (about 23,000 rows of an LMP answer, a row group each) parse
#: as fast as 8 MB ones and keep the parse's peak memory near 340 MB for
#: an all-node day, against 480 MB.
BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 4 << 20

#: The most seconds a CSV member's parse waits, once over, for pyarrow to
#: let go of its stream (see L{read_csv}): it does so within a read.
RELEASE_SECONDS = 30.0

#: The most bytes read from a zip member at once (see L{_Rejoined}).
PIECE_BYTES = 256 << 10

#: The most bytes of a CSV member's header line (its column names) read,
#: a piece at a time, to find its end: far more than OASIS's longest.
HEADER_BYTES = 1 << 20
HEADER_PIECE_BYTES = 64 << 10

#: The end of a line, as pyarrow's CSV reader finds it.
LINE_END = re.compile(rb"[\r\n]")

#: The source columns a row's trading day is read from, in order of preference.
DATE_SOURCES = ("OPR_DT", "OPR_DATE", "TRADE_DATE")

#: The columns every batch gets besides its source columns: no source
#: column may be named so.
ADDED_COLUMNS = frozenset({INTERVAL_START, INTERVAL_END, TRADING_DATE})

#: A zip member's flag bit for encryption, and the compression methods
#: C{zipfile} reads.
ENCRYPTED = 0x1
READABLE_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


class ParseError(Exception):
    """
    An answer harbour cannot turn into rows: a malformed member, a member
    of a kind harbour does not understand, an OASIS error document, or a
    row without a trading day.  The message names the member and, where
    known, the line or row; it is cut to L{MESSAGE_CHARACTERS}, as a
    value quoted in it may be of any length.
    """

    def __init__(self, message: str) -> None:
        if len(message) > MESSAGE_CHARACTERS:
            message = (
                f"{message[:MESSAGE_CHARACTERS]}... ({len(message) - MESSAGE_CHARACTERS:,} characters more)"
            )
        super().__init__(message)


#: The most characters of a L{ParseError}'s message kept: it goes to the
#: log, the task store and the bus.
MESSAGE_CHARACTERS = 500


def _system_error(error: OSError) -> bool:
    """
    @return: Whether C{error} came from the system (a file descriptor
        short, a disk failing), and so may not happen again, rather than
        from the zip's content (C{bz2}'s "Invalid data stream" is an
        L{OSError} without an C{errno}).
    """
    return error.errno is not None


def read_zip(zip_path: Path) -> Iterator[pa.RecordBatch]:
    """
    @param zip_path: A downloaded OASIS answer.
    @return: Its rows, member after member, in batches.
    @raise ParseError: When any part of it cannot be read; batches already
        produced are then to be thrown away.
    @raise OSError: When the system fails to read it (too many open
        files, a disk error): another try may succeed.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise ParseError(f"{zip_path.name}: not a readable zip ({e})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            raise ParseError(f"{zip_path.name}: the zip holds no file")
        # Refused by the download too (since it looks); a file kept before
        # it did would give the rows of shared bytes once per entry.
        try:
            overlap = overlapping(archive)
        except zipfile.BadZipFile as e:
            raise ParseError(f"{zip_path.name}: not a readable zip ({e})") from None
        if overlap is not None:
            raise ParseError(f"{zip_path.name}: {overlap}")
        for info in members:
            if not info.filename.lower().endswith((".csv", ".xml")):
                raise ParseError(f"{zip_path.name}: member {info.filename}: neither CSV nor XML")
            if info.flag_bits & ENCRYPTED:
                raise ParseError(f"{zip_path.name}: member {info.filename}: encrypted")
            if info.compress_type not in READABLE_COMPRESSION:
                raise ParseError(
                    f"{zip_path.name}: member {info.filename}: compressed by an unknown method"
                    f" ({info.compress_type})"
                )
        for info in members:
            try:
                with archive.open(info) as stream:
                    if info.filename.lower().endswith(".csv"):
                        yield from read_csv(stream, info.filename)
                    else:
                        yield from read_xml(stream, info.filename)
            except ParseError as e:
                raise ParseError(f"{zip_path.name}: {e}") from None
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as e:
                if isinstance(e, OSError) and _system_error(e):
                    raise
                raise ParseError(f"{zip_path.name}: member {info.filename}: cannot be read ({e})") from None


def read_csv(stream: IO[bytes], member: str) -> Iterator[pa.RecordBatch]:
    """
    @param stream: A C{resultformat=6} CSV document.
    @param member: Its name, for messages.
    @return: Its rows in batches: none if it holds only its header, with
        a line's end after it or not.
    @raise ParseError: If it is malformed or a value does not fit its type.
    """
    header, end = _header(stream, member)
    first_line = header[:end].decode("utf-8-sig", errors="replace").strip()
    if not first_line:
        raise ParseError(f"{member}: line 1: no header")
    names = [name.strip().strip('"') for name in first_line.split(",")]
    if len(names) > MOST_FIELDS:
        raise ParseError(
            f"{member}: line 1: {len(names):,} columns, more than the {MOST_FIELDS} harbour takes"
        )
    if len({column_name(name) for name in names}) != len(names):
        raise ParseError(f"{member}: line 1: a column is named twice")
    if end == len(header):
        # The header alone, without a line's end: no rows, as with one
        # (pyarrow would fail to skip the header).
        return
    options = pacsv.ConvertOptions(
        column_types={name: column_type(name) for name in names},
        # Only an empty value is null, as in XML answers: pyarrow would
        # take the words NA, NULL, nan and the like for nulls too.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    source = _Rejoined(header, stream)
    try:
        reader = pacsv.open_csv(
            # Arrow's buffered stream copies each read into a buffer of its
            # own; given the Python file, pyarrow would keep each read's
            # Python object in its blocks, which its threads free later,
            # taking the interpreter's lock (even as it exits).
            pa.BufferedInputStream(pa.PythonFile(source, mode="r"), PIECE_BYTES),
            # The names as typed and checked above, so that the reader
            # does not keep a space or a quote of the header's; not in
            # threads, as pyarrow numbers the rows (for its errors' "Row
            # #12") only when it parses the blocks in turn, and the parse
            # runs beside the writing anyway (see read_ahead).
            read_options=pacsv.ReadOptions(
                block_size=CSV_BLOCK_BYTES, column_names=names, skip_rows=1, use_threads=False
            ),
            convert_options=options,
        )
        seen = 0
        for batch in reader:
            batch = batch.rename_columns([column_name(n) for n in batch.schema.names])
            yield finish(batch, member, seen)
            seen += batch.num_rows
    except pa.ArrowInvalid as e:
        raise ParseError(f"{member}: {e}") from None
    finally:
        # pyarrow reads the stream ahead on a thread of its own, which goes
        # on after its reader stops (at an error, or when the consumer
        # stops early): it would read the member after its owner closed
        # it, and a call into an interpreter exiting meanwhile aborts the
        # process.  So the stream ends here, and the parse returns only
        # once pyarrow has let go of it.
        released = source.stop()
        source = reader = None  # type: ignore[assignment]
        # An error raised by the stream's own read holds that read's frame,
        # and so the stream, in its traceback: let go of their locals, or
        # the wait would last its whole bound.
        traceback.clear_frames(sys.exc_info()[2])
        released.wait(RELEASE_SECONDS)


def _header(stream: IO[bytes], member: str) -> tuple[bytes, int]:
    """
    Read a CSV member's first line, and what came with it.

    @return: The bytes read: the first line and its end, and maybe more;
        all of the member if it ends within its first line.  Then where
        the first line ends in them (their length if it has no end).
    @raise ParseError: If the first line is longer than L{HEADER_BYTES}.
    """
    pieces: list[bytes] = []
    size = 0
    while size <= HEADER_BYTES:
        piece = stream.read(HEADER_PIECE_BYTES)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
        if b"\n" in piece or b"\r" in piece:
            break
    header = b"".join(pieces)
    found = LINE_END.search(header)
    end = len(header) if found is None else found.start()
    if end > HEADER_BYTES:
        raise ParseError(f"{member}: line 1: a header longer than {HEADER_BYTES:,} bytes")
    return header, end


def read_xml(stream: IO[bytes], member: str) -> Iterator[pa.RecordBatch]:
    """
    @param stream: An C{OASISReport} XML document.
    @param member: Its name, for messages.
    @return: Its rows in batches.
    @raise ParseError: If it is malformed, not an OASIS report, or an OASIS
        error document.
    """
    rows = XmlRows(BATCH_ROWS)
    seen = 0
    try:
        while chunk := stream.read(1 << 20):
            rows.feed(chunk)
            for columns in rows.batches():
                batch = typed_batch(columns, member)
                yield finish(batch, member, seen)
                seen += batch.num_rows
        rows.close()
    except expat.ExpatError as e:
        raise ParseError(f"{member}: line {e.lineno}: malformed XML ({expat.ErrorString(e.code)})") from None
    except (ValueError, LookupError) as e:
        # LookupError: an encoding the document declares that Python lacks.
        raise ParseError(f"{member}: {e}") from None
    for columns in rows.batches(final=True):
        batch = typed_batch(columns, member)
        yield finish(batch, member, seen)
        seen += batch.num_rows


def typed_batch(columns: dict[str, list[str | None]], member: str) -> pa.RecordBatch:
    """
    @param columns: Source element names to their text values.
    @param member: The member's name, for messages.
    @return: The values typed by L{column_type}, names in lower case.
    @raise ParseError: If a value does not fit its column's type, or two
        element names differ only in case.
    """
    arrays, names = [], []
    for source, values in columns.items():
        if column_name(source) in names:
            raise ParseError(f"{member}: element {source}: a column is named twice")
        wanted = column_type(source)
        try:
            arrays.append(pa.array(values, pa.string()).cast(wanted))
        except pa.ArrowInvalid as e:
            raise ParseError(f"{member}: element {source}: {e}") from None
        names.append(column_name(source))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def finish(batch: pa.RecordBatch, member: str, seen: int) -> pa.RecordBatch:
    """
    Add the interval and trading day columns.

    @param seen: How many rows of the member came before this batch.
    @raise ParseError: If a row has no trading day.
    """
    names = batch.schema.names
    if clashing := ADDED_COLUMNS.intersection(names):
        raise ParseError(f"{member}: a source column is named {min(clashing)}, as a column harbour adds")
    arrays = list(batch.columns)
    start_name, end_name = first_present(START_COLUMNS, names), first_present(END_COLUMNS, names)
    nulls = pa.nulls(batch.num_rows, TIMESTAMP)
    start = batch.column(start_name) if start_name else nulls
    end = batch.column(end_name) if end_name else nulls
    date_name = first_present(DATE_SOURCES, names)
    day = batch.column(date_name) if date_name else pa.nulls(batch.num_rows, pa.date32())
    if day.type != pa.date32():
        # A date source typed as text (TRADE_DATE): its values must be days.
        try:
            day = day.cast(pa.date32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ParseError(f"{member}: column {date_name}: not a day ({e})") from None
    if day.null_count:
        local = pc.local_timestamp(start.cast(pa.timestamp("us", tz=MARKET_ZONE.key)))
        day = pc.coalesce(day, local.cast(pa.date32()))
    if day.null_count:
        missing = pc.index(pc.is_null(day), True).as_py()
        raise ParseError(
            f"{member}: row {seen + missing + 1}: no trading day (no OPR_DT and no interval start)"
        )
    return pa.RecordBatch.from_arrays(
        [*arrays, start, end, day], names=[*names, INTERVAL_START, INTERVAL_END, TRADING_DATE]
    )


class _Rejoined:
    """
    A stream whose first bytes were read already: those, then the rest.

    Each read is assembled in a buffer of Arrow's allocator from pieces of
    at most L{PIECE_BYTES}: asked for a whole block at once, C{zipfile}
    copies the member's compressed tail anew for every block, and the
    large short-lived strings that makes leave the C allocator's heap
    fragmented, which costs more resident memory than the blocks
    themselves.
    """

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest
        # Held by each read, so that a stop waits for the read under way.
        self._lock = threading.Lock()
        self._stopped = False
        self._released = threading.Event()
        weakref.finalize(self, self._released.set)
        self.closed = False

    def stop(self) -> threading.Event:
        """
        Read nothing more of the stream: every read from now on finds its
        end.  Returns once no read is under way.

        @return: An event set once this object is no more: once its reader
            (pyarrow) has let go of it.
        """
        with self._lock:
            self._stopped = True
        return self._released

    def _piece(self, size: int) -> bytes:
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)

    def read(self, size: int = -1) -> bytes | pa.Buffer:
        """
        @return: Up to C{size} bytes (all that is left when negative).
        """
        with self._lock:
            if self._stopped:
                return b""
            return self._read(size)

    def _read(self, size: int) -> bytes | pa.Buffer:
        if size < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        block = pa.allocate_buffer(size, resizable=True)
        filled = 0
        with memoryview(block).cast("B") as view:
            while filled < size:
                piece = self._piece(min(PIECE_BYTES, size - filled))
                if not piece:
                    break
                view[filled : filled + len(piece)] = piece
                filled += len(piece)
        block.resize(filled)
        return block

    def close(self) -> None:
        """
        Nothing to release: the zip member is closed by its owner.
        """
        self.closed = True
