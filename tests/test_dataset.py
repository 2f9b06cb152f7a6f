"""
System tests of the dataset: a real C{twistd harbour} with its embedded
redis-server mirrors the simulator, parses every file into Parquet, and
C{harbourctl query} answers over the views; a kill mid-parse and a revised
window lose or double nothing.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from tests.processes import program
from tests.test_mirror import GROUP, LMP, LOAD, Mirror
from tests.test_publications import ONE_DAY, pacific_today


def parsed(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    """
    @return: The parse counts per report from a C{Status} document, with
        zero counts left out.
    """
    reports = status["services"]["tables"]["reports"]
    return {report: {k: v for k, v in counts.items() if v} for report, counts in reports.items()}


def csv_rows(path: Path) -> int:
    """
    @return: How many data rows the CSV members of the zip at C{path} hold.
    """
    rows = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as stream:
                rows += sum(1 for ignored in csv.reader(io.TextIOWrapper(stream, "utf-8"))) - 1
    return rows


async def query(mirror: Mirror, sql: str) -> list[dict[str, Any]]:
    """
    Ask C{harbourctl query --json} over the mirror's data directory.

    @return: Its rows.
    """
    data_dir = str(mirror.directory / "data")
    out, err, code = await getProcessOutputAndValue(
        program("harbourctl"), ["query", "--data-dir", data_dir, "--json", sql], reactor=mirror.reactor
    )
    if code != 0:
        raise AssertionError(f"harbourctl query exited {code}: {err.decode()}")
    return [json.loads(line) for line in out.decode().splitlines() if line]


class DatasetTests(TestCase):
    """
    The dataset, end to end.
    """

    timeout = 180

    async def test_mirrorThenQuery(self) -> None:
        """
        Every downloaded file of a CSV, an XML and a group report is parsed;
        the views hold exactly the rows of the zips; the wide LMP view pivots
        the components.
        """
        mirror = Mirror(self, days=("2025-01-01", "2025-01-03"))
        mirror.write("reports.toml", LMP + LOAD + GROUP)
        await mirror.start()
        await mirror.until_finished(9)
        status = await mirror.until(
            lambda s: parsed(s) == {r: {"parsed": 3} for r in ("group", "lmp", "load")}
        )
        self.assertEqual(status["services"]["tables"]["failed"], 0)
        zips = sorted((mirror.directory / "data" / "reports" / "lmp").glob("*.zip"))
        [[count]] = [list(row.values()) for row in await query(mirror, "select count(*) from lmp")]
        self.assertEqual(count, sum(csv_rows(z) for z in zips))
        wide = await query(
            mirror,
            "select count(*) as n, count(distinct location) as locations, "
            "count(*) filter (where lmp is null) as missing from lmp_wide",
        )
        self.assertEqual(wide[0]["missing"], 0)
        [components] = await query(mirror, "select count(distinct lmp_type) as n from lmp")
        self.assertEqual(wide[0]["n"] * components["n"], count, "one wide row per interval and location")
        [load] = await query(mirror, "select count(*) as n, count(distinct trading_date) as days from load")
        self.assertEqual(load["days"], 3)

    async def test_killedMidParse(self) -> None:
        """
        C{kill -9} while parsing, then a restart: every file ends parsed
        once, no temporary file is left under a final name, and no row is
        doubled.
        """
        mirror = Mirror(self, days=("2025-01-01", "2025-01-12"))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.client.callRemote(commands.Pause, service="tables")
        await mirror.until_finished(12)
        await mirror.client.callRemote(commands.Resume, service="tables")
        await mirror.until(lambda s: s["services"]["tables"]["parsing"] or parsed(s)["lmp"].get("parsed"))
        await mirror.kill()
        await mirror.start()
        await mirror.until(lambda s: parsed(s) == {"lmp": {"parsed": 12}})
        tables = mirror.directory / "data" / "tables" / "lmp"
        self.assertEqual(list(tables.rglob(".*")), [])
        zips = sorted((mirror.directory / "data" / "reports" / "lmp").glob("*.zip"))
        [row] = await query(mirror, "select count(*) as n from lmp")
        self.assertEqual(row["n"], sum(csv_rows(z) for z in zips))

    async def test_revisionReplacesRows(self) -> None:
        """
        A window OASIS revises is fetched again and its rows replace the old
        ones: the day holds as many rows as before, with the new values.
        """
        from twisted.internet import reactor

        today = pacific_today(reactor)
        first, last = today - 3 * ONE_DAY, today - ONE_DAY
        mirror = Mirror(
            self,
            days=(first.isoformat(), last.isoformat()),
            manifest="publications_interval = 2.0\n",
            last_day=None,
        )
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until_finished(3)
        await mirror.until(lambda s: parsed(s) == {"lmp": {"parsed": 3}})
        revised_day = today - 2 * ONE_DAY
        day_sql = f"select count(*) as n, sum(mw) as total from lmp where trading_date = '{revised_day}'"
        [before] = await query(mirror, day_sql)
        mirror.simulator.revise("PRC_LMP", revised_day)
        await mirror.until(lambda s: s["services"]["work"]["revisions"] == {"lmp": 1})
        await mirror.until(
            lambda s: parsed(s) == {"lmp": {"parsed": 3}} and s["services"]["tables"]["written"] >= 4
        )
        [after] = await query(mirror, day_sql)
        self.assertEqual(after["n"], before["n"])
        self.assertNotEqual(after["total"], before["total"])
        [total] = await query(mirror, "select count(*) as n from lmp")
        zips = [
            p for p in (mirror.directory / "data" / "reports" / "lmp").glob("*.zip") if ".rev" not in p.name
        ]
        self.assertEqual(total["n"], sum(csv_rows(z) for z in zips))

    async def test_windowChangeDoublesNothing(self) -> None:
        """
        Changing a report's windows (one day each, then three) retires the
        old windows and fetches the new: the old windows' tables go, so no
        day is in the views twice.
        """
        mirror = Mirror(self, days=("2025-01-01", "2025-01-06"))
        mirror.write("reports.toml", LOAD)
        await mirror.start()
        await mirror.until_finished(6)
        await mirror.until(lambda s: parsed(s) == {"load": {"parsed": 6}})
        [before] = await query(mirror, "select count(*) as n, count(distinct trading_date) as days from load")
        mirror.write("reports.toml", LOAD.replace('window = "1d"', 'window = "3d"'))
        await mirror.until(
            lambda s: (
                s["services"]["work"]["tasks"].get("load", {}).get("retired") == 6
                and parsed(s).get("load") == {"parsed": 2}
            )
        )
        [after] = await query(mirror, "select count(*) as n, count(distinct trading_date) as days from load")
        self.assertEqual(after, before)
        labels = {p.name for p in (mirror.directory / "data" / "tables" / "load").glob("*/*.parquet")}
        self.assertEqual(len(labels), 2, labels)
