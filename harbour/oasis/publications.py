"""
OASIS's publication reports, read: the Publications and Revisions log
(C{ATL_PUB}) and the Publication Schedule (C{ATL_PUB_SCHED}).

CAISO's interface specification (section 4, "Recommended Usage") asks
clients to read these before requesting data, so that they never ask for
what is not yet published.  An answer is first classified like any other
(L{harbour.oasis.classify}); its rows are then read by column name (CSV) or by
local element name (XML), whichever OASIS sent, and columns we do not use
are ignored, so that a column OASIS adds or reorders changes nothing.

A time without an offset is Pacific, as OASIS's reports say (C{TZ=PPT}),
unless its column's name ends in C{_GMT}.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from zoneinfo import ZoneInfo

import attr

from harbour.oasis import classify as verdicts

UTC = datetime.UTC
#: The zone of OASIS's times that carry no offset (its reports' C{TZ=PPT}).
PACIFIC = ZoneInfo("America/Los_Angeles")

#: The names each field goes by: the first is what the simulator writes,
#: the others are read too (the first present wins).  C{PUBLICATION_DATE},
#: C{ATLPUBVERSION}, C{OPR_DT}, C{OPR_HR}, C{REPORT_NAME}, C{MARKET_RUN_ID}
#: and C{STATUS} are the names public scrapers of C{ATL_PUB} read; their
#: C{OASIS_SECTION}, C{PUBLICATION_ID} and C{OPR_INTERVAL} are not needed
#: (an hour is published or not, whatever its intervals).
FIELDS = {
    "queryname": ("REPORT_NAME", "QUERYNAME", "REPORT"),
    "market_run_id": ("MARKET_RUN_ID", "MKT_TYPE", "MARKET"),
    "day": ("OPR_DT", "OPR_DATE", "TRADE_DATE"),
    "hour": ("OPR_HR", "OPR_HOUR"),
    "published": (
        "PUBLICATION_TIME_GMT",
        "PUB_TIME_GMT",
        "PUBLICATION_DATE_GMT",
        "PUBLICATION_TIME",
        "PUBLICATION_DATE",
    ),
    "version": ("ATLPUB_VERSION", "ATLPUBVERSION", "PUB_VERSION", "VERSION"),
    "status": ("STATUS",),
    "time": ("PUBLICATION_TIME", "PUB_TIME"),
    "day_offset": ("TRADE_DAY_OFFSET", "DAY_OFFSET"),
}


_Entry = TypeVar("_Entry")


def log_key(queryname: str, market_run_id: str) -> tuple[str, str]:
    """
    @return: How a report and market are matched with the log's entries:
        the market in upper case, as the log writes it, so that a report
        configured with C{dam} is C{DAM}'s (the catalogue too takes markets
        in any case).  Only the match: the report's URLs keep its market as
        written.
    """
    return queryname, market_run_id.upper()


class LogUnreadable(Exception):
    """
    An answer that is not a usable publications report: an OASIS error,
    a page that is not a zip, or rows without the fields we need.
    """


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Publication:
    """
    One entry of the log: a trading day of one report and market, or an
    hour of it, was published (version 1) or revised (version 2 on) at
    C{published}.

    @ivar published: POSIX time.
    @ivar hour: The hour ending, as OASIS numbers them (C{OPR_HR}: 1 to
        24, 25 the hour the autumn change repeats), if the entry names
        one; else the entry is about the whole day.
    """

    queryname: str
    market_run_id: str
    day: datetime.date
    published: float
    version: int = 1
    hour: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """
        The report and market this entry is about (see L{log_key}).
        """
        return log_key(self.queryname, self.market_run_id)

    @property
    def revision(self) -> bool:
        """
        Whether this entry revises data published before.
        """
        return self.version > 1


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Scheduled:
    """
    One line of the schedule: a report and market published daily at
    C{time} (market time), for the trading day C{day_offset} days later.
    """

    queryname: str
    market_run_id: str
    time: datetime.time
    day_offset: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """
        The report and market this line is about (see L{log_key}).
        """
        return log_key(self.queryname, self.market_run_id)


def parse_log(answer: bytes) -> list[Publication]:
    """
    Read an C{ATL_PUB} answer.

    @return: Its entries, oldest first; none for OASIS's "no data" (no
        publication in the span asked for).
    @raise LogUnreadable: for anything else that is not a log.
    """
    return sorted(_parse(answer, _publication), key=lambda p: p.published)


def parse_schedule(answer: bytes) -> list[Scheduled]:
    """
    Read an C{ATL_PUB_SCHED} answer.

    @raise LogUnreadable: for anything that is not a schedule.
    """
    return _parse(answer, _scheduled)


def _parse(answer: bytes, build: Callable[[dict[str, str]], _Entry]) -> list[_Entry]:
    verdict = verdicts.classify(answer)
    if verdict.kind == verdicts.EMPTY:
        return []
    if verdict.kind != verdicts.DATA:
        raise LogUnreadable(verdict.description)
    found: list[_Entry] = []
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(answer)) as archive:
        for name in archive.namelist():
            for row in _rows(name, archive.read(name)):
                try:
                    found.append(build(row))
                except (KeyError, ValueError) as e:
                    problems.append(str(e))
    if problems and not found:
        raise LogUnreadable(f"no usable entry in {len(problems)} rows: {problems[0]}")
    return found


def _rows(name: str, data: bytes) -> Iterator[dict[str, str]]:
    """
    The rows of one member, keyed by upper-case column or element names.
    """
    if name.lower().endswith(".csv"):
        for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
            yield {(k or "").strip().upper(): (v or "").strip() for k, v in row.items()}
        return
    if not name.lower().endswith(".xml"):
        return
    # A row is an element whose children are all leaves (ATL_ITEM in the
    # simulator's layout); matching by shape, not by name, reads any layout.
    parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
    try:
        parser.feed(data)
        parser.close()
    except ParseError as e:
        raise LogUnreadable(f"member {name} is not well-formed XML: {e}") from None
    for element in verdicts.end_elements(parser):
        children = list(element)
        if len(children) > 1 and all(len(child) == 0 for child in children):
            yield {child.tag.rpartition("}")[2].upper(): (child.text or "").strip() for child in children}


def _field(row: dict[str, str], field: str, default: str | None = None) -> str:
    return _named(row, field, default)[1]


def _named(row: dict[str, str], field: str, default: str | None = None) -> tuple[str, str]:
    """
    @return: The name of the column C{field} was found in, and its value
        (C{("", default)} if there is none).
    @raise KeyError: If there is none and no default.
    """
    for name in FIELDS[field]:
        value = row.get(name)
        if value:
            return name, value
    if default is not None:
        return "", default
    raise KeyError(f"no {' or '.join(FIELDS[field])} column")


#: The forms of a time besides ISO 8601 (C{2025-03-08T21:00:00-00:00},
#: C{2025-03-10 14:02:00}): OASIS's URL form, and the US form public
#: scrapers of the log also read.
_MOMENTS = ("%Y%m%dT%H:%M%z", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")


def _moment(text: str, column: str) -> float:
    """
    @param column: The name of the column C{text} is from: without an
        offset, a time is GMT if that name ends in C{_GMT}, else Pacific
        (an hour the autumn change repeats is taken as the first, daylight
        time, one).
    @return: POSIX time of C{text}.
    """
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        for form in _MOMENTS:
            try:
                moment = datetime.datetime.strptime(text, form)
                break
            except ValueError:
                pass
        else:
            raise ValueError(f"{column}: {text!r} is not a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if column.endswith("_GMT") else PACIFIC)
    return moment.timestamp()


def _version(row: dict[str, str]) -> int:
    """
    @return: The entry's version: its number (C{2}, C{v2}), or without
        one, 2 for a revision and 1 for a publication.
    """
    status = _field(row, "status", "PUBLISHED").upper()
    number = re.search(r"\d+", _field(row, "version", ""))
    if number is None:
        return 2 if status.startswith("REVIS") else 1
    return int(number.group())


def _day(text: str) -> datetime.date:
    """
    @return: The day of C{text}, in ISO or US form, with a time or not.
    """
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        return datetime.datetime.strptime(text.split()[0], "%m/%d/%Y").date()


def _hour(text: str) -> int | None:
    """
    @return: The hour ending C{text} names, or L{None} for none or one
        OASIS does not number (the entry is then about its whole day).
    """
    try:
        hour = int(text)
    except ValueError:
        return None
    return hour if 1 <= hour <= 25 else None


def _publication(row: dict[str, str]) -> Publication:
    queryname, market, day = _field(row, "queryname"), _field(row, "market_run_id", ""), _field(row, "day")
    column, published = _named(row, "published")
    return Publication(
        queryname,
        market,
        _day(day),
        _moment(published, column),
        _version(row),
        _hour(_field(row, "hour", "")),
    )


def hour_bounds(day: datetime.date, hour: int, zone: ZoneInfo) -> tuple[datetime.datetime, datetime.datetime]:
    """
    @param hour: An hour ending as OASIS numbers them: hour ending C{n}
        starts at C{n - 1} o'clock; on the spring change day there is no
        hour ending 3, and on the autumn one hour ending 25 is the hour
        repeated (the second 1 o'clock).
    @return: Its UTC start and end, on C{day} in C{zone}.
    """
    if hour == 25:
        start = datetime.datetime(day.year, day.month, day.day, 1, fold=1, tzinfo=zone)
    else:
        start = datetime.datetime(day.year, day.month, day.day, hour - 1, tzinfo=zone)
    utc = start.astimezone(UTC)
    return utc, utc + datetime.timedelta(hours=1)


def _scheduled(row: dict[str, str]) -> Scheduled:
    hours, minutes = _field(row, "time").split(":")[:2]
    return Scheduled(
        _field(row, "queryname"),
        _field(row, "market_run_id", ""),
        datetime.time(int(hours), int(minutes)),
        int(_field(row, "day_offset", "0")),
    )
