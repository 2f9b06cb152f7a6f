"""
What one request may ask for, as OASIS enforces it, with harbour's catalogue
(L{load_catalogue}) as the only source of the limits:

- a window longer than the entry's C{max_span} is refused: 1004 for a limit
  in days (OASIS's "31 days only"), 1018 for one in hours ("cannot select
  multiple hours");
- asking for all nodes (C{grp_type=ALL}, C{node=ALL}...) over more than
  C{max_span_all_nodes} is refused with 1018 when that limit is in hours;
  otherwise OASIS ignores C{enddatetime} (spec section 6) and answers
  C{max_span_all_nodes} from C{startdatetime}, whether the window asked
  for is longer or shorter (L{all_nodes_end});
- a list longer than a parameter's C{max_items} is refused with 1017;
- a request without a parameter the entry requires (in the market asked
  for) is refused with 1001 (section 3.2: "Invalid Parameters of the
  given report name").

A limit in days allows the autumn day's extra hour, as
L{harbour.oasis.catalogue.check_request} does.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from harbour.oasis.catalogue import CatalogueEntry, allowed_hours, load_catalogue, span_hours
from harbour.testing.simulator.formats import PACIFIC, UTC, OasisError, day_start

#: Refused: longer than a limit in days.
OVER_DAYS = 1004
#: Refused: longer than a limit in hours.
OVER_HOURS = 1018
#: Refused: a list with too many items.
TOO_MANY = 1017
#: Refused: a parameter missing or invalid.
INVALID_PARAMETERS = 1001


def report_entry(queryname: str) -> CatalogueEntry | None:
    """
    @return: The catalogue's SingleZip report C{queryname}, or L{None}.
    """
    return load_catalogue().entry(queryname=queryname) if queryname else None


def group_entry(groupid: str) -> CatalogueEntry | None:
    """
    @return: The catalogue's GroupZip group C{groupid}, or L{None}.
    """
    return load_catalogue().entry(groupid=groupid) if groupid else None


def _in_days(span: str) -> bool:
    """
    @return: Whether C{span} (C{"31d"}, C{"1h"}) counts trading days.
    """
    return span.endswith("d")


def first_days_end(start: datetime.datetime, days: int) -> datetime.datetime:
    """
    @return: The end of the first C{days} trading days of a window from
        C{start}: the start of the trading day C{days} after the one
        C{start} falls in.
    """
    return day_start(start.astimezone(PACIFIC).date() + datetime.timedelta(days=days))


def month_end(start: datetime.datetime) -> datetime.datetime:
    """
    @return: The end of the calendar month of trading days C{start} falls
        in: the start of the next month's first trading day.
    """
    day = start.astimezone(PACIFIC).date()
    return day_start(datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1))


def all_nodes_end(start: datetime.datetime, span: str) -> datetime.datetime:
    """
    @param span: An all-nodes span, such as C{"1d"} or C{"1h"}.
    @return: The end of what OASIS answers a request for all nodes from
        C{start}, whatever its C{enddatetime}: C{span} of hours later, or
        for a span of days the same Pacific time that many days later (so
        from a trading day's start, its whole trading days: 23 or 25 hours
        on the change days).
    """
    if not _in_days(span):
        return start + datetime.timedelta(hours=span_hours(span))
    days = datetime.timedelta(days=span_hours(span) // 24)
    return (start.astimezone(PACIFIC) + days).astimezone(UTC)


def asked_end(entry: CatalogueEntry | None, start: datetime.datetime) -> datetime.datetime:
    """
    @param entry: The group asked for by C{startdatetime} alone, if the
        catalogue has it.
    @return: The end of what OASIS answers such a request for: the whole
        trading day that starts at C{start} (23 or 25 hours on the change
        days), or for a group whose one answer holds its month (section 7:
        "The entire month data will be cached") the whole calendar month
        of trading days.
    """
    if entry is not None and entry.monthly:
        return month_end(start)
    return first_days_end(start, 1)


def served_window(
    entry: CatalogueEntry, params: Mapping[str, str], start: datetime.datetime, end: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    """
    @param entry: The report or group asked for.
    @param params: The request's query parameters.
    @return: The window OASIS answers for: [start, end), or for all nodes
        its all-nodes span from C{start} (L{all_nodes_end}), shorter or
        longer than the window asked for.
    @raise OasisError: L{OVER_DAYS} or L{OVER_HOURS} for a window OASIS
        refuses.
    """
    hours = (end - start).total_seconds() / 3600
    if hours > allowed_hours(entry.max_span):
        raise OasisError(OVER_DAYS if _in_days(entry.max_span) else OVER_HOURS)
    if entry.max_span_all_nodes is None or not entry.asks_all_nodes(params):
        return start, end
    span = entry.max_span_all_nodes
    if hours > allowed_hours(span) and not _in_days(span):
        raise OasisError(OVER_HOURS)
    # For all nodes OASIS ignores enddatetime (spec section 6): a longer
    # window is cut silently, a shorter one answered with the whole span.
    return start, all_nodes_end(start, span)


def check_lists(entry: CatalogueEntry, params: Mapping[str, str]) -> None:
    """
    @raise OasisError: L{TOO_MANY} if a parameter lists more values than
        the entry allows (OASIS compares parameter names without case).
    """
    given = {name.lower(): value for name, value in params.items()}
    for param in entry.params:
        value = given.get(param.name.lower())
        if param.max_items is None or value is None:
            continue
        if len([item for item in value.split(",") if item.strip()]) > param.max_items:
            raise OasisError(TOO_MANY)


def check_required(entry: CatalogueEntry, params: Mapping[str, str], market: str | None) -> None:
    """
    @param market: The market the request is answered for, if any.
    @raise OasisError: L{INVALID_PARAMETERS} if a parameter the entry
        requires with that market is missing (OASIS compares parameter
        names without case), such as C{execution_type} for C{SLD_FCST} in
        RTM.
    """
    given = {name.lower() for name, value in params.items() if value}
    for param in entry.params:
        if param.required_with(market) and param.name.lower() not in given:
            raise OasisError(INVALID_PARAMETERS)
