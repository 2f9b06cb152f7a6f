"""
The reports the simulator has generators of its own for, and their data:
the rows of a report for a window, and the members of its zip.

Which windows OASIS accepts is not here: L{harbour.testing.simulator.limits}
reads that from harbour's catalogue.
"""

from __future__ import annotations

import datetime
import io
import math
from types import MappingProxyType
from typing import cast
from xml.sax.saxutils import escape

import attr

from harbour.testing.simulator.documents import Row, csv_document, envelope, report_header
from harbour.testing.simulator.formats import (
    Draws,
    Interval,
    OasisError,
    Span,
    day_intervals,
    day_names,
    interval_number,
    iso,
    oasis_number,
)

HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")
PRICE_ITEMS = MappingProxyType(
    {
        "LMP": "LMP_PRC",
        "MCC": "LMP_CONG_PRC",
        "MCE": "LMP_ENE_PRC",
        "MCL": "LMP_LOSS_PRC",
        "MGHG": "LMP_GHG_PRC",
    }
)
TAC_AREAS = ("CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC")


@attr.s(frozen=True, auto_attribs=True)
class LoadSeries:
    """
    The demand C{SLD_FCST} carries in one market (in RTM, one execution
    type): a forecast, or the actual demand.

    @ivar label: Its C{LABEL}.
    @ivar item: Its C{XML_DATA_ITEM} (XML's C{DATA_ITEM}).
    @ivar positions: Its C{POS} for each of L{TAC_AREAS}, in their order.
    @ivar decimals: The decimals of its values.
    @ivar minutes: Its interval length.
    """

    label: str
    item: str
    positions: tuple[float, ...]
    decimals: int = 2
    minutes: int = 60


#: The C{POS} of the forecasts, which no real sample at hand shows in
#: today's numbering: as the simulator has always written it.
_FORECAST_POSITIONS = (3.8,) * len(TAC_AREAS)

#: The series of C{SLD_FCST} by market, and in RTM by C{execution_type}.
#: The day-ahead forecasts' items are the spec's (section 5:
#: C{SYS_FCST_DA_MW}, C{SYS_FCST_2DA_MW}, C{SYS_FCST_7DA_MW}), labelled as
#: a real 2DA answer (C{Demand Forecast 2-Day Ahead}) and clients filtering
#: OASIS's answers by label have them.  The actual demand's is the real
#: sample's
#: (C{csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv}), whose C{POS} is
#: 7, 7.1 and 7.5 for CA ISO-TAC, PGE-TAC and VEA-TAC (SCE-TAC's and
#: SDGE-TAC's, which it lacks, are taken to lie between) and whose values
#: are whole megawatts.  The real-time ones are the RTPD sample's
#: (C{xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml}: 15-minute
#: C{SYS_FCST_15MIN_MW}, 5-minute C{SYS_FCST_5MIN_MW}, whole megawatts),
#: as harbour's catalogue and the spec's data items say; no real CSV of
#: them is at hand, and their labels are those a client filtering OASIS's
#: answers by label names them ("RTM 15Min Load Forecast", "RTM 5Min Load
#: Forecast").
LOAD_SERIES = MappingProxyType(
    {
        "DAM": LoadSeries("Demand Forecast Day Ahead", "SYS_FCST_DA_MW", _FORECAST_POSITIONS),
        "2DA": LoadSeries("Demand Forecast 2-Day Ahead", "SYS_FCST_2DA_MW", _FORECAST_POSITIONS),
        "7DA": LoadSeries("Demand Forecast 7-Day Ahead", "SYS_FCST_7DA_MW", _FORECAST_POSITIONS),
        "RTPD": LoadSeries(
            "RTM 15Min Load Forecast", "SYS_FCST_15MIN_MW", _FORECAST_POSITIONS, decimals=0, minutes=15
        ),
        "RTD": LoadSeries(
            "RTM 5Min Load Forecast", "SYS_FCST_5MIN_MW", _FORECAST_POSITIONS, decimals=0, minutes=5
        ),
        "ACTUAL": LoadSeries(
            "Total Actual Hourly Integrated Load", "SYS_FCST_ACT_MW", (7, 7.1, 7.2, 7.3, 7.5), decimals=0
        ),
    }
)


@attr.s(frozen=True, auto_attribs=True)
class SimReport:
    """
    One report the simulator has a generator of its own for.

    @ivar markets: The markets it has data in, each one that harbour's
        catalogue gives the report (OASIS refuses any other, with 1001).
    @ivar layout: C{"prices"}, C{"load"} or C{"items"}: which columns.
    @ivar minutes: The interval length of its data (for C{"load"}, each
        series has its own: see L{interval_minutes}).
    @ivar items: For C{"items"} reports, the data items it carries.
    """

    queryname: str
    markets: tuple[str, ...]
    layout: str
    minutes: int = 60
    items: tuple[str, ...] = ()


