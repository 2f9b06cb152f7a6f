"""
The simulator's C{twisted.web} side: L{OasisSimulator}, the C{/oasisapi}
resource, and the endpoints that turn requests into answers, throttling and
faults.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode

import attr
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from harbour.testing.simulator.answers import Answers
from harbour.testing.simulator.documents import THROTTLE_PAGE, Row, error_zip
from harbour.testing.simulator.faults import ENDLESS_MOST, FLOOD_LINES, Fates, Faults, Throttle
from harbour.testing.simulator.formats import UTC, OasisError, Span
from harbour.testing.simulator.publications import PublicationLog, PublicationSchedule
from harbour.testing.simulator.reports import SimReport, report_rows


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
    _schedule: PublicationSchedule = attr.ib(init=False, repr=False)
    _log: PublicationLog = attr.ib(init=False, repr=False)
    _answers: Answers = attr.ib(init=False, repr=False)
    _fates: Fates = attr.ib(factory=Fates, init=False, repr=False)
    _throttle: Throttle = attr.ib(factory=Throttle, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)
        # The parts read this simulator's settings as they answer, so that
        # a change (faults, broken_log) applies to the next request.
        self._schedule = PublicationSchedule(self)
        self._log = PublicationLog(self, self._schedule)
        self._answers = Answers(self, self._schedule, self._log)
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
        return self._schedule.available()

    def last_published(self) -> datetime.date:
        """
        @return: The newest trading day published by now.
        """
        return self._schedule.last_published()

    def published_at(self, day: datetime.date) -> datetime.datetime:
        """
        @return: When trading day C{day} is (or was) published.
        """
        return self._schedule.published_at(day)

    def data_window(
        self, start: datetime.datetime, end: datetime.datetime
    ) -> tuple[datetime.datetime, datetime.datetime]:
        """
        @return: The part of [start, end) that has data.
        @raise OasisError: 1000 if none of it has.
        """
        return self._schedule.data_window(start, end)

    def revise(self, queryname: str, day: datetime.date) -> int:
        """
        Revise trading day C{day} of report C{queryname} (every market) now:
        every answer covering it changes, and the log gets a C{REVISED}
        entry.

        @param queryname: One of the reports the log covers, those with
            generators of their own (L{CATALOGUE}).
        @return: The day's revision count.
        @raise ValueError: for another report: the log would not say that
            its data changed.
        """
        return self._log.revise(queryname, day)

    def single_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a SingleZip request.

        @raise OasisError: if OASIS would refuse it.
        """
        return self._answers.single_zip(args, url)

    def group_zip(self, args: dict[str, str], url: str) -> bytes:
        """
        Answer a GroupZip request: 1015 the first time a window is asked for.

        @raise OasisError: if OASIS would refuse it.
        """
        return self._answers.group_zip(args, url)

    def publications(self, args: dict[str, str]) -> bytes:
        """
        Answer C{ATL_PUB} or C{ATL_PUB_SCHED}.

        @raise OasisError: if OASIS would refuse it.
        """
        return self._log.answer(args)

    def publication_rows(self, market: str, start: datetime.datetime, end: datetime.datetime) -> list[Row]:
        """
        @return: The log's entries published in [start, end).
        """
        return self._log.publication_rows(market, start, end)

    def schedule_rows(self, market: str) -> list[Row]:
        """
        @return: The publication schedule: one daily entry per report and
            market, at the local time C{publish_offset} gives.
        """
        return self._log.schedule_rows(market)

    def members(
        self, report: SimReport, market: str, span: Span, execution: str | None = None
    ) -> list[tuple[str, bytes]]:
        """
        @param execution: The C{execution_type} asked for, if any.
        @return: (name, bytes) of each member of a data zip.
        """
        return self._answers.members(report, market, span, execution)

    def rows(
        self,
        report: SimReport,
        market: str,
        start: datetime.datetime,
        end: datetime.datetime,
        version: int,
        execution: str | None = None,
    ) -> tuple[list[str], list[Row]]:
        """
        @param execution: The C{execution_type} asked for, if any.
        @return: The column names and row dicts of a report's data, as
            every answer holding them has them.
        """
        return report_rows(report, market, start, end, self._answers.draws(), version, self.nodes, execution)

    def fate(self, url: str) -> str:
        """
        @return: The fault this request meets (C{""} for none): the same for
            the same URL and attempt number under the same seed.
        """
        return self._fates.fate(url, self.seed, self.faults)

    def throttled(self) -> bool:
        """
        @return: Whether a request starting now comes too soon after the
            last accepted one (which it then does not replace).
        """
        return self._throttle.throttled(self.clock, self.min_interval)


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
        """
        Answer as OASIS would, unless throttled or a fault intervenes.
        """
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
            # As OASIS answers (samples/http_429_acceptable_use_policy.html):
            # its Acceptable Use Policy page, with 429 and no Retry-After;
            # or, as some clients report, with 200.
            if not simulator.throttle_page:
                request.setResponseCode(429)
            request.setHeader(b"content-type", b"text/html")
            return THROTTLE_PAGE
        fate = simulator.fate(url)
        if fate in ("error", "endless"):
            record[3] = "503" if fate == "error" else "endless"
            request.setResponseCode(503)
            wait = simulator.faults.retry_after
            # A hostile server may say "inf"; math.ceil cannot.
            request.setHeader(
                b"retry-after", (str(math.ceil(wait)) if math.isfinite(wait) else "inf").encode()
            )
            if fate == "error":
                return b"Service Unavailable"
            later = _Later(simulator.clock, request)
            later.call(0, _endless, later, request, record, 0)
            return NOT_DONE_YET
        if fate == "flood":
            record[3] = "flood"
            for n in range(FLOOD_LINES):
                request.responseHeaders.addRawHeader(b"x-flood", b"%04d" % n + b"." * 56)
        try:
            body = self.answer(args, url)
            record[3] = record[3] or "data"
        except OasisError as e:
            record[3] = record[3] or e.code
            body = error_zip(e.code, args, datetime.datetime.fromtimestamp(record[0], UTC))
        return self._send(request, record, fate, body)

    def _send(self, request: Request, record: list[Any], fate: str, body: bytes) -> bytes | int:
        """
        Send C{body} as its fate says: whole, cut short, reset, trickled or
        late.
        """
        simulator = self.simulator
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
        """
        Call C{f(*args)} after C{delay} seconds.
        """
        self.pending = self.clock.callLater(delay, f, *args)

    def cancel(self) -> None:
        """
        Cancel the pending step, if any.
        """
        if self.pending is not None and self.pending.active():
            self.pending.cancel()


def _finish(request: Request, body: bytes) -> None:
    """
    Send the rest of the answer.
    """
    request.write(body)
    request.finish()


def _reset(request: Request, body: bytes) -> None:
    """
    Send half the answer, then drop the connection.
    """
    request.write(body[: len(body) // 2])
    # The simulator listens on TCP only.
    cast(ITCPTransport, request.channel.transport).abortConnection()


def _trickle(later: _Later, request: Request, body: bytes, size: int) -> None:
    """
    Send C{size} bytes of the answer now and the rest later, step by step.
    """
    if len(body) <= size:
        _finish(request, body)
        return
    request.write(body[:size])
    later.call(0.01, _trickle, later, request, body[size:], size)


def _endless(later: _Later, request: Request, record: list[Any], sent: int) -> None:
    """
    Send 64 KiB more of a body that goes on until the client goes away (or,
    for a client that reads on, until L{ENDLESS_MOST} bytes are sent); one
    still there after 1 MiB is recorded as reading on.
    """
    if sent >= ENDLESS_MOST:
        request.finish()
        return
    if sent >= 1 << 20:
        record[3] = "endless, read on"
    request.write(b"x" * 65536)
    later.call(0.01, _endless, later, request, record, sent + 65536)
