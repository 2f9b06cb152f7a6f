"""
Tests of L{harbour.dataset.write}: one file per trading day, replaced
whole by a revision, nothing left behind by a failure.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from twisted.trial.unittest import SynchronousTestCase

import harbour
from harbour.dataset.inventory import file_sha256
from harbour.dataset.parse import ParseError
from harbour.dataset.test.helpers import FALLBACK_CSV, HUBS_CSV, HUBS_ZIP, SAMPLES, simulated, write, zip_of
from harbour.dataset.write import WrittenWindow, part_name, write_window

D = datetime.date


def all_files(directory: Path) -> list[str]:
    """
    @return: Every file under C{directory}, relative to it.
    """
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


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
        rows of that day, and the file's record of its source.
        """
        zip_path = self.reports / "2020-01-02.zip"
        zip_path.parent.mkdir(parents=True)
        zip_path.write_bytes(HUBS_ZIP.read_bytes())
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
        self.assertEqual(metadata[b"harbour.version"], harbour.__version__.encode())

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
        self.assertEqual(written, WrittenWindow(3 * 24 * 5, written.files, (day,)))
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

    def test_failure_leaves_nothing(self) -> None:
        """
        A zip that cannot be parsed changes nothing: the window's earlier
        files stay, no temporary file or new directory is left.
        """
        good = simulated(self.reports / "good.zip", "PRC_LMP", "DAM", D(2025, 6, 1), D(2025, 6, 1))
        write(good, self.tables, "lmp", "w")
        before = {p: p.read_bytes() for p in self.tables.rglob("*.parquet")}
        # The first rows are fine (and fall on other days): only the end is bad.
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
