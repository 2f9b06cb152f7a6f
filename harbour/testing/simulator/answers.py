"""
The answers of C{SingleZip} and C{GroupZip}: which report, market and
window a request asks for, what OASIS refuses, and the data zip of the
rest.

A report or group the simulator has a generator for (L{CATALOGUE},
L{GROUPS}) gets that generator's data; any other that harbour's catalogue
knows gets L{GenericReport} data; other names are refused (1005, 1016).
Limits come from the catalogue (L{harbour.testing.simulator.limits}).
"""

from __future__ import annotations

import datetime
import hashlib
import random

import attr

from harbour.oasis.catalogue import CatalogueEntry
from harbour.testing.simulator.documents import deterministic_zip
from harbour.testing.simulator.formats import (
    Draws,
    OasisError,
    Span,
    created_after,
    parse_gmt,
    request_version,
)
from harbour.testing.simulator.generic import GenericReport, market_of
from harbour.testing.simulator.limits import (
    asked_end,
    check_lists,
    check_required,
    group_entry,
    report_entry,
    served_window,
)
from harbour.testing.simulator.publications import (
    PUBLICATIONS_LOG,
    PUBLICATIONS_SCHEDULE,
    PublicationLog,
    PublicationSchedule,
)
from harbour.testing.simulator.reports import (
    CATALOGUE,
    GROUP_EXECUTION_TYPES,
    GROUPS,
    SimReport,
    report_members,
)
from harbour.testing.simulator.settings import Settings

#: One part of a data zip: a report with a generator of its own, its
#: market and C{execution_type} (if any), or generic data.
_Part = tuple[SimReport, str, str | None] | GenericReport


@attr.s(eq=False, auto_attribs=True)
class Answers:
    """
    Answers data requests with zips, or refuses them with L{OasisError}.
    """

    settings: Settings
    schedule: PublicationSchedule
    log: PublicationLog
    _group_seen: set[tuple[str, datetime.datetime, datetime.datetime, int]] = attr.ib(factory=set, init=False)

    def single_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a SingleZip request.
        """
        if not args:
            raise OasisError(1011)
        queryname = args.get("queryname", "")
        if queryname in (PUBLICATIONS_LOG, PUBLICATIONS_SCHEDULE):
            return self.log.answer(args)
        entry = report_entry(queryname)
        if entry is None:
            raise OasisError(1005)
        version = request_version(args)
        start = parse_gmt(args.get("startdatetime"))
        end = parse_gmt(args.get("enddatetime"))
        if end < start:
            raise OasisError(1002)
        part = _single_part(entry, args)
        start, end = served_window(entry, args, start, end)
        check_lists(entry, args)
        return self._zip([part], version, start, end, url, args.get("resultformat") == "6")

    def group_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a GroupZip request: 1015 the first time a window is asked for.
        """
        if not args:
            raise OasisError(1011)
        groupid = args.get("groupid", "")
        entry = group_entry(groupid)
        parts, limits = _group_parts(groupid, entry)
        version = request_version(args)
        start = parse_gmt(args.get("startdatetime"))
        if "enddatetime" in args:
            end = parse_gmt(args["enddatetime"])
            if end < start:
                raise OasisError(1002)
            start, end = served_window(limits, args, start, end)
        else:
            # Without enddatetime OASIS answers the trading day (or, for a
            # month group, the month) that startdatetime begins: there is
            # no window of the client's to check.
            end = asked_end(entry, start)
        start, end = self.schedule.data_window(start, end)
        key = (groupid, start, end, version)
        if key not in self._group_seen:
            self._group_seen.add(key)
            raise OasisError(1015)
        return self._zip(parts, version, start, end, url, args.get("resultformat") == "6")

    def _zip(
        self,
        parts: list[_Part],
        version: int,
        start: datetime.datetime,
        end: datetime.datetime,
        url: str,
        csv_wanted: bool,
    ) -> bytes:
        """
        @return: The data zip of C{parts} over the part of [start, end) that
            has data.
        @raise OasisError: 1000 if none of it has.
        """
        start, end = self.schedule.data_window(start, end)
        names = [part.queryname if isinstance(part, GenericReport) else part[0].queryname for part in parts]
        created = created_after(end, self.stamp_source(url, names, start, end))
        span = Span(version, start, end, self.draws(), created, csv_wanted)
        members = []
        for part in parts:
            if isinstance(part, GenericReport):
                members += part.members(span)
            else:
                report, market, execution = part
                members += self.members(report, market, span, execution)
        return deterministic_zip(members, created)

    def draws(self) -> Draws:
        """
        @return: The random sources of the data: per report, market,
            resource and trading day, and the day's revisions (see
            L{Draws}).
        """
        return Draws(self.settings.seed, self.log.revisions)

    def stamp_source(
        self, url: str, querynames: list[str], start: datetime.datetime, end: datetime.datetime
    ) -> random.Random:
        """
        @return: The random source of an answer's creation time, the only
            part of it that depends on its URL: the same for the same seed,
            URL and revisions of the reports in it.
        """
        tag = "".join(self.log.revision_tag(queryname, start, end) for queryname in querynames)
        return random.Random(hashlib.sha256(f"{self.settings.seed}|{url}{tag}".encode()).digest())

    def members(
        self, report: SimReport, market: str, span: Span, execution: str | None = None
    ) -> list[tuple[str, bytes]]:
        """
        @param execution: The C{execution_type} asked for, if any.
        @return: (name, bytes) of each member of a report's data zip.
        """
        return report_members(report, market, span, self.settings.nodes, execution)


