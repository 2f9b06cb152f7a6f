"""
CAISO OASIS rules: trading days, request windows, URLs and file names.

Multi-day windows are blocks of days counted from a fixed Monday
(L{ANCHOR}), never from today or from the start of the range: a request's
URL and file name stay the same as days pass.

A trading day is a day of the market's time zone (Pacific), so it starts at
07:00Z in summer and 08:00Z in winter, and the spring and autumn change days
have 23 and 25 hours.  Times in URLs are GMT in the C{yyyymmddThh24:mi-0000}
form.  One request covers at most a report's C{window}, never more than 31
days, and never crosses the end of the requested range; but a group whose
one answer holds its calendar month is asked for once a month, whole
(L{month_windows}).
"""

from __future__ import annotations

import datetime
import gc
import operator
import posixpath
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import repeat
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import attr
from attr.validators import and_, instance_of, min_len

from harbour.config.schema import (
    MAX_WINDOW_HOURS,
    MONTH_WINDOW,
    ManifestTopic,
    ReportTopic,
    resolve_day,
    window_hours,
)
from harbour.oasis.catalogue import (
    CSV_RESULTFORMAT,
    LONGEST_DAY_HOURS,
    CatalogueEntry,
    load_catalogue,
    offset_hours,
)
from harbour.oasis.publications import PACIFIC

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)
#: An aware date and time, as a request's bounds are.
Moment = datetime.datetime


class UnsafeName(ValueError):
    """
    A file name would leave the download directory.
    """


def _confined_filename(instance: object, attribute: attr.Attribute[str], filename: str) -> None:
    """
    Refuse a file name that would leave the download directory.
    """
    confined(filename)


def _aware(instance: object, attribute: attr.Attribute[datetime.datetime], moment: datetime.datetime) -> None:
    """
    Refuse a time without a time zone.
    """
    if moment.utcoffset() is None:
        raise ValueError(f"{attribute.name} {moment!r} has no time zone")


