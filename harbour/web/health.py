"""
The health of each report, and of the daemon as a monitoring plugin sees
it.

A report is, in order of precedence:

 - C{failing} (critical): at least L{Thresholds.failing_min} of its tasks
   failed in the last L{Thresholds.window} seconds, and they are at least
   L{Thresholds.failing_share} of the tasks that ended in that time;
 - C{behind} (warning): the newest trading day it asks for is not
   mirrored L{Thresholds.behind_after} seconds after that day ended;
 - C{retrying} (warning): an attempt was retried or a task failed in the
   last L{Thresholds.window} seconds, or failed tasks wait for
   C{harbourctl retry};
 - C{idle} (fine): nothing is left to fetch and nothing was fetched in the
   last L{Thresholds.idle_after} seconds;
 - C{ok}: otherwise.

The daemon computes the states (it hears every worker's outcomes on its
bus) and puts them in its C{Status} document; C{harbourctl status} shows
them and C{harbourctl status --check} turns them into an exit code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr

OK = "ok"
BEHIND = "behind"
RETRYING = "retrying"
FAILING = "failing"
IDLE = "idle"

#: Every health state, best first.
HEALTH_STATES = (OK, IDLE, RETRYING, BEHIND, FAILING)

#: What each state means to a monitoring plugin: 0 ok, 1 warning, 2 critical.
SEVERITY: Mapping[str, int] = {OK: 0, IDLE: 0, RETRYING: 1, BEHIND: 1, FAILING: 2}

#: The word for each exit code of C{harbourctl status --check}: by
#: severity, then 3 when the daemon cannot be asked.
CHECK_WORDS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

_HOUR = 3600.0


@attr.s(frozen=True, auto_attribs=True)
class Thresholds:
    """
    Where one health state ends and the next begins.

    @ivar window: The recent past, in seconds, that failures and retries
        are counted over.
    @ivar failing_min: The fewest failures in C{window} that make a report
        C{failing}.
    @ivar failing_share: The share of the tasks ended in C{window} that
        must have failed for C{failing}.
    @ivar behind_after: Seconds after the newest trading day asked for ends
        by which it should be mirrored.
    @ivar idle_after: Seconds without a fetch, with nothing to fetch, after
        which a report is C{idle}.
    """

    window: float = attr.ib(default=_HOUR, validator=attr.validators.gt(0))
    failing_min: int = attr.ib(default=3, validator=attr.validators.ge(1))
    failing_share: float = attr.ib(default=0.5, validator=[attr.validators.gt(0), attr.validators.le(1)])
    behind_after: float = attr.ib(default=6 * _HOUR, validator=attr.validators.ge(0))
    idle_after: float = attr.ib(default=24 * _HOUR, validator=attr.validators.ge(0))

    def to_json(self) -> dict[str, float]:
        """
        @return: The thresholds as plain JSON data.
        """
        return attr.asdict(self)


@attr.s(frozen=True, auto_attribs=True)
class ReportActivity:
    """
    What a report's health is judged from.

    @ivar counts: Its tasks by state.
    @ivar failed_recently: Tasks failed within the window.
    @ivar ended_recently: Tasks ended (downloaded, empty or failed) within
        the window.
    @ivar retried_recently: Attempts retried within the window.
    @ivar last_success: POSIX time of its last download or empty answer,
        or L{None}.
    @ivar unmirrored_since: POSIX time the newest trading day it asks for
        ended, if that day is not mirrored yet; else L{None}.
    @ivar newest_day: That day, as ISO text, for the reason given.
    """

    counts: Mapping[str, int] = attr.ib(factory=dict)
    failed_recently: int = 0
    ended_recently: int = 0
    retried_recently: int = 0
    last_success: float | None = None
    unmirrored_since: float | None = None
    newest_day: str = ""


@attr.s(frozen=True, auto_attribs=True)
class Health:
    """
    One report's health: its state and why.
    """

    state: str = attr.ib(validator=attr.validators.in_(HEALTH_STATES))
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        """
        @return: C{{"health": state, "why": reason}}.
        """
        return {"health": self.state, "why": self.reason}


def assess(activity: ReportActivity, now: float, thresholds: Thresholds = Thresholds()) -> Health:
    """
    @param now: The POSIX time of the judgement.
    @return: The health of a report whose recent past is C{activity}.
    """
    hours = thresholds.window / _HOUR
    failed = activity.failed_recently
    if failed >= thresholds.failing_min and failed >= thresholds.failing_share * activity.ended_recently:
        return Health(FAILING, f"{failed} of {activity.ended_recently} tasks failed in the last {hours:g} h")
    if activity.unmirrored_since is not None:
        late = now - activity.unmirrored_since
        if late > thresholds.behind_after:
            return Health(BEHIND, f"{activity.newest_day} not mirrored {late / _HOUR:.1f} h after it ended")
    waiting = activity.counts.get("failed", 0)
    if activity.retried_recently or failed or waiting:
        parts = []
        if activity.retried_recently:
            retries = "retry" if activity.retried_recently == 1 else "retries"
            parts.append(f"{activity.retried_recently} {retries} in the last {hours:g} h")
        if failed:
            parts.append(f"{failed} failed in the last {hours:g} h")
        if waiting:
            parts.append(f"{waiting} failed tasks to retry")
        return Health(RETRYING, ", ".join(parts))
    busy = activity.counts.get("pending", 0) + activity.counts.get("downloading", 0)
    if not busy:
        if activity.last_success is None:
            return Health(IDLE, "nothing to fetch")
        quiet = now - activity.last_success
        if quiet > thresholds.idle_after:
            return Health(IDLE, f"nothing to fetch; last fetch {quiet / _HOUR:.0f} h ago")
    return Health(OK, "")


@attr.s(frozen=True, auto_attribs=True)
class Verdict:
    """
    The daemon's health as one monitoring plugin line.

    @ivar code: 0 ok, 1 warning, 2 critical.
    @ivar summary: The line, such as C{HARBOUR WARNING - lmp behind (...)}.
    """

    code: int
    summary: str


def refreshes_failing(refresh_error: Mapping[str, Any]) -> str:
    """
    @param refresh_error: The C{work} service's C{refresh_error} (C{since}
        and C{error}).
    @return: The line C{harbourctl status} and the status page show for it.
    """
    return f"refreshes fail since {refresh_error['since']}: {refresh_error['error']}"


def verdict(document: Mapping[str, Any]) -> Verdict:
    """
    Judge a C{Status} document as a monitoring plugin does.

    Critical: a report is C{failing}, or Redis is not connected, or its
    commands fail (the store's outage is under way: a Redis that refuses
    every write, C{OOM} or C{MISCONF}, is connected all along).  Warning:
    a report is C{behind} or C{retrying}, or the configuration has errors,
    or the refreshes of the tasks fail (the manifest's new windows are not
    asked for meanwhile).

    @param document: The C{Status} document's C{services}.
    @return: The exit code and one line saying why.
    """
    monitor = document.get("monitor") or {}
    reports: Mapping[str, Mapping[str, str]] = monitor.get("reports") or {}
    problems: list[tuple[int, str]] = []
    store = document.get("store") or {}
    if store and not store.get("connected"):
        problems.append((2, f"Redis not connected ({store.get('last_error') or store.get('redis')})"))
    elif store.get("outage_since") is not None:
        problems.append((2, f"Redis commands fail ({store.get('last_error') or 'an outage is under way'})"))
    errors = (document.get("config") or {}).get("errors") or []
    if errors:
        problems.append((1, f"{len(errors)} configuration errors: {errors[0]}"))
    refresh_error = (document.get("work") or {}).get("refresh_error")
    if refresh_error:
        problems.append((1, f"refreshes fail since {refresh_error['since']} ({refresh_error['error']})"))
    tally: dict[str, int] = {}
    for name, health in sorted(reports.items()):
        state = health.get("health", OK)
        tally[state] = tally.get(state, 0) + 1
        if SEVERITY.get(state, 0):
            why = health.get("why")
            problems.append((SEVERITY[state], f"{name} {state}" + (f" ({why})" if why else "")))
    code = max((severity for severity, ignored in problems), default=0)
    problems.sort(key=lambda problem: -problem[0])
    counted = ", ".join(f"{tally[s]} {s}" for s in reversed(HEALTH_STATES) if s in tally)
    overview = f"{len(reports)} reports" + (f": {counted}" if counted else "")
    said = "; ".join(text for ignored, text in problems[:3])
    if len(problems) > 3:
        said += f"; and {len(problems) - 3} more"
    summary = f"HARBOUR {CHECK_WORDS[code]} - " + (f"{said}; {overview}" if said else overview)
    return Verdict(code, summary)
