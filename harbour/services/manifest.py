"""
The C{manifest} service (the seed's MANIFEST SERVER): which requests exist.

It follows the C{manifest} and C{reports} topics on the bus and answers
L{ManifestService.reports} with every request of the enabled reports, from
their first day to their last, capped at the days the publications log
shows published, and leaving out whatever cannot exist yet (a window's
data exists only from its report's publication delay on).  It does no I/O: the list is computed once per
configuration, trading day and set of caps, then reused.  The requests
of the days still ahead of a report OASIS serves only current data of and
publishes ahead are named apart too (L{ManifestService.ahead}): they are
fetched again each day.
"""

from __future__ import annotations

import datetime
from collections.abc import Generator
from typing import Any
from zoneinfo import ZoneInfo

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.bus import Subscription
from harbour.config.paging import follow_reports
from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.interfaces import IBus, IEvent, IManifest, IPublications, IStatusSource, StatusDocument
from harbour.oasis.publications import PACIFIC, Publication, hour_bounds
from harbour.oasis.requests import (
    DayTable,
    ReportRequests,
    ReportURL,
    Windows,
    current_only_past,
    market_today,
    pacific_windows,
    published_ahead,
    published_last,
    report_range,
    report_urls,
    serves_history,
    trading_day,
    windows_holding,
)
from harbour.services.knowledge import report_key


