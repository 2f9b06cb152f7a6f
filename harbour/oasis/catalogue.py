"""
The catalogue of OASIS reports and groups, as CAISO's interface
specification (version 5.1.8) describes them.

The data lives in C{catalogue.toml} beside this module; its header comment
explains every key.  L{load_catalogue} reads and validates it once, so a
malformed entry fails loudly, naming the entry.  A L{CatalogueEntry} knows
how long a window one request may cover (L{CatalogueEntry.max_window_hours}),
when its data appears (L{CatalogueEntry.publication_delay_hours}) and which
parameters it takes; L{check_request} lists what the specification forbids
in a request and L{warnings} what it does not document.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import attr

#: The parameters every request may carry, never listed per report.
UNIVERSAL_PARAMS = frozenset(
    {"queryname", "groupid", "startdatetime", "enddatetime", "market_run_id", "version", "resultformat"}
)

#: The C{resultformat} value that asks for CSV (spec section 3.1.3).
CSV_RESULTFORMAT = "6"

#: The most hours one trading day can have (the autumn change day).
LONGEST_DAY_HOURS = 25

#: The kind of a SingleZip report entry (a C{[[report]]} table).
REPORT = "report"
#: The kind of a GroupZip group entry (a C{[[group]]} table).
GROUP = "group"

_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
_MARKET = re.compile(r"[A-Z0-9]+\Z")
_SPAN = re.compile(r"([1-9][0-9]*)(h|d)\Z")
_OFFSET = re.compile(r"([+-])([0-9]+)(m|h|d)\Z")
_SECTION = re.compile(r"[0-9]+(\.[0-9]+)*(, [0-9]+(\.[0-9]+)*)*\Z")
_COVERS = ("month", "quarter")
_OFFSET_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0}

_COMMON_KEYS = {
    "name",
    "aliases",
    "description",
    "section",
    "page",
    "market_run_ids",
    "market_run_id_optional",
    "versions",
    "csv",
    "params",
    "one_of",
    "max_span",
    "max_span_all_nodes",
    "span_section",
    "all_nodes_section",
    "history",
    "publication",
    "publication_by_market",
    "publication_note",
}
_KEYS = {
    REPORT: frozenset(_COMMON_KEYS | {"singlezip", "groups"}),
    GROUP: frozenset(_COMMON_KEYS | {"reports", "enddatetime", "covers"}),
}
_NEEDED = (
    "name",
    "description",
    "section",
    "market_run_ids",
    "versions",
    "csv",
    "max_span",
    "publication",
    "publication_note",
)
_PARAM_KEYS = frozenset(
    {
        "name",
        "required",
        "required_for",
        "recommended",
        "values",
        "all_nodes",
        "current",
        "since_version",
        "max_items",
        "example",
        "note",
    }
)


class CatalogueError(ValueError):
    """
    The catalogue data is malformed; the message names the entry and key.
    """


def span_hours(span: str) -> int:
    """
    The nominal length of a span such as C{"31d"} or C{"1h"}.

    @param span: A count followed by C{h} (hours) or C{d} (trading days).
    @return: The span in hours, a day counting 24.
    @raise ValueError: If C{span} is not of that form.
    """
    match = _SPAN.match(span)
    if match is None:
        raise ValueError(f"{span!r} is not a span such as '31d' or '1h'")
    count = int(match.group(1))
    return count * 24 if match.group(2) == "d" else count


def allowed_hours(span: str) -> int:
    """
    @return: The longest window, in hours, that C{span} allows: a span of
        trading days may hold the autumn 25-hour day.
    """
    return span_hours(span) + (LONGEST_DAY_HOURS - 24 if span.endswith("d") else 0)


def offset_hours(offset: str) -> float:
    """
    The signed length of a publication offset such as C{"-10h"} or C{"+90d"}.

    @param offset: A sign, a count and C{m}, C{h} or C{d}.
    @return: The offset in hours, negative before the trading day starts.
    @raise ValueError: If C{offset} is not of that form.
    """
    match = _OFFSET.match(offset)
    if match is None:
        raise ValueError(f"{offset!r} is not an offset such as '-10h', '+1h' or '+90d'")
    hours = int(match.group(2)) * _OFFSET_HOURS[match.group(3)]
    return -hours if match.group(1) == "-" else hours


def _items(value: str) -> list[str]:
    """
    @param value: A parameter value, possibly a comma-separated list.
    @return: Its non-empty items, stripped.
    """
    return [item.strip() for item in value.split(",") if item.strip()]


def _names_any(value: str, listed: Iterable[str]) -> bool:
    """
    @param value: A parameter value, possibly a comma-separated list.
    @return: Whether one of its items is one of C{listed}, in any case.
    """
    wanted = {item.upper() for item in listed}
    return any(item.upper() in wanted for item in _items(value))


def _lowered(params: Mapping[str, str]) -> dict[str, str]:
    """
    @param params: Query parameters as given.
    @return: The same with lower-case names (OASIS ignores their case).
    """
    return {name.lower(): value for name, value in params.items()}


def _cite(section: str) -> str:
    """
    @param section: One spec section or several, such as C{"5, 6"}.
    @return: C{"spec section 6"} or C{"spec sections 5, 6"}.
    """
    return f"spec section{'s' if ',' in section else ''} {section}"


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """
    @param word: A misspelt name or value.
    @param candidates: The known ones.
    @return: The candidate most like C{word} regardless of case, or L{None}.
    """
    known = {candidate.upper(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.upper(), list(known), n=1, cutoff=0.6)
    return known[found[0]] if found else None


def _suggest(word: str, candidates: Iterable[str]) -> str:
    """
    @param word: A name or value that is not known.
    @param candidates: The known ones.
    @return: C{"; did you mean 'X'?"} for the closest candidate, or C{""}.
    """
    near = _closest(word, candidates)
    return f"; did you mean {near!r}?" if near is not None else ""


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Parameter:
    """
    One query parameter of a report (never a universal one such as
    C{startdatetime}).

    @ivar name: Its name as the spec's example URLs spell it; OASIS
        compares names without regard to case.
    @ivar required: Whether a request must send it (for the markets in
        C{required_for}, or for every market if that is empty).
    @ivar required_for: The C{market_run_id} values for which it is
        required; empty for all.
    @ivar recommended: Every example in the spec sends it, though the spec
        never says OASIS needs it; leaving it out warns.
    @ivar values: The values the spec lists as valid (others warn); empty
        when it lists none.
    @ivar all_nodes: Values asking for all nodes, for which the entry's
        C{max_span_all_nodes} applies.
    @ivar current: Values with which OASIS serves only current data of
        the report, whatever window is asked (C{grp_type=CURR} of
        C{PRC_FLEX_RAMP}): a request sending one has no history (see
        L{CatalogueEntry.history_for}).
    @ivar since_version: The first C{version} the spec sends it with, or
        L{None}: sent with an earlier one, it warns.
    @ivar max_items: The most comma-separated values one request may carry,
        or L{None}.
    @ivar example: A value from one of the spec's example URLs.
    @ivar note: Anything else the spec says about it.
    """

    name: str
    required: bool = False
    required_for: tuple[str, ...] = ()
    recommended: bool = False
    values: tuple[str, ...] = ()
    all_nodes: tuple[str, ...] = ()
    current: tuple[str, ...] = ()
    since_version: int | None = None
    max_items: int | None = None
    example: str | None = None
    note: str | None = None

    def required_with(self, market_run_id: str | None) -> bool:
        """
        @param market_run_id: The request's C{market_run_id}, or L{None}.
        @return: Whether a request for that market must send this parameter.
        """
        if not self.required:
            return False
        if not self.required_for:
            return True
        return market_run_id is not None and market_run_id.upper() in self.required_for

    def asks_all_nodes(self, value: str) -> bool:
        """
        @param value: A value of this parameter, possibly a list.
        @return: Whether it asks for all nodes (one of C{all_nodes}).
        """
        return _names_any(value, self.all_nodes)

    def asks_current(self, value: str) -> bool:
        """
        @param value: A value of this parameter, possibly a list.
        @return: Whether it asks for current data only (one of C{current}).
        """
        return _names_any(value, self.current)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class CatalogueEntry:
    """
    One SingleZip report or GroupZip group.  The keys of C{catalogue.toml}
    (whose header explains them) become these attributes.

    @ivar kind: L{REPORT} or L{GROUP}.
    @ivar name: The C{queryname} or C{groupid}.
    @ivar section: The spec sections it comes from, such as C{"5, 6"}.
    @ivar market_run_ids: The C{market_run_id} values the spec uses for it;
        empty when it takes none.
    @ivar versions: The C{version} numbers the spec's examples use.
    @ivar max_span: The longest window of one request, such as C{"31d"}.
    @ivar max_span_all_nodes: The limit when all nodes are asked for, or
        L{None} when it is C{max_span}.
    @ivar history: L{False} when only the current interval or day is
        served, whatever the parameters; see L{history_for} for those
        that make it so.
    @ivar singlezip: L{False} for a report the spec requests only through
        groups.
    @ivar groups: For a report, the groups that hold it.
    @ivar reports: For a group, the reports it holds.
    @ivar enddatetime: For a group, whether its requests carry enddatetime.
    @ivar covers: For a group, C{"month"} or C{"quarter"} when one answer
        holds that much, else L{None}.
    @ivar publication: The signed publication offset, such as C{"-10h"}.
    @ivar publication_by_market: Offsets that differ by C{market_run_id},
        as (market, offset) pairs.
    """

    kind: str
    name: str
    description: str
    section: str
    market_run_ids: tuple[str, ...]
    versions: tuple[int, ...]
    csv: bool
    max_span: str
    publication: str
    publication_note: str
    aliases: tuple[str, ...] = ()
    page: int | None = None
    market_run_id_optional: bool = False
    params: tuple[Parameter, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    max_span_all_nodes: str | None = None
    span_section: str = "3.2"
    all_nodes_section: str | None = None
    history: bool = True
    singlezip: bool = True
    groups: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    enddatetime: bool = False
    covers: str | None = None
    publication_by_market: tuple[tuple[str, str], ...] = ()

    @property
    def monthly(self) -> bool:
        """
        @return: Whether one answer of this group holds its calendar month
            (C{covers = "month"}): it is asked for once a month.
        """
        return self.covers == "month"

    @property
    def default_version(self) -> int:
        """
        The C{version} asked for when the configuration gives none: 1 if
        the spec's examples use it (as they do for most entries; kept, so
        that their requests are unchanged), else the highest they use
        (8 for C{ENE_RES_UPL_GRP}, 5 for C{PRC_SPTIE_LMP}): OASIS refuses a
        version a report does not have (error 1020).
        """
        return 1 if 1 in self.versions or not self.versions else max(self.versions)

    @property
    def queryname(self) -> str | None:
        """
        The C{queryname} of a report, or L{None} for a group.
        """
        return self.name if self.kind == REPORT else None

    @property
    def groupid(self) -> str | None:
        """
        The C{groupid} of a group, or L{None} for a report.
        """
        return self.name if self.kind == GROUP else None

    @property
    def required_params(self) -> tuple[Parameter, ...]:
        """
        The parameters every request must send, whatever its market; see
        L{Parameter.required_with} for those required for some markets,
        and C{one_of} for alternatives.
        """
        return tuple(p for p in self.params if p.required and not p.required_for)

    @property
    def publication_delay_hours(self) -> float:
        """
        When a window's data can be expected, in signed hours: negative is
        that long before its trading day starts, positive that long after
        the window ends.  For markets listed in C{publication_by_market}
        use L{publication_delay_hours_for}.
        """
        return offset_hours(self.publication)

    def publication_for(self, market_run_id: str | None) -> str:
        """
        @param market_run_id: The request's C{market_run_id}, or L{None}.
        @return: The publication offset for that market, such as C{"+0h"}.
        """
        if market_run_id is not None:
            for market, offset in self.publication_by_market:
                if market == market_run_id.upper():
                    return offset
        return self.publication

    def publication_delay_hours_for(self, market_run_id: str | None) -> float:
        """
        @param market_run_id: The request's C{market_run_id}, or L{None}.
        @return: L{publication_delay_hours} for that market.
        """
        return offset_hours(self.publication_for(market_run_id))

    def parameter(self, name: str) -> Parameter | None:
        """
        @param name: A parameter name, in any case.
        @return: This entry's parameter of that name, or L{None}.
        """
        for param in self.params:
            if param.name.lower() == name.lower():
                return param
        return None

    def asks_all_nodes(self, params: Mapping[str, str]) -> bool:
        """
        @param params: A request's query parameters.
        @return: Whether they ask for all nodes (C{grp_type=ALL} or
            C{ALL_APNODES}, C{node=ALL}, as the entry's parameters say).
        """
        given = _lowered(params)
        return any(
            p.all_nodes and p.name.lower() in given and p.asks_all_nodes(given[p.name.lower()])
            for p in self.params
        )

    @property
    def history_varies(self) -> bool:
        """
        Whether a parameter value can make this entry serve only current
        data (a parameter's C{current}): whether L{history_for} depends on
        the request's parameters.
        """
        return self.history and any(p.current for p in self.params)

    def history_for(self, params: Mapping[str, str]) -> bool:
        """
        @param params: A request's query parameters (names in any case).
        @return: Whether OASIS answers a past window of such a request with
            that window's data: not for an entry without C{history}, nor
            when a parameter has one of its C{current} values (such as
            C{grp_type=CURR}), with which OASIS answers the latest
            interval whatever window is asked.
        """
        return self.history and self.current_by(params) is None

    def current_by(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """
        @param params: A request's query parameters (names in any case).
        @return: The parameter, as the catalogue spells it, and the value
            given that make the request one of current data only, such as
            C{("grp_type", "CURR")}; or L{None}.
        """
        given = _lowered(params)
        for param in self.params:
            value = given.get(param.name.lower())
            if param.current and value is not None and param.asks_current(value):
                return param.name, value
        return None

    def max_window_span(self, params: Mapping[str, str]) -> str:
        """
        @param params: A request's query parameters.
        @return: The span one such request may cover, such as C{"1d"}.
        """
        if self.max_span_all_nodes is not None and self.asks_all_nodes(params):
            return self.max_span_all_nodes
        return self.max_span

    def max_window_hours(self, params: Mapping[str, str]) -> int:
        """
        The nominal longest window of one request with these parameters,
        taking C{grp_type=ALL}/C{ALL_APNODES} and C{node=ALL} into account.

        A day counts 24 hours, as configured windows do; a window of
        trading days can be one hour longer across the autumn change
        (L{check_request} allows for that).

        @param params: A request's query parameters.
        @return: The limit in hours.
        """
        return span_hours(self.max_window_span(params))

    def limit_section(self, params: Mapping[str, str]) -> str:
        """
        @param params: A request's query parameters.
        @return: The spec section the limit of L{max_window_span} comes from.
        """
        if self.max_span_all_nodes is not None and self.asks_all_nodes(params):
            return self.all_nodes_section or self.section
        return self.span_section


def check_request(entry: CatalogueEntry, window_hours: float | None, params: Mapping[str, str]) -> list[str]:
    """
    What the specification forbids in a request: a window longer than one
    request may cover, a missing required parameter or C{market_run_id},
    none of a C{one_of} set, too many values in a list.

    @param entry: The report or group asked for.
    @param window_hours: C{enddatetime - startdatetime} in hours, or
        L{None} when the request sends no C{enddatetime} (nothing to check).
    @param params: The request's query parameters (universal ones may be
        included; names in any case).
    @return: One sentence per problem; empty when the request is allowed.
    """
    problems = []
    given = _lowered(params)
    market = given.get("market_run_id")
    if window_hours is not None:
        span = entry.max_window_span(params)
        limit = span_hours(span)
        if window_hours > allowed_hours(span):
            scope = " for all nodes" if span != entry.max_span else ""
            days = f"{limit} h, trading days of 23 to 25 h; " if span.endswith("d") else ""
            problems.append(
                f"{entry.name}: a window of {window_hours:g} h is longer than one request may cover{scope}: "
                f"{span} ({days}{_cite(entry.limit_section(params))})"
            )
        if window_hours < 0:
            problems.append(f"{entry.name}: enddatetime is before startdatetime")
    # A group's market_run_ids only say which market it holds: GroupZip
    # requests carry none (section 2.2).
    if entry.kind == REPORT and entry.market_run_ids and not entry.market_run_id_optional and not market:
        markets = ", ".join(entry.market_run_ids)
        problems.append(f"{entry.name}: market_run_id is required (one of {markets}; {_cite('2.1')})")
    for param in entry.params:
        if param.required_with(market) and param.name.lower() not in given:
            scope = f" with market_run_id={market}" if param.required_for else ""
            problems.append(
                f"{entry.name}: parameter {param.name} is required{scope} ({_cite(entry.section)})"
            )
        value = given.get(param.name.lower())
        count = 0 if value is None else len(_items(value))
        if param.max_items is not None and count > param.max_items:
            problems.append(
                f"{entry.name}: {param.name} lists {count} values, at most {param.max_items} "
                f"per request (error 1017, {_cite('3.2')})"
            )
    for names in entry.one_of:
        if not any(name.lower() in given for name in names):
            problems.append(f"{entry.name}: send one of {', '.join(names)} ({_cite(entry.section)})")
    return problems


def warnings(entry: CatalogueEntry, params: Mapping[str, str]) -> list[str]:
    """
    What the specification does not document in a request: an unknown
    parameter (with the closest known name), a C{market_run_id},
    C{version} or listed value the spec does not use, a recommended
    parameter left out, CSV where none is offered, a report the spec only
    requests through groups, a report without history.

    @param entry: The report or group asked for.
    @param params: The request's query parameters (names in any case).
    @return: One sentence per warning; OASIS may still answer.
    """
    found = []
    known = [p.name for p in entry.params] + sorted(UNIVERSAL_PARAMS)
    for name, value in params.items():
        lower = name.lower()
        if lower in UNIVERSAL_PARAMS:
            continue
        param = entry.parameter(name)
        if param is None:
            found.append(f"{entry.name}: unknown parameter {name!r}{_suggest(name, known)}")
            continue
        if param.values:
            listed = {v.upper() for v in param.values}
            for item in _items(value):
                if item.upper() not in listed:
                    found.append(
                        f"{entry.name}: {param.name}={item} is not among the values the spec lists "
                        f"({', '.join(param.values)}){_suggest(item, param.values)}"
                    )
    given = _lowered(params)
    market = given.get("market_run_id")
    if market is not None:
        if entry.kind == GROUP:
            found.append(f"{entry.name}: a GroupZip request takes no market_run_id ({_cite('2.2')})")
        elif not entry.market_run_ids:
            found.append(f"{entry.name}: the spec sends no market_run_id for it")
        elif market.upper() not in entry.market_run_ids:
            found.append(
                f"{entry.name}: market_run_id={market} is not one the spec uses for it "
                f"({', '.join(entry.market_run_ids)}){_suggest(market, entry.market_run_ids)}"
            )
    version = given.get("version")
    if version is not None and (not version.isdigit() or int(version) not in entry.versions):
        found.append(
            f"{entry.name}: version={version} is not one the spec names "
            f"({', '.join(map(str, entry.versions))})"
        )
    for param in entry.params:
        since = param.since_version
        if since is None or param.name.lower() not in given or version is None or not version.isdigit():
            continue
        if int(version) < since:
            found.append(
                f"{entry.name}: the spec sends {param.name} only from version {since} on "
                f"({_cite(entry.section)}); with version={version} OASIS may ignore or refuse it"
            )
    if given.get("resultformat") == CSV_RESULTFORMAT and not entry.csv:
        found.append(f"{entry.name}: the spec offers no CSV (resultformat=6) for it")
    for param in entry.params:
        if param.recommended and param.name.lower() not in given:
            example = f" (e.g. {param.name}={param.example})" if param.example else ""
            found.append(
                f"{entry.name}: every example in the spec sends {param.name}{example}; "
                "OASIS may refuse the request without it"
            )
    if not entry.singlezip:
        found.append(
            f"{entry.name}: the spec requests it only through GroupZip ({', '.join(entry.groups)}), "
            "never as a SingleZip report"
        )
    if not entry.history_for(params):
        found.append(_current_only(entry, params))
    return found


def _current_only(entry: CatalogueEntry, params: Mapping[str, str]) -> str:
    """
    @return: What harbour does with a report OASIS serves only current
        data of, whatever window it is asked for.
    """
    given = {name.lower(): value for name, value in params.items()}
    publication = entry.publication_for(given.get("market_run_id"))
    delay = offset_hours(publication)
    current = entry.current_by(params)
    which = f"{entry.name} with {current[0]}={current[1]}" if current else entry.name
    said = (
        f"{which}: OASIS serves only current data for it, whatever window is asked: "
        "harbour asks for no day before today"
    )
    if delay < 0:
        return (
            f"{said}, and for today and later days once their data can exist ({publication}), a day "
            "at a time, each fetched again every day until it is today: a past day keeps the answer "
            "fetched on it"
        )
    # A window is asked for once it is over: a day of it only when it is
    # no longer today.
    return (
        f"{said}, and for a window once it is over ({publication}), so that only windows "
        "of today shorter than a day are fetched (an hour by default), each holding what is current "
        "when it is asked; one that is over only as its day ends, such as the day's last hour, "
        "never is"
    )


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Catalogue:
    """
    Every report and group of the catalogue, looked up by name or alias.

    Build one with L{Catalogue.of} (or L{parse_catalogue}), which checks
    that names are unique and that reports and groups refer to each other.

    @ivar reports: The SingleZip reports, in file order.
    @ivar groups: The GroupZip groups, in file order.
    """

    reports: tuple[CatalogueEntry, ...]
    groups: tuple[CatalogueEntry, ...]
    _index: Mapping[tuple[str, str], CatalogueEntry] = attr.ib(repr=False, eq=False)

    @classmethod
    def of(cls, reports: Iterable[CatalogueEntry], groups: Iterable[CatalogueEntry]) -> Catalogue:
        """
        @param reports: Entries of kind L{REPORT}.
        @param groups: Entries of kind L{GROUP}.
        @return: The catalogue of them.
        @raise CatalogueError: If a name or alias is used twice, or a report
            and a group disagree about holding each other.
        """
        report_list, group_list = tuple(reports), tuple(groups)
        index: dict[tuple[str, str], CatalogueEntry] = {}
        for entry in report_list + group_list:
            for name in (entry.name,) + entry.aliases:
                if (entry.kind, name) in index:
                    raise CatalogueError(
                        f"catalogue {entry.kind} {entry.name}: the name {name!r} is used twice"
                    )
                index[(entry.kind, name)] = entry
        for report in report_list:
            for groupid in report.groups:
                group = index.get((GROUP, groupid))
                if group is None:
                    raise CatalogueError(
                        f"catalogue report {report.name}: groups: no group {groupid!r}"
                        f"{_suggest(groupid, [g.name for g in group_list])}"
                    )
                if report.name not in group.reports:
                    raise CatalogueError(
                        f"catalogue report {report.name}: groups: group {groupid} does not "
                        "list it among its reports"
                    )
        for group in group_list:
            for queryname in group.reports:
                held = index.get((REPORT, queryname))
                if held is None:
                    raise CatalogueError(
                        f"catalogue group {group.name}: reports: no report {queryname!r}"
                        f"{_suggest(queryname, [r.name for r in report_list])}"
                    )
                if group.name not in held.groups:
                    raise CatalogueError(
                        f"catalogue group {group.name}: reports: report {queryname} "
                        "does not list it among its groups"
                    )
        return cls(report_list, group_list, MappingProxyType(index))

    def entry(self, queryname: str | None = None, groupid: str | None = None) -> CatalogueEntry | None:
        """
        Look up a report by C{queryname} or a group by C{groupid} (exactly
        one of them), by name or alias, spelt exactly.

        @param queryname: A SingleZip report name.
        @param groupid: A GroupZip group name.
        @return: The entry, or L{None} if the catalogue has none.
        @raise TypeError: Unless exactly one of the two is given.
        """
        if (queryname is None) == (groupid is None):
            raise TypeError("give exactly one of queryname or groupid")
        if queryname is not None:
            return self._index.get((REPORT, queryname))
        assert groupid is not None
        return self._index.get((GROUP, groupid))

    def closest(self, name: str) -> str | None:
        """
        @param name: A report or group name that may be misspelt or in the
            wrong case.
        @return: The canonical name of the most similar report or group, or
            L{None} if none is close.
        """
        near = _closest(name, [known for (_, known) in self._index])
        if near is None:
            return None
        for (_kind, known), entry in self._index.items():
            if known == near:
                return entry.name
        return None  # pragma: no cover

    def names(self, kind: str | None = None) -> tuple[str, ...]:
        """
        @param kind: L{REPORT}, L{GROUP} or L{None} for both.
        @return: The canonical names, reports first, in file order.
        """
        entries = (self.reports if kind != GROUP else ()) + (self.groups if kind != REPORT else ())
        return tuple(e.name for e in entries)


def _fail(where: str, message: str) -> CatalogueError:
    """
    @param where: The entry, such as C{"report PRC_LMP"}.
    @param message: What is wrong.
    @return: The error to raise.
    """
    return CatalogueError(f"catalogue {where}: {message}")


def _string(where: str, key: str, value: Any, pattern: re.Pattern[str] | None = None) -> str:
    """
    @return: C{value}, a non-empty string (matching C{pattern} if given).
    @raise CatalogueError: Otherwise, naming C{where} and C{key}.
    """
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key} must be a non-empty string, not {value!r}")
    if pattern is not None and not pattern.match(value):
        raise _fail(where, f"{key}: {value!r} is not of the expected form")
    return value


def _strings(where: str, key: str, value: Any, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    """
    @return: C{value}, a list of distinct non-empty strings, as a tuple.
    @raise CatalogueError: Otherwise, naming C{where} and C{key}.
    """
    if not isinstance(value, list):
        raise _fail(where, f"{key} must be a list of strings, not {value!r}")
    result = tuple(_string(where, key, item, pattern) for item in value)
    if len(set(result)) != len(result):
        raise _fail(where, f"{key} repeats a value: {list(result)!r}")
    return result


def _boolean(where: str, key: str, value: Any) -> bool:
    """
    @return: C{value}, C{true} or C{false}.
    @raise CatalogueError: Otherwise.
    """
    if not isinstance(value, bool):
        raise _fail(where, f"{key} must be true or false, not {value!r}")
    return value


def _positive(where: str, key: str, value: Any) -> int:
    """
    @return: C{value}, a whole number above zero.
    @raise CatalogueError: Otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"{key} must be a whole number above zero, not {value!r}")
    return value


