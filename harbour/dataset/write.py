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
import glob
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attr
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import harbour
from harbour.dataset.columns import TRADING_DATE
from harbour.dataset.locking import LOCK_SUFFIX, remove_lock_if_free, window_lock
from harbour.dataset.parse import ParseError, read_zip
from harbour.dataset.readahead import read_ahead
from harbour.durability import sync_path
from harbour.processes import left_by_dead_process, process_mark

#: The partition directories' prefix.
PARTITION_PREFIX = f"{TRADING_DATE}="

#: Parsed batches that may wait for the writer: it writes a row group
#: (L{GROUP_ROWS}, some six CSV blocks) at a time, and eight keep the parse
#: going meanwhile, where two would stop it for most of each write.
READ_AHEAD = 8

#: The most trading days the rows of one answer may fall on: each is a
#: Parquet file held open until the commit.  A window is at most 31 days
#: (a month's group a month), and a row's day may lie just outside it.
MOST_DAYS = 100

#: Rows of one day held back to be written together, as one row group.
#: Written as they came, each parsed batch would be a row group of its
#: own: a CSV block's 23,000 rows, or a few hundred where an answer's
#: batches each hold pieces of several days (rows ordered by node, then
#: time).  Fewer, larger groups cost the writer less (a day of 1.9 million
#: rows: 15 groups, not 83) and, with the page index beside them, cost a
#: query reading a few nodes less too: it reads only their pages.
GROUP_ROWS = 131_072
#: The most bytes of rows held back across the days of a window: past it,
#: the day holding most rows is written, so that a parse's memory stays
#: bounded.
HELD_BYTES = 32 << 20

#: How often, at most, the temporary files of a parse under way are
#: touched, so that the janitor (L{remove_abandoned}) sees them alive even
#: when a day's file is not written to for a long while.
TOUCH_EVERY = 10.0


