"""
An OASIS simulator: a C{twisted.web} resource serving C{/oasisapi/SingleZip}
and C{/oasisapi/GroupZip} the way CAISO's OASIS does.

- Every answer is HTTP 200 with a zip.  Errors are one XML member with
  C{ERR_CODE}/C{ERR_DESC} under an C{m:} prefix, as in the real samples:
  1000 outside the available days, 1001 a market the report lacks, 1002 a
  bad date-time, 1004 over 31 days, 1005 an unknown report, 1015 the first
  request of a GroupZip day, 1016 an unknown group, 1017 over 10 nodes,
  1018 over the report's own limit, 1020 a missing or bad version.
- Data zips are named and laid out like the real ones: CSV with the real
  columns (C{resultformat=6}), or XML in the C{OASISReport} layout with one
  member per price component.  Content is deterministic from the seed and
  the URL; C{nodes} sets the size.
- A request that starts less than C{min_interval} after the previous
  accepted one gets HTTP 429 (or, with C{throttle_page}, the 200 HTML page
  OASIS sometimes sends).
- L{Faults} adds latency, 5xx with C{Retry-After}, connections reset
  mid-body, truncated zips and slow trickles, decided per (URL, attempt) so
  that a retried request meets a repeatable fate.
- C{ATL_PUB} (the Publications and Revisions log) and C{ATL_PUB_SCHED} (the
  Publication Schedule) agree with the data: trading day D of every report
  is published C{publish_offset} seconds after D starts, and is served from
  then on; L{OasisSimulator.revise} changes a day's content and logs a
  revision.

C{twistd oasis-sim} runs it stand-alone; L{makeService} is that plugin.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import math
import random
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import attr
from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime, ITCPTransport
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

PACIFIC = ZoneInfo("America/Los_Angeles")
UTC = datetime.UTC
GMT_FORMAT = "%Y%m%dT%H:%M-0000"
NAMESPACE = "http://www.caiso.com/soa/OASISReport_v1.xsd"
DISCLAIMER = (
    "The contents of these pages are subject to change without notice. Decisions based on "
    "information contained within the California ISO's web site are the visitor's sole "
    "responsibility."
)

#: OASIS's own descriptions (interface specification, section 3.2).
MESSAGES = {
    1000: "No data returned for the specified selection",
    1001: "Invalid Parameters of the given report name.",
    1002: "Invalid datetime format, please use valid datetime format.",
    1004: "Data can be requested for period of 31 days only.",
    1005: "Report name does not exist, please use valid report name.",
    1015: "GroupZip DownLoad is in Processing, Please Submit request after Sometime",
    1016: "GROUPID Does Not Exist, Please Use Valid GROUPID Name",
    1017: "Please select a maximum of 10 nodes or use the ALL option",
    1018: "Invalid Selection, cannot select multiple hours for this query",
    1020: "Version parameter is missing or is invalid",
}

THROTTLE_PAGE = (
    b"<!DOCTYPE html><html><head><title>OASIS - Acceptable Use Policy</title></head>"
    b"<body><h1>Acceptable Use Policy</h1><p>Your request rate exceeds the acceptable use "
    b"policy of this site. Please wait before submitting another request.</p></body></html>"
)

HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")
PRICE_ITEMS = {
    "LMP": "LMP_PRC",
    "MCC": "LMP_CONG_PRC",
    "MCE": "LMP_ENE_PRC",
    "MCL": "LMP_LOSS_PRC",
    "MGHG": "LMP_GHG_PRC",
}
TAC_AREAS = ("CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC")


@attr.s(frozen=True, auto_attribs=True)
class SimReport:
    """
    One report the simulator knows.

    @ivar layout: C{"prices"}, C{"load"} or C{"items"}: which columns.
    @ivar max_hours: The longest window one request may cover.
    @ivar minutes: The interval length of its data.
    @ivar items: For C{"items"} reports, the data items it carries.
    """

    queryname: str
    markets: tuple[str, ...]
    layout: str
    minutes: int = 60
    max_hours: int = 31 * 24
    items: tuple[str, ...] = ()


CATALOGUE = {
    r.queryname: r
    for r in [
        SimReport("PRC_LMP", ("DAM", "RUC"), "prices"),
        SimReport("PRC_INTVL_LMP", ("RTM",), "prices", minutes=5, max_hours=1),
        SimReport("PRC_RTPD_LMP", ("RTPD",), "prices", minutes=15, max_hours=1),
        SimReport("SLD_FCST", ("DAM", "ACTUAL", "RTM", "2DA", "7DA"), "load"),
        SimReport(
            "SLD_REN_FCST", ("DAM", "ACTUAL", "RTD", "RTPD", "HASP"), "items", items=("RENEW_FCST_DA_MW",)
        ),
        SimReport(
            "ENE_SLRS",
            ("DAM", "RTM", "RUC", "HASP"),
            "items",
            items=("ISO_TOT_EXP_MW", "ISO_TOT_GEN_MW", "ISO_TOT_IMP_MW"),
        ),
    ]
}

#: The sections of OASIS's site, as the publications log names them.
SECTIONS = {"prices": "Prices", "load": "System Demand", "items": "Energy"}

#: The atlas reports about publication.
PUBLICATIONS_LOG = "ATL_PUB"
PUBLICATIONS_SCHEDULE = "ATL_PUB_SCHED"

PUBLICATION_COLUMNS = [
    "PUBLICATION_TIME_GMT",
    "OPR_DT",
    "OASIS_SECTION",
    "REPORT_NAME",
    "MARKET_RUN_ID",
    "STATUS",
    "ATLPUB_VERSION",
    "DESCRIPTION",
]
SCHEDULE_COLUMNS = [
    "OASIS_SECTION",
    "REPORT_NAME",
    "MARKET_RUN_ID",
    "PUBLICATION_TYPE",
    "PUBLICATION_TIME",
    "TRADE_DAY_OFFSET",
    "TZ",
]

#: Group zips: each group's report and market.
GROUPS = {
    "DAM_LMP_GRP": ("PRC_LMP", "DAM"),
    "RTM_LMP_GRP": ("PRC_INTVL_LMP", "RTM"),
    "DAM_SLD_GRP": ("SLD_FCST", "DAM"),
}


class OasisError(Exception):
    """
    A request OASIS would refuse with C{code}.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@attr.s(frozen=True, auto_attribs=True)