def _not_before_start(instance: Any, attribute: attr.Attribute[datetime.datetime], end: Moment) -> None:
    """
    Refuse a window that ends before it starts.
    """
    if end < instance.window_start:
        raise ValueError(f"window_end {end!r} is before window_start {instance.window_start!r}")


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ReportURL:
    """
    One request of one report: what to fetch and where to keep it.

    Built from outside (a test, a tool), it checks its values.  The
    requests of the manifest are built by L{ReportRequests.requests}
    without those checks, from parts already checked once per report and
    per window; see there why that is safe.

    @ivar filename: Relative to the download directory; never leaves it.
    @ivar window_start: The first instant covered (UTC).
    @ivar window_end: The instant after the last one covered (UTC); not
        before C{window_start}.
    @raise UnsafeName: if C{filename} would leave the download directory.
    @raise ValueError: if a time has no time zone or the window ends
        before it starts.
    @raise TypeError: if a value has the wrong type.
    """

    url: str = attr.ib(validator=and_(instance_of(str), min_len(1)))
    filename: str = attr.ib(validator=[instance_of(str), _confined_filename])
    report: str = attr.ib(validator=instance_of(str))
    window_start: Moment = attr.ib(validator=[instance_of(datetime.datetime), _aware])
    window_end: Moment = attr.ib(validator=[instance_of(datetime.datetime), _aware, _not_before_start])

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
    utc = moment.astimezone(UTC)
    # Formatted by hand: strftime costs twice as much, once per window.
    return f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}-0000"


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
    One request window: its UTC bounds and name, and the parts of its
    requests that are the same for every report, formatted once.

    @ivar times: The middle of its URLs, from C{startdatetime}'s value to
        C{enddatetime}'s.
    @ivar tail: What follows a report's name in its file names.
    """

    start: datetime.datetime
    end: datetime.datetime
    label: str
    times: str
    tail: str


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Windows:
    """
    Request windows, newest first, kept as columns: each report's requests
    are built a column at a time (see L{ReportRequests.requests}).
    """

    starts: tuple[datetime.datetime, ...]
    ends: tuple[datetime.datetime, ...]
    times: tuple[str, ...]
    tails: tuple[str, ...]

    @classmethod
    def of(cls, windows: Sequence[Window]) -> Windows:
        """
        @return: The columns of C{windows}, in their order.
        """
        return cls(
            tuple(w.start for w in windows),
            tuple(w.end for w in windows),
            tuple(w.times for w in windows),
            tuple(w.tail for w in windows),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def ending_by(self, now: float, delay: float) -> Windows:
        """
        @param delay: Seconds after its end that a window's data exists.
        @return: The windows whose data exists at the POSIX time C{now}.
        """
        return self.picked([i for i, end in enumerate(self.ends) if end.timestamp() + delay <= now])

    def overlapping(self, low: datetime.datetime, high: datetime.datetime) -> Windows:
        """
        @return: The windows that hold some instant from C{low} to just
            before C{high}.
        """
        return self.picked(
            [i for i, (start, end) in enumerate(zip(self.starts, self.ends)) if start < high and end > low]
        )

    def picked(self, kept: Sequence[int]) -> Windows:
        """
        @return: The windows at the indices C{kept}, in that order.
        """
        return Windows(
            tuple(self.starts[i] for i in kept),
            tuple(self.ends[i] for i in kept),
            tuple(self.times[i] for i in kept),
            tuple(self.tails[i] for i in kept),
        )

    def starts_only(self) -> Windows:
        """
        @return: These windows, their requests sending C{startdatetime}
            alone: a group's trading days, of which OASIS answers the one
            that starts there.
        """
        return attr.evolve(self, times=tuple(times.partition("&")[0] for times in self.times))


class DayTable:
    """
    Trading-day bounds and request windows, computed once and shared by
    every report: most reports ask for the same days.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._starts: dict[datetime.date, datetime.datetime] = {}
        self._texts: dict[datetime.datetime, str] = {}
        self._windows: dict[tuple[datetime.date, datetime.date, int], Windows] = {}

    def start(self, day: datetime.date) -> datetime.datetime:
        """
        @return: The UTC start of C{day}, which is also the end of the
            day before.
        """
        found = self._starts.get(day)
        if found is None:
            local = datetime.datetime(day.year, day.month, day.day, tzinfo=self.zone)
            found = self._starts[day] = local.astimezone(UTC)
        return found

    def bounds(self, day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
        """
        @return: The UTC start and end of C{day}, as L{trading_day} gives
            them; a day's end is the next one's start, worked out once.
        """
        return self.start(day), self.start(day + ONE_DAY)

    def window(self, start: datetime.datetime, end: datetime.datetime, label: str) -> Window:
        """
        @return: A window, its times in URL form from a cache.
        """
        texts = self._texts
        start_text = texts.get(start) or texts.setdefault(start, gmt(start))
        end_text = texts.get(end) or texts.setdefault(end, gmt(end))
        return Window(start, end, label, f"{start_text}&enddatetime={end_text}", f"/{label}.zip")

    def windows(self, first: datetime.date, last: datetime.date, hours: int) -> Windows:
        """
        @return: The windows of up to C{hours} hours covering trading days
            C{first} to C{last}, newest first (cached).
        """
        key = (first, last, hours)
        found = self._windows.get(key)
        if found is None:
            if hours % 24 == 0:
                found = Windows.of(list(day_windows(first, last, hours // 24, self)))
            else:
                found = Windows.of(list(hour_windows(first, last, hours, self)))
            self._windows[key] = found
        return found


def windows_holding(table: DayTable, window: str, low: datetime.datetime, high: datetime.datetime) -> Windows:
    """
    The windows of a report's C{window} (of days or hours, not months) that
    hold some instant from C{low} to just before C{high}, whatever its
    range: each named as in the manifest, which names a window by its block
    of days or its hour of a day, never by the range that cuts it, but cut
    to the days of C{table}'s zone that the instants fall on.
    """
    hours = min(window_hours(window), MAX_WINDOW_HOURS)
    first = low.astimezone(table.zone).date()
    last = (high - datetime.timedelta(microseconds=1)).astimezone(table.zone).date()
    return table.windows(first, last, hours).overlapping(low, high)


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
    relative start passes it, under the block's own name throughout.  A
    range that ends before it begins (a start still ahead) has none.
    """
    if last < first:
        return
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
        yield table.window(table.start(start_day), table.start(end_day + ONE_DAY), label)
        block -= 1


def month_windows(
    first: datetime.date, last: datetime.date, through: datetime.date | None, table: DayTable
) -> Iterator[Window]:
    """
    The calendar months of trading days that days C{first} to C{last}
    inclusive fall in, whole, newest first, named C{YYYY-MM}; those whose
    last day is after C{through} (not over, or not published yet) left
    out.

    A month is never cut to the range: its one answer holds every day of
    it (spec section 7, "the entire month data will be cached").  Its
    request is the spec's example's: C{startdatetime} the month's first
    trading day, and no C{enddatetime}, which OASIS takes only for HASP and
    real-time groups (section 2.2) and would refuse as longer than a day.
    """
    if last < first:
        return
    month = last.replace(day=1)
    # From the first of a month, 31 days on is in the next, never past it.
    following = (month + 31 * ONE_DAY).replace(day=1)
    while following > first:
        if through is None or following - ONE_DAY <= through:
            start = table.start(month)
            label = f"{month.year:04d}-{month.month:02d}"
            yield Window(start, table.start(following), label, gmt(start), f"/{label}.zip")
        month, following = (month - ONE_DAY).replace(day=1), month


def hour_windows(first: datetime.date, last: datetime.date, hours: int, table: DayTable) -> Iterator[Window]:
    """
    Windows of up to C{hours} hours within each trading day, newest day
    first; a day has 23, 24 or 25 hours, numbered from 1 in order.  (Not
    quite as OASIS numbers its hours ending, C{OPR_HR}: it has no 3 on the
    spring change day and numbers the autumn day's repeated hour 25.)
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
        # Groups take no market_run_id or params, and answer in CSV too
        # (spec section 8).
        tail = []
        params: Mapping[str, str] = {}
        if report.kind == "group_zip":
            assert report.groupid is not None
            self.prefix = f"{base_url}/GroupZip?groupid={quote(report.groupid, safe='')}&startdatetime="
        else:
            assert report.queryname is not None
            self.prefix = f"{base_url}/SingleZip?queryname={quote(report.queryname, safe='')}&startdatetime="
            if report.market_run_id:
                tail.append(f"market_run_id={quote(report.market_run_id, safe='')}")
            params = report.params
        tail.append(f"version={report.version}")
        if report.resultformat == "csv":
            tail.append(f"resultformat={CSV_RESULTFORMAT}")
        tail.extend(
            f"{quote(key, safe='')}={quote(value, safe=',')}" for key, value in sorted(params.items())
        )
        self.suffix = "&" + "&".join(tail)

    def requests(self, windows: Windows) -> list[ReportURL]:
        """
        The requests of C{windows}, built without L{ReportURL}'s checks and
        a column at a time: a manifest has hundreds of thousands of them,
        and checking each, or building each in a loop of Python, would
        cost more than the rest of the manifest.

        Skipping the checks is safe because every value they look at was
        checked or made here: the report's name passed L{confined} in the
        constructor and a window's tail is C{/<label>.zip} whose label is
        made of digits, dashes, an underscore and an C{H}, so the file
        name stays inside the report's directory; the bounds come from
        L{DayTable}, aware and in order; the URL starts with the prefix.

        @return: The request of each window, in order.
        """
        prefix, suffix, name = self.prefix, self.suffix, self.name
        set_url, set_filename, set_report, set_start, set_end = _SLOT_SETTERS
        made = list(map(object.__new__, repeat(ReportURL, len(windows))))
        _fill(set_url, made, [f"{prefix}{times}{suffix}" for times in windows.times])
        _fill(set_filename, made, map(operator.add, repeat(name), windows.tails))
        _fill(set_report, made, repeat(name))
        _fill(set_start, made, windows.starts)
        _fill(set_end, made, windows.ends)
        return made


#: Writers of L{ReportURL}'s slots in the order of its fields, for
#: L{ReportRequests.requests}: they fill a frozen instance without its
#: checks.
_SLOT_SETTERS = tuple(getattr(ReportURL, field.name).__set__ for field in attr.fields(ReportURL))


def _fill(setter: Callable[[ReportURL, Any], None], made: list[ReportURL], values: Iterable[Any]) -> None:
    """
    Call C{setter} on each of C{made} with the matching value, from C.
    """
    deque(map(setter, made, values), maxlen=0)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """
    Pause the cyclic garbage collector while a manifest is built.

    A manifest is up to hundreds of thousands of new objects that outlive
    the call and form no cycle; with the collector running, each growth of
    the heap by a quarter sets off a full collection, which together cost
    more than building them.  A large manifest pays at the end for one
    collection of the young generations, which moves its objects to the
    oldest, so that nothing is left for whoever allocates next.  Not a
    full collection: that would walk the daemon's whole heap, however
    large, for every manifest; the oldest generation is collected when
    the interpreter's own rule says so.
    """
    if not gc.isenabled():
        yield
        return
    before = gc.get_count()[0]
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        if gc.get_count()[0] - before > _SETTLE_ABOVE:
            gc.collect(1)


#: New objects above which a paused collection is settled by a young one:
#: below it, the next young collection takes them in its stride.
_SETTLE_ABOVE = 50_000


def report_range(
    manifest: ManifestTopic, report: ReportTopic, today: datetime.date
) -> tuple[datetime.date, datetime.date]:
    """
    @return: The first and last trading day of C{report}: for a report
        OASIS serves only current data of (L{serves_history}), none before
        C{today}.
    """
    first = resolve_day(report.start or manifest.start, today)
    last = resolve_day(report.end or manifest.end, today)
    if not serves_history(report):
        first = max(first, today)
    return first, last


def current_only_past(
    manifest: ManifestTopic, reports: Iterable[ReportTopic], today: datetime.date
) -> list[ReportURL]:
    """
    The windows before C{today}, within their ranges, of the enabled
    reports OASIS serves only current data of (L{serves_history}): never
    asked for (a past window would hold today's data), but those fetched
    while they were current hold their own, and are kept, not retired.

    A report published ahead (L{published_ahead}) asked a day at a time
    keeps too the blocks of days it was asked in before that was its
    default (L{former_blocks}), those over before the block holding
    C{today}: no window of a day will hold their days, so their rows
    count once.

    @return: Their requests, as L{report_urls} would make them.
    """
    table, pacific = DayTable(ZoneInfo(manifest.timezone)), DayTable(PACIFIC)
    result: list[ReportURL] = []
    for report in reports:
        if not report.enabled or serves_history(report) or report.window == MONTH_WINDOW:
            continue
        first = resolve_day(report.start or manifest.start, today)
        last = min(resolve_day(report.end or manifest.end, today), today - ONE_DAY)
        if first > last:
            continue
        starts_only = pacific_windows(report)
        hours = _hours(report)
        windows = (pacific if starts_only else table).windows(first, last, hours)
        if starts_only:
            windows = windows.starts_only()
        requests = ReportRequests(manifest.base_url, report)
        result.extend(requests.requests(windows))
        former = former_blocks(report)
        if former is not None and not starts_only and hours <= LONGEST_DAY_HOURS:
            # The block holding today is left out: its days from today on
            # are asked a day at a time, and it is retired (its tables
            # dropped) so that they are not counted twice.
            before = ANCHOR + datetime.timedelta(days=(today - ANCHOR).days // former * former) - ONE_DAY
            result.extend(requests.requests(table.windows(first, min(last, before), former * 24)))
    return result


def published_ahead(report: ReportTopic) -> bool:
    """
    @return: Whether C{report} is one OASIS serves only current data of
        (L{serves_history}) whose days are published ahead, a negative
        L{publication_delay} (C{TRNS_CURR_USAGE}, six days): each of its
        days is asked for from then on, and asked again every day until
        it is today (see L{harbour.services.manifest.ManifestService.ahead}),
        so that a day once past keeps the answer fetched on it.
    """
    return not serves_history(report) and publication_delay(report) < 0


def former_blocks(report: ReportTopic) -> int | None:
    """
    @return: The days of the blocks a report published ahead
        (L{published_ahead}) was asked in by default before each of its
        days was asked on its own: the longest window the catalogue allows
        it; L{None} for another report, or one of a single day.
    """
    entry = _entry(report)
    if entry is None or not published_ahead(report):
        return None
    days = window_hours(entry.max_window_span(report.params)) // 24
    return days if days > 1 else None


def serves_history(report: ReportTopic) -> bool:
    """
    @return: Whether OASIS answers a past window of C{report} with that
        window's data; not for the catalogue's reports without history,
        nor for those whose parameters make them current-only (such as
        C{PRC_FLEX_RAMP} with C{grp_type=CURR}), which it answers with the
        current interval whatever window is asked (a past day's file
        would hold today's data).  A report the catalogue does not know is
        taken to.
    """
    entry = _entry(report)
    return entry is None or entry.history_for(report.params)


def _entry(report: ReportTopic) -> CatalogueEntry | None:
    """
    @return: The catalogue's entry of C{report}, or L{None}.
    """
    catalogue = load_catalogue()
    if report.queryname is not None:
        return catalogue.entry(queryname=report.queryname)
    return catalogue.entry(groupid=report.groupid)


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
    @param published: The last day published of the reports it names, a
        trading day of OASIS's (Pacific): their later days are left out,
        and those of the manifest's zone that end after it.
    @param now: If given, leave out what cannot exist yet at this POSIX
        time (see L{available_through}): the newest window covers only the
        days already published, and of another zone than OASIS's only
        those holding nothing of a trading day not out yet.
    """
    with _collector_paused():
        return _report_urls(manifest, reports, today, start, end, published, now)


def _report_urls(
    manifest: ManifestTopic,
    reports: Iterable[ReportTopic],
    today: datetime.date,
    start: datetime.date | None,
    end: datetime.date | None,
    published: Mapping[str, datetime.date] | None,
    now: float | None,
) -> list[ReportURL]:
    table = DayTable(ZoneInfo(manifest.timezone))
    # OASIS's months are of its own trading days, whatever zone the
    # manifest's days are of: a month asked from another midnight would
    # start on the last day of the month before.  Publication delays are
    # reckoned from its trading days too.
    pacific = DayTable(PACIFIC)
    result: list[ReportURL] = []
    for report in reports:
        if not report.enabled:
            continue
        first, last = report_range(manifest, report, today)
        first, last = start or first, end or last
        if not serves_history(report):
            # Whatever first day is asked: a past one would hold today's.
            first = max(first, today)
        requests = ReportRequests(manifest.base_url, report)
        if report.window == MONTH_WINDOW:
            through = published.get(report.name) if published else None
            if now is not None:
                ended = available_through(pacific, now, publication_delay(report) * 3600, hourly=False)
                through = ended if through is None else min(through, ended)
            result.extend(requests.requests(Windows.of(list(month_windows(first, last, through, pacific)))))
            continue
        hours = _hours(report)
        delay = publication_delay(report)
        # Months done, these are a group's days asked by their start.
        starts_only = pacific_windows(report)
        days = pacific if starts_only else table
        if published and report.name in published:
            last = min(last, published_last(days.zone, published[report.name]))
        if now is None:
            windows = days.windows(first, last, hours)
        else:
            windows = _available_windows(days, pacific, first, last, hours, now, delay)
        if not serves_history(report) and delay >= 0:
            windows = _over_within_their_day(windows, days, delay * 3600)
        if starts_only:
            windows = windows.starts_only()
        result.extend(requests.requests(windows))
    return result


def pacific_windows(report: ReportTopic) -> bool:
    """
    @return: Whether the windows of C{report} are made of OASIS's trading
        days (Pacific) whatever zone the manifest's days are of: a month,
        and a group's day asked for by C{startdatetime} alone, which OASIS
        answers with the trading day (or month) that starts there.  Asked
        from another midnight, such a request would start no trading day.
        The days of its range, its cap and its window's names are then
        Pacific ones.
    """
    return report.window == MONTH_WINDOW or not _sends_end(report, _hours(report))


def _hours(report: ReportTopic) -> int:
    """
    @return: The hours of one window of C{report} (not of months).
    """
    assert report.window is not None, "a report's window is filled in when it is built"
    return min(window_hours(report.window), MAX_WINDOW_HOURS)


def _sends_end(report: ReportTopic, hours: int) -> bool:
    """
    @return: Whether the requests of C{report}, in windows of C{hours},
        carry C{enddatetime}: all but a group's asked a trading day at a
        time that the catalogue says takes none (only HASP and real-time
        groups do, spec section 2.2; its examples ask for a day group's
        day by C{startdatetime} alone).  A group the catalogue does not
        know keeps it.
    """
    if report.kind != "group_zip" or hours != 24:
        return True
    assert report.groupid is not None
    entry = load_catalogue().entry(groupid=report.groupid)
    return entry is None or entry.enddatetime


def publication_delay(report: ReportTopic) -> float:
    """
    @return: In hours, when a window's data exists: before the start of
        its (last) trading day when negative, after the window ends when
        positive; the report's own C{publication_delay}, else the
        catalogue's for its report and market, else 0.
    """
    if report.publication_delay is not None:
        return offset_hours(report.publication_delay)
    entry = _entry(report)
    return entry.publication_delay_hours_for(report.market_run_id) if entry is not None else 0.0


def _over_within_their_day(windows: Windows, table: DayTable, delay: float) -> Windows:
    """
    The windows of a report OASIS serves only current data of, asked for
    once each is over and C{delay} has passed, that can ever be asked
    for: a window is asked only while its day is today (a past day's
    would hold today's data), so one that ends, delay added, at the end
    of its day or later never is, such as the last hour of each day.
    With a time, L{_available_windows} leaves those out already; without
    one, this leaves out what the daemon would never ask, so that
    C{harbourctl plan} and C{manifest} count what it asks.

    @param table: The days the windows are made of.
    @param delay: Seconds after its end that a window's data exists; not
        negative.
    @return: Those of C{windows} that end, delay added, before the end of
        the day they start on.
    """
    zone, ends = table.zone, windows.ends
    return windows.picked(
        [
            i
            for i, start in enumerate(windows.starts)
            if ends[i].timestamp() + delay < table.start(start.astimezone(zone).date() + ONE_DAY).timestamp()
        ]
    )


def _available_windows(
    table: DayTable,
    pacific: DayTable,
    first: datetime.date,
    last: datetime.date,
    hours: int,
    now: float,
    delay_hours: float,
) -> Windows:
    """
    @param table: The days the windows are made of: the manifest's zone's,
        or OASIS's own (see L{pacific_windows}).
    @param pacific: OASIS's trading days, from which publication delays
        run.
    @param delay_hours: As L{publication_delay} says.
    @return: The windows of up to C{hours} hours over the days C{first} to
        C{last} of C{table} whose data can exist at the POSIX time C{now}:
        those holding nothing of a trading day not out yet.
    """
    delay = delay_hours * 3600
    hourly = hours % 24 != 0
    ready = available_through(pacific, now, delay, hourly)
    if not hourly:
        # A day of another zone may end inside a trading day not out yet.
        return table.windows(first, min(last, published_last(table.zone, ready)), hours)
    # Each hour is looked at: the hours of a day of another zone may fall
    # on two trading days, and only the earlier may be out.
    out_by = pacific.start(ready + ONE_DAY)
    last = min(last, (out_by - datetime.timedelta(microseconds=1)).astimezone(table.zone).date())
    windows = table.windows(first, last, hours)
    if delay >= 0:
        return windows.ending_by(now, delay)
    if table.start(last + ONE_DAY) > out_by:
        return windows.ending_by(out_by.timestamp(), 0)
    return windows


def available_through(table: DayTable, now: float, delay: float, hourly: bool) -> datetime.date:
    """
    @param table: The days counted: OASIS's trading days (Pacific) for the
        delays of its catalogue, which run from them.
    @param delay: Seconds, as L{publication_delay} says.
    @param hourly: Whether the windows are hours (then the day under way
        counts, its hours are looked at one by one).
    @return: The last day of C{table} whose data can exist at C{now}.
    """
    day = datetime.datetime.fromtimestamp(now - delay, UTC).astimezone(table.zone).date()
    # A positive delay runs from the end of the window: a whole day is out
    # only once it has ended.
    return day - ONE_DAY if delay >= 0 and not hourly else day


def published_last(zone: ZoneInfo, published: datetime.date) -> datetime.date:
    """
    @param published: The last trading day the log shows published, a day
        of OASIS's (Pacific), whatever the manifest's zone.
    @return: The last day of C{zone} over by the end of that trading day:
        the manifest's days that the publication covers whole.
    """
    end = trading_day(published, PACIFIC)[1]
    return end.astimezone(zone).date() - ONE_DAY


def market_today(manifest: ManifestTopic, now: float) -> datetime.date:
    """
    @return: The current trading day in the manifest's time zone at the
        POSIX time C{now}.
    """
    return datetime.datetime.fromtimestamp(now, ZoneInfo(manifest.timezone)).date()
