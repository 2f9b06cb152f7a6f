"""
Tests for L{harbour.oasis.publications} (reading the publications log and
schedule) and for the manifest service following them: the simulator's
log over L{treq.testing.StubTreq}, a real redis-server, and a L{Clock}.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.bus import Bus
from harbour.services.manifest import OVERLAP, ManifestService
from harbour.store.politeness import MemoryLimiter
from harbour.oasis.publications import LogUnreadable, Publication, parse_log, parse_schedule
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, to_payload
from harbour.testing.simulator import OasisError, OasisSimulator, deterministic_zip, error_document, parse_gmt
from harbour.store.tasks import DOWNLOADED, PENDING, RedisTaskStore
from harbour.test.helpers import private_redis

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
UTC = datetime.timezone.utc
STAMP = datetime.datetime(2025, 3, 10, tzinfo=UTC)
#: 2025-03-10 13:00 in California.
ONE_PM = datetime.datetime(2025, 3, 10, 20, 0, tzinfo=UTC).timestamp()
#: The simulator publishes each day at 14:00 (California) of that day.
TWO_PM = 14 * 3600.0


def zipped(name: str, data: bytes) -> bytes:
    return deterministic_zip([(name, data)], STAMP)


def moment(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


class ParseTests(SynchronousTestCase):
    """
    L{parse_log} and L{parse_schedule} read answers by name, whatever
    their layout.
    """

    def test_csv(self) -> None:
        """
        A CSV log is read by column name, in any order, with extra columns
        ignored; entries come oldest first.
        """
        answer = zipped("20250308_20250310_ATL_PUB_v1.csv", (SAMPLES / "shape_ATL_PUB.csv").read_bytes())
        self.assertEqual(parse_log(answer), [
            Publication("PRC_LMP", "DAM", datetime.date(2025, 3, 9), moment("2025-03-08T21:00:00+00:00"), 1),
            Publication("SLD_FCST", "DAM", datetime.date(2025, 3, 9), moment("2025-03-08T21:05:00+00:00"), 1),
            Publication("PRC_LMP", "DAM", datetime.date(2025, 3, 5), moment("2025-03-09T17:30:00+00:00"), 2),
        ])

    def test_xml(self) -> None:
        """
        An XML log is read by local element name under any prefix, with the
        alternative names; C{REVISED} without a version is version 2.
        """
        answer = zipped("20250308_20250310_ATL_PUB_v1.xml", (SAMPLES / "shape_ATL_PUB.xml").read_bytes())
        entries = parse_log(answer)
        self.assertEqual([(e.key, e.day.day, e.version, e.revision) for e in entries], [
            (("PRC_INTVL_LMP", "RTM"), 9, 1, False),
            (("PRC_INTVL_LMP", "RTM"), 7, 2, True),
        ])

    def test_noData(self) -> None:
        """
        OASIS's "no data" means no publication in the span: no entries.
        """
        self.assertEqual(parse_log((SAMPLES / "error_1000_no_data_repacked.zip").read_bytes()), [])

    def test_unreadable(self) -> None:
        """
        Other errors, pages that are not zips, and rows lacking a field we
        need are L{LogUnreadable}, with the reason.
        """
        error = zipped("ATL_PUB_v1.xml", error_document(1005, STAMP))
        self.assertIn("1005", str(self.assertRaises(LogUnreadable, parse_log, error)))
        self.assertIn("HTML", str(self.assertRaises(LogUnreadable, parse_log, b"<html>busy</html>")))
        columns = zipped("x.csv", b"REPORT_NAME,MARKET_RUN_ID\nPRC_LMP,DAM\n")
        self.assertIn("OPR_DT", str(self.assertRaises(LogUnreadable, parse_log, columns)))
        broken = zipped("x.xml", b"<a><b>1</b><c>")
        self.assertRaises(LogUnreadable, parse_log, broken)

    def test_badRowsAmongGood(self) -> None:
        """
        A malformed row among good ones is skipped.
        """
        text = (SAMPLES / "shape_ATL_PUB.csv").read_text() + "Prices,not a time,PRC_LMP,DAM,2025-03-10,,,,\n"
        self.assertEqual(len(parse_log(zipped("x.csv", text.encode()))), 3)

    def test_schedule(self) -> None:
        """
        The simulator's schedule (both formats) gives each report's daily
        publication time and the trading day it is for.
        """
        clock = Clock()
        clock.advance(ONE_PM)
        simulator = OasisSimulator(clock, publish_offset=-11 * 3600)
        args = {"queryname": "ATL_PUB_SCHED", "startdatetime": "20250309T00:00-0000",
                "enddatetime": "20250310T00:00-0000", "version": "1", "market_run_id": "DAM"}
        for answer in (simulator.single_zip(args, "u"), simulator.single_zip({**args, "resultformat": "6"}, "u")):
            entries = {e.key: e for e in parse_schedule(answer)}
            self.assertEqual(entries[("PRC_LMP", "DAM")].time, datetime.time(13, 0))
            self.assertEqual(entries[("PRC_LMP", "DAM")].day_offset, 1)
            self.assertNotIn(("PRC_LMP", "RUC"), entries)


class SimulatorLogTests(SynchronousTestCase):
    """
    The simulator's log agrees with the data it serves.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(ONE_PM)
        self.simulator = OasisSimulator(self.clock, publish_offset=TWO_PM)

    def log(self, start: str, end: str) -> list[Publication]:
        return parse_log(self.simulator.single_zip(
            {"queryname": "ATL_PUB", "startdatetime": start, "enddatetime": end, "version": "1",
             "market_run_id": "DAM"}, "u"))

    def test_publishedDaysAreServed(self) -> None:
        """
        The log's newest day is the last day with data; the next day is
        neither logged nor served until its publication time.
        """
        entries = self.log("20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(max(e.day for e in entries), datetime.date(2025, 3, 9))
        self.assertEqual(self.simulator.available()[1], datetime.date(2025, 3, 9))
        self.clock.advance(3660)
        entries = self.log("20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(max(e.day for e in entries), datetime.date(2025, 3, 10))
        self.assertEqual(self.simulator.available()[1], datetime.date(2025, 3, 10))

    def test_revision(self) -> None:
        """
        A revision changes every answer covering the day and adds a
        C{REVISED} entry, version 2 then 3.
        """
        url = ("/oasisapi/SingleZip?enddatetime=20250307T08:00-0000&market_run_id=DAM"
               "&queryname=PRC_LMP&startdatetime=20250306T08:00-0000&version=1")
        args = {"queryname": "PRC_LMP", "startdatetime": "20250306T08:00-0000",
                "enddatetime": "20250307T08:00-0000", "version": "1", "market_run_id": "DAM"}
        before = self.simulator.single_zip(args, url)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 6))
        self.clock.advance(2)
        after = self.simulator.single_zip(args, url)
        self.assertNotEqual(before, after)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 6))
        self.clock.advance(2)
        revised = [e for e in self.log("20250310T19:00-0000", "20250310T21:00-0000") if e.revision]
        self.assertEqual([(e.day.day, e.version) for e in revised], [(6, 2), (6, 3)])

    def test_brokenLog(self) -> None:
        """
        C{broken_log} answers the log with error 1005.
        """
        self.simulator.broken_log = True
        error = self.assertRaises(OasisError, self.log, "20250305T00:00-0000", "20250311T00:00-0000")
        self.assertEqual(error.code, 1005)


