"""
The configuration loader: files and directories to topics, or problems.

The topics themselves, which check their values whenever they are built,
are in L{harbour.config.topics}, and the checks of single values in
L{harbour.config.checks}; this module re-exports both, so that it stays
the one place to import the schema from.  L{parse_file} turns each topic
error into L{Problem}s located at their file and line, and
L{load_directory} reads a whole configuration directory and either returns
a complete L{Configuration} or every problem at once (L{read_directory}
also tells which files went away as they were read).
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import pwd
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attr

from harbour.config.checks import (
    GIB,
    MAX_WINDOW_HOURS,
    MONTH_WINDOW,
    Check,
    Invalid,
    boolean,
    data_subdirectory,
    day,
    describe,
    file_name,
    integer,
    number,
    optional,
    past_end,
    query_params,
    resolve_day,
    text,
    timezone,
    url,
    window,
    window_hours,
)
from harbour.config.paging import LIMIT, MOST_REPORT_BYTES, encode
from harbour.config.topics import (
    TOPICS,
    DownloadTopic,
    ManifestTopic,
    ReportTopic,
    Topic,
    TopicError,
    WorkTopic,
    reversed_range,
    setting,
    suggest,
    to_payload,
)
from harbour.dataset.naming import clashes

__all__ = [
    "GIB",
    "MAX_WINDOW_HOURS",
    "MONTH_WINDOW",
    "TOPICS",
    "Check",
    "Configuration",
    "DownloadTopic",
    "Invalid",
    "Loaded",
    "Locator",
    "ManifestTopic",
    "Problem",
    "ReportTopic",
    "Topic",
    "TopicError",
    "WorkTopic",
    "boolean",
    "build",
    "config_files",
    "is_config_name",
    "data_subdirectory",
    "day",
    "default_configuration",
    "describe",
    "file_name",
    "integer",
    "load_directory",
    "number",
    "optional",
    "parse_file",
    "printable",
    "query_params",
    "read_directory",
    "resolve_day",
    "setting",
    "suggest",
    "text",
    "timezone",
    "to_payload",
    "url",
    "window",
    "window_hours",
]

#: The largest configuration file read: ten times one of 5,000 reports
#: (about 0.5 MB).  A larger one is surely not configuration (a data dump
#: renamed into the directory), and reading it would hold the reactor for
#: seconds, on every reload, and take twenty times its size in memory.
MAX_FILE_BYTES = 4 * 1024 * 1024


def printable(text: str) -> str:
    """
    @return: C{text} fit to be shown and sent as UTF-8: a file name that
        is not UTF-8 keeps each byte that is not as a lone surrogate, which
        no UTF-8 encoder takes, and which this writes as C{\\xe9} instead.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        # A surrogate that stands for no byte.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@attr.s(frozen=True, auto_attribs=True)
class Problem:
    """
    One configuration error, or warning, located.

    @ivar file: The file's name, L{printable}.
    @ivar message: What is wrong, L{printable}: it may quote a file name.
    @ivar warning: Whether it is only a warning: the configuration is used
        all the same.
    """

    file: str = attr.ib(converter=printable)
    line: int
    key: str
    message: str = attr.ib(converter=printable)
    warning: bool = False

    def __str__(self) -> str:
        """
        @return: C{"file:line: key: message"}, as compilers print errors.
        """
        where = f"{self.key}: " if self.key else ""
        kind = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {kind}{where}{self.message}"


