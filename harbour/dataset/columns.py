"""
How the columns of an OASIS answer are named and typed in the dataset.

Every source column is kept, named in lower case.  The type follows from
the name alone, so that every file of a report has the same schema
whatever its rows hold: C{*_GMT} columns are UTC timestamps, C{OPR_DT} and
C{OPR_DATE} dates, interval numbers integers, the known value columns
float64, and everything else a string.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

#: The type of every timestamp column.
TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Columns holding the trading day.
DATE_COLUMNS = frozenset({"OPR_DT", "OPR_DATE"})

#: Columns holding whole numbers.
INTEGER_COLUMNS = frozenset({"OPR_HR", "OPR_INTERVAL", "INTERVAL_NUM", "SEC_PER_INTERVAL"})

#: Columns holding measured values.
FLOAT_COLUMNS = frozenset({"MW", "VALUE", "PRC", "POS", "PRICE", "LMP", "QUANTITY", "AMOUNT"})

#: Suffixes of other value columns (C{ISO_TOT_GEN_MW}, C{LMP_CONG_PRC}).
FLOAT_SUFFIXES = ("_MW", "_PRC", "_MWH", "_VALUE")

#: The source columns a row's interval start and end are read from, in
#: order of preference.
START_COLUMNS = ("INTERVALSTARTTIME_GMT", "INTERVAL_START_GMT", "STARTTIME_GMT", "START_TIME_GMT")
END_COLUMNS = ("INTERVALENDTIME_GMT", "INTERVAL_END_GMT", "ENDTIME_GMT", "END_TIME_GMT")

#: The columns every file gets besides its source columns.
INTERVAL_START = "interval_start_utc"
INTERVAL_END = "interval_end_utc"

#: The partition column: in the directory names, never in the files.
TRADING_DATE = "trading_date"


def column_name(source: str) -> str:
    """
    @param source: A column or element name as OASIS writes it.
    @return: Its name in the dataset.
    """
    return source.strip().lower()


def column_type(source: str) -> pa.DataType:
    """
    @param source: A column or element name as OASIS writes it.
    @return: The type of its values in the dataset.
    """
    name = source.strip().upper()
    if name.endswith("_GMT"):
        return TIMESTAMP
    if name in DATE_COLUMNS:
        return pa.date32()
    if name in INTEGER_COLUMNS:
        return pa.int64()
    if name in FLOAT_COLUMNS or name.endswith(FLOAT_SUFFIXES):
        return pa.float64()
    return pa.string()


def first_present(candidates: Iterable[str], names: Iterable[str]) -> str | None:
    """
    @param candidates: Source column names, most wanted first.
    @param names: The dataset's column names present.
    @return: The dataset name of the first candidate present, or L{None}.
    """
    present = set(names)
    for candidate in candidates:
        if column_name(candidate) in present:
            return column_name(candidate)
    return None
