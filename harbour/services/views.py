"""
Keeps C{<data-dir>/tables/harbour.duckdb} in step with the configured
reports and with the tables on disk: rebuilt when the reports change, when
a report's first table appears and when a table brings a column its wide
view should read (a report's answers switched from XML to CSV), one
rebuild at a time, in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.config.topics import ReportTopic
from harbour.dataset.inventory import parquet_files
from harbour.dataset.views import WIDE_SOURCES, RebuiltViews, Unreadable, rebuild_views
from harbour.services.coalescing import Coalesced

#: Runs a function in a thread: C{run(f, *args)} fires with its result.
InThread = Callable[..., Deferred[Any]]


@attr.s(eq=False)
class Views:
    """
    The views file of one tables directory.

    @ivar reports: Report name to its OASIS query name (or group id), as
        last configured.
    @ivar shown: Reports that had tables at the last rebuild, but for those
        left without views for a file DuckDB could not read: their next
        table rebuilds the views again.
    @ivar wide_sources: What the wide views read, as of the last rebuild
        (see L{harbour.dataset.views.MadeViews.wide_sources}).
    """

    log = Logger()

    tables_dir: Path = attr.ib()
    in_thread: InThread = attr.ib()
    reports: dict[str, str] = attr.ib(factory=dict)
    shown: frozenset[str] = attr.ib(default=frozenset())
    wide_sources: Mapping[str, frozenset[str]] = attr.ib(factory=dict)
    _rebuilds: Coalesced = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._rebuilds = Coalesced(self._rebuild_once)

    def configure(self, reports: list[ReportTopic]) -> Deferred[None]:
        """
        The configured reports changed: rebuild if the views would differ.
        """
        wanted = {report.name: report.queryname or report.groupid or "" for report in reports}
        if wanted == self.reports:
            return self.idle()
        self.reports = wanted
        return self.rebuild()

    def written(self, report: str, columns: frozenset[str]) -> Deferred[None]:
        """
        A table of C{report} was written, with C{columns}: its views appear
        with its first, and its wide view is made again if it should read
        one of them that the report's files did not have when it was made;
        with none (a window of no rows, whose files are removed), the views
        are made again, as for a drop.
        """
        if report not in self.reports:
            return self.idle()
        # A report without a wide view reads none.
        unread = (columns & WIDE_SOURCES) - self.wide_sources.get(report, WIDE_SOURCES)
        # A window written with no rows removed its files: they may have
        # been the report's last, and a view over no file fails.
        if report in self.shown and not unread and columns:
            return self.idle()
        return self.rebuild()

    def idle(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once no rebuild runs.
        """
        return self._rebuilds.idle()

    def rebuild(self) -> Deferred[None]:
        """
        Rebuild now, or once more after the rebuild under way.

        @return: A L{Deferred} firing once the views include every change
            known when this was called; it never fails (a failure is
            logged, and the next change tries again).
        """
        return self._rebuilds()

    @inlineCallbacks
    def _rebuild_once(self) -> Generator[Deferred[Any], Any, None]:
        reports = dict(self.reports)
        try:
            shown, rebuilt = yield self.in_thread(_rebuild, self.tables_dir, reports)
        except Exception:
            self.log.failure("cannot rebuild the views in {path}", path=self.tables_dir, service="tables")
        else:
            self.shown, self.wide_sources = shown, rebuilt.wide_sources
            for why in rebuilt.skipped:
                self.log.warn("no view for a report: {why}", why=str(why), service="tables")


def _rebuild(tables_dir: Path, reports: dict[str, str]) -> tuple[frozenset[str], RebuiltViews]:
    """
    In a thread: rebuild the views.

    @return: The reports shown (see L{Views.shown}): those that have tables,
        so have a view unless the reports left without, returned with
        them, say otherwise; and what was rebuilt.
    """
    # A report's directory appears with its first parse, before any file is
    # committed: only a committed file earns a view.
    present = {name: query for name, query in reports.items() if any(parquet_files(tables_dir / name))}
    rebuilt = rebuild_views(tables_dir, present)
    unreadable = {why.report for why in rebuilt.skipped if isinstance(why, Unreadable)}
    # A report whose every file went during the rebuild got no view: its
    # next file is its first again.
    return frozenset(present.keys() - unreadable - rebuilt.emptied), rebuilt
