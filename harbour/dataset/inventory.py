"""
What the dataset holds, read from the Parquet files' footers alone: per
report its rows, files and trading days, and the days of a range with no
file; and, reading every file through, whether each is whole and still
matches the zip it was made from.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attr
import pyarrow as pa
import pyarrow.parquet as pq

from harbour.dataset.write import PARTITION_PREFIX, listing

ONE_DAY = datetime.timedelta(days=1)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Mismatch:
    """
    A Parquet file that cannot be read whole, or whose recorded source is
    gone or has changed.

    @ivar unreadable: Whether the file itself cannot be read whole.
    """

    file: Path
    reason: str
    unreadable: bool = False


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReportTables:
    """
    The Parquet files of one report.

    @ivar days: The trading days with at least one file, oldest first.
    @ivar missing: The days of the expected range without a file.
    @ivar unreadable: The files whose footer cannot be read (damaged on
        disk), each with why; they count in no other figure.
    """

    report: str
    rows: int = attr.ib(validator=attr.validators.ge(0))
    files: int = attr.ib(validator=attr.validators.ge(0))
    days: tuple[datetime.date, ...]
    missing: tuple[datetime.date, ...]
    unreadable: tuple[Mismatch, ...] = ()

    @property
    def first(self) -> datetime.date | None:
        """
        The oldest trading day with data, if any.
        """
        return self.days[0] if self.days else None

    @property
    def last(self) -> datetime.date | None:
        """
        The newest trading day with data, if any.
        """
        return self.days[-1] if self.days else None


def parquet_files(report_dir: Path) -> Iterator[tuple[datetime.date, Path]]:
    """
    The files of a report as they are listed: a day's directory removed
    between the listing of the report's directory and its own (a window
    rewritten over fewer days, a parse that made the day given up) has
    none, rather than failing the listing as C{Path.glob} does; so has a
    report whose directory is gone.

    @return: Each Parquet file of a report's days with its day, by day
        and name.
    """
    for partition in listing(report_dir):
        if not partition.name.startswith(PARTITION_PREFIX):
            continue
        try:
            day = datetime.date.fromisoformat(partition.name.removeprefix(PARTITION_PREFIX))
        except ValueError:
            continue
        for file in listing(Path(partition.path)):
            if file.name.endswith(".parquet"):
                yield day, Path(file.path)


def report_tables(
    tables_dir: Path, report: str, expected: tuple[datetime.date, datetime.date] | None = None
) -> ReportTables:
    """
    @param expected: The first and last trading day the report should
        cover; without it, the gaps between its first and last day count.
    @return: What the report's files hold.
    """
    rows = files = 0
    days: set[datetime.date] = set()
    unreadable: list[Mismatch] = []
    for day, file in parquet_files(tables_dir / report):
        try:
            rows += pq.read_metadata(file).num_rows
        except FileNotFoundError:
            continue  # replaced or dropped since it was listed
        except (OSError, pa.ArrowException) as e:
            unreadable.append(Mismatch(file, f"unreadable ({e})", unreadable=True))
            continue
        files += 1
        days.add(day)
    ordered = tuple(sorted(days))
    if expected is None and ordered:
        expected = (ordered[0], ordered[-1])
    missing: tuple[datetime.date, ...] = ()
    if expected is not None:
        missing = tuple(d for d in day_range(*expected) if d not in days)
    return ReportTables(report, rows, files, ordered, missing, tuple(unreadable))


def reports_in(tables_dir: Path) -> list[str]:
    """
    @return: The names of the reports with a directory in the dataset.
    """
    if not tables_dir.is_dir():
        return []
    return sorted(p.name for p in tables_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def day_range(first: datetime.date, last: datetime.date) -> Iterator[datetime.date]:
    """
    @return: Every day from C{first} to C{last} inclusive.
    """
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def spans(days: Iterable[datetime.date]) -> list[tuple[datetime.date, datetime.date]]:
    """
    @param days: Days in ascending order.
    @return: Them as runs of consecutive days, C{(first, last)} each.
    """
    runs: list[tuple[datetime.date, datetime.date]] = []
    for day in days:
        if runs and runs[-1][1] + ONE_DAY == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def file_sha256(path: Path) -> str:
    """
    @return: The hex SHA-256 of a file's bytes.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check(tables_dir: Path, reports: Iterable[str] | None = None) -> list[Mismatch]:
    """
    Read each Parquet file through, verifying its pages' checksums where
    it has them, and compare its recorded sha256 with the zip it names.

    @param reports: The reports to check; every one by default.
    @return: Every file that cannot be read whole, or whose zip is missing
        or differs.
    """
    data_dir = tables_dir.parent
    hashes: dict[Path, str | None] = {}
    mismatches = []
    for report in reports if reports is not None else reports_in(tables_dir):
        for ignored, file in parquet_files(tables_dir / report):
            try:
                recorded = _recorded(read_through(file))
            except (OSError, pa.ArrowException) as e:
                mismatches.append(Mismatch(file, f"unreadable ({e})", unreadable=True))
                continue
            source, sha256 = recorded.get("harbour.source"), recorded.get("harbour.sha256")
            if not source or not sha256:
                mismatches.append(Mismatch(file, "records no source zip"))
                continue
            zip_path = data_dir / source
            if zip_path not in hashes:
                hashes[zip_path] = file_sha256(zip_path) if zip_path.is_file() else None
            actual = hashes[zip_path]
            if actual is None:
                mismatches.append(Mismatch(file, f"its zip {source} is missing"))
            elif actual != sha256:
                mismatches.append(Mismatch(file, f"its zip {source} has sha256 {actual}, not {sha256}"))
    return mismatches


def read_through(file: Path) -> Mapping[bytes, bytes]:
    """
    Decode every page of a Parquet file, verifying the checksum of each
    that has one, and count the rows of each row group: a footer read
    alone tells nothing of pages damaged on disk, and a damaged page may
    still decode, into other values, or be skipped without a word (a page
    header damaged into a kind of page pyarrow does not know), leaving
    fewer rows than the footer records.

    @return: The file's key-value metadata.
    @raise OSError: If a page cannot be read, its checksum differs, or the
        rows decoded are not those the footer records.
    """
    with pq.ParquetFile(file, page_checksum_verification=True) as parquet:
        metadata = parquet.metadata
        total = 0
        for group in range(metadata.num_row_groups):
            recorded = metadata.row_group(group).num_rows
            decoded = sum(batch.num_rows for batch in parquet.iter_batches(row_groups=[group]))
            if decoded != recorded:
                raise OSError(f"row group {group} decodes to {decoded} rows, not the {recorded} it records")
            total += decoded
        if total != metadata.num_rows:
            raise OSError(f"its row groups hold {total} rows, not the {metadata.num_rows} it records")
        return metadata.metadata or {}


def _recorded(metadata: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in metadata.items() if k.startswith(b"harbour.")}