def _span(where: str, key: str, value: Any) -> str:
    """
    @return: C{value}, a span such as C{"31d"} or C{"1h"}.
    @raise CatalogueError: Otherwise.
    """
    return _string(where, key, value, _SPAN)


def _offset(where: str, key: str, value: Any) -> str:
    """
    @return: C{value}, an offset such as C{"-10h"} or C{"+90d"}.
    @raise CatalogueError: Otherwise.
    """
    return _string(where, key, value, _OFFSET)


def _unknown_keys(where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """
    @raise CatalogueError: If C{table} has a key not in C{allowed}, with the
        closest allowed one.
    """
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key {key!r}{_suggest(key, allowed)}")


def _parameter(where: str, table: Any, markets: tuple[str, ...]) -> Parameter:
    """
    @param where: The entry holding it.
    @param table: One table of its C{params} list.
    @param markets: The entry's C{market_run_ids}.
    @return: The parameter.
    @raise CatalogueError: If the table is malformed.
    """
    if not isinstance(table, dict):
        raise _fail(where, f"params must hold tables, not {table!r}")
    name = _string(where, "params: name", table.get("name"), _NAME)
    here = f"params: {name}"
    for key in table:
        if key not in _PARAM_KEYS:
            raise _fail(where, f"{here}: unknown key {key!r}{_suggest(key, _PARAM_KEYS)}")
    if name.lower() in UNIVERSAL_PARAMS:
        raise _fail(where, f"{here}: a universal parameter is never listed")
    if "required" not in table:
        raise _fail(where, f"{here}: required is missing")
    required = _boolean(where, f"{here}: required", table["required"])
    required_for = _strings(where, f"{here}: required_for", table.get("required_for", []), _MARKET)
    if required_for and not required:
        raise _fail(where, f"{here}: required_for without required = true")
    for market in required_for:
        if market not in markets:
            raise _fail(where, f"{here}: required_for names {market}, not among market_run_ids")
    recommended = _boolean(where, f"{here}: recommended", table.get("recommended", False))
    if required and recommended:
        raise _fail(where, f"{here}: required and recommended at once")
    max_items = table.get("max_items")
    since = table.get("since_version")
    example = table.get("example")
    note = table.get("note")
    return Parameter(
        name=name,
        required=required,
        required_for=required_for,
        recommended=recommended,
        values=_strings(where, f"{here}: values", table.get("values", [])),
        all_nodes=_strings(where, f"{here}: all_nodes", table.get("all_nodes", [])),
        current=_strings(where, f"{here}: current", table.get("current", [])),
        since_version=None if since is None else _positive(where, f"{here}: since_version", since),
        max_items=None if max_items is None else _positive(where, f"{here}: max_items", max_items),
        example=None if example is None else _string(where, f"{here}: example", example),
        note=None if note is None else _string(where, f"{here}: note", note),
    )


def _entry(kind: str, table: Any, position: int) -> CatalogueEntry:
    """
    Validate one C{[[report]]} or C{[[group]]} table.

    @param kind: L{REPORT} or L{GROUP}.
    @param table: The table as TOML gave it.
    @param position: Its place among the tables of its kind, from 1.
    @return: The entry.
    @raise CatalogueError: If anything is malformed, naming the entry.
    """
    where = f"{kind} #{position}"
    if not isinstance(table, dict):
        raise _fail(where, "must be a table")
    name = _string(where, "name", table.get("name"), _NAME)
    where = f"{kind} {name}"
    _unknown_keys(where, table, _KEYS[kind])
    for key in _NEEDED:
        if key not in table:
            raise _fail(where, f"{key} is missing")
    if kind == GROUP and "reports" not in table:
        raise _fail(where, "reports is missing")

    markets = _strings(where, "market_run_ids", table["market_run_ids"], _MARKET)
    versions = table["versions"]
    if not isinstance(versions, list) or not versions:
        raise _fail(where, f"versions must be a non-empty list of whole numbers, not {versions!r}")
    versions = tuple(_positive(where, "versions", v) for v in versions)

    params = table.get("params", [])
    if not isinstance(params, list):
        raise _fail(where, f"params must be a list of tables, not {params!r}")
    parameters = tuple(_parameter(where, p, markets) for p in params)
    names = [p.name.lower() for p in parameters]
    if len(set(names)) != len(names):
        raise _fail(where, "params: a parameter is listed twice")
    for param in parameters:
        if param.since_version is not None and param.since_version not in versions:
            raise _fail(
                where, f"params: {param.name}: since_version {param.since_version} is not among versions"
            )

    one_of = table.get("one_of", [])
    if not isinstance(one_of, list):
        raise _fail(where, f"one_of must be a list of lists of parameter names, not {one_of!r}")
    alternatives = tuple(_strings(where, "one_of", names_, _NAME) for names_ in one_of)
    for names_ in alternatives:
        for param_name in names_:
            if param_name.lower() not in names:
                raise _fail(where, f"one_of: {param_name} is not among params")

    max_span = _span(where, "max_span", table["max_span"])
    all_nodes_span = table.get("max_span_all_nodes")
    has_all_nodes = any(p.all_nodes for p in parameters)
    if all_nodes_span is not None:
        all_nodes_span = _span(where, "max_span_all_nodes", all_nodes_span)
        if span_hours(all_nodes_span) > span_hours(max_span):
            raise _fail(where, "max_span_all_nodes is longer than max_span")
        if not has_all_nodes:
            raise _fail(where, "max_span_all_nodes without a parameter that has all_nodes values")

    by_market = table.get("publication_by_market", {})
    if not isinstance(by_market, dict):
        raise _fail(where, f"publication_by_market must be a table, not {by_market!r}")
    for market, offset in by_market.items():
        if market not in markets:
            raise _fail(where, f"publication_by_market: {market} is not among market_run_ids")
        _offset(where, f"publication_by_market: {market}", offset)

    history = _boolean(where, "history", table.get("history", True))
    if not history and any(p.current for p in parameters):
        raise _fail(where, "params: current values without history: the report is current-only already")

    optional_market = _boolean(where, "market_run_id_optional", table.get("market_run_id_optional", False))
    if optional_market and not markets:
        raise _fail(where, "market_run_id_optional without market_run_ids")
    page = table.get("page")
    all_nodes_section = table.get("all_nodes_section")
    covers = table.get("covers")
    if covers is not None and covers not in _COVERS:
        raise _fail(where, f"covers must be one of {', '.join(_COVERS)}, not {covers!r}")

    return CatalogueEntry(
        kind=kind,
        name=name,
        description=_string(where, "description", table["description"]),
        section=_string(where, "section", table["section"], _SECTION),
        market_run_ids=markets,
        versions=versions,
        csv=_boolean(where, "csv", table["csv"]),
        max_span=max_span,
        publication=_offset(where, "publication", table["publication"]),
        publication_note=_string(where, "publication_note", table["publication_note"]),
        aliases=_strings(where, "aliases", table.get("aliases", []), _NAME),
        page=None if page is None else _positive(where, "page", page),
        market_run_id_optional=optional_market,
        params=parameters,
        one_of=alternatives,
        max_span_all_nodes=all_nodes_span,
        span_section=_string(where, "span_section", table.get("span_section", "3.2"), _SECTION),
        all_nodes_section=(
            None
            if all_nodes_section is None
            else _string(where, "all_nodes_section", all_nodes_section, _SECTION)
        ),
        history=history,
        singlezip=_boolean(where, "singlezip", table.get("singlezip", True)),
        groups=_strings(where, "groups", table.get("groups", []), _NAME),
        reports=_strings(where, "reports", table.get("reports", []), _NAME),
        enddatetime=_boolean(where, "enddatetime", table.get("enddatetime", False)),
        covers=covers,
        publication_by_market=tuple(sorted(by_market.items())),
    )


def parse_catalogue(text: str, source: str = "catalogue.toml") -> Catalogue:
    """
    Read and validate catalogue data.

    @param text: TOML with C{[[report]]} and C{[[group]]} tables.
    @param source: Where it came from, for error messages.
    @return: The catalogue.
    @raise CatalogueError: If the TOML or any entry is malformed; the
        message names the entry.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{source}: not valid TOML: {e}") from e
    _unknown_keys(source, document, [REPORT, GROUP])
    tables = {}
    for kind in (REPORT, GROUP):
        found = document.get(kind, [])
        if not isinstance(found, list):
            raise CatalogueError(f"{source}: {kind} must be an array of tables ([[{kind}]])")
        tables[kind] = found
    return Catalogue.of(
        (_entry(REPORT, table, i) for i, table in enumerate(tables[REPORT], 1)),
        (_entry(GROUP, table, i) for i, table in enumerate(tables[GROUP], 1)),
    )


@functools.cache
def load_catalogue() -> Catalogue:
    """
    The catalogue shipped with harbour (C{harbour/oasis/catalogue.toml}),
    read and validated on the first call and shared afterwards.

    @return: The catalogue.
    @raise CatalogueError: If the shipped data is malformed.
    """
    text = files("harbour.oasis").joinpath("catalogue.toml").read_text(encoding="utf-8")
    return parse_catalogue(text, "harbour/oasis/catalogue.toml")
