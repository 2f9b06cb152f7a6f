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
    # This host's disk, whatever file it names (a .zip's path is no answer).
    ("disk", re.compile(r"^cannot write ", re.I)),
    ("throttled", re.compile(r"HTTP 429|throttl", re.I)),
    ("server_error", re.compile(r"HTTP 5\d\d", re.I)),
    ("client_error", re.compile(r"HTTP 4\d\d", re.I)),
    ("timeout", re.compile(r"no data for|no answer within|took longer|timed? ?out", re.I)),
    ("connection", re.compile(r"connection|request failed|refused|reset|unreachable", re.I)),
    ("no_data_yet", re.compile(r"no data yet", re.I)),
    ("oasis_error", re.compile(r"OASIS error", re.I)),
    ("bad_answer", re.compile(r"zip|xml|csv|answer|corrupt|invalid", re.I)),
)

#: The seconds of one span that recent outcomes are counted in, per
#: report: the health states' window is counted to within one span (an
#: outcome is forgotten less than a span after the window has passed it),
#: and a report holds at most one count per span of the window.
SPAN = 60.0

#: Where each kind of recent outcome is counted in a span's counts.
_KINDS = {"ended": 0, "failed": 1, "retried": 2}


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
class _Recent:
    """
    One report's outcomes over the window, counted by L{SPAN}.

    @ivar spans: C{(span number, [ended, failed, retried])}, oldest first.
    @ivar totals: The sums of the spans' counts.
    """

    spans: deque[tuple[int, list[int]]] = attr.ib(factory=deque)
    totals: list[int] = attr.ib(factory=lambda: [0, 0, 0])

    def note(self, span: int, kind: str) -> None:
        """
        Count an outcome of C{kind} in C{span} (in the newest span, if the
        clock went back).
        """
        if not self.spans or self.spans[-1][0] < span:
            self.spans.append((span, [0, 0, 0]))
        self.spans[-1][1][_KINDS[kind]] += 1
        self.totals[_KINDS[kind]] += 1

    def forget_before(self, span: int) -> None:
        """
        Forget the spans before C{span}.
        """
        while self.spans and self.spans[0][0] < span:
            ignored, counts = self.spans.popleft()
            for index, count in enumerate(counts):
                self.totals[index] -= count


@attr.s(eq=False)
class Tally:
    """
    Counters of bus events, kept on the reactor.

    @ivar owns: Whether a topic is one of the configuration's (its
        retained events, like C{config.loaded}, mean a reload succeeded).
    @ivar clock: The POSIX time now.
    @ivar window: The recent past, in seconds, that L{within_window}
        counts outcomes over.
    """

    owns: Callable[[str], bool] = attr.ib()
    clock: Callable[[], float] = attr.ib()
    window: float = attr.ib(default=3600.0)
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
    # Each report's outcomes over the window, apart: one report's many
    # cannot crowd out another's few (a shared history of the last so many
    # events did, a busy report's successes dropping a quiet one's
    # failures within the hour).
    _recent: dict[str, _Recent] = attr.ib(factory=dict, init=False)

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
                self._note(report, "retried", now)
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
        self._note(report, "failed" if outcome == "failed" else "ended", now)

    def _note(self, report: str, kind: str, now: float) -> None:
        recent = self._recent.get(report)
        if recent is None:
            recent = self._recent[report] = _Recent()
        recent.note(int(now // SPAN), kind)

    def within_window(self) -> dict[str, dict[str, int]]:
        """
        @return: C{{report: {"ended", "failed", "retried": count}}} over the
            last L{window} seconds, to within L{SPAN} (a failure also counts
            as ended).
        """
        # The spans that overlap the window.
        first = int((self.clock() - self.window) // SPAN)
        found: dict[str, dict[str, int]] = {}
        for report, recent in list(self._recent.items()):
            recent.forget_before(first)
            if not recent.spans:
                del self._recent[report]
                continue
            ended, failed, retried = recent.totals
            found[report] = {"ended": ended + failed, "failed": failed, "retried": retried}
        return found
