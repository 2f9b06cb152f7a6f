"""
The commands of C{harbourctl} that need no daemon: checking a
configuration directory, listing its requests, the catalogue of OASIS
reports, and the plan of a configuration (which may add what a running
daemon has done).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rich.table import Table

from harbour.config.schema import MONTH_WINDOW, Configuration, load_directory
from harbour.ctl.codes import FAILED, OK, USAGE
from harbour.ctl.output import DataConsole
from harbour.oasis.catalogue import load_catalogue
from harbour.oasis.plan import plan, trading_days
from harbour.oasis.requests import market_today, report_urls
from harbour.store.tasks import FINAL_STATES


def check_config(directory: Path, out: TextIO) -> int:
    """
    Print every problem of a configuration directory as C{file:line: message}.

    @return: L{OK} if there are none, else L{FAILED}.
    """
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=out)
        return FAILED
    configuration, problems = load_directory(directory)
    for problem in problems:
        print(problem, file=out)
    if configuration is None:
        return FAILED
    for warning in configuration.warnings:
        print(warning, file=out)
    print(f"{directory}: OK ({len(configuration.sources)} topics from files)", file=out)
    return OK


def _configuration(directory: Path) -> Configuration | None:
    """
    @return: The configuration of C{directory}, or L{None} after printing
        every problem on standard error (a directory that is not one is
        such a problem, not an empty configuration).
    """
    if not directory.is_dir():
        print(f"harbourctl: {directory}: not a directory", file=sys.stderr)
        return None
    configuration, problems = load_directory(directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    return configuration


def print_manifest(args: argparse.Namespace, out: TextIO) -> int:
    """
    Print the URL of every request of a configuration directory, one a line.

    @return: L{OK}, or L{FAILED} if the configuration has errors.
    """
    if args.start and args.end and args.start > args.end:
        print(f"harbourctl: --start {args.start} is after --end {args.end}", file=sys.stderr)
        return USAGE
    configuration = _configuration(args.config_dir)
    if configuration is None:
        return FAILED
    manifest = configuration.topics["manifest"]
    today = args.today or market_today(manifest, time.time())
    for request in report_urls(manifest, configuration.topics["reports"], today, args.start, args.end):
        out.write(request.url + "\n")
    return OK


def show_catalogue(name: str | None, out: TextIO) -> int:
    """
    Print the catalogue of OASIS reports, or everything it says of C{name}.

    @return: L{OK}, or L{FAILED} for a name it does not know.
    """
    catalogue = load_catalogue()
    if name is None:
        table = Table("name", "kind", "markets", "window", "all nodes", "published", box=None)
        table.add_column("description", no_wrap=True, overflow="ellipsis", max_width=70)
        for listed in catalogue.reports + catalogue.groups:
            table.add_row(
                listed.name,
                listed.kind,
                ",".join(listed.market_run_ids),
                MONTH_WINDOW if listed.monthly else listed.max_span,
                listed.max_span_all_nodes or "",
                listed.publication or "",
                listed.description.split(". ")[0],
            )
        DataConsole(out, 200).print(table)
        return OK
    entry = catalogue.entry(queryname=name) or catalogue.entry(groupid=name)
    if entry is None:
        close = catalogue.closest(name)
        print(f"{name}: not in the catalogue" + (f' (did you mean "{close}"?)' if close else ""), file=out)
        return FAILED
    print(f"{entry.name} ({entry.kind}, interface specification section {entry.section})", file=out)
    print(f"  {entry.description}", file=out)
    print(
        f"  markets: {', '.join(entry.market_run_ids) or '-'}; versions: "
        f"{', '.join(map(str, entry.versions)) or '-'}; CSV: {'yes' if entry.csv else 'no'}",
        file=out,
    )
    if entry.monthly:
        print(
            f"  one answer holds its calendar month: asked for once a month (window {MONTH_WINDOW})", file=out
        )
    else:
        limit = entry.max_span + (
            f" ({entry.max_span_all_nodes} for all nodes)" if entry.max_span_all_nodes else ""
        )
        print(f"  one request covers at most {limit}", file=out)
    if entry.publication:
        print(f"  published {entry.publication}: {entry.publication_note}", file=out)
    for param in entry.params:
        need = "required" if param.required else "recommended" if param.recommended else "optional"
        values = f": {', '.join(param.values)}" if param.values else ""
        print(f"  {param.name} ({need}){values}", file=out)
    return OK


def plan_table(
    args: argparse.Namespace,
    out: TextIO,
    done: dict[str, dict[str, int]] | None = None,
    sizes: dict[str, float] | None = None,
) -> int:
    """
    Print what a configuration costs: per report and in all, its requests
    and the hours they take at C{min_request_interval}; with C{done} (task
    counts of a running daemon), how many are already done; with C{sizes}
    (the mean bytes of a report's files so far), the bytes to expect.
    The requests made again every day of the reports published ahead
    (L{harbour.oasis.plan.ReportPlan.again_daily}) are said apart, not
    counted in the requests and hours.

    @return: L{OK}, or L{FAILED} if the configuration has errors.
    """
    configuration = _configuration(args.config_dir)
    if configuration is None:
        return FAILED
    manifest, interval = (
        configuration.topics["manifest"],
        configuration.topics["download"].min_request_interval,
    )
    today = args.today or market_today(manifest, time.time())
    plans = plan(manifest, configuration.topics["reports"], today)
    rows = []
    for p in plans:
        row: dict[str, Any] = {
            "report": p.report,
            "window": p.window,
            "first": p.first.isoformat(),
            "last": p.last.isoformat(),
            "requests": p.requests,
            "hours": round(p.seconds(interval) / 3600, 2),
            "again_daily": p.again_daily,
        }
        if done is not None:
            states = done.get(p.report, {})
            row["done"] = sum(states.get(state, 0) for state in FINAL_STATES)
            row["hours_left"] = round(max(0, p.requests - row["done"]) * interval / 3600, 2)
        if sizes is not None:
            row["est_bytes"] = round(p.requests * sizes[p.report]) if p.report in sizes else None
        rows.append(row)
    total = sum(p.requests for p in plans)
    # One request a day is compared with the reports it could ask for.
    daily, compared = trading_days(plans), sum(p.requests for p in plans if p.daily)
    shorter = [p.report for p in plans if not p.daily]
    summary: dict[str, Any] = {
        "requests": total,
        "hours": round(total * interval / 3600, 2),
        "min_request_interval": interval,
        "one_per_trading_day": daily,
        "compared_requests": compared,
        "saved": round(daily / compared, 2) if compared else None,
        "shorter_than_a_day": shorter,
        "again_daily": sum(p.again_daily for p in plans),
    }
    if done is not None:
        summary["hours_left"] = round(sum(r["hours_left"] for r in rows), 2)
    if sizes is not None:
        summary["est_bytes"] = sum(r["est_bytes"] or 0 for r in rows)
    if args.json:
        out.write(json.dumps({"reports": rows, "total": summary}, indent=2) + "\n")
        return OK
    columns = ["report", "window", "first", "last", "requests", "hours"]
    columns += (["done", "hours_left"] if done is not None else []) + (
        ["est_bytes"] if sizes is not None else []
    )
    table = Table(*columns, box=None)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    DataConsole(out, 160).print(table)
    print(
        f"{total:,} requests, {summary['hours']:g} h at one request every {interval:g} s"
        + (f"; {summary['hours_left']:g} h left" if done is not None else "")
        + (f"; about {summary['est_bytes']:,} bytes" if sizes is not None else ""),
        file=out,
    )
    again = [p for p in plans if p.again_daily]
    if again:
        print(
            "made again every day while their days are ahead, not counted above: "
            + ", ".join(
                f"{p.report} {p.again_daily} (each day up to {p.again_daily + 1} times)" for p in again
            ),
            file=out,
        )
    if compared and shorter:
        print(
            f"one request per trading day would take {daily:,} ({summary['saved']:g}x as many as their "
            f"{compared:,}); left out, asked in windows shorter than a day: {', '.join(shorter)}",
            file=out,
        )
    elif compared:
        print(f"one request per trading day would take {daily:,} ({summary['saved']:g}x as many)", file=out)
    elif shorter:
        print(
            "one request per trading day is no comparison: every report is asked in windows "
            "shorter than a day",
            file=out,
        )
    return OK
