"""
C{<tables_dir>/harbour.duckdb}: a DuckDB file holding only views over the
Parquet files, so that C{duckdb data/tables/harbour.duckdb} works with
nothing else.

One view per report, named after it with C{-} and C{.} as C{_}, reads every
file of the report as it is when queried.  A report without any Parquet
file yet gets no view (DuckDB refuses a view over no file); rebuild the
views when a report gets its first file.  The reports of the LMP family get
a second view, C{<view>_wide}: one row per interval and location with the
price components as columns.  It reads the columns its report's files had
when it was made (L{WIDE_SOURCES}): one of those that no file has any
more reads as nulls; one that appears since needs the views rebuilt.
A report OASIS serves only current data of (C{history = false} in the
catalogue: C{PRC_CURR_LMP}...) shows each row once, as its newest
posting: every window fetched once it is over holds the interval current
then, so windows fetched together (at start, after an outage) hold the
same rows, and OASIS may post an interval again with other values.
Names are DuckDB's, so case-insensitive: of reports whose views would
share a name, the first in sorted order has it and the others go without.
A report with a file DuckDB cannot read goes without views too, and the
others keep theirs; a file removed as DuckDB reads it (its window
rewritten over fewer days) is no such file: the report's views are tried
again over its files in place, a few times (L{ATTEMPTS}).

The file's views read absolute paths; L{open_views} makes the same views
afresh, in memory, over the files of a directory wherever it is now, as
they are then, or over a worker's own tables, which have no views file: a
report the record of the views does not name gets its wide view by the
request its newest file answers.  Given a directory of the caller's own on
the tables' file system, its views read hard links of the files listed,
which a revision's commit, replacing a file by a rename, cannot change
while DuckDB reads them (a footer read from one revision and rows from
the next fail with errors that say nothing of it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TypeAlias
from urllib.parse import parse_qs, urlsplit

import attr
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from harbour.dataset.inventory import parquet_files, reports_in
from harbour.dataset.naming import view_name, view_names
from harbour.dataset.write import DOWNLOADED
from harbour.oasis.catalogue import CatalogueEntry, load_catalogue
from harbour.processes import process_alive

#: The database file's name inside the tables directory.
DATABASE = "harbour.duckdb"

#: Beside it: each report's OASIS queryname or groupid, as the views were
#: built with, so that views made afresh over a moved or copied directory
#: know the LMP family's.
REPORTS_FILE = "harbour.views.json"

#: How many times a report's views are tried, its files listed afresh each
#: time, while a file listed before goes (a window rewritten over fewer
#: days removes its old days' files as DuckDB reads their footers).
ATTEMPTS = 3

#: A file's device, inode and modification time: a file replaced by a
#: rename (a revision's commit) does not keep them.
Identity: TypeAlias = tuple[int, int, int]

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


#: The columns a wide view reads its price component from, first found
#: first: C{LMP_TYPE} in CSV answers, the data item in XML ones.
TYPE_SOURCES = ("lmp_type",)
ITEM_SOURCES = ("data_item", "xml_data_item")
#: Where it reads the market, the location and the price.
MARKET_SOURCES = ("market_run_id", "mkt_type")
LOCATION_SOURCES = ("node", "resource_name")
LOCATION_FALLBACK = "pnode_resmrid"
VALUE_SOURCES = ("mw", "value", "prc")

#: Every column a wide view may read besides those harbour adds.
WIDE_SOURCES = frozenset(
    (*TYPE_SOURCES, *ITEM_SOURCES, *MARKET_SOURCES, *LOCATION_SOURCES, LOCATION_FALLBACK, *VALUE_SOURCES)
)


def _catalogue_entry(query: str) -> CatalogueEntry | None:
    """
    @return: The catalogue's entry of a report or group named C{query}.
    """
    catalogue = load_catalogue()
    return catalogue.entry(queryname=query) or catalogue.entry(groupid=query)


def answers_current_only(tables_dir: Path, report: str, query: str) -> bool:
    """
    @param query: C{report}'s OASIS queryname or groupid.
    @return: Whether OASIS serves only its current interval or day, so
        that windows fetched at about the same time hold the same rows,
        and its view shows each once.  Where its parameters decide (see
        L{harbour.oasis.catalogue.CatalogueEntry.history_varies}), they
        are those of the request its newest file answers, as its footer
        records it: the files say what was asked, whatever the
        configuration says now.
    """
    entry = _catalogue_entry(query)
    if entry is None:
        return False
    return not entry.history_for(answered_params(tables_dir, report) if entry.history_varies else {})


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read(tables_dir: Path, report: str, files: Collection[Path] | None) -> str:
    """
    @return: The files of C{report} as a table function is to be given
        them (see L{source}).
    """
    if files is None:
        return _quoted((tables_dir.resolve() / report / "*" / "*.parquet").as_posix())
    return f"[{', '.join(_quoted(file.as_posix()) for file in sorted(files))}]"


def source(tables_dir: Path, report: str, files: Collection[Path] | None = None) -> str:
    """
    @param files: If given, the files to read, as DuckDB is to name them
        (see L{confine}); else every file of C{report} when queried.
    @return: The table function reading the files of C{report}.
    """
    return f"read_parquet({_read(tables_dir, report, files)}, hive_partitioning = true, union_by_name = true)"


#: The columns L{newest_sql} adds to a report's rows, and leaves out of its
#: view: the file a row is read from, when its zip was downloaded, and
#: its rank among the postings of its row.
FILE_COLUMN = "harbour_file"
POSTED_COLUMN = "harbour_posted"
RANK_COLUMN = "harbour_rank"

#: The types of the columns holding a row's values (L{harbour.dataset.columns}
#: types them C{float64}); a row is known by all its other columns.
VALUE_TYPES = frozenset({"DOUBLE", "FLOAT"})

#: The columns numbering a row within its answer rather than saying what
#: it is: OASIS's CSV C{GROUP} counts the answer's series (location and
#: item, day after day) from its first, so one interval fetched by two
#: windows starting on different days has two numbers.  They are not part
#: of what a row is known by.  (C{POS}, an item's place in OASIS's own
#: display, is the same in every answer, and typed as a value anyway.)
ANSWER_POSITION_COLUMNS = frozenset({"group"})


def newest_sql(
    tables_dir: Path, report: str, files: Collection[Path] | None, columns: Mapping[str, str]
) -> str:
    """
    @param files: As for L{source}.
    @param columns: The columns of C{report}'s files, by name, to their
        DuckDB types.
    @return: The query of the view of a report OASIS serves only current
        data of: of the rows alike in every column but their values and
        their place in their answer (L{ANSWER_POSITION_COLUMNS}; one
        interval of one location and item, fetched by several windows, or
        posted again with another value), the one whose file's zip was
        downloaded last (L{harbour.dataset.write.DOWNLOADED}; a file
        written before it was recorded counts as older, and of two such
        the later in name wins).
    """
    keys = [
        name
        for name, kind in columns.items()
        if kind not in VALUE_TYPES and name not in ANSWER_POSITION_COLUMNS
    ]
    read = _read(tables_dir, report, files)
    options = f"hive_partitioning = true, union_by_name = true, filename = {_quoted(FILE_COLUMN)}"
    rows = f"read_parquet({read}, {options})"
    # Every column partitioned by, as nulls, so that the view still reads
    # once no file has one of them; DuckDB still pushes a filter on one of
    # them down to the files.
    nulls = ", ".join(f"NULL::{columns[name]} AS {_identifier(name)}" for name in keys)
    rows = f"(SELECT * FROM {rows} UNION ALL BY NAME SELECT {nulls} WHERE false)"
    posted = (
        f"(SELECT file_name, max(decode(value)) AS {POSTED_COLUMN} FROM parquet_kv_metadata({read})"
        f" WHERE key = {_quoted(DOWNLOADED)}::BLOB GROUP BY file_name)"
    )
    partition = ", ".join(f"found.{_identifier(name)}" for name in keys)
    return (
        f"SELECT * EXCLUDE ({FILE_COLUMN}, {POSTED_COLUMN}, {RANK_COLUMN}) FROM (\n"
        f"  SELECT found.*, posted.{POSTED_COLUMN}, row_number() OVER (PARTITION BY {partition}\n"
        f"    ORDER BY posted.{POSTED_COLUMN} DESC NULLS LAST, found.{FILE_COLUMN} DESC) AS {RANK_COLUMN}\n"
        f"  FROM {rows} AS found\n"
        f"  LEFT JOIN {posted} AS posted ON found.{FILE_COLUMN} = posted.file_name)\n"
        f"WHERE {RANK_COLUMN} = 1"
    )


def report_files(tables_dir: Path, report: str) -> frozenset[Path]:
    """
    @return: The Parquet files of C{report}, as its view reads them now
        (see L{parquet_files}).
    """
    return frozenset(file for ignored, file in parquet_files(tables_dir / report))


def wide_sql(long_view: str, columns: Mapping[str, str]) -> str:
    """
    @param long_view: The report's view.
    @param columns: Its columns' DuckDB types, by name.
    @return: The query of its wide view: long rows pivoted on the price
        component, whichever of the CSV and XML columns the answers have.
        The columns it reads are given as nulls too, so that the view
        still reads once no file has one of them (the last file of a
        report that answered in XML rewritten from CSV).
    """
    read: dict[str, str] = {}

    def first(*names: str) -> str:
        found = [n for n in names if n in columns]
        read.update((n, columns[n]) for n in found)
        if not found:
            return "NULL"
        return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

    type_column, item_column = first(*TYPE_SOURCES), first(*ITEM_SOURCES)
    component = f"coalesce({type_column}, CASE {item_column} "
    component += " ".join(f"WHEN '{item}' THEN '{kind}'" for kind, item in COMPONENTS.values())
    component += " END)"
    market = first(*MARKET_SOURCES)
    market_case = f"CASE {market} " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in MARKETS.items())
    market_case += f" ELSE {market} END"
    # PNODE_RESMRID repeats NODE in CSV answers: coalescing it too would
    # hide NODE from DuckDB's row group statistics, so that a query for a
    # few locations would read every row.
    location = (
        first(*LOCATION_SOURCES) if columns.keys() & set(LOCATION_SOURCES) else first(LOCATION_FALLBACK)
    )
    value = first(*VALUE_SOURCES)
    pivots = ",\n  ".join(
        f"max(price) FILTER (WHERE component = '{kind}') AS {name}" for name, (kind, _) in COMPONENTS.items()
    )
    rows = _identifier(long_view)
    if read:
        # An empty relation of every column read, by name: DuckDB still
        # pushes a filter on the location down to the files' statistics.
        nulls = ", ".join(f"NULL::{kind} AS {_identifier(name)}" for name, kind in sorted(read.items()))
        rows = f"(SELECT * FROM {rows} UNION ALL BY NAME SELECT {nulls} WHERE false)"
    return (
        "SELECT interval_start_utc, interval_end_utc, market, location,\n"
        "  CASE WHEN location LIKE 'TH\\_%' ESCAPE '\\' THEN 'Trading Hub'\n"
        "       WHEN location LIKE 'DLAP\\_%' ESCAPE '\\' THEN 'DLAP' ELSE 'Node' END AS location_type,\n"
        f"  {pivots},\n  trading_date\n"
        f"FROM (SELECT interval_start_utc, interval_end_utc, {market_case} AS market,\n"
        f"  {location} AS location, {component} AS component, {value} AS price, trading_date\n"
        f"  FROM {rows})\n"
        "GROUP BY interval_start_utc, interval_end_utc, market, location, trading_date"
    )


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Clash:
    """
    A report left without views: one of its views' names is taken, in
    DuckDB's case-insensitive names, by a report before it in sorted order.

    @ivar report: The report left without views.
    @ivar view: The name it would have had.
    @ivar holder: The report whose view has that name.
    """

    report: str
    view: str
    holder: str

    def __str__(self) -> str:
        return f"report {self.report!r} has no view: {self.view} is a view of report {self.holder!r}"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Unreadable:
    """
    A report left without views: DuckDB cannot read one of its files (a
    file damaged on disk; reparsing the report writes its files again).

    @ivar report: The report left without views.
    @ivar error: What DuckDB said, naming the file.
    """

    report: str
    error: str

    def __str__(self) -> str:
        return f"report {self.report!r} has no view: {self.error}"


#: Why a report has no view.
Skipped: TypeAlias = Clash | Unreadable


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RebuiltViews:
    """
    What L{rebuild_views} wrote.

    @ivar path: The views file.
    @ivar skipped: The reports left without views, and why.
    @ivar wide_sources: As L{MadeViews.wide_sources}.
    @ivar emptied: As L{MadeViews.emptied}.
    """

    path: Path
    skipped: tuple[Skipped, ...]
    wide_sources: Mapping[str, frozenset[str]]
    emptied: frozenset[str] = frozenset()


@attr.s(frozen=True, slots=True, auto_attribs=True)
class MadeViews:
    """
    What L{create_views} made.

    @ivar skipped: The reports left without views, and why.
    @ivar wide_sources: Each report given a wide view to the columns of
        L{WIDE_SOURCES} its files had: a file bringing another needs the
        views made again.
    @ivar emptied: The reports whose every file went while their views
        were made: they have none, as a report without files.
    @ivar files: The paths the views read, if made over the files listed
        as they were made (see L{create_views}): hard links of the files
        in the snapshot directory, or the files themselves where no link
        could be made.
    @ivar in_place: Of the files listed that the views read in place
        rather than by a link, each one's identity as listed (L{None} if
        it was gone already): one that no longer has it was removed or
        replaced since.
    """

    skipped: tuple[Skipped, ...]
    wide_sources: Mapping[str, frozenset[str]]
    emptied: frozenset[str] = frozenset()
    files: frozenset[Path] = frozenset()
    in_place: Mapping[Path, Identity | None] = attr.Factory(dict)


def identity(path: Path) -> Identity | None:
    """
    @return: C{path}'s identity (L{Identity}), or L{None} if it is gone
        or cannot be read.
    """
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_mtime_ns)


def linked(
    files: Collection[Path], tables_dir: Path, snapshot: Path
) -> tuple[frozenset[Path], dict[Path, Identity | None]]:
    """
    Hard-link each of C{files} into C{snapshot}, at its path under
    C{tables_dir}, so that its day still reads from its directory's name:
    a link keeps the file it was made of, whatever is renamed over the
    file's own path since.

    @param snapshot: A directory of the caller's own, on the tables' file
        system for the links to be made; where one cannot be (another file
        system, a file the caller does not own where hard links are
        protected, a file gone), the file is read in place.
    @return: The paths to read the files by, and the identities of those
        read in place, as they are now.
    """
    read: set[Path] = set()
    in_place: dict[Path, Identity | None] = {}
    for file in files:
        link = snapshot / file.relative_to(tables_dir)
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            os.link(file, link)
        except FileExistsError:
            pass  # linked as the views were tried before: the file then
        except OSError:
            in_place[file] = identity(file)
            read.add(file)
            continue
        read.add(link)
    return frozenset(read), in_place


def create_views(
    connection: duckdb.DuckDBPyConnection,
    tables_dir: Path,
    reports: Mapping[str, str],
    wanted: Collection[str] | None = None,
    *,
    listed: bool = False,
    snapshot: Path | None = None,
) -> MadeViews:
    """
    Create the views of C{reports} over the Parquet files in C{tables_dir}:
    one per report with files, and a wide one per report of the LMP
    family.  A report whose view would take a name already taken (the
    first in sorted order wins), or one with a file DuckDB cannot read, is
    left without views rather than failing the others.  A file that went
    while DuckDB read the files is not unreadable: the report's views are
    tried again, up to L{ATTEMPTS} times, over the files then in place (if
    none, the report has no view, as one without files).

    @param reports: Each report's name to its OASIS queryname or groupid
        (empty if unknown: no wide view).
    @param wanted: If given, only the reports with a view of one of these
        names (in any case) get theirs: making a view reads the footer of
        every file it covers.
    @param listed: Whether the views read the files listed as they are
        made, by their paths under C{tables_dir}, rather than those in
        place when they are queried: a connection that may read only them
        (L{confine}) cannot list a directory.
    @param snapshot: If given, with C{listed}, the views read hard links
        of the files listed, made in this directory (see L{linked}).
    @return: What was made, and what was not.
    """
    holders: dict[str, str] = {}
    skipped: list[Skipped] = []
    wide_sources: dict[str, frozenset[str]] = {}
    emptied: set[str] = set()
    read: set[Path] = set()
    in_place: dict[Path, Identity | None] = {}
    asked = None if wanted is None else {name.lower() for name in wanted}
    for report, query in sorted(reports.items()):
        names = view_names(report, query)
        name, wide = names[0], len(names) > 1
        if asked is not None and not asked & {n.lower() for n in names}:
            continue
        files = report_files(tables_dir, report)
        if not files:
            continue
        # Rows alike but for their values are one interval fetched by
        # several windows, or posted again with other values: the newest
        # posting is the one shown (L{newest_sql}).
        current = bool(query) and answers_current_only(tables_dir, report, query)
        taken = [n for n in names if n.lower() in holders]
        if taken:
            skipped.append(Clash(report, taken[0], holders[taken[0].lower()]))
            continue
        for attempt in range(1, ATTEMPTS + 1):
            paths: frozenset[Path] = files
            kept: dict[Path, Identity | None] = {}
            if listed and snapshot is not None:
                paths, kept = linked(files, tables_dir, snapshot)
            try:
                table = source(tables_dir, report, paths) if listed else source(tables_dir, report)
                body = f"SELECT * FROM {table}"
                if current:
                    described = connection.execute(f"DESCRIBE {body}").fetchall()
                    columns = {row[0]: row[1] for row in described}
                    body = newest_sql(tables_dir, report, paths if listed else None, columns)
                connection.execute(f"CREATE VIEW {_identifier(name)} AS {body}")
                if wide:
                    described = connection.execute(f"DESCRIBE {_identifier(name)}").fetchall()
                    columns = {row[0]: row[1] for row in described}
                    connection.execute(
                        f"CREATE VIEW {_identifier(name + '_wide')} AS {wide_sql(name, columns)}"
                    )
                    wide_sources[report] = frozenset(columns.keys() & WIDE_SOURCES)
            except duckdb.Error as e:
                for made in names:
                    connection.execute(f"DROP VIEW IF EXISTS {_identifier(made)}")
                before, files = files, report_files(tables_dir, report)
                # A file gone since the listing was removed by a rewrite of
                # its window, not damaged: the files in place make the view.
                if before - files and files and attempt < ATTEMPTS:
                    continue
                if files:
                    said = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    if snapshot is not None:
                        said = said.replace(snapshot.as_posix(), tables_dir.as_posix())
                    skipped.append(Unreadable(report, said))
                else:
                    emptied.add(report)
                break
            holders.update(dict.fromkeys((n.lower() for n in names), report))
            if listed:
                read |= paths
                in_place.update(kept)
            break
    return MadeViews(tuple(skipped), wide_sources, frozenset(emptied), frozenset(read), in_place)


def rebuild_views(tables_dir: Path, reports: Mapping[str, str]) -> RebuiltViews:
    """
    (Re)write the views file, replacing it whole, and beside it
    L{REPORTS_FILE}, the reports it was built with.  Blocks: run it in a
    thread.

    @param reports: Each report's name to its OASIS queryname or groupid.
    @return: The views file, the reports left without views, and why (the
        caller logs them), and what the wide views read.
    """
    tables_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(tables_dir)
    final = tables_dir / DATABASE
    temporary = tables_dir / f".{DATABASE}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    connection = duckdb.connect(str(temporary))
    try:
        made = create_views(connection, tables_dir, reports)
        connection.execute("CHECKPOINT")
    except BaseException:
        connection.close()
        temporary.unlink(missing_ok=True)
        raise
    connection.close()
    _write_reports(tables_dir, reports)
    temporary.replace(final)
    return RebuiltViews(final, made.skipped, made.wide_sources, made.emptied)


def remove_stale_temporaries(tables_dir: Path) -> int:
    """
    Remove the temporary files (views and their reports) of rebuilds that died (their process,
    named in the file's name, is gone from this host) or that this process
    left.

    @return: How many were removed.
    """
    removed = 0
    names = "|".join(re.escape(name) for name in (DATABASE, REPORTS_FILE))
    for path in tables_dir.glob(".harbour.*.tmp*"):
        match = re.fullmatch(rf"\.(?:{names})\.(\d+)\.tmp.*", path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not process_alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _write_reports(tables_dir: Path, reports: Mapping[str, str]) -> None:
    """
    Record, whole or not at all, the reports the views were built with.
    """
    temporary = tables_dir / f".{REPORTS_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({"reports": dict(sorted(reports.items()))}, indent=1) + "\n")
    temporary.replace(tables_dir / REPORTS_FILE)


def recorded_reports(tables_dir: Path) -> dict[str, str]:
    """
    @return: Each report's name to its OASIS queryname or groupid, as the
        views file was last built with; empty if that record is missing or
        unreadable.
    """
    try:
        recorded = json.loads((tables_dir / REPORTS_FILE).read_text())["reports"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {str(report): str(query) for report, query in recorded.items()}


def answered_params(tables_dir: Path, report: str) -> dict[str, str]:
    """
    @return: The query parameters of the request that the newest file of
        C{report} answers, as its footer records the request's URL (the
        first value of each); empty if there is no such file, or it
        records none.
    """
    files = sorted(report_files(tables_dir, report))
    if not files:
        return {}
    try:
        metadata = pq.read_metadata(files[-1]).metadata or {}
    except (OSError, pa.ArrowException):
        return {}  # damaged or gone: its view says so, if it has to
    url = metadata.get(b"harbour.url", b"").decode(errors="replace")
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def answered_query(tables_dir: Path, report: str) -> str:
    """
    @return: The OASIS queryname or groupid of the request that the newest
        file of C{report} answers, as its footer records the request's URL;
        empty if there is no such file, or it records none.
    """
    parameters = answered_params(tables_dir, report)
    for key in ("queryname", "groupid"):
        if parameters.get(key):
            return parameters[key]
    return ""


def views_named(sql: str) -> set[str] | None:
    """
    @return: The names C{sql} reads tables or views by, or L{None} if DuckDB
        cannot tell without the views (so all are to be made).
    """
    try:
        with duckdb.connect(":memory:") as connection:
            return set(connection.get_table_names(sql))
    except duckdb.Error:
        return None


def open_views(
    tables_dir: Path, wanted: Collection[str] | None = None, snapshot: Path | None = None
) -> tuple[duckdb.DuckDBPyConnection, MadeViews]:
    """
    Open an in-memory database with the views over the files of
    C{tables_dir} as they are now, wherever the directory was moved or
    copied: the views file's own paths are absolute.  The views read the
    files listed as they are made (see L{confine}).  Reports get a wide
    view if they are of the LMP family, as the views file was last built
    knowing them, or else as the request their newest file answers says
    (a worker keeps no views file).

    @param wanted: If given, and naming at least one view, only the views
        of the reports it names are made (see L{create_views}); else all.
    @param snapshot: If given, a directory of the caller's own, not yet
        made, where the views' hard links of the files are made (see
        L{linked}): the views read the files as they were listed, until
        the caller removes it.
    @return: The connection, and what was made: the reports left without
        views, and the files the views read.
    @raise FileNotFoundError: If there is no Parquet file yet.
    """
    known = recorded_reports(tables_dir)
    reports = {
        report: known.get(report) or answered_query(tables_dir, report) for report in reports_in(tables_dir)
    }
    if not any(any(parquet_files(tables_dir / report)) for report in reports):
        raise FileNotFoundError(
            f"{tables_dir}: no tables yet (the daemon writes them once it has parsed a file)"
        )
    if wanted is not None:
        names = {view_name(report).lower() for report in reports}
        names |= {f"{name}_wide" for name in names}
        if not names & {name.lower() for name in wanted}:
            wanted = None
    connection = duckdb.connect(":memory:")
    try:
        # Resolved, as the paths L{confine} allows: DuckDB compares them.
        made = create_views(
            connection,
            tables_dir.resolve(),
            reports,
            wanted,
            listed=True,
            snapshot=None if snapshot is None else snapshot.resolve(),
        )
    except BaseException:
        connection.close()
        raise
    return connection, made


def confine(connection: duckdb.DuckDBPyConnection, readable: Collection[Path], spill: Path) -> None:
    """
    Keep a connection L{open_views} made to reading the files its views
    read from now on: no other file can be read or written, the views
    file and the record of its reports among them, no extension loaded
    and no setting changed: the settings the caller wants (a time zone)
    are made before.

    DuckDB has no way to allow a file to be read but not written: the
    files are allowed one by one, so that no file can be made in the
    tables' directories, where the views would read it, nor one of them
    replaced through a temporary beside it.  Only a statement writing over
    one of them in place (C{COPY} with C{USE_TMP_FILE false}) could, which
    is why C{harbourctl query} runs none.

    @param readable: The files the views read (L{MadeViews.files}).
    @param spill: A directory of the caller's own, which no one else
        reads, where DuckDB may write what does not fit in memory; it is
        otherwise C{.tmp} in the working directory, which DuckDB would let
        the connection write as well as read.
    """
    paths = [_quoted(path.as_posix()) for path in sorted(readable)]
    connection.execute(f"SET allowed_paths = [{', '.join(paths)}]")
    connection.execute("SET allowed_directories = []")
    connection.execute(f"SET temp_directory = {_quoted(spill.as_posix())}")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def connect(tables_dir: Path) -> duckdb.DuckDBPyConnection:
    """
    @return: A read-only connection to the views.
    @raise FileNotFoundError: If the views file does not exist yet.
    """
    path = tables_dir / DATABASE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no views yet (the daemon builds them once it has parsed a file)")
    return duckdb.connect(str(path), read_only=True)