class Faults:
    """
    Fault knobs: each C{*_rate} is the chance that a request meets that
    fault (decided per URL and attempt, from the seed).

    @ivar latency: Seconds added before every answer.
    @ivar retry_after: The C{Retry-After} of a 5xx, in seconds.
    @ivar trickle_bytes: Bytes per step of a trickle (one step per 10 ms).
    """

    latency: float = 0.0
    error_rate: float = 0.0
    retry_after: float = 1.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    trickle_rate: float = 0.0
    trickle_bytes: int = 512

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """
        Parse C{"latency=0.1,error_rate=0.2,..."}.

        @raise ValueError: for an unknown name or a bad number.
        """
        fields = {f.name: f for f in attr.fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            if name not in fields:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(fields)}")
            values[name] = int(value) if fields[name].type in (int, "int") else float(value)
        return cls(**values)


def parse_gmt(value: str | None) -> datetime.datetime:
    """
    @raise OasisError: 1002 unless C{value} is C{yyyymmddThh24:mi-0000}.
    """
    try:
        return datetime.datetime.strptime(value or "", GMT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise OasisError(1002) from None


def iso(moment: datetime.datetime) -> str:
    """
    @return: C{moment} as OASIS writes times in data: C{2020-01-02T01:00:00-00:00}.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


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
    @return: OASIS's error XML for C{code}, as in the real samples.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<m:OASISReport xmlns:m="{NAMESPACE}">\n'
        "<m:MessageHeader>\n"
        f"\t<m:TimeDate>{created.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</m:TimeDate>\n"
        "\t<m:Source>OASIS</m:Source>\n\t<m:Version>v20131201</m:Version>\n"
        "</m:MessageHeader>\n<m:MessagePayload>\n<m:RTO>\n<m:name>CAISO</m:name>\n"
        f"<m:DISCLAIMER_ITEM>\n<m:DISCLAIMER>{escape(DISCLAIMER)}</m:DISCLAIMER>\n</m:DISCLAIMER_ITEM>\n"
        f"<m:ERROR>\n<m:ERR_CODE>{code}</m:ERR_CODE>\n<m:ERR_DESC>{escape(MESSAGES[code])}</m:ERR_DESC>\n"
        "</m:ERROR>\n\n</m:RTO>\n</m:MessagePayload>\n</m:OASISReport>\n"
    ).encode()


#: One row of a report: column name to value.
_Row = dict[str, object]

#: One entry of the publications log: when, the trading day, the status
#: and the version.
_LogEntry = tuple[datetime.datetime, datetime.date, str, int]


@attr.s(frozen=True, auto_attribs=True)
class Interval:
    """
    One data interval, with its trading-day coordinates.
    """

    start: datetime.datetime
    end: datetime.datetime
    day: datetime.date
    hour: int
    number: int


def intervals(start: datetime.datetime, end: datetime.datetime, minutes: int) -> Iterator[Interval]:
    """
    The intervals of C{minutes} from C{start} to C{end}, numbered as OASIS
    numbers them: C{OPR_HR} is the hour-ending of the trading day (1 to 25),
    C{OPR_INTERVAL} 0 for hourly data, else 1 to 60/C{minutes}.
    """
    step = datetime.timedelta(minutes=minutes)
    moment = start
    while moment < end:
        local_day = moment.astimezone(PACIFIC).date()
        day_start = datetime.datetime(
            local_day.year, local_day.month, local_day.day, tzinfo=PACIFIC
        ).astimezone(UTC)
        elapsed = (moment - day_start).total_seconds() / 60
        hour = int(elapsed // 60) + 1
        number = 0 if minutes >= 60 else int(elapsed % 60 // minutes) + 1
        yield Interval(moment, moment + step, local_day, hour, number)
        moment += step


@attr.s(eq=False)
class OasisSimulator(Resource):
    """
    The C{/oasisapi} tree of a simulated OASIS.

    @ivar first_day: The first trading day with data.
    @ivar last_day: The last trading day with data, whatever the clock says
        (L{None}: the last day published by C{clock}).
    @ivar publish_offset: Seconds after its start (Pacific) at which a
        trading day's data is published: 0 publishes a day as it begins,
        -11 hours at 13:00 the day before (as the day-ahead market does).
    @ivar broken_log: Answer C{ATL_PUB} and C{ATL_PUB_SCHED} with error
        1005, as a source without the log would.
    @ivar requests: C{[time, path, query, outcome]} of every request, for
        tests and benchmarks to count: the POSIX time, the path, the query
        arguments as a C{dict}, and C{"data"}, an OASIS error code or the
        fault met.
    """

    log = Logger()

    clock: IReactorTime = attr.ib()
    seed: int = attr.ib(default=0)
    nodes: int = attr.ib(default=3)
    min_interval: float = attr.ib(default=0.0)
    throttle_page: bool = attr.ib(default=False)
    faults: Faults = attr.ib(factory=Faults)
    first_day: datetime.date = attr.ib(default=datetime.date(2020, 1, 1))
    last_day: datetime.date | None = attr.ib(default=None)
    publish_offset: float = attr.ib(default=0.0)
    broken_log: bool = attr.ib(default=False)
    requests: list[list[Any]] = attr.ib(factory=list, init=False)
    _revisions: dict[tuple[str, datetime.date], list[datetime.datetime]] = attr.ib(factory=dict, init=False)
    _group_seen: set[tuple[str, datetime.datetime, datetime.datetime, int]] = attr.ib(factory=set, init=False)
    _attempts: dict[str, int] = attr.ib(factory=dict, init=False)
    _last_start: float | None = attr.ib(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)
        api = Resource()
        self.putChild(b"oasisapi", api)
        api.putChild(b"SingleZip", _Endpoint(self, self.single_zip))
        api.putChild(b"GroupZip", _Endpoint(self, self.group_zip))

    def site(self) -> Site:
        """
        @return: A site serving this simulator at C{/oasisapi}.
        """
        site = _QuietSite(self)
        site.noisy = False
        return site

    def available(self) -> tuple[datetime.date, datetime.date]:
        """
        @return: The first and last trading days that have data.
        """
        last = self.last_day
        if last is None:
            last = self.last_published()
        return self.first_day, last

    def last_published(self) -> datetime.date:
        """
        @return: The newest trading day published by now.
        """
        moment = self.clock.seconds() - self.publish_offset
        return datetime.datetime.fromtimestamp(moment, PACIFIC).date()

    def published_at(self, day: datetime.date) -> datetime.datetime:
        """
        @return: When trading day C{day} is (or was) published.
        """
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)
        return start + datetime.timedelta(seconds=self.publish_offset)

    def revise(self, queryname: str, day: datetime.date) -> int:
        """
        Revise trading day C{day} of report C{queryname} (every market) now:
        every answer covering it changes, and the log gets a C{REVISED}
        entry.

        @return: The day's revision count.
        """
        # The log has whole seconds: round up, so that nothing fetched
        # before the change looks as if fetched after it.
        moment = datetime.datetime.fromtimestamp(math.ceil(self.clock.seconds()), UTC)
        revisions = self._revisions.setdefault((queryname, day), [])
        revisions.append(moment)
        return len(revisions)

    def _revision_tag(self, queryname: str, start: datetime.datetime, end: datetime.datetime) -> str:
        """
        @return: What the revisions of the days in [start, end) add to the
            seed of an answer (nothing, for days never revised).
        """
        if not self._revisions:
            return ""
        first = start.astimezone(PACIFIC).date()
        last = (end - datetime.timedelta(seconds=1)).astimezone(PACIFIC).date()
        return "".join(
            f"|{day}r{len(times)}"
            for (name, day), times in sorted(self._revisions.items())
            if name == queryname and first <= day <= last
        )

    def data_window(
        self, start: datetime.datetime, end: datetime.datetime
    ) -> tuple[datetime.datetime, datetime.datetime]:
        """
        @return: The part of [start, end) that has data.
        @raise OasisError: 1000 if none of it has.
        """
        first, last = self.available()
        lower = datetime.datetime(first.year, first.month, first.day, tzinfo=PACIFIC).astimezone(UTC)
        after = last + datetime.timedelta(days=1)
        upper = datetime.datetime(after.year, after.month, after.day, tzinfo=PACIFIC).astimezone(UTC)
        start, end = max(start, lower), min(end, upper)
        if start >= end:
            raise OasisError(1000)
        return start, end

    def single_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a SingleZip request.
        """
        if args.get("queryname") in (PUBLICATIONS_LOG, PUBLICATIONS_SCHEDULE):
            return self.publications(args)
        report = CATALOGUE.get(args.get("queryname", ""))
        if report is None:
            raise OasisError(1005)
        version = _version(args)
        start = parse_gmt(args.get("startdatetime"))
        end = parse_gmt(args.get("enddatetime"))
        if end <= start:
            raise OasisError(1002)
        market = args.get("market_run_id", "")
        if market not in report.markets:
            raise OasisError(1001)
        hours = (end - start).total_seconds() / 3600
        if hours > 31 * 24:
            raise OasisError(1004)
        if hours > report.max_hours:
            raise OasisError(1018)
        if len([n for n in args.get("node", "").split(",") if n]) > 10:
            raise OasisError(1017)
        start, end = self.data_window(start, end)
        rng = self._content_seed(url, report.queryname, start, end)
        created = _created(end, rng)
        csv_wanted = args.get("resultformat") == "6"
        members = self.members(report, market, version, start, end, rng, created, csv_wanted)
        return deterministic_zip(members, created)

    def group_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a GroupZip request: 1015 the first time a day is asked for.
        """
        group = GROUPS.get(args.get("groupid", ""))
        if group is None:
            raise OasisError(1016)
        version = _version(args)
        start = parse_gmt(args.get("startdatetime"))
        end = parse_gmt(args["enddatetime"]) if "enddatetime" in args else start + datetime.timedelta(days=1)
        if end <= start:
            raise OasisError(1002)
        if (end - start).total_seconds() > 31 * 24 * 3600:
            raise OasisError(1004)
        start, end = self.data_window(start, end)
        key = (args["groupid"], start, end, version)
        if key not in self._group_seen:
            self._group_seen.add(key)
            raise OasisError(1015)
        queryname, market = group
        rng = self._content_seed(url, queryname, start, end)
        created = _created(end, rng)
        members = self.members(CATALOGUE[queryname], market, version, start, end, rng, created, False)
        return deterministic_zip(members, created)

    def _content_seed(
        self, url: str, queryname: str, start: datetime.datetime, end: datetime.datetime
    ) -> random.Random:
        tag = self._revision_tag(queryname, start, end)
        return random.Random(hashlib.sha256(f"{self.seed}|{url}{tag}".encode()).digest())

    def publications(self, args: dict[str, str]) -> bytes:
        """
        Answer C{ATL_PUB}: the entries published in [start, end) and by
        now, oldest first; or C{ATL_PUB_SCHED}: when each report is
        published.
        """
        if self.broken_log:
            raise OasisError(1005)
        _version(args)
        start = parse_gmt(args.get("startdatetime"))
        end = parse_gmt(args.get("enddatetime"))
        if end <= start:
            raise OasisError(1002)
        if (end - start).total_seconds() > 31 * 24 * 3600:
            raise OasisError(1004)
        queryname = args["queryname"]
        market = args.get("market_run_id", "ALL")
        now = datetime.datetime.fromtimestamp(self.clock.seconds(), UTC)
        if queryname == PUBLICATIONS_SCHEDULE:
            columns, rows = SCHEDULE_COLUMNS, self.schedule_rows(market)
        else:
            columns, rows = PUBLICATION_COLUMNS, self.publication_rows(market, start, min(end, now))
        if not rows:
            raise OasisError(1000)
        created = now.replace(microsecond=0)
        stem = f"{_days(start, end)}_{queryname}"
        if args.get("resultformat") == "6":
            return deterministic_zip(
                [(f"{stem}_{created:%Y%m%d_%H_%M_%S}_v1.csv", _csv(columns, rows))], created
            )
        return deterministic_zip([(f"{stem}_v1.xml", _atlas_xml(queryname, columns, rows, created))], created)

    def _pairs(self, market: str) -> Iterator[tuple[SimReport, str]]:
        for report in CATALOGUE.values():
            for name in report.markets:
                if market in ("ALL", "", name):
                    yield report, name

    def publication_rows(
        self, market: str, start: datetime.datetime, end: datetime.datetime
    ) -> list[dict[str, object]]:
        """
        @return: The log's entries published in [start, end).
        """
        first, last = self.available()
        offset = datetime.timedelta(seconds=self.publish_offset)
        day = max(first, (start - offset).astimezone(PACIFIC).date() - datetime.timedelta(days=1))
        entries: list[_LogEntry] = []
        while day <= last and day <= (end - offset).astimezone(PACIFIC).date() + datetime.timedelta(days=1):
            moment = self.published_at(day)
            if start <= moment < end:
                entries.append((moment, day, "PUBLISHED", 1))
            day += datetime.timedelta(days=1)
        revised: dict[str, list[_LogEntry]] = {}
        for (queryname, day), times in self._revisions.items():
            for number, moment in enumerate(times, start=2):
                if start <= moment < end and first <= day <= last:
                    revised.setdefault(queryname, []).append((moment, day, "REVISED", number))
        rows = []
        for report, name in self._pairs(market):
            for moment, day, status, number in sorted(entries + revised.get(report.queryname, [])):
                rows.append(
                    {
                        "PUBLICATION_TIME_GMT": iso(moment),
                        "OPR_DT": day.isoformat(),
                        "OASIS_SECTION": SECTIONS[report.layout],
                        "REPORT_NAME": report.queryname,
                        "MARKET_RUN_ID": name,
                        "STATUS": status,
                        "ATLPUB_VERSION": number,
                        "DESCRIPTION": f"{report.queryname} {name} {day:%m/%d/%Y} "
                        + ("published" if number == 1 else f"revision {number - 1}"),
                    }
                )
        rows.sort(key=lambda row: str(row["PUBLICATION_TIME_GMT"]))
        return rows

    def schedule_rows(self, market: str) -> list[dict[str, object]]:
        """
        @return: The publication schedule: one daily entry per report and
            market, at the local time C{publish_offset} gives.
        """
        days, seconds = divmod(int(self.publish_offset), 86400)
        rows = []
        for report, name in self._pairs(market):
            rows.append(
                {
                    "OASIS_SECTION": SECTIONS[report.layout],
                    "REPORT_NAME": report.queryname,
                    "MARKET_RUN_ID": name,
                    "PUBLICATION_TYPE": "DAILY",
                    "PUBLICATION_TIME": f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}",
                    "TRADE_DAY_OFFSET": -days,
                    "TZ": "PPT",
                }
            )
        return rows

    def members(
        self,
        report: SimReport,
        market: str,
        version: int,
        start: datetime.datetime,
        end: datetime.datetime,
        rng: random.Random,
        created: datetime.datetime,
        csv_wanted: bool,
    ) -> list[tuple[str, bytes]]:
        """
        @return: (name, bytes) of each member of a data zip.
        """
        stem = f"{_days(start, end)}_{report.queryname}_{market}"
        columns, rows = self.rows(report, market, start, end, rng, version)
        if csv_wanted:
            return [(f"{stem}_{created:%Y%m%d_%H_%M_%S}_v{version}.csv", _csv(columns, rows))]
        if report.layout == "prices":
            by_component: dict[str, list[_Row]] = {}
            for row in rows:
                by_component.setdefault(str(row["LMP_TYPE"]), []).append(row)
            return [
                (
                    f"{stem}_{component}_v{version}.xml",
                    _xml(report, market, rows_of, created, "RESOURCE_NAME", "NODE"),
                )
                for component, rows_of in by_component.items()
            ]
        key = "RESOURCE_NAME" if report.layout == "items" else "TAC_AREA_NAME"
        return [(f"{stem}_v{version}.xml", _xml(report, market, rows, created, key, key))]

    def rows(
        self,
        report: SimReport,
        market: str,
        start: datetime.datetime,
        end: datetime.datetime,
        rng: random.Random,
        version: int,
    ) -> tuple[list[str], list[_Row]]:
        """
        @return: The column names and row dicts of a report's data.
        """
        spans = list(intervals(start, end, report.minutes))
        if report.layout == "prices":
            components = ["LMP", "MCC", "MCE", "MCL"] + (["MGHG"] if version > 1 else [])
            columns = [
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
            ]
            rows = []
            for index, node in enumerate(_node_names(self.nodes)):
                base = 25 + rng.random() * 30
                for span in spans:
                    energy = round(base + 10 * math.sin(span.hour / 24 * 2 * math.pi) + rng.gauss(0, 3), 5)
                    congestion = round(rng.gauss(0, 1.5), 5)
                    loss = round(energy * rng.uniform(-0.04, 0.04), 5)
                    ghg = round(rng.uniform(0, 0.5), 5)
                    values = {
                        "MCE": energy,
                        "MCC": congestion,
                        "MCL": loss,
                        "MGHG": ghg,
                        "LMP": round(energy + congestion + loss + (ghg if version > 1 else 0), 5),
                    }
                    for component in components:
                        rows.append(
                            {
                                "INTERVALSTARTTIME_GMT": iso(span.start),
                                "INTERVALENDTIME_GMT": iso(span.end),
                                "OPR_DT": span.day.isoformat(),
                                "OPR_HR": span.hour,
                                "OPR_INTERVAL": span.number,
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
            return columns, rows
        if report.layout == "load":
            columns = [
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
            ]
            rows = []
            for index, area in enumerate(TAC_AREAS):
                base = 4000 + rng.random() * 20000
                for span in spans:
                    rows.append(
                        {
                            "INTERVALSTARTTIME_GMT": iso(span.start),
                            "INTERVALENDTIME_GMT": iso(span.end),
                            "LOAD_TYPE": 0,
                            "OPR_DT": span.day.isoformat(),
                            "OPR_HR": span.hour,
                            "OPR_INTERVAL": span.number,
                            "MARKET_RUN_ID": market,
                            "TAC_AREA_NAME": area,
                            "LABEL": "Demand Forecast",
                            "XML_DATA_ITEM": "SYS_FCST_DA_MW",
                            "POS": 3.8,
                            "MW": round(base * (1 + 0.2 * math.sin(span.hour / 24 * 2 * math.pi)), 2),
                            "EXECUTION_TYPE": market,
                            "GROUP": index + 1,
                        }
                    )
            return columns, rows
        columns = [
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
        ]
        rows = []
        for index, item in enumerate(report.items):
            for span in spans:
                rows.append(
                    {
                        "INTERVALSTARTTIME_GMT": iso(span.start),
                        "INTERVALENDTIME_GMT": iso(span.end),
                        "OPR_DT": span.day.isoformat(),
                        "OPR_HR": span.hour,
                        "OPR_INTERVAL": span.number,
                        "RESOURCE_NAME": "Caiso_Totals",
                        "MARKET_RUN_ID": market,
                        "XML_DATA_ITEM": item,
                        "MW": round(rng.uniform(0, 30000), 2),
                        "GROUP": index + 1,
                    }
                )
        return columns, rows

    def fate(self, url: str) -> str:
        """
        @return: The fault this request meets (C{""} for none): the same for
            the same URL and attempt number under the same seed.
        """
        attempt = self._attempts[url] = self._attempts.get(url, 0) + 1
        roll = random.Random(f"{self.seed}|{url}|{attempt}").random()
        for name in ("error", "reset", "truncate", "trickle"):
            rate = getattr(self.faults, name + "_rate")
            if roll < rate:
                return name
            roll -= rate
        return ""

    def throttled(self) -> bool:
        """
        @return: Whether a request starting now comes too soon after the
            last accepted one (which it then does not replace).
        """
        now = self.clock.seconds()
        if self._last_start is not None and now - self._last_start < self.min_interval:
            return True
        self._last_start = now
        return False


class _QuietSite(Site):
    """
    A site that keeps no access log: L{OasisSimulator.requests} records
    every request, and a line per request would drown harbour's own log.
    """

    def log(self, request: http.Request) -> None:
        """
        Log nothing.
        """


class _Endpoint(Resource):
    """
    One servlet (SingleZip or GroupZip) of the simulator.
    """

    isLeaf = True

    def __init__(self, simulator: OasisSimulator, answer: Callable[[dict[str, str], str], bytes]) -> None:
        super().__init__()
        self.simulator = simulator
        self.answer = answer

    def render_GET(self, request: Request) -> bytes | int:
        simulator = self.simulator
        args = {
            k.decode("utf-8", "replace"): v[-1].decode("utf-8", "replace") for k, v in request.args.items()
        }
        path = request.path.decode("ascii", "replace")
        url = path + "?" + urlencode(sorted(args.items()))
        record: list[Any] = [simulator.clock.seconds(), path, args, None]
        simulator.requests.append(record)
        if simulator.throttled():
            record[3] = "throttled"
            if simulator.throttle_page:
                request.setHeader(b"content-type", b"text/html")
                return THROTTLE_PAGE
            request.setResponseCode(429)
            request.setHeader(b"retry-after", str(math.ceil(simulator.min_interval)).encode())
            return b"Too Many Requests"
        fate = simulator.fate(url)
        if fate == "error":
            record[3] = "503"
            request.setResponseCode(503)
            request.setHeader(b"retry-after", str(math.ceil(simulator.faults.retry_after)).encode())
            return b"Service Unavailable"
        try:
            body = self.answer(args, url)
            record[3] = "data"
        except OasisError as e:
            record[3] = e.code
            first = parse_gmt(args["startdatetime"]) if _valid_gmt(args.get("startdatetime")) else None
            dates = f"{first.astimezone(PACIFIC):%Y%m%d}_{first.astimezone(PACIFIC):%Y%m%d}_" if first else ""
            asked = args.get("queryname") or args.get("groupid") or "UNKNOWN"
            name = f"{dates}{asked}_v{args.get('version', '1')}.xml"
            stamp = datetime.datetime(2026, 1, 1, tzinfo=UTC)
            body = deterministic_zip([(name, error_document(e.code, stamp))], stamp)
        request.setHeader(b"content-type", b"application/x-zip-compressed")
        if fate == "truncate":
            body = body[: len(body) // 2]
            record[3] = "truncated"
        request.setHeader(b"content-length", str(len(body)).encode())
        latency = simulator.faults.latency
        if fate == "reset":
            record[3] = "reset"
            _Later(simulator.clock, request).call(latency, _reset, request, body)
        elif fate == "trickle":
            record[3] = "trickle"
            later = _Later(simulator.clock, request)
            later.call(latency, _trickle, later, request, body, simulator.faults.trickle_bytes)
        elif latency > 0:
            _Later(simulator.clock, request).call(latency, _finish, request, body)
        else:
            return body
        return NOT_DONE_YET


class _Later:
    """
    The next delayed step of one answer, cancelled if the client goes away
    (a server should not keep working for a closed connection).
    """

    def __init__(self, clock: IReactorTime, request: Request) -> None:
        self.clock = clock
        self.pending: IDelayedCall | None = None
        request.notifyFinish().addErrback(lambda reason: self.cancel())

    def call(self, delay: float, f: Callable[..., object], *args: object) -> None:
        self.pending = self.clock.callLater(delay, f, *args)

    def cancel(self) -> None:
        if self.pending is not None and self.pending.active():
            self.pending.cancel()


def _finish(request: Request, body: bytes) -> None:
    request.write(body)
    request.finish()


def _reset(request: Request, body: bytes) -> None:
    request.write(body[: len(body) // 2])
    # The simulator listens on TCP only.
    cast(ITCPTransport, request.channel.transport).abortConnection()


def _trickle(later: _Later, request: Request, body: bytes, size: int) -> None:
    if len(body) <= size:
        _finish(request, body)
        return
    request.write(body[:size])
    later.call(0.01, _trickle, later, request, body[size:], size)


def _version(args: dict[str, str]) -> int:
    try:
        version = int(args.get("version", ""))
    except ValueError:
        raise OasisError(1020) from None
    if version < 1:
        raise OasisError(1020)
    return version


def _valid_gmt(value: str | None) -> bool:
    try:
        parse_gmt(value)
    except OasisError:
        return False
    return True


def _days(start: datetime.datetime, end: datetime.datetime) -> str:
    """
    @return: The first and last trading days of [start, end), as OASIS
        names files: C{20251102_20251103}.
    """
    last = end - datetime.timedelta(minutes=1)
    return f"{start.astimezone(PACIFIC):%Y%m%d}_{last.astimezone(PACIFIC):%Y%m%d}"


def _created(end: datetime.datetime, rng: random.Random) -> datetime.datetime:
    """
    A plausible creation time: some hours after the window closed.
    """
    return (end + datetime.timedelta(seconds=3600 * 6 + int(rng.random() * 3600))).replace(microsecond=0)


def _node_names(count: int) -> list[str]:
    names = list(HUBS[:count])
    names += [f"NODE{i:04d}_7_N001" for i in range(max(0, count - len(HUBS)))]
    return names


def _envelope(payload: str, created: datetime.datetime) -> bytes:
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


def _csv(columns: list[str], rows: list[_Row]) -> bytes:
    """
    @return: C{rows} as OASIS's C{resultformat=6} CSV.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    return out.getvalue().encode()


def _xml(
    report: SimReport,
    market: str,
    rows: list[_Row],
    created: datetime.datetime,
    resource_key: str,
    row_key: str,
) -> bytes:
    """
    @return: Rows in the OASISReport layout: a REPORT_ITEM per resource and
        data item, with its header and one REPORT_DATA per interval.
    """
    minutes = report.minutes
    out = io.StringIO()
    groups: dict[tuple[object, object], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row[row_key], row["XML_DATA_ITEM"]), []).append(row)
    for (resource, item), items in groups.items():
        out.write("<REPORT_ITEM>\n<REPORT_HEADER>\n<SYSTEM>OASIS</SYSTEM>\n<TZ>PPT</TZ>\n")
        out.write(f"<REPORT>{report.queryname}</REPORT>\n<MKT_TYPE>{market}</MKT_TYPE>\n<UOM>MW</UOM>\n")
        out.write(f"<INTERVAL>ENDING</INTERVAL>\n<SEC_PER_INTERVAL>{minutes * 60}</SEC_PER_INTERVAL>\n")
        out.write("</REPORT_HEADER>\n")
        for row in items:
            number = row["OPR_INTERVAL"] or row["OPR_HR"]
            out.write(
                f"<REPORT_DATA>\n<DATA_ITEM>{item}</DATA_ITEM>\n"
                f"<{resource_key}>{escape(str(resource))}</{resource_key}>\n"
                f"<OPR_DATE>{row['OPR_DT']}</OPR_DATE>\n<INTERVAL_NUM>{number}</INTERVAL_NUM>\n"
                f"<INTERVAL_START_GMT>{row['INTERVALSTARTTIME_GMT']}</INTERVAL_START_GMT>\n"
                f"<INTERVAL_END_GMT>{row['INTERVALENDTIME_GMT']}</INTERVAL_END_GMT>\n"
                f"<VALUE>{row['MW']}</VALUE>\n</REPORT_DATA>\n"
            )
        out.write("</REPORT_ITEM>\n")
    return _envelope(out.getvalue(), created)


