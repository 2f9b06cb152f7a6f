"""
Checks of single configuration values.

Each factory here (L{integer}, L{day}, L{window}...) returns a L{Check}: a
callable that takes a value as TOML or JSON gives it and returns it in its
canonical form, or raises L{Invalid} saying what was expected.  Checks are
idempotent, so that a value that passed one passes it again unchanged: a
topic sent as JSON and rebuilt is equal to the original.
"""

from __future__ import annotations

import datetime
import math
import re
import reprlib
import zoneinfo
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

#: One gibibyte, in bytes.
GIB = 1024**3

#: One tebibyte, in bytes: more than any answer of OASIS or any pace of
#: download, and far below the numbers that JSON readers or Redis would
#: not carry exactly or Python would refuse to write out.
TIB = 1024**4

#: The highest C{version} of a report: the catalogue's go up to 8, and a
#: report of a hundred versions is surely a mistake.
MOST_VERSION = 99

#: The longest span one OASIS request may cover.
MAX_WINDOW_HOURS = 31 * 24

_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_SPAN = re.compile(r"(\d+)(h|d)\Z")
#: The window of a group whose one answer holds its calendar month: one
#: request per month (see L{harbour.oasis.requests.month_windows}).
MONTH_WINDOW = "month"
#: The hours of the longest trading day (the autumn change's): a window of
#: hours up to it is a day's, longer ones are whole days.
LONGEST_DAY_HOURS = 25
_RELATIVE = re.compile(r"-(\d+)(d|mo|y)\Z")
_AHEAD = re.compile(r"\+(\d+)d\Z")

#: The farthest a relative day may reach back, per unit (a hundred years),
#: and ahead, in days: beyond, counting from today leaves the calendar.
MOST_BACK = {"d": 36_525, "mo": 1_200, "y": 100}
MOST_AHEAD_DAYS = 366

#: The earliest and latest dates a day may name: CAISO's markets began
#: in 1998, and a date far beyond is surely a mistake that would break the
#: planning (the day after 9999-12-31 is past the calendar's end) or ask
#: for absurdly many requests (666,530 from 0202-01-01, one a day).
EARLIEST_DAY = datetime.date(1998, 1, 1)
LATEST_DAY = datetime.date(2099, 12, 31)
_OFFSET = re.compile(r"([+-])(\d+)(m|h|d)\Z")
_OFFSET_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}

#: The farthest a publication offset may reach, in days, either way: a
#: window is 31 days at most and the catalogue's delays are about +90d at
#: most, while one of hundreds of thousands of days puts "now minus the
#: delay" outside the calendar, which would stop planning every report.
MOST_OFFSET_DAYS = 366


class Invalid(ValueError):
    """
    A value failed its check; the message says what was expected.
    """


#: A value check: returns the value in canonical form or raises L{Invalid}.
Check = Callable[[Any], Any]


def describe(value: object) -> str:
    """
    @return: C{value} and its type, for an error message.
    """
    return f"{_shown(value)} ({type(value).__name__})"


#: How tables and arrays are shown in a message: a few levels and items
#: of each (a dotted key of thousands of parts is a table that deep, and
#: Python's own repr of it exceeds the recursion limit).
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxdict = _SHOWN.maxlist = 6
_SHOWN.maxstring = _SHOWN.maxother = 80


def _shown(value: object) -> str:
    """
    @return: C{repr(value)}, a table or array cut short (see L{_SHOWN}),
        or what it is if Python refuses to write it out: an integer of
        more than 4,300 digits, which TOML allows in hex.
    """
    try:
        return _SHOWN.repr(value) if isinstance(value, (dict, list)) else repr(value)
    except ValueError:
        return "a number too long to show" if isinstance(value, int) else "a value too long to show"
    except RecursionError:
        return "a value nested too deeply to show"


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """
    @return: A check for a whole number within bounds (C{true} is not one).
    """

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be a whole number, not {describe(value)}")
        _bounded(value, minimum, maximum)
        return value

    return check


