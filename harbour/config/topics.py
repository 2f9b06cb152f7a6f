"""
The configuration topics (SPEC section 4): one frozen attrs class each.

Every field is declared with L{setting}: its default, its check (from
L{harbour.config.checks}) and what it means.  L{Topic}, the base of every
topic class, runs those checks whenever an instance is built, whether from
a file, a bus payload or a test, so that no topic value exists that its
checks would refuse; it reports every problem at once as a L{TopicError}.
L{Topic.from_payload} also reports unknown and missing keys, which is what
the file loader (L{harbour.config.schema}) and bus subscribers use.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

import attr

from harbour.config.checks import (
    GIB,
    MONTH_WINDOW,
    MOST_VERSION,
    TIB,
    Check,
    Invalid,
    boolean,
    data_subdirectory,
    day,
    describe,
    file_name,
    integer,
    nonempty_text,
    number,
    offset,
    optional,
    query_params,
    text,
    timezone,
    url,
    window,
    window_hours,
)
from harbour.oasis.catalogue import (
    CSV_RESULTFORMAT,
    GROUP,
    LONGEST_DAY_HOURS,
    UNIVERSAL_PARAMS,
    CatalogueEntry,
    check_request,
    load_catalogue,
    offset_hours,
    span_hours,
)
from harbour.oasis.catalogue import warnings as catalogue_warnings

#: The window of a report the catalogue does not know.
DEFAULT_WINDOW = "1d"

#: The version of a report the catalogue does not know.
DEFAULT_VERSION = 1

#: The window of a report OASIS serves only current data of whose windows
#: are asked for once over (see L{_asked_once_over}): a window is asked
#: only while its day is today, so one of a day never is.
CURRENT_WINDOW = "1h"

#: The window of a report OASIS serves only current data of that is
#: published ahead (see L{_published_ahead}): each trading day its own
#: request and file, fetched again every day until it is today, so that a
#: day once past keeps the answer fetched on it.
AHEAD_WINDOW = "1d"


def setting(default: Any = attr.NOTHING, *, check: Check, doc: str) -> Any:
    """
    Declare one configuration key of a L{Topic}.

    @param default: The value when the key is absent; none means the key
        is required.
    @param check: The L{Check} the value must pass when a topic is built;
        what it returns is the value kept.
    @param doc: What the key means.
    @return: An attrs field.
    """
    return attr.ib(default=default, metadata={"check": check, "doc": doc})


class TopicError(Invalid):
    """
    A topic cannot be built from the values given.

    @ivar topic: The name of the topic class, such as C{"DownloadTopic"}.
    @ivar problems: Every problem found, as C{(key, message)} pairs in the
        order of the topic's fields; the key is C{""} for a problem of the
        table as a whole (not a table, or a required key missing).
    """

    def __init__(self, topic: str, problems: Sequence[tuple[str, str]]) -> None:
        """
        @param topic: See L{TopicError.topic}.
        @param problems: See L{TopicError.problems}.
        """
        # Both go to the base class so that the error pickles and compares.
        super().__init__(topic, list(problems))
        self.topic = topic
        self.problems = list(problems)

    def __str__(self) -> str:
        """
        @return: The topic and each problem, such as C{"DownloadTopic:
            concurrency: must be at least 1, not 0"}.
        """
        described = (f"{key}: {message}" if key else message for key, message in self.problems)
        return f"{self.topic}: " + "; ".join(described)


def suggest(key: str, known: Iterable[str]) -> str:
    """
    @return: C{' (did you mean "x"?)'} for the closest known key, or C{""}.
    """
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _check_fields(
    cls: type[Topic], values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """
    Run the check of each field of C{cls} that C{values} gives.

    @return: The values each check returned (so none for a field refused
        or absent), and (key, message) problems for every value refused
        and every required field absent.
    """
    checked: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field in attr.fields(cls):
        if field.name in values:
            try:
                checked[field.name] = field.metadata["check"](values[field.name])
            except Invalid as e:
                problems.append((field.name, str(e)))
        elif field.default is attr.NOTHING:
            problems.append(("", f"missing required key {field.name!r}"))
    return checked, problems


class Topic:
    """
    The base of every topic class: an instance is checked as it is built.

    A subclass is a frozen attrs class whose fields are declared with
    L{setting}.  Building it with any value that fails its field's check,
    or with values that fail L{check_whole} together, raises L{TopicError}
    naming every problem, those of the fields and those of the fields
    together at once; the values kept are those the checks return.
    """

    #: Set by attrs on each subclass; declared so that type checkers let
    #: this base class pass C{cls} to L{attr.fields}.
    __attrs_attrs__: ClassVar[Any]

    def __attrs_post_init__(self) -> None:
        """
        Check every field, then the fields that passed together, and keep
        the checked values.

        @raise TopicError: if any check fails.
        """
        cls = type(self)
        current = {field.name: getattr(self, field.name) for field in attr.fields(cls)}
        checked, problems = _check_fields(cls, current)
        problems.extend(self.check_whole(checked))
        if problems:
            raise TopicError(cls.__name__, problems)
        for name, value in checked.items():
            # The class is frozen; attrs documents this as the way for
            # __attrs_post_init__ to set a field.
            object.__setattr__(self, name, value)

    @staticmethod
    def check_whole(values: dict[str, Any]) -> Iterable[tuple[str, str]]:
        """
        Checks that involve several fields, run after each field's own
        check, on the fields that passed it: a check is skipped only if a
        field it reads was refused, so that a save shows every mistake at
        once rather than one round after another, and none twice.

        @param values: The checked value of every field that passed its
            own check; a field refused, or required and missing, is absent.
            A check may fill in a value implied by others.
        @return: C{(key, message)} problems; none here.
        """
        return ()

    @classmethod
    def from_payload(cls, payload: object, defaults: Mapping[str, Any] | None = None) -> Self:
        """
        Build a topic from a table of values, as a TOML file or a bus
        message gives it.

        @param payload: The table: field names to values.
        @param defaults: Values for fields the table does not give, taking
            precedence over the class's own defaults; names that are not
            fields are ignored.
        @return: The topic.
        @raise TopicError: naming every unknown key (with the closest known
            name), every missing required key, every value refused and
            every problem L{check_whole} finds in the fields that passed.
        """
        if not isinstance(payload, Mapping):
            raise TopicError(cls.__name__, [("", f"must be a table, not {describe(payload)}")])
        fields = attr.fields_dict(cls)
        problems = [(key, _unknown_key(key, fields)) for key in payload if key not in fields]
        given = {name: value for name, value in (defaults or {}).items() if name in fields}
        given.update((name, value) for name, value in payload.items() if name in fields)
        checked, field_problems = _check_fields(cls, given)
        problems.extend(field_problems)
        if problems:
            # The topic cannot be built to run them, but the checks of the
            # fields together still show what else is wrong.
            values = {name: value for name, value in _defaults(cls).items() if name not in given}
            values.update(checked)
            problems.extend(cls.check_whole(values))
            raise TopicError(cls.__name__, problems)
        return cls(**checked)


def _defaults(cls: type[Topic]) -> dict[str, Any]:
    """
    @return: The default of each field of C{cls} that has one.
    """
    defaults = {}
    for field in attr.fields(cls):
        # attrs' stubs declare Factory a function; it is a class.
        if isinstance(field.default, attr.Factory):  # type: ignore[arg-type]
            defaults[field.name] = field.default.factory()
        elif field.default is not attr.NOTHING:
            defaults[field.name] = field.default
    return defaults


def reversed_range(values: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """
    Refuse a C{start} after C{end} when both are dates: such a range asks
    for nothing, and a daemon following it would retire every task it
    had.  (A relative bound is left alone: whether it falls before or
    after a date depends on the day.  A span back already after a date
    stays after it, and one after a span back every day is after it for
    good: the loader refuses those, not the topic, lest a topic
    rebuilt from the bus be refused for the days that passed since it was
    published; see L{harbour.config.checks.past_end}.)

    @param values: Checked values: dates as C{YYYY-MM-DD} strings, which
        compare as the dates do.
    @return: C{(key, message)} problems.
    """
    start, end = values.get("start") or "", values.get("end") or ""
    if _DATE.match(start) and _DATE.match(end) and start > end:
        yield "start", f"start {start} is after end {end}: the range would ask for nothing"


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


#: The longest time a setting in seconds may give (about ten years): a
#: longer one is surely a mistake, and one of 1e308 seconds overflows the
#: timers and Redis times it would be added to.
LONGEST_SECONDS = 10 * 365 * 86400.0

#: The longest claim lease: a worker that dies holds its tasks this long.
LONGEST_LEASE = 86400.0


@attr.s(frozen=True, auto_attribs=True)
class ManifestTopic(Topic):
    """
    C{[manifest]}: where reports come from and over which days.
    """

    base_url: str = setting("https://oasis.caiso.com/oasisapi", check=url(), doc="The OASIS API root.")
    start: str = setting("-39mo", check=day(), doc="First trading day (OASIS keeps about 39 months).")
    end: str = setting("today", check=day(allow_today=True), doc="Last trading day.")
    timezone: str = setting(
        "America/Los_Angeles", check=timezone(), doc="The zone whose days are trading days."
    )
    follow_publications: bool = setting(
        True,
        check=boolean(),
        doc="Read OASIS's publications log (ATL_PUB): request only published days, re-fetch revised ones.",
    )
    publications_interval: float = setting(
        900.0,
        check=number(minimum=1, maximum=LONGEST_SECONDS),
        doc="Seconds between reads of the publications log.",
    )

    @staticmethod
    def check_whole(values: dict[str, Any]) -> Iterable[tuple[str, str]]:
        """
        A C{start} and C{end} given as dates are in order (see
        L{reversed_range}).
        """
        return reversed_range(values)


@attr.s(frozen=True, auto_attribs=True)
class ReportTopic(Topic):
    """
    One C{[[reports]]} table: one report to mirror.
    """

    name: str = setting(check=file_name(), doc="Unique name; the directory of its files.")
    queryname: str | None = setting(None, check=optional(nonempty_text()), doc="SingleZip query name.")
    groupid: str | None = setting(None, check=optional(nonempty_text()), doc="GroupZip group id.")
    kind: str | None = setting(
        None,
        check=optional(text(choices=("single_zip", "group_zip"))),
        doc="Request kind; implied by queryname or groupid.",
    )
    market_run_id: str | None = setting(None, check=optional(nonempty_text()), doc="Market run id.")
    version: int | None = setting(
        None,
        check=optional(integer(minimum=1, maximum=MOST_VERSION)),
        doc="Report version; default: the catalogue's for the report (1 where its examples use 1), else 1.",
    )
    resultformat: str = setting("xml", check=text(choices=("xml", "csv")), doc="Answer format.")
    window: str | None = setting(
        None,
        check=optional(window()),
        doc='The largest span of one request, or "month" for the groups whose one answer holds a calendar '
        "month; default: the most the catalogue allows for the report.",
    )
    params: dict[str, str] = setting(attr.Factory(dict), check=query_params(), doc="Extra query parameters.")
    start: str | None = setting(None, check=optional(day()), doc="Overrides [manifest] start.")
    end: str | None = setting(None, check=optional(day(allow_today=True)), doc="Overrides [manifest] end.")
    enabled: bool = setting(True, check=boolean(), doc="Whether to mirror it.")
    publication_delay: str | None = setting(
        None,
        check=optional(offset()),
        doc="When a window's data exists: before its trading day starts (negative) or after the window "
        "ends (positive); default: the catalogue's for the report and market, else +0h.",
    )

    @staticmethod
    def check_whole(values: dict[str, Any]) -> Iterable[tuple[str, str]]:
        """
        A C{start} and C{end} given as dates are in order (see
        L{reversed_range}).  No two C{params} differ only in the case of
        their names (see L{_same_params}).  Exactly one of C{queryname}
        (SingleZip) or C{groupid} (GroupZip) is given, and C{kind}, filled
        in from it when absent, agrees with it.
        A report the catalogue knows gets, without a C{window}, the largest
        its parameters allow, and is refused a longer one or a missing
        required parameter; a group whose one answer holds its calendar
        month gets L{MONTH_WINDOW} (another window only warns), and no
        other report the catalogue knows may; a report OASIS serves only
        current data of, asked for once each window is over, gets
        L{CURRENT_WINDOW} and is refused a window of a day or more, which
        would never be asked for (see L{_asked_once_over}); one published
        ahead gets L{AHEAD_WINDOW} and is refused a window of several days,
        whose past days each fetch from today on would drop (see
        L{_published_ahead}); a group answered a whole trading day at a time is refused a window shorter
        than a day (see L{_whole_day_answers}), and a report asked for
        all nodes one shorter than what OASIS answers then (see
        L{_all_nodes_answers}); another report's window defaults to a day.  Without a C{version}, a report
        gets the catalogue's (L{CatalogueEntry.default_version}), another
        L{DEFAULT_VERSION}.  Each check is skipped if a field it reads was
        refused (see L{Topic.check_whole}).

        @param values: The checked value of every field that passed its
            own check; C{kind}, C{window} and C{version} are set.
        @return: C{(key, message)} problems.
        """
        yield from reversed_range(values)
        for name in sorted(values.get("params") or {}):
            if name.lower() in ("startdatetime", "enddatetime"):
                yield "params", f"{name!r} is not a parameter to give: harbour sets it from each window"
            elif name.lower() in UNIVERSAL_PARAMS:
                yield (
                    "params",
                    f"{name!r} is not a parameter to give: it is the report's own key {name.lower()}",
                )
        yield from _same_params(values.get("params") or {})
        if "queryname" not in values or "groupid" not in values:
            return  # which report it is, and so every rule below, is unknown
        query, group = values["queryname"], values["groupid"]
        if (query is None) == (group is None):
            yield "queryname", "give exactly one of queryname (SingleZip) or groupid (GroupZip)"
            return
        implied = "single_zip" if query is not None else "group_zip"
        kind = values.get("kind", implied)  # a kind refused is not compared
        if kind is None:
            values["kind"] = implied
        elif kind != implied:
            key = "queryname" if query is not None else "groupid"
            yield "kind", f"kind {kind!r} does not fit {key} (use {implied!r})"
        if query is not None:
            entry = load_catalogue().entry(queryname=query)
        else:
            entry = load_catalogue().entry(groupid=group)
        if entry is None:
            if "window" in values:
                values["window"] = values["window"] or DEFAULT_WINDOW
            if "version" in values:
                values["version"] = values["version"] or DEFAULT_VERSION
            return
        if "version" in values and values["version"] is None:
            values["version"] = entry.default_version
        if "params" not in values:
            return  # the longest window and the parameters required depend on them
        params = _request_params(values)
        hours: int | None = None
        given = values.get("window")
        if "window" not in values:
            pass  # refused: the parameters are checked all the same
        elif given == MONTH_WINDOW and not entry.monthly:
            monthly = ", ".join(g.name for g in load_catalogue().groups if g.monthly)
            refusal = (
                f'window "{MONTH_WINDOW}" is only for the groups whose one answer holds a calendar '
                f"month ({monthly}), not {entry.name}"
            )
            yield "window", refusal
        elif given is None:
            if entry.monthly:
                # Asked a day at a time, each answer of a monthly group
                # would be the month again, its rows written once per day.
                values["window"] = MONTH_WINDOW
            elif _asked_once_over(entry, values) is not None:
                values["window"] = CURRENT_WINDOW
            elif _published_ahead(entry, values) is not None:
                values["window"] = AHEAD_WINDOW
            else:
                values["window"] = entry.max_window_span(params)
        elif given != MONTH_WINDOW:
            hours = window_hours(given)
            delay = _asked_once_over(entry, values)
            if delay is not None and hours >= 24:
                never = (
                    f"{entry.name}: OASIS serves only its current data, so harbour asks for a window "
                    f"only while its day is today, once the window is over (publication {delay}): a "
                    f"window of {given} is over only once its day is past, so none would ever be "
                    f'fetched; give one of hours shorter than a day, such as "{CURRENT_WINDOW}" (the '
                    "default)"
                )
                yield "window", never
            ahead = _published_ahead(entry, values)
            if ahead is not None and hours > LONGEST_DAY_HOURS:
                lost = (
                    f"{entry.name}: OASIS serves only its current data, published ahead ({ahead}): "
                    f"harbour asks for each day from then on and again every day until it is today, "
                    f"each request replacing its file; a window of {given} asked again from today "
                    "on would lose its past days, which OASIS no longer serves; give "
                    f'"{AHEAD_WINDOW}" (the default) or hours'
                )
                yield "window", lost
            yield from _whole_day_answers(entry, given, hours)
            yield from _all_nodes_answers(entry, params, given, hours)
        for message in check_request(entry, hours, params):
            key = "window" if "window of" in message else "params"
            # The parameters a report requires depend on its market.
            if key == "params" and "market_run_id" not in values:
                continue
            yield key, message

    def warnings(self) -> list[tuple[str, str]]:
        """
        What the catalogue does not know of this report: an unknown report
        or parameter (with the closest known name), a report named by
        another spelling than the one the specification's example URLs
        send, a market or version the specification does not use.  Other
        sources exist, so none of these is an error.

        @return: C{(key, message)} pairs.
        """
        catalogue = load_catalogue()
        if self.queryname is not None:
            entry = catalogue.entry(queryname=self.queryname)
            key, name = "queryname", self.queryname
        else:
            entry = catalogue.entry(groupid=self.groupid)
            key, name = "groupid", self.groupid or ""
        if entry is None:
            close = catalogue.closest(name)
            hint = f' (did you mean "{close}"?)' if close else ""
            return [(key, f"{name!r} is not in the catalogue of OASIS reports{hint}: window {self.window}")]
        values = attr.asdict(self)
        found = []
        if name != entry.name:
            # The catalogue finds a report by the other spellings the spec
            # uses too (a section 7 file name, a typo), but the request
            # carries the name as written.
            spelling = (
                f"{name!r} is the spec's other spelling of {entry.name}; the spec's example URLs "
                f'ask OASIS for {entry.name} ({key} = "{entry.name}"): harbour sends {name!r} as '
                "written, which OASIS may refuse as a report it does not know"
            )
            found.append((key, spelling))
        found.extend(("params", message) for message in catalogue_warnings(entry, _request_params(values)))
        if entry.monthly and self.window != MONTH_WINDOW:
            warning = (
                f"{entry.name}: one answer holds its whole calendar month (section 7): with window "
                f'{self.window!r} each answer brings the month again; window "{MONTH_WINDOW}" (the '
                "default) asks once a month"
            )
            found.append(("window", warning))
        return found


def _asked_once_over(entry: CatalogueEntry, values: Mapping[str, Any]) -> str | None:
    """
    Whether a report is one OASIS serves only current data of (the
    catalogue's C{history = false}, or a parameter value such as
    C{grp_type=CURR} that makes it so: see
    L{CatalogueEntry.history_for}) whose windows are asked for once they
    are over (a publication delay not negative, its own or the
    catalogue's for its market).  Such a window is asked for only while
    its day is today, since a past day's would hold today's data (see
    L{harbour.oasis.requests.serves_history}): a window ending at the
    end of its day, or later, never is.

    @param values: The report's checked values; a C{publication_delay}
        refused counts as not given.
    @return: The publication delay, such as C{"+0h"}, if so; else L{None}.
    """
    delay = _current_only_delay(entry, values)
    return delay if delay is not None and offset_hours(delay) >= 0 else None


def _published_ahead(entry: CatalogueEntry, values: Mapping[str, Any]) -> str | None:
    """
    Whether a report is one OASIS serves only current data of (see
    L{_asked_once_over}) whose days are published ahead (a negative
    publication delay, its own or the catalogue's for its market, such as
    C{TRNS_CURR_USAGE}'s C{-6d}).  Such a report is asked for each day
    from its publication on, and again every day until it is today (see
    L{harbour.oasis.requests.published_ahead}): a window of several days,
    asked from today on, would replace its file and tables with an answer
    lacking its past days.

    @param values: As for L{_asked_once_over}.
    @return: The publication delay, such as C{"-6d"}, if so; else L{None}.
    """
    delay = _current_only_delay(entry, values)
    return delay if delay is not None and offset_hours(delay) < 0 else None


def _current_only_delay(entry: CatalogueEntry, values: Mapping[str, Any]) -> str | None:
    """
    @param values: As for L{_asked_once_over}.
    @return: The publication delay of a report OASIS serves only current
        data of (its own, or the catalogue's for its market); L{None} for
        a report it serves the history of.
    """
    if entry.history_for(values.get("params") or {}):
        return None
    delay = values.get("publication_delay")
    return entry.publication_for(values.get("market_run_id")) if delay is None else delay


def _whole_day_answers(entry: CatalogueEntry, given: str, hours: int) -> Iterable[tuple[str, str]]:
    """
    Refuse a window shorter than a day for a group whose requests carry no
    C{enddatetime} (the catalogue's C{enddatetime = false}, every group
    but the HASP and real-time ones): OASIS answers such a request with
    the whole trading day that C{startdatetime} begins (spec section 2.2),
    so each window of the day would bring the day again, its rows written
    once per window.  A group OASIS serves only current data of answers
    the current interval instead, and a month group, whose answer is its
    month whatever the window, is warned about (L{ReportTopic.warnings}).

    @param given: The window as configured, such as C{"6h"}.
    @param hours: Its length in hours.
    @return: C{(key, message)} problems.
    """
    if entry.kind != GROUP or entry.enddatetime or entry.monthly or not entry.history or hours >= 24:
        return
    asked = -(-LONGEST_DAY_HOURS // hours)
    refusal = (
        f"{entry.name}: OASIS answers a GroupZip request with the whole trading day that startdatetime "
        f'begins, whatever window is asked (spec section 2.2: "The data content will be for entire day '
        f'[...] you can only request for single day"; enddatetime is "Only applicable for HASP,RTM '
        f'groups"): a window of {given} would ask for each day up to {asked} times, each answer the '
        f'whole day; give "1d" (the default)'
    )
    yield "window", refusal


def _all_nodes_answers(
    entry: CatalogueEntry, params: Mapping[str, str], given: str, hours: int
) -> Iterable[tuple[str, str]]:
    """
    Refuse a window shorter than the span OASIS answers for all nodes
    (C{grp_type=ALL} or C{ALL_APNODES}, C{node=ALL}; the catalogue's
    C{max_span_all_nodes}): it then ignores C{enddatetime} and answers
    that span from each C{startdatetime} (spec section 6), so windows of
    a day shorter than it would each bring the whole span, every hour in
    several answers and its rows as often in the view.  A longer window
    is refused by L{check_request}.

    @param params: The request's query parameters.
    @param given: The window as configured, such as C{"6h"}.
    @param hours: Its length in hours.
    @return: C{(key, message)} problems.
    """
    if entry.max_span_all_nodes is None or not entry.asks_all_nodes(params):
        return
    span = entry.max_span_all_nodes
    if hours >= span_hours(span):
        return
    answers = -(-span_hours(span) // hours)
    refusal = (
        f"{entry.name}: asked for all nodes, OASIS answers {span} from each startdatetime whatever "
        'window is asked (spec section 6: enddatetime "is ignored if the query is to pull ALL or '
        "ALL_APNODES nodes; ie query will return only 1-days' worth of data for all nodes at a time "
        f'based on the startdatetime supplied"): windows of {given} would each bring {span}, every '
        f'hour in up to {answers} answers and its rows as often in the view; give "{span}" (the default)'
    )
    yield "window", refusal


def _unknown_key(key: str, fields: Iterable[str]) -> str:
    """
    @return: Why C{key} of a table is refused: unknown, with the closest
        known name; or, if it is a topic's name, as C{reports = []} written
        after a table's header is, that TOML put it inside the table.
    """
    if key in TOPICS:
        return f"unknown key {key!r} (a top-level key must come before the first [table])"
    return f"unknown key {key!r}{suggest(key, fields)}"


def _same_params(params: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """
    Refuse two parameters whose names differ only in case: OASIS takes
    names in any case, so the URL would carry the parameter twice with
    two values, and the catalogue's rules would check only one of them
    (a C{grp_type=ALL} beside a C{GRP_TYPE} passed the window's limit).

    @return: C{(key, message)} problems, one per name given more than once.
    """
    spellings: dict[str, list[str]] = {}
    for name in params:
        spellings.setdefault(name.lower(), []).append(name)
    for names in spellings.values():
        if len(names) > 1:
            given = " and ".join(repr(name) for name in sorted(names))
            yield (
                "params",
                f"{given} are one parameter (OASIS ignores the case of names): give it once",
            )


def _request_params(values: Mapping[str, Any]) -> dict[str, str]:
    """
    @return: The query parameters a report's requests carry that the
        catalogue rules look at.
    """
    params = dict(values.get("params") or {})
    if values.get("market_run_id"):
        params["market_run_id"] = values["market_run_id"]
    params["version"] = str(values.get("version") or DEFAULT_VERSION)
    if values.get("resultformat") == "csv":
        params["resultformat"] = CSV_RESULTFORMAT
    return params


@attr.s(frozen=True, auto_attribs=True)
class WorkTopic(Topic):
    """
    C{[work]}: how tasks are created and retried.
    """

    refresh_interval: float = setting(
        3600.0, check=number(minimum=1, maximum=LONGEST_SECONDS), doc="Seconds between refreshes."
    )
    lease_seconds: float = setting(
        300.0, check=number(minimum=5, maximum=LONGEST_LEASE), doc="Claim lease length, in seconds."
    )
    max_attempts: int = setting(
        8, check=integer(minimum=1, maximum=1000), doc="Attempts before a task fails."
    )
    retry_base: float = setting(
        10.0, check=number(minimum=0, maximum=LONGEST_SECONDS), doc="First retry delay; it doubles."
    )
    retry_cap: float = setting(
        3600.0, check=number(minimum=0, maximum=LONGEST_SECONDS), doc="Longest retry delay."
    )
    retired_retention: float = setting(
        30 * 86400.0,
        check=number(minimum=0, maximum=LONGEST_SECONDS),
        doc="Seconds a task the configuration no longer asks for is kept (it comes back if asked again).",
    )


@attr.s(frozen=True, auto_attribs=True)
class DownloadTopic(Topic):
    """
    C{[download]}: how files are fetched.
    """

    directory: str = setting(
        "reports",
        check=data_subdirectory(),
        doc="Download directory, inside the data dir, relative to it; it cannot change while harbour runs.",
    )
    concurrency: int = setting(2, check=integer(minimum=1, maximum=64), doc="Workers in this process.")
    min_request_interval: float = setting(
        5.0,
        check=number(minimum=0, maximum=LONGEST_SECONDS),
        doc="Seconds between request starts to one host.",
    )
    max_bytes_per_second: int = setting(0, check=integer(minimum=0, maximum=TIB), doc="0 means no cap.")
    connect_timeout: float = setting(30.0, check=number(minimum=0.1, maximum=LONGEST_SECONDS), doc="Seconds.")
    idle_timeout: float = setting(
        60.0, check=number(minimum=0.1, maximum=LONGEST_SECONDS), doc="Seconds without a byte."
    )
    max_bytes: int = setting(2 * GIB, check=integer(minimum=1, maximum=TIB), doc="Largest accepted answer.")
    keep_revisions: bool = setting(
        True, check=boolean(), doc="Keep a file replaced by a revision, as <name>.rev<N>.zip."
    )
    audit_interval: float = setting(
        86400.0,
        check=number(minimum=0, maximum=LONGEST_SECONDS),
        doc="Seconds between checks that the files this process downloaded are still there; 0 for never.",
    )


#: Each topic: its class, and whether the file holds a list of tables.
TOPICS: dict[str, tuple[type[Topic], bool]] = {
    "manifest": (ManifestTopic, False),
    "reports": (ReportTopic, True),
    "work": (WorkTopic, False),
    "download": (DownloadTopic, False),
}


def to_payload(value: Any) -> Any:
    """
    @param value: A topic, or a list of them (C{[[reports]]}).
    @return: C{value} as plain JSON data, from which
        L{Topic.from_payload} builds an equal value.
    """
    if isinstance(value, (list, tuple)):
        return [to_payload(item) for item in value]
    return attr.asdict(value)