def _single_part(entry: CatalogueEntry, args: dict[str, str]) -> _Part:
    """
    @param entry: The catalogued report asked for.
    @param args: The request's query arguments: its C{market_run_id} and
        C{execution_type}, if any.
    @return: For a market the catalogue gives it, its own generator's data
        if it has one for that market, else generic data.
    @raise OasisError: 1001 for a market the catalogue does not give it,
        whatever its own generator could make, or without a parameter the
        catalogue requires in that market.
    """
    served = market_of(entry, args.get("market_run_id", ""))
    check_required(entry, args, served)
    report = CATALOGUE.get(entry.name)
    if report is not None and served is not None and served in report.markets:
        # OASIS compares parameter names without case.
        given = {name.lower(): value for name, value in args.items()}
        return report, served, given.get("execution_type")
    return GenericReport.of(entry, served)


def _group_parts(groupid: str, entry: CatalogueEntry | None) -> tuple[list[_Part], CatalogueEntry]:
    """
    @param groupid: The group asked for.
    @param entry: Its catalogue entry, if any.
    @return: The parts of its answers, and the catalogue entry whose limits
        apply: the group's, or for a group of the simulator's own that the
        catalogue lacks, its report's.
    @raise OasisError: 1016 for a group neither knows.
    """
    held = GROUPS.get(groupid)
    if held is not None:
        queryname, market = held
        limits = entry or report_entry(queryname)
        assert limits is not None, f"{queryname} is not catalogued"
        return [(CATALOGUE[queryname], market, None)], limits
    if entry is None:
        raise OasisError(1016)
    group_market = entry.market_run_ids[0] if entry.market_run_ids else None
    execution = GROUP_EXECUTION_TYPES.get(groupid)
    return [_group_part(queryname, group_market, execution) for queryname in entry.reports], entry


def _group_part(queryname: str, market: str | None, execution: str | None) -> _Part:
    """
    @param queryname: A report a catalogued group holds.
    @param market: The group's market, if it has one.
    @param execution: The C{execution_type} of the group's real-time
        data, if it has one (L{GROUP_EXECUTION_TYPES}).
    @return: The report's own generator's data if it has one for that
        market, else generic data.
    """
    report = CATALOGUE.get(queryname)
    if report is not None and market is not None and market in report.markets:
        return report, market, execution
    entry = report_entry(queryname)
    # The catalogue checks that the reports of its groups are catalogued.
    assert entry is not None, f"{queryname} is not catalogued"
    return GenericReport.of(entry, market)
