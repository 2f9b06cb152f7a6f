"""
Tests for L{harbour.testing.simulator}, over real HTTP on 127.0.0.1: its answers are
checked with C{zipfile}, an XML parser and harbour's own classifier.
"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import treq
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import ResponseFailed
from twisted.web.iweb import IResponse
from twisted.web.resource import getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from harbour.oasis.classify import BAD_REQUEST, DATA, EMPTY, RETRY_LATER, classify
from harbour.testing.simulator import Faults, OasisSimulator, intervals
from harbour.testing.simulator.faults import FLOOD_LINES

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
DAY = "startdatetime=20251102T07:00-0000&enddatetime=20251103T08:00-0000"
LMP = f"SingleZip?queryname=PRC_LMP&{DAY}&market_run_id=DAM&version=1"
SPRING_DAY = "startdatetime=20250309T08:00-0000&enddatetime=20250310T07:00-0000"
#: The hours ending of the change days in order, as OASIS numbers them
#: (spec section 11): the autumn day's repeated hour is 25, the spring
#: day has no 3.
AUTUMN_HOURS = [1, 2, 25, *range(3, 25)]
SPRING_HOURS = [1, 2, *range(4, 25)]


class SimulatorHTTPTests(TestCase):
    """
    A simulator listening on a loopback port.
    """

    def start(self, clock: IReactorTime | None = None, **kwargs: Any) -> OasisSimulator:
        from twisted.internet import reactor

        kwargs.setdefault("last_day", datetime.date(2025, 12, 31))
        simulator = OasisSimulator(clock or reactor, **kwargs)
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, simulator.site(), interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.base = f"http://127.0.0.1:{address.port}/oasisapi/"
        return simulator

    async def fetch(self, path: str) -> tuple[IResponse, bytes]:
        """
        @return: (response, body bytes).
        """
        response = await treq.get(self.base + path, persistent=False)
        return response, await treq.content(response)

    async def test_errorCodes(self) -> None:
        """
        Each kind of bad request gets HTTP 200 and a zip whose one XML
        member carries the code OASIS would send.
        """
        self.start()
        cases = [
            ("SingleZip?queryname=NOPE&" + DAY + "&version=1", 1005),
            (f"SingleZip?queryname=PRC_LMP&{DAY}&market_run_id=DAM", 1020),
            (
                "SingleZip?queryname=PRC_LMP&startdatetime=2025-11-02&enddatetime=x&market_run_id=DAM&version=1",
                1002,
            ),
            (f"SingleZip?queryname=PRC_LMP&{DAY}&market_run_id=XYZ&version=1", 1001),
            (
                (
                    "SingleZip?queryname=PRC_LMP&startdatetime=20251001T07:00-0000&enddatetime=20251103T08:00-0000"
                    "&market_run_id=DAM&version=1"
                ),
                1004,
            ),
            (f"SingleZip?queryname=PRC_INTVL_LMP&{DAY}&market_run_id=RTM&version=1&grp_type=ALL", 1018),
            (LMP + "&node=" + ",".join(f"N{i}" for i in range(11)), 1017),
            (
                (
                    "SingleZip?queryname=PRC_LMP&startdatetime=20300101T08:00-0000&enddatetime=20300102T08:00-0000"
                    "&market_run_id=DAM&version=1"
                ),
                1000,
            ),
            (f"GroupZip?groupid=NOPE&{DAY}&version=1", 1016),
        ]
        for path, code in cases:
            response, body = await self.fetch(path)
            self.assertEqual(response.code, 200, path)
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                [name] = archive.namelist()
                self.assertTrue(name.endswith(".xml"), name)
                root = ElementTree.fromstring(archive.read(name))
            found = root.find(".//{http://www.caiso.com/soa/OASISReport_v1.xsd}ERR_CODE")
            assert found is not None and found.text is not None, path
            self.assertEqual(int(found.text), code, path)
            self.assertEqual(classify(body).code, code)
        self.assertEqual(classify((await self.fetch(cases[-2][0]))[1]).kind, EMPTY)
        self.assertEqual(classify((await self.fetch(cases[0][0]))[1]).kind, BAD_REQUEST)

    async def test_csvLikeTheRealOne(self) -> None:
        """
        A CSV answer has the real sample's columns and member-name form,
        and 25 hours of rows per node and component on the autumn day, in
        order labelled 1, 2, 25 (the repeated hour), 3 ... 24; the spring
        day's 23 have no 3.
        """
        simulator = self.start(nodes=2)
        response, body = await self.fetch(LMP + "&resultformat=6")
        self.assertEqual(classify(body).kind, DATA)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            [name] = archive.namelist()
            rows = list(csv.reader(io.StringIO(archive.read(name).decode())))
        real = (SAMPLES / "csv_PRC_LMP_DAM_v1_20200101_hubs.csv").read_text().splitlines()[0].split(",")
        self.assertEqual(rows[0], real)
        self.assertRegex(name, r"^20251102_20251102_PRC_LMP_DAM_\d{8}_\d\d_\d\d_\d\d_v1\.csv$")
        self.assertEqual(len(rows) - 1, 25 * 2 * 4)
        self.assertEqual(simulator.requests[-1][3], "data")
        spring = LMP.replace(DAY, SPRING_DAY) + "&resultformat=6"
        for path, hours in [(LMP + "&resultformat=6", AUTUMN_HOURS), (spring, SPRING_HOURS)]:
            with zipfile.ZipFile(io.BytesIO((await self.fetch(path))[1])) as archive:
                [name] = archive.namelist()
                records = list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            for node in ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND"):
                for component in ("LMP", "MCC", "MCE", "MCL"):
                    ours = [r for r in records if r["NODE"] == node and r["LMP_TYPE"] == component]
                    self.assertEqual([int(r["OPR_HR"]) for r in ours], hours, (path, node, component))

    async def test_xmlLayout(self) -> None:
        """
        An XML price answer has one well-formed OASISReport member per
        price component.
        """
        self.start()
        response, body = await self.fetch(LMP)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            self.assertEqual([n.split("_")[-2] for n in names], ["LMP", "MCC", "MCE", "MCL"])
            for name in names:
                root = ElementTree.fromstring(archive.read(name))
                self.assertEqual(root.tag, "{http://www.caiso.com/soa/OASISReport_v1.xsd}OASISReport")
                self.assertTrue(root.findall(".//{http://www.caiso.com/soa/OASISReport_v1.xsd}REPORT_DATA"))
        self.assertEqual(classify(body).kind, DATA)

    async def test_deterministic(self) -> None:
        """
        The same URL gets the same bytes; another seed gets other bytes.
        """
        self.start(seed=7)
        first = (await self.fetch(LMP))[1]
        self.assertEqual((await self.fetch(LMP))[1], first)
        self.start(seed=8)
        self.assertNotEqual((await self.fetch(LMP))[1], first)

    async def test_sizeFollowsNodes(self) -> None:
        """
        More nodes make a larger answer.
        """
        self.start(nodes=3)
        small = (await self.fetch(LMP + "&resultformat=6"))[1]
        self.start(nodes=30)
        large = (await self.fetch(LMP + "&resultformat=6"))[1]
        self.assertGreater(len(large), 5 * len(small))

    async def test_groupZipInPreparation(self) -> None:
        """
        A GroupZip day answers 1015 the first time, data after.
        """
        self.start()
        path = f"GroupZip?groupid=DAM_LMP_GRP&{DAY}&version=1"
        first = classify((await self.fetch(path))[1])
        self.assertEqual((first.kind, first.code), (RETRY_LATER, 1015))
        self.assertEqual(classify((await self.fetch(path))[1]).kind, DATA)

    async def test_politeness(self) -> None:
        """
        A request less than C{min_interval} after the last accepted one gets
        what OASIS sends then (its recorded answer): 429, its Acceptable
        Use Policy page as HTML, and no C{Retry-After}; after the interval
        it is served.
        """
        clock = Clock()
        clock.advance(1_000_000)
        self.start(clock=clock, min_interval=5.0)
        self.assertEqual((await self.fetch(LMP))[0].code, 200)
        clock.advance(4.9)
        response, body = await self.fetch(LMP)
        self.assertEqual(response.code, 429)
        self.assertEqual(body, (SAMPLES / "http_429_acceptable_use_policy.html").read_bytes())
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"text/html"])
        self.assertIsNone(response.headers.getRawHeaders(b"retry-after"))
        clock.advance(0.2)
        self.assertEqual((await self.fetch(LMP))[0].code, 200)

    async def test_throttlePage(self) -> None:
        """
        With C{throttle_page}, a throttled request gets OASIS's HTML page
        with HTTP 200, which the classifier recognises.
        """
        clock = Clock()
        self.start(clock=clock, min_interval=5.0, throttle_page=True)
        await self.fetch(LMP)
        response, body = await self.fetch(LMP)
        self.assertEqual(response.code, 200)
        self.assertEqual(classify(body).kind, RETRY_LATER)

    async def test_serverError(self) -> None:
        """
        The 5xx fault answers 503 with the configured C{Retry-After}.
        """
        self.start(faults=Faults(error_rate=1.0, retry_after=7))
        response, body = await self.fetch(LMP)
        self.assertEqual(response.code, 503)
        self.assertEqual(response.headers.getRawHeaders(b"retry-after"), [b"7"])

    async def test_truncated(self) -> None:
        """
        The truncation fault sends a complete HTTP answer whose zip is cut.
        """
        self.start(faults=Faults(truncate_rate=1.0))
        response, body = await self.fetch(LMP)
        self.assertEqual(response.code, 200)
        self.assertEqual(classify(body).kind, RETRY_LATER)

    async def test_reset(self) -> None:
        """
        The reset fault drops the connection in the middle of the body.
        """
        self.start(faults=Faults(reset_rate=1.0))
        with self.assertRaises(ResponseFailed):
            await self.fetch(LMP)

    async def test_trickle(self) -> None:
        """
        The trickle fault sends the whole answer, slowly, in small pieces.
        """
        self.start(faults=Faults(trickle_rate=1.0, trickle_bytes=256))
        response, body = await self.fetch(LMP + "&resultformat=6")
        self.assertEqual(classify(body).kind, DATA)

    async def test_flood(self) -> None:
        """
        The flood fault sends the answer after a head of over 64 KiB, made
        of extra header lines.
        """
        simulator = self.start(faults=Faults(flood_rate=1.0))
        response, body = await self.fetch(LMP + "&resultformat=6")
        lines = response.headers.getRawHeaders(b"x-flood")
        self.assertEqual(len(lines), FLOOD_LINES)
        self.assertGreater(sum(len(b"x-flood: \r\n") + len(line) for line in lines), 64 << 10)
        self.assertEqual(classify(body).kind, DATA)
        self.assertEqual(simulator.requests[0][3], "flood")

    async def test_faultsRepeatable(self) -> None:
        """
        Fault fates depend on the URL and attempt: a retried request meets
        the same sequence of fates under the same seed.
        """
        fates = []
        for ignored in range(2):
            simulator = self.start(seed=3, faults=Faults(error_rate=0.5))
            for _attempt in range(6):
                await self.fetch(LMP)
            fates.append([r[3] for r in simulator.requests])
        self.assertEqual(fates[0], fates[1])
        self.assertIn("503", fates[0])
        self.assertIn("data", fates[0])


class RequestAt(DummyRequest):
    """
    A L{DummyRequest} with the C{path} a real request has.
    """

    def __init__(self, path: bytes) -> None:
        super().__init__(path.split(b"/")[1:])
        self.path = path


class EndlessTests(SynchronousTestCase):
    """
    The endless fault, on a request of the simulator's own.
    """

    def test_endless(self) -> None:
        """
        The endless fault answers 503 with the configured C{Retry-After}
        and a body that goes on, 64 KiB every 10 ms, until the client goes
        away, recorded as reading on once past 1 MiB; then the simulator
        stops.
        """
        clock = Clock()
        simulator = OasisSimulator(
            clock, faults=Faults(endless_rate=1.0, retry_after=3), last_day=datetime.date(2025, 12, 31)
        )
        request = RequestAt(b"/oasisapi/" + LMP.partition("?")[0].encode())
        request.args = {k.encode(): [v.encode()] for k, v in parse_qsl(LMP.partition("?")[2])}
        resource = getChildForRequest(simulator.site().resource, request)
        self.assertEqual(resource.render(request), NOT_DONE_YET)
        clock.advance(0)
        clock.advance(0.01)
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"retry-after"), [b"3"])
        self.assertEqual(len(b"".join(request.written)), 2 * 65536)
        self.assertEqual(simulator.requests[0][3], "endless")
        # 1 MiB sent by the 16th step; the 17th finds the client still there.
        for ignored in range(14):
            clock.advance(0.01)
        self.assertEqual(simulator.requests[0][3], "endless")
        clock.advance(0.01)
        self.assertEqual(simulator.requests[0][3], "endless, read on")
        request.processingFailed(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(request.finished)


class IntervalTests(SynchronousTestCase):
    """
    Tests for the simulator's interval numbering.
    """

    def test_fiveMinute(self) -> None:
        """
        Five-minute intervals are numbered 1 to 12 within their hour.
        """
        start = datetime.datetime(2025, 1, 15, 8, tzinfo=datetime.UTC)
        spans = list(intervals(start, start + datetime.timedelta(hours=1), 5))
        self.assertEqual([s.number for s in spans], list(range(1, 13)))
        self.assertEqual({s.hour for s in spans}, {1})

    def test_changeDays(self) -> None:
        """
        On the change days hours are numbered as OASIS numbers them: the
        spring day skips hour 3, the autumn day's repeated hour is 25, as
        in the real sample of that day (09:00Z is 25, 10:00Z is 3); the
        intervals of an hour are numbered within it.
        """
        autumn = datetime.datetime(2025, 11, 2, 7, tzinfo=datetime.UTC)
        spans = list(intervals(autumn, autumn + datetime.timedelta(hours=25), 60))
        self.assertEqual([s.hour for s in spans], AUTUMN_HOURS)
        self.assertEqual({s.day for s in spans}, {datetime.date(2025, 11, 2)})
        with (SAMPLES / "csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv").open() as sample:
            real = {row["INTERVALSTARTTIME_GMT"]: int(row["OPR_HR"]) for row in csv.DictReader(sample)}
        ours = {span.start.strftime("%Y-%m-%dT%H:%M:%S-00:00"): span.hour for span in spans}
        self.assertEqual({start: ours[start] for start in real}, real)
        spring = datetime.datetime(2025, 3, 9, 8, tzinfo=datetime.UTC)
        spans = list(intervals(spring, spring + datetime.timedelta(hours=23), 60))
        self.assertEqual([s.hour for s in spans], SPRING_HOURS)
        repeated = datetime.datetime(2025, 11, 2, 9, tzinfo=datetime.UTC)
        spans = list(intervals(repeated, repeated + datetime.timedelta(hours=2), 5))
        self.assertEqual(
            [(s.hour, s.number) for s in spans],
            [(25, n) for n in range(1, 13)] + [(3, n) for n in range(1, 13)],
        )


class FaultSpecTests(SynchronousTestCase):
    """
    Tests for L{Faults.parse}.
    """

    def test_parse(self) -> None:
        """
        A spec names knobs and values; unknown knobs are refused.
        """
        self.assertEqual(
            Faults.parse("latency=0.5, error_rate=0.1,trickle_bytes=64"),
            Faults(latency=0.5, error_rate=0.1, trickle_bytes=64),
        )
        self.assertRaises(ValueError, Faults.parse, "explode=1")