#: The footer key recording when the zip a file was made from was
#: downloaded (L{downloaded_at}): of two answers holding the same row of a
#: report OASIS serves only current data of, the later is its newer
#: posting (L{harbour.dataset.views}).
DOWNLOADED = "harbour.downloaded"

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def downloaded_at(mtime_ns: int) -> str:
    """
    @param mtime_ns: A zip's modification time, in nanoseconds: when it
        was downloaded (it is written once, and a revision is a new file),
        whichever host parses it and however often.
    @return: It in UTC, ISO 8601 to the microsecond, so that two compare
        as text as they do as times.
    """
    return (_EPOCH + datetime.timedelta(microseconds=mtime_ns // 1000)).isoformat(timespec="microseconds")


class Superseded(Exception):
    """
    The zip being parsed was replaced (a revision downloaded it again) or
    removed before its rows were committed: they are stale, so nothing was
    written, and the parse of the zip now in place writes the window.
    """


class ClaimEnded(Exception):
    """
    The claim of the parse ended before its rows were committed (its
    window was retired, or another claim took the file): nothing was
    written.
    """


def _files(value: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(value)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class WrittenWindow:
    """
    What writing one window produced.

    @ivar rows: Rows written, over all its files.
    @ivar files: The Parquet files, one per trading day, oldest day first.
    @ivar days: Their trading days, in the same order.
    @ivar columns: The columns of its files, but for those of the
        directories they are in.
    """

    rows: int = attr.ib(validator=attr.validators.ge(0))
    files: tuple[Path, ...] = attr.ib(converter=_files)
    days: tuple[datetime.date, ...] = attr.ib()
    columns: frozenset[str] = attr.ib(default=frozenset())

    @days.validator
    def _check_days(
        self, attribute: attr.Attribute[tuple[datetime.date, ...]], value: tuple[datetime.date, ...]
    ) -> None:
        if len(value) != len(self.files):
            raise ValueError("a written window has one file per day")


def remove_abandoned(tables_dir: Path, older_than: float, now: float) -> int:
    """
    Remove the temporary files of parses that died mid-write: left by a
    process of this host that is gone, or not written to (nor touched,
    which a live parse does every L{TOUCH_EVERY} seconds) for C{older_than}
    seconds; and the lock files such parses left, when no one holds them.
    Blocks: run it in a thread.

    @return: How many temporary files were removed.
    """
    removed = 0
    mine = process_mark()
    # Listed a directory at a time, not globbed: a day directory that
    # another parse removes meanwhile fails a glob across days.
    for report in listing(tables_dir, unreadable=True):
        if report.name.startswith("."):
            continue
        for day in listing(Path(report.path), unreadable=True):
            if not day.name.startswith(PARTITION_PREFIX):
                continue
            for entry in listing(Path(day.path), unreadable=True):
                if not (entry.name.startswith(".part-") and entry.name.endswith(".tmp")):
                    continue
                path = Path(entry.path)
                try:
                    if _left_by_dead_parse(path, mine) or now - path.stat().st_mtime > older_than:
                        path.unlink()
                        removed += 1
                        _remove_if_empty(path.parent)
                except FileNotFoundError:
                    pass  # its parse ended meanwhile
        for entry in listing(Path(report.path), unreadable=True):
            if entry.name.startswith(".part-") and entry.name.endswith(LOCK_SUFFIX):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > older_than:
                        remove_lock_if_free(Path(entry.path))
    return removed


def listing(directory: Path, unreadable: bool = False) -> list[os.DirEntry[str]]:
    """
    @param unreadable: Whether a directory this process may not read
        (another user's, a file system's C{lost+found}) is listed as
        empty rather than raising L{PermissionError}: the janitor passes
        it by, and goes on with the others.
    @return: What C{directory} holds, by name; nothing if it is gone, or
        is no directory (a day directory removed by another parse as it
        is listed).
    """
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        if unreadable:
            return []
        raise


def _left_by_dead_parse(temporary: Path, mine: str) -> bool:
    """
    @param mine: This process's L{process_mark}.
    @return: Whether C{temporary}, a day file being written, was left by a
        parse whose process (named in the file's name) is gone from this
        host.
    """
    writer = temporary.name.removesuffix(".tmp").split(".parquet.", 1)[-1]
    try:
        mark, ignored, ignored_too = writer.rsplit(".", 2)
    except ValueError:
        return False  # a stray name: left to its age
    return left_by_dead_process(mark, mine)


def _remove_dead_temporaries(directories: Iterable[Path], name: str) -> int:
    """
    Remove the temporary day files of window C{name} that a parse killed on
    this host left in C{directories} (the days the window covers, before
    and now: a killed parse of the same window wrote to those; the janitor
    finds any other); the caller holds the window's lock, so that its next
    writer leaves none of them behind.

    @return: How many were removed.
    """
    removed = 0
    mine = process_mark()
    for directory in directories:
        for temporary in directory.glob(f".{glob.escape(name)}.*.tmp"):
            if _left_by_dead_parse(temporary, mine):
                # Best effort: the janitor tries again.
                with contextlib.suppress(OSError):
                    temporary.unlink()
                    removed += 1
                    _remove_if_empty(temporary.parent)
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
        C{tables_dir}, or its absolute path when it lies elsewhere.
        Links are not followed: a download directory that is a link to
        another disk still lies in the data directory.
    """
    absolute = Path(os.path.abspath(zip_path))
    try:
        return absolute.relative_to(Path(os.path.abspath(tables_dir)).parent).as_posix()
    except ValueError:
        return absolute.as_posix()


def write_window(
    zip_path: Path,
    tables_dir: Path,
    report: str,
    label: str,
    *,
    url: str,
    sha256: str,
    still_held: Callable[[], bool] | None = None,
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
    @param still_held: If given, asked under the window's lock, just
        before the commit, whether the parse's claim still holds (and
        renewed by the asking).  Whoever ends a claim and then drops the
        window's tables (a retirement) takes the same lock to drop them, so
        a commit is either refused or made before that drop.
    @return: What was written.
    @raise ParseError: If the zip cannot be parsed; nothing is then
        changed in C{tables_dir}.
    @raise Superseded: If the zip was replaced or removed before its rows
        were committed; nothing is then changed in C{tables_dir}.
    @raise ClaimEnded: If C{still_held} says the claim ended; nothing is
        then changed in C{tables_dir}.  (What C{still_held} raises is
        raised, nothing changed either.)
    @raise FileNotFoundError: If there is no zip at C{zip_path}.
    """
    name = part_name(label)
    report_dir = tables_dir / report
    identity = zip_identity(zip_path)
    metadata = {
        "harbour.source": source_name(zip_path, tables_dir),
        "harbour.url": url,
        "harbour.sha256": sha256,
        DOWNLOADED: downloaded_at(identity[3]),
        "harbour.version": harbour.__version__,
    }
    days = DayFiles(report_dir, name, metadata)
    batches = read_ahead(read_zip(zip_path), READ_AHEAD)
    try:
        for batch in batches:
            days.add(batch)
        days.close()
        if not days.pending and not report_dir.is_dir():
            # No rows, and no earlier answer's files to remove.
            return days.commit()
        report_dir.mkdir(parents=True, exist_ok=True)
        with window_lock(report_dir, name):
            try:
                now = zip_identity(zip_path)
            except FileNotFoundError:
                now = None
            if now != identity:
                raise Superseded(f"{zip_path} was replaced while it was parsed: its rows are stale")
            if still_held is not None and not still_held():
                raise ClaimEnded(f"the claim of {zip_path} ended while it was parsed")
            earlier = _window_files(report_dir, name)
            _remove_dead_temporaries({path.parent for path in earlier} | days.directories, name)
            written = days.commit()
            stale = [path for path in earlier if path not in written.files]
            _remove_window(stale)
            # Once its task says parsed, a day this answer lacks must not
            # come back after a power cut, its rows with it.
            _sync_removals(stale)
    except BaseException:
        # The parse stops (and its zip is closed) before the files go.
        batches.close()
        days.abort()
        raise
    return written


def drop_window(tables_dir: Path, report: str, label: str) -> int:
    """
    Remove every day file of one window of a report, and the day
    directories left empty, under the window's lock.  Blocks: run it in a
    thread.

    @param tables_dir: The root of the dataset.
    @param report: The report's name (its directory).
    @param label: The window's label.
    @return: How many files were removed.
    """
    name = part_name(label)
    report_dir = tables_dir / report
    if not report_dir.is_dir():
        return 0
    with window_lock(report_dir, name):
        earlier = _window_files(report_dir, name)
        _remove_dead_temporaries({path.parent for path in earlier}, name)
        return _remove_window(earlier)


def zip_identity(zip_path: Path) -> tuple[int, int, int, int]:
    """
    @return: What tells a zip from another put at the same path: its
        device, inode, size and modification time.
    @raise FileNotFoundError: If there is no such file.
    """
    status = os.stat(zip_path)
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _window_files(report_dir: Path, name: str) -> list[Path]:
    """
    @return: The day files of window C{name} now in place.
    """
    days = (Path(day.path) for day in listing(report_dir) if day.name.startswith(PARTITION_PREFIX))
    return [file for file in (day / name for day in days) if file.is_file()]


def _remove_window(files: list[Path]) -> int:
    """
    Remove the day files C{files} of one window, and the day directories
    they leave empty; the caller holds the window's lock.

    @return: How many were removed.
    """
    for stale in files:
        stale.unlink(missing_ok=True)
        _remove_if_empty(stale.parent)
    return len(files)


def _sync_removals(removed: list[Path]) -> None:
    """
    Make the removal of the day files C{removed} of one window durable:
    sync each one's day directory, or the report's where the day's went
    with its last file.
    """
    gone = set()
    for directory in {path.parent for path in removed}:
        try:
            sync_path(directory)
        except FileNotFoundError:
            gone.add(directory.parent)
    for report_dir in gone:
        sync_path(report_dir)


class DayFiles:
    """
    The temporary Parquet files of one window being written, one per day.

    A batch whose columns differ from its day's file so far is fitted to
    them: missing columns become nulls, and new ones make the file be
    rewritten with the wider schema (rare: members of one answer share
    their columns).  Rows are held back, a day at a time, to be written
    in row groups of about L{GROUP_ROWS}, the memory they hold bounded by
    L{HELD_BYTES}.
    """

    def __init__(
        self,
        report_dir: Path,
        name: str,
        metadata: dict[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        @param clock: Tells the time, to touch the temporary files every
            L{TOUCH_EVERY} seconds.
        """
        self._report_dir = report_dir
        self._name = name
        self._metadata = metadata
        self._clock = clock
        self._touched = clock()
        self._writers: dict[datetime.date, pq.ParquetWriter] = {}
        # Rows held back, per day, in the order they came; how many, and
        # their bytes in all.
        self._held: dict[datetime.date, list[pa.Table]] = {}
        self._held_rows: dict[datetime.date, int] = {}
        self._held_bytes = 0
        self._temporary: dict[datetime.date, Path] = {}
        self._created: list[Path] = []
        self._rows = 0
        self._columns: set[str] = set()
        self._opened = 0
        self._closed = False
        # Read from /proc: once per window, not per day.
        self._mark = process_mark()

    @property
    def directories(self) -> set[Path]:
        """
        The day directories of the files awaiting L{commit}.
        """
        return {path.parent for path in self._temporary.values()}

    @property
    def pending(self) -> bool:
        """
        Whether any file awaits L{commit}.
        """
        return bool(self._temporary)

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
            self._hold(first.as_py(), rows)
        else:
            for day in pc.unique(days).to_pylist():
                self._hold(day, rows.filter(pc.equal(days, pa.scalar(day, pa.date32()))))
        self._rows += batch.num_rows
        self._touch()

    def _touch(self) -> None:
        """
        Mark every temporary file as in use, so that the janitor spares the
        file of a day that has not been written to for a long while.
        """
        now = self._clock()
        if now - self._touched < TOUCH_EVERY:
            return
        self._touched = now
        for temporary in self._temporary.values():
            with contextlib.suppress(FileNotFoundError):
                os.utime(temporary)

    def _hold(self, day: datetime.date, rows: pa.Table) -> None:
        """
        Hold back C{rows} of C{day}, writing the day's rows held once they
        reach L{GROUP_ROWS}, or those of the day holding most once all
        days' reach L{HELD_BYTES}.
        """
        if day not in self._held:
            self._check_days(day)
        self._held.setdefault(day, []).append(rows)
        self._held_rows[day] = self._held_rows.get(day, 0) + rows.num_rows
        self._held_bytes += rows.nbytes
        if self._held_rows[day] >= GROUP_ROWS:
            self._release(day)
        elif self._held_bytes >= HELD_BYTES:
            self._release(max(self._held_rows, key=self._held_rows.__getitem__))

    def _release(self, day: datetime.date) -> None:
        """
        Write the rows held back of C{day}: together, but for pieces whose
        columns differ from those before them.
        """
        pieces = self._held.pop(day)
        del self._held_rows[day]
        self._held_bytes -= sum(piece.nbytes for piece in pieces)
        run = [pieces[0]]
        for piece in pieces[1:]:
            if piece.schema.equals(run[0].schema):
                run.append(piece)
            else:
                self._write(day, pa.concat_tables(run))
                run = [piece]
        self._write(day, pa.concat_tables(run))

    def _check_days(self, day: datetime.date) -> None:
        """
        @raise ParseError: If C{day} would be a day past L{MOST_DAYS}.
        """
        if day not in self._writers and len(self._writers.keys() | self._held.keys()) >= MOST_DAYS:
            raise ParseError(
                f"its rows fall on more than {MOST_DAYS} trading days; an answer covers a window"
                " of a month at most"
            )

    def _write(self, day: datetime.date, rows: pa.Table) -> None:
        writer = self._writers.get(day)
        if writer is None:
            self._check_days(day)
            writer = self._open(day, rows.schema)
        elif rows.schema.names != writer.schema.names:
            wanted = writer.schema
            if not set(rows.schema.names) <= set(wanted.names):
                writer = self._widen(day, rows.schema)
                wanted = writer.schema
            rows = _fitted(rows, wanted)
        writer.write_table(rows.replace_schema_metadata(writer.schema.metadata))

    def _make(self, directory: Path) -> None:
        """
        Make C{directory} and those above it that are missing, noting each
        made (the deepest first), to sync its name at the commit and to
        remove it if the window is aborted.
        """
        missing = []
        above = directory
        while not above.exists() and above != above.parent:
            missing.append(above)
            above = above.parent
        directory.mkdir(parents=True, exist_ok=True)
        self._created.extend(missing)

    def _open(self, day: datetime.date, schema: pa.Schema) -> pq.ParquetWriter:
        directory = partition(self._report_dir, day)
        if not directory.exists():
            self._make(directory)
        self._opened += 1
        writer_name = f"{self._mark}.{id(self)}.{self._opened}"
        temporary = directory / f".{self._name}.{writer_name}.tmp"
        try:
            writer = parquet_writer(temporary, schema.with_metadata(self._metadata))
        except FileNotFoundError:
            # Another window's last file of the day went with its directory
            # just now.
            self._make(directory)
            writer = parquet_writer(temporary, schema.with_metadata(self._metadata))
        self._temporary[day] = temporary
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

    def close(self) -> None:
        """
        Close and sync every file, ready for L{commit}; once.
        """
        if self._closed:
            return
        for day in sorted(self._held):
            self._release(day)
        for writer in self._writers.values():
            writer.close()
            self._columns.update(writer.schema.names)
        self._writers.clear()
        for temporary in self._temporary.values():
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
        self._closed = True

    def commit(self) -> WrittenWindow:
        """
        Rename every file, closed and synced by L{close}, into place.

        @return: What was written.
        """
        self.close()
        files, days = [], sorted(self._temporary)
        for day in days:
            temporary = self._temporary[day]
            final = temporary.with_name(self._name)
            temporary.replace(final)
            files.append(final)
        # A directory made for this window is a name in its parent, which
        # a power cut could lose with every file below it.
        for directory in {f.parent for f in files} | {d.parent for d in self._created}:
            sync_path(directory)
        self._temporary.clear()
        return WrittenWindow(
            rows=self._rows, files=tuple(files), days=tuple(days), columns=frozenset(self._columns)
        )

    def abort(self) -> None:
        """
        Remove every temporary file and every directory made for them,
        the report's own included.
        """
        self._held.clear()
        self._held_rows.clear()
        self._held_bytes = 0
        for writer in self._writers.values():
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
        self._writers.clear()
        for temporary in self._temporary.values():
            temporary.unlink(missing_ok=True)
        self._temporary.clear()
        for directory in self._created:
            _remove_if_empty(directory)


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """
    @return: A writer of the dataset's files: zstd, dictionaries for
        strings and times, byte stream split for values, a checksum of
        every page, so that a page damaged on disk that still decodes is
        told from a whole one (L{harbour.dataset.inventory.check}), and
        the page index (each page's least and greatest values), so that
        a query for a few nodes reads their pages, not whole row groups.
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
        write_page_checksum=True,
        write_page_index=True,
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


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


__all__ = [
    "DOWNLOADED",
    "ClaimEnded",
    "ParseError",
    "Superseded",
    "WrittenWindow",
    "downloaded_at",
    "drop_window",
    "part_name",
    "partition",
    "write_window",
    "zip_identity",
]
