"""
CAISO OASIS rules: trading days, request windows, URLs and file names.

Multi-day windows are blocks of days counted from a fixed Monday
(L{ANCHOR}), never from today or from the start of the range: a request's
URL and file name stay the same as days pass.

A trading day is a day of the market's time zone (Pacific), so it starts at
07:00Z in summer and 08:00Z in winter, and the spring and autumn change days
have 23 and 25 hours.  Times in URLs are GMT in the C{yyyymmddThh24:mi-0000}
form.  One request covers at most a report's C{window}, never more than 31
days, and never crosses the end of the requested range.
"""

from __future__ import annotations

import datetime
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo

import attr

from harbour.config.schema import MAX_WINDOW_HOURS, ManifestTopic, ReportTopic, resolve_day, window_hours
from harbour.oasis.catalogue import load_catalogue, offset_hours

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)
ONE_HOUR = datetime.timedelta(hours=1)


class UnsafeName(ValueError):
    """
    A file name would leave the download directory.
    """


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReportURL:
    """
    One request of one report: what to fetch and where to keep it.

    @ivar filename: Relative to the download directory; never leaves it.
    @ivar window_start: The first instant covered (UTC).
    @ivar window_end: The instant after the last one covered (UTC).
    """

    url: str
    filename: str
    report: str
    window_start: datetime.datetime
    window_end: datetime.datetime

    def to_json(self) -> dict:
        """
        @return: This request as plain JSON data.
        """
        return {
            "url": self.url,
            "filename": self.filename,
            "report": self.report,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
        }


def gmt(moment: datetime.datetime) -> str:
    """
    @return: C{moment} in OASIS's URL form, such as C{20250309T08:00-0000}.
    """
    return moment.astimezone(UTC).strftime("%Y%m%dT%H:%M-0000")


