"""
How OASIS writes times and numbers its intervals, and how it refuses a
request: the conventions every part of the simulator shares.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Callable, Iterator
from types import MappingProxyType
from zoneinfo import ZoneInfo

import attr

PACIFIC = ZoneInfo("America/Los_Angeles")
UTC = datetime.UTC
GMT_FORMAT = "%Y%m%dT%H:%M-0000"

#: OASIS's own descriptions (interface specification, section 3.2).
MESSAGES = MappingProxyType(
    {
        1000: "No data returned for the specified selection",
        1001: "Invalid Parameters of the given report name.",
        1002: "Invalid datetime format, please use valid datetime format.",
        1004: "Data can be requested for period of 31 days only.",
        1005: "Report name does not exist, please use valid report name.",
        1011: "Empty Query; Please Enter Report Name, Startdate, EndDate and Other Parameters.",
        1014: (
            "Start Date is beyond the limit, Please Use valid Start Date that falls within the "
            "prescribed limit."
        ),
        1015: "GroupZip DownLoad is in Processing, Please Submit request after Sometime",
        1016: "GROUPID Does Not Exist, Please Use Valid GROUPID Name",
        1017: "Please select a maximum of 10 nodes or use the ALL option",
        1018: "Invalid Selection, cannot select multiple hours for this query",
        1020: "Version parameter is missing or is invalid",
    }
)


class OasisError(Exception):
    """
    A request OASIS would refuse with C{code}.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def parse_gmt(value: str | None) -> datetime.datetime:
    """
    @raise OasisError: 1002 unless C{value} is C{yyyymmddThh24:mi-0000}.
    """
    try:
        return datetime.datetime.strptime(value or "", GMT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise OasisError(1002) from None


def valid_gmt(value: str | None) -> bool:
    """
    @return: Whether L{parse_gmt} accepts C{value}.
    """
    try:
        parse_gmt(value)
    except OasisError:
        return False
    return True


def request_version(args: dict[str, str]) -> int:
    """
    @return: The request's C{version}.
    @raise OasisError: 1020 if it is missing, not a number or below 1.
    """
    try:
        version = int(args.get("version", ""))
    except ValueError:
        raise OasisError(1020) from None
    if version < 1:
        raise OasisError(1020)
    return version


def iso(moment: datetime.datetime) -> str:
    """
    @return: C{moment} as OASIS writes times in data: C{2020-01-02T01:00:00-00:00}.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def day_start(day: datetime.date) -> datetime.datetime:
    """
    @return: The UTC instant trading day C{day} (Pacific) starts.
    """
    return datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)


def day_names(start: datetime.datetime, end: datetime.datetime) -> str:
    """
    @return: The first and last trading days of [start, end) as OASIS names
        files, C{20251102_20251103}: the last is the day before the one
        C{end} falls in (Pacific), never before the first.  A window ending
        at midnight so ends with its last day, and the real answer for
        2020-01-02T00:00Z to 24:00Z (16:00 to 16:00 Pacific) is named
        C{20200101_20200101}; an empty window's are the day it starts in.
    """
    first = start.astimezone(PACIFIC).date()
    last = max(first, end.astimezone(PACIFIC).date() - datetime.timedelta(days=1))
    return f"{first:%Y%m%d}_{last:%Y%m%d}"


def oasis_number(value: object) -> object:
    """
    @return: C{value} as OASIS writes numbers, if it is a float: plainly,
        to at most five decimals, without trailing zeros (C{38.1942},
        C{0}, C{0.00009}), never in exponent notation nor as C{-0}; any
        other value as it is.
    """
    if not isinstance(value, float):
        return value
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def created_after(end: datetime.datetime, rng: random.Random) -> datetime.datetime:
    """
    @return: A plausible creation time for an answer: some hours after its
        window closed (drawing one number from C{rng}).
    """
    return (end + datetime.timedelta(seconds=3600 * 6 + int(rng.random() * 3600))).replace(microsecond=0)


@attr.s(frozen=True, auto_attribs=True)
class Interval:
    """
    One data interval, with its trading-day coordinates.
    """

    start: datetime.datetime
    end: datetime.datetime
    day: datetime.date
    hour: int
    number: int


def intervals(start: datetime.datetime, end: datetime.datetime, minutes: int) -> Iterator[Interval]:
    """
    The intervals of C{minutes} from C{start} to C{end}, numbered as OASIS
    numbers them: C{OPR_HR} is the hour ending of the Pacific clock, so the
    spring change day has no 3 and the autumn day's repeated hour is 25
    (spec section 11: "HE03 is skipped", "HE 25 is the repeating hour");
    C{OPR_INTERVAL} is 0 for hourly data, else 1 to 60/C{minutes} within
    the hour.
    """
    step = datetime.timedelta(minutes=minutes)
    moment = start
    while moment < end:
        wall = moment.astimezone(PACIFIC)
        hour = 25 if wall.fold else wall.hour + 1
        number = 0 if minutes >= 60 else wall.minute // minutes + 1
        yield Interval(moment, moment + step, wall.date(), hour, number)
        moment += step


def day_intervals(
    start: datetime.datetime, end: datetime.datetime, minutes: int
) -> Iterator[tuple[datetime.date, list[Interval], list[Interval]]]:
    """
    The trading days of [start, end), for data drawn a day at a time: a
    day's values, drawn in order from its first interval, are the same in
    every window that holds them.

    @return: For each trading day C{[start, end)} touches, oldest first:
        the day, its intervals of C{minutes} (see L{intervals}) from its
        start up to C{end} (those to draw), and those of them that start
        within [start, end) (those to answer).
    """
    day = start.astimezone(PACIFIC).date()
    while day_start(day) < end:
        drawn = list(
            intervals(day_start(day), min(end, day_start(day + datetime.timedelta(days=1))), minutes)
        )
        yield day, drawn, [span for span in drawn if span.start >= start]
        day += datetime.timedelta(days=1)


def _never_revised(queryname: str, day: datetime.date) -> int:
    """
    @return: 0: no day is revised.
    """
    return 0


@attr.s(frozen=True, auto_attribs=True)
class Draws:
    """
    The random sources of the simulator's data: one for each report,
    market, resource (a node, a TAC area, a data item) and trading day, so
    that a day's values are the same in every answer that holds it, 1-day
    or 31-day, a SingleZip's or a GroupZip's, until a revision of that day
    changes them.

    @ivar seed: The simulator's seed.
    @ivar revisions: How many times a report's trading day was revised.
    """

    seed: int
    revisions: Callable[[str, datetime.date], int] = _never_revised

    def day(self, queryname: str, market: str | None, resource: str, day: datetime.date) -> random.Random:
        """
        @return: The random source of one resource's values on one trading
            day of a report in a market, at the day's current revision.
        """
        revisions = self.revisions(queryname, day)
        key = f"{self.seed}|{queryname}|{market or ''}|{resource}|{day.isoformat()}|r{revisions}"
        # A digest, not hash(): the same whatever PYTHONHASHSEED says.
        return random.Random(hashlib.sha256(key.encode()).digest())


def interval_number(hour: int, number: int, minutes: int) -> int:
    """
    @param hour: The interval's C{OPR_HR}.
    @param number: Its C{OPR_INTERVAL} (0 for hourly data).
    @param minutes: The interval length of the data.
    @return: Its C{INTERVAL_NUM} in XML: its place in the trading day, as
        in the real C{SLD_FCST} sample (the 15-minute interval from 12:15
        local time is 50, the 5-minute one from 11:55 is 144), counted by
        the hours' labels: hourly data's is its C{OPR_HR}, and on the
        change days a sub-hourly interval of hour 25 numbers after the
        24th hour's, while the spring day's hour 3 numbers go unused.
    """
    per_hour = max(1, 60 // minutes)
    return (hour - 1) * per_hour + max(1, number)


@attr.s(frozen=True, auto_attribs=True)
class Span:
    """
    What every member of one data answer shares.

    @ivar version: The report's version asked for.
    @ivar start: The start of the window with data.
    @ivar end: Its end (excluded).
    @ivar draws: The random sources of the content.
    @ivar created: When the answer says it was made.
    @ivar csv: Whether CSV was asked for (else XML).
    """

    version: int = attr.ib(validator=attr.validators.instance_of(int))
    start: datetime.datetime = attr.ib(validator=attr.validators.instance_of(datetime.datetime))
    end: datetime.datetime = attr.ib(validator=attr.validators.instance_of(datetime.datetime))
    draws: Draws = attr.ib(validator=attr.validators.instance_of(Draws))
    created: datetime.datetime = attr.ib(validator=attr.validators.instance_of(datetime.datetime))
    csv: bool = attr.ib(validator=attr.validators.instance_of(bool))
