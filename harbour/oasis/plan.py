"""
What a configuration costs in requests: per report, how many requests its
range needs and how long they take under OASIS's politeness rule.  Under a
rule of one request every few seconds, requests are the cost of a mirror,
whatever the bandwidth.

Each request is counted once, as C{harbourctl manifest} lists it; but the
days still ahead of a report OASIS serves only current data of and
publishes ahead are asked again every day until they are today
(L{harbour.oasis.requests.published_ahead}): those are counted apart, as
requests made again each day (L{ReportPlan.again_daily}).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import attr

from harbour.config.schema import MONTH_WINDOW, ManifestTopic, ReportTopic, window_hours
from harbour.oasis.requests import (
    ONE_DAY,
    DayTable,
    publication_delay,
    published_ahead,
    report_range,
    report_urls,
)


@attr.s(frozen=True, auto_attribs=True)
class ReportPlan:
    """
    The requests of one report over its range.

    @ivar window: The span of one request.
    @ivar first: The first trading day of the range.
    @ivar last: The last trading day of the range.
    @ivar requests: The requests of its range, each counted once.
    @ivar again_daily: How many of them are made again every day: the
        windows of days after today of a report published ahead, as many
        as its publication delay makes out each day (six days of
        C{TRNS_CURR_USAGE}, whatever the range's end), each asked again
        each day until it is today (so a day ahead is fetched up to
        C{again_daily + 1} times); not in C{requests}.
    """

    report: str
    window: str
    first: datetime.date
    last: datetime.date
    requests: int
    again_daily: int = 0

    def seconds(self, interval: float) -> float:
        """
        @return: How long the requests take, one every C{interval} seconds.
        """
        return self.requests * interval

    @property
    def daily(self) -> bool:
        """
        Whether one request covers a trading day or more (a month too): a
        report asked in shorter windows (the catalogue's limit, or the
        configuration's choice) cannot be asked one request a day.
        """
        return not self.window or self.window == MONTH_WINDOW or window_hours(self.window) >= 24


def plan(manifest: ManifestTopic, reports: Iterable[ReportTopic], today: datetime.date) -> list[ReportPlan]:
    """
    @return: The plan of every enabled report, in the configuration's order.
    """
    plans = []
    for report in reports:
        if not report.enabled:
            continue
        first, last = report_range(manifest, report, today)
        urls = report_urls(manifest, [report], today)
        again = 0
        if published_ahead(report):
            # The days out at some time of today, as the daemon asks them
            # (see available_through): the range's later days are asked,
            # once each, only when their time comes.
            out = math.ceil(-publication_delay(report) / 24)
            table = DayTable(ZoneInfo(manifest.timezone))
            tomorrow, beyond = table.start(today + ONE_DAY), table.start(today + (out + 1) * ONE_DAY)
            again = sum(1 for url in urls if tomorrow <= url.window_start < beyond)
        plans.append(ReportPlan(report.name, report.window or "", first, last, len(urls), again))
    return plans


def trading_days(plans: Iterable[ReportPlan]) -> int:
    """
    @return: The requests of the same reports at one request per trading
        day, as most scripts ask; those asked in windows shorter than a
        day (not L{ReportPlan.daily}) left out, as they cannot be asked
        so.
    """
    return sum((p.last - p.first).days + 1 for p in plans if p.daily and p.last >= p.first)