def number(minimum: float | None = None, maximum: float | None = None) -> Check:
    """
    @return: A check for a number (integer or float) within bounds, giving
        a float.
    """

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"must be a number, not {describe(value)}")
        # TOML allows nan and inf; neither is a time or a size.
        if not math.isfinite(value):
            raise Invalid(f"must be a finite number, not {value}")
        _bounded(value, minimum, maximum)
        return float(value)

    return check


def _bounded(value: float, minimum: float | None, maximum: float | None) -> None:
    """
    @raise Invalid: if C{value} lies outside the bounds.
    """
    if minimum is not None and value < minimum:
        raise Invalid(f"must be at least {minimum}, not {_shown(value)}")
    if maximum is not None and value > maximum:
        raise Invalid(f"must be at most {maximum}, not {_shown(value)}")


def boolean() -> Check:
    """
    @return: A check for C{true} or C{false}.
    """

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, not {describe(value)}")
        return value

    return check


def text(pattern: re.Pattern[str] | None = None, choices: tuple[str, ...] = ()) -> Check:
    """
    @return: A check for a string, optionally matching C{pattern} or one of
        C{choices}.
    """

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be a string, not {describe(value)}")
        if choices and value not in choices:
            raise Invalid(f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        if pattern is not None and not pattern.match(value):
            raise Invalid(f"{value!r} is not of the expected form")
        return value

    return check


def nonempty_text() -> Check:
    """
    @return: A check for a string that is not empty or only blanks: a name
        sent in a URL, such as a C{queryname}, which OASIS could never
        answer empty.
    """

    def check(value: Any) -> str:
        value = text()(value)
        if not value:
            raise Invalid("must not be empty")
        if not value.strip():
            raise Invalid(f"must not be blank, not {value!r}")
        return value

    return check


#: The longest name of a report: it is a directory name (at most 255 bytes
#: on most file systems) and starts the names of its files and views.
LONGEST_NAME = 100


#: The dataset's own files in its tables directory, beside the reports'
#: (see L{harbour.dataset.views}; named here, as config does not import
#: the dataset).
DATASET_FILES = ("harbour.duckdb", "harbour.views.json")


def file_name() -> Check:
    """
    @return: A check for a name usable as a directory inside the download
        directory: letters, digits, C{_}, C{.} and C{-}, at most
        L{LONGEST_NAME} of them, and not C{.} or C{..} or hidden; nor, in
        any case, the name of one of the dataset's own files beside the
        reports' tables (L{DATASET_FILES}) or one starting with it and a
        dot (DuckDB's C{harbour.duckdb.wal}): a report of that name would
        break either its tables or every view.
    """

    def check(value: Any) -> str:
        value = text()(value)
        if len(value) > LONGEST_NAME:
            raise Invalid(f"may have at most {LONGEST_NAME} characters, not {len(value)}")
        if not _NAME.match(value):
            raise Invalid(f"{value!r} may use only letters, digits, '_', '.' and '-'")
        if value.startswith("."):
            raise Invalid(f"{value!r} could leave or hide in the download directory")
        folded = value.lower()
        if any(folded == name or folded.startswith(name + ".") for name in DATASET_FILES):
            raise Invalid(
                f"{value!r} is the name of one of the dataset's own files ({', '.join(DATASET_FILES)})"
            )
        return value

    return check


#: The data directory's own entries, beside the download directory: the
#: embedded redis-server's directory (L{harbour.store.connection}), the
#: tables (L{harbour.services.tables}) and the control port's token
#: (L{harbour.service}'s default C{--token-file}).  Named here, as config
#: imports none of them.
DATA_DIR_ENTRIES = ("redis", "tables", "amp.token")


def data_subdirectory() -> Check:
    """
    @return: A check for a directory inside the data directory, given
        relative to it: not empty, without a C{..} part, and neither one
        of the data directory's own entries (L{DATA_DIR_ENTRIES}), in any
        case, nor inside one; or an absolute path (the mirror on another
        volume), not the root; it gives the path without C{.} parts,
        doubled or trailing slashes (C{"./a//b/"} is C{"a/b"}), so that one
        directory has one name.
    """

    def check(value: Any) -> str:
        value = text()(value)
        if "\0" in value:
            raise Invalid(f"{value!r} holds a NUL character, which no path may")
        path = PurePosixPath(value)
        if ".." in path.parts:
            raise Invalid(
                f"{value!r} has a '..' part: give a directory inside the data directory, or an absolute one"
            )
        if path.is_absolute():
            if len(path.parts) == 1:
                raise Invalid(f"{value!r} is the root directory: give a directory of its own")
            return str(path)
        if not path.parts:
            raise Invalid(
                f'{value!r} is the data directory itself: give a directory inside it, such as "reports"'
            )
        first = path.parts[0]
        if first.casefold() in DATA_DIR_ENTRIES:
            raise Invalid(
                f"{value!r} is the data directory's own {first!r}, or inside it (its own entries are"
                f" {', '.join(DATA_DIR_ENTRIES)})"
            )
        return str(path)

    return check


def optional(inner: Check) -> Check:
    """
    @return: A check for either absent (L{None}) or passing C{inner}.
    """

    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def url() -> Check:
    """
    @return: A check for an http or https URL naming a host, with a port
        from 1 to 65535 if any, without a query or a fragment, kept
        without a trailing slash: requests append
        C{/SingleZip?...} to it, which would land inside its query, or
        after a fragment that no request sends.
    """

    def check(value: Any) -> str:
        value = text()(value)
        try:
            parts = urlsplit(value)
        except ValueError:  # such as an unclosed IPv6 address: "http://[::1"
            raise Invalid(f"must be an http:// or https:// URL, not {value!r}") from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(f"must be an http:// or https:// URL, not {value!r}")
        if not parts.hostname:
            raise Invalid(f"must name a host, as in https://oasis.caiso.com/oasisapi, not {value!r}")
        # urlsplit reads the port only when asked, and refuses one that is
        # not a number or beyond 65535 then; it takes an empty one, or 0,
        # for none, which no request can use either.
        try:
            port = parts.port
        except ValueError:
            port = None
        if not port and ":" in parts.netloc.rpartition("@")[2].rpartition("]")[2]:
            raise Invalid(f"must have a port from 1 to 65535 after the host's ':', not {value!r}")
        # Even an empty one ("...oasisapi?"): urlsplit says no query, but
        # the "?" would still come before each request's path.
        if "?" in value or "#" in value:
            raise Invalid(
                f"must not carry a query (?...) or a fragment (#...), not {value!r}: each request"
                " appends its path and query to it, such as /SingleZip?queryname=..."
            )
        return value.rstrip("/")

    return check


def day(allow_today: bool = False) -> Check:
    """
    @return: A check for a date (TOML date or C{"YYYY-MM-DD"}) from
        L{EARLIEST_DAY} to L{LATEST_DAY}, a span before today such as
        C{"-39mo"}, C{"-30d"} or C{"-2y"} that reaches no further back than
        L{EARLIEST_DAY} from today, or (if allowed, for an end)
        C{"today"} or days ahead such as C{"+1d"}; it gives a string, so
        that relative values stay relative and the value survives JSON.
    """
    expected = 'a date (2024-01-31), a span back such as "-39mo", "-30d" or "-2y"'
    if allow_today:
        expected += ', "today", or days ahead such as "+1d"'

    def check(value: Any) -> str:
        if isinstance(value, datetime.datetime):
            raise Invalid(f"must be {expected}, not a date-time")
        if isinstance(value, datetime.date):
            return _within_years(value).isoformat()
        if isinstance(value, str):
            ahead, back = _AHEAD.match(value), _RELATIVE.match(value)
            if allow_today and ahead and int(ahead.group(1)) > MOST_AHEAD_DAYS:
                raise Invalid(f"{value!r} reaches more than {MOST_AHEAD_DAYS} days ahead")
            if allow_today and (value == "today" or ahead):
                return value
            if back and int(back.group(1)) > MOST_BACK[back.group(2)]:
                raise Invalid(f"{value!r} reaches back more than a hundred years")
            if back:
                # As a date before it is: from today, and so from any later
                # day, the span must not reach before CAISO's markets.
                reached = resolve_day(value, _earliest_today())
                if reached < EARLIEST_DAY:
                    raise Invalid(
                        f"{value!r} reaches back to {reached}: must reach {EARLIEST_DAY} or later "
                        "(CAISO's markets began in 1998)"
                    )
                return value
            try:
                date = datetime.date.fromisoformat(value)
            except ValueError:
                pass
            else:
                return _within_years(date).isoformat()
        raise Invalid(f"must be {expected}, not {_shown(value)}")

    return check


def _earliest_today() -> datetime.date:
    """
    @return: Today where it is earliest (UTC-12): whatever the zone of the
        manifest's days, its today is this day or later.
    """
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=12)).date()


