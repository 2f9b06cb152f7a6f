"""
What the publications log has told a follower: the newest published day of
each (queryname, market run), how far the log has been read, the
publication schedule, and whether the log is followed or has been given up
for plain date ranges.  No I/O: the follower reads, this remembers and
decides.

A log can be readable and still wrong about a report: OASIS may stop
logging it, or log it under another name or market.  Its newest day then
stands still while the report's date range moves on, and capping the
report there would stop its new days silently.  So a report whose newest
published day trails the last day of its date range by more than
L{LAG_DAYS} is not capped: it follows its date range until the log catches
up (L{Knowledge.lagging}).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import attr

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.publications import PACIFIC, Publication, Scheduled, log_key
from harbour.oasis.requests import gmt, market_today, report_range

#: Each read starts this much before where the last one ended: an entry can
#: appear in the log a little after the time it carries.
OVERLAP = 3600.0
#: How far back the first read looks, with nothing known yet.
LOOKBACK = 7 * 86400.0
#: The longest span read after a long stop (three requests).
CATCH_UP = 93 * 86400.0
#: The longest span of one request (OASIS refuses more than 31 days).
SPAN = 31 * 86400.0
#: How long after a scheduled publication the log is read.
AFTER_PUBLICATION = 60.0
#: The wait before reading again after a failed read, twice as long after
#: each further failure in a row, up to the manifest's
#: C{publications_interval}.
RETRY = 60.0
#: How many days a report's newest published day may trail the last day of
#: its date range (today, usually) before the log is taken to have lost it.
#: A report published within a day of its trading day trails by at most 2
#: (today, and yesterday until it is out).  The catalogue's reports
#: published later (C{PUB_BID}, 90 days after) come only as group zips,
#: which the log does not cap.
LAG_DAYS = 2

LEARNING = "learning"
FOLLOWING = "following"
DATE_RANGES = "date ranges"
OFF = "off"


def report_key(report: ReportTopic) -> tuple[str, str]:
    """
    @return: What the log calls C{report}: its queryname and market run
        (see L{log_key}).
    """
    return log_key(report.queryname or "", report.market_run_id or "")


def iso(moment: float | None) -> str | None:
    """
    @return: A POSIX time as C{YYYY-MM-DDTHH:MM:SSZ}, or L{None}.
    """
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


@attr.s(eq=False)
class Knowledge:
    """
    The follower's memory.

    @ivar published: The newest published day per (queryname, market run).
    @ivar read_through: Where the last read of the log ended (POSIX time).
    @ivar schedule_read: When the schedule was last read (or given up).
    @ivar failing: How many reads in a row have failed, since the last
        success.
    """

    published: dict[tuple[str, str], datetime.date] = attr.ib(factory=dict)
    read_through: float | None = attr.ib(default=None)
    schedule: list[Scheduled] = attr.ib(factory=list)
    schedule_read: float = attr.ib(default=float("-inf"))
    mode: str = attr.ib(default=LEARNING)
    error: str = attr.ib(default="")
    last_success: float | None = attr.ib(default=None)
    reads: int = attr.ib(default=0)
    failures: int = attr.ib(default=0)
    failing: int = attr.ib(default=0)

    def forget(self) -> None:
        """
        Another source: nothing known of it yet.
        """
        self.published, self.read_through = {}, None
        self.schedule, self.schedule_read = [], float("-inf")

    def learn(self, entries: list[Publication]) -> None:
        """
        Note each report's newest published day.
        """
        for entry in entries:
            known = self.published.get(entry.key)
            if known is None or entry.day > known:
                self.published[entry.key] = entry.day

    def succeeded(self, now: float) -> bool:
        """
        A read succeeded at C{now}.

        @return: Whether this ends a fall-back to date ranges.
        """
        self.reads += 1
        self.failing = 0
        self.last_success = now
        self.error = ""
        recovered = self.mode == DATE_RANGES
        self.mode = FOLLOWING
        return recovered

    def failed(self, error: str, now: float, interval: float) -> bool:
        """
        A read failed at C{now} with C{error}.

        @return: Whether this starts a fall-back to date ranges: no read
            has succeeded for a whole C{interval}, or ever.
        """
        self.failures += 1
        self.failing += 1
        self.error = error
        stale = self.last_success is None or now - self.last_success >= interval
        if stale and self.mode != DATE_RANGES:
            self.mode = DATE_RANGES
            return True
        return False

    def published_through(
        self, definitions: list[ReportTopic], manifest: ManifestTopic, now: float
    ) -> dict[str, datetime.date]:
        """
        @return: The last published day of each enabled report the log
            covers, but those L{lagging} at C{now}; none while falling back
            to date ranges.
        """
        if self.mode == DATE_RANGES:
            return {}
        lagging = self.lagging(definitions, manifest, now)
        caps = {}
        for report in definitions:
            day = self.published.get(report_key(report))
            if report.enabled and day is not None and report.name not in lagging:
                caps[report.name] = day
        return caps

    def lagging(self, definitions: list[ReportTopic], manifest: ManifestTopic, now: float) -> dict[str, str]:
        """
        @return: C{{report name: why}} for each enabled report whose newest
            day in the log trails the last day of its date range (on the
            market's today at C{now}, and no later than today) by more than
            L{LAG_DAYS}: they follow their date ranges.  None while falling
            back to date ranges for every report.
        """
        if self.mode == DATE_RANGES:
            return {}
        today = market_today(manifest, now)
        found = {}
        for report in definitions:
            day = self.published.get(report_key(report))
            if not report.enabled or day is None:
                continue
            # An end ahead of today ("+1d") is for day-ahead reports, which
            # the log shows ahead anyway: a report published after its day
            # is not expected there.
            last = min(today, report_range(manifest, report, today)[1])
            behind = (last - day).days
            if behind > LAG_DAYS:
                queryname, market = report_key(report)
                found[report.name] = (
                    f"the log's newest day of {queryname} {market} is {day.isoformat()}, "
                    f"{behind} days before {last.isoformat()}"
                )
        return found

    def next_delay(self, now: float, manifest: ManifestTopic, definitions: list[ReportTopic]) -> float:
        """
        @return: Seconds to the next read: the interval, or sooner just
            after a scheduled publication (its time a Pacific one), or
            after a failure: L{RETRY},
            doubled for each further failure in a row (up to the interval).
        """
        delay = manifest.publications_interval
        if self.failing:
            # The exponent is bounded: the wait is the interval long before.
            delay = min(delay, RETRY * 2 ** min(self.failing - 1, 32))
        followed = {report_key(r) for r in definitions if r.enabled}
        # The schedule's times are market times, whatever zone the
        # manifest's days are of.
        local = datetime.datetime.fromtimestamp(now, PACIFIC)
        for entry in self.schedule:
            if entry.key not in followed:
                continue
            moment = datetime.datetime.combine(local.date(), entry.time, PACIFIC)
            if moment <= local:
                moment = datetime.datetime.combine(
                    local.date() + datetime.timedelta(days=1), entry.time, PACIFIC
                )
            delay = min(delay, moment.timestamp() - now + AFTER_PUBLICATION)
        return max(1.0, delay)

    def distrust_future(self, now: float) -> float:
        """
        Forget how far the log has been read if that lies after C{now}:
        saved by a host whose clock ran fast, it says nothing of where
        reading really stopped, and reading on from there would skip what
        was published since.  The next read looks back as the first one
        does.  The last success is taken as no later than C{now}.

        @return: How many seconds ahead of C{now} it lay (0 if not).
        """
        if self.last_success is not None:
            self.last_success = min(self.last_success, now)
        # A read ends at the next whole minute (see span): not ahead.
        if self.read_through is None or self.read_through <= now - now % 60 + 60:
            return 0.0
        ahead, self.read_through = self.read_through - now, None
        return ahead

    def span(self, now: float) -> tuple[float, float, bool]:
        """
        @return: (start, end) of the log to read now, on whole minutes, and
            whether it was cut to the last L{CATCH_UP} after a long stop.
        """
        # OASIS times are whole minutes: round up, since the log holds
        # nothing later than now anyway.
        end = now - now % 60 + 60
        start = end - LOOKBACK if self.read_through is None else self.read_through - OVERLAP
        cut = start < end - CATCH_UP
        if cut:
            start = end - CATCH_UP
        return start - start % 60, end, cut

    def restore(self, base_url: str, state: dict[str, str], days: dict[str, str]) -> bool:
        """
        Take up what an earlier run saved (L{saved}) from the same source.

        @return: Whether it was of C{base_url} (else nothing is taken up).
        """
        if state.get("base_url") != base_url:
            return False
        # Knowledge as fresh as the last read counts as a success: a
        # restart meeting an unreadable log keeps following it a while.
        self.read_through = self.last_success = float(state["read_through"])
        self.mode = FOLLOWING
        for field, day in days.items():
            queryname, _, market = field.partition("|")
            key, published = log_key(queryname, market), datetime.date.fromisoformat(day)
            # Saved before keys were matched in any case, two may be one now.
            self.published[key] = max(published, self.published.get(key, published))
        return True

    def saved(self, base_url: str) -> tuple[list[str], list[str]]:
        """
        @return: The fields of the state hash and of the days hash, as
            L{restore} reads them.
        """
        days = []
        for (queryname, market), day in self.published.items():
            days += [f"{queryname}|{market}", day.isoformat()]
        return ["base_url", base_url, "read_through", repr(self.read_through)], days

    def status(
        self, definitions: list[ReportTopic], manifest: ManifestTopic, now: float, next_read: float | None
    ) -> dict[str, Any]:
        """
        @return: The C{Status} of following the log at C{now}.
        """
        published = {
            name: day.isoformat()
            for name, day in sorted(self.published_through(definitions, manifest, now).items())
        }
        return {
            "mode": self.mode,
            "error": self.error,
            "reads": self.reads,
            "failures": self.failures,
            "last_read": iso(self.last_success),
            "read_through": iso(self.read_through),
            "next_read": iso(next_read),
            "published": published,
            "date_ranges": sorted(r.name for r in definitions if r.enabled and r.name not in published),
            "lagging": dict(sorted(self.lagging(definitions, manifest, now).items())),
            "scheduled": len(self.schedule),
        }


def log_url(base_url: str, queryname: str, start: float, end: float, extra: str) -> str:
    """
    @return: The URL of one read of OASIS's log (C{ATL_PUB}) or schedule
        (C{ATL_PUB_SCHED}) from C{start} to C{end}.
    """
    utc = datetime.UTC
    return (
        f"{base_url}/SingleZip?queryname={queryname}"
        f"&startdatetime={gmt(datetime.datetime.fromtimestamp(start, utc))}"
        f"&enddatetime={gmt(datetime.datetime.fromtimestamp(end, utc))}"
        f"&market_run_id=ALL{extra}&version=1&resultformat=6"
    )