class FollowingTests(TestCase):
    """
    The manifest service follows the simulator's log: published days cap
    the requests, revisions put tasks back, a broken log falls back.
    """

    async def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(ONE_PM)
        self.simulator = OasisSimulator(self.clock, publish_offset=TWO_PM)
        self.redis = await private_redis(self)
        self.tasks = RedisTaskStore(self.redis, self.clock, self.redis.prefix)
        self.bus = Bus()
        self.events: list = []
        self.bus.subscribe("publications.updated", self.events.append)
        self.bus.subscribe("task.revised", self.events.append)

    def service(self, interval: float = 900.0, follow: bool = True, reports=None) -> ManifestService:
        """
        A started manifest service reading the simulator, configured with
        one daily report from 2025-03-05 to today.
        """
        reports = reports or [dict(name="lmp", queryname="PRC_LMP", market_run_id="DAM")]
        topic = ManifestTopic(base_url="http://oasis.test/oasisapi", start="2025-03-05",
                              follow_publications=follow, publications_interval=interval)
        self.bus.publish("manifest", to_payload(topic), retain=True)
        self.bus.publish("reports", [to_payload(ReportTopic(kind="single_zip", **r)) for r in reports], retain=True)
        self.stub = StubTreq(self.simulator)
        service = ManifestService(self.clock, self.bus, redis=self.redis, limiter=MemoryLimiter(self.clock),
                                  tasks=self.tasks, prefix=self.redis.prefix, client=self.stub,
                                  download=DownloadTopic(min_request_interval=0))
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    async def settle(self, d: Deferred):
        """
        Serve the stub's requests and let Redis answer until C{d} fires.
        """
        from twisted.internet import reactor

        for ignored in range(2000):
            self.stub.flush()
            if d.called:
                return await d
            await deferLater(reactor, 0.001, lambda: None)
        self.fail("no answer")

    async def read(self, service: ManifestService | None = None):
        service = service or self.manifest
        await self.settle(service.read_publications())
        return (await self.settle(service.status()))["publications"]

    def days(self, service: ManifestService | None = None) -> list[str]:
        return sorted({r.filename for r in (service or self.manifest).reports()})

    async def test_unpublishedDayLeftOut(self) -> None:
        """
        Before 14:00 today is not published and not requested; once the log
        shows it, it is, and the work service is told.
        """
        self.manifest = self.service()
        status = await self.read()
        self.assertEqual((status["mode"], status["published"]), ("following", {"lmp": "2025-03-09"}))
        self.assertEqual(self.days()[-1], "lmp/2025-03-09.zip")
        self.assertEqual([e.payload["published"] for e in self.events], [{"lmp": "2025-03-09"}])
        self.clock.advance(3600 + 30)
        status = await self.read()
        self.assertEqual(status["published"], {"lmp": "2025-03-10"})
        self.assertEqual(self.days()[-1], "lmp/2025-03-10.zip")
        self.assertEqual(self.events[-1].payload["published"], {"lmp": "2025-03-10"})

    async def test_unfollowedReportsUseDateRanges(self) -> None:
        """
        Reports the log does not mention (a group zip, an unknown query)
        keep plain date ranges, and C{Status} names them.
        """
        self.manifest = self.service(reports=[
            dict(name="lmp", queryname="PRC_LMP", market_run_id="DAM"),
            dict(name="nope", queryname="NOPE", market_run_id="DAM"),
        ])
        status = await self.read()
        self.assertEqual(status["date_ranges"], ["nope"])
        self.assertIn("nope/2025-03-10.zip", self.days())
        self.assertNotIn("lmp/2025-03-10.zip", self.days())

    async def test_brokenLogFallsBack(self) -> None:
        """
        A log never read falls back to date ranges at once, saying why;
        once readable again, publication caps return.
        """
        self.manifest = self.service()
        self.simulator.broken_log = True
        status = await self.read()
        self.assertEqual(status["mode"], "date ranges")
        self.assertIn("1005", status["error"])
        self.assertIn("lmp/2025-03-10.zip", self.days())
        self.simulator.broken_log = False
        status = await self.read()
        self.assertEqual((status["mode"], status["error"]), ("following", ""))
        self.assertNotIn("lmp/2025-03-10.zip", self.days())
        self.assertEqual([e.payload["mode"] for e in self.events], ["date ranges", "following"])

    async def test_recentSuccessKeepsFollowing(self) -> None:
        """
        A failed read soon after a good one keeps following what is known;
        failures for a whole interval fall back.
        """
        self.manifest = self.service()
        await self.read()
        self.simulator.broken_log = True
        self.clock.advance(60)
        status = await self.read()
        self.assertEqual(status["mode"], "following")
        self.assertIn("1005", status["error"])
        self.clock.advance(900)
        self.assertEqual((await self.read())["mode"], "date ranges")

    async def test_revisionPutsTaskBack(self) -> None:
        """
        A revision logged after a window was downloaded puts its task back
        to pending and publishes C{task.revised}; reading the same entry
        again changes nothing more.
        """
        self.manifest = self.service()
        await self.read()
        await self.tasks.create(self.manifest.reports())
        while (task := await self.tasks.claim("w", 60)) is not None:
            await self.tasks.finish(task.id, "w", DOWNLOADED, 1, "old")
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 7))
        self.clock.advance(60)
        status = await self.read()
        self.assertEqual(status["revisions"], {"lmp": 1})
        [revised] = [e.payload for e in self.events if e.topic == "task.revised"]
        self.assertEqual((revised["filename"], revised["previous"], revised["revision"]),
                         ("lmp/2025-03-07.zip", DOWNLOADED, 1))
        task = await self.tasks.get(revised["id"])
        self.assertEqual((task.state, task.revision), (PENDING, 1))
        self.assertEqual(await self.tasks.counts(), {"lmp": {DOWNLOADED: 4, PENDING: 1}})
        self.clock.advance(60)
        await self.read()
        self.assertEqual(len([e for e in self.events if e.topic == "task.revised"]), 1)

    async def test_restartReadsOn(self) -> None:
        """
        A new service on the same Redis starts from what the last one
        learned: meeting an unreadable log at once, it still leaves out
        unpublished days; once the log reads, it reads from where the last
        read ended (less the overlap), not from the start.
        """
        self.manifest = self.service()
        status = await self.read()
        await self.settle(self.manifest.stopService())
        self.clock.advance(600)
        self.simulator.broken_log = True
        again = self.service()
        self.assertEqual((await self.read(again))["mode"], "following")
        self.assertEqual(self.days(again)[-1], "lmp/2025-03-09.zip")
        self.simulator.broken_log = False
        await self.read(again)
        reads = [r for r in self.simulator.requests if r[2]["queryname"] == "ATL_PUB"]
        self.assertEqual(len(reads), 3)
        through = datetime.datetime.fromisoformat(status["read_through"].replace("Z", "+00:00"))
        self.assertEqual(parse_gmt(reads[2][2]["startdatetime"]), through - datetime.timedelta(seconds=OVERLAP))

    async def test_scheduleBringsReadForward(self) -> None:
        """
        With an interval longer than the wait for the next scheduled
        publication, the next read comes a minute after that publication.
        """
        self.manifest = self.service(interval=7200)
        status = await self.read()
        self.assertEqual(status["scheduled"], len(self.simulator.schedule_rows("ALL")))
        self.assertEqual(status["next_read"], "2025-03-10T21:01:00Z")

    async def test_off(self) -> None:
        """
        With C{follow_publications} off, nothing is read and every report
        uses date ranges.
        """
        self.manifest = self.service(follow=False)
        await self.settle(self.manifest.when_known())
        self.assertEqual((await self.settle(self.manifest.status()))["publications"], {"mode": "off"})
        self.assertIn("lmp/2025-03-10.zip", self.days())
        self.assertEqual(self.simulator.requests, [])

    async def test_stopMidRead(self) -> None:
        """
        A stop while a read waits for its politeness slot ends the read at
        once and quietly, with no Redis command cut off.
        """
        self.manifest = self.service()
        self.manifest.download = DownloadTopic(min_request_interval=5)
        await self.manifest.limiter.reserve("oasis.test", 5)
        reading = self.manifest.read_publications()
        await self.settle(self.manifest.stopService())
        self.assertTrue(reading.called)
        self.assertEqual(self.simulator.requests, [])
        self.assertEqual(self.flushLoggedErrors(), [])