def _within_years(date: datetime.date) -> datetime.date:
    """
    @return: C{date}, if it lies from L{EARLIEST_DAY} to L{LATEST_DAY}.
    @raise Invalid: if it does not.
    """
    if date < EARLIEST_DAY:
        raise Invalid(f"must be {EARLIEST_DAY} or later (CAISO's markets began in 1998), not {date}")
    if date > LATEST_DAY:
        raise Invalid(f"must be {LATEST_DAY} or earlier, not {date}")
    return date


def resolve_day(value: str, today: datetime.date) -> datetime.date:
    """
    Turn a value accepted by L{day} into a date, counting back from C{today}.

    @return: The date C{value} names; a span of months or years that lands
        past the end of a month gives that month's last day.
    """
    if value == "today":
        return today
    ahead = _AHEAD.match(value)
    if ahead is not None:
        return today + datetime.timedelta(days=int(ahead.group(1)))
    relative = _RELATIVE.match(value)
    if relative is None:
        return datetime.date.fromisoformat(value)
    count, unit = int(relative.group(1)), relative.group(2)
    if unit == "d":
        return today - datetime.timedelta(days=count)
    months = count * (12 if unit == "y" else 1)
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = (datetime.date(year + month // 12, month % 12 + 1, 1) - datetime.timedelta(days=1)).day
    return datetime.date(year, month, min(today.day, last))


def past_end(
    start: str, end: str, today: datetime.date | None = None
) -> tuple[datetime.date, datetime.date] | None:
    """
    Find a range that asks for nothing for good: a span back as its
    C{start} only moves later as the days pass, so once after a date as
    its C{end}, it stays after it; and a span back as its C{end} moves
    with it, so a start of fewer of the same unit back (a year being
    twelve months), or after it whatever the months' lengths (28 to 31
    days), is after it every day.  (An end of C{"today"} or days ahead is not compared.)

    @param start: A value L{day} accepted.
    @param end: A value L{day} accepted, C{allow_today} or not.
    @param today: The day to count from; by default today where it is
        earliest (UTC-12), so that the range is past in every zone.
    @return: The days C{start} and C{end} name, if C{start} is a span
        back and after C{end} for good; else L{None}.
    """
    back, to = _months_or_days(start), _months_or_days(end)
    if back is None or end == "today" or _AHEAD.match(end):
        return None
    # Against a span back, the start is after it every day if it reaches
    # back fewer of the same unit or, across units, fewer days at most
    # (31 a month) than the end does at least (28 a month).
    if to is not None and not (
        back[0] < to[0]
        if back[1] == to[1]
        else back[0] * (31 if back[1] == "mo" else 1) < to[0] * (28 if to[1] == "mo" else 1)
    ):
        return None
    first, last = (resolve_day(value, today or _earliest_today()) for value in (start, end))
    return (first, last) if first > last else None


def _months_or_days(value: str) -> tuple[int, str] | None:
    """
    @return: How many months (a year being twelve) or days back a span
        back reaches, and which (C{"mo"} or C{"d"}); L{None} if C{value}
        is not a span back.
    """
    relative = _RELATIVE.match(value)
    if relative is None:
        return None
    count, unit = int(relative.group(1)), relative.group(2)
    return (count * 12, "mo") if unit == "y" else (count, unit)


def timezone() -> Check:
    """
    @return: A check for an IANA time zone name.
    """

    def check(value: Any) -> str:
        value = text()(value)
        # The name of a region such as "US" is a directory of the zone
        # database: opened as a zone, that is an OSError.
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise Invalid(f"{value!r} is not a known time zone") from None
        return value

    return check


def window() -> Check:
    """
    @return: A check for the largest span one request may cover:
        C{"<n>h"} or C{"<n>d"}, at most 31 days, or L{MONTH_WINDOW}.
    """

    def check(value: Any) -> str:
        value = text()(value)
        if value == MONTH_WINDOW:
            return value
        if _SPAN.match(value) is None:
            raise Invalid(f'must be a span such as "1d", "31d" or "1h", or "month", not {value!r}')
        hours = window_hours(value)
        if hours == 0 or hours > MAX_WINDOW_HOURS:
            raise Invalid(f"must be between 1h and 31d, not {value!r}")
        if hours > LONGEST_DAY_HOURS and hours % 24:
            # Windows of hours never cross a trading day: one of 36h would
            # ask a day at a time, named as hours.
            raise Invalid(
                f"a window longer than {LONGEST_DAY_HOURS}h is a whole number of days, such as "
                f'"{hours // 24}d" or "{hours // 24 + 1}d", not {value!r}: windows of hours never '
                "cross a trading day"
            )
        return value

    return check


def window_hours(value: str) -> int:
    """
    @param value: A span accepted by L{window}.
    @return: The length of C{value}, in hours.
    @raise ValueError: if C{value} is not a span.
    """
    match = _SPAN.match(value)
    if match is None:
        raise ValueError(f"not a span: {value!r}")
    count = int(match.group(1))
    return count * 24 if match.group(2) == "d" else count


def query_params() -> Check:
    """
    @return: A check for a table of extra query parameters: names to
        strings or numbers, giving names to strings.
    """

    def check(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid(f"must be a table of parameters, not {describe(value)}")
        result = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise Invalid(f"parameter {name!r} must be a string or number, not {describe(item)}")
            try:
                result[name] = str(item)
            except ValueError:
                raise Invalid(f"parameter {name!r} is {_shown(item)}") from None
        return result

    return check


def offset() -> Check:
    """
    @return: A check for a signed time offset such as C{"-10h"}, C{"+1h"},
        C{"+15m"} or C{"+90d"}, of at most L{MOST_OFFSET_DAYS} days either
        way.
    """

    def check(value: Any) -> str:
        value = text()(value)
        match = _OFFSET.match(value)
        if not match:
            raise Invalid(f'must be a signed offset such as "-10h", "+1h", "+15m" or "+90d", not {value!r}')
        digits, unit = match.group(2).lstrip("0"), match.group(3)
        # Counted on the digits first: Python refuses to read a number of
        # more than 4,300 of them, and any beyond a few is out of bounds.
        if len(digits) > 9 or int(digits or 0) * _OFFSET_MINUTES[unit] > MOST_OFFSET_DAYS * 24 * 60:
            raise Invalid(f"must be within {MOST_OFFSET_DAYS} days either way, not {_SHOWN.repr(value)}")
        return value

    return check
