"""
Tests of L{harbour.ctl.dataset}: C{harbourctl query} and C{harbourctl
tables}, through a parser of their own, over real files.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import fcntl
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import pyarrow.parquet as pq
from twisted.trial.unittest import SynchronousTestCase

from harbour.ctl import dataset
from harbour.ctl.codes import FAILED, OK, USAGE
from harbour.ctl.dataset import add_commands, run
from harbour.dataset import views
from harbour.dataset.inventory import check, file_sha256, report_tables, spans
from harbour.dataset.test.helpers import HUBS_ZIP, removed_when_scanned, simulated, write
from harbour.dataset.views import DATABASE, REPORTS_FILE, connect, rebuild_views
from harbour.dataset.write import write_window
from harbour.test.helpers import dead_pid

D = datetime.date


def parser() -> argparse.ArgumentParser:
    """
    @return: A parser with only the dataset's commands.
    """
    top = argparse.ArgumentParser(prog="harbourctl")
    add_commands(top.add_subparsers(dest="command", required=True))
    return top


class CommandTestCase(SynchronousTestCase):
    """
    A data directory with two reports mirrored and their views.
    """

    def setUp(self) -> None:
        self.data = Path(self.mktemp())
        self.tables = self.data / "tables"
        reports = self.data / "reports"
        lmp = reports / "lmp-dam" / "2020-01-02.zip"
        lmp.parent.mkdir(parents=True)
        lmp.write_bytes(HUBS_ZIP.read_bytes())
        write(lmp, self.tables, "lmp-dam", "2020-01-02")
        for first, last in [(D(2025, 6, 1), D(2025, 6, 2)), (D(2025, 6, 5), D(2025, 6, 5))]:
            path = simulated(reports / "load" / f"{first}.zip", "SLD_FCST", "DAM", first, last)
            write(path, self.tables, "load", str(first))
        rebuild_views(self.tables, {"lmp-dam": "PRC_LMP", "load": "SLD_FCST"})

    def command(self, *argv: str) -> tuple[int, str, str]:
        """
        @return: The exit code, output and errors of a command.
        """
        out, err = io.StringIO(), io.StringIO()
        args = parser().parse_args([argv[0], "--data-dir", str(self.data), *argv[1:]])
        return run(args, out, err), out.getvalue(), err.getvalue()


class QueryTests(CommandTestCase):
    """
    C{harbourctl query}.
    """

    SQL = "SELECT location, round(avg(lmp), 3) AS lmp FROM lmp_dam_wide GROUP BY 1 ORDER BY 1"

    def test_table(self) -> None:
        """
        By default, a table.
        """
        code, out, err = self.command("query", self.SQL)
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out.split()[:2], ["location", "lmp"])
        self.assertIn("TH_ZP26_GEN-APND", out)

    def test_table_bounded(self) -> None:
        """
        A table holds only the first L{dataset.TABLE_ROWS} rows, then a line
        saying that there are more and how to have them all; a result of
        no more rows than that prints whole, without the line.
        """
        last = dataset.TABLE_ROWS - 1
        code, out, err = self.command("query", f"SELECT range AS n FROM range({dataset.TABLE_ROWS + 5})")
        self.assertEqual((code, err), (OK, ""))
        lines = out.splitlines()
        self.assertEqual([line.strip() for line in lines[:2]], ["n", "0"])
        self.assertEqual(lines[dataset.TABLE_ROWS].strip(), str(last))
        self.assertEqual(
            lines[dataset.TABLE_ROWS + 1 :],
            [
                (
                    f"more rows not shown (only the first {dataset.TABLE_ROWS:,} are);"
                    " use --csv, --json or --parquet for all of them"
                )
            ],
        )
        code, out, err = self.command("query", f"SELECT range AS n FROM range({dataset.TABLE_ROWS})")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(len(out.splitlines()), dataset.TABLE_ROWS + 1)
        self.assertEqual(out.splitlines()[-1].strip(), str(last))

    def test_table_endless(self) -> None:
        """
        A table of a result too large to hold (here endless) fetches only
        the rows it prints, and one more, a few at a time: never the
        whole result.
        """
        result = EndlessResult()
        out = io.StringIO()
        args = parser().parse_args(["query", "SELECT 1"])
        dataset._print(cast(Any, result), args, out)
        self.assertLessEqual(result.fetched, dataset.TABLE_ROWS + 1)
        self.assertEqual(len(out.getvalue().splitlines()), dataset.TABLE_ROWS + 2)

    def test_csv(self) -> None:
        """
        C{--csv} prints a header and rows.
        """
        code, out, err = self.command("query", "--csv", self.SQL)
        self.assertEqual(code, OK)
        lines = out.splitlines()
        self.assertEqual(lines[0], "location,lmp")
        self.assertEqual(
            [line.split(",")[0] for line in lines[1:]],
            ["TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND"],
        )

    def test_json(self) -> None:
        """
        C{--json} prints one object per line, dates as ISO text.
        """
        code, out, err = self.command("query", "--json", "SELECT DISTINCT trading_date FROM load ORDER BY 1")
        self.assertEqual(code, OK)
        self.assertEqual(
            [json.loads(line) for line in out.splitlines()],
            [{"trading_date": "2025-06-01"}, {"trading_date": "2025-06-02"}, {"trading_date": "2025-06-05"}],
        )

    def test_json_not_finite(self) -> None:
        """
        C{--json} prints a float that is not finite (an OASIS C{nan}, an
        infinity), alone or in a list or a struct, as C{null}: JSON has
        no such numbers.
        """
        sql = (
            "SELECT 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y, '-inf'::FLOAT AS z, 1.5::DOUBLE AS w,"
            " [1.0::DOUBLE, 'nan'::DOUBLE] AS l, {'a': 'inf'::DOUBLE} AS s"
        )
        code, out, err = self.command("query", "--json", sql)
        self.assertEqual((code, err), (OK, ""))

        def refused(constant: str) -> None:
            raise ValueError(f"not JSON: {constant}")

        self.assertEqual(
            json.loads(out, parse_constant=refused),
            {"x": None, "y": None, "z": None, "w": 1.5, "l": [1.0, None], "s": {"a": None}},
        )

    def test_times(self) -> None:
        """
        Columns of times with a zone print in every form, in UTC whatever
        the machine's zone.
        """
        sql = "SELECT interval_start_utc, current_setting('TimeZone') AS zone FROM lmp_dam ORDER BY 1 LIMIT 1"
        code, out, err = self.command("query", "--csv", sql)
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out.splitlines(), ["interval_start_utc,zone", "2020-01-02 00:00:00+00:00,UTC"])
        code, out, err = self.command("query", "--json", sql)
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(json.loads(out), {"interval_start_utc": "2020-01-02T00:00:00+00:00", "zone": "UTC"})
        code, out, err = self.command("query", sql)
        self.assertEqual((code, err), (OK, ""))
        self.assertIn("2020-01-02 00:00:00+00:00", out)

    def test_parquet(self) -> None:
        """
        C{--parquet FILE} writes the result there.
        """
        target = Path(self.mktemp())
        code, out, err = self.command("query", "--parquet", str(target), self.SQL)
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(target).num_rows, 3)

    def test_sql_error(self) -> None:
        """
        An SQL error is a message and L{FAILED}, without a traceback.
        """
        code, out, err = self.command("query", "SELECT * FROM nowhere")
        self.assertEqual((code, out), (FAILED, ""))
        self.assertIn("nowhere", err)
        self.assertNotIn("Traceback", err)

    def test_no_statement(self) -> None:
        """
        SQL that is empty, blanks and semicolons, or only a comment is a
        usage error saying so, not a traceback.
        """
        for sql in ("", " ;\n", "-- nothing"):
            code, out, err = self.command("query", sql)
            self.assertEqual((code, out), (USAGE, ""))
            self.assertEqual(err, "harbourctl: no SQL statement to run\n")

    def test_views_file_untouched(self) -> None:
        """
        The views a query sees are its own, in memory: dropping one leaves
        the views file as it was.
        """
        code, out, err = self.command("query", "DROP VIEW load")
        self.assertEqual((code, err), (OK, ""))
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(360,)])

    def test_views_file_out_of_reach(self) -> None:
        """
        The query cannot reach the daemon's views file, nor the record of
        its reports: a statement attaching a database is not run, and
        reading the files beside the reports' is refused.
        """
        sql = f"ATTACH '{self.tables / DATABASE}' AS daemon; DROP VIEW daemon.load"
        code, out, err = self.command("query", sql)
        self.assertEqual(
            (code, out, err),
            (USAGE, "", "harbourctl: query only reads the dataset: it does not run ATTACH statements\n"),
        )
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(360,)])
        code, out, err = self.command("query", f"SELECT * FROM read_text('{self.tables / REPORTS_FILE}')")
        self.assertEqual((code, out), (FAILED, ""))
        self.assertIn("Permission Error", err)

    def test_no_file_written(self) -> None:
        """
        A statement that could write a file is not run, and a statement
        cannot read a file outside the reports' directories nor undo these
        limits.
        """
        elsewhere = Path(self.mktemp())
        for sql, kind in [
            (f"COPY (SELECT 1) TO '{elsewhere}'", "COPY"),
            (f"EXPORT DATABASE '{elsewhere}'", "EXPORT"),
            (f"PREPARE copying AS COPY (SELECT 1) TO '{elsewhere}'; EXECUTE copying", "PREPARE"),
            ("INSTALL spatial", "LOAD"),
        ]:
            said = f"harbourctl: query only reads the dataset: it does not run {kind} statements\n"
            self.assertEqual(self.command("query", sql), (USAGE, "", said), sql)
        self.assertFalse(elsewhere.exists())
        outside = Path(self.mktemp())
        outside.write_text("a\n1\n")
        code, out, err = self.command("query", f"SELECT * FROM read_csv('{outside}')")
        self.assertEqual((code, out), (FAILED, ""))
        code, out, err = self.command("query", "SET enable_external_access = true")
        self.assertEqual((code, out), (USAGE, ""))
        self.assertIn("query cannot change DuckDB's settings", err)

    def test_explain_analyze_refused(self) -> None:
        """
        C{EXPLAIN ANALYZE} runs the statement it explains: one explaining a
        statement that is not run is refused as that statement, however
        its options are written, and writes nothing; one explaining a
        statement that is run runs.
        """
        day = self.tables / "lmp-dam" / "trading_date=2020-01-02"
        files = sorted(day.iterdir())
        copy = f"COPY (SELECT 'X' AS node, 1e9 AS mw) TO '{day / 'part-injected.parquet'}' (FORMAT parquet)"
        said = "harbourctl: query only reads the dataset: it does not run COPY statements\n"
        for explain in (
            "EXPLAIN ANALYZE",
            "explain analyse",
            "EXPLAIN (ANALYZE)",
            "EXPLAIN (FORMAT json, ANALYZE true)",
            "EXPLAIN ANALYZE (FORMAT json)",
            "EXPLAIN /* a note */ ANALYZE",
            "SELECT 1; EXPLAIN ANALYZE",
        ):
            self.assertEqual(self.command("query", f"{explain} {copy}"), (USAGE, "", said), explain)
        self.assertEqual(sorted(day.iterdir()), files)
        for sql in ("EXPLAIN ANALYZE SELECT count(*) FROM load", "EXPLAIN (SELECT 1) UNION (SELECT 2)"):
            code, out, err = self.command("query", sql)
            self.assertEqual((code, err), (OK, ""), sql)

    def test_spill_directory(self) -> None:
        """
        What does not fit in memory spills to a directory of the query's
        own, removed after it, rather than to C{.tmp} in the working
        directory; it is the only directory the query may use.
        """
        sql = (
            "SELECT name, value FROM duckdb_settings()"
            " WHERE name IN ('temp_directory', 'allowed_directories')"
        )
        code, out, err = self.command("query", "--json", sql)
        self.assertEqual((code, err), (OK, ""))
        settings = {row["name"]: row["value"] for row in map(json.loads, out.splitlines())}
        spill = Path(settings["temp_directory"])
        self.assertTrue(spill.name.startswith(f"harbourctl-query-{os.getpid()}-"), spill)
        self.assertEqual(settings["allowed_directories"], f"[{spill}/]")
        self.assertFalse(spill.exists())

    def test_left_behind_removed(self) -> None:
        """
        A query removes the temporary directories of queries killed
        outright, with the links they hold: those whose in-use file no
        query holds locked (whatever process id their name has: another
        container sharing C{/tmp} may run it), and, without that file,
        those whose process is gone.  It leaves those in use, and those it
        cannot tell.
        """
        temporary = Path(self.mktemp())
        temporary.mkdir()
        self.patch(tempfile, "tempdir", str(temporary))
        gone = temporary / f"harbourctl-query-{dead_pid()}-x1y2"
        (gone / "tables").mkdir(parents=True)
        (gone / "tables" / "link.parquet").write_bytes(b"held")
        free = temporary / f"harbourctl-query-{os.getpid()}-f1r2"
        free.mkdir()
        (free / dataset.IN_USE).write_bytes(b"")
        in_use = temporary / f"harbourctl-query-{dead_pid()}-u1s2"
        in_use.mkdir()
        (in_use / dataset.IN_USE).write_bytes(b"")
        held = os.open(in_use / dataset.IN_USE, os.O_RDWR)
        self.addCleanup(os.close, held)
        fcntl.flock(held, fcntl.LOCK_EX)
        running = temporary / f"harbourctl-query-{os.getpid()}-a1b2"
        older = temporary / "harbourctl-query-8zq3_k1p"
        other = temporary / "harbourctl-queryish"
        for kept in (running, older, other):
            kept.mkdir()
        code, out, err = self.command("query", "SELECT 1 AS one")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(sorted(temporary.iterdir()), sorted([in_use, running, older, other]))

    def test_settings_refused(self) -> None:
        """
        A change of DuckDB's settings is refused as the caller's mistake
        (exit 2), saying what to do for a time zone; a variable of the
        query's own may be set.
        """
        code, out, err = self.command("query", "SET TimeZone = 'America/Los_Angeles'; SELECT 1")
        self.assertEqual((code, out), (USAGE, ""))
        self.assertTrue(err.startswith("harbourctl: query cannot change DuckDB's settings ("), err)
        self.assertTrue(
            err.endswith("; times print in UTC, and AT TIME ZONE shows them in another zone\n"), err
        )
        code, out, err = self.command("query", "--csv", "SET VARIABLE n = 2; SELECT getvariable('n') AS n")
        self.assertEqual((code, out, err), (OK, "n\n2\n", ""))

    def test_parquet_replaced_whole(self) -> None:
        """
        C{--parquet} replaces a file already there whole, leaving nothing
        beside it; a statement that fails leaves the file as it was.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        target = directory / "out.parquet"
        target.write_bytes(b"earlier")
        code, out, err = self.command("query", "--parquet", str(target), self.SQL)
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(target).num_rows, 3)
        target.write_bytes(b"earlier")
        code, out, err = self.command(
            "query", "--parquet", str(target), "SELECT CAST(location AS INTEGER) FROM lmp_dam"
        )
        self.assertEqual((code, out), (FAILED, ""))
        self.assertEqual(target.read_bytes(), b"earlier")
        self.assertEqual(list(directory.iterdir()), [target])

    def test_parquet_not_among_tables(self) -> None:
        """
        C{--parquet} refuses (L{USAGE}) to write in the tables directory,
        reached by its path or through a link, where the views would read
        the file as the dataset's own (a day's rows twice) or it would
        replace the views file; beside it, in the data directory, it
        writes.
        """
        day = self.tables / "lmp-dam" / "trading_date=2020-01-02"
        link = Path(self.mktemp())
        link.symlink_to(day.resolve(), target_is_directory=True)
        sql = "SELECT * FROM lmp_dam WHERE trading_date = '2020-01-02'"
        before = sorted(self.tables.rglob("*"))
        views_file = (self.tables / DATABASE).read_bytes()
        for target in (day / "part-out.parquet", link / "part-out.parquet", self.tables / DATABASE):
            code, out, err = self.command("query", "--parquet", str(target), sql)
            self.assertEqual((code, out), (USAGE, ""), target)
            self.assertIn(f"--parquet {target}: inside the dataset's tables directory", err)
        self.assertEqual(sorted(self.tables.rglob("*")), before)
        self.assertEqual((self.tables / DATABASE).read_bytes(), views_file)
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM lmp_dam")
        self.assertEqual(out, "n\n288\n")
        code, out, err = self.command("query", "--parquet", str(self.data / "out.parquet"), sql)
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(self.data / "out.parquet").num_rows, 192)

    def test_parquet_dot_dot_after_link(self) -> None:
        """
        C{--parquet} takes a C{..} after a link as the shell does, from
        where the link leads: the file is written there, or refused if
        that is among the tables.
        """
        elsewhere = Path(self.mktemp()).absolute()
        (elsewhere / "deep").mkdir(parents=True)
        sub = Path(self.mktemp())
        sub.mkdir()
        (sub / "out").symlink_to(elsewhere / "deep", target_is_directory=True)
        (sub / "lm").symlink_to((self.tables / "lmp-dam").absolute(), target_is_directory=True)
        sql = "SELECT * FROM lmp_dam WHERE trading_date = '2020-01-02'"
        code, out, err = self.command("query", "--parquet", str(sub / "out" / ".." / "x.parquet"), sql)
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(elsewhere / "x.parquet").num_rows, 192)
        self.assertEqual(sorted(path.name for path in sub.iterdir()), ["lm", "out"])
        before = sorted(self.tables.rglob("*"))
        target = sub / "lm" / ".." / "x.parquet"
        code, out, err = self.command("query", "--parquet", str(target), sql)
        self.assertEqual((code, out), (USAGE, ""))
        self.assertIn(f"--parquet {target}: inside the dataset's tables directory", err)
        self.assertEqual(sorted(self.tables.rglob("*")), before)
        self.assertEqual(sorted(path.name for path in sub.iterdir()), ["lm", "out"])

    def test_parquet_directory_not_found(self) -> None:
        """
        A C{--parquet} file whose directory is a loop of links, or missing,
        is one line, before the query runs; a data directory that is a
        loop has no tables.
        """
        loop = Path(self.mktemp())
        loop.symlink_to(loop.name)
        for directory, why in [
            (loop, "Too many levels of symbolic links"),
            (loop / "..", "Too many levels of symbolic links"),
            (Path(self.mktemp()), "No such file or directory"),
        ]:
            target = directory / "x.parquet"
            code, out, err = self.command("query", "--parquet", str(target), self.SQL)
            self.assertEqual((code, out, err), (FAILED, "", f"harbourctl: --parquet {target}: {why}\n"))
        self.data = loop
        code, out, err = self.command("query", "--parquet", str(Path(self.mktemp())), self.SQL)
        self.assertEqual((code, out), (FAILED, ""))
        self.assertTrue(err.startswith(f"harbourctl: {loop / 'tables'}: no tables yet"), err)

    def test_no_tables(self) -> None:
        """
        Without any table yet, a message says the daemon writes them.
        """
        self.data = Path(self.mktemp())
        code, out, err = self.command("query", self.SQL)
        self.assertEqual((code, out), (FAILED, ""))
        self.assertIn("no tables yet (the daemon writes them", err)

    def test_without_views_file(self) -> None:
        """
        Without the views file, or the record of the reports it was built
        with, the reports' own views still answer; only the wide views,
        which need the report's query name, are missing when the request
        its files answer does not name it (as these made-up URLs do not).
        """
        (self.tables / DATABASE).unlink()
        (self.tables / REPORTS_FILE).unlink()
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM lmp_dam")
        self.assertEqual((code, out, err), (OK, "n\n288\n", ""))
        code, out, err = self.command("query", self.SQL)
        self.assertEqual(code, FAILED)
        self.assertIn("lmp_dam_wide", err)

    def test_worker_tables(self) -> None:
        """
        A worker's own tables have neither the views file nor its record of
        the reports: a report whose newest file answers a request for an
        LMP report, by queryname or by groupid, still gets its wide view.
        """
        (self.tables / DATABASE).unlink()
        (self.tables / REPORTS_FILE).unlink()
        answer = self.data / "reports" / "lmp-dam" / "2020-01-02.zip"
        for report, query in [("single", "queryname=PRC_LMP"), ("grouped", "groupid=DAM_LMP_GRP")]:
            url = f"https://oasis.example/oasisapi/SingleZip?{query}&market_run_id=DAM&version=12"
            write_window(answer, self.tables, report, "2020-01-02", url=url, sha256=file_sha256(answer))
            code, out, err = self.command("query", "--csv", f"SELECT count(*) AS n FROM {report}_wide")
            self.assertEqual((code, out, err), (OK, "n\n72\n", ""), report)

    def no_links(self) -> None:
        """
        Have every hard link of a file fail as it does across file systems,
        so that the query reads the files in place.
        """

        def link(source: Any, target: Any) -> None:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(source))

        self.patch(views.os, "link", link)

    def revised(self, path: Path, rows: int) -> None:
        """
        Replace C{path} by a rename, as a revision's commit does, with a
        file of its first C{rows} rows.
        """
        temporary = path.with_name(f".{path.name}.tmp")
        pq.write_table(pq.read_table(path).slice(0, rows), temporary)
        temporary.replace(path)

    def test_file_replaced_meanwhile(self) -> None:
        """
        A query whose views listed a file that a revision's commit replaces
        before DuckDB reads it reads the file as it was listed, through a
        hard link of its own, removed with the query's directory: a rename
        cannot change what it reads, nor have DuckDB read the footer of one
        file and the pages of the other.
        """
        open_views = dataset.open_views
        day = self.tables / "load" / "trading_date=2025-06-05"
        [path] = day.iterdir()
        snapshots: list[Path | None] = []

        def listed_then_replaced(tables_dir: Path, wanted: Any = None, **kwargs: Any) -> Any:
            connection, made = open_views(tables_dir, wanted, **kwargs)
            snapshots.append(kwargs.get("snapshot"))
            self.revised(path, 10)
            return connection, made

        self.patch(dataset, "open_views", listed_then_replaced)
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM load")
        self.assertEqual((code, out, err, len(snapshots)), (OK, "n\n360\n", "", 1))
        assert snapshots[0] is not None
        self.assertFalse(snapshots[0].exists())
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM load")
        self.assertEqual((code, out, err), (OK, "n\n250\n", ""))

    def test_file_replaced_meanwhile_in_place(self) -> None:
        """
        Where no hard link can be made, a query that fails once a file it
        listed was replaced (DuckDB reading the new file by the old one's
        footer) is run again over the files as they are then.
        """
        self.no_links()
        open_views = dataset.open_views
        [path] = (self.tables / "load" / "trading_date=2025-06-05").iterdir()
        revision = path.with_name(f".{path.name}.revision")
        shutil.copyfile(path, revision)
        self.revised(revision, 10)
        runs: list[None] = []

        def listed_then_replaced(tables_dir: Path, wanted: Any = None, **kwargs: Any) -> Any:
            if runs:
                revision.replace(path)
            connection, made = open_views(tables_dir, wanted, **kwargs)
            if not runs:
                # Bytes DuckDB cannot read, by the listed file's name.
                broken = path.with_name(f".{path.name}.tmp")
                broken.write_bytes(b"PAR1 not whole")
                broken.replace(path)
            runs.append(None)
            return connection, made

        self.patch(dataset, "open_views", listed_then_replaced)
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM load")
        self.assertEqual((code, out, err, len(runs)), (OK, "n\n250\n", "", 2))

    def day_removed_once_listed(self, day: str) -> list[Path]:
        """
        Have the file of C{day} of the C{load} report removed the first
        time the query lists the files of its views, as a revision's commit
        removes a day the moment after, where no hard link of it can be
        made (L{no_links}).

        @return: The files removed (one, once it has been).
        """
        self.no_links()
        open_views = dataset.open_views
        removed: list[Path] = []

        def listed_then_removed(tables_dir: Path, wanted: Any = None, **kwargs: Any) -> Any:
            connection, made = open_views(tables_dir, wanted, **kwargs)
            if not removed:
                [path] = [p for p in made.files if f"trading_date={day}" in str(p)]
                path.unlink()
                removed.append(path)
            return connection, made

        self.patch(dataset, "open_views", listed_then_removed)
        return removed

    def test_day_removed_meanwhile(self) -> None:
        """
        A query whose views listed a file that is removed before it is
        read (a revision's commit) is run again over the files as they are
        then, and answers without an error.
        """
        removed = self.day_removed_once_listed("2025-06-05")
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM load")
        self.assertEqual(len(removed), 1)
        self.assertEqual((code, out, err), (OK, "n\n240\n", ""))

    def test_day_removed_meanwhile_parquet(self) -> None:
        """
        So is a query writing Parquet: the file is written once, whole.
        """
        self.day_removed_once_listed("2025-06-05")
        target = self.data / "out.parquet"
        code, out, err = self.command("query", "--parquet", str(target), "SELECT * FROM load")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(pq.read_metadata(target).num_rows, 240)

    def test_removed_every_run(self) -> None:
        """
        A query whose files are removed under it every time is run at most
        L{dataset.RUNS} times, then fails, saying why.
        """
        self.no_links()
        open_views = dataset.open_views
        runs: list[None] = []

        def listed_then_removed(tables_dir: Path, wanted: Any = None, **kwargs: Any) -> Any:
            connection, made = open_views(tables_dir, wanted, **kwargs)
            runs.append(None)
            min(path for path in made.files if "load" in path.parts).unlink()
            return connection, made

        self.patch(dataset, "open_views", listed_then_removed)
        code, out, err = self.command("query", "SELECT count(*) FROM load")
        self.assertEqual((code, out, len(runs)), (FAILED, "", dataset.RUNS))
        self.assertIn("was removed or replaced as the query read it", err)

    def test_copied_data_dir(self) -> None:
        """
        A query of a copy of the data directory reads the copy's files, not
        the original's, wide views included.
        """
        original = self.data
        self.data = Path(self.mktemp())
        shutil.copytree(original, self.data)
        day = D(2025, 6, 6)
        path = simulated(self.data / "reports" / "load" / f"{day}.zip", "SLD_FCST", "DAM", day, day)
        write(path, self.data / "tables", "load", str(day))
        shutil.rmtree(self.tables / "lmp-dam")
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM load")
        self.assertEqual((code, out, err), (OK, "n\n480\n", ""))
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM lmp_dam_wide")
        self.assertEqual((code, out, err), (OK, "n\n72\n", ""))

    def test_clash_warned(self) -> None:
        """
        A report left without a view for its name is named on the error
        stream; the query runs over the others.
        """
        write(self.data / "reports" / "lmp-dam" / "2020-01-02.zip", self.tables, "lmp.dam", "2020-01-02")
        code, out, err = self.command("query", "--csv", "SELECT count(*) AS n FROM lmp_dam")
        self.assertEqual((code, out), (OK, "n\n288\n"))
        self.assertEqual(
            err, "harbourctl: warning: report 'lmp.dam' has no view: lmp_dam is a view of report 'lmp-dam'\n"
        )

    def test_parquet_semicolon(self) -> None:
        """
        C{--parquet} takes SQL ending in C{;}, as a terminal user types it.
        """
        target = Path(self.mktemp())
        code, out, err = self.command("query", "--parquet", str(target), self.SQL + " ;\n")
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(target).num_rows, 3)

    def test_parquet_comment(self) -> None:
        """
        C{--parquet} takes SQL ending in a comment.
        """
        target = Path(self.mktemp())
        code, out, err = self.command("query", "--parquet", str(target), self.SQL + " -- by location")
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(target).num_rows, 3)

    def test_parquet_semicolon_comment(self) -> None:
        """
        C{--parquet} takes SQL ending in C{;} followed by comments, and
        keeps what only looks like one inside a string.
        """
        target = Path(self.mktemp())
        sql = "SELECT '-- kept;' AS note; -- a note\n/* and another */ ;\n"
        code, out, err = self.command("query", "--parquet", str(target), sql)
        self.assertEqual((code, out, err), (OK, "", ""))
        self.assertEqual(pq.read_table(target).to_pylist(), [{"note": "-- kept;"}])

    def test_parquet_not_pasted(self) -> None:
        """
        C{--parquet} writes the rows of the SQL as it runs, not pasted into
        a C{COPY}: SQL closing the parenthesis it would have been pasted in
        to copy over a table's file is an SQL error, and writes nothing.
        """
        victim = (self.tables / "lmp-dam" / "trading_date=2020-01-02" / "part-2020-01-02.parquet").resolve()
        before = victim.read_bytes()
        target = Path(self.mktemp())
        sql = (
            f"SELECT 'X' AS node, 1e9 AS mw) TO '{victim}' (FORMAT parquet, USE_TMP_FILE false);"
            " COPY (SELECT 1 AS x"
        )
        code, out, err = self.command("query", "--parquet", str(target), sql)
        self.assertEqual((code, out), (FAILED, ""))
        self.assertIn("Parser Error", err)
        self.assertEqual(victim.read_bytes(), before)
        self.assertFalse(target.exists())

    def test_parquet_rows(self) -> None:
        """
        C{--parquet} writes the rows of the SQL's last statement, in their
        types; a type Parquet files cannot hold as pyarrow writes them (an
        C{INTERVAL}) is an error saying so, and writes nothing.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        target = directory / "out.parquet"
        sql = (
            "SET VARIABLE n = 2; SELECT getvariable('n') AS n, trading_date, min(interval_start_utc) AS first"
            " FROM load GROUP BY trading_date ORDER BY trading_date LIMIT 1"
        )
        code, out, err = self.command("query", "--parquet", str(target), sql)
        self.assertEqual((code, out, err), (OK, "", ""))
        first = datetime.datetime(2025, 6, 1, 7, tzinfo=datetime.UTC)
        self.assertEqual(
            pq.read_table(target).to_pylist(), [{"n": 2, "trading_date": D(2025, 6, 1), "first": first}]
        )
        target.unlink()
        code, out, err = self.command(
            "query",
            "--parquet",
            str(target),
            "SELECT interval_end_utc - interval_start_utc AS span FROM load",
        )
        self.assertEqual((code, out), (FAILED, ""))
        self.assertIn("month_day_nano_interval", err)
        self.assertEqual(list(directory.iterdir()), [])

    def test_reader_gone(self) -> None:
        """
        A reader that goes away (C{| head -1}) ends the query quietly, for
        every form of output.
        """
        for form in ([], ["--csv"], ["--json"]):
            out, err = BrokenPipe(), io.StringIO()
            args = parser().parse_args(["query", "--data-dir", str(self.data), *form, self.SQL])
            self.assertEqual((run(args, out, err), err.getvalue()), (FAILED, ""), form)

    def test_reader_gone_descriptor(self) -> None:
        """
        When the reader of a real pipe goes away, the output's descriptor
        then points at C{/dev/null}, so that the output still buffered is
        dropped at exit rather than failing again.
        """
        reading, writing = os.pipe()
        os.close(reading)
        out = os.fdopen(writing, "w")
        self.addCleanup(out.close)
        err = io.StringIO()
        args = parser().parse_args(["query", "--data-dir", str(self.data), "--csv", self.SQL])
        self.assertEqual((run(args, out, err), err.getvalue()), (FAILED, ""))
        self.assertEqual(os.fstat(writing).st_rdev, os.stat(os.devnull).st_rdev)
        out.write("dropped")
        out.flush()


class EndlessResult:
    """
    A query's result, as DuckDB gives it, of rows without end.
    """

    description = [("n", "BIGINT")]

    def __init__(self) -> None:
        self.fetched = 0

    def fetchmany(self, size: int = 1) -> list[tuple[int]]:
        """
        @return: The next C{size} rows.
        """
        rows = [(self.fetched + n,) for n in range(size)]
        self.fetched += size
        return rows

    def fetchall(self) -> list[tuple[int]]:
        """
        @raise MemoryError: Always: the rows are without end.
        """
        raise MemoryError("every row of an endless result")


class BrokenPipe(io.StringIO):
    """
    An output whose reader went away.
    """

    def write(self, text: str) -> int:
        """
        @raise BrokenPipeError: Always.
        """
        raise BrokenPipeError(32, "Broken pipe")


class TablesTests(CommandTestCase):
    """
    C{harbourctl tables} and the inventory it prints.
    """

    def test_inventory(self) -> None:
        """
        Per report: rows, files, first and last day, and the gaps.
        """
        load = report_tables(self.tables, "load")
        self.assertEqual((load.rows, load.files), (3 * 5 * 24, 3))
        self.assertEqual((load.first, load.last), (D(2025, 6, 1), D(2025, 6, 5)))
        self.assertEqual(load.missing, (D(2025, 6, 3), D(2025, 6, 4)))
        self.assertEqual(spans(load.missing), [(D(2025, 6, 3), D(2025, 6, 4))])

    def test_table(self) -> None:
        """
        The command prints a row per report.
        """
        code, out, err = self.command("tables")
        self.assertEqual(code, OK)
        lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
        self.assertEqual(lines["lmp-dam"][:6], ["lmp-dam", "288", "2", "2020-01-01", "2020-01-02", "none"])
        self.assertEqual(
            lines["load"][:7],
            ["load", "360", "3", "2025-06-01", "2025-06-05", "2:", "2025-06-03..2025-06-04"],
        )

    def test_damaged_file(self) -> None:
        """
        A file whose footer cannot be read is named, counted in no figure,
        and fails the command; the other files are listed as ever, and
        C{--check} names it with the files that do not match.
        """
        damaged = self.tables / "load" / "trading_date=2025-06-05" / "part-2025-06-05.parquet"
        damaged.write_bytes(damaged.read_bytes()[:50])
        load = report_tables(self.tables, "load")
        self.assertEqual((load.rows, load.files, load.last), (2 * 5 * 24, 2, D(2025, 6, 2)))
        [unreadable] = load.unreadable
        self.assertEqual(unreadable.file, damaged)
        code, out, err = self.command("tables")
        self.assertEqual(code, FAILED)
        self.assertIn("lmp-dam", out)
        self.assertTrue(err.startswith(f"harbourctl: {damaged}: unreadable ("), err)
        code, out, err = self.command("tables", "--check")
        self.assertEqual((code, err), (FAILED, ""))
        self.assertIn(f"{damaged}: unreadable (", out)

    def test_day_removed_while_listed(self) -> None:
        """
        A day's directory removed while the files are listed (its window
        rewritten over fewer days) has no file: the tables are counted
        without it, and the command does not fail.
        """
        removed_when_scanned(self, self.tables / "load" / "trading_date=2025-06-05")
        load = report_tables(self.tables, "load")
        self.assertEqual((load.rows, load.files, load.last), (2 * 5 * 24, 2, D(2025, 6, 2)))
        code, out, err = self.command("tables")
        self.assertEqual((code, err), (OK, ""))
        self.assertIn("lmp-dam", out)

    def test_unreadable_directory(self) -> None:
        """
        A directory that cannot be listed (a disk failing) is an error in
        a line, naming it, not a traceback.
        """
        scandir, failing = os.scandir, self.tables / "load"

        def scanning(path: Any = ".") -> Any:
            if not isinstance(path, int) and Path(os.fsdecode(path)) == failing:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(failing))
            return scandir(path)

        self.patch(os, "scandir", scanning)
        said = f"harbourctl: [Errno {errno.EIO}] {os.strerror(errno.EIO)}: '{failing}'\n"
        self.assertEqual(self.command("tables"), (FAILED, "", said))

    def test_configured_range(self) -> None:
        """
        With C{--config-dir}, the missing days are those of each report's
        configured range, and a configured report without files is listed.
        """
        config = Path(self.mktemp())
        config.mkdir()
        (config / "manifest.toml").write_text('[manifest]\nstart = "2025-05-30"\nend = "2025-06-05"\n')
        (config / "reports.toml").write_text(
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n\n'
            '[[reports]]\nname = "other"\nqueryname = "SLD_FCST"\nmarket_run_id = "ACTUAL"\n'
        )
        code, out, err = self.command("tables", "--config-dir", str(config), "--today", "2025-06-10")
        self.assertEqual(code, OK, err)
        lines = {line.split()[0]: line for line in out.splitlines()[1:]}
        self.assertIn("4: 2025-05-30..2025-05-31, 2025-06-03..2025-06-04", lines["load"])
        self.assertIn("7: 2025-05-30..2025-06-05", lines["other"])

    def test_reader_gone(self) -> None:
        """
        A reader that goes away (C{| head -1}) ends the command quietly.
        """
        err = io.StringIO()
        args = parser().parse_args(["tables", "--data-dir", str(self.data)])
        self.assertEqual((run(args, BrokenPipe(), err), err.getvalue()), (FAILED, ""))

    def test_check(self) -> None:
        """
        C{--check} passes while every zip is as recorded.
        """
        code, out, err = self.command("tables", "--check")
        self.assertEqual(code, OK)
        self.assertIn("every file matches its zip", out)

    def test_no_directory(self) -> None:
        """
        A data directory without a tables directory (a mistyped
        C{--data-dir}) is an error naming the path, with or without
        C{--check}, not an empty dataset.
        """
        self.data = Path(self.mktemp())
        tables = self.data / "tables"
        said = f"harbourctl: {tables}: no such directory (the daemon makes it with its first table)\n"
        for options in ([], ["--check"]):
            self.assertEqual(self.command("tables", *options), (FAILED, "", said), options)

    def test_check_nothing(self) -> None:
        """
        An empty tables directory lists no report, but C{--check} of it
        fails, saying there is no file to check: an empty directory is what
        a file system that failed to mount often leaves.
        """
        shutil.rmtree(self.tables)
        self.tables.mkdir()
        code, out, err = self.command("tables")
        self.assertEqual(
            (code, out.split(), err),
            (OK, ["report", "rows", "files", "first", "last", "missing", "days"], ""),
        )
        code, out, err = self.command("tables", "--check")
        self.assertEqual((code, err), (FAILED, f"harbourctl: {self.tables}: no Parquet file to check\n"))
        self.assertNotIn("every file matches", out)

    #: The file of C{load} that L{damaged_page} damages.
    DAMAGED = Path("load", "trading_date=2025-06-05", "part-2025-06-05.parquet")

    def damaged_page(self, flipped: int, mask: int) -> Path:
        """
        Damage the page of the C{mw} column of L{DAMAGED}: C{flipped} bytes
        from its middle are XORed with C{mask}.

        @return: The damaged file, whose footer still reads.
        """
        damaged = self.tables / self.DAMAGED
        metadata = pq.read_metadata(damaged)
        [mw] = [i for i in range(metadata.num_columns) if metadata.schema.column(i).name == "mw"]
        chunk = metadata.row_group(0).column(mw)
        middle = chunk.data_page_offset + chunk.total_compressed_size // 2
        data = bytearray(damaged.read_bytes())
        for offset in range(middle, middle + flipped):
            data[offset] ^= mask
        damaged.write_bytes(data)
        self.assertEqual(pq.read_metadata(damaged).num_rows, 5 * 24)
        return damaged

    def test_check_damaged_page(self) -> None:
        """
        C{--check} reads every file through: one whose footer reads but a
        page of which cannot be decoded is named as unreadable, and fails
        the check, counted apart from those whose zips changed.
        """
        damaged = self.damaged_page(40, 0xFF)
        code, out, err = self.command("tables", "--check")
        self.assertEqual((code, err), (FAILED, ""))
        self.assertIn(f"{damaged}: unreadable (", out)
        self.assertIn("1 file(s) fail the check: 1 cannot be read whole\n", out)
        (self.data / "reports" / "lmp-dam" / "2020-01-02.zip").unlink()
        code, out, err = self.command("tables", "--check")
        self.assertIn("3 file(s) fail the check: 1 cannot be read whole and 2 do not match their zip\n", out)

    def test_check_page_skipped(self) -> None:
        """
        A page whose header is damaged into a kind of page pyarrow does
        not know is skipped without a word, its checksum unread, and the
        row group decodes to no row: C{--check} counts the rows each row
        group decodes, and names the file as one that cannot be read whole.
        """
        damaged = self.tables / self.DAMAGED
        metadata = pq.read_metadata(damaged)
        [mw] = [i for i in range(metadata.num_columns) if metadata.schema.column(i).name == "mw"]
        data = bytearray(damaged.read_bytes())
        # The header's first field, the page's kind: a data page's 0 becomes
        # a kind no Parquet version has.
        kind = metadata.row_group(0).column(mw).data_page_offset + 1
        self.assertEqual(data[kind], 0)
        data[kind] ^= 0x55
        damaged.write_bytes(data)
        # Read without counting, the file gives no row and no error.
        self.assertEqual(sum(batch.num_rows for batch in pq.ParquetFile(damaged).iter_batches()), 0)
        code, out, err = self.command("tables", "--check")
        self.assertEqual((code, err), (FAILED, ""))
        self.assertIn(f"{damaged}: unreadable (row group 0 decodes to 0 rows, not the 120 it records)\n", out)
        self.assertIn("1 file(s) fail the check: 1 cannot be read whole\n", out)

    def test_check_page_checksum(self) -> None:
        """
        A page damaged so slightly that it still decodes, into other values,
        fails its checksum, which the files are written with and
        C{--check} verifies.
        """
        original = pq.read_table(self.tables / self.DAMAGED)
        damaged = self.damaged_page(1, 0x01)
        # Read without verifying, the damage goes unseen but for the values.
        changed = pq.read_table(damaged)
        self.assertEqual(changed.num_rows, original.num_rows)
        self.assertNotEqual(changed.column("mw"), original.column("mw"))
        code, out, err = self.command("tables", "--check")
        self.assertEqual((code, err), (FAILED, ""))
        self.assertIn(f"{damaged}: unreadable (", out)
        self.assertIn("CRC", out)

    def test_check_mismatch(self) -> None:
        """
        C{--check} names each file whose zip changed or went, and fails.
        """
        (self.data / "reports" / "load" / "2025-06-05.zip").write_bytes(b"changed")
        (self.data / "reports" / "lmp-dam" / "2020-01-02.zip").unlink()
        code, out, err = self.command("tables", "--check")
        self.assertEqual(code, FAILED)
        self.assertIn(
            "load/trading_date=2025-06-05/part-2025-06-05.parquet: "
            "its zip reports/load/2025-06-05.zip has sha256",
            out,
        )
        self.assertIn(
            "trading_date=2020-01-01/part-2020-01-02.parquet: "
            "its zip reports/lmp-dam/2020-01-02.zip is missing",
            out,
        )
        self.assertIn("3 file(s) fail the check: 3 do not match their zip\n", out)
        self.assertEqual(len(check(self.tables)), 3)
