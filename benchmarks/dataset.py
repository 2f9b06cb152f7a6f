"""
The dataset's figures: parsing an all-node day of C{PRC_LMP} into Parquet
against C{pyarrow.csv.read_csv} of the same bytes (the ceiling) and against
pandas as public clients parse it; the parse's peak memory in a process of
its own; Parquet bytes against zip bytes; a month of hub prices through the
views against the same question answered from the zips with pandas; and XML
rows per second against expat's bare parse (and lxml's C{iterparse}).

The pandas peers do what gridstatus does with an OASIS answer
(C{gridstatus/caiso/caiso.py} in github.com/gridstatus/gridstatus:
C{CAISO._get_oasis} reads each zip member with C{pd.read_csv}, converts
every C{*_GMT} column with C{pd.to_datetime(..., utc=True)}, sorts by the
interval start and converts the interval columns to C{US/Pacific};
C{CAISO.get_lmp} then pivots C{LMP_TYPE} into columns with
C{pivot_table(..., aggfunc="first")}, renames them and labels each
location's type).  The month's question is the one an analyst asks of a
month of day-ahead answers: the hourly prices, every component, of the
three trading hubs; pandas answers it zip by zip (read, keep the hubs'
rows, convert the times, pivot), the views with a C{trading_date} range so
that DuckDB reads only that month's partitions.

harbour's parse runs once in a process of its own, for its peak memory
(and its time in a fresh process, C{harbour_fresh_seconds}); its rate is
then the fastest of three runs here, taken in turns with
C{pyarrow.csv.read_csv}'s and the pandas peer's, so that all three are
measured alike.

The answers have the simulator's shape (its C{PRC_LMP} columns, five
components a node and hour), generated column-wise so that making them
takes seconds.

C{python -m benchmarks.dataset [--quick]} prints one JSON line of figures;
L{rows} turns them into rows of C{make bench}'s table.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks.memory import peak_rss_mb
from harbour.dataset.parse import read_xml
from harbour.dataset.views import rebuild_views
from harbour.dataset.write import write_window
from harbour.testing.simulator.documents import NAMESPACE
from harbour.testing.simulator.formats import PACIFIC, iso
from harbour.testing.simulator.reports import PRICE_ITEMS, node_names

COMPONENTS = ("LMP", "MCC", "MCE", "MCL", "MGHG")


def day_csv(day: datetime.date, nodes: int, seed: int = 0) -> bytes:
    """
    @return: A C{PRC_LMP} DAM answer for one trading day and C{nodes}
        nodes, as OASIS's CSV, five components per node and hour.
    """
    # Only the benchmarks install it: the harness's tests do without.
    import numpy as np

    rng = np.random.default_rng(seed + day.toordinal())
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(datetime.UTC)
    hours = 24
    names = np.array(node_names(nodes), dtype=object)
    node = np.repeat(names, hours * len(COMPONENTS))
    hour = np.tile(np.repeat(np.arange(hours), len(COMPONENTS)), nodes)
    component = np.tile(np.array(COMPONENTS, dtype=object), nodes * hours)
    starts = np.array([iso(start + datetime.timedelta(hours=h)) for h in range(hours + 1)], dtype=object)
    energy = np.round(25 + 30 * rng.random(nodes * hours), 5)
    congestion = np.round(rng.normal(0, 1.5, nodes * hours), 5)
    loss = np.round(energy * rng.uniform(-0.04, 0.04, nodes * hours), 5)
    ghg = np.round(rng.uniform(0, 0.5, nodes * hours), 5)
    lmp = np.round(energy + congestion + loss + ghg, 5)
    values = np.stack([lmp, congestion, energy, loss, ghg], axis=1).reshape(-1)
    table = pa.table(
        {
            "INTERVALSTARTTIME_GMT": starts[hour],
            "INTERVALENDTIME_GMT": starts[hour + 1],
            "OPR_DT": np.full(len(node), day.isoformat(), dtype=object),
            "OPR_HR": hour + 1,
            "OPR_INTERVAL": np.zeros(len(node), dtype=np.int64),
            "NODE_ID_XML": node,
            "NODE_ID": node,
            "NODE": node,
            "MARKET_RUN_ID": np.full(len(node), "DAM", dtype=object),
            "LMP_TYPE": component,
            "XML_DATA_ITEM": np.array([PRICE_ITEMS[c] for c in COMPONENTS], dtype=object)[
                np.tile(np.arange(len(COMPONENTS)), nodes * hours)
            ],
            "PNODE_RESMRID": node,
            "GRP_TYPE": np.full(len(node), "ALL_APNODES", dtype=object),
            "POS": np.zeros(len(node), dtype=np.int64),
            "MW": values,
            "GROUP": np.repeat(np.arange(6000, 6000 + nodes), hours * len(COMPONENTS)),
        }
    )
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="none"))
    return out.getvalue()


def day_zip(path: Path, day: datetime.date, nodes: int) -> Path:
    """
    @return: C{path}, now a zip of L{day_csv} named as OASIS names it.
    """
    member = f"{day:%Y%m%d}_{day:%Y%m%d}_PRC_LMP_DAM_20260101_00_00_00_v1.csv"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, day_csv(day, nodes))
    return path


def day_xml(nodes: int) -> bytes:
    """
    @return: One price component of an all-node day as OASIS's XML: a
        C{REPORT_ITEM} per node with 24 C{REPORT_DATA}.
    """
    start = datetime.datetime(2025, 6, 1, 7, tzinfo=datetime.UTC)
    times = [iso(start + datetime.timedelta(hours=h)) for h in range(25)]
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<OASISReport xmlns="{NAMESPACE}">\n<MessagePayload><RTO>\n'
    ]
    header = (
        "<REPORT_ITEM>\n<REPORT_HEADER>\n<SYSTEM>OASIS</SYSTEM>\n<TZ>PPT</TZ>\n<REPORT>PRC_LMP</REPORT>\n"
        "<MKT_TYPE>DAM</MKT_TYPE>\n<UOM>US$/MWh</UOM>\n<INTERVAL>ENDING</INTERVAL>\n"
        "<SEC_PER_INTERVAL>3600</SEC_PER_INTERVAL>\n</REPORT_HEADER>\n"
    )
    for node in node_names(nodes):
        parts.append(header)
        for h in range(24):
            parts.append(
                f"<REPORT_DATA>\n<DATA_ITEM>LMP_PRC</DATA_ITEM>\n<RESOURCE_NAME>{node}</RESOURCE_NAME>\n"
                f"<OPR_DATE>2025-06-01</OPR_DATE>\n<INTERVAL_NUM>{h + 1}</INTERVAL_NUM>\n"
                f"<INTERVAL_START_GMT>{times[h]}</INTERVAL_START_GMT>\n"
                f"<INTERVAL_END_GMT>{times[h + 1]}</INTERVAL_END_GMT>\n<VALUE>{30 + h * 0.37:.5f}</VALUE>\n"
                "</REPORT_DATA>\n"
            )
        parts.append("</REPORT_ITEM>\n")
    parts.append("</RTO></MessagePayload>\n</OASISReport>\n")
    return "".join(parts).encode()


def timed(work: Callable[[], Any], runs: int = 1, clock: Callable[[], float] = time.perf_counter) -> float:
    """
    @return: The fastest of C{runs} runs of C{work}, in seconds of
        C{clock}.
    """
    best = float("inf")
    for ignored in range(runs):
        began = clock()
        work()
        best = min(best, clock() - began)
    return best


def in_turns(
    contestants: dict[str, Callable[[], Any]], rounds: int = 3, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """
    Run each of C{contestants} once a round, in turns, for C{rounds}
    rounds, so that a busy spell of a shared machine weighs on all alike
    and each gets as many tries (its first, colder, run not its only one).

    @return: Each one's fastest run, in seconds of C{clock}.
    """
    best = dict.fromkeys(contestants, float("inf"))
    for ignored in range(rounds):
        for name, work in contestants.items():
            best[name] = min(best[name], timed(work, clock=clock))
    return best


def parse_in_process(zip_path: Path, tables: Path) -> dict[str, float]:
    """
    Parse and write C{zip_path} here; meant for a process of its own.

    @return: Seconds and peak RSS in MB.
    """
    began = time.perf_counter()
    write_window(zip_path, tables, "lmp", "w", url="u", sha256="s")
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


#: The hubs whose prices the month's question asks for.
HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")

#: gridstatus's names of the price components.
PANDAS_COMPONENTS = {"MCE": "Energy", "MCC": "Congestion", "MCL": "Loss", "MGHG": "GHG"}


def pandas_lmp(frame: Any) -> Any:
    """
    @param frame: An OASIS C{PRC_LMP} answer's rows as read by
        C{pd.read_csv}.
    @return: What gridstatus's C{CAISO.get_lmp} makes of them: times
        parsed in UTC and shown in the market's zone, C{LMP_TYPE} pivoted
        into columns, one row per interval and location, with its market
        and location type.
    """
    import pandas as pd

    for column in frame.columns:
        if column.endswith("_GMT"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    frame = frame.sort_values(by="INTERVALSTARTTIME_GMT")
    frame["INTERVALSTARTTIME_GMT"] = frame["INTERVALSTARTTIME_GMT"].dt.tz_convert("US/Pacific")
    frame["INTERVALENDTIME_GMT"] = frame["INTERVALENDTIME_GMT"].dt.tz_convert("US/Pacific")
    frame = frame.rename(
        columns={"INTERVALSTARTTIME_GMT": "Interval Start", "INTERVALENDTIME_GMT": "Interval End"}
    )
    frame.insert(0, "Time", frame["Interval Start"])
    wide = frame.pivot_table(
        index=["Time", "Interval Start", "Interval End", "NODE"],
        columns="LMP_TYPE",
        values="MW",
        aggfunc="first",
    )
    wide = wide.reset_index().rename(columns={"NODE": "Location", **PANDAS_COMPONENTS})
    wide["Market"] = "DAY_AHEAD_HOURLY"
    wide["Location Type"] = "Node"
    wide.loc[wide["Location"].str.endswith("-APND"), "Location Type"] = "AP Node"
    wide.loc[wide["Location"].isin(HUBS), "Location Type"] = "Trading Hub"
    wide.loc[wide["Location"].str.startswith("DLAP_"), "Location Type"] = "DLAP"
    return wide


def pandas_pivot(zip_path: Path) -> Any:
    """
    @return: What public clients do with an answer: every member read with
        pandas, then L{pandas_lmp}.
    """
    import pandas as pd

    with zipfile.ZipFile(zip_path) as archive:
        frame = pd.concat([pd.read_csv(archive.open(name)) for name in archive.namelist()])
    return pandas_lmp(frame)


def pandas_month(zips: list[Path]) -> Any:
    """
    @return: The hourly prices of the trading hubs over the days of
        C{zips}, answered from the zips with pandas as a client would: each
        day's answer read, its hubs' rows kept, then L{pandas_lmp}.
    """
    import pandas as pd

    days = []
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            frame = pd.concat([pd.read_csv(archive.open(name)) for name in archive.namelist()])
        days.append(pandas_lmp(frame[frame["NODE"].isin(HUBS)].copy()))
    return pd.concat(days, ignore_index=True)


def views_month(tables: Path, first: datetime.date, last: datetime.date) -> pa.Table:
    """
    @return: The hourly prices of the trading hubs from C{first} to
        C{last}, through the views, as an Arrow table.
    """
    import duckdb

    hubs = ", ".join(f"'{hub}'" for hub in HUBS)
    with duckdb.connect(str(tables / "harbour.duckdb"), read_only=True) as connection:
        return connection.sql(
            "SELECT interval_start_utc, interval_end_utc, market, location, location_type,"
            " lmp, energy, congestion, loss, ghg FROM lmp_dam_wide"
            f" WHERE trading_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"
            f" AND location IN ({hubs}) ORDER BY interval_start_utc, location"
        ).to_arrow_table()


def harbour_parse(zip_path: Path, tables: Path) -> dict[str, float]:
    """
    @return: The seconds and peak RSS in MB of L{parse_in_process} run in
        a process of its own.
    """
    shutil.rmtree(tables, ignore_errors=True)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.dataset", "--parse", str(zip_path), str(tables)],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return parsed


def measure(directory: Path, quick: bool) -> dict[str, float]:
    """
    @return: Every figure of the dataset benchmark.
    """
    nodes = 1_600 if quick else 16_000
    day = datetime.date(2025, 6, 1)
    zip_path = day_zip(directory / "day.zip", day, nodes)
    with zipfile.ZipFile(zip_path) as archive:
        member = archive.namelist()[0]
        rows = sum(1 for ignored in archive.open(member)) - 1
    figures: dict[str, float] = {"rows": rows, "zip_bytes": zip_path.stat().st_size}

    fresh = harbour_parse(zip_path, directory / "tables")
    figures["peak_rss_mb"] = fresh["peak_rss_mb"]
    figures["harbour_fresh_seconds"] = fresh["seconds"]
    figures["parquet_bytes"] = sum(p.stat().st_size for p in (directory / "tables").rglob("*.parquet"))

    def harbour_write() -> None:
        tables = directory / "warm-tables"
        shutil.rmtree(tables, ignore_errors=True)
        write_window(zip_path, tables, "lmp", "w", url="u", sha256="s")

    def arrow_read() -> None:
        with zipfile.ZipFile(zip_path) as archive:
            pacsv.read_csv(archive.open(member))

    best = in_turns(
        {"harbour": harbour_write, "pyarrow": arrow_read, "pandas": lambda: pandas_pivot(zip_path)}
    )
    figures["harbour_seconds"] = best["harbour"]
    figures["pyarrow_seconds"] = best["pyarrow"]
    figures["pandas_seconds"] = best["pandas"]

    month_nodes, month_days = (200, 7) if quick else (1_700, 31)
    month_dir = directory / "month"
    month_dir.mkdir()
    zips = [
        day_zip(
            month_dir / f"{day + datetime.timedelta(days=d)}.zip",
            day + datetime.timedelta(days=d),
            month_nodes,
        )
        for d in range(month_days)
    ]
    month_tables = directory / "month-tables"
    for path in zips:
        write_window(path, month_tables, "lmp-dam", path.stem, url="u", sha256="s")
    rebuild_views(month_tables, {"lmp-dam": "PRC_LMP"})
    last = day + datetime.timedelta(days=month_days - 1)
    answered = views_month(month_tables, day, last)
    if answered.num_rows != month_days * 24 * len(HUBS):
        raise RuntimeError(f"the views answered {answered.num_rows} rows for the month's hubs")

    figures["month_days"], figures["month_nodes"] = month_days, month_nodes
    figures["views_seconds"] = timed(lambda: views_month(month_tables, day, last), 5)
    figures["pandas_month_seconds"] = timed(lambda: pandas_month(zips), 2)

    xml = day_xml(nodes)
    xml_rows = nodes * 24

    def harbour_xml() -> None:
        for ignored in read_xml(io.BytesIO(xml), "day.xml"):
            pass

    def bare_expat() -> None:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.Parse(xml, True)

    def lxml_iterparse() -> None:
        from lxml import etree

        for ignored, element in etree.iterparse(io.BytesIO(xml), events=("end",)):
            if element.tag.endswith("REPORT_DATA"):
                element.clear()

    figures["xml_rows"] = xml_rows
    figures["xml_harbour_seconds"] = timed(harbour_xml, 2)
    figures["xml_expat_seconds"] = timed(bare_expat, 2)
    figures["xml_lxml_seconds"] = timed(lxml_iterparse, 2)
    return figures


def rows(figures: dict[str, float], quick: bool = False) -> list[dict[str, Any]]:
    """
    @param quick: Whether the figures are of C{--quick}'s smaller day and
        month: the targets of the parse's rate and peak memory and of the
        month's question are set for the full sizes, and fixed costs (a
        DuckDB connection, the Parquet files' writing) set those ratios at
        a tenth of them, so those rows are not judged.
    @return: The rows of C{make bench}'s table, as keyword arguments of its
        C{Table.row}.
    """

    def judged(target: str, met: bool) -> dict[str, Any]:
        """
        @return: A row's target and verdict, or none if C{quick}.
        """
        return {"target": "-", "met": None} if quick else {"target": target, "met": met}

    rate = figures["rows"] / figures["harbour_seconds"]
    arrow = figures["rows"] / figures["pyarrow_seconds"]
    pandas = figures["rows"] / figures["pandas_seconds"]
    size = figures["parquet_bytes"] / figures["zip_bytes"]
    month = figures["pandas_month_seconds"] / figures["views_seconds"]
    xml_rate = figures["xml_rows"] / figures["xml_harbour_seconds"]
    expat_rate = figures["xml_rows"] / figures["xml_expat_seconds"]
    lxml_rate = figures["xml_rows"] / figures["xml_lxml_seconds"]
    name = f"parse+write all-node day ({figures['rows']:,.0f} rows)"
    return [
        {
            "name": name,
            "value": f"{rate:,.0f} rows/s",
            **judged(">= 0.5x read_csv", rate >= 0.5 * arrow),
            "peer": f"{arrow:,.0f} rows/s pyarrow read_csv",
            "ratio": rate / arrow,
        },
        {
            "name": "",
            "value": "",
            **judged(">= 5x pandas", rate >= 5 * pandas),
            "peer": f"{pandas:,.0f} rows/s pandas as gridstatus",
            "ratio": rate / pandas,
        },
        {
            "name": "  peak RSS of the parse",
            "value": f"{figures['peak_rss_mb']:.0f} MB",
            **judged("<= 512 MB", figures["peak_rss_mb"] <= 512),
        },
        {
            "name": "  Parquet bytes / zip bytes",
            "value": f"{size:.2f}",
            "target": "<= 1.0",
            "met": size <= 1.0,
            "peer": f"{figures['zip_bytes'] / 1e6:.1f} MB zip",
        },
        {
            "name": f"hub prices, {figures['month_days']:.0f} days x {figures['month_nodes']:,.0f} nodes",
            "value": f"{figures['views_seconds'] * 1000:.0f} ms views",
            **judged(">= 50x pandas", month >= 50),
            "peer": f"{figures['pandas_month_seconds']:.1f} s pandas on zips",
            "ratio": month,
        },
        {
            "name": f"XML rows/s ({figures['xml_rows']:,.0f} REPORT_DATA)",
            "value": f"{xml_rate:,.0f} rows/s",
            "target": "-",
            "met": None,
            "peer": f"{expat_rate:,.0f} rows/s bare expat",
            "ratio": xml_rate / expat_rate,
        },
        {
            "name": "",
            "value": "",
            "target": "-",
            "met": None,
            "peer": f"{lxml_rate:,.0f} rows/s lxml iterparse",
            "ratio": xml_rate / lxml_rate,
        },
    ]


def main() -> None:
    """
    Print the figures as one JSON line (or, with C{--parse}, parse one zip
    and print its time and peak memory).
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the nodes, a week of days")
    parser.add_argument("--table", action="store_true", help="print rows as text too")
    parser.add_argument("--parse", nargs=2, type=Path, metavar=("ZIP", "TABLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parse:
        print(json.dumps(parse_in_process(*args.parse)))
        return
    directory = Path(tempfile.mkdtemp(prefix="hb-bench-dataset-"))
    try:
        figures = measure(directory, args.quick)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(figures))
    if args.table:
        for row in rows(figures):
            print(row)


if __name__ == "__main__":
    main()
