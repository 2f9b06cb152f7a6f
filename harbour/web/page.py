"""
The status page, rendered on the server with L{twisted.web.template}: each
report's health and counts, the coverage map, the workers and the
publications log.

The page is whole without its script but for the map's cells: the script
draws one cell per report and day from each row's compact states (one
letter a day), and polls C{live} for the parts that changed.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.template import Tag, flattenString, tags

from harbour.store.tasks import STATES
from harbour.web.coverage import LEGEND, Row
from harbour.web.health import CHECK_WORDS, refreshes_failing, verdict
from harbour.web.snapshot import ReportView, Snapshot

#: Milliseconds between two polls of C{live}.
POLL_MILLISECONDS = 2000

_SHOWN_STATES = tuple(state for state in STATES if state != "retired")


def ago(seconds: float) -> str:
    """
    @return: C{seconds} in the past, in words: C{12 s ago}, C{5 min ago}.
    """
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _moment(when: float | None, now: float) -> Tag:
    if when is None:
        return tags.span("never", class_="zero")
    moment = time.gmtime(when)
    return tags.time(
        ago(now - when),
        title=time.strftime("%Y-%m-%d %H:%M:%S UTC", moment),
        datetime=time.strftime("%Y-%m-%dT%H:%M:%SZ", moment),
    )


def overall(shot: Snapshot) -> tuple[int, str]:
    """
    @return: The daemon's severity (0, 1, 2) and its one-line summary, as
        C{harbourctl status --check} gives them.
    """
    document = {
        "monitor": {"reports": {view.name: view.health.to_json() for view in shot.reports}},
        "store": {
            "connected": shot.redis_connected,
            "redis": shot.redis,
            # An outage under way while connected: when it began is not kept.
            "outage_since": 0.0 if shot.redis_failing else None,
            # Not connected, the check names the store's last error, as
            # Status said it; connected, the outage's under way.
            "last_error": shot.redis_failing if shot.redis_connected else shot.redis_error,
        },
        "config": {"errors": list(shot.config_errors)},
        "work": {"refresh_error": shot.refresh_error},
    }
    judged = verdict(document)
    return judged.code, judged.summary


def parts(shot: Snapshot, rows: Sequence[Row]) -> dict[str, Tag]:
    """
    @param rows: The map's rows, for its heading.
    @return: The parts of the page redrawn on every poll, by name (the
        page holds each in an element whose id is C{part-NAME}).
    """
    return {
        "summary": summary(shot),
        "map-heading": map_heading(rows, shot.laying_out),
        "reports": reports_table(shot.reports, shot.taken),
        "details": details(shot),
    }


def summary(shot: Snapshot) -> Tag:
    """
    @return: The overview: the verdict, the daemon's facts and its problems.
    """
    code, line = overall(shot)
    rate = shot.download.get("bytes_per_second", 0) or 0
    facts = tags.div(class_="facts")(
        tags.span("Redis ", tags.b(_redis_state(shot))),
        _config_fact(shot),
        tags.span("publications log ", tags.b(shot.publications_mode)),
        tags.span("download ", tags.b("paused" if shot.download.get("paused") else f"{rate / 1e6:.2f} MB/s")),
        tags.span("workers ", tags.b(str(len(shot.workers)))),
        tags.span("harbour ", tags.b(shot.version), f" up {ago(shot.uptime).removesuffix(' ago')}"),
    )
    problems = [shot.ready] if shot.ready else []
    problems += [f"config error: {error}" for error in shot.config_errors]
    if shot.refresh_error:
        problems.append(refreshes_failing(shot.refresh_error))
    overview = tags.section(id="overview")(
        tags.h2(
            tags.span(CHECK_WORDS[code], class_=f"badge {('ok', 'warning', 'critical')[code]}"), " ", line
        ),
        facts,
        tags.ul(class_="problems")([tags.li(p) for p in problems]) if problems else "",
    )
    return overview


def _redis_state(shot: Snapshot) -> str:
    """
    @return: Redis's state in a word: C{up}, C{FAILING} (connected, but its
        commands fail) or C{DOWN}.
    """
    if shot.redis_up:
        return "up"
    return "FAILING" if shot.redis_connected else "DOWN"


def _config_fact(shot: Snapshot) -> Tag:
    """
    @return: Whether the configuration is loaded; after a reload that
        failed, that the last good one is still in force.
    """
    if shot.config_successful:
        return tags.span("config ", tags.b("loaded"))
    if shot.config_success_at is not None:
        return tags.span("config ", tags.b("last reload failed"), ", the previous one in force")
    return tags.span("config ", tags.b("not loaded"))


def reports_table(views: Sequence[ReportView], now: float) -> Tag:
    """
    @return: A table of the reports: health, tasks by state, last success,
        last error.
    """
    head = tags.tr(
        tags.th("report"),
        tags.th("health"),
        [tags.th(state, class_="n") for state in _SHOWN_STATES],
        tags.th("last success"),
        tags.th("last error", class_="hide-narrow"),
    )
    body = []
    for view in views:
        counts = [
            tags.td(f"{view.counts.get(s, 0):,}", class_="n zero" if not view.counts.get(s) else "n")
            for s in _SHOWN_STATES
        ]
        error = view.last_error
        body.append(
            tags.tr(**{"data-report": view.name})(
                tags.td(tags.b(view.name)),
                tags.td(
                    tags.span(view.health.state, class_=f"badge {view.health.state}"),
                    tags.span(view.health.reason, class_="why") if view.health.reason else "",
                ),
                counts,
                tags.td(_moment(view.last_success, now)),
                tags.td(class_="error hide-narrow")(
                    [_moment(error[0], now), ": ", error[1]] if error else tags.span("none", class_="zero")
                ),
            )
        )
    if not body:
        body.append(tags.tr(tags.td("no reports configured yet", colspan=str(len(_SHOWN_STATES) + 4))))
    return tags.section(id="reports")(
        tags.h2("Reports"), tags.div(class_="scroll")(tags.table(tags.thead(head), tags.tbody(body)))
    )


def _worker_state(worker: Mapping[str, Any]) -> Tag | str:
    """
    @return: A worker's problem (another C{--prefix} than the hub's), if it
        has one, else what it waits for before it claims, if anything, else
        whether it is paused.
    """
    problem = worker.get("problem")
    if isinstance(problem, str):
        return tags.span(problem, class_="problems")
    waiting = worker.get("waiting")
    if isinstance(waiting, str):
        return f"waiting for {waiting}"
    return "paused" if worker.get("paused") else "running"


def details(shot: Snapshot) -> Tag:
    """
    @return: The workers and the publications log, also redrawn on every
        poll.
    """
    rows = []
    for owner, worker in sorted(shot.workers.items()):
        flights = worker.get("in_flight") or []
        rate = worker.get("bytes_per_second", 0) or 0
        rows.append(
            tags.tr(
                tags.td(owner),
                tags.td(f"{len(flights)} / {worker.get('concurrency', '?')}", class_="n"),
                tags.td(f"{rate / 1e6:.2f} MB/s", class_="n"),
                tags.td(_worker_state(worker)),
                tags.td(f"{worker.get('seen_seconds_ago', 0):g} s ago", class_="n"),
            )
        )
    workers = tags.section(id="workers")(
        tags.h2("Workers"),
        tags.div(class_="scroll")(
            tags.table(
                tags.thead(
                    tags.tr(
                        tags.th("worker"),
                        tags.th("in flight", class_="n"),
                        tags.th("rate", class_="n"),
                        tags.th("state"),
                        tags.th("heard", class_="n"),
                    )
                ),
                tags.tbody(rows or tags.tr(tags.td("no worker heard from", colspan="5"))),
            )
        ),
    )
    log = shot.publications
    facts = [tags.li("mode: ", tags.b(shot.publications_mode))]
    if log.get("last_read"):
        facts.append(tags.li(f"last read: {log['last_read']}"))
    if log.get("error"):
        facts.append(tags.li(f"last read failed: {log['error']}", class_="problems"))
    for report, why in sorted((log.get("lagging") or {}).items()):
        facts.append(tags.li(f"{report}: on date ranges: {why}"))
    return tags.div(workers, tags.section(id="publications")(tags.h2("Publications log"), tags.ul(facts)))


def legend() -> Tag:
    """
    @return: The map's legend: every day state's colour, name and meaning.
    """
    return tags.ul(class_="legend", id="legend")(
        [tags.li(tags.i(class_=f"c{code}"), name, title=meaning) for code, name, meaning in LEGEND]
    )


def map_heading(rows: Sequence[Row], laying_out: bool = False) -> Tag:
    """
    @param laying_out: Whether the map is being laid out anew (see
        L{Snapshot.laying_out}).
    @return: The map's heading, naming the first and last trading days it
        shows (which move as the configuration changes and days pass), and
        whether a new layout is under way.
    """
    title = "Coverage by trading day"
    if rows:
        first = min(row.first for row in rows)
        last = max(row.first + datetime.timedelta(days=len(row.states) - 1) for row in rows)
        title += f", {first.isoformat()} to {last.isoformat()}"
    if laying_out:
        title += " (being laid out again: this is the previous layout)" if rows else " (being laid out)"
    # No element of its own: the heading's text, put in the page's h2.
    return Tag("")(title)


def coverage(rows: Sequence[Row], heading: Tag) -> Tag:
    """
    @param heading: The map's heading (L{map_heading}).
    @return: The coverage map: its heading, its legend, and its rows as
        data the script draws cells from.
    """
    data = json.dumps([row.to_json() for row in rows], separators=(",", ":"))
    return tags.section(id="coverage")(
        tags.h2(heading, id="part-map-heading"),
        legend(),
        tags.div(id="map", **{"data-rows": data}),
        tags.noscript("The map's cells are drawn by the page's script."),
        tags.p("Hover over (or tap) a day for its counts.", id="hover"),
    )


def page(shot: Snapshot, rows: Iterable[Row], version: str, poll: int = POLL_MILLISECONDS) -> Tag:
    """
    @param version: The map's version the rows are of (a
        L{harbour.web.coverage.Coverage.stamp}); the script asks C{live}
        for what changed after it.
    @return: The whole status page.
    """
    rows = list(rows)
    drawn = parts(shot, rows)
    return tags.html(lang="en")(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.title("harbour status"),
            tags.link(rel="stylesheet", href="assets/page.css"),
        ),
        tags.body(**{"data-version": version, "data-poll": str(poll)})(
            tags.header(
                tags.h1("harbour"),
                tags.span("", id="updated"),
            ),
            Tag("main")(
                tags.div(drawn["summary"], id="part-summary"),
                coverage(rows, drawn["map-heading"]),
                tags.div(drawn["reports"], id="part-reports"),
                tags.div(drawn["details"], id="part-details"),
            ),
            tags.script(src="assets/page.js"),
        ),
    )


def render(tree: Tag) -> Deferred[bytes]:
    """
    @return: A L{Deferred} firing with C{tree} as an HTML document.
    """
    return flattenString(None, tree).addCallback(lambda html: b"<!DOCTYPE html>\n" + html)


def fragment(tree: Tag) -> Deferred[bytes]:
    """
    @return: A L{Deferred} firing with C{tree} as HTML, to be put in place
        by the script.
    """
    return flattenString(None, tree)