class Locator:
    """
    Finds the line of a key in TOML text (tomllib keeps no positions).

    Paths are tuples such as C{("reports", 2, "window")}: table headers,
    array-of-tables indices and keys, a dotted key (C{work.max_attempts =
    0}) or header (C{[reports.params]}) giving one name per part, quoted or
    not, and an inline table's index in the array holding it
    (C{reports = [{...}, {...}]}).  What is inside a string, multi-line or
    not, is not taken for a key.  An unknown path falls back to its
    nearest known ancestor, and finally to line 1.
    """

    _NAME = r"""[A-Za-z0-9_\-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
    _DOTTED = rf"(?:{_NAME})(?:\s*\.\s*(?:{_NAME}))*"
    _HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]")
    _KEY = re.compile(rf"\s*({_DOTTED})\s*=")
    _PART = re.compile(_NAME)

    def __init__(self, source: str) -> None:
        self.lines: dict[tuple, int] = {}
        counts: dict[tuple, int] = {}
        table: tuple = ()
        # The delimiter of a multi-line string left open by a line.
        quote: str | None = None
        # The last key's path, the brackets open in its value, and the
        # elements of its array begun: a table opened right inside that
        # array is its element (tables inline are one line each).
        value: tuple = ()
        opened: list[str] = []
        elements = 0

        def seen(char: str) -> None:
            nonlocal elements
            if char in "[{":
                if char == "{" and opened == ["["]:
                    self.lines.setdefault(value + (elements,), lineno)
                opened.append(char)
            elif char in "]}" and opened:
                opened.pop()
            elif char == "," and opened == ["["]:
                elements += 1

        for lineno, line in enumerate(source.splitlines(), start=1):
            pos = 0
            if quote is not None:
                closed = self._string_end(line, 0, quote)
                if closed is None:
                    continue
                pos = closed
            elif not opened:
                header = self._HEADER.match(line)
                if header:
                    names = self._names(header.group(2))
                    if header.group(1) == "[[":
                        counts[names] = counts.get(names, -1) + 1
                        table = names + (counts[names],)
                    else:
                        table = self._within_array(names, counts)
                    self.lines.setdefault(table, lineno)
                    continue
                key = self._KEY.match(line)
                if key:
                    names = self._names(key.group(1))
                    # A dotted key also defines the tables it names.
                    for end in range(1, len(names) + 1):
                        self.lines.setdefault(table + names[:end], lineno)
                    value, elements, pos = table + names, 0, key.end()
            # Another line is a value's continuation, an array's.
            quote = self._open_string(line, pos, seen)

    @classmethod
    def _open_string(cls, line: str, pos: int, seen: Callable[[str], None]) -> str | None:
        """
        @param seen: Called with each character of C{line} from C{pos} on
            that is neither within a string nor a comment.
        @return: The delimiter of the multi-line string that C{line}, read
            from C{pos} on, leaves open, or L{None}.
        """
        while pos < len(line) and line[pos] != "#":
            char = line[pos]
            if char not in "\"'":
                seen(char)
                pos += 1
                continue
            quote = char * 3 if line.startswith(char * 3, pos) else char
            end = cls._string_end(line, pos + len(quote), quote)
            if end is None:
                return quote if len(quote) == 3 else None
            pos = end
        return None

    @staticmethod
    def _string_end(line: str, pos: int, quote: str) -> int | None:
        """
        @return: Where a string closed by C{quote} and read from C{pos}
            of C{line} ends, past its closing quotes, or L{None} if it
            goes on after the line.
        """
        while pos < len(line):
            if quote[0] == '"' and line[pos] == "\\":
                pos += 2
            elif line.startswith(quote, pos):
                end = pos + len(quote)
                # Up to two quotes before a multi-line string's closing
                # three are its own.
                while len(quote) == 3 and end < len(line) and line[end] == quote[0] and end - pos < 5:
                    end += 1
                return end
            else:
                pos += 1
        return None

    @classmethod
    def _names(cls, dotted: str) -> tuple[str, ...]:
        """
        @return: The names of a key or header, such as C{("a", "b.c")} for
            C{a . "b.c"}.
        """
        return tuple(_unquote(name) for name in cls._PART.findall(dotted))

    @staticmethod
    def _within_array(names: tuple, counts: dict[tuple, int]) -> tuple:
        # [reports.params] after [[reports]] belongs to the last report.
        if len(names) > 1 and names[:1] in counts:
            return (names[0], counts[names[:1]]) + names[1:]
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


def _unquote(name: str) -> str:
    """
    @return: The name a part of a TOML key stands for: a bare name as it
        is, a quoted one without its quotes and, for a basic string, with
        its escapes read as JSON reads them (TOML's are nearly the same; a
        key using one of the few others keeps it as written).
    """
    if name.startswith("'"):
        return name[1:-1]
    if name.startswith('"'):
        try:
            unquoted = json.loads(name)
        except ValueError:
            return name[1:-1]
        return unquoted if isinstance(unquoted, str) else name[1:-1]
    return name


def build(
    cls: type[Topic],
    table: Any,
    path: tuple[str | int, ...],
    problem: Callable[[tuple[str | int, ...], str], None],
    defaults: dict[str, Any] | None = None,
) -> Any:
    """
    Build one topic from a table of a file, reporting its problems.

    @param cls: The topic class.
    @param table: The table, as TOML gives it.
    @param path: Where the table is, such as C{("reports", 2)}.
    @param problem: Called with (path, message) for each problem found;
        the path names the key at fault, or is C{path} itself for the
        table as a whole.
    @param defaults: Defaults that take precedence over the class's own.
    @return: An instance of C{cls}, or L{None} if there was any problem.
    """
    try:
        return cls.from_payload(table, defaults)
    except TopicError as e:
        for key, message in e.problems:
            problem(path + (key,) if key else path, message)
        return None


@attr.s(frozen=True, auto_attribs=True)
class Configuration:
    """
    A complete, valid configuration: a value for every known topic.

    @ivar sources: The file that defined each topic (absent: default).
    @ivar warnings: What is allowed but probably not meant, such as a
        report the catalogue of OASIS reports does not know.
    """

    topics: dict[str, Any]
    sources: dict[str, str] = attr.ib(factory=dict)
    warnings: list[Problem] = attr.ib(factory=list)

    def payloads(self) -> dict[str, Any]:
        """
        @return: Each topic's value as the JSON message published for it.
        """
        return {topic: to_payload(value) for topic, value in self.topics.items()}


def default_configuration(defaults: dict[str, dict] | None = None) -> Configuration:
    """
    @param defaults: Per-topic defaults that replace the schema's own.
    @return: The configuration of an empty directory.
    @raise TopicError: if a default is refused by its check.
    """
    defaults = defaults or {}
    topics: dict[str, Any] = {
        topic: [] if many else cls.from_payload({}, defaults.get(topic))
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
        return {}, [Problem(name, _error_line(e, source), "", f"not valid TOML: {e}")]
    except RecursionError:
        # The parser recurses once per array or inline table opened.
        return {}, [Problem(name, 1, "", "cannot be read: arrays or tables nested too deeply")]
    except ValueError as e:
        # A whole number of more digits than Python converts; the advice
        # after the semicolon is for programmers.
        return {}, [Problem(name, 1, "", f"cannot be read: {str(e).split(';')[0]}")]
    locator = Locator(source)
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        problems.append(Problem(name, locator.line(path), key, message))

    topics: dict[str, Any] = {}
    for topic, value in document.items():
        try:
            _check_topic(topic, value, topics, problem, (defaults or {}).get(topic))
        except RecursionError:
            # A check that recursed over a value nested deeply (a dotted
            # key of thousands of parts is a table that deep): an error of
            # this topic, lest it hide every other file's and topic's.
            topics[topic] = None
            problem((topic,), "cannot be checked: a key or value of it is nested too deeply")
    problems.sort(key=lambda p: p.line)
    return topics, problems


def _check_topic(
    topic: str,
    value: Any,
    topics: dict[str, Any],
    problem: Callable[[tuple[str | int, ...], str], None],
    defaults: dict[str, Any] | None,
) -> None:
    """
    Validate one topic of a file, as L{parse_file} does.

    @param topics: Where the topic's value goes, if it is a known topic:
        L{None}, or a list holding L{None}s, for what was refused.
    @param problem: Called with (path, message) for each problem found.
    @param defaults: The defaults of this topic.
    """
    if topic not in TOPICS:
        problem((topic,), f"unknown topic {topic!r}{suggest(topic, TOPICS)}")
        return
    cls, many = TOPICS[topic]
    if not many:
        topics[topic] = build(cls, value, (topic,), problem, defaults)
        return
    if not isinstance(value, list):
        problem((topic,), f"must be an array of tables ([[{topic}]]), not {describe(value)}")
        return
    items = [build(cls, item, (topic, i), problem) for i, item in enumerate(value)]
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item is not None and item.name in seen:
            problem((topic, i, "name"), f"duplicate name {item.name!r} (also {topic}[{seen[item.name]}])")
        elif item is not None:
            seen[item.name] = i
    topics[topic] = items


@attr.s(frozen=True, auto_attribs=True)
class Loaded:
    """
    What reading a configuration directory found.

    @ivar configuration: The complete configuration, or L{None} if there
        was any problem.
    @ivar problems: Every problem of every file.
    @ivar vanished: The names of the files that were gone by the time they
        were read (an editor's save may rename a file away for a moment):
        read as if they had never been there.
    """

    configuration: Configuration | None
    problems: list[Problem]
    vanished: list[str] = attr.ib(factory=list)


def _error_line(error: tomllib.TOMLDecodeError, source: str) -> int:
    """
    @return: The line of C{source} at which C{error} was found: the one its
        message names, or the last for an error "at end of document" (an
        array or string left open, which the reader looks for there).
    """
    line = re.search(r"at line (\d+)", str(error))
    if line is not None:
        return int(line.group(1))
    if "at end of document" in str(error):
        return max(1, len(source.splitlines()))
    return 1


def load_directory(
    directory: Path, defaults: dict[str, dict] | None = None, today: datetime.date | None = None
) -> tuple[Configuration | None, list[Problem]]:
    """
    Read and validate every C{*.toml} file of C{directory}.

    @param today: The day spans back count from when a range's order is
        checked (see L{past_end}); by default today where it is earliest.
    @return: The complete configuration and no problems, or L{None} and
        every problem of every file.
    """
    loaded = read_directory(directory, defaults, today)
    return loaded.configuration, loaded.problems


def read_directory(
    directory: Path, defaults: dict[str, dict] | None = None, today: datetime.date | None = None
) -> Loaded:
    """
    Read and validate every C{*.toml} file of C{directory}, as
    L{load_directory} does, telling also which files went away as they
    were read.

    @return: What was found.
    """
    configuration = default_configuration(defaults)
    topics = dict(configuration.topics)
    sources: dict[str, str] = {}
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    vanished: list[str] = []
    try:
        paths = config_files(directory)
    except OSError as e:
        # Read as empty, it would retire every task.
        why = f"cannot list the configuration directory {directory}: {_os_error(e)}"
        return Loaded(None, [Problem(Path(directory).name or str(directory), 1, "", why)])
    for path in paths:
        refused = _not_a_file(path)
        if refused is not None:
            problems.append(Problem(path.name, 1, "", refused))
            continue
        try:
            # Opened without waiting, and checked once open: a FIFO put at
            # the name since the check above would otherwise hold the
            # reactor until something wrote to it.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(descriptor, "rb") as opened:
                state = os.fstat(descriptor)
                refused = _not_regular(state.st_mode)
                # Read no further than the cap, whatever a stat said before.
                data = b"" if refused else opened.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            vanished.append(path.name)
            continue
        except OSError as e:
            problems.append(Problem(path.name, 1, "", f"cannot read: {_os_error(e)}"))
            continue
        if refused is not None:
            problems.append(Problem(path.name, 1, "", refused))
            continue
        size = state.st_size
        if len(data) > MAX_FILE_BYTES:
            why = (
                f"too large ({max(size, len(data)):,} bytes): a configuration file may hold at most"
                f" {MAX_FILE_BYTES:,} bytes (4 MiB)"
            )
            problems.append(Problem(path.name, 1, "", why))
            continue
        # Some editors start UTF-8 with a byte order mark, which tomllib
        # refuses; it says nothing of the text.
        try:
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = e.object.count(b"\n", 0, e.start) + 1
            problems.append(Problem(path.name, line, "", f"not UTF-8 text: {e.reason}"))
            continue
        texts[path.name] = source
        found, file_problems = parse_file(path.name, source, defaults)
        problems.extend(file_problems)
        locator = Locator(source)
        for topic, value in found.items():
            if topic in sources:
                problems.append(
                    Problem(
                        path.name,
                        locator.line((topic,)),
                        topic,
                        f"topic {topic!r} is also defined in {sources[topic]}",
                    )
                )
                continue
            sources[topic] = path.name
            topics[topic] = value
    problems.extend(_reversed_ranges(topics, sources, texts, today))
    problems.extend(_unpublishable(topics, sources, texts))
    if problems:
        return Loaded(None, problems, vanished)
    warnings = report_warnings(topics["reports"], sources, texts)
    return Loaded(Configuration(topics, sources, warnings), [], vanished)


def _reversed_ranges(
    topics: dict[str, Any], sources: dict[str, str], texts: dict[str, str], today: datetime.date | None
) -> list[Problem]:
    """
    Refuse a range that asks for nothing, where the tables' own checks
    cannot see it: a report whose one bound is its own and the other the
    manifest's, both dates (see L{reversed_range}); or, in the manifest or
    a report, a span back as start already after a date as end, which the
    days passing only put further after it, or after a span back as end
    on every day (see L{past_end}).  Such a
    range asks for nothing, and a daemon following it would retire every
    task of the report.

    @param topics: Every topic's value; L{None} for a topic, or a report,
        that was refused (its problems are already told).
    @param today: The day spans back count from (see L{past_end}).
    @return: One problem for each, located at the manifest's start, or at
        the report's own bound.
    """
    manifest = topics.get("manifest")
    if manifest is None:
        return []
    where = sources.get("manifest")
    located = Locator(texts[where]) if where is not None else None
    problems = []
    shown = _past(manifest.start, manifest.end, today)
    if shown is not None:
        line = located.line(("manifest", "start")) if located is not None else 1
        message = f"start {shown[0]} is after end {shown[1]}: the range would ask for nothing"
        problems.append(Problem(where or "(defaults)", line, "manifest.start", message))
    reports = topics.get("reports")
    if not reports:
        return problems
    name = sources["reports"]
    locator = Locator(texts[name])
    for index, report in enumerate(reports):
        # A report giving neither bound has the manifest's range.
        if report is None or (report.start is None and report.end is None):
            continue
        start, end = report.start or manifest.start, report.end or manifest.end
        if report.start is not None and report.end is not None:
            # Two dates reversed, its own table refused; a span back past the end it cannot tell.
            own, shown, origin = "start", _past(start, end, today), ""
        else:
            own, inherited = ("start", "end") if report.start is not None else ("end", "start")
            reversed_dates = any(reversed_range({"start": start, "end": end}))
            shown = (start, end) if reversed_dates else _past(start, end, today)
            where_given = (
                "by default" if located is None else f"{where}:{located.line(('manifest', inherited))}"
            )
            origin = f" (the manifest's {inherited}, {where_given})"
        if shown is None:
            continue
        message = f"start {shown[0]} is after end {shown[1]}{origin}: the range would ask for nothing"
        problems.append(
            Problem(name, locator.line(("reports", index, own)), f"reports[{index}].{own}", message)
        )
    return problems


def _past(start: str, end: str, today: datetime.date | None) -> tuple[str, str] | None:
    """
    @return: C{start} and C{end} as a refusal shows them, a span back
        with the day it names, if C{start} is a span back after C{end}
        for good (see L{past_end}).
    """
    days = past_end(start, end, today)
    if days is None:
        return None
    first, last = days
    return f"{start} ({first} as of today)", end if end == str(last) else f"{end} ({last} as of today)"


def _unpublishable(topics: dict[str, Any], sources: dict[str, str], texts: dict[str, str]) -> list[Problem]:
    """
    What the bus would refuse to carry: a topic, or one report (each goes
    in a page, L{harbour.config.paging}), whose encoded form exceeds one
    AMP value.  Found here, it refuses the whole configuration; found as
    each topic is published, it would leave the topics published before it
    in force and the rest not.

    @param topics: Every topic's value; L{None} for a topic, or a report,
        that was refused (its problems are already told).
    @return: One problem for each, located at its table.
    """
    problems = []
    for topic, value in topics.items():
        if value is None:
            continue
        file = sources.get(topic, "(defaults)")
        locator = Locator(texts.get(file, ""))
        if not TOPICS[topic][1]:
            size = _encoded_size(value)
            if size is None:
                problems.append(Problem(file, locator.line((topic,)), topic, _UNWRITABLE))
                continue
            if size > LIMIT:
                why = f"cannot publish: it is {size:,} bytes encoded; one event may hold {LIMIT:,}"
                problems.append(Problem(file, locator.line((topic,)), topic, why))
            continue
        for index, item in enumerate(value):
            size = 0 if item is None else _encoded_size(item)
            if size is None:
                problems.append(Problem(file, locator.line((topic, index)), f"{topic}[{index}]", _UNWRITABLE))
                continue
            if size > MOST_REPORT_BYTES:
                why = (
                    f"cannot publish: it is {size:,} bytes encoded; one event may hold {LIMIT:,},"
                    f" so one report at most {MOST_REPORT_BYTES:,} beside its page's own keys"
                )
                problems.append(Problem(file, locator.line((topic, index)), f"{topic}[{index}]", why))
    return problems


#: Why a topic that cannot be encoded is refused.
_UNWRITABLE = (
    "cannot publish: it holds a value that cannot be written out, such as a number of thousands of digits"
)


def _encoded_size(value: Any) -> int | None:
    """
    @return: The length of C{value} encoded for the bus, or L{None} if it
        cannot be encoded: every key's check should refuse what JSON cannot
        write (Python refuses an integer of more than 4,300 digits), and
        one that did not must be an error at its topic, not a crash that
        hides every other error.
    """
    try:
        return len(encode(to_payload(value)))
    except ValueError:
        return None


def report_warnings(reports: list[Any], sources: dict[str, str], texts: dict[str, str]) -> list[Problem]:
    """
    @return: The warnings of every report, located in the file that
        defines the reports; among them, the reports whose views' names
        are taken by another's (see L{clashes}).
    """
    name = sources.get("reports")
    if name is None:
        return []
    locator = Locator(texts[name])
    found = [(i, key, message) for i, report in enumerate(reports) for key, message in report.warnings()]
    indices = {report.name: i for i, report in enumerate(reports)}
    for report, view, holder in clashes({r.name: r.queryname or r.groupid for r in reports}):
        message = (
            f"report {report!r} would have no view in the dataset: {view} is a view of report"
            f" {holder!r} (view names ignore case, and read '-' and '.' as '_'); name one of them otherwise"
        )
        found.append((indices[report], "name", message))
    return [
        Problem(name, locator.line(("reports", index, key)), f"reports[{index}].{key}", message, warning=True)
        for index, key, message in found
    ]


def _os_error(error: OSError) -> str:
    """
    @return: What C{error} says; for a permission refused, also whom
        harbour runs as, since the file's owner usually is someone else.
    """
    if error.errno not in (errno.EACCES, errno.EPERM):
        return str(error.strerror)
    uid = os.geteuid()
    try:
        user = f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        user = f"uid {uid}"
    return f"{error.strerror} (harbour runs as {user})"


def config_files(directory: Path) -> list[Path]:
    """
    @return: The configuration files of C{directory}, in name order: every
        C{*.toml} except hidden ones (editors' temporary files), whatever
        it is: one that is not a file is an error (L{_not_a_file}), not
        left out, since leaving out the file of the reports would retire
        every task.
    @raise OSError: If the directory cannot be listed (it is gone, or not
        a directory, or not readable).
    """
    return sorted(Path(directory) / name for name in os.listdir(directory) if is_config_name(name))


def is_config_name(name: str) -> bool:
    """
    @return: Whether a file name is one the configuration is read from.
    """
    return name.endswith(".toml") and not name.startswith(".")


def _not_a_file(path: Path) -> str | None:
    """
    @return: Why C{path} cannot be read as a configuration file (a link to
        nothing, a loop of links, a directory, a FIFO, which reading would
        wait on forever...), or L{None} if it is a regular file or was
        removed meanwhile (its deletion event follows).
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return f"a link to {os.readlink(path)}, which does not exist"
        return None
    except OSError as e:
        return f"cannot read: {_os_error(e)}"
    return _not_regular(mode)


def _not_regular(mode: int) -> str | None:
    """
    @return: Why a file of C{mode} cannot be read as a configuration file,
        or L{None} if it is a regular file.
    """
    if stat.S_ISREG(mode):
        return None
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
    return f"{kind}: a configuration file must be a file of TOML text"