def _atlas_xml(queryname: str, columns: list[str], rows: list[_Row], created: datetime.datetime) -> bytes:
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
    return _envelope(out.getvalue(), created)


class Options(usage.Options):
    """
    The options of C{twistd oasis-sim}.
    """

    optParameters = [
        ["port", "p", 8700, "TCP port to listen on.", int],
        ["interface", None, "127.0.0.1", "Address to listen on."],
        ["seed", "s", 0, "Seed of the generated data and faults.", int],
        ["min-interval", None, 5.0, "Seconds between accepted requests (OASIS: about 5).", float],
        ["faults", None, "", "Fault knobs, such as latency=0.1,error_rate=0.1,reset_rate=0.05."],
        ["nodes", None, 3, "Price nodes per answer (the size of the data).", int],
        ["first-day", None, "2020-01-01", "First trading day with data."],
        ["last-day", None, None, "Last trading day with data (default: the last one published)."],
        [
            "publish-offset",
            None,
            0.0,
            "Hours after its start at which a trading day is published (-11: 13:00 the day before).",
            float,
        ],
    ]
    optFlags = [
        ["throttle-page", None, "Answer throttled requests with OASIS's 200 HTML page."],
        ["broken-log", None, "Answer ATL_PUB and ATL_PUB_SCHED with an error, as a source without them."],
    ]

    def postOptions(self) -> None:
        """
        Parse the fault spec and the days.
        """
        try:
            self["faults"] = Faults.parse(self["faults"])
            self["first-day"] = datetime.date.fromisoformat(self["first-day"])
            if self["last-day"]:
                self["last-day"] = datetime.date.fromisoformat(self["last-day"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


@attr.s(eq=False)
class SimulatorService(Service):
    """
    Serves a simulator on a Twisted endpoint and logs its base URL.
    """

    log = Logger()

    reactor: IReactorTCP = attr.ib()
    endpoint: str = attr.ib()
    simulator: OasisSimulator = attr.ib()
    _port: IListeningPort | None = attr.ib(default=None, init=False)

    def privilegedStartService(self) -> None:
        """
        Listen now (once), so that a port in use stops start-up.
        """
        super().privilegedStartService()
        if self._port is not None:
            return
        failures: list[Failure] = []
        serverFromString(self.reactor, self.endpoint).listen(self.simulator.site()).addCallbacks(
            self._listening, failures.append
        )
        if failures:
            failures[0].raiseException()

    def _listening(self, port: IListeningPort) -> None:
        self._port = port
        self.log.info("OASIS simulator at {url}", url=self.base_url())

    def base_url(self) -> str:
        """
        The C{base_url} of the simulated OASIS API (once listening).
        """
        assert self._port is not None, "base_url() before listening"
        address = self._port.getHost()
        assert isinstance(address, (IPv4Address, IPv6Address))
        return f"http://{address.host}:{address.port}/oasisapi"

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        super().stopService()
        if self._port is not None:
            return self._port.stopListening()
        return None


def makeService(options: Options) -> SimulatorService:
    """
    The C{twistd oasis-sim} entry point.
    """
    from twisted.internet import reactor

    simulator = OasisSimulator(
        reactor,
        seed=options["seed"],
        nodes=options["nodes"],
        min_interval=options["min-interval"],
        throttle_page=options["throttle-page"],
        faults=options["faults"],
        first_day=options["first-day"],
        last_day=options["last-day"],
        publish_offset=options["publish-offset"] * 3600,
        broken_log=options["broken-log"],
    )
    endpoint = f"tcp:{options['port']}:interface={options['interface']}"
    return SimulatorService(reactor, endpoint, simulator)