@implementer(IManifest, IStatusSource)
@attr.s(eq=False)
class ManifestService(Service):
    """
    Computes the report requests of the current configuration.

    @ivar publications: Where the publication caps come from; L{None}: no
        caps (plain date ranges).
    """

    reactor: IReactorTime = attr.ib()
    bus: IBus = attr.ib()
    publications: IPublications | None = attr.ib(default=None)
    manifest: ManifestTopic = attr.ib(factory=ManifestTopic)
    definitions: list[ReportTopic] = attr.ib(factory=list)
    _version: int = attr.ib(default=0, init=False)
    _cache: tuple[tuple[int, datetime.date, dict[str, datetime.date], float], list[ReportURL]] | None = (
        attr.ib(default=None, init=False)
    )
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the configuration.
        """
        super().startService()
        self._subscriptions = yield gatherResults(
            [
                self.bus.subscribe("manifest", self._manifest_changed),
                follow_reports(self.bus, self._reports_changed),
            ]
        )

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop following the configuration.
        """
        super().stopService()
        subscriptions, self._subscriptions = self._subscriptions, []
        yield gatherResults([self.bus.unsubscribe(s) for s in subscriptions])

    def _manifest_changed(self, event: IEvent) -> None:
        self.manifest = ManifestTopic.from_payload(event.payload)
        self._version += 1

    def _reports_changed(self, reports: list[ReportTopic]) -> None:
        self.definitions = reports
        self._version += 1

    def today(self) -> datetime.date:
        """
        @return: The current trading day.
        """
        return market_today(self.manifest, self.reactor.seconds())

    def reports(self) -> list[ReportURL]:
        """
        See L{IManifest.reports}.
        """
        now = self.reactor.seconds()
        # Windows become available as time passes: the list is computed
        # again at most once a minute.
        key = (self._version, self.today(), self._caps(), now // 60)
        if self._cache is None or self._cache[0] != key:
            urls = report_urls(self.manifest, self.definitions, key[1], published=key[2], now=now)
            self._cache = (key, urls)
        return self._cache[1]

    def held_back(self) -> list[ReportURL]:
        """
        See L{IManifest.held_back}.
        """
        caps = self._caps()
        now, today = self.reactor.seconds(), self.today()
        held: list[ReportURL] = []
        for report in self.definitions:
            cap = caps.get(report.name)
            if cap is None or not report.enabled:
                continue
            first, last = report_range(self.manifest, report, today)
            # Months and a group's days asked by their start are OASIS's
            # own, as the cap's day is (see report_urls).
            if not pacific_windows(report):
                cap = published_last(ZoneInfo(self.manifest.timezone), cap)
            start = max(first, cap + datetime.timedelta(days=1))
            held.extend(report_urls(self.manifest, [report], today, start=start, end=last, now=now))
        held.extend(current_only_past(self.manifest, self.definitions, today))
        return held

    def ahead(self) -> tuple[float, list[ReportURL]]:
        """
        See L{IManifest.ahead}.
        """
        names = {report.name for report in self.definitions if report.enabled and published_ahead(report)}
        since = DayTable(ZoneInfo(self.manifest.timezone)).start(self.today()).timestamp()
        return since, [request for request in self.reports() if request.report in names] if names else []

    def report_names(self) -> set[str]:
        """
        See L{IManifest.report_names}.
        """
        return {report.name for report in self.definitions}

    def _caps(self) -> dict[str, datetime.date]:
        return self.publications.published_through() if self.publications is not None else {}

    def revised(self, entries: list[Publication]) -> list[tuple[ReportURL, Publication]]:
        """
        See L{IManifest.revised}: the windows asked for now, and those of
        the same reports that are not (a report disabled, a window out of
        range or held back), whose tasks may be retired and come back.
        """
        names: dict[tuple[str, str], list[ReportTopic]] = {}
        for report in self.definitions:
            # Disabled ones too: a revision of a retired window must reach
            # it before it comes back.  (Reports of Pacific windows, months
            # and a group's days, are not logged: the windows matched below
            # are the manifest's days.)
            # Nor are those OASIS serves only current data of: a window
            # asked again once over would hold the interval current then,
            # not its own (a day ahead is fetched again each day anyway).
            if report.queryname and not pacific_windows(report) and serves_history(report):
                names.setdefault(report_key(report), []).append(report)
        relevant = [entry for entry in entries if entry.key in names]
        if not relevant:
            return []
        named = {report.name for entry in relevant for report in names[entry.key]}
        asked = {request.filename: request for request in self.reports() if request.report in named}
        table = DayTable(ZoneInfo(self.manifest.timezone))
        # Reports of one window size share the windows holding an entry.
        holding: dict[tuple[str, datetime.datetime, datetime.datetime], Windows] = {}
        builders: dict[str, ReportRequests] = {}
        found: list[tuple[ReportURL, Publication]] = []
        for entry in relevant:
            # The log's days and hours are OASIS's (Pacific), whatever the
            # zone of the manifest's days: its windows are matched by time.
            low, high = trading_day(entry.day, PACIFIC)
            if entry.hour is not None:
                # It concerns the windows holding its hour: those of the
                # day's other hours were not changed by it.
                low, high = hour_bounds(entry.day, entry.hour, PACIFIC)
            for report in names[entry.key]:
                assert report.window is not None, "a report's window is filled in when it is built"
                # The few windows holding the entry's time, worked out from
                # it rather than looked for among the report's thousands.
                key = (report.window, low, high)
                if key not in holding:
                    holding[key] = windows_holding(table, report.window, low, high)
                windows, unlisted = holding[key], []
                for i, tail in enumerate(windows.tails):
                    listed = asked.get(report.name + tail)
                    if listed is None:
                        unlisted.append(i)
                    elif listed.window_start < high and listed.window_end > low:
                        # Asked for now, maybe cut to the range: only if
                        # what it asks for holds the entry's time.
                        found.append((listed, entry))
                if unlisted:
                    if report.name not in builders:
                        builders[report.name] = ReportRequests(self.manifest.base_url, report)
                    requests = builders[report.name].requests(windows.picked(unlisted))
                    found.extend((request, entry) for request in requests)
        return found

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}.
        """
        return {
            "reports": sum(1 for r in self.definitions if r.enabled),
            "requests": len(self._cache[1]) if self._cache else None,
            "base_url": self.manifest.base_url,
        }