#: The reports with generators of their own, by queryname.
CATALOGUE = MappingProxyType(
    {
        r.queryname: r
        for r in [
            SimReport("PRC_LMP", ("DAM", "RUC"), "prices"),
            SimReport("PRC_INTVL_LMP", ("RTM",), "prices", minutes=5),
            SimReport("PRC_RTPD_LMP", ("RTPD",), "prices", minutes=15),
            SimReport("SLD_FCST", ("DAM", "ACTUAL", "RTM", "2DA", "7DA"), "load"),
            SimReport(
                "SLD_REN_FCST",
                ("DAM", "RTD", "RTPD"),
                "items",
                items=("RENEW_FCST_DA_MW",),
            ),
            SimReport(
                "ENE_SLRS",
                ("DAM", "RTM", "HASP"),
                "items",
                items=("ISO_TOT_EXP_MW", "ISO_TOT_GEN_MW", "ISO_TOT_IMP_MW"),
            ),
        ]
    }
)

#: The sections of OASIS's site, as the publications log names them.
SECTIONS = MappingProxyType({"prices": "Prices", "load": "System Demand", "items": "Energy"})

#: The C{execution_type} of the real-time C{SLD_FCST} that catalogued
#: groups of market RTM hold (spec section 7: "RTM/RTD" and "RTM/RTPD").
GROUP_EXECUTION_TYPES = MappingProxyType({"RTM1_GRP": "RTD", "RTPD_FCST_GRP": "RTPD"})

#: The simulator's own group zips: each group's report and market.  Other
#: groups come from harbour's catalogue.
GROUPS = MappingProxyType(
    {
        "DAM_LMP_GRP": ("PRC_LMP", "DAM"),
        "RTM_LMP_GRP": ("PRC_INTVL_LMP", "RTM"),
        "DAM_SLD_GRP": ("SLD_FCST", "DAM"),
    }
)

_PRICE_COLUMNS = (
    "INTERVALSTARTTIME_GMT",
    "INTERVALENDTIME_GMT",
    "OPR_DT",
    "OPR_HR",
    "OPR_INTERVAL",
    "NODE_ID_XML",
    "NODE_ID",
    "NODE",
    "MARKET_RUN_ID",
    "LMP_TYPE",
    "XML_DATA_ITEM",
    "PNODE_RESMRID",
    "GRP_TYPE",
    "POS",
    "MW",
    "GROUP",
)
_LOAD_COLUMNS = (
    "INTERVALSTARTTIME_GMT",
    "INTERVALENDTIME_GMT",
    "LOAD_TYPE",
    "OPR_DT",
    "OPR_HR",
    "OPR_INTERVAL",
    "MARKET_RUN_ID",
    "TAC_AREA_NAME",
    "LABEL",
    "XML_DATA_ITEM",
    "POS",
    "MW",
    "EXECUTION_TYPE",
    "GROUP",
)
_ITEM_COLUMNS = (
    "INTERVALSTARTTIME_GMT",
    "INTERVALENDTIME_GMT",
    "OPR_DT",
    "OPR_HR",
    "OPR_INTERVAL",
    "RESOURCE_NAME",
    "MARKET_RUN_ID",
    "XML_DATA_ITEM",
    "MW",
    "GROUP",
)


def load_series(market: str, execution: str | None) -> LoadSeries:
    """
    @param market: The C{market_run_id} of C{SLD_FCST} asked for.
    @param execution: The C{execution_type} asked for, if any.
    @return: The series it answers with: the market's, or in RTM the
        execution type's.
    @raise OasisError: 1001 for RTM without an execution type it has.
    """
    series = LOAD_SERIES.get((execution or "").upper() if market == "RTM" else market)
    if series is None:
        raise OasisError(1001)
    return series


def real_time_run(report: SimReport, market: str, execution: str | None) -> str | None:
    """
    @return: The execution type that names the series of C{SLD_FCST} in
        RTM, or L{None} for other markets and reports (which take none).
    """
    return (execution or "").upper() if report.layout == "load" and market == "RTM" else None


def interval_minutes(report: SimReport, market: str, execution: str | None = None) -> int:
    """
    @return: The interval length of a report's data in a market (and
        execution type).
    """
    if report.layout == "load":
        return load_series(market, execution).minutes
    return report.minutes


