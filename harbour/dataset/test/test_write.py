"""
Tests of L{harbour.dataset.write}: one file per trading day, replaced
whole by a revision, nothing left behind by a failure.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from twisted.trial.unittest import SynchronousTestCase

import harbour
from harbour import processes
from harbour.dataset import parse
from harbour.dataset import write as write_module
from harbour.dataset.inventory import check, file_sha256, report_tables, reports_in
from harbour.dataset.locking import window_lock
from harbour.dataset.parse import ParseError
from harbour.dataset.test.helpers import FALLBACK_CSV, HUBS_CSV, HUBS_ZIP, SAMPLES, simulated, write, zip_of
from harbour.dataset.views import connect, rebuild_views
from harbour.dataset.write import (
    PARTITION_PREFIX,
    TOUCH_EVERY,
    ClaimEnded,
    DayFiles,
    Superseded,
    WrittenWindow,
    drop_window,
    part_name,
    remove_abandoned,
    write_window,
)
from harbour.test.helpers import dead_pid

D = datetime.date
#: The instant the janitor's rounds are timed from, and files aged from.
NOW = 1_750_000_000.0


def all_files(directory: Path) -> list[str]:
    """
    @return: Every file under C{directory}, relative to it.
    """
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def one_row(day: D) -> pa.RecordBatch:
    """
    @return: A parsed batch of one row of trading day C{day}.
    """
    return pa.RecordBatch.from_pydict(
        {"node": ["A"], "mw": [1.0], "trading_date": pa.array([day], pa.date32())}
    )


class WriteTests(SynchronousTestCase):
    """
    L{write_window}.
    """

    def setUp(self) -> None:
        self.data = Path(self.mktemp())
        self.tables = self.data / "tables"
        self.reports = self.data / "reports" / "lmp"

    def test_straddling_window(self) -> None:
        """
        A window over two trading days writes one file to each, with the
        rows of that day, and the file's record of its source and of when
        it was downloaded.
        """
        zip_path = self.reports / "2020-01-02.zip"
        zip_path.parent.mkdir(parents=True)
        zip_path.write_bytes(HUBS_ZIP.read_bytes())
        os.utime(zip_path, ns=(1_767_225_600_123_456_789, 1_767_225_600_123_456_789))
        written = write_window(zip_path, self.tables, "lmp", "2020-01-02", url="https://u", sha256="abc")
        self.assertEqual(written.rows, 288)
        self.assertEqual(written.days, (D(2020, 1, 1), D(2020, 1, 2)))
        self.assertEqual(
            all_files(self.tables),
            [
                "lmp/trading_date=2020-01-01/part-2020-01-02.parquet",
                "lmp/trading_date=2020-01-02/part-2020-01-02.parquet",
            ],
        )
        self.assertEqual([pq.read_metadata(f).num_rows for f in written.files], [96, 192])
        for file in written.files:
            table = pq.read_table(file)
            self.assertNotIn("trading_date", table.schema.names)
            day = D.fromisoformat(file.parent.name.split("=")[1])
            self.assertEqual(set(table.column("opr_dt").to_pylist()), {day})
        metadata = pq.read_metadata(written.files[0]).metadata
        self.assertEqual(metadata[b"harbour.source"], b"reports/lmp/2020-01-02.zip")
        self.assertEqual(metadata[b"harbour.url"], b"https://u")
        self.assertEqual(metadata[b"harbour.sha256"], b"abc")
        self.assertEqual(metadata[b"harbour.downloaded"], b"2026-01-01T00:00:00.123456+00:00")
        self.assertEqual(metadata[b"harbour.version"], harbour.__version__.encode())

    def test_source_through_link(self) -> None:
        """
        A download directory that is a link to another disk still lies in
        the data directory: the source is recorded relative to it, as the
        check of the tables finds it.
        """
        elsewhere = Path(self.mktemp()).absolute()
        (elsewhere / "lmp").mkdir(parents=True)
        self.data.mkdir()
        (self.data / "reports").symlink_to(elsewhere)
        zip_path = self.reports / "2020-01-02.zip"
        zip_path.write_bytes(HUBS_ZIP.read_bytes())
        written = write(zip_path, self.tables)
        metadata = pq.read_metadata(written.files[0]).metadata
        self.assertEqual(metadata[b"harbour.source"], b"reports/lmp/2020-01-02.zip")
        self.assertEqual(check(self.tables), [])

    def test_source_elsewhere(self) -> None:
        """
        A zip outside the data directory is recorded by its absolute path,
        not by a bare name that other reports' zips share.
        """
        zip_path = Path(self.mktemp()).absolute() / "2020-01-02.zip"
        zip_path.parent.mkdir(parents=True)
        zip_path.write_bytes(HUBS_ZIP.read_bytes())
        written = write(zip_path, self.tables)
        metadata = pq.read_metadata(written.files[0]).metadata
        self.assertEqual(metadata[b"harbour.source"], zip_path.as_posix().encode())
        self.assertEqual(check(self.tables), [])

    def test_too_many_days(self) -> None:
        """
        An answer whose rows fall on more trading days than a window has
        is a L{ParseError}, found before a file is held open for each of
        them; nothing is left behind.
        """
        self.patch(write_module, "MOST_DAYS", 3)
        rows = b"".join(b"2025-06-0%d,A,1\n" % (d,) for d in (1, 2, 3))
        three = zip_of(self.reports / "three.zip", [("a.csv", b"OPR_DT,NODE,MW\n" + rows)])
        self.assertEqual(len(write(three, self.tables, "lmp", "three").files), 3)
        four = zip_of(
            self.reports / "four.zip", [("a.csv", b"OPR_DT,NODE,MW\n" + rows + b"2025-06-04,A,1\n")]
        )
        with self.assertRaises(ParseError) as caught:
            write(four, self.tables, "lmp", "four")
        self.assertEqual(
            str(caught.exception),
            "its rows fall on more than 3 trading days; an answer covers a window of a month at most",
        )
        self.assertEqual(len(all_files(self.tables)), 3)
        self.assertEqual([p for p in self.tables.rglob(".*") if p.suffix == ".tmp"], [])

    def test_engines_read_partitions(self) -> None:
        """
        DuckDB and pyarrow.dataset read the files with Hive partitioning,
        C{trading_date} once, as a date.
        """
        write(HUBS_ZIP, self.tables, "lmp", "w")
        pattern = (self.tables / "lmp" / "*" / "*.parquet").as_posix()
        rows = (
            duckdb.connect()
            .execute(
                f"SELECT trading_date, typeof(trading_date), count(*) FROM "
                f"read_parquet('{pattern}', hive_partitioning = true) GROUP BY ALL ORDER BY 1"
            )
            .fetchall()
        )
        self.assertEqual(rows, [(D(2020, 1, 1), "DATE", 96), (D(2020, 1, 2), "DATE", 192)])
        dataset = ds.dataset(self.tables / "lmp", partitioning="hive")
        self.assertEqual(dataset.schema.names.count("trading_date"), 1)
        self.assertEqual(dataset.count_rows(), 288)
        table = dataset.to_table(filter=ds.field("trading_date") == "2020-01-01")
        self.assertEqual(table.num_rows, 96)

    def test_fallback_day(self) -> None:
        """
        The autumn change day's 25 hours are 25 distinct interval starts.
        """
        day = D(2025, 11, 2)
        zip_path = simulated(self.reports / "f.zip", "SLD_FCST", "ACTUAL", day, day)
        written = write(zip_path, self.tables, "load")
        table = pq.read_table(written.files[0])
        self.assertEqual(written.days, (day,))
        self.assertEqual(len(set(table.column("interval_start_utc").to_pylist())), 25)
        self.assertEqual(max(table.column("opr_hr").to_pylist()), 25)

    def test_real_fallback_sample(self) -> None:
        """
        The real sample of the autumn change day keeps its repeated hour
        apart.
        """
        zip_path = zip_of(self.reports / "x.zip", [(FALLBACK_CSV.name, FALLBACK_CSV.read_bytes())])
        written = write(zip_path, self.tables, "load")
        table = pq.read_table(written.files[0])
        hours = {(r["opr_hr"], r["interval_start_utc"]) for r in table.to_pylist()}
        self.assertEqual(len(hours), len({h for h, ignored in hours}))
        self.assertIn((25, datetime.datetime(2025, 11, 2, 9, tzinfo=datetime.UTC)), hours)

    def test_spring_day(self) -> None:
        """
        The spring change day has 23 hours.
        """
        day = D(2025, 3, 9)
        zip_path = simulated(self.reports / "s.zip", "PRC_LMP", "DAM", day, day)
        written = write(zip_path, self.tables)
        table = pq.read_table(written.files[0])
        self.assertEqual(written.days, (day,))
        self.assertEqual(len(set(table.column("interval_start_utc").to_pylist())), 23)
        self.assertEqual(table.num_rows, 3 * 23 * 4)

    def test_group_zip(self) -> None:
        """
        A group zip's members, one per component, land in the same file.
        """
        day = D(2025, 6, 1)
        zip_path = simulated(self.reports / "g.zip", "PRC_LMP", "DAM", day, day, csv=False, version=2)
        written = write(zip_path, self.tables)
        columns = frozenset(pq.read_schema(written.files[0]).names)
        self.assertEqual(written, WrittenWindow(3 * 24 * 5, written.files, (day,), columns))
        self.assertIn("data_item", columns)
        self.assertEqual(pq.read_metadata(written.files[0]).num_rows, 3 * 24 * 5)

    def test_members_with_other_columns(self) -> None:
        """
        Members with different columns make one file with the union of
        them; a member's missing columns are nulls.
        """
        narrow = b"OPR_DT,NODE,MW\n2020-01-01,A,1.5\n"
        wide = b"OPR_DT,NODE,MW,NEW_COLUMN\n2020-01-01,B,2.5,x\n"
        zip_path = zip_of(self.reports / "u.zip", [("a.csv", narrow), ("b.csv", wide), ("c.csv", narrow)])
        written = write(zip_path, self.tables)
        rows = pq.read_table(written.files[0]).to_pylist()
        self.assertEqual([(r["node"], r["new_column"]) for r in rows], [("A", None), ("B", "x"), ("A", None)])

    def test_revision(self) -> None:
        """
        Writing a window again replaces its files: no row doubled, and the
        file of a day the new answer lacks is gone; other windows' files
        stay.
        """
        first = simulated(self.reports / "w1.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 3), seed=1)
        other = simulated(self.reports / "o.zip", "PRC_LMP", "DAM", D(2025, 6, 2), D(2025, 6, 2), seed=3)
        write(first, self.tables, "lmp", "2025-06-01")
        write(other, self.tables, "lmp", "2025-06-02")
        revised = simulated(self.reports / "w2.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 2), seed=2)
        written = write(revised, self.tables, "lmp", "2025-06-01")
        self.assertEqual(written.days, (D(2025, 6, 1), D(2025, 6, 2)))
        self.assertEqual(
            all_files(self.tables),
            [
                "lmp/trading_date=2025-06-01/part-2025-06-01.parquet",
                "lmp/trading_date=2025-06-02/part-2025-06-01.parquet",
                "lmp/trading_date=2025-06-02/part-2025-06-02.parquet",
            ],
        )
        pattern = (self.tables / "lmp" / "*" / "part-2025-06-01.parquet").as_posix()
        count, sources = (
            duckdb.connect()
            .execute(
                f"SELECT count(*), count(DISTINCT filename) FROM read_parquet('{pattern}', filename = true)"
            )
            .fetchall()[0]
        )
        self.assertEqual((count, sources), (2 * 3 * 24 * 4, 2))
        revised_sha = pq.read_metadata(written.files[0]).metadata[b"harbour.sha256"].decode()
        self.assertEqual(revised_sha, file_sha256(revised))

    def test_removals_synced(self) -> None:
        """
        A revision over fewer days makes the removal of the days it lacks
        durable, as its own files are, before its task is said parsed: it
        syncs the day directory another window's file keeps, and the
        report's directory, where a day's directory went with its last
        file.
        """
        first = simulated(self.reports / "w1.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 3), seed=1)
        other = simulated(self.reports / "o.zip", "PRC_LMP", "DAM", D(2025, 6, 2), D(2025, 6, 2), seed=3)
        write(first, self.tables, "lmp", "2025-06-01")
        write(other, self.tables, "lmp", "2025-06-02")
        synced: list[Path] = []

        def sync(path: Path) -> None:
            os.stat(path)  # raises as syncing a directory that went does
            synced.append(path)

        self.patch(write_module, "sync_path", sync)
        revised = simulated(self.reports / "w2.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 1), seed=2)
        write(revised, self.tables, "lmp", "2025-06-01")
        report = self.tables / "lmp"
        self.assertFalse((report / f"{PARTITION_PREFIX}2025-06-03").exists())
        self.assertEqual(
            sorted(synced),
            [report, report / f"{PARTITION_PREFIX}2025-06-01", report / f"{PARTITION_PREFIX}2025-06-02"],
        )

    def test_failure_leaves_nothing(self) -> None:
        """
        A zip that cannot be parsed changes nothing: the window's earlier
        files stay, no temporary file or new directory is left.
        """
        good = simulated(self.reports / "good.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 1))
        write(good, self.tables, "lmp", "w")
        before = {p: p.read_bytes() for p in self.tables.rglob("*.parquet")}
        # The first rows are fine (and fall on other days), and are
        # written, in blocks smaller than them: only the end is bad.
        self.patch(parse, "CSV_BLOCK_BYTES", 64 * 1024)
        text = (
            b"OPR_DT,NODE,MW\n"
            + b"".join(b"2025-06-0%d,A,1\n" % (d,) for d in (1, 2, 3) for ignored in range(50_000))
            + b"2025-06-04,A,lots\n"
        )
        bad = zip_of(self.reports / "bad.zip", [("bad.csv", text)])
        with self.assertRaises(ParseError):
            write(bad, self.tables, "lmp", "w")
        self.assertEqual({p: p.read_bytes() for p in self.tables.rglob("*.parquet")}, before)
        self.assertEqual(all_files(self.tables), ["lmp/trading_date=2025-06-01/part-w.parquet"])
        self.assertEqual([p.name for p in (self.tables / "lmp").iterdir()], ["trading_date=2025-06-01"])

    def test_failure_of_first_file(self) -> None:
        """
        A report's first zip failing mid-parse (its second member is
        malformed) leaves no directory of the report behind.
        """
        good, bad = b"OPR_DT,NODE,MW\n2025-06-01,A,1\n", b"OPR_DT,NODE,MW\n2025-06-01,A,lots\n"
        bad_zip = zip_of(self.reports / "bad.zip", [("a.csv", good), ("b.csv", bad)])
        (self.tables / "other").mkdir(parents=True)
        with self.assertRaises(ParseError):
            write(bad_zip, self.tables, "lmp", "w")
        self.assertEqual([p.name for p in self.tables.iterdir()], ["other"])

    def test_error_zip(self) -> None:
        """
        An OASIS error zip is a L{ParseError} and writes nothing.
        """
        with self.assertRaises(ParseError):
            write(SAMPLES / "error_1000_no_data_repacked.zip", self.tables)
        self.assertEqual(all_files(self.data), [])

    def test_bad_label(self) -> None:
        """
        A label that would leave the day's directory is refused.
        """
        self.assertRaises(ValueError, part_name, "../x")
        self.assertRaises(ValueError, part_name, "")

    def test_hubs_values(self) -> None:
        """
        The values written are the source's.
        """
        written = write(HUBS_ZIP, self.tables)
        rows = {
            (r["node"], r["lmp_type"], r["interval_start_utc"]): r["mw"]
            for f in written.files
            for r in pq.read_table(f).to_pylist()
        }
        lines = HUBS_CSV.read_text().splitlines()[1:]
        self.assertEqual(len(rows), len(lines))
        for line in lines:
            fields = line.split(",")
            key = (fields[7], fields[9], datetime.datetime.fromisoformat(fields[0]))
            self.assertEqual(rows[key], float(fields[14]))


def replace_file(path: Path, content: bytes) -> None:
    """
    Put C{content} at C{path} as a download does: a new file renamed over
    the old one.
    """
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(content)
    os.replace(fresh, path)


class RevisedMidParseTests(SynchronousTestCase):
    """
    A parse whose zip a revision replaced meanwhile never overwrites the
    newer answer's files, whichever parse commits first.
    """

    def setUp(self) -> None:
        self.data = Path(self.mktemp())
        self.tables = self.data / "tables"
        self.zip = self.data / "reports" / "lmp" / "w.zip"
        scratch = self.data / "scratch"
        # The first answer has two days, its revision three.
        self.old = simulated(scratch / "old.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 2), seed=1)
        self.new = simulated(scratch / "new.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 3), seed=2)
        self.zip.parent.mkdir(parents=True)
        self.zip.write_bytes(self.old.read_bytes())

    def window(self) -> list[tuple[D, str]]:
        """
        @return: The trading day and recorded sha256 of each file of the
            window, after checking that no temporary or lock file is left.
        """
        self.assertEqual([p.name for p in self.tables.rglob(".*")], [], "a temporary or lock file is left")
        return [
            (
                D.fromisoformat(f.parent.name.split("=")[1]),
                pq.read_metadata(f).metadata[b"harbour.sha256"].decode(),
            )
            for f in sorted(self.tables.glob("lmp/*/part-w.parquet"))
        ]

    def test_newer_commits_first(self) -> None:
        """
        When the revision is downloaded and parsed while the first answer
        is still being parsed, the stale parse raises L{Superseded} and
        changes nothing: the revision's three days stay, with its rows.
        """
        real_read_zip = write_module.read_zip
        new_sha = file_sha256(self.new)

        def revised_meanwhile(path: Path) -> Iterator[Any]:
            self.patch(write_module, "read_zip", real_read_zip)
            yield from real_read_zip(path)
            replace_file(self.zip, self.new.read_bytes())
            write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256=new_sha)

        self.patch(write_module, "read_zip", revised_meanwhile)
        with self.assertRaises(Superseded):
            write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256=file_sha256(self.old))
        self.assertEqual(self.window(), [(D(2025, 6, d), new_sha) for d in (1, 2, 3)])
        count = duckdb.connect().execute(
            f"SELECT count(*) FROM read_parquet('{(self.tables / 'lmp' / '*' / '*.parquet').as_posix()}')"
        )
        self.assertEqual(count.fetchall(), [(3 * 3 * 24 * 4,)])

    def test_stale_commits_first(self) -> None:
        """
        When the first answer's parse commits before the revision replaces
        the zip, the revision's parse then replaces its files.
        """
        write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256=file_sha256(self.old))
        replace_file(self.zip, self.new.read_bytes())
        new_sha = file_sha256(self.new)
        write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256=new_sha)
        self.assertEqual(self.window(), [(D(2025, 6, d), new_sha) for d in (1, 2, 3)])

    def test_removed_mid_parse(self) -> None:
        """
        A zip removed while it is parsed is L{Superseded} too.
        """
        real_read_zip = write_module.read_zip

        def removed_meanwhile(path: Path) -> Iterator[Any]:
            yield from real_read_zip(path)
            self.zip.unlink()

        self.patch(write_module, "read_zip", removed_meanwhile)
        with self.assertRaises(Superseded):
            write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256="old")
        self.assertEqual(all_files(self.tables), [])

    def test_claim_ended(self) -> None:
        """
        A parse whose claim ended (asked under the window's lock, just
        before the commit) raises L{ClaimEnded} and changes nothing: the
        window's earlier files stay.
        """
        old_sha = file_sha256(self.old)
        write_window(self.zip, self.tables, "lmp", "w", url="https://u", sha256=old_sha)
        replace_file(self.zip, self.new.read_bytes())
        locked: list[bool] = []

        def ended() -> bool:
            # Another taker (the drop of a retirement) cannot have the lock.
            descriptor = os.open(self.tables / "lmp" / f".{part_name('w')}.lock", os.O_RDWR)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                locked.append(True)
            finally:
                os.close(descriptor)
            return False

        with self.assertRaises(ClaimEnded):
            write_window(
                self.zip,
                self.tables,
                "lmp",
                "w",
                url="https://u",
                sha256=file_sha256(self.new),
                still_held=ended,
            )
        self.assertEqual(locked, [True])
        self.assertEqual(self.window(), [(D(2025, 6, d), old_sha) for d in (1, 2)])

    def test_claim_held(self) -> None:
        """
        A parse whose claim still holds commits.
        """
        new_sha = file_sha256(self.new)
        replace_file(self.zip, self.new.read_bytes())
        write_window(
            self.zip, self.tables, "lmp", "w", url="https://u", sha256=new_sha, still_held=lambda: True
        )
        self.assertEqual(self.window(), [(D(2025, 6, d), new_sha) for d in (1, 2, 3)])


class WindowLockTests(SynchronousTestCase):
    """
    L{window_lock}, L{drop_window}, and the lock files' place among the
    dataset's files.
    """

    def setUp(self) -> None:
        self.data = Path(self.mktemp())
        self.tables = self.data / "tables"
        self.zips = self.data / "zips"

    def test_drop_window(self) -> None:
        """
        L{drop_window} removes every day file of one window, and the day
        directories it leaves empty; other windows' files stay.
        """
        write(
            simulated(self.zips / "a.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 2)),
            self.tables,
            "lmp",
            "a",
        )
        write(
            simulated(self.zips / "b.zip", "PRC_LMP", "DAM", D(2025, 6, 2), D(2025, 6, 2)),
            self.tables,
            "lmp",
            "b",
        )
        self.assertEqual(drop_window(self.tables, "lmp", "a"), 2)
        self.assertEqual(all_files(self.tables), ["lmp/trading_date=2025-06-02/part-b.parquet"])
        self.assertEqual([p.name for p in (self.tables / "lmp").iterdir()], ["trading_date=2025-06-02"])
        self.assertEqual(drop_window(self.tables, "lmp", "a"), 0)
        self.assertEqual(drop_window(self.tables, "nothing", "a"), 0)
        self.assertFalse((self.tables / "nothing").exists())

    def test_lock_files_ignored(self) -> None:
        """
        A lock file left by a killed process is not a report, a day or a
        table for the inventory and the views, and the janitor removes it
        once old, unless someone holds it.
        """
        write(
            simulated(self.zips / "a.zip", "SLD_FCST", "DAM", D(2025, 6, 1), D(2025, 6, 1)),
            self.tables,
            "load",
        )
        left = self.tables / "load" / ".part-gone.parquet.lock"
        left.touch()
        os.utime(left, (NOW, NOW))
        self.assertEqual(reports_in(self.tables), ["load"])
        tables = report_tables(self.tables, "load")
        self.assertEqual((tables.files, tables.days), (1, (D(2025, 6, 1),)))
        rebuild_views(self.tables, {"load": "SLD_FCST"})
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(5 * 24,)])
        remove_abandoned(self.tables, 3600, NOW + 60)
        self.assertTrue(left.exists(), "not yet old")
        now = NOW + 7200
        with window_lock(self.tables / "load", part_name("held")) as held:
            os.utime(held, (0, 0))
            remove_abandoned(self.tables, 3600, now)
            self.assertTrue(held.exists())
        self.assertFalse(left.exists())
        self.assertEqual(len(all_files(self.tables / "load")), 1)


class DayFilesTests(SynchronousTestCase):
    """
    L{DayFiles} and the janitor.
    """

    def test_touched_while_open(self) -> None:
        """
        A parse under way touches its temporary files, at most every
        L{TOUCH_EVERY} seconds, so that the janitor spares the file of a
        day not written to for longer than it waits.
        """
        # Each row written as it comes, not held back for a row group.
        self.patch(write_module, "GROUP_ROWS", 1)
        tables = Path(self.mktemp())
        now = [0.0]
        days = DayFiles(tables / "lmp", part_name("w"), {}, clock=lambda: now[0])
        self.addCleanup(days.abort)
        days.add(one_row(D(2025, 6, 1)))
        [temporary] = (tables / "lmp").glob("*/.part-w.parquet.*.tmp")
        os.utime(temporary, (0, 0))
        now[0] += TOUCH_EVERY / 2
        days.add(one_row(D(2025, 6, 2)))
        self.assertEqual(temporary.stat().st_mtime, 0)
        now[0] += TOUCH_EVERY / 2
        days.add(one_row(D(2025, 6, 2)))
        # Touched as the file system tells the time.
        touched = temporary.stat().st_mtime
        self.assertNotEqual(touched, 0)
        self.assertEqual(remove_abandoned(tables, 3600, touched + 60), 0)
        self.assertTrue(temporary.exists())

    def test_new_directories_synced(self) -> None:
        """
        Committing syncs each day directory a file went to, and the parent
        of each directory made for the window (the day's, the report's,
        the tables' own), so that a power cut loses no name of them.
        """
        tables = Path(self.mktemp())
        synced: list[Path] = []
        self.patch(write_module, "sync_path", synced.append)
        days = DayFiles(tables / "lmp", part_name("w"), {})
        days.add(one_row(D(2025, 6, 1)))
        days.commit()
        self.assertEqual(
            sorted(synced),
            [tables.parent, tables, tables / "lmp", tables / "lmp" / f"{PARTITION_PREFIX}2025-06-01"],
        )
        synced.clear()
        again = DayFiles(tables / "lmp", part_name("x"), {})
        again.add(one_row(D(2025, 6, 1)))
        again.commit()
        self.assertEqual(synced, [tables / "lmp" / f"{PARTITION_PREFIX}2025-06-01"])

    def node_ordered(self, nodes: int, days: int) -> pa.Table:
        """
        @return: Rows of C{nodes} nodes over C{days} days from 2025-06-01,
            ordered by node, then day: as an answer for a few nodes over a
            month comes.
        """
        node, day, mw = [], [], []
        for n in range(nodes):
            for d in range(days):
                node.append(f"N{n}")
                day.append(D(2025, 6, 1) + datetime.timedelta(days=d))
                mw.append(float(n * days + d))
        return pa.table({"node": node, "mw": mw, "trading_date": pa.array(day, pa.date32())})

    def written(self, tables: Path) -> dict[D, tuple[int, list[str]]]:
        """
        @return: Per day, the row groups of its file and its nodes in order.
        """
        found = {}
        for path in sorted((tables / "lmp").glob("*/part-w.parquet")):
            day = D.fromisoformat(path.parent.name.removeprefix(PARTITION_PREFIX))
            parquet = pq.ParquetFile(path)
            found[day] = (parquet.metadata.num_row_groups, parquet.read().column("node").to_pylist())
        return found

    def test_days_held_together(self) -> None:
        """
        The rows of batches that each span several days (ordered by node)
        are written a day at a time in row groups of about L{GROUP_ROWS},
        not a row group per batch and day, in the order they came.
        """
        self.patch(write_module, "GROUP_ROWS", 40)
        tables = Path(self.mktemp())
        days = DayFiles(tables / "lmp", part_name("w"), {})
        for batch in self.node_ordered(nodes=50, days=3).to_batches(max_chunksize=7):
            days.add(batch)
        days.commit()
        nodes = [f"N{n}" for n in range(50)]
        # 50 rows a day, held back in pieces of 2 or 3 rows: written at 40.
        self.assertEqual(self.written(tables), {D(2025, 6, d): (2, nodes) for d in (1, 2, 3)})

    def test_held_rows_bounded(self) -> None:
        """
        Past L{HELD_BYTES} held across days, the day holding most is
        written: a parse holds back a bounded number of rows.
        """
        self.patch(write_module, "GROUP_ROWS", 1_000)
        self.patch(write_module, "HELD_BYTES", 30 * 30)
        tables = Path(self.mktemp())
        days = DayFiles(tables / "lmp", part_name("w"), {})
        self.addCleanup(days.abort)
        for batch in self.node_ordered(nodes=20, days=3).to_batches(max_chunksize=6):
            days.add(batch)
            self.assertLess(days._held_bytes, 30 * 30)
        self.assertTrue(days.pending)

    def test_one_day_batches_held_together(self) -> None:
        """
        Batches of one day each (a CSV block's rows) are written together
        in row groups of about L{GROUP_ROWS}, not a row group per batch.
        """
        self.patch(write_module, "GROUP_ROWS", 40)
        tables = Path(self.mktemp())
        days = DayFiles(tables / "lmp", part_name("w"), {})
        for batch in self.node_ordered(nodes=100, days=1).to_batches(max_chunksize=7):
            days.add(batch)
        days.commit()
        nodes = [f"N{n}" for n in range(100)]
        # 100 rows in batches of 7: held back until 40 or more, twice, then
        # the rest at the commit.
        self.assertEqual(self.written(tables), {D(2025, 6, 1): (3, nodes)})

    def test_page_index(self) -> None:
        """
        Every column chunk has its page index, so that a query for a few
        nodes reads only their pages.
        """
        tables = Path(self.mktemp())
        days = DayFiles(tables / "lmp", part_name("w"), {})
        days.add(self.node_ordered(nodes=3, days=1).to_batches()[0])
        [path] = days.commit().files
        group = pq.ParquetFile(path).metadata.row_group(0)
        self.assertEqual(
            [
                (group.column(c).has_column_index, group.column(c).has_offset_index)
                for c in range(group.num_columns)
            ],
            [(True, True)] * group.num_columns,
        )

    def test_one_day_after_held(self) -> None:
        """
        A batch of one day whose earlier rows are held back is held after
        them, not written before them.
        """
        tables = Path(self.mktemp())
        days = DayFiles(tables / "lmp", part_name("w"), {})
        days.add(self.node_ordered(nodes=1, days=2).to_batches()[0])
        days.add(
            pa.RecordBatch.from_pydict(
                {"node": ["N9"], "mw": [9.0], "trading_date": pa.array([D(2025, 6, 1)], pa.date32())}
            )
        )
        days.commit()
        self.assertEqual(self.written(tables), {D(2025, 6, 1): (1, ["N0", "N9"]), D(2025, 6, 2): (1, ["N0"])})

    def abandoned(self, tables: Path, *days: datetime.date) -> list[Path]:
        """
        @return: The temporary files, by day, of a parse of C{days} into
            report C{lmp} of C{tables} that nothing has written to for two
            hours before L{NOW}.
        """
        self.patch(write_module, "GROUP_ROWS", 1)
        files = DayFiles(tables / "lmp", part_name("w"), {})
        self.addCleanup(files.abort)
        for day in days:
            files.add(one_row(day))
        temporaries = sorted((tables / "lmp").glob("*/.part-w.parquet.*.tmp"))
        for temporary in temporaries:
            os.utime(temporary, (NOW - 7200, NOW - 7200))
        return temporaries

    def test_abandoned_removed(self) -> None:
        """
        The janitor removes a temporary file not written to for longer than
        it waits.
        """
        tables = Path(self.mktemp())
        [temporary] = self.abandoned(tables, D(2025, 6, 1))
        self.assertEqual(remove_abandoned(tables, 3600, NOW), 1)
        self.assertFalse(temporary.exists())

    def test_day_removed_while_tidied(self) -> None:
        """
        A day directory that another parse removes while the janitor goes
        through a report (a window rewritten over fewer days) is passed
        over; the other days' abandoned files are still removed.
        """
        tables = Path(self.mktemp())
        temporaries = self.abandoned(tables, D(2025, 6, 1), D(2025, 6, 2))
        report_listing = write_module.listing

        def listing_then_removed(directory: Path, unreadable: bool = False) -> list[os.DirEntry[str]]:
            entries = report_listing(directory, unreadable)
            if directory == tables / "lmp" and temporaries[0].parent.exists():
                shutil.rmtree(temporaries[0].parent)
            return entries

        self.patch(write_module, "listing", listing_then_removed)
        self.assertEqual(remove_abandoned(tables, 3600, NOW), 1)
        self.assertFalse(temporaries[1].exists())

    def test_unreadable_directory_passed_by(self) -> None:
        """
        A directory the janitor may not read (a file system's
        C{lost+found} in the tables directory, a report of another user)
        is passed by; the other reports' abandoned files are still
        removed.
        """
        tables = Path(self.mktemp())
        [temporary] = self.abandoned(tables, D(2025, 6, 1))
        (tables / "lost+found").mkdir()
        scandir = os.scandir

        def refusing(path: Any) -> Any:
            if Path(path).name == "lost+found":
                raise PermissionError(13, "Permission denied", str(path))
            return scandir(path)

        self.patch(write_module.os, "scandir", refusing)
        self.assertEqual(remove_abandoned(tables, 3600, NOW), 1)
        self.assertFalse(temporary.exists())


class DeadParseTests(SynchronousTestCase):
    """
    The temporary day files of a parse whose process was killed go with
    the next write or drop of their window, or the janitor's next round,
    whatever their age; another host's stay until they are old.
    """

    def setUp(self) -> None:
        # A host name with dots, as most have, whatever this host's is.
        self.patch(processes.socket, "gethostname", lambda: "node1.example.com")
        self.data = Path(self.mktemp())
        self.tables = self.data / "tables"
        self.zip = simulated(self.data / "w.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 1))
        self.here = processes.process_mark().rsplit(".", 2)[0]
        self.dead = f"{self.here}.{dead_pid()}.1"

    def left(self, mark: str, day: str = "2025-06-01", window: str = "w") -> Path:
        """
        @return: A temporary day file of window C{window}, as a parse by the
            process of L{processes.process_mark} C{mark} leaves it when
            killed, last written to at L{NOW}.
        """
        directory = self.tables / "lmp" / f"{PARTITION_PREFIX}{day}"
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{part_name(window)}.{mark}.140000.1.tmp"
        temporary.write_bytes(b"PAR1 partial")
        os.utime(temporary, (NOW, NOW))
        return temporary

    def live(self, pid: int) -> str:
        """
        @return: The mark of live process C{pid} of this host.
        """
        return f"{self.here}.{pid}.{processes.process_started(pid)}"

    def test_names_own_writer(self) -> None:
        """
        A parse's temporary files carry its process's mark.
        """
        self.patch(write_module, "GROUP_ROWS", 1)
        days = DayFiles(self.tables / "lmp", part_name("w"), {})
        self.addCleanup(days.abort)
        days.add(one_row(D(2025, 6, 1)))
        [temporary] = (self.tables / "lmp").glob("*/.part-w.parquet.*.tmp")
        self.assertTrue(temporary.name.startswith(f".part-w.parquet.{processes.process_mark()}."))
        self.assertIn(".node1.example.com~", f".{processes.process_mark()}")

    def test_next_write_removes(self) -> None:
        """
        Writing a window removes what a dead parse of the same window left
        on this host in the days it covers, and what a process with this
        one's pid but started at another time left (a restart that got the
        same pid); another window's, a live process's, another pid
        namespace's and another host's temporary files stay, and so do
        those in days the window does not cover, for the janitor (which
        removes the day directory it leaves empty).
        """
        same_day = self.left(self.dead)
        other_day = self.left(self.dead, day="2025-06-03")
        restarted = self.left(f"{self.here}.{os.getpid()}.1")
        host, namespace = self.here.split("~")
        kept = [
            self.left(self.dead, window="v"),
            self.left(self.live(os.getppid())),
            self.left(self.live(os.getpid())),
            self.left(f"{host}~1.{dead_pid()}.1"),
            self.left(f"elsewhere.{host}~{namespace}.{dead_pid()}.1"),
            self.left(f"{host}.{dead_pid()}"),
        ]
        write(self.zip, self.tables, "lmp", "w")
        self.assertFalse(same_day.exists())
        self.assertFalse(restarted.exists())
        self.assertTrue(other_day.exists())
        self.assertEqual([path.exists() for path in kept], [True] * len(kept))
        self.assertIn("lmp/trading_date=2025-06-01/part-w.parquet", all_files(self.tables))
        remove_abandoned(self.tables, 3600, NOW)
        self.assertFalse(other_day.parent.exists())

    def test_drop_removes(self) -> None:
        """
        Dropping a window removes what a dead parse of it left on this host.
        """
        write(self.zip, self.tables, "lmp", "w")
        left = self.left(self.dead)
        self.assertEqual(drop_window(self.tables, "lmp", "w"), 1)
        self.assertFalse(left.exists())
        self.assertEqual(all_files(self.tables), [])

    def test_janitor_removes_young(self) -> None:
        """
        The janitor removes a dead parse's temporary file of this host at
        once (and the day directory it leaves empty), and keeps another
        host's and a stray name until they are old.
        """
        dead = self.left(self.dead, day="2025-06-02")
        elsewhere = self.left(f"elsewhere.{self.here}.{dead_pid()}.1", window="v")
        stray = self.left(f"{self.here}.{10**20}.1", window="u")
        self.assertEqual(remove_abandoned(self.tables, 3600, NOW), 1)
        self.assertFalse(dead.parent.exists())
        self.assertEqual([elsewhere.exists(), stray.exists()], [True, True])
        self.assertEqual(remove_abandoned(self.tables, 3600, NOW + 7200), 2)


class PublishedAheadTests(SynchronousTestCase):
    """
    The days of a report OASIS serves only current data of and publishes
    ahead, each its own window, fetched again every day until it is
    today (see L{harbour.oasis.requests.published_ahead}).
    """

    def test_pastDayKept(self) -> None:
        """
        A day's answer fetched again replaces that day's file alone: the
        file of a day already past, written from the answer fetched on it,
        stays as it was.
        """
        reports, tables = Path(self.mktemp()), Path(self.mktemp())
        reports.mkdir()
        day_15, day_16 = D(2026, 1, 15), D(2026, 1, 16)
        # On the 15th: the 15th, and the 16th ahead.
        write(
            simulated(reports / "a.zip", "PRC_LMP", "DAM", day_15, day_15, seed=1),
            tables,
            "usage",
            "2026-01-15",
        )
        write(
            simulated(reports / "b.zip", "PRC_LMP", "DAM", day_16, day_16, seed=1),
            tables,
            "usage",
            "2026-01-16",
        )
        kept = (tables / "usage" / f"{PARTITION_PREFIX}2026-01-15" / "part-2026-01-15.parquet").read_bytes()
        # On the 16th: the 16th again, OASIS's values of that day.
        again = simulated(reports / "c.zip", "PRC_LMP", "DAM", day_16, day_16, seed=2)
        write(again, tables, "usage", "2026-01-16")
        files = sorted(
            path.relative_to(tables / "usage").as_posix() for path in (tables / "usage").glob("*/*.parquet")
        )
        self.assertEqual(
            files,
            [
                f"{PARTITION_PREFIX}2026-01-15/part-2026-01-15.parquet",
                f"{PARTITION_PREFIX}2026-01-16/part-2026-01-16.parquet",
            ],
        )
        self.assertEqual(
            (tables / "usage" / f"{PARTITION_PREFIX}2026-01-15" / "part-2026-01-15.parquet").read_bytes(),
            kept,
        )
        latest = pq.read_metadata(
            tables / "usage" / f"{PARTITION_PREFIX}2026-01-16" / "part-2026-01-16.parquet"
        )
        self.assertEqual(latest.metadata[b"harbour.sha256"].decode(), file_sha256(again))