def trading_day(day: datetime.date, zone: ZoneInfo) -> tuple[datetime.datetime, datetime.datetime]:
    """
    @return: The UTC start and end of trading day C{day} in C{zone}.
    """
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=zone)
    following = day + ONE_DAY
    end = datetime.datetime(following.year, following.month, following.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def confined(path: str) -> str:
    """
    @return: C{path} if, relative to a directory, it stays inside it.
    @raise UnsafeName: if it is absolute or climbs out.
    """
    normal = posixpath.normpath(path)
    if (
        not path
        or path.startswith("/")
        or normal == "."
        or normal == ".."
        or normal.startswith("../")
        or "\\" in path
        or "\x00" in path
    ):
        raise UnsafeName(f"{path!r} would leave the download directory")
    return normal


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Window:
    """
    One request window: its UTC bounds, the same in URL form, and its name.
    """

    start: datetime.datetime
    end: datetime.datetime
    start_text: str
    end_text: str
    label: str


class DayTable:
    """
    Trading-day bounds and request windows, computed once and shared by
    every report: most reports ask for the same days.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._days: dict[datetime.date, tuple[datetime.datetime, datetime.datetime]] = {}
        self._texts: dict[datetime.datetime, str] = {}
        self._windows: dict[tuple[datetime.date, datetime.date, int], list[Window]] = {}

    def bounds(self, day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
        """
        @return: The UTC start and end of C{day}.
        """
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = trading_day(day, self.zone)
        return found

    def window(self, start: datetime.datetime, end: datetime.datetime, label: str) -> Window:
        """
        @return: A window, its times in URL form from a cache.
        """
        texts = self._texts
        start_text = texts.get(start) or texts.setdefault(start, gmt(start))
        end_text = texts.get(end) or texts.setdefault(end, gmt(end))
        return Window(start, end, start_text, end_text, label)

    def windows(self, first: datetime.date, last: datetime.date, hours: int) -> list[Window]:
        """
        @return: The windows of up to C{hours} hours covering trading days
            C{first} to C{last}, newest first (cached).
        """
        key = (first, last, hours)
        found = self._windows.get(key)
        if found is None:
            if hours % 24 == 0:
                found = list(day_windows(first, last, hours // 24, self))
            else:
                found = list(hour_windows(first, last, hours, self))
            self._windows[key] = found
        return found


#: Multi-day windows are blocks of trading days counted from this Monday, so
#: that a window's bounds and name never move with today or with the range.
ANCHOR = datetime.date(1970, 1, 5)


def day_windows(first: datetime.date, last: datetime.date, days: int, table: DayTable) -> Iterator[Window]:
    """
    Windows of up to C{days} trading days from C{first} to C{last}
    inclusive, newest first.

    Each is a block of C{days} days counted from L{ANCHOR}, cut to the
    range: a complete block keeps its bounds and name whatever the range,
    the newest one grows as its days arrive and the oldest shrinks as a
    relative start passes it, under the block's own name throughout.
    """
    block = (last - ANCHOR).days // days
    while True:
        block_first = ANCHOR + datetime.timedelta(days=block * days)
        block_last = block_first + datetime.timedelta(days=days - 1)
        if block_last < first:
            return
        label = block_first.isoformat()
        if days > 1:
            label += "_" + block_last.isoformat()
        start_day, end_day = max(first, block_first), min(last, block_last)
        yield table.window(table.bounds(start_day)[0], table.bounds(end_day)[1], label)
        block -= 1


def hour_windows(first: datetime.date, last: datetime.date, hours: int, table: DayTable) -> Iterator[Window]:
    """
    Windows of up to C{hours} hours within each trading day, newest day
    first; a day has 23, 24 or 25 hours, numbered from 1 as OASIS numbers
    them (C{OPR_HR}).
    """
    step = datetime.timedelta(hours=hours)
    day = last
    while day >= first:
        start, end = table.bounds(day)
        moment, number = start, 1
        windows = []
        while moment < end:
            following = min(end, moment + step)
            windows.append(table.window(moment, following, f"{day.isoformat()}_H{number:02d}"))
            moment, number = following, number + hours
        yield from windows
        day -= ONE_DAY


class ReportRequests:
    """
    Builds the requests of one report: a fixed URL prefix and suffix around
    the window's times, so that each URL costs a few concatenations.
    """

    def __init__(self, base_url: str, report: ReportTopic) -> None:
        self.name = report.name
        confined(report.name)
        # The schema gives exactly one of groupid and queryname, as kind says.
        if report.kind == "group_zip":
            assert report.groupid is not None
            self.prefix = f"{base_url}/GroupZip?groupid={quote(report.groupid, safe='')}&startdatetime="
            self.suffix = f"&version={report.version}"
        else:
            assert report.queryname is not None
            self.prefix = f"{base_url}/SingleZip?queryname={quote(report.queryname, safe='')}&startdatetime="
            tail = []
            if report.market_run_id:
                tail.append(f"market_run_id={quote(report.market_run_id, safe='')}")
            tail.append(f"version={report.version}")
            if report.resultformat == "csv":
                tail.append("resultformat=6")
            tail.extend(
                f"{quote(key, safe='')}={quote(value, safe=',')}"
                for key, value in sorted(report.params.items())
            )
            self.suffix = "&" + "&".join(tail)

    def request(self, window: Window) -> ReportURL:
        """
        @return: The request for one window.
        """
        url = f"{self.prefix}{window.start_text}&enddatetime={window.end_text}{self.suffix}"
        return ReportURL(url, f"{self.name}/{window.label}.zip", self.name, window.start, window.end)


def report_range(
    manifest: ManifestTopic, report: ReportTopic, today: datetime.date
) -> tuple[datetime.date, datetime.date]:
    """
    @return: The first and last trading day of C{report}.
    """
    first = resolve_day(report.start or manifest.start, today)
    last = resolve_day(report.end or manifest.end, today)
    return first, last


def report_urls(
    manifest: ManifestTopic,
    reports: Iterable[ReportTopic],
    today: datetime.date,
    start: datetime.date | None = None,
    end: datetime.date | None = None,
    published: Mapping[str, datetime.date] | None = None,
    now: float | None = None,
) -> list[ReportURL]:
    """
    Every request of every enabled report, each report's newest windows
    first.

    @param start: Overrides every report's first day.
    @param end: Overrides every report's last day.
    @param published: The last day published of the reports it names:
        their later days are left out.
    @param now: If given, leave out what cannot exist yet at this POSIX
        time (see L{available_through}): the newest window covers only the
        days already published.
    """
    table = DayTable(ZoneInfo(manifest.timezone))
    result: list[ReportURL] = []
    for report in reports:
        if not report.enabled:
            continue
        first, last = report_range(manifest, report, today)
        first, last = start or first, end or last
        if published and report.name in published:
            last = min(last, published[report.name])
        requests = ReportRequests(manifest.base_url, report)
        assert report.window is not None, "a report's window is filled in when it is built"
        hours = min(window_hours(report.window), MAX_WINDOW_HOURS)
        if now is None:
            result.extend(map(requests.request, table.windows(first, last, hours)))
            continue
        delay = publication_delay(report) * 3600
        last = min(last, available_through(table, now, delay, hourly=hours % 24 != 0))
        windows = table.windows(first, last, hours)
        if hours % 24 and delay >= 0:
            windows = [w for w in windows if w.end.timestamp() + delay <= now]
        result.extend(map(requests.request, windows))
    return result


def publication_delay(report: ReportTopic) -> float:
    """
    @return: In hours, when a window's data exists: before the start of
        its (last) trading day when negative, after the window ends when
        positive; the report's own C{publication_delay}, else the
        catalogue's for its report and market, else 0.
    """
    if report.publication_delay is not None:
        return offset_hours(report.publication_delay)
    catalogue = load_catalogue()
    entry = (
        catalogue.entry(queryname=report.queryname)
        if report.queryname
        else catalogue.entry(groupid=report.groupid)
    )
    return entry.publication_delay_hours_for(report.market_run_id) if entry is not None else 0.0


def available_through(table: DayTable, now: float, delay: float, hourly: bool) -> datetime.date:
    """
    @param delay: Seconds, as L{publication_delay} says.
    @param hourly: Whether the windows are hours (then the day under way
        counts, its hours are looked at one by one).
    @return: The last trading day whose data can exist at C{now}.
    """
    day = datetime.datetime.fromtimestamp(now - delay, UTC).astimezone(table.zone).date()
    # A positive delay runs from the end of the window: a whole day is out
    # only once it has ended.
    return day - ONE_DAY if delay >= 0 and not hourly else day


def market_today(manifest: ManifestTopic, now: float) -> datetime.date:
    """
    @return: The current trading day in the manifest's time zone at the
        POSIX time C{now}.
    """
    return datetime.datetime.fromtimestamp(now, ZoneInfo(manifest.timezone)).date()
