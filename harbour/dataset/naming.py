"""
The names of a report's views, which the configuration checks without
loading DuckDB (see L{harbour.dataset.views}, which makes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from harbour.oasis.catalogue import load_catalogue

#: The reports whose answers are locational marginal prices.
LMP_REPORTS = frozenset({"PRC_LMP", "PRC_INTVL_LMP", "PRC_RTPD_LMP", "PRC_HASP_LMP"})


def view_name(report: str) -> str:
    """
    @return: The name of C{report}'s view.
    """
    return re.sub(r"[-.]", "_", report)


def is_lmp(query: str) -> bool:
    """
    @param query: A report's OASIS queryname or groupid.
    @return: Whether its answers are LMPs (so that it gets a wide view).
    """
    if query in LMP_REPORTS:
        return True
    group = load_catalogue().entry(groupid=query)
    return group is not None and any(r in LMP_REPORTS for r in group.reports)


def view_names(report: str, query: str | None) -> list[str]:
    """
    @param query: The report's OASIS queryname or groupid, if known.
    @return: The names of C{report}'s views: its own, and for LMPs its
        wide one.
    """
    name = view_name(report)
    return [name, f"{name}_wide"] if query and is_lmp(query) else [name]


def clashes(reports: Mapping[str, str | None]) -> Iterable[tuple[str, str, str]]:
    """
    The reports left without views because a name of theirs is taken, in
    DuckDB's case-insensitive names, by a report before them in sorted
    order (the order in which the views are made).

    @param reports: Each report's OASIS queryname or groupid, by name.
    @return: C{(report, view, holder)} for each report left without views.
    """
    holders: dict[str, str] = {}
    for report, query in sorted(reports.items()):
        names = view_names(report, query)
        taken = next((n for n in names if n.lower() in holders), None)
        if taken is not None:
            yield report, taken, holders[taken.lower()]
            continue
        holders.update((n.lower(), report) for n in names)