def node_names(count: int) -> list[str]:
    """
    @return: C{count} price node names: the trading hubs, then made-up nodes.
    """
    names = list(HUBS[:count])
    names += [f"NODE{i:04d}_7_N001" for i in range(max(0, count - len(HUBS)))]
    return names


def _timing(span: Interval) -> Row:
    """
    @return: The time columns every report row starts with.
    """
    return {
        "INTERVALSTARTTIME_GMT": iso(span.start),
        "INTERVALENDTIME_GMT": iso(span.end),
        "OPR_DT": span.day.isoformat(),
        "OPR_HR": span.hour,
        "OPR_INTERVAL": span.number,
    }


def price_rows(
    report: SimReport,
    market: str,
    start: datetime.datetime,
    end: datetime.datetime,
    draws: Draws,
    version: int,
    nodes: int,
) -> list[Row]:
    """
    @return: LMP rows of [start, end): per node and interval, one row per
        price component (the GHG component from version 2 on), each node's
        day drawn from its own source.
    """
    components = ["LMP", "MCC", "MCE", "MCL"] + (["MGHG"] if version > 1 else [])
    rows = []
    days = list(day_intervals(start, end, report.minutes))
    for index, node in enumerate(node_names(nodes)):
        for day, drawn, spans in days:
            rng = draws.day(report.queryname, market, node, day)
            base = 25 + rng.random() * 30
            values_of = {}
            for span in drawn:
                energy = round(base + 10 * math.sin(span.hour / 24 * 2 * math.pi) + rng.gauss(0, 3), 5)
                congestion = round(rng.gauss(0, 1.5), 5)
                loss = round(energy * rng.uniform(-0.04, 0.04), 5)
                ghg = round(rng.uniform(0, 0.5), 5)
                values_of[span.start] = {
                    "MCE": energy,
                    "MCC": congestion,
                    "MCL": loss,
                    "MGHG": ghg,
                    "LMP": round(energy + congestion + loss + (ghg if version > 1 else 0), 5),
                }
            for span in spans:
                values = values_of[span.start]
                for component in components:
                    rows.append(
                        _timing(span)
                        | {
                            "NODE_ID_XML": node,
                            "NODE_ID": node,
                            "NODE": node,
                            "MARKET_RUN_ID": market,
                            "LMP_TYPE": component,
                            "XML_DATA_ITEM": PRICE_ITEMS[component],
                            "PNODE_RESMRID": node,
                            "GRP_TYPE": "ALL_APNODES",
                            "POS": 0,
                            "MW": values[component],
                            "GROUP": 6000 + index,
                        }
                    )
    return rows


def load_rows(
    report: SimReport,
    market: str,
    start: datetime.datetime,
    end: datetime.datetime,
    draws: Draws,
    execution: str | None = None,
) -> list[Row]:
    """
    @param execution: The C{execution_type} asked for, if any.
    @return: Demand rows of [start, end), as the series of the market
        (and execution type) has them (L{load_series}): one per TAC area
        and interval, each area's day drawn from its own source.
    """
    series = load_series(market, execution)
    # In RTM the execution type names the series, as the market does
    # elsewhere: each is drawn from sources of its own.
    execution_type = real_time_run(report, market, execution) or market
    run = f"{market}/{execution_type}" if market == "RTM" else market
    rows = []
    days = list(day_intervals(start, end, series.minutes))
    for index, area in enumerate(TAC_AREAS):
        for day, _, spans in days:
            base = 4000 + draws.day(report.queryname, run, area, day).random() * 20000
            for span in spans:
                # The hour and how far into it: sub-hourly values vary
                # within their hour, hourly ones are as they always were.
                hour = span.hour + max(0, span.number - 1) * series.minutes / 60
                rows.append(
                    _timing(span)
                    | {
                        "LOAD_TYPE": 0,
                        "MARKET_RUN_ID": market,
                        "TAC_AREA_NAME": area,
                        "LABEL": series.label,
                        "XML_DATA_ITEM": series.item,
                        "POS": series.positions[index],
                        "MW": round(base * (1 + 0.2 * math.sin(hour / 24 * 2 * math.pi)), series.decimals),
                        "EXECUTION_TYPE": execution_type,
                        "GROUP": index + 1,
                    }
                )
    return rows


