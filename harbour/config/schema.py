"""
The configuration schema (SPEC section 4), declared once.

Each topic is a frozen attrs class whose fields carry their check, so one
generic walker (L{build}) validates every topic, collects every problem
with its line, suggests the closest key for an unknown one, and fills in
defaults.  L{load_directory} reads a whole configuration directory and
either returns a complete L{Configuration} or every problem at once.
"""

from __future__ import annotations

import datetime
import difflib
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import attr

GIB = 1024**3

#: The longest span one OASIS request may cover.
MAX_WINDOW_HOURS = 31 * 24

_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_SPAN = re.compile(r"(\d+)(h|d)\Z")
_RELATIVE = re.compile(r"-(\d+)(d|mo|y)\Z")


class Invalid(ValueError):
    """
    A value failed its check; the message says what was expected.
    """


Check = Callable[[Any], Any]


def setting(default: Any = attr.NOTHING, *, check: Check, doc: str) -> Any:
    """
    Declare one configuration key: its default, its check, and what it means.
    """
    return attr.ib(default=default, metadata={"check": check, "doc": doc})


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """
    A whole number within bounds.
    """

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be a whole number, not {_describe(value)}")
        _bounded(value, minimum, maximum)
        return value

    return check


def number(minimum: float | None = None, maximum: float | None = None) -> Check:
    """
    A number (integer or float) within bounds, as a float.
    """

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"must be a number, not {_describe(value)}")
        _bounded(value, minimum, maximum)
        return float(value)

    return check


