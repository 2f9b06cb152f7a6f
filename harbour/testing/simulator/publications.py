"""
When the simulator's data is published, and the atlas reports that say so:
C{ATL_PUB} (the Publications and Revisions log) and C{ATL_PUB_SCHED} (the
Publication Schedule).

Trading day D of every report is published C{publish_offset} seconds after
D starts, and is served from then on.  The log covers the reports with
generators of their own (L{CATALOGUE}), in each of their markets:
L{PublicationLog.revise} changes a day of one of them and logs a revision,
and refuses the others, whose change the log could not announce (OASIS's
log lists every publication and revision of its data).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator

import attr

from harbour.testing.simulator.documents import Row, atlas_xml, csv_document, deterministic_zip
from harbour.testing.simulator.formats import (
    PACIFIC,
    UTC,
    OasisError,
    day_names,
    day_start,
    iso,
    parse_gmt,
    request_version,
)
from harbour.testing.simulator.limits import report_entry, served_window
from harbour.testing.simulator.reports import CATALOGUE, SECTIONS, SimReport
from harbour.testing.simulator.settings import Settings

#: The atlas reports about publication.
PUBLICATIONS_LOG = "ATL_PUB"
PUBLICATIONS_SCHEDULE = "ATL_PUB_SCHED"

PUBLICATION_COLUMNS = (
    "PUBLICATION_TIME_GMT",
    "OPR_DT",
    "OASIS_SECTION",
    "REPORT_NAME",
    "MARKET_RUN_ID",
    "STATUS",
    "ATLPUB_VERSION",
    "DESCRIPTION",
)
SCHEDULE_COLUMNS = (
    "OASIS_SECTION",
    "REPORT_NAME",
    "MARKET_RUN_ID",
    "PUBLICATION_TYPE",
    "PUBLICATION_TIME",
    "TRADE_DAY_OFFSET",
    "TZ",
)

#: One entry of the publications log: when, the trading day, the status
#: and the version.
_LogEntry = tuple[datetime.datetime, datetime.date, str, int]


@attr.s(eq=False, auto_attribs=True)
class PublicationSchedule:
    """
    Which trading days have data, by the simulator's clock and settings.
    """

    settings: Settings

    def available(self) -> tuple[datetime.date, datetime.date]:
        """
        @return: The first and last trading days that have data.
        """
        last = self.settings.last_day
        if last is None:
            last = self.last_published()
        return self.settings.first_day, last

    def last_published(self) -> datetime.date:
        """
        @return: The newest trading day published by now.
        """
        moment = self.settings.clock.seconds() - self.settings.publish_offset
        return datetime.datetime.fromtimestamp(moment, PACIFIC).date()

    def published_at(self, day: datetime.date) -> datetime.datetime:
        """
        @return: When trading day C{day} is (or was) published.
        """
        return day_start(day) + datetime.timedelta(seconds=self.settings.publish_offset)

    def data_window(
        self, start: datetime.datetime, end: datetime.datetime
    ) -> tuple[datetime.datetime, datetime.datetime]:
        """
        @return: The part of [start, end) that has data.
        @raise OasisError: 1000 if none of it has.
        """
        first, last = self.available()
        start, end = max(start, day_start(first)), min(end, day_start(last + datetime.timedelta(days=1)))
        if start >= end:
            raise OasisError(1000)
        return start, end


@attr.s(eq=False, auto_attribs=True)
class PublicationLog:
    """
    The revisions of the simulator's data, and the C{ATL_PUB} and
    C{ATL_PUB_SCHED} answers that list publications and revisions.
    """

    settings: Settings
    schedule: PublicationSchedule
    _revisions: dict[tuple[str, datetime.date], list[datetime.datetime]] = attr.ib(factory=dict, init=False)

    def revise(self, queryname: str, day: datetime.date) -> int:
        """
        Revise trading day C{day} of report C{queryname} (every market) now.

        @return: The day's revision count.
        @raise ValueError: for a report the log does not cover.
        """
        if queryname not in CATALOGUE:
            raise ValueError(
                f"{queryname} is not in the simulator's publications log, which covers"
                f" {', '.join(CATALOGUE)}: its revision would go unannounced"
            )
        # The log has whole seconds: round up, so that nothing fetched
        # before the change looks as if fetched after it.
        moment = datetime.datetime.fromtimestamp(math.ceil(self.settings.clock.seconds()), UTC)
        revisions = self._revisions.setdefault((queryname, day), [])
        revisions.append(moment)
        return len(revisions)

    def revisions(self, queryname: str, day: datetime.date) -> int:
        """
        @return: How many times trading day C{day} of report C{queryname}
            was revised.
        """
        return len(self._revisions.get((queryname, day), ()))

    def revision_tag(self, queryname: str, start: datetime.datetime, end: datetime.datetime) -> str:
        """
        @return: What the revisions of the days in [start, end) add to the
            seed of an answer's creation time (nothing, for days never
            revised).
        """
        if not self._revisions:
            return ""
        first = start.astimezone(PACIFIC).date()
        last = (end - datetime.timedelta(seconds=1)).astimezone(PACIFIC).date()
        return "".join(
            f"|{day}r{len(times)}"
            for (name, day), times in sorted(self._revisions.items())
            if name == queryname and first <= day <= last
        )

    def answer(self, args: dict[str, str]) -> bytes:
        """
        Answer C{ATL_PUB}: the entries published in [start, end) and by
        now, oldest first; or C{ATL_PUB_SCHED}: when each report is
        published.
        """
        if self.settings.broken_log:
            raise OasisError(1005)
        request_version(args)
        start = parse_gmt(args.get("startdatetime"))
        end = parse_gmt(args.get("enddatetime"))
        if end < start:
            raise OasisError(1002)
        queryname = args["queryname"]
        entry = report_entry(queryname)
        if entry is None:
            raise OasisError(1005)
        start, end = served_window(entry, args, start, end)
        market = args.get("market_run_id", "ALL")
        now = datetime.datetime.fromtimestamp(self.settings.clock.seconds(), UTC)
        if queryname == PUBLICATIONS_SCHEDULE:
            columns, rows = list(SCHEDULE_COLUMNS), self.schedule_rows(market)
        else:
            columns, rows = list(PUBLICATION_COLUMNS), self.publication_rows(market, start, min(end, now))
        if not rows:
            raise OasisError(1000)
        created = now.replace(microsecond=0)
        stem = f"{day_names(start, end)}_{queryname}"
        if args.get("resultformat") == "6":
            name = f"{stem}_{created:%Y%m%d_%H_%M_%S}_v1.csv"
            return deterministic_zip([(name, csv_document(columns, rows))], created)
        return deterministic_zip([(f"{stem}_v1.xml", atlas_xml(queryname, columns, rows, created))], created)

    def _entries(self, start: datetime.datetime, end: datetime.datetime) -> list[_LogEntry]:
        """
        @return: The first publications, in [start, end), of the days that
            have data.
        """
        first, last = self.schedule.available()
        offset = datetime.timedelta(seconds=self.settings.publish_offset)
        day = max(first, (start - offset).astimezone(PACIFIC).date() - datetime.timedelta(days=1))
        entries = []
        while day <= last and day <= (end - offset).astimezone(PACIFIC).date() + datetime.timedelta(days=1):
            moment = self.schedule.published_at(day)
            if start <= moment < end:
                entries.append((moment, day, "PUBLISHED", 1))
            day += datetime.timedelta(days=1)
        return entries

    def publication_rows(self, market: str, start: datetime.datetime, end: datetime.datetime) -> list[Row]:
        """
        @return: The log's entries published in [start, end).
        """
        first, last = self.schedule.available()
        entries = self._entries(start, end)
        revised: dict[str, list[_LogEntry]] = {}
        for (queryname, day), times in self._revisions.items():
            for number, moment in enumerate(times, start=2):
                if start <= moment < end and first <= day <= last:
                    revised.setdefault(queryname, []).append((moment, day, "REVISED", number))
        rows: list[Row] = []
        for report, name in _pairs(market):
            for moment, day, status, number in sorted(entries + revised.get(report.queryname, [])):
                rows.append(
                    {
                        "PUBLICATION_TIME_GMT": iso(moment),
                        "OPR_DT": day.isoformat(),
                        "OASIS_SECTION": SECTIONS[report.layout],
                        "REPORT_NAME": report.queryname,
                        "MARKET_RUN_ID": name,
                        "STATUS": status,
                        "ATLPUB_VERSION": number,
                        "DESCRIPTION": f"{report.queryname} {name} {day:%m/%d/%Y} "
                        + ("published" if number == 1 else f"revision {number - 1}"),
                    }
                )
        rows.sort(key=lambda row: str(row["PUBLICATION_TIME_GMT"]))
        return rows

    def schedule_rows(self, market: str) -> list[Row]:
        """
        @return: The publication schedule: one daily entry per report and
            market, at the local time C{publish_offset} gives.
        """
        days, seconds = divmod(int(self.settings.publish_offset), 86400)
        return [
            {
                "OASIS_SECTION": SECTIONS[report.layout],
                "REPORT_NAME": report.queryname,
                "MARKET_RUN_ID": name,
                "PUBLICATION_TYPE": "DAILY",
                "PUBLICATION_TIME": f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}",
                "TRADE_DAY_OFFSET": -days,
                "TZ": "PPT",
            }
            for report, name in _pairs(market)
        ]


def _pairs(market: str) -> Iterator[tuple[SimReport, str]]:
    """
    @return: The (report, market) pairs the log covers, for C{market}
        (C{"ALL"} or empty: every market).
    """
    for report in CATALOGUE.values():
        for name in report.markets:
            if market in ("ALL", "", name):
                yield report, name
