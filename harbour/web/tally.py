"""
What the bus says, counted: task outcomes, bytes, retries and their
reasons, configuration reloads, Redis's comings and goings and the rows the
dataset writes, per report.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attr

from harbour.config.watcher import LOADED

#: The task outcomes counted, by topic.
OUTCOMES: Mapping[str, str] = {"task.done": "downloaded", "task.empty": "empty", "task.failed": "failed"}

#: A retry's reason, by the first pattern its error matches: a few words
#: that keep the metric's labels few, whatever OASIS answers.
REASONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("throttled", re.compile(r"HTTP 429|throttl", re.I)),
    ("server_error", re.compile(r"HTTP 5\d\d", re.I)),
    ("client_error", re.compile(r"HTTP 4\d\d", re.I)),
    ("timeout", re.compile(r"no data for|took longer|timed? ?out", re.I)),
    ("connection", re.compile(r"connection|request failed|refused|reset|unreachable", re.I)),
    ("no_data_yet", re.compile(r"no data yet", re.I)),
    ("oasis_error", re.compile(r"OASIS error", re.I)),
    ("bad_answer", re.compile(r"zip|xml|csv|answer|corrupt|invalid", re.I)),
)

#: The most recent outcomes kept for the health states' window.
_RECENT = 10_000


def retry_reason(error: str) -> str:
    """
    @return: The reason, one of L{REASONS}' names or C{other}, that a
        retry with C{error} is counted under.
    """
    for name, pattern in REASONS:
        if pattern.search(error):
            return name
    return "other"


def _report(payload: Mapping[str, Any]) -> str | None:
    report = payload.get("report")
    return report if isinstance(report, str) and report else None


@attr.s(eq=False)
class Tally:
    """
    Counters of bus events, kept on the reactor.

    @ivar owns: Whether a topic is one of the configuration's (its
        retained events, like C{config.loaded}, mean a reload succeeded).
    @ivar clock: The POSIX time now.
    """

    owns: Callable[[str], bool] = attr.ib()
    clock: Callable[[], float] = attr.ib()
    #: {report: {outcome: count}}
    requests: dict[str, dict[str, int]] = attr.ib(factory=dict, init=False)
    fetched_bytes: dict[str, int] = attr.ib(factory=dict, init=False)
    #: {report: {reason: count}}
    retries: dict[str, dict[str, int]] = attr.ib(factory=dict, init=False)
    last_success: dict[str, float] = attr.ib(factory=dict, init=False)
    #: {report: (POSIX time, error)}
    last_error: dict[str, tuple[float, str]] = attr.ib(factory=dict, init=False)
    rows_written: dict[str, int] = attr.ib(factory=dict, init=False)
    table_failures: dict[str, int] = attr.ib(factory=dict, init=False)
    config_successful: bool | None = attr.ib(default=None, init=False)
    config_success_at: float | None = attr.ib(default=None, init=False)
    redis_up: bool | None = attr.ib(default=None, init=False)
    #: (POSIX time, report, what: "ended", "failed" or "retried"), newest last.
    recent: deque[tuple[float, str, str]] = attr.ib(factory=lambda: deque(maxlen=_RECENT), init=False)

    def apply(self, topic: str, payload: object) -> bool:
        """
        Count one event.

        @return: Whether it changed anything.
        """
        now = self.clock()
        if self.owns(topic) or topic == LOADED:
            # A retained topic arrives when it changes, and when the
            # monitor starts; config.loaded after every good reload, even
            # one that changed nothing.
            self.config_successful, self.config_success_at = True, now
            return True
        if topic == "config.error":
            self.config_successful = False
            return True
        if topic in ("store.connected", "store.disconnected"):
            self.redis_up = topic == "store.connected"
            return True
        if not isinstance(payload, dict):
            return False
        report = _report(payload)
        if report is None:
            return False
        if topic in OUTCOMES:
            self._ended(report, OUTCOMES[topic], payload, now)
        elif topic == "task.retried":
            reason = retry_reason(str(payload.get("error", "")))
            by_reason = self.retries.setdefault(report, {})
            by_reason[reason] = by_reason.get(reason, 0) + 1
            self._count(report, "retried")
            # A window asked again because OASIS had no data for it yet
            # used no attempt: waiting for late data is no trouble.
            if payload.get("counted", True) is not False:
                self.recent.append((now, report, "retried"))
        elif topic == "table.written":
            rows = payload.get("rows")
            if isinstance(rows, int) and rows >= 0:
                self.rows_written[report] = self.rows_written.get(report, 0) + rows
        elif topic == "table.failed":
            self.table_failures[report] = self.table_failures.get(report, 0) + 1
        else:
            return False
        return True

    def _count(self, report: str, outcome: str) -> None:
        by_outcome = self.requests.setdefault(report, {})
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1

    def _ended(self, report: str, outcome: str, payload: Mapping[str, Any], now: float) -> None:
        self._count(report, outcome)
        size = payload.get("bytes")
        if isinstance(size, int) and size > 0:
            self.fetched_bytes[report] = self.fetched_bytes.get(report, 0) + size
        if outcome == "failed":
            self.last_error[report] = (now, str(payload.get("error", "")))
        else:
            self.last_success[report] = now
        self.recent.append((now, report, "failed" if outcome == "failed" else "ended"))

    def within(self, seconds: float) -> dict[str, dict[str, int]]:
        """
        @return: C{{report: {"ended", "failed", "retried": count}}} over the
            last C{seconds} (a failure also counts as ended).
        """
        horizon = self.clock() - seconds
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()
        found: dict[str, dict[str, int]] = {}
        for ignored, report, what in self.recent:
            counts = found.setdefault(report, {"ended": 0, "failed": 0, "retried": 0})
            counts[what] += 1
            if what == "failed":
                counts["ended"] += 1
        return found
