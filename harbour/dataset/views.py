"""
C{<tables_dir>/harbour.duckdb}: a DuckDB file holding only views over the
Parquet files, so that C{duckdb data/tables/harbour.duckdb} works with
nothing else.

One view per report, named after it with C{-} and C{.} as C{_}, reads every
file of the report as it is when queried.  A report without any Parquet
file yet gets no view (DuckDB refuses a view over no file); rebuild the
views when a report gets its first file.  The reports of the LMP family get
a second view, C{<view>_wide}: one row per interval and location with the
price components as columns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import duckdb

from harbour.oasis.catalogue import load_catalogue

#: The database file's name inside the tables directory.
DATABASE = "harbour.duckdb"

#: The reports whose answers are locational marginal prices.
LMP_REPORTS = frozenset({"PRC_LMP", "PRC_INTVL_LMP", "PRC_RTPD_LMP", "PRC_HASP_LMP"})

#: The price component of a row, by C{LMP_TYPE} or by data item.
COMPONENTS = {
    "lmp": ("LMP", "LMP_PRC"),
    "energy": ("MCE", "LMP_ENE_PRC"),
    "congestion": ("MCC", "LMP_CONG_PRC"),
    "loss": ("MCL", "LMP_LOSS_PRC"),
    "ghg": ("MGHG", "LMP_GHG_PRC"),
}

#: OASIS's markets by the names analysts know from gridstatus.
MARKETS = {
    "DAM": "DAY_AHEAD_HOURLY",
    "RTM": "REAL_TIME_5_MIN",
    "RTPD": "REAL_TIME_15_MIN",
    "HASP": "REAL_TIME_HOURLY",
}


def view_name(report: str) -> str:
    """
    @return: The name of C{report}'s view.
    """
    return re.sub(r"[-.]", "_", report)


def is_lmp(query: str) -> bool:
    """
    @param query: A report's OASIS queryname or groupid.
    @return: Whether its answers are LMPs (so that it gets a wide view).
    """
    if query in LMP_REPORTS:
        return True
    group = load_catalogue().entry(groupid=query)
    return group is not None and any(r in LMP_REPORTS for r in group.reports)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source(tables_dir: Path, report: str) -> str:
    """
    @return: The table function reading every file of C{report}.
    """
    pattern = (tables_dir.resolve() / report / "*" / "*.parquet").as_posix()
    return f"read_parquet({_quoted(pattern)}, hive_partitioning = true, union_by_name = true)"


def wide_sql(long_view: str, columns: set[str]) -> str:
    """
    @param long_view: The report's view.
    @param columns: Its columns.
    @return: The query of its wide view: long rows pivoted on the price
        component, whichever of the CSV and XML columns the answers have.
    """

    def first(*names: str) -> str:
        present = [n for n in names if n in columns]
        if not present:
            return "NULL"
        return present[0] if len(present) == 1 else f"coalesce({', '.join(present)})"

    type_column, item_column = first("lmp_type"), first("data_item", "xml_data_item")
    component = f"coalesce({type_column}, CASE {item_column} "
    component += " ".join(f"WHEN '{item}' THEN '{kind}'" for kind, item in COMPONENTS.values())
    component += " END)"
    market = first("market_run_id", "mkt_type")
    market_case = f"CASE {market} " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in MARKETS.items())
    market_case += f" ELSE {market} END"
    # PNODE_RESMRID repeats NODE in CSV answers: coalescing it too would
    # hide NODE from DuckDB's row group statistics, so that a query for a
    # few locations would read every row.
    location = (
        first("node", "resource_name") if {"node", "resource_name"} & columns else first("pnode_resmrid")
    )
    value = first("mw", "value", "prc")
    pivots = ",\n  ".join(
        f"max(price) FILTER (WHERE component = '{kind}') AS {name}" for name, (kind, _) in COMPONENTS.items()
    )
    return (
        "SELECT interval_start_utc, interval_end_utc, market, location,\n"
        "  CASE WHEN location LIKE 'TH\\_%' ESCAPE '\\' THEN 'Trading Hub'\n"
        "       WHEN location LIKE 'DLAP\\_%' ESCAPE '\\' THEN 'DLAP' ELSE 'Node' END AS location_type,\n"
        f"  {pivots},\n  trading_date\n"
        f"FROM (SELECT interval_start_utc, interval_end_utc, {market_case} AS market,\n"
        f"  {location} AS location, {component} AS component, {value} AS price, trading_date\n"
        f"  FROM {_identifier(long_view)})\n"
        "GROUP BY interval_start_utc, interval_end_utc, market, location, trading_date"
    )


def rebuild_views(tables_dir: Path, reports: Mapping[str, str]) -> Path:
    """
    (Re)write the views file, replacing it whole.  Blocks: run it in a
    thread.

    @param reports: Each report's name to its OASIS queryname or groupid.
    @return: The views file.
    """
    tables_dir.mkdir(parents=True, exist_ok=True)
    final = tables_dir / DATABASE
    temporary = tables_dir / f".{DATABASE}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    connection = duckdb.connect(str(temporary))
    try:
        for report, query in sorted(reports.items()):
            if not any((tables_dir / report).glob("*/*.parquet")):
                continue
            name = view_name(report)
            connection.execute(
                f"CREATE VIEW {_identifier(name)} AS SELECT * FROM {source(tables_dir, report)}"
            )
            if is_lmp(query):
                columns = {row[0] for row in connection.execute(f"DESCRIBE {_identifier(name)}").fetchall()}
                connection.execute(f"CREATE VIEW {_identifier(name + '_wide')} AS {wide_sql(name, columns)}")
        connection.execute("CHECKPOINT")
    except BaseException:
        connection.close()
        temporary.unlink(missing_ok=True)
        raise
    connection.close()
    temporary.replace(final)
    return final


def connect(tables_dir: Path) -> duckdb.DuckDBPyConnection:
    """
    @return: A read-only connection to the views.
    @raise FileNotFoundError: If the views file does not exist yet.
    """
    path = tables_dir / DATABASE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no views yet (the daemon builds them once it has parsed a file)")
    return duckdb.connect(str(path), read_only=True)
