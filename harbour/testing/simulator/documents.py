"""
The documents OASIS answers with: zips, the C{OASISReport} XML envelope,
C{resultformat=6} CSV, error documents and the throttle page.
"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from xml.sax.saxutils import escape

from harbour.testing.simulator.formats import MESSAGES, PACIFIC, UTC, iso, oasis_number, parse_gmt, valid_gmt

NAMESPACE = "http://www.caiso.com/soa/OASISReport_v1.xsd"
DISCLAIMER = (
    "The contents of these pages are subject to change without notice. Decisions based on "
    "information contained within the California ISO's web site are the visitor's sole "
    "responsibility."
)

#: The page OASIS answers a request that came too soon with, byte for byte
#: as recorded (C{harbour/test/samples/http_429_acceptable_use_policy.html}).
THROTTLE_PAGE = (
    b"<html><body><p>CAISO Acceptable Use Policy Violation. "
    b"Please retry your request after 5 seconds.</p></body></html>"
)

#: The earliest date a zip can give a member.
ZIP_EPOCH = datetime.datetime(1980, 1, 1, tzinfo=UTC)

#: One row of a report: column name to value.
Row = dict[str, object]


def deterministic_zip(members: list[tuple[str, bytes]], stamp: datetime.datetime) -> bytes:
    """
    @return: A deflated zip of C{members}, identical for identical input.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return out.getvalue()


def error_document(code: int, created: datetime.datetime) -> bytes:
    """
    @param created: When the refusal was made, written to the millisecond
        as OASIS writes it (C{2026-10-06T09:34:35.839Z}).
    @return: OASIS's error XML for C{code}, byte for byte in the layout of
        the real sample (C{xml_error_1000_no_data_SLD_REN_FCST_erw.xml}),
        which ends without a newline.
    """
    stamp = created.astimezone(UTC) if created.tzinfo is not None else created
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<m:OASISReport xmlns:m="{NAMESPACE}">\n'
        "<m:MessageHeader>\n"
        f"\t<m:TimeDate>{stamp:%Y-%m-%dT%H:%M:%S}.{stamp.microsecond // 1000:03d}Z</m:TimeDate>\n"
        "\t<m:Source>OASIS</m:Source>\n\t<m:Version>v20131201</m:Version>\n"
        "</m:MessageHeader>\n<m:MessagePayload>\n<m:RTO>\n<m:name>CAISO</m:name>\n"
        f"<m:DISCLAIMER_ITEM>\n<m:DISCLAIMER>{escape(DISCLAIMER)}</m:DISCLAIMER>\n</m:DISCLAIMER_ITEM>\n"
        f"<m:ERROR>\n<m:ERR_CODE>{code}</m:ERR_CODE>\n<m:ERR_DESC>{escape(MESSAGES[code])}</m:ERR_DESC>\n"
        "</m:ERROR>\n\n</m:RTO>\n</m:MessagePayload>\n</m:OASISReport>"
    ).encode()


def error_zip(code: int, args: dict[str, str], now: datetime.datetime) -> bytes:
    """
    @param code: The OASIS error code.
    @param args: The refused request's query arguments, which name the
        member as OASIS does (C{20210215_20210215_PUB_BID_RTM_v3.xml}: the
        day it starts, the report, its market and version).
    @param now: When the request was refused: the document's C{TimeDate}
        and the zip's date, so that the same refusal at the same moment is
        the same bytes.
    @return: The zip OASIS answers a refused request with.
    """
    first = parse_gmt(args["startdatetime"]) if valid_gmt(args.get("startdatetime")) else None
    dates = f"{first.astimezone(PACIFIC):%Y%m%d}_{first.astimezone(PACIFIC):%Y%m%d}_" if first else ""
    asked = args.get("queryname") or args.get("groupid") or "UNKNOWN"
    market = f"_{args['market_run_id']}" if args.get("market_run_id") else ""
    name = f"{dates}{asked}{market}_v{args.get('version', '1')}.xml"
    # A zip cannot date a member before 1980; a test clock may start at 0.
    stamp = max(now, ZIP_EPOCH)
    return deterministic_zip([(name, error_document(code, now))], stamp)


def envelope(payload: str, created: datetime.datetime) -> bytes:
    """
    @return: C{payload} inside the C{OASISReport} envelope OASIS sends.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OASISReport xmlns="{NAMESPACE}">\n<MessageHeader>\n'
        f"<TimeDate>{iso(created)}</TimeDate>\n<Source>OASIS</Source>\n<Version>v20131201</Version>\n"
        "</MessageHeader>\n<MessagePayload>\n<RTO>\n<name>CAISO</name>\n"
        f"{payload}"
        f"<DISCLAIMER_ITEM>\n<DISCLAIMER>{escape(DISCLAIMER)}</DISCLAIMER>\n</DISCLAIMER_ITEM>\n"
        "</RTO>\n</MessagePayload>\n</OASISReport>\n"
    ).encode()


def report_header(
    queryname: str, market: str | None, uom: str | None, minutes: int, execution: str | None = None
) -> str:
    """
    @param market: The C{MKT_TYPE}, or L{None} for a report without one.
    @param uom: The unit of measure, or L{None} to name none.
    @param execution: The C{EXECUTION_TYPE}, after the market as in the
        real C{SLD_FCST} RTM sample, or L{None} to name none.
    @return: The C{REPORT_HEADER} that opens a C{REPORT_ITEM}.
    """
    lines = ["<REPORT_HEADER>", "<SYSTEM>OASIS</SYSTEM>", "<TZ>PPT</TZ>", f"<REPORT>{queryname}</REPORT>"]
    if market is not None:
        lines.append(f"<MKT_TYPE>{market}</MKT_TYPE>")
    if execution is not None:
        lines.append(f"<EXECUTION_TYPE>{execution}</EXECUTION_TYPE>")
    if uom is not None:
        lines.append(f"<UOM>{uom}</UOM>")
    lines += ["<INTERVAL>ENDING</INTERVAL>", f"<SEC_PER_INTERVAL>{minutes * 60}</SEC_PER_INTERVAL>"]
    return "\n".join(lines) + "\n</REPORT_HEADER>\n"


def csv_document(columns: list[str], rows: list[Row]) -> bytes:
    """
    @return: C{rows} as OASIS's C{resultformat=6} CSV, numbers written as
        OASIS writes them (L{oasis_number}).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([oasis_number(row[c]) for c in columns] for row in rows)
    return out.getvalue().encode()


def atlas_xml(queryname: str, columns: list[str], rows: list[Row], created: datetime.datetime) -> bytes:
    """
    @return: Rows of an atlas report in the C{OASISReport} layout: one
        C{ATL_ITEM} per row, one element per column.
    """
    out = io.StringIO()
    out.write(f"<ATL_HEADER>\n<REPORT>{queryname}</REPORT>\n<TZ>PPT</TZ>\n</ATL_HEADER>\n")
    for row in rows:
        out.write("<ATL_ITEM>\n")
        out.writelines(f"<{column}>{escape(str(row[column]))}</{column}>\n" for column in columns)
        out.write("</ATL_ITEM>\n")
    return envelope(out.getvalue(), created)
