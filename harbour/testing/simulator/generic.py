"""
Generic but plausible data for a catalogued report the simulator has no
generator of its own for: one row per interval of the window, with the
trading-day coordinates, one data item and a value that follows the hour
of the day.
"""

from __future__ import annotations

import datetime
import io
import math
from typing import cast

import attr

from harbour.oasis.catalogue import CatalogueEntry
from harbour.testing.simulator.documents import Row, csv_document, envelope, report_header
from harbour.testing.simulator.formats import (
    Draws,
    OasisError,
    Span,
    day_intervals,
    day_names,
    interval_number,
    iso,
    oasis_number,
)

#: Minutes per interval of data whose requests OASIS caps at an hour: such
#: a report is sub-hourly (its hour holds several intervals).
SUBHOURLY_MINUTES = 15


def market_of(entry: CatalogueEntry, asked: str | None) -> str | None:
    """
    @param entry: A catalogued report.
    @param asked: The request's C{market_run_id}, if any.
    @return: The market its answer is for, or L{None} for a report without
        markets (whatever was asked) or one asked without its optional
        market.
    @raise OasisError: 1001 for a market the report does not have.
    """
    if not entry.market_run_ids or (not asked and entry.market_run_id_optional):
        return None
    if asked not in entry.market_run_ids:
        raise OasisError(1001)
    return asked


@attr.s(frozen=True, auto_attribs=True)
class GenericReport:
    """
    The data of one catalogued report in one market, made up.

    @ivar queryname: The report; also the one C{DATA_ITEM} of its rows.
    @ivar market: Its C{market_run_id}, or L{None} for none.
    @ivar minutes: The interval length of its data.
    """

    queryname: str
    market: str | None
    minutes: int

    @classmethod
    def of(cls, entry: CatalogueEntry, market: str | None) -> GenericReport:
        """
        @param entry: A catalogued report.
        @param market: The market asked for (see L{market_of}).
        @return: Its generic data: hourly, or every L{SUBHOURLY_MINUTES}
            when the catalogue caps its requests (for all nodes or not) at
            some hours.
        """
        spans = (entry.max_span, entry.max_span_all_nodes or entry.max_span)
        minutes = SUBHOURLY_MINUTES if any(span.endswith("h") for span in spans) else 60
        return cls(entry.name, market, minutes)

    def columns(self) -> list[str]:
        """
        @return: The CSV columns of its rows.
        """
        market = ["MARKET_RUN_ID"] if self.market is not None else []
        return [
            "OPR_DT",
            "OPR_HR",
            "OPR_INTERVAL",
            "INTERVAL_START_GMT",
            "INTERVAL_END_GMT",
            *market,
            "DATA_ITEM",
            "VALUE",
        ]

    def rows(self, start: datetime.datetime, end: datetime.datetime, draws: Draws) -> list[Row]:
        """
        @return: One row per interval of [start, end), each trading day
            drawn from its own source.
        """
        rows = []
        for day, drawn, spans in day_intervals(start, end, self.minutes):
            rng = draws.day(self.queryname, self.market, self.queryname, day)
            base = 50 + rng.random() * 950
            values = {
                span.start: base * (1 + 0.2 * math.sin(span.hour / 24 * 2 * math.pi))
                + rng.gauss(0, base / 50)
                for span in drawn
            }
            for span in spans:
                row: Row = {
                    "OPR_DT": span.day.isoformat(),
                    "OPR_HR": span.hour,
                    "OPR_INTERVAL": span.number,
                    "INTERVAL_START_GMT": iso(span.start),
                    "INTERVAL_END_GMT": iso(span.end),
                    "DATA_ITEM": self.queryname,
                    "VALUE": round(values[span.start], 2),
                }
                if self.market is not None:
                    row["MARKET_RUN_ID"] = self.market
                rows.append(row)
        return rows

    def xml(self, rows: list[Row], created: datetime.datetime) -> bytes:
        """
        @return: C{rows} in the C{OASISReport} layout: one C{REPORT_ITEM}
            with one C{REPORT_DATA} per interval.
        """
        out = io.StringIO()
        out.write("<REPORT_ITEM>\n" + report_header(self.queryname, self.market, None, self.minutes))
        for row in rows:
            hour, number = cast(int, row["OPR_HR"]), cast(int, row["OPR_INTERVAL"])
            out.write(
                f"<REPORT_DATA>\n<DATA_ITEM>{row['DATA_ITEM']}</DATA_ITEM>\n"
                f"<OPR_DATE>{row['OPR_DT']}</OPR_DATE>\n"
                f"<INTERVAL_NUM>{interval_number(hour, number, self.minutes)}</INTERVAL_NUM>\n"
                f"<INTERVAL_START_GMT>{row['INTERVAL_START_GMT']}</INTERVAL_START_GMT>\n"
                f"<INTERVAL_END_GMT>{row['INTERVAL_END_GMT']}</INTERVAL_END_GMT>\n"
                f"<VALUE>{oasis_number(row['VALUE'])}</VALUE>\n</REPORT_DATA>\n"
            )
        out.write("</REPORT_ITEM>\n")
        return envelope(out.getvalue(), created)

    def members(self, span: Span) -> list[tuple[str, bytes]]:
        """
        @return: The one (name, bytes) member of its zip for the span's
            window, named as OASIS names members.
        """
        market = f"_{self.market}" if self.market is not None else ""
        stem = f"{day_names(span.start, span.end)}_{self.queryname}{market}"
        rows = self.rows(span.start, span.end, span.draws)
        if span.csv:
            name = f"{stem}_{span.created:%Y%m%d_%H_%M_%S}_v{span.version}.csv"
            return [(name, csv_document(self.columns(), rows))]
        return [(f"{stem}_v{span.version}.xml", self.xml(rows, span.created))]
