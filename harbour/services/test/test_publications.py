"""
Tests for L{harbour.services.publications}: following the simulator's log
over L{treq.testing.StubTreq}, with a real redis-server and a L{Clock}; the
manifest capped by it, and the work service applying its revisions.
"""

from __future__ import annotations

import datetime
from typing import Any, TypeVar

from treq.testing import StubTreq
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from harbour.bus import Bus
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, to_payload
from harbour.interfaces import IEvent, StatusDocument
from harbour.oasis.client import OasisClient
from harbour.services.knowledge import OVERLAP
from harbour.services.manifest import ManifestService
from harbour.services.publications import PublicationsFollower
from harbour.services.work import WorkService
from harbour.store.politeness import MemoryLimiter
from harbour.store.tasks import DOWNLOADED, PENDING, RedisTaskStore
from harbour.test.helpers import private_redis
from harbour.testing.simulator import OasisSimulator, parse_gmt

UTC = datetime.UTC
#: 2025-03-10 13:00 in California.
ONE_PM = datetime.datetime(2025, 3, 10, 20, 0, tzinfo=UTC).timestamp()
#: The simulator publishes each day at 14:00 (California) of that day.
TWO_PM = 14 * 3600.0

_T = TypeVar("_T")


class FollowingTests(TestCase):
    """
    The manifest service follows the simulator's log: published days cap
    the requests, revisions put tasks back, a broken log falls back.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        self.clock = Clock()
        self.clock.advance(ONE_PM)
        self.simulator = OasisSimulator(self.clock, publish_offset=TWO_PM)
        self.redis = await private_redis(self)
        self.tasks = RedisTaskStore(self.redis, self.clock, self.redis.prefix)
        self.bus = Bus()
        self.events: list[IEvent] = []
        self.bus.subscribe("publications.updated", self.events.append)
        self.bus.subscribe("task.revised", self.events.append)

    def service(
        self, interval: float = 900.0, follow: bool = True, reports: list[dict[str, Any]] | None = None
    ) -> PublicationsFollower:
        """
        A started follower reading the simulator, configured with one daily
        report from 2025-03-05 to today, and a manifest capped by it
        (C{self.manifest}).
        """
        reports = reports or [
            {
                "name": "lmp",
                "queryname": "PRC_LMP",
                "market_run_id": "DAM",
                "params": {"grp_type": "ALL_APNODES"},
            }
        ]
        topic = ManifestTopic(
            base_url="http://oasis.test/oasisapi",
            start="2025-03-05",
            follow_publications=follow,
            publications_interval=interval,
        )
        self.bus.publish("manifest", to_payload(topic), retain=True)
        self.bus.publish(
            "reports", [to_payload(ReportTopic(kind="single_zip", **r)) for r in reports], retain=True
        )
        self.stub = StubTreq(self.simulator)
        client = OasisClient(
            self.clock, MemoryLimiter(self.clock), DownloadTopic(min_request_interval=0), http=self.stub
        )
        service = PublicationsFollower(self.clock, self.bus, self.redis, client, self.redis.prefix)
        self.manifest = ManifestService(self.clock, self.bus, service)
        # The work service is the follower's observer: it applies revisions.
        service.observe(WorkService(self.clock, self.tasks, self.manifest, self.bus).revise)
        for started in (service, self.manifest):
            started.startService()
            self.addCleanup(self.stop_if_running, started)
        return service

    def stop_if_running(self, service: Service) -> Deferred[None] | None:
        """
        Stop C{service} unless a test already did.
        """
        return service.stopService() if service.running else None

    async def settle(self, d: Deferred[_T]) -> _T:
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

    async def read(self, service: PublicationsFollower | None = None) -> StatusDocument:
        """
        Read the publications log now.

        @return: The follower's status after the read.
        """
        service = service or self.follower
        await self.settle(service.read_publications())
        return service.status()

    def days(self) -> list[str]:
        """
        @return: The file names the manifest requests.
        """
        return sorted({r.filename for r in self.manifest.reports()})

    async def test_unpublishedDayLeftOut(self) -> None:
        """
        Before 14:00 today is not published and not requested; once the log
        shows it, it is, and the work service is told.
        """
        self.follower = self.service()
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
        self.follower = self.service(
            reports=[
                {
                    "name": "lmp",
                    "queryname": "PRC_LMP",
                    "market_run_id": "DAM",
                    "params": {"grp_type": "ALL_APNODES"},
                },
                {"name": "nope", "queryname": "NOPE", "market_run_id": "DAM"},
            ]
        )
        status = await self.read()
        self.assertEqual(status["date_ranges"], ["nope"])
        self.assertIn("nope/2025-03-10.zip", self.days())
        self.assertNotIn("lmp/2025-03-10.zip", self.days())

    async def test_brokenLogFallsBack(self) -> None:
        """
        A log never read falls back to date ranges at once, saying why;
        once readable again, publication caps return.
        """
        self.follower = self.service()
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
        self.follower = self.service()
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
        self.follower = self.service()
        await self.read()
        await self.tasks.create(self.manifest.reports())
        while (task := await self.tasks.claim("w", 60)) is not None:
            await self.tasks.finish(task.id, "w", DOWNLOADED, 1, "old")
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 7))
        self.clock.advance(60)
        await self.read()
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})
        [revised] = [e.payload for e in self.events if e.topic == "task.revised"]
        self.assertEqual(
            (revised["filename"], revised["previous"], revised["revision"]),
            ("lmp/2025-03-07.zip", DOWNLOADED, 1),
        )
        task = await self.tasks.get(revised["id"])
        assert task is not None
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
        self.follower = self.service()
        status = await self.read()
        await self.settle(self.follower.stopService())
        self.clock.advance(600)
        self.simulator.broken_log = True
        again = self.service()
        self.assertEqual((await self.read(again))["mode"], "following")
        self.assertEqual(self.days()[-1], "lmp/2025-03-09.zip")
        self.simulator.broken_log = False
        await self.read(again)
        reads = [r for r in self.simulator.requests if r[2]["queryname"] == "ATL_PUB"]
        self.assertEqual(len(reads), 3)
        through = datetime.datetime.fromisoformat(status["read_through"].replace("Z", "+00:00"))
        self.assertEqual(
            parse_gmt(reads[2][2]["startdatetime"]), through - datetime.timedelta(seconds=OVERLAP)
        )

    async def test_scheduleBringsReadForward(self) -> None:
        """
        With an interval longer than the wait for the next scheduled
        publication, the next read comes a minute after that publication.
        """
        self.follower = self.service(interval=7200)
        status = await self.read()
        self.assertEqual(status["scheduled"], len(self.simulator.schedule_rows("ALL")))
        self.assertEqual(status["next_read"], "2025-03-10T21:01:00Z")

    async def test_off(self) -> None:
        """
        With C{follow_publications} off, nothing is read and every report
        uses date ranges.
        """
        self.follower = self.service(follow=False)
        await self.settle(self.follower.when_known())
        self.assertEqual(self.follower.status(), {"mode": "off"})
        self.assertIn("lmp/2025-03-10.zip", self.days())
        self.assertEqual(self.simulator.requests, [])

    async def test_stopMidRead(self) -> None:
        """
        A stop while a read waits for its politeness slot ends the read at
        once and quietly, with no Redis command cut off.
        """
        self.follower = self.service()
        self.follower.client.configure(DownloadTopic(min_request_interval=5))
        await self.follower.client.limiter.reserve("oasis.test", 5)
        reading = self.follower.read_publications()
        await self.settle(self.follower.stopService())
        self.assertTrue(reading.called)
        self.assertEqual(self.simulator.requests, [])
        self.assertEqual(self.flushLoggedErrors(), [])
