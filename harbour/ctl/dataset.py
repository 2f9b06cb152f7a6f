"""
The offline commands of C{harbourctl} over the dataset: C{query} (SQL over
the views) and C{tables} (what the Parquet files hold, and C{--check}
against the zips).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import fcntl
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.table import Table

from harbour.ctl.codes import FAILED, OK, USAGE
from harbour.ctl.offline import _configuration
from harbour.ctl.output import DataConsole, discard_output
from harbour.dataset.inventory import Mismatch, check, report_tables, reports_in, spans
from harbour.dataset.views import Skipped, confine, identity, open_views, views_named
from harbour.oasis.requests import market_today, report_range
from harbour.processes import process_alive

#: The commands this module handles.
COMMANDS = ("query", "tables")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """
    Add C{query} and C{tables} to C{harbourctl}'s subcommands.
    """
    query = sub.add_parser("query", help="run SQL over the dataset's views, offline")
    query.add_argument("sql", metavar="SQL")
    query.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="the data directory (default data)"
    )
    form = query.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--json", action="store_true", help="print JSON lines, one object per row")
    form.add_argument("--parquet", type=Path, metavar="FILE", help="write the result to a Parquet file")

    tables = sub.add_parser("tables", help="rows, files and days of each report's Parquet files, offline")
    tables.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="the data directory (default data)"
    )
    tables.add_argument("--config-dir", type=Path, help="count missing days over the configured ranges")
    tables.add_argument("--check", action="store_true", help="compare each file's sha256 with its zip")
    tables.add_argument("--today", type=datetime.date.fromisoformat, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, out: TextIO, err: TextIO = sys.stderr) -> int:
    """
    Run C{query} or C{tables}.  A reader that goes away early (C{| head})
    ends either quietly, with the status of every other command whose
    reader goes (see L{harbour.ctl.main}).  A file that cannot be read
    (a disk failing, a directory the user may not read) is said in a
    line.

    @return: The exit code: L{FAILED} if the reader went away or a file
        cannot be read.
    """
    try:
        if args.command == "query":
            return query(args, out, err)
        return tables(args, out, err)
    except BrokenPipeError:
        discard_output(out)
        return FAILED
    except OSError as e:
        print(f"harbourctl: {e}", file=err)
        return FAILED


#: What C{query} says of SQL with nothing to run.
NO_STATEMENT = "harbourctl: no SQL statement to run"


def query(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """
    Run C{args.sql} over views made afresh over C{args.data_dir}'s tables,
    wherever the directory was moved or copied, and print or write its
    result.

    @return: L{OK}, L{USAGE} without a statement, for one that does not
        only read (L{READING}), for a change of DuckDB's settings or for
        a Parquet file to be written among the tables (L{_in_tables}), or
        L{FAILED} without tables or for an SQL error.
    """
    statement = _statement(args.sql)
    if not statement:
        print(NO_STATEMENT, file=err)
        return USAGE
    refused = _not_reading(statement)
    if refused is not None:
        print(f"harbourctl: query only reads the dataset: it does not run {refused} statements", file=err)
        return USAGE
    try:
        inside = args.parquet is not None and _in_tables(args.parquet, args.data_dir / "tables")
    except OSError as e:
        # Its directory missing, not one, or a loop of links: said before
        # the query runs, rather than after.
        print(f"harbourctl: --parquet {args.parquet}: {e.strerror or e}", file=err)
        return FAILED
    if inside:
        print(
            f"harbourctl: --parquet {args.parquet}: inside the dataset's tables directory"
            f" {args.data_dir / 'tables'}, where the views would read it as the dataset's own:"
            " write it elsewhere",
            file=err,
        )
        return USAGE
    warned: set[Skipped] = set()
    for run in range(1, RUNS + 1):
        code = _query_once(args, statement, out, err, warned, again=run < RUNS)
        if code is not None:
            return code
    raise AssertionError("the last run is never run again")


def _in_tables(target: Path, tables_dir: Path) -> bool:
    """
    @param target: Where C{--parquet} is to write (see L{_destination}).
    @return: Whether C{target} is in C{tables_dir} or under it, links
        followed: a file there would be read by the views (a C{part-*.parquet}
        in a day's directory adds its rows to the day's), or replace the
        views file.
    @raise OSError: If C{target}'s directory cannot be found.
    """
    # Not strict: a data directory without tables (or a loop) is said
    # when the views are made.
    return _destination(target).is_relative_to(os.path.realpath(tables_dir))


def _destination(target: Path) -> Path:
    """
    @return: Where C{--parquet} writes C{target}: in its directory as the
        shell finds it (each link followed before a C{..} after it is
        taken), under its own name.  The file's temporary goes beside it,
        then is renamed over it (over a link of that name, not the file
        the link names).
    @raise OSError: If its directory cannot be found: missing, or a loop
        of links.
    """
    head, name = os.path.split(target)
    if name == "..":
        # A directory, where no file can be written: said as the write fails.
        return Path(os.path.realpath(target, strict=True))
    return Path(os.path.realpath(head or os.curdir, strict=True), name)


#: How many times C{query} runs its SQL over views made afresh when a file
#: its views read in place was removed or replaced meanwhile (a revision's
#: commit removing or rewriting a day read the moment before): each run
#: reads the files as they are then.  Files read through hard links (see
#: L{_query_once}) cannot change so.
RUNS = 3


def _query_once(
    args: argparse.Namespace, statement: str, out: TextIO, err: TextIO, warned: set[Skipped], again: bool
) -> int | None:
    """
    Run C{args.sql} once, over views made afresh (see L{query}), which
    read hard links of the files listed, made in the query's own temporary
    directory: a revision's commit renaming a new file over one the query
    reads leaves the query reading the one listed, where DuckDB would
    otherwise read a footer of one and pages of the other.  Where no link
    can be made (C{TMPDIR} on another file system), the file is read in
    place, and the query is run again if it fails once the file was
    replaced.

    @param warned: The warnings of the views printed by earlier runs,
        which this one adds to and does not print again.
    @param again: Whether the query may be run again.
    @return: L{query}'s exit code, or L{None} if, C{again} being true, the
        query should be run again: it failed before printing anything, and
        a file its views read in place is gone or replaced (or the views
        could not be made).
    """
    # DuckDB's own, .tmp in the working directory, the query could write.
    spill, in_use = _spill_directory()
    snapshot = spill / "tables"
    try:
        return _query_in(args, statement, out, err, warned, again, spill, snapshot)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        os.close(in_use)


#: The start of the name of a query's temporary directory; the query's
#: process id and C{-} follow.
SPILL_PREFIX = "harbourctl-query-"

#: The file in a query's temporary directory that the query holds an
#: C{flock} of while it runs.
IN_USE = ".in-use"


def _spill_directory() -> tuple[Path, int]:
    """
    Make a query's temporary directory, having removed those left by
    queries killed outright (whose links would keep the space of files
    replaced since, until someone removed them).

    @return: The directory, named after L{SPILL_PREFIX} and this process,
        and the descriptor of its L{IN_USE} file, locked: the directory
        is in use until it is closed.
    """
    parent = Path(tempfile.gettempdir())
    _remove_left_behind(parent)
    spill = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=parent))
    in_use = os.open(spill / IN_USE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(in_use, fcntl.LOCK_EX)
    return spill, in_use


def _remove_left_behind(parent: Path) -> None:
    """
    Remove the query directories in C{parent} that belong to this user
    and that no query uses: its L{IN_USE} file is not locked (a process
    id alone would not tell, where containers sharing C{/tmp} see each
    other's files but not each other's processes), or, without one (a
    query killed as it made its directory), its process is gone.  Those
    named otherwise (made by an earlier version, without a process id)
    are left: whose they are cannot be told.
    """
    try:
        names = [path for path in parent.iterdir() if path.name.startswith(SPILL_PREFIX)]
    except OSError:
        return
    for path in names:
        pid, dash, ignored = path.name[len(SPILL_PREFIX) :].partition("-")
        if not (dash and pid.isdigit()):
            continue
        try:
            if path.lstat().st_uid != os.getuid() or path.is_symlink():
                continue
            descriptor = os.open(path / IN_USE, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if not process_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(descriptor)


def _query_in(
    args: argparse.Namespace,
    statement: str,
    out: TextIO,
    err: TextIO,
    warned: set[Skipped],
    again: bool,
    spill: Path,
    snapshot: Path,
) -> int | None:
    """
    L{_query_once}, in its temporary directory C{spill}, with the links of
    the files in C{snapshot}.
    """
    tables_dir = args.data_dir / "tables"

    def said(e: Exception) -> str:
        # The files as the user knows them, not their links.
        # (realpath, not resolve: a loop of links must not raise here.)
        return _message(e).replace(os.path.realpath(snapshot), os.path.realpath(tables_dir))

    try:
        # Only the views the query reads: making one reads every footer.
        connection, made = open_views(tables_dir, views_named(statement), snapshot=snapshot)
    except FileNotFoundError as e:
        print(f"harbourctl: {e}", file=err)
        return FAILED
    except duckdb.Error as e:
        if again:
            return None
        print(f"harbourctl: {tables_dir}: {said(e)}", file=err)
        return FAILED
    for why in made.skipped:
        if why not in warned:
            warned.add(why)
            print(f"harbourctl: warning: {why}", file=err)
    printing = False
    written = None
    if args.parquet is not None:
        # Beside the file, so that it replaces it whole; where the check
        # of the tables directory found it.
        target = _destination(args.parquet)
        written = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # Times print in UTC, as their columns are named, whatever this
        # machine's zone.
        connection.execute("SET TimeZone = 'UTC'")
        confine(connection, made.files, spill)
        if written is not None:
            # Written here, from the rows DuckDB gives: SQL pasted into a
            # COPY could close its parenthesis and write elsewhere, and the
            # query's DuckDB may write no file.
            rows = connection.sql(args.sql)
            if rows is None:
                print(NO_STATEMENT, file=err)
                return USAGE
            try:
                _write_parquet(rows, written)
                written.replace(target)
            except (OSError, pa.ArrowException) as e:
                print(f"harbourctl: {said(e)}", file=err)
                return FAILED
            return OK
        result = connection.execute(args.sql)
        if result is None:
            # Only comments: DuckDB runs nothing and answers nothing.
            print(NO_STATEMENT, file=err)
            return USAGE
        printing = True
        _print(result, args, out)
    except duckdb.Error as e:
        if LOCKED in str(e):
            print(f"harbourctl: query cannot change DuckDB's settings ({said(e)}); {SETTINGS}", file=err)
            return USAGE
        changed = [path for path, known in made.in_place.items() if known is None or identity(path) != known]
        if changed and again and not printing:
            return None
        if changed:
            print(
                f"harbourctl: {said(e)} ({min(changed)} was removed or replaced as the query read it: "
                "the daemon rewrote its window; run the query again)",
                file=err,
            )
            return FAILED
        print(f"harbourctl: {said(e)}", file=err)
        return FAILED
    finally:
        connection.close()
        if written is not None:
            written.unlink(missing_ok=True)
    return OK


#: What DuckDB says of a setting changed once L{confine} locked them.
LOCKED = "the configuration has been locked"
#: What to do instead.
SETTINGS = "times print in UTC, and AT TIME ZONE shows them in another zone"

#: The kinds of statement C{query} runs: those that read, or change only
#: the query's own database in memory.  Any other (C{COPY}, C{ATTACH},
#: C{EXPORT}, C{INSTALL}, a prepared statement...) could write a file.
#: An C{EXPLAIN} is of the kind of the statement it explains (L{_kind}).
READING = frozenset(
    {
        "SELECT",
        "PRAGMA",
        "CALL",
        "SET",
        "VARIABLE_SET",
        "TRANSACTION",
        "ANALYZE",
        "CREATE",
        "DROP",
        "ALTER",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE_INTO",
        # A PIVOT: a type of its values made in memory, then a select.
        "MULTI",
    }
)


def _not_reading(sql: str) -> str | None:
    """
    @return: The kind of the first statement of C{sql} that is not of
        L{READING}, or L{None} if there is none (or C{sql} cannot be
        parsed: running it says why).
    """
    try:
        statements = _parsed(sql)
    except duckdb.Error:
        return None
    for statement in statements:
        kind = _kind(statement)
        if kind not in READING:
            return kind
    return None


def _parsed(sql: str) -> list[duckdb.Statement]:
    """
    @return: The statements of C{sql}.
    @raise duckdb.Error: If it cannot be parsed.
    """
    with duckdb.connect(":memory:") as connection:
        return connection.extract_statements(sql)


def _kind(statement: duckdb.Statement) -> str:
    """
    @return: The kind of C{statement}; an C{EXPLAIN}'s is that of the
        statement it explains, which C{EXPLAIN ANALYZE} runs (a C{COPY}
        it explains writes its file).
    """
    try:
        kind = statement.type.name
    except ValueError:
        # A kind this version's Python module cannot name.
        return "unknown"
    if kind != "EXPLAIN":
        return kind
    # Of the statements it may explain, one that is refused if any: or
    # itself, refused, if none was found.
    return min(
        _explained(statement.query), key=lambda explained: (explained in READING, explained), default=kind
    )


#: The words between C{EXPLAIN} and the statement it explains, besides a
#: list of options in parentheses.
EXPLAIN_WORDS = frozenset({"explain", "analyze", "analyse"})


def _explained(query: str) -> set[str]:
    """
    @param query: An C{EXPLAIN} statement: C{EXPLAIN}, C{ANALYZE}, options
        in parentheses (C{(ANALYZE, FORMAT json)}), then a statement,
        which may itself begin with a parenthesis (C{EXPLAIN (SELECT 1)}).
    @return: The kinds of every statement that what follows one of those
        leading words or parentheses parses as, alone: whichever of them
        DuckDB read as the options, the statement it explains is one.
    """
    tokens = duckdb.tokenize(query)
    ends = [position for position, ignored in tokens[1:]] + [len(query)]
    words = [
        (position, query[position:end].strip(), kind)
        for (position, kind), end in zip(tokens, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]
    kinds: set[str] = set()
    depth = 0
    for index, (position, word, kind) in enumerate(words):
        if depth == 0 and index > 0:
            try:
                statements = _parsed(query[position:])
            except duckdb.Error:
                statements = []
            if len(statements) == 1:
                kinds.add(_kind(statements[0]))
        opened = closed = 0
        if kind == duckdb.token_type.operator:
            opened, closed = word.count("("), word.count(")")
        leading = kind == duckdb.token_type.keyword and word.lower() in EXPLAIN_WORDS
        if depth == 0 and not opened and not leading:
            break
        depth += opened - closed
        if depth < 0:
            break
    return kinds


#: The rows of each batch read from DuckDB, and of each row group of a
#: Parquet file written: as many as DuckDB's own row groups.
PARQUET_BATCH_ROWS = 122_880


def _write_parquet(rows: duckdb.DuckDBPyRelation, path: Path) -> None:
    """
    Write the rows of a query to a Parquet file, a batch at a time.

    @raise OSError: If DuckDB fails while it gives the rows, or the file
        cannot be written.
    @raise pyarrow.ArrowException: If a column's type has no Parquet
        form that pyarrow writes (an C{INTERVAL}).
    """
    with rows.to_arrow_reader(PARQUET_BATCH_ROWS) as reader, pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


#: The most rows C{query} prints as a table; the other forms print all.
TABLE_ROWS = 1_000

#: What follows a table of the first L{TABLE_ROWS} rows when there are more.
MORE_ROWS = "more rows not shown (only the first {:,} are); use --csv, --json or --parquet for all of them"


def _print(result: duckdb.DuckDBPyConnection, args: argparse.Namespace, out: TextIO) -> None:
    """
    Print a query's result as C{args} asks: CSV, JSON lines (a float
    that is not finite as C{null}) or a table,
    fetched a few rows at a time; a table of only the first L{TABLE_ROWS}
    rows, then a line saying there are more (L{MORE_ROWS}) if there are.
    """
    names = [column[0] for column in result.description or []]
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        while rows := result.fetchmany(10_000):
            writer.writerows(rows)
    elif args.json:
        while rows := result.fetchmany(10_000):
            for row in rows:
                values = (_finite(value) for value in row)
                line = json.dumps(dict(zip(names, values, strict=True)), default=_plain, allow_nan=False)
                out.write(line + "\n")
    else:
        # A table is laid out whole before any of it prints, at some
        # kilobytes a row: only its first rows are fetched.
        rows = result.fetchmany(TABLE_ROWS)
        more = bool(result.fetchmany(1))
        table = Table(*names, box=None)
        for row in rows:
            table.add_row(*("" if value is None else str(value) for value in row))
        DataConsole(out, 200).print(table)
        if more:
            # Not how many more: counting them would run the rest of the
            # query, which may take as long as the whole.
            out.write(f"{MORE_ROWS.format(TABLE_ROWS)}\n")
    out.flush()


def _statement(sql: str) -> str:
    """
    @return: C{sql} without the C{;}, comments and blanks that may end a
        statement (C{select 1; -- a note}): empty if it holds nothing else.
    """
    end = len(sql)
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        tokens = []
    for position, kind in reversed(tokens):
        ending = sql[position:end].strip()
        if kind == duckdb.token_type.comment or (kind == duckdb.token_type.operator and ending == ";"):
            end = position
        else:
            break
    return re.sub(r"[\s;]+$", "", sql[:end])


def tables(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """
    Print each report's rows, files, first and last day and missing days;
    with C{--check}, read every file through and compare it with its zip.

    @return: L{OK}, or L{FAILED} without a tables directory, for a bad
        configuration or a mismatch, or with C{--check} for no file to
        check.
    """
    tables_dir = args.data_dir / "tables"
    if not tables_dir.is_dir():
        # A mistyped --data-dir must not pass for a dataset with no table.
        print(
            f"harbourctl: {tables_dir}: no such directory (the daemon makes it with its first table)",
            file=err,
        )
        return FAILED
    ranges: dict[str, tuple[datetime.date, datetime.date]] = {}
    names = reports_in(tables_dir)
    if args.config_dir is not None:
        configuration = _configuration(args.config_dir)
        if configuration is None:
            return FAILED
        manifest = configuration.topics["manifest"]
        today = args.today or market_today(manifest, time.time())
        for report in configuration.topics["reports"]:
            if report.enabled:
                ranges[report.name] = report_range(manifest, report, today)
        names = sorted(set(names) | set(ranges))
    table = Table("report", "rows", "files", "first", "last", "missing days", box=None)
    unreadable: list[Mismatch] = []
    files = 0
    for name in names:
        found = report_tables(tables_dir, name, ranges.get(name))
        unreadable.extend(found.unreadable)
        files += found.files
        table.add_row(
            name,
            f"{found.rows:,}",
            f"{found.files:,}",
            str(found.first or "-"),
            str(found.last or "-"),
            _missing(found.missing),
        )
    DataConsole(out, 200).print(table)
    if not args.check:
        # (The check lists them with the files that do not match.)
        for damaged in unreadable:
            print(f"harbourctl: {damaged.file}: {damaged.reason}", file=err)
        return FAILED if unreadable else OK
    if not files and not unreadable:
        # A file system that failed to mount often leaves its mount point
        # empty: a check of nothing is no sign that the tables are whole.
        print(f"harbourctl: {tables_dir}: no Parquet file to check", file=err)
        return FAILED
    mismatches = check(tables_dir, reports_in(tables_dir))
    for mismatch in mismatches:
        print(f"{mismatch.file}: {mismatch.reason}", file=out)
    if mismatches:
        broken = sum(mismatch.unreadable for mismatch in mismatches)
        parts = []
        if broken:
            parts.append(f"{broken} cannot be read whole")
        if len(mismatches) > broken:
            parts.append(f"{len(mismatches) - broken} do not match their zip")
        print(f"{len(mismatches)} file(s) fail the check: {' and '.join(parts)}", file=out)
        return FAILED
    print("every file matches its zip", file=out)
    return OK


def _missing(days: tuple[datetime.date, ...]) -> str:
    if not days:
        return "none"
    runs = spans(days)
    text = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs[:4])
    if len(runs) > 4:
        text += f", ... ({len(runs) - 4} more runs)"
    return f"{len(days):,}: {text}"


def _finite(value: Any) -> Any:
    """
    @return: C{value}, with every float that is not finite in it (C{NaN},
        which an OASIS C{nan} becomes, and the infinities) as L{None}:
        JSON has no such numbers, and the parsers that are strict about
        it refuse the words Python writes for them.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _message(error: Exception) -> str:
    return str(error).strip() or type(error).__name__