def _bounded(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise Invalid(f"must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise Invalid(f"must be at most {maximum}, not {value}")


def boolean() -> Check:
    """
    C{true} or C{false}.
    """

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, not {_describe(value)}")
        return value

    return check


def text(pattern: re.Pattern | None = None, choices: tuple[str, ...] = ()) -> Check:
    """
    A string, optionally matching C{pattern} or one of C{choices}.
    """

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be a string, not {_describe(value)}")
        if choices and value not in choices:
            raise Invalid(f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        if pattern is not None and not pattern.match(value):
            raise Invalid(f"{value!r} is not of the expected form")
        return value

    return check


def file_name() -> Check:
    """
    A name usable as a directory inside the download directory: letters,
    digits, C{_}, C{.} and C{-}, and not C{.} or C{..} or hidden.
    """

    def check(value: Any) -> str:
        value = text()(value)
        if not _NAME.match(value):
            raise Invalid(f"{value!r} may use only letters, digits, '_', '.' and '-'")
        if value.startswith("."):
            raise Invalid(f"{value!r} could leave or hide in the download directory")
        return value

    return check


def optional(inner: Check) -> Check:
    """
    Either absent (L{None}) or passing C{inner}.
    """

    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def url() -> Check:
    """
    An http or https URL, kept without a trailing slash.
    """

    def check(value: Any) -> str:
        value = text()(value)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(f"must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/")

    return check


def day(allow_today: bool = False) -> Check:
    """
    A date (TOML date or C{"YYYY-MM-DD"}), a span before today such as
    C{"-39mo"}, C{"-30d"} or C{"-2y"}, or (if allowed) C{"today"}; kept as
    a string so that relative values stay relative.
    """
    expected = 'a date (2024-01-31), a span back such as "-39mo", "-30d" or "-2y"'
    if allow_today:
        expected += ', or "today"'

    def check(value: Any) -> str:
        if isinstance(value, datetime.datetime):
            raise Invalid(f"must be {expected}, not a date-time")
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, str):
            if allow_today and value == "today":
                return value
            if _RELATIVE.match(value):
                return value
            try:
                return datetime.date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise Invalid(f"must be {expected}, not {value!r}")

    return check


def resolve_day(value: str, today: datetime.date) -> datetime.date:
    """
    Turn a value accepted by L{day} into a date, counting back from C{today}.
    """
    if value == "today":
        return today
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


def timezone() -> Check:
    """
    An IANA time zone name.
    """

    def check(value: Any) -> str:
        value = text()(value)
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"{value!r} is not a known time zone") from None
        return value

    return check


def window() -> Check:
    """
    The largest span one request may cover: C{"<n>h"} or C{"<n>d"}, at most
    31 days.
    """

    def check(value: Any) -> str:
        value = text()(value)
        match = _SPAN.match(value)
        if match is None:
            raise Invalid(f'must be a span such as "1d", "31d" or "1h", not {value!r}')
        if window_hours(value) == 0 or window_hours(value) > MAX_WINDOW_HOURS:
            raise Invalid(f"must be between 1h and 31d, not {value!r}")
        return value

    return check


def window_hours(value: str) -> int:
    """
    @return: The length of a window accepted by L{window}, in hours.
    """
    match = _SPAN.match(value)
    count = int(match.group(1))
    return count * 24 if match.group(2) == "d" else count


def query_params() -> Check:
    """
    A table of extra query parameters: names to strings or numbers.
    """

    def check(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid(f"must be a table of parameters, not {_describe(value)}")
        result = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise Invalid(f"parameter {name!r} must be a string or number, not {_describe(item)}")
            result[name] = str(item)
        return result

    return check


@attr.s(frozen=True, auto_attribs=True)
class ManifestTopic:
    """
    C{[manifest]}: where reports come from and over which days.
    """

    base_url: str = setting(
        "http://oasis.caiso.com/oasisapi", check=url(), doc="The OASIS API root."
    )
    start: str = setting("-39mo", check=day(), doc="First trading day (OASIS keeps about 39 months).")
    end: str = setting("today", check=day(allow_today=True), doc="Last trading day.")
    timezone: str = setting(
        "America/Los_Angeles", check=timezone(), doc="The zone whose days are trading days."
    )
    follow_publications: bool = setting(
        True, check=boolean(),
        doc="Read OASIS's publications log (ATL_PUB): request only published days, re-fetch revised ones.",
    )
    publications_interval: float = setting(
        900.0, check=number(minimum=1), doc="Seconds between reads of the publications log."
    )


@attr.s(frozen=True, auto_attribs=True)
class ReportTopic:
    """
    One C{[[reports]]} table: one report to mirror.
    """

    name: str = setting(check=file_name(), doc="Unique name; the directory of its files.")
    queryname: str | None = setting(None, check=optional(text()), doc="SingleZip query name.")
    groupid: str | None = setting(None, check=optional(text()), doc="GroupZip group id.")
    kind: str | None = setting(
        None, check=optional(text(choices=("single_zip", "group_zip"))), doc="Request kind."
    )
    market_run_id: str | None = setting(None, check=optional(text()), doc="Market run id.")
    version: int = setting(1, check=integer(minimum=1), doc="Report version.")
    resultformat: str = setting("xml", check=text(choices=("xml", "csv")), doc="Answer format.")
    window: str = setting("1d", check=window(), doc="The largest span of one request.")
    params: dict = setting(attr.Factory(dict), check=query_params(), doc="Extra query parameters.")
    start: str | None = setting(None, check=optional(day()), doc="Overrides [manifest] start.")
    end: str | None = setting(None, check=optional(day(allow_today=True)), doc="Overrides [manifest] end.")
    enabled: bool = setting(True, check=boolean(), doc="Whether to mirror it.")

    @staticmethod
    def check_whole(values: dict) -> Iterable[tuple[str, str]]:
        """
        Checks that involve several keys: yield (key, message) problems, and
        fill in C{kind} from whichever of C{queryname}/C{groupid} is given.
        """
        query, group = values.get("queryname"), values.get("groupid")
        if (query is None) == (group is None):
            yield "queryname", "give exactly one of queryname (SingleZip) or groupid (GroupZip)"
            return
        implied = "single_zip" if query is not None else "group_zip"
        if values.get("kind") is None:
            values["kind"] = implied
        elif values["kind"] != implied:
            key = "queryname" if query is not None else "groupid"
            yield "kind", f"kind {values['kind']!r} does not fit {key} (use {implied!r})"


@attr.s(frozen=True, auto_attribs=True)
class WorkTopic:
    """
    C{[work]}: how tasks are created and retried.
    """

    refresh_interval: float = setting(3600.0, check=number(minimum=1), doc="Seconds between refreshes.")
    lease_seconds: float = setting(300.0, check=number(minimum=5), doc="Claim lease length.")
    max_attempts: int = setting(8, check=integer(minimum=1), doc="Attempts before a task fails.")
    retry_base: float = setting(10.0, check=number(minimum=0), doc="First retry delay; it doubles.")
    retry_cap: float = setting(3600.0, check=number(minimum=0), doc="Longest retry delay.")


@attr.s(frozen=True, auto_attribs=True)
class DownloadTopic:
    """
    C{[download]}: how files are fetched.
    """

    directory: str = setting("reports", check=text(), doc="Download directory, relative to the data dir.")
    concurrency: int = setting(2, check=integer(minimum=1, maximum=64), doc="Workers in this process.")
    min_request_interval: float = setting(
        5.0, check=number(minimum=0), doc="Seconds between request starts to one host."
    )
    max_bytes_per_second: int = setting(0, check=integer(minimum=0), doc="0 means no cap.")
    connect_timeout: float = setting(30.0, check=number(minimum=0.1), doc="Seconds.")
    idle_timeout: float = setting(60.0, check=number(minimum=0.1), doc="Seconds without a byte.")
    max_bytes: int = setting(2 * GIB, check=integer(minimum=1), doc="Largest accepted answer.")
    keep_revisions: bool = setting(
        True, check=boolean(), doc="Keep a file replaced by a revision, as <name>.rev<N>.zip."
    )


#: Each topic: its class, and whether the file holds a list of tables.
TOPICS: dict[str, tuple[type, bool]] = {
    "manifest": (ManifestTopic, False),
    "reports": (ReportTopic, True),
    "work": (WorkTopic, False),
    "download": (DownloadTopic, False),
}


@attr.s(frozen=True, auto_attribs=True)
class Problem:
    """
    One configuration error, located.
    """

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


def suggest(key: str, known: Iterable[str]) -> str:
    """
    @return: C{' (did you mean "x"?)'} for the closest known key, or C{""}.
    """
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Locator:
    """
    Finds the line of a key in TOML text (tomllib keeps no positions).

    Paths are tuples such as C{("reports", 2, "window")}: table headers,
    array-of-tables indices and keys.  An unknown path falls back to its
    nearest known ancestor, and finally to line 1.
    """

    _HEADER = re.compile(r"\s*(\[\[?)\s*([^\]\s]+)\s*\]")
    _KEY = re.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")

    def __init__(self, source: str) -> None:
        self.lines: dict[tuple, int] = {}
        counts: dict[str, int] = {}
        table: tuple = ()
        for number, line in enumerate(source.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                names = tuple(header.group(2).split("."))
                if header.group(1) == "[[":
                    dotted = ".".join(names)
                    counts[dotted] = counts.get(dotted, -1) + 1
                    table = names + (counts[dotted],)
                else:
                    table = self._within_array(names, counts)
                self.lines.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault(table + (key.group(1).strip('"'),), number)

    @staticmethod
    def _within_array(names: tuple, counts: dict[str, int]) -> tuple:
        # [reports.params] after [[reports]] belongs to the last report.
        if names and names[0] in counts and len(names) > 1:
            return (names[0], counts[names[0]]) + names[1:]
        return names

    def line(self, path: tuple) -> int:
        """
        @return: The line of C{path} or of its nearest located ancestor.
        """
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


def build(
    cls: type,
    table: Any,
    path: tuple,
    problem: Callable[[tuple, str], None],
    defaults: dict | None = None,
) -> Any:
    """
    Validate one table against the attrs class C{cls}.

    @param problem: Called with (path, message) for each problem found.
    @param defaults: Defaults that take precedence over the class's own.
    @return: An instance of C{cls}, or L{None} if there was any problem.
    """
    if not isinstance(table, dict):
        problem(path, f"must be a table, not {_describe(table)}")
        return None
    fields = {f.name: f for f in attr.fields(cls)}
    ok = True
    for key in table:
        if key not in fields:
            problem(path + (key,), f"unknown key {key!r}{suggest(key, fields)}")
            ok = False
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in table:
            try:
                values[name] = field.metadata["check"](table[name])
            except Invalid as e:
                problem(path + (name,), str(e))
                ok = False
        elif defaults and name in defaults:
            values[name] = defaults[name]
        elif field.default is attr.NOTHING:
            problem(path, f"missing required key {name!r}")
            ok = False
    check_whole = getattr(cls, "check_whole", None)
    if ok and check_whole is not None:
        for key, message in check_whole(values):
            problem(path + (key,), message)
            ok = False
    return cls(**values) if ok else None


@attr.s(frozen=True, auto_attribs=True)
class Configuration:
    """
    A complete, valid configuration: a value for every known topic.

    @ivar sources: The file that defined each topic (absent: default).
    """

    topics: dict[str, Any]
    sources: dict[str, str] = attr.ib(factory=dict)

    def payloads(self) -> dict[str, Any]:
        """
        @return: Each topic's value as the JSON message published for it.
        """
        return {topic: to_payload(value) for topic, value in self.topics.items()}


def to_payload(value: Any) -> Any:
    """
    @return: A topic value as plain JSON data.
    """
    if isinstance(value, (list, tuple)):
        return [to_payload(item) for item in value]
    return attr.asdict(value)


def default_configuration(defaults: dict[str, dict] | None = None) -> Configuration:
    """
    @return: The configuration of an empty directory.
    """
    defaults = defaults or {}
    topics = {
        topic: [] if many else cls(**defaults.get(topic, {}))
        for topic, (cls, many) in TOPICS.items()
    }
    return Configuration(topics)


def parse_file(
    name: str, source: str, defaults: dict[str, dict] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """
    Parse and validate one file.

    @return: The topics it defines, validated, and the problems found.
    """
    try:
        document = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"at line (\d+)", str(e))
        return {}, [Problem(name, int(line.group(1)) if line else 1, "", f"not valid TOML: {e}")]
    locator = Locator(source)
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        problems.append(Problem(name, locator.line(path), key, message))

    topics: dict[str, Any] = {}
    defaults = defaults or {}
    for topic, value in document.items():
        if topic not in TOPICS:
            problem((topic,), f"unknown topic {topic!r}{suggest(topic, TOPICS)}")
            continue
        cls, many = TOPICS[topic]
        if not many:
            topics[topic] = build(cls, value, (topic,), problem, defaults.get(topic))
            continue
        if not isinstance(value, list):
            problem((topic,), f"must be an array of tables ([[{topic}]]), not {_describe(value)}")
            continue
        items = [build(cls, item, (topic, i), problem) for i, item in enumerate(value)]
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item is not None and item.name in seen:
                problem((topic, i, "name"), f"duplicate name {item.name!r} (also {topic}[{seen[item.name]}])")
            elif item is not None:
                seen[item.name] = i
        topics[topic] = items
    problems.sort(key=lambda p: p.line)
    return topics, problems


def load_directory(
    directory: Path, defaults: dict[str, dict] | None = None
) -> tuple[Configuration | None, list[Problem]]:
    """
    Read and validate every C{*.toml} file of C{directory}.

    @return: The complete configuration and no problems, or L{None} and
        every problem of every file.
    """
    configuration = default_configuration(defaults)
    topics = dict(configuration.topics)
    sources: dict[str, str] = {}
    problems: list[Problem] = []
    for path in config_files(directory):
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(path.name, 1, "", f"not UTF-8 text: {e.reason}"))
            continue
        except FileNotFoundError:
            continue  # removed while we read; its deletion event follows
        except OSError as e:
            problems.append(Problem(path.name, 1, "", f"cannot read: {e.strerror}"))
            continue
        found, file_problems = parse_file(path.name, source, defaults)
        problems.extend(file_problems)
        locator = Locator(source)
        for topic, value in found.items():
            if topic in sources:
                problems.append(
                    Problem(path.name, locator.line((topic,)), topic,
                            f"topic {topic!r} is also defined in {sources[topic]}")
                )
                continue
            sources[topic] = path.name
            topics[topic] = value
    if problems:
        return None, problems
    return Configuration(topics, sources), []


def config_files(directory: Path) -> list[Path]:
    """
    @return: The configuration files of C{directory}, in name order: every
        C{*.toml} except hidden ones (editors' temporary files).
    """
    return sorted(
        p for p in Path(directory).glob("*.toml") if not p.name.startswith(".") and p.is_file()
    )
