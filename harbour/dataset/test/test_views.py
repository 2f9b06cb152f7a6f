"""
Tests of L{harbour.dataset.views}: the views file over real Parquet files.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import duckdb
from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset import views
from harbour.dataset.inventory import file_sha256
from harbour.dataset.naming import is_lmp, view_name
from harbour.dataset.test.helpers import HUBS_ZIP, removed_when_scanned, simulated, write, zip_of
from harbour.dataset.views import (
    ATTEMPTS,
    DATABASE,
    REPORTS_FILE,
    Clash,
    RebuiltViews,
    Unreadable,
    confine,
    connect,
    open_views,
    rebuild_views,
    recorded_reports,
    views_named,
)
from harbour.dataset.write import write_window
from harbour.test.helpers import dead_pid

D = datetime.date
UTC = datetime.UTC


class ViewTests(SynchronousTestCase):
    """
    L{rebuild_views} and L{connect}.
    """

    def setUp(self) -> None:
        self.tables = Path(self.mktemp()) / "tables"
        self.zips = Path(self.mktemp())

    def racing(self, report: str, times: int) -> list[str]:
        """
        Have the first C{times} views of C{report} made go on reading one of
        its files, listed before, that its window's rewrite removes as
        DuckDB reads footers.

        @return: The reports whose views were made, one per try.
        """
        made: list[str] = []
        original = views.source

        def source(tables_dir: Path, name: str) -> str:
            made.append(name)
            if name != report or made.count(name) > times:
                return original(tables_dir, name)
            gone = min((tables_dir / name).glob("*/*.parquet"))
            gone.unlink()
            pattern = (tables_dir.resolve() / name / "*" / "*.parquet").as_posix()
            return (
                f"read_parquet(['{pattern}', '{gone.resolve().as_posix()}'],"
                " hive_partitioning = true, union_by_name = true)"
            )

        self.patch(views, "source", source)
        return made

    def test_names(self) -> None:
        """
        A view is named after its report, C{-} and C{.} as C{_}.
        """
        self.assertEqual(view_name("lmp-dam.v2"), "lmp_dam_v2")

    def test_current_only_once(self) -> None:
        """
        A report OASIS serves only the current interval of shows each row
        once, however many windows fetched it (windows fetched once over,
        at start or after an outage, all hold the interval current then),
        in the views file and in views made afresh; a report with history shows every row its files hold.
        """
        header = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,NODE,MARKET_RUN_ID,LMP_TYPE,MW\n"
        rows = "".join(
            f"2026-11-24T21:55:00-00:00,2026-11-24T22:00:00-00:00,TH_NP15_GEN-APND,RTM,{kind},{price}\n"
            for kind, price in [("LMP", 41.5), ("MCE", 40.0), ("MCC", 1.0), ("MCL", 0.5)]
        )
        for report in ("curr", "copy"):
            for hour in ("08", "09", "10"):
                path = zip_of(
                    self.zips / report / f"20261124T{hour}.zip", [("a.csv", (header + rows).encode())]
                )
                write(path, self.tables, report)
        reports = {"curr": "PRC_CURR_LMP", "copy": "PRC_INTVL_LMP"}
        rebuild_views(self.tables, reports)
        fresh, made = open_views(self.tables)
        self.addCleanup(fresh.close)
        self.assertEqual(made.skipped, ())
        with connect(self.tables) as connection:
            for views_of in (connection, fresh):
                self.assertEqual(views_of.execute("SELECT count(*) FROM curr").fetchall(), [(4,)])
                self.assertEqual(
                    views_of.execute("SELECT sum(mw) FROM curr WHERE lmp_type = 'LMP'").fetchall(), [(41.5,)]
                )
                self.assertEqual(views_of.execute("SELECT count(*) FROM copy").fetchall(), [(12,)])

    def test_current_only_newest_posting(self) -> None:
        """
        An interval of a report OASIS serves only current data of, posted
        again with another value, shows once, with the value of the answer
        downloaded last, whatever its window's name, in the views file and
        in views made afresh, filtered by location or not.
        """
        header = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,NODE,MARKET_RUN_ID,LMP_TYPE,MW\n"
        row = "2026-11-24T21:55:00-00:00,2026-11-24T22:00:00-00:00,TH_NP15_GEN-APND,RTM,LMP,{}\n"
        # The window named later was downloaded first.
        for hour, price, downloaded in (("09", 40.0, 1_000_000_000), ("08", 41.5, 2_000_000_000)):
            path = zip_of(
                self.zips / f"20261124T{hour}.zip", [("a.csv", (header + row.format(price)).encode())]
            )
            os.utime(path, ns=(downloaded, downloaded))
            write(path, self.tables, "curr")
        rebuild_views(self.tables, {"curr": "PRC_CURR_LMP"})
        fresh, made = open_views(self.tables)
        self.addCleanup(fresh.close)
        with connect(self.tables) as connection:
            for views_of in (connection, fresh):
                self.assertEqual(views_of.execute("SELECT mw FROM curr").fetchall(), [(41.5,)])
                self.assertEqual(
                    views_of.execute("SELECT mw FROM curr WHERE node = 'TH_NP15_GEN-APND'").fetchall(),
                    [(41.5,)],
                )
                self.assertNotIn(
                    "harbour_file", [row[0] for row in views_of.execute("DESCRIBE curr").fetchall()]
                )

    def test_current_only_group_numbers(self) -> None:
        """
        An interval of a report OASIS serves only current data of, fetched
        by two windows starting on different days, shows once, as the
        newest posting, though OASIS's C{GROUP} numbers its rows in each
        answer from the answer's first series: one number in one window
        and another in the next.
        """
        header = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,TI_ID,TI_DIRECTION,MW,GROUP\n"
        days = {
            "2025-06-01": "2025-06-01T07:00:00-00:00,2025-06-01T08:00:00-00:00,2025-06-01",
            "2025-06-02": "2025-06-02T07:00:00-00:00,2025-06-02T08:00:00-00:00,2025-06-02",
            "2025-06-03": "2025-06-03T07:00:00-00:00,2025-06-03T08:00:00-00:00,2025-06-03",
        }
        windows = (
            ("20250601", ("2025-06-01", "2025-06-02"), 100.0, 1_000_000_000),
            ("20250602", ("2025-06-02", "2025-06-03"), 120.0, 2_000_000_000),
        )
        for name, held, mw, downloaded in windows:
            body = "".join(
                f"{days[day]},MALIN500,{direction},{mw},{group}\n"
                for group, (day, direction) in enumerate(
                    ((day, direction) for day in held for direction in ("I", "E")), start=1
                )
            )
            path = zip_of(self.zips / f"{name}.zip", [("a.csv", (header + body).encode())])
            os.utime(path, ns=(downloaded, downloaded))
            write(path, self.tables, "usage")
        rebuild_views(self.tables, {"usage": "TRNS_CURR_USAGE"})
        fresh, made = open_views(self.tables)
        self.addCleanup(fresh.close)
        self.assertEqual(made.skipped, ())
        with connect(self.tables) as connection:
            for views_of in (connection, fresh):
                self.assertEqual(
                    views_of.execute(
                        'SELECT opr_dt, ti_direction, mw, "group" FROM usage ORDER BY opr_dt, ti_direction'
                    ).fetchall(),
                    [
                        (D(2025, 6, 1), "E", 100.0, "2"),
                        (D(2025, 6, 1), "I", 100.0, "1"),
                        (D(2025, 6, 2), "E", 120.0, "2"),
                        (D(2025, 6, 2), "I", 120.0, "1"),
                        (D(2025, 6, 3), "E", 120.0, "4"),
                        (D(2025, 6, 3), "I", 120.0, "3"),
                    ],
                )

    def test_current_by_parameter_once(self) -> None:
        """
        A report whose parameters make it current-only (C{PRC_FLEX_RAMP}
        with C{grp_type=CURR}, as the request its newest file answers
        says) shows each row once, as the reports without history do;
        asked with C{grp_type=ALL}, it shows every row its files hold.
        """
        header = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,MARKET_RUN_ID,BAA_GRP_ID,PRC\n"
        row = "2026-11-24T21:55:00-00:00,2026-11-24T22:00:00-00:00,RTD,ISO,12.5\n"
        for report, grp_type in (("curr", "CURR"), ("all", "ALL")):
            for hour in ("08", "09", "10"):
                path = zip_of(
                    self.zips / report / f"20261124T{hour}.zip", [("a.csv", (header + row).encode())]
                )
                url = (
                    "https://oasis.example/oasisapi/SingleZip?queryname=PRC_FLEX_RAMP&startdatetime="
                    f"20261124T{hour}:00-0000&market_run_id=RTD&version=2&grp_type={grp_type}"
                )
                write_window(path, self.tables, report, path.stem, url=url, sha256=file_sha256(path))
        rebuild_views(self.tables, {"curr": "PRC_FLEX_RAMP", "all": "PRC_FLEX_RAMP"})
        fresh, made = open_views(self.tables)
        self.addCleanup(fresh.close)
        with connect(self.tables) as connection:
            for views_of in (connection, fresh):
                self.assertEqual(views_of.execute("SELECT count(*) FROM curr").fetchall(), [(1,)])
                self.assertEqual(views_of.execute('SELECT count(*) FROM "all"').fetchall(), [(3,)])

    def test_lmp_family(self) -> None:
        """
        The LMP reports and their groups get wide views; others do not.
        """
        for name in (
            "PRC_LMP",
            "PRC_INTVL_LMP",
            "PRC_RTPD_LMP",
            "PRC_HASP_LMP",
            "DAM_LMP_GRP",
            "RTM_LMP_GRP",
        ):
            self.assertTrue(is_lmp(name), name)
        for name in ("SLD_FCST", "PRC_AS", "DAM_SLD_GRP", "NOPE"):
            self.assertFalse(is_lmp(name), name)

    def test_views(self) -> None:
        """
        Each report with files gets a view reading all of them; a report
        without any gets none; the file holds nothing but views.
        """
        write(HUBS_ZIP, self.tables, "lmp-dam")
        day = D(2025, 6, 1)
        write(simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day), self.tables, "load")
        reports = {"lmp-dam": "PRC_LMP", "load": "SLD_FCST", "later": "PRC_AS"}
        rebuilt = rebuild_views(self.tables, reports)
        csv_sources = frozenset({"lmp_type", "xml_data_item", "market_run_id", "node", "pnode_resmrid", "mw"})
        self.assertEqual(rebuilt, RebuiltViews(self.tables / DATABASE, (), {"lmp-dam": csv_sources}))
        self.assertEqual(recorded_reports(self.tables), reports)
        connection = connect(self.tables)
        self.addCleanup(connection.close)
        kinds = connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        self.assertEqual(kinds, [("lmp_dam", "VIEW"), ("lmp_dam_wide", "VIEW"), ("load", "VIEW")])
        self.assertEqual(connection.execute("SELECT count(*) FROM lmp_dam").fetchall(), [(288,)])
        self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(5 * 24,)])
        self.assertEqual(
            connection.execute("SELECT DISTINCT typeof(trading_date) FROM load").fetchall(), [("DATE",)]
        )

    def test_new_files_seen(self) -> None:
        """
        Files written after the views were built are read by them.
        """
        write(
            simulated(self.zips / "a.zip", "SLD_FCST", "DAM", D(2025, 6, 1), D(2025, 6, 1)),
            self.tables,
            "load",
        )
        rebuild_views(self.tables, {"load": "SLD_FCST"})
        write(
            simulated(self.zips / "b.zip", "SLD_FCST", "DAM", D(2025, 6, 2), D(2025, 6, 2)),
            self.tables,
            "load",
        )
        with duckdb.connect(str(self.tables / DATABASE), read_only=True) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(2 * 5 * 24,)])

    def test_wide_from_csv(self) -> None:
        """
        The wide view of a CSV answer has one row per interval and
        location, with the components of the long rows.
        """
        write(HUBS_ZIP, self.tables, "lmp")
        rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM lmp_wide").fetchall(), [(72,)])
            columns = [row[0] for row in connection.execute("DESCRIBE lmp_wide").fetchall()]
            self.assertEqual(
                columns,
                [
                    "interval_start_utc",
                    "interval_end_utc",
                    "market",
                    "location",
                    "location_type",
                    "lmp",
                    "energy",
                    "congestion",
                    "loss",
                    "ghg",
                    "trading_date",
                ],
            )
            row = connection.execute(
                "SELECT market, location_type, lmp, energy, congestion, loss, ghg, trading_date "
                "FROM lmp_wide "
                "WHERE location = 'TH_NP15_GEN-APND' AND interval_start_utc = '2020-01-02 01:00:00+00'"
            ).fetchall()
            expected = connection.execute(
                "SELECT lmp_type, mw FROM lmp WHERE node = 'TH_NP15_GEN-APND' "
                "AND interval_start_utc = '2020-01-02 01:00:00+00'"
            ).fetchall()
        values = dict(expected)
        self.assertEqual(values["LMP"], 38.1942)
        self.assertEqual(
            row,
            [
                (
                    "DAY_AHEAD_HOURLY",
                    "Trading Hub",
                    values["LMP"],
                    values["MCE"],
                    values["MCC"],
                    values["MCL"],
                    None,
                    D(2020, 1, 1),
                )
            ],
        )

    def test_wide_location_pruned(self) -> None:
        """
        A query of the wide view of CSV answers for a few locations reads
        only the row groups that can hold them: the location is C{node}
        itself, which row group statistics know, not an expression over it.
        """
        write(HUBS_ZIP, self.tables, "lmp")
        rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        query = "SELECT lmp FROM lmp_wide WHERE location IN ('TH_NP15_GEN-APND', 'TH_SP15_GEN-APND')"
        with connect(self.tables) as connection:
            plan = "".join(row[1] for row in connection.execute(f"EXPLAIN {query}").fetchall())
            sql = connection.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'lmp_wide'").fetchall()
            self.assertEqual(len(connection.execute(query).fetchall()), 48)
        self.assertNotIn("pnode_resmrid", sql[0][0])
        self.assertIn("node AS", sql[0][0])
        self.assertIn("Filters:", plan)

    def test_wide_from_group_zip(self) -> None:
        """
        The wide view of a group zip (one XML member per component) pivots
        on the data item, GHG included.
        """
        day = D(2025, 6, 1)
        write(
            simulated(self.zips / "g.zip", "PRC_LMP", "DAM", day, day, csv=False, version=2, nodes=5),
            self.tables,
            "group",
        )
        rebuild_views(self.tables, {"group": "DAM_LMP_GRP"})
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM group_wide").fetchall(), [(5 * 24,)])
            self.assertEqual(
                connection.execute(
                    "SELECT count(*) FROM group_wide "
                    "WHERE abs(lmp - (energy + congestion + loss + ghg)) > 1e-4 "
                    "OR ghg IS NULL"
                ).fetchall(),
                [(0,)],
            )
            types = connection.execute(
                "SELECT location_type, count(DISTINCT location) FROM group_wide GROUP BY 1 ORDER BY 1"
            ).fetchall()
        self.assertEqual(types, [("Node", 2), ("Trading Hub", 3)])

    def test_wide_outlives_its_columns(self) -> None:
        """
        A wide view made while a report's files were XML answers still
        reads once the last of them is rewritten from a CSV answer: the
        columns it read from them are nulls now.
        """
        day = D(2020, 1, 1)
        xml = simulated(self.zips / "x.zip", "PRC_LMP", "DAM", day, day, csv=False, nodes=3)
        write(xml, self.tables, "lmp", label="2020-01-01")
        rebuilt = rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        self.assertEqual(
            rebuilt.wide_sources, {"lmp": frozenset({"data_item", "mkt_type", "resource_name", "value"})}
        )
        write(HUBS_ZIP, self.tables, "lmp", label="2020-01-01")
        with connect(self.tables) as connection:
            rows = connection.execute("SELECT count(*), count(lmp) FROM lmp_wide").fetchall()
        # The view's columns are XML's: the CSV answer's rows have no
        # location or component it reads, so they pivot to one null row
        # per interval until the views are made again.
        self.assertEqual(rows, [(24, 0)])
        rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        with connect(self.tables) as connection:
            rows = connection.execute("SELECT count(*), count(lmp) FROM lmp_wide").fetchall()
        self.assertEqual(rows, [(72, 72)])

    def test_replaced_whole(self) -> None:
        """
        Rebuilding replaces the file, dropping views of reports no longer
        given, and leaves no temporary file.
        """
        write(HUBS_ZIP, self.tables, "lmp")
        rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        rebuild_views(self.tables, {})
        with connect(self.tables) as connection:
            self.assertEqual(
                connection.execute("SELECT count(*) FROM information_schema.tables").fetchall(), [(0,)]
            )
        self.assertEqual(sorted(p.name for p in self.tables.iterdir()), [DATABASE, REPORTS_FILE, "lmp"])

    def test_no_views_yet(self) -> None:
        """
        Connecting before the views exist says who builds them.
        """
        with self.assertRaises(FileNotFoundError) as caught:
            connect(self.tables)
        self.assertIn("the daemon builds them", str(caught.exception))

    def test_clashing_names(self) -> None:
        """
        Reports whose views would share a name, in DuckDB's case-insensitive
        names, do not stop the rebuild: the first in sorted order has the
        name, the others go without views and are returned.
        """
        day = D(2025, 6, 1)
        load = simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day)
        for report in ("a-b", "a.b", "a_b", "LOAD", "load", "x_wide"):
            write(load, self.tables, report)
        write(HUBS_ZIP, self.tables, "x")
        reports = {"a-b": "", "a.b": "", "a_b": "", "LOAD": "", "load": "", "x": "PRC_LMP", "x_wide": ""}
        rebuilt = rebuild_views(self.tables, reports)
        self.assertEqual(
            rebuilt.skipped,
            (
                Clash("a.b", "a_b", "a-b"),
                Clash("a_b", "a_b", "a-b"),
                Clash("load", "load", "LOAD"),
                Clash("x_wide", "x_wide", "x"),
            ),
        )
        self.assertEqual(str(rebuilt.skipped[0]), "report 'a.b' has no view: a_b is a view of report 'a-b'")
        with connect(self.tables) as connection:
            names = connection.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY 1"
            ).fetchall()
            self.assertEqual(names, [("LOAD",), ("a_b",), ("x",), ("x_wide",)])
            self.assertEqual(connection.execute("SELECT count(*) FROM x_wide").fetchall(), [(72,)])

    def test_unreadable_file(self) -> None:
        """
        A report with a file DuckDB cannot read goes without views, named
        with the file, and the other reports keep theirs, in the views
        file and in views made afresh.
        """
        write(HUBS_ZIP, self.tables, "lmp-dam")
        day = D(2025, 6, 1)
        write(simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day), self.tables, "load")
        damaged = next((self.tables / "lmp-dam").glob("*/*.parquet"))
        damaged.write_bytes(damaged.read_bytes()[:100])
        rebuilt = rebuild_views(self.tables, {"lmp-dam": "PRC_LMP", "load": "SLD_FCST"})
        [skipped] = rebuilt.skipped
        assert isinstance(skipped, Unreadable)
        self.assertEqual(skipped.report, "lmp-dam")
        self.assertIn(damaged.name, skipped.error)
        self.assertTrue(str(skipped).startswith("report 'lmp-dam' has no view: "))
        fresh, again = open_views(self.tables)
        self.addCleanup(fresh.close)
        self.assertEqual(again.skipped, rebuilt.skipped)
        with connect(self.tables) as connection:
            for views in (connection, fresh):
                names = views.execute("SELECT table_name FROM information_schema.tables").fetchall()
                self.assertEqual(names, [("load",)])
                self.assertEqual(views.execute("SELECT count(*) FROM load").fetchall(), [(5 * 24,)])

    def test_vanished_file_not_unreadable(self) -> None:
        """
        A file removed while DuckDB reads the footers (its window rewritten
        over fewer days) does not leave its report without views: they are
        made again over the files in place.
        """
        day = D(2025, 6, 1)
        write(
            simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day + D.resolution * 4),
            self.tables,
            "load",
        )
        made = self.racing("load", 1)
        rebuilt = rebuild_views(self.tables, {"load": "SLD_FCST"})
        self.assertEqual((rebuilt.skipped, made), ((), ["load", "load"]))
        with connect(self.tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(4 * 5 * 24,)])

    def test_every_file_vanished(self) -> None:
        """
        A report whose every file goes while its views are made has none,
        as one without files, and is not counted unreadable.
        """
        day = D(2025, 6, 1)
        write(simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day), self.tables, "load")
        made = self.racing("load", 1)
        rebuilt = rebuild_views(self.tables, {"load": "SLD_FCST"})
        self.assertEqual((rebuilt.skipped, made), ((), ["load"]))
        with connect(self.tables) as connection:
            self.assertEqual(
                connection.execute("SELECT table_name FROM information_schema.tables").fetchall(), []
            )

    def test_vanishing_files_bounded(self) -> None:
        """
        A report losing a file at every try is tried L{ATTEMPTS} times, then
        left without views.
        """
        day = D(2025, 6, 1)
        write(
            simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day + D.resolution * 4),
            self.tables,
            "load",
        )
        made = self.racing("load", ATTEMPTS)
        [skipped] = rebuild_views(self.tables, {"load": "SLD_FCST"}).skipped
        assert isinstance(skipped, Unreadable)
        self.assertEqual((skipped.report, made), ("load", ["load"] * ATTEMPTS))

    def test_damaged_file_despite_vanished(self) -> None:
        """
        A damaged file (bytes that are no Parquet) leaves its report without
        views, named in the reason, even when another of its files went as
        DuckDB read them: it is tried once more, and only once.
        """
        day = D(2025, 6, 1)
        write(
            simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day + D.resolution * 4),
            self.tables,
            "load",
        )
        damaged = max((self.tables / "load").glob("*/*.parquet"))
        damaged.write_bytes(b"not parquet")
        made = self.racing("load", 1)
        [skipped] = rebuild_views(self.tables, {"load": "SLD_FCST"}).skipped
        assert isinstance(skipped, Unreadable)
        self.assertIn(damaged.name, skipped.error)
        self.assertIn(damaged.parent.name, skipped.error)
        self.assertEqual(made, ["load", "load"])

    def test_day_removed_while_listed(self) -> None:
        """
        A day's directory removed while the files are listed (its window
        rewritten over fewer days) has no file: the views made afresh read
        the other days', and no report is left without views.
        """
        day = D(2025, 6, 1)
        zip_path = simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day + D.resolution)
        write(zip_path, self.tables, "load")
        removed_when_scanned(self, self.tables / "load" / "trading_date=2025-06-02")
        connection, made = open_views(self.tables)
        self.addCleanup(connection.close)
        self.assertEqual(made.skipped, ())
        self.assertEqual(connection.execute("SELECT count(*) FROM load").fetchall(), [(5 * 24,)])

    def test_only_views_asked_for(self) -> None:
        """
        Views made afresh for a query can be only those it reads (a view's
        making reads every footer of its files): a wide view brings its
        report's; names that are no view's make them all.
        """
        write(HUBS_ZIP, self.tables, "lmp-dam")
        day = D(2025, 6, 1)
        write(simulated(self.zips / "l.zip", "SLD_FCST", "DAM", day, day), self.tables, "load")
        rebuild_views(self.tables, {"lmp-dam": "PRC_LMP", "load": "SLD_FCST"})

        def made(wanted: set[str] | None) -> list[str]:
            connection, ignored = open_views(self.tables, wanted)
            with connection:
                rows = connection.execute("SELECT table_name FROM information_schema.tables ORDER BY 1")
                return [name for (name,) in rows.fetchall()]

        self.assertEqual(made({"LOAD"}), ["load"])
        self.assertEqual(made({"lmp_dam_wide"}), ["lmp_dam", "lmp_dam_wide"])
        everything = ["lmp_dam", "lmp_dam_wide", "load"]
        self.assertEqual(made({"tables"}), everything)
        self.assertEqual(made(None), everything)

    def test_views_named(self) -> None:
        """
        L{views_named} reads the names a query reads tables by; for a query
        DuckDB cannot parse, L{None} (all views are then made, and DuckDB
        says what is wrong).
        """
        self.assertEqual(
            views_named("select * from lmp_dam_wide w, load where x in (select 1 from t)"),
            {"lmp_dam_wide", "load", "t"},
        )
        self.assertIsNone(views_named("selec broken"))

    def test_stale_temporaries_removed(self) -> None:
        """
        A rebuild removes the temporary files of rebuilds whose process
        died, and keeps those of live ones.
        """
        write(HUBS_ZIP, self.tables, "lmp")
        dead, alive = dead_pid(), os.getppid()
        names = [
            f".{DATABASE}.{dead}.tmp",
            f".{DATABASE}.{dead}.tmp.wal",
            f".{REPORTS_FILE}.{dead}.tmp",
            f".{DATABASE}.{alive}.tmp",
        ]
        for name in names:
            (self.tables / name).write_bytes(b"partial")
        rebuild_views(self.tables, {"lmp": "PRC_LMP"})
        self.assertEqual(
            sorted(p.name for p in self.tables.iterdir()),
            sorted([f".{DATABASE}.{alive}.tmp", DATABASE, REPORTS_FILE, "lmp"]),
        )

    def test_unreadable_reports_record(self) -> None:
        """
        A missing or malformed record of the reports reads as none known.
        """
        self.assertEqual(recorded_reports(self.tables), {})
        self.tables.mkdir(parents=True)
        for text in ("{", "[]", '{"reports": 3}'):
            (self.tables / REPORTS_FILE).write_text(text)
            self.assertEqual(recorded_reports(self.tables), {}, text)


class ConfineTests(SynchronousTestCase):
    """
    L{confine} keeps the views L{open_views} made to reading their files.
    """

    def test_tables_not_written(self) -> None:
        """
        A confined connection reads the files its views read, by the views
        or by path, but can neither make a file beside them, where the
        views would read it, nor replace one through a temporary; DuckDB's
        spill directory is the caller's, the only directory it may use.
        """
        tables = Path(self.mktemp()).resolve() / "tables"
        write(HUBS_ZIP, tables, "lmp-dam")
        connection, made = open_views(tables)
        self.addCleanup(connection.close)
        spill = Path(self.mktemp()).resolve()
        spill.mkdir()
        confine(connection, made.files, spill)
        files = sorted((tables / "lmp-dam").glob("*/*"))
        self.assertEqual(files, sorted(made.files))
        self.assertEqual(connection.execute("SELECT count(*) FROM lmp_dam").fetchall(), [(288,)])
        self.assertEqual(connection.execute(f"SELECT count(*) FROM '{files[0]}'").fetchall(), [(96,)])
        for target in (files[0].with_name("part-new.parquet"), files[0]):
            with self.assertRaises(duckdb.PermissionException):
                connection.execute(f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT parquet)")
        self.assertEqual(sorted((tables / "lmp-dam").glob("*/*")), files)
        self.assertEqual(connection.execute("SELECT count(*) FROM lmp_dam").fetchall(), [(288,)])
        settings = connection.execute(
            "SELECT name, value FROM duckdb_settings()"
            " WHERE name IN ('allowed_directories', 'temp_directory') ORDER BY 1"
        ).fetchall()
        self.assertEqual(settings, [("allowed_directories", f"[{spill}/]"), ("temp_directory", str(spill))])
