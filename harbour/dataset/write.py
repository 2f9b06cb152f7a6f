"""
One downloaded window as Parquet files, one per trading day, in the Hive
layout:

    <tables_dir>/<report>/trading_date=YYYY-MM-DD/part-<label>.parquet

Each file is written under a temporary name beside its final one, synced,
and renamed into place; then the files of the same window in other days,
which an earlier answer wrote and this one does not have, are removed.  A
reader thus sees each file whole, and a window rewritten never doubles a
row.  The partition column C{trading_date} lives in the directory names
only, so that engines reading with Hive partitioning get it once.

The zip is parsed in a thread of its own a few batches ahead of the
writing (L{harbour.dataset.readahead}), so that both keep a core busy.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path

import attr
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import harbour
from harbour.dataset.columns import TRADING_DATE
from harbour.dataset.parse import ParseError, read_zip
from harbour.dataset.readahead import read_ahead

#: The partition directories' prefix.
PARTITION_PREFIX = f"{TRADING_DATE}="

#: Parsed batches that may wait for the writer: two keep both the parse
#: and the writing busy without holding more than a few blocks.
READ_AHEAD = 2


def _files(value: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(value)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class WrittenWindow:
    """
    What writing one window produced.

    @ivar rows: Rows written, over all its files.
    @ivar files: The Parquet files, one per trading day, oldest day first.
    @ivar days: Their trading days, in the same order.
    """

    rows: int = attr.ib(validator=attr.validators.ge(0))
    files: tuple[Path, ...] = attr.ib(converter=_files)
    days: tuple[datetime.date, ...] = attr.ib()

    @days.validator
    def _check_days(
        self, attribute: attr.Attribute[tuple[datetime.date, ...]], value: tuple[datetime.date, ...]
    ) -> None:
        if len(value) != len(self.files):
            raise ValueError("a written window has one file per day")


def remove_abandoned(tables_dir: Path, older_than: float, now: float) -> int:
    """
    Remove the temporary files of parses that died mid-write: not written
    to for C{older_than} seconds.  Blocks: run it in a thread.

    @return: How many were removed.
    """
    removed = 0
    for path in tables_dir.glob(f"*/{PARTITION_PREFIX}*/.part-*.tmp"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # its parse ended meanwhile
    return removed


def part_name(label: str) -> str:
    """
    @return: The file name of window C{label}'s part of a day.
    """
    if not label or "/" in label or label.startswith("."):
        raise ValueError(f"{label!r} is not a window label")
    return f"part-{label}.parquet"


def partition(report_dir: Path, day: datetime.date) -> Path:
    """
    @return: The directory of trading day C{day} of a report.
    """
    return report_dir / f"{PARTITION_PREFIX}{day.isoformat()}"


def source_name(zip_path: Path, tables_dir: Path) -> str:
    """
    @return: C{zip_path} relative to the data directory that holds
        C{tables_dir}, or its bare name when it lies elsewhere.
    """
    try:
        return zip_path.resolve().relative_to(tables_dir.resolve().parent).as_posix()
    except ValueError:
        return zip_path.name


def write_window(
    zip_path: Path, tables_dir: Path, report: str, label: str, *, url: str, sha256: str
) -> WrittenWindow:
    """
    Turn a verified zip into its window's Parquet files, replacing exactly
    the files an earlier answer for the same window wrote.  Blocks: run it
    in a thread.

    @param zip_path: The downloaded answer.
    @param tables_dir: The root of the dataset.
    @param report: The report's name (its directory).
    @param label: The window's label (the zip's name without C{.zip}).
    @param url: The request the zip answers.
    @param sha256: The zip's hash.
    @raise ParseError: If the zip cannot be parsed; nothing is then
        changed in C{tables_dir}.
    """
    name = part_name(label)
    report_dir = tables_dir / report
    metadata = {
        "harbour.source": source_name(zip_path, tables_dir),
        "harbour.url": url,
        "harbour.sha256": sha256,
        "harbour.version": harbour.__version__,
    }
    days = DayFiles(report_dir, name, metadata)
    batches = read_ahead(read_zip(zip_path), READ_AHEAD)
    try:
        for batch in batches:
            days.add(batch)
        written = days.commit()
    except BaseException:
        # The parse stops (and its zip is closed) before the files go.
        batches.close()
        days.abort()
        raise
    for stale in report_dir.glob(f"{PARTITION_PREFIX}*/{name}"):
        if stale not in written.files:
            stale.unlink(missing_ok=True)
            _remove_if_empty(stale.parent)
    return written


class DayFiles:
    """
    The temporary Parquet files of one window being written, one per day.

    A batch whose columns differ from its day's file so far is fitted to
    them: missing columns become nulls, and new ones make the file be
    rewritten with the wider schema (rare: members of one answer share
    their columns).
    """

    def __init__(self, report_dir: Path, name: str, metadata: dict[str, str]) -> None:
        self._report_dir = report_dir
        self._name = name
        self._metadata = metadata
        self._writers: dict[datetime.date, pq.ParquetWriter] = {}
        self._temporary: dict[datetime.date, Path] = {}
        self._created: list[Path] = []
        self._rows = 0
        self._opened = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """
        Write a parsed batch to the files of its days.
        """
        if not batch.num_rows:
            return
        days = batch.column(TRADING_DATE)
        rows = pa.Table.from_batches([batch]).drop_columns([TRADING_DATE])
        bounds = pc.min_max(days)
        first, last = bounds["min"], bounds["max"]
        if first == last:
            # Nearly every batch holds one day: no filtering.
            self._write(first.as_py(), rows)
        else:
            for day in pc.unique(days).to_pylist():
                self._write(day, rows.filter(pc.equal(days, pa.scalar(day, pa.date32()))))
        self._rows += batch.num_rows

    def _write(self, day: datetime.date, rows: pa.Table) -> None:
        writer = self._writers.get(day)
        if writer is None:
            writer = self._open(day, rows.schema)
        elif rows.schema.names != writer.schema.names:
            wanted = writer.schema
            if not set(rows.schema.names) <= set(wanted.names):
                writer = self._widen(day, rows.schema)
                wanted = writer.schema
            rows = _fitted(rows, wanted)
        writer.write_table(rows.replace_schema_metadata(writer.schema.metadata))

    def _open(self, day: datetime.date, schema: pa.Schema) -> pq.ParquetWriter:
        directory = partition(self._report_dir, day)
        if not directory.exists():
            directory.mkdir(parents=True)
            self._created.append(directory)
        self._opened += 1
        temporary = directory / f".{self._name}.{os.getpid()}.{id(self)}.{self._opened}.tmp"
        self._temporary[day] = temporary
        writer = parquet_writer(temporary, schema.with_metadata(self._metadata))
        self._writers[day] = writer
        return writer

    def _widen(self, day: datetime.date, schema: pa.Schema) -> pq.ParquetWriter:
        old_writer, old_path = self._writers.pop(day), self._temporary.pop(day)
        old_writer.close()
        old_schema = old_writer.schema
        extra = [field for field in schema if field.name not in old_schema.names]
        writer = self._open(day, pa.schema([*old_schema, *extra]))
        wide = writer.schema
        for batch in pq.ParquetFile(old_path).iter_batches():
            writer.write_table(_fitted(pa.Table.from_batches([batch]), wide))
        old_path.unlink()
        return writer

    def commit(self) -> WrittenWindow:
        """
        Close, sync and rename every file into place.

        @return: What was written.
        """
        for writer in self._writers.values():
            writer.close()
        files, days = [], sorted(self._temporary)
        for day in days:
            temporary = self._temporary[day]
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            final = temporary.with_name(self._name)
            temporary.replace(final)
            files.append(final)
        for directory in {f.parent for f in files}:
            _sync_directory(directory)
        self._temporary.clear()
        return WrittenWindow(rows=self._rows, files=tuple(files), days=tuple(days))

    def abort(self) -> None:
        """
        Remove every temporary file and every directory made for them.
        """
        for writer in self._writers.values():
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
        for temporary in self._temporary.values():
            temporary.unlink(missing_ok=True)
        self._temporary.clear()
        for directory in self._created:
            _remove_if_empty(directory)


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """
    @return: A writer of the dataset's files: zstd, dictionaries for
        strings and times, byte stream split for values.
    """
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    others = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        use_dictionary=others,
        column_encoding=dict.fromkeys(floats, "BYTE_STREAM_SPLIT"),
        write_statistics=True,
    )


def _fitted(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """
    @return: C{rows} with the columns of C{schema}, in its order; those it
        lacks are null.
    """
    present = set(rows.schema.names)
    arrays = [
        rows.column(field.name) if field.name in present else pa.nulls(rows.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


__all__ = ["ParseError", "WrittenWindow", "part_name", "partition", "write_window"]