def item_rows(
    report: SimReport, market: str, start: datetime.datetime, end: datetime.datetime, draws: Draws
) -> list[Row]:
    """
    @return: System total rows of [start, end): one per data item and
        interval, each item's day drawn from its own source.
    """
    rows = []
    days = list(day_intervals(start, end, report.minutes))
    for index, item in enumerate(report.items):
        for day, drawn, spans in days:
            rng = draws.day(report.queryname, market, item, day)
            values = {span.start: round(rng.uniform(0, 30000), 2) for span in drawn}
            for span in spans:
                rows.append(
                    _timing(span)
                    | {
                        "RESOURCE_NAME": "Caiso_Totals",
                        "MARKET_RUN_ID": market,
                        "XML_DATA_ITEM": item,
                        "MW": values[span.start],
                        "GROUP": index + 1,
                    }
                )
    return rows


def report_rows(
    report: SimReport,
    market: str,
    start: datetime.datetime,
    end: datetime.datetime,
    draws: Draws,
    version: int,
    nodes: int,
    execution: str | None = None,
) -> tuple[list[str], list[Row]]:
    """
    @param nodes: How many price nodes price reports carry.
    @param execution: The C{execution_type} asked for, if any.
    @return: The column names and row dicts of a report's data for the
        window [start, end), drawn from C{draws}.
    """
    if report.layout == "prices":
        return list(_PRICE_COLUMNS), price_rows(report, market, start, end, draws, version, nodes)
    if report.layout == "load":
        return list(_LOAD_COLUMNS), load_rows(report, market, start, end, draws, execution)
    return list(_ITEM_COLUMNS), item_rows(report, market, start, end, draws)


def report_xml(
    report: SimReport,
    market: str,
    rows: list[Row],
    created: datetime.datetime,
    row_key: str,
    execution: str | None = None,
) -> bytes:
    """
    @param row_key: The column of C{rows} naming the resource (a node, a
        TAC area), which XML names in C{RESOURCE_NAME} as the real samples
        do.
    @param execution: The C{execution_type} asked for, which the header
        names in RTM as the real C{SLD_FCST} sample does.
    @return: Rows in the OASISReport layout: a REPORT_ITEM per resource and
        data item, with its header and one REPORT_DATA per interval.
    """
    minutes = interval_minutes(report, market, execution)
    header = report_header(report.queryname, market, "MW", minutes, real_time_run(report, market, execution))
    out = io.StringIO()
    groups: dict[tuple[object, object], list[Row]] = {}
    for row in rows:
        groups.setdefault((row[row_key], row["XML_DATA_ITEM"]), []).append(row)
    for (resource, item), items in groups.items():
        out.write("<REPORT_ITEM>\n" + header)
        for row in items:
            number = interval_number(cast(int, row["OPR_HR"]), cast(int, row["OPR_INTERVAL"]), minutes)
            out.write(
                f"<REPORT_DATA>\n<DATA_ITEM>{item}</DATA_ITEM>\n"
                f"<RESOURCE_NAME>{escape(str(resource))}</RESOURCE_NAME>\n"
                f"<OPR_DATE>{row['OPR_DT']}</OPR_DATE>\n<INTERVAL_NUM>{number}</INTERVAL_NUM>\n"
                f"<INTERVAL_START_GMT>{row['INTERVALSTARTTIME_GMT']}</INTERVAL_START_GMT>\n"
                f"<INTERVAL_END_GMT>{row['INTERVALENDTIME_GMT']}</INTERVAL_END_GMT>\n"
                f"<VALUE>{oasis_number(row['MW'])}</VALUE>\n</REPORT_DATA>\n"
            )
        out.write("</REPORT_ITEM>\n")
    return envelope(out.getvalue(), created)


def report_members(
    report: SimReport, market: str, span: Span, nodes: int, execution: str | None = None
) -> list[tuple[str, bytes]]:
    """
    @param execution: The C{execution_type} asked for, if any.
    @return: (name, bytes) of each member of a report's data zip: one CSV,
        one XML per price component, or one XML.
    """
    version, created = span.version, span.created
    stem = f"{day_names(span.start, span.end)}_{report.queryname}_{market}"
    columns, rows = report_rows(report, market, span.start, span.end, span.draws, version, nodes, execution)
    if span.csv:
        return [(f"{stem}_{created:%Y%m%d_%H_%M_%S}_v{version}.csv", csv_document(columns, rows))]
    if report.layout == "prices":
        by_component: dict[str, list[Row]] = {}
        for row in rows:
            by_component.setdefault(str(row["LMP_TYPE"]), []).append(row)
        return [
            (
                f"{stem}_{component}_v{version}.xml",
                report_xml(report, market, rows_of, created, "NODE"),
            )
            for component, rows_of in by_component.items()
        ]
    key = "RESOURCE_NAME" if report.layout == "items" else "TAC_AREA_NAME"
    return [(f"{stem}_v{version}.xml", report_xml(report, market, rows, created, key, execution))]
