"""
Tests for L{harbour.services.publications}: following the simulator's log
over L{treq.testing.StubTreq}, with a real redis-server and a L{Clock}; the
manifest capped by it, and the work service applying its revisions.
"""

from __future__ import annotations

import datetime
from typing import Any, TypeVar, cast

import attr
from treq.testing import StubTreq
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock, deferLater
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.bus import Bus
from harbour.config.paging import publish_reports
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, to_payload
from harbour.errors import StoreUnavailable
from harbour.interfaces import IEvent, StatusDocument
from harbour.oasis.client import OasisClient
from harbour.oasis.publications import Publication, Scheduled
from harbour.services.knowledge import DATE_RANGES, FOLLOWING, LOOKBACK, OVERLAP, Knowledge, iso
from harbour.services.manifest import ManifestService
from harbour.services.publications import LogReader, PublicationsFollower
from harbour.services.work import WorkService
from harbour.store.politeness import MemoryLimiter
from harbour.store.tasks import DOWNLOADED, PENDING, RedisTaskStore, Task
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
        publish_reports(self.bus, [ReportTopic(kind="single_zip", **r) for r in reports])
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

    def updates(self) -> list[IEvent]:
        """
        @return: The C{publications.updated} events so far.
        """
        return [e for e in self.events if e.topic == "publications.updated"]

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
        self.assertEqual([e.payload["capped"] for e in self.updates()], [1])
        self.clock.advance(3600 + 30)
        status = await self.read()
        self.assertEqual(status["published"], {"lmp": "2025-03-10"})
        self.assertEqual(self.days()[-1], "lmp/2025-03-10.zip")
        self.assertEqual(len({e.payload["version"] for e in self.updates()}), 2, "an event per change")

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
                # Published like the day-ahead market (so today's window
                # exists), but not in the log.
                {"name": "nope", "queryname": "NOPE", "market_run_id": "DAM", "publication_delay": "-10h"},
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

    def wait(self) -> float:
        """
        @return: Seconds from now to the follower's next read.
        """
        due = self.follower.status()["next_read"]
        return datetime.datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp() - self.clock.seconds()

    async def test_failuresBackOff(self) -> None:
        """
        After a failed read the next comes in a minute, twice as late after
        each further failure in a row, up to the interval; a good read
        starts again from a minute.
        """
        self.follower = self.service()
        self.simulator.broken_log = True
        await self.read()
        waits = [self.wait()]
        while len(waits) < 6:
            # Each read after the first is the one the follower starts
            # itself, once the wait is over.
            self.clock.advance(waits[-1])
            await self.read()
            waits.append(self.wait())
        self.assertEqual(waits, [60, 120, 240, 480, 900, 900])
        self.simulator.broken_log = False
        self.clock.advance(900)
        self.assertEqual((await self.read())["mode"], "following")
        self.assertEqual(self.wait(), 900)
        self.simulator.broken_log = True
        self.clock.advance(900)
        await self.read()
        self.assertEqual(self.wait(), 60)
        reads = [r for r in self.simulator.requests if r[2]["queryname"] == "ATL_PUB"]
        self.assertEqual(len(reads), 8)

    async def test_repeatedFailureNotWarned(self) -> None:
        """
        A failed read is warned of when the log stops reading, when its
        error changes and when it falls back to date ranges; a failure
        repeating the last one only at debug level.  A good read says the
        log is followed again.
        """
        self.follower = self.service()
        await self.read()
        logged = self.logged(self.follower)
        self.simulator.broken_log = True
        for wait in (60, 60, 120):
            self.clock.advance(wait)
            await self.read()
        reader = self.follower._reader
        self.patch(self.follower, "_reader", lambda: FailingReader(reader(), 1))
        for wait in (240, 480, 900):
            self.clock.advance(wait)
            await self.read()
        self.patch(self.follower, "_reader", reader)
        self.simulator.broken_log = False
        self.clock.advance(900)
        status = await self.read()
        self.assertEqual((status["mode"], status["failures"]), ("following", 6))
        by_level = {
            level: [formatEvent(e) for e in logged if e["log_level"] == level]
            for level in (LogLevel.warn, LogLevel.debug, LogLevel.info)
        }
        error = "OASIS error 1005: Report name does not exist, please use valid report name."
        self.assertEqual(
            by_level[LogLevel.warn],
            [
                f"cannot read the publications log: {error}",
                "cannot read the publications log: HTTP 429",
                "cannot read the publications log (HTTP 429): using plain date ranges until it can",
            ],
        )
        self.assertEqual(
            by_level[LogLevel.debug],
            [f"still cannot read the publications log: {error}"] * 2
            + ["still cannot read the publications log: HTTP 429"],
        )
        self.assertEqual(by_level[LogLevel.info], ["publications log readable again: following it"])

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

    async def downloaded(self, but: str | None = None) -> Task | None:
        """
        Read the log, then make the manifest's tasks and download them all
        but the one of file C{but}, left claimed for three overlaps of
        reads.

        @return: That claimed task, if any.
        """
        await self.read()
        await self.tasks.create(self.manifest.reports())
        claimed = None
        while (task := await self.tasks.claim("w", 3 * OVERLAP)) is not None:
            if task.filename == but:
                claimed = task
            else:
                await self.tasks.finish(task.id, "w", DOWNLOADED, 1, "old")
        return claimed

    async def test_revisionPutsTaskBack(self) -> None:
        """
        A revision logged after a window was downloaded puts its task back
        to pending and publishes C{task.revised}; reading the same entry
        again changes nothing more.
        """
        self.follower = self.service()
        await self.downloaded()
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

    async def revised_mid_download(self) -> None:
        """
        Start a follower, download every window but one, have OASIS revise
        that one while it downloads, read the log twice (the second read
        past the overlap, so it sees that revision no more), then end the
        download.
        """
        self.follower = self.service()
        downloading = await self.downloaded(but="lmp/2025-03-07.zip")
        assert downloading is not None
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 7))
        self.clock.advance(60)
        await self.read()
        self.clock.advance(OVERLAP + 60)
        await self.read()
        self.assertEqual([e for e in self.events if e.topic == "task.revised"], [])
        await self.tasks.finish(downloading.id, "w", DOWNLOADED, 1, "old", token=downloading.claim)

    async def test_revisionNotedMidDownload(self) -> None:
        """
        A revision of a window being downloaded is applied once that
        download ends, at a later read, which may no longer see that
        revision and concern another window: both are put back and
        announced, each with its own URL and file.
        """
        await self.revised_mid_download()
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 6))
        self.clock.advance(60)
        await self.read()
        revised = sorted(
            (e.payload["filename"], e.payload["url"]) for e in self.events if e.topic == "task.revised"
        )
        urls = {request.filename: request.url for request in self.manifest.reports()}
        self.assertEqual(
            revised, [(name, urls[name]) for name in ("lmp/2025-03-06.zip", "lmp/2025-03-07.zip")]
        )

    async def test_revisionNotedAppliedByEmptyRead(self) -> None:
        """
        A revision of a window being downloaded is applied at the first
        read after that download ends, even one that finds nothing new in
        the log.
        """
        await self.revised_mid_download()
        self.clock.advance(60)
        # The log holds nothing new: the read finds no entries at all.
        silent = SilentReader(self.follower._reader())
        self.patch(self.follower, "_reader", lambda: silent)
        await self.read()
        self.assertEqual(silent.found, [[]])
        revised = [e.payload["filename"] for e in self.events if e.topic == "task.revised"]
        self.assertEqual(revised, ["lmp/2025-03-07.zip"])

    async def revised_then_stopped(self) -> PublicationsFollower:
        """
        Download every window, have OASIS revise one, stop the follower for
        40 days, and start another.

        @return: The new follower, whose first read is a catch-up of two
            spans, the revision in the first.
        """
        self.follower = self.service()
        await self.downloaded()
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 7))
        self.clock.advance(60)
        await self.settle(self.follower.stopService())
        self.clock.advance(40 * 86400)
        return self.service()

    async def test_catchUpFailingKeepsSpansRead(self) -> None:
        """
        A catch-up read (two spans, after a stop of 40 days) whose second
        request fails still hands the entries of its first span to the
        observers: the revision logged there is applied, though the reads
        after it start past it.
        """
        again = await self.revised_then_stopped()
        reader = again._reader
        spans: list[float] = []

        def second_fails() -> FailingReader:
            return FailingReader(reader(), 2, spans)

        self.patch(again, "_reader", second_fails)
        status = await self.read(again)
        self.assertEqual((len(spans), status["failures"]), (2, 1))
        self.assertEqual(status["read_through"], iso(spans[1]))
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})
        self.patch(again, "_reader", reader)
        self.clock.advance(900)
        await self.read(again)
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})

    async def test_stopMidCatchUpKeepsSpansRead(self) -> None:
        """
        A catch-up read stopped while it waits for its second span has
        handed the entries of its first on before saving the progress past
        them: the revision logged there is applied.
        """
        again = await self.revised_then_stopped()
        hanging = HangingReader(again._reader(), 2)
        self.patch(again, "_reader", lambda: hanging)
        reading = again.read_publications()
        await self.settle(hanging.asked)
        await self.settle(again.stopService())
        self.assertTrue(reading.called)
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})

    async def revised_long_ago(self) -> None:
        """
        Download every window, then have OASIS revise one of them: the
        next read is the last whose overlap with the read before it holds
        that revision.
        """
        await self.downloaded()
        self.clock.advance(60)
        self.simulator.revise("PRC_LMP", datetime.date(2025, 3, 7))
        self.clock.advance(OVERLAP)

    async def test_observerFailingReadAgain(self) -> None:
        """
        Entries an observer fails to take (the failure logged) are not
        counted as read: the next read hands them on again, beyond its
        overlap with the last, and the work service, handed a revision
        twice, applies it once.
        """
        self.follower = self.service()
        await self.revised_long_ago()
        taken: list[list[Publication]] = []

        def observer(entries: list[Publication]) -> None:
            taken.append(entries)
            if len(taken) == 1:
                raise RuntimeError("observer broke")

        self.follower.observe(observer)
        await self.read()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(60)
        await self.read()
        self.assertEqual(len(taken), 2)
        self.assertEqual(set(taken[0]) - set(taken[1]), set())
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})
        self.assertEqual(len([e for e in self.events if e.topic == "task.revised"]), 1)

    async def test_revisionsUnappliedReadAgain(self) -> None:
        """
        Revisions the work service cannot apply, Redis away as harbour
        stops, are applied by a later read.
        """
        self.follower = self.service()
        await self.revised_long_ago()
        revise = self.tasks.revise
        asked: list[object] = []

        def away(revisions: list[tuple[str, float, int]]) -> Deferred[Any]:
            asked.append(revisions)
            if len(asked) == 1:
                return fail(StoreUnavailable("Redis is away"))
            return revise(revisions)

        self.patch(self.tasks, "revise", away)
        # The work service is not running, as when harbour stops.
        await self.read()
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {})
        self.clock.advance(60)
        await self.read()
        self.assertEqual(len(asked), 2)
        self.assertEqual(await self.settle(self.tasks.revision_counts()), {"lmp": 1})

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

    async def test_savedAheadReadAgain(self) -> None:
        """
        A read position saved by a host whose clock ran six hours fast says
        nothing of where reading stopped: it is forgotten, with one
        warning, and the log read from a week back, as at a first start,
        rather than nothing read for five hours.  The last read is no
        later than now.
        """
        key = self.redis.prefix + "pub"
        ahead = self.clock.seconds() + 6 * 3600
        await self.redis.execute(
            "HSET", key, "base_url", "http://oasis.test/oasisapi", "read_through", repr(ahead)
        )
        await self.redis.execute("HSET", key + ":days", "PRC_LMP|DAM", "2025-03-09")
        self.follower = self.service()
        logged = self.logged(self.follower)
        # A read ends at the next whole minute.
        end = self.clock.seconds() - self.clock.seconds() % 60 + 60
        status = await self.read()
        self.clock.advance(900)
        await self.read()
        reads = [r[2] for r in self.simulator.requests if r[2]["queryname"] == "ATL_PUB"]
        self.assertEqual(
            [parse_gmt(r["startdatetime"]).timestamp() for r in reads], [end - LOOKBACK, end - OVERLAP]
        )
        self.assertEqual(status["read_through"], iso(end))
        self.assertLessEqual(
            datetime.datetime.fromisoformat(status["last_read"]).timestamp(), self.clock.seconds()
        )
        self.assertEqual(
            [formatEvent(e) for e in logged if e["log_level"] == LogLevel.warn],
            [
                (
                    "the publications log was saved as read 6.0 h ahead of this host's clock "
                    "(a clock that ran fast?): reading the last 7 days again"
                )
            ],
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

    def logged(self, service: PublicationsFollower) -> list[LogEvent]:
        """
        @return: The events C{service} logs from now on, as it logs them.
        """
        events: list[LogEvent] = []
        service.log = Logger(namespace="publications", observer=cast(ILogObserver, events.append))
        return events

    async def test_laggingLogFollowsDateRanges(self) -> None:
        """
        A log that reads but stops showing new days of a report caps it
        while its newest day is at most two days old; once it is three, the
        report follows its date range (today included), C{Status} says which
        and why, the work service is told, and a warning is logged once.
        When the log shows a new day again, the cap is back, with a note.
        """
        self.simulator.last_day = datetime.date(2025, 3, 8)
        self.follower = self.service()
        logged = self.logged(self.follower)
        status = await self.read()
        self.assertEqual((status["published"], status["lagging"]), ({"lmp": "2025-03-08"}, {}))
        self.assertEqual(self.days()[-1], "lmp/2025-03-08.zip")
        self.clock.advance(86400)
        status = await self.read()
        self.assertEqual(
            (status["mode"], status["published"], status["date_ranges"], status["lagging"]),
            (
                "following",
                {},
                ["lmp"],
                {"lmp": "the log's newest day of PRC_LMP DAM is 2025-03-08, 3 days before 2025-03-11"},
            ),
        )
        self.assertEqual(self.days()[-1], "lmp/2025-03-11.zip")
        self.assertEqual(
            (self.updates()[-1].payload["mode"], self.updates()[-1].payload["capped"]), ("following", 0)
        )
        self.clock.advance(60)
        await self.read()
        self.assertEqual(
            [formatEvent(e) for e in logged if e["log_level"] == LogLevel.warn],
            [
                (
                    "lmp: the log's newest day of PRC_LMP DAM is 2025-03-08, 3 days before 2025-03-11: "
                    "requesting its days by date range until the publications log catches up"
                )
            ],
        )
        self.simulator.last_day = None
        self.clock.advance(3600)
        status = await self.read()
        self.assertEqual((status["published"], status["lagging"]), ({"lmp": "2025-03-11"}, {}))
        self.assertEqual(self.days()[-1], "lmp/2025-03-11.zip")
        self.assertEqual(self.updates()[-1].payload["mode"], "following")
        self.assertEqual(
            [formatEvent(e) for e in logged if e["log_level"] == LogLevel.info],
            ["lmp: the publications log has caught up: following it again"],
        )

    async def test_laggingPerReport(self) -> None:
        """
        Only the report the log lags behind follows its date range; the
        others stay capped.  (An earlier run learned that the log's newest
        day of C{SLD_FCST} is 2025-03-01, and the last hour of the log shows
        nothing newer.)
        """
        key = self.redis.prefix + "pub"
        await self.redis.execute(
            "HSET", key, "base_url", "http://oasis.test/oasisapi", "read_through", repr(self.clock.seconds())
        )
        await self.redis.execute(
            "HSET", key + ":days", "PRC_LMP|DAM", "2025-03-09", "SLD_FCST|DAM", "2025-03-01"
        )
        self.follower = self.service(
            reports=[
                {
                    "name": "lmp",
                    "queryname": "PRC_LMP",
                    "market_run_id": "DAM",
                    "params": {"grp_type": "ALL_APNODES"},
                },
                {"name": "load", "queryname": "SLD_FCST", "market_run_id": "DAM", "window": "1d"},
            ]
        )
        status = await self.read()
        self.assertEqual(
            (status["published"], status["date_ranges"], list(status["lagging"])),
            ({"lmp": "2025-03-09"}, ["load"], ["load"]),
        )
        self.assertIn("load/2025-03-10.zip", self.days())
        self.assertNotIn("lmp/2025-03-10.zip", self.days())

    async def test_stopMidRead(self) -> None:
        """
        A stop while a read waits for its politeness slot ends the read at
        once and quietly, with no Redis command cut off.
        """
        self.follower = self.service()
        self.follower.client.configure(DownloadTopic(min_request_interval=5))
        limiter = self.follower.client.limiter
        await limiter.reserve("oasis.test:80", 5)
        asked: Deferred[None] = Deferred()
        reserve = limiter.reserve

        def noted(host: str, interval: float) -> Deferred[Any]:
            if not asked.called:
                asked.callback(None)
            return reserve(host, interval)

        limiter.reserve = noted  # type: ignore[method-assign]
        reading = self.follower.read_publications()
        # Stopped only once the read waits for its slot: earlier, it would
        # end before it, for other reasons.
        await self.settle(asked)
        await self.settle(self.follower.stopService())
        self.assertTrue(reading.called)
        self.assertEqual(self.simulator.requests, [])
        self.assertEqual(self.flushLoggedErrors(), [])


@attr.s(frozen=True)
class FailingReader:
    """
    A reader of the log whose requests of the log fail from the C{first}th
    on (counting from 1, in C{spans}, where each request starts).
    """

    reader: LogReader = attr.ib()
    first: int = attr.ib()
    spans: list[float] = attr.ib(factory=list)

    def schedule(self, now: float) -> Deferred[list[Scheduled]]:
        """
        The schedule, as the reader reads it.
        """
        return self.reader.schedule(now)

    def log(self, start: float, end: float) -> Deferred[list[Publication]]:
        """
        The log from C{start} to C{end}, or from the C{first}th request on,
        its answer (whatever it is) taken for an error.
        """
        self.spans.append(start)
        read = self.reader.log(start, end)
        if len(self.spans) < self.first:
            return read

        def refused(answer: object) -> list[Publication]:
            raise RuntimeError("HTTP 429")

        return read.addBoth(refused)


@attr.s(frozen=True)
class SilentReader:
    """
    A reader of the log that reads it but finds no entries in it.

    @ivar found: What each read of the log gave.
    """

    reader: LogReader = attr.ib()
    found: list[list[Publication]] = attr.ib(factory=list)

    def schedule(self, now: float) -> Deferred[list[Scheduled]]:
        """
        The schedule, as the reader reads it.
        """
        return self.reader.schedule(now)

    def log(self, start: float, end: float) -> Deferred[list[Publication]]:
        """
        The log from C{start} to C{end}, read and found empty.
        """

        def nothing(entries: list[Publication]) -> list[Publication]:
            self.found.append([])
            return []

        return self.reader.log(start, end).addCallback(nothing)


@attr.s(frozen=True)
class HangingReader:
    """
    A reader of the log whose C{first}th request of the log (counting from
    1) is never answered, until a stop cancels it.

    @ivar asked: Fires once that request is made.
    """

    reader: LogReader = attr.ib()
    first: int = attr.ib()
    spans: list[float] = attr.ib(factory=list)
    asked: Deferred[None] = attr.ib(factory=Deferred)

    def schedule(self, now: float) -> Deferred[list[Scheduled]]:
        """
        The schedule, as the reader reads it.
        """
        return self.reader.schedule(now)

    def log(self, start: float, end: float) -> Deferred[list[Publication]]:
        """
        The log from C{start} to C{end}, or no answer from the C{first}th
        request on.
        """
        self.spans.append(start)
        if len(self.spans) < self.first:
            return self.reader.log(start, end)
        self.asked.callback(None)
        never: Deferred[list[Publication]] = Deferred()
        self.reader.interruptible(cast("Deferred[bytes]", never))
        return never


class LaggingTests(SynchronousTestCase):
    """
    L{Knowledge.lagging}: which reports the log has fallen behind, by the
    market's own calendar and each report's own date range.
    """

    def setUp(self) -> None:
        self.manifest = ManifestTopic(base_url="http://oasis.test/oasisapi", start="2025-03-01")
        self.known = Knowledge(mode=FOLLOWING)
        self.known.published[("PRC_LMP", "DAM")] = datetime.date(2025, 3, 8)

    def report(self, name: str = "lmp", **changes: Any) -> ReportTopic:
        """
        @return: A daily C{PRC_LMP} report.
        """
        arguments: dict[str, Any] = {
            "name": name,
            "kind": "single_zip",
            "queryname": "PRC_LMP",
            "market_run_id": "DAM",
            "params": {"grp_type": "ALL_APNODES"},
        }
        return ReportTopic(**{**arguments, **changes})

    def at(self, text: str) -> float:
        """
        @return: The POSIX time of an ISO 8601 time with its offset.
        """
        return datetime.datetime.fromisoformat(text).timestamp()

    def test_marketMidnight(self) -> None:
        """
        Days are counted in the market's time zone: at 23:30 in California
        (06:30 GMT the next day) the log is two days behind, and only at
        its midnight three.
        """
        report = self.report()
        before = self.at("2025-03-11T06:30:00+00:00")
        self.assertEqual(self.known.lagging([report], self.manifest, before), {})
        self.assertEqual(
            self.known.published_through([report], self.manifest, before), {"lmp": datetime.date(2025, 3, 8)}
        )
        after = self.at("2025-03-11T07:30:00+00:00")
        self.assertEqual(list(self.known.lagging([report], self.manifest, after)), ["lmp"])
        self.assertEqual(self.known.published_through([report], self.manifest, after), {})

    def test_ownDateRange(self) -> None:
        """
        A report is measured against the last day of its own date range: one
        that ends before the log's newest day, or within two days of it,
        never lags; one whose range ends later does.  Disabled reports are
        left out.
        """
        now = self.at("2025-03-20T20:00:00+00:00")
        reports = [
            self.report("ended", end="2025-03-05"),
            self.report("near", end="2025-03-10"),
            self.report("later", end="2025-03-11"),
            self.report("off", enabled=False),
        ]
        self.assertEqual(list(self.known.lagging(reports, self.manifest, now)), ["later"])
        self.assertEqual(
            self.known.published_through(reports, self.manifest, now),
            {"ended": datetime.date(2025, 3, 8), "near": datetime.date(2025, 3, 8)},
        )

    def test_endAheadOfToday(self) -> None:
        """
        An end ahead of today (C{"+1d"}) is not counted: a report is
        measured against today at the latest.
        """
        report = self.report(end="+1d")
        now = self.at("2025-03-10T20:00:00+00:00")
        self.assertEqual(self.known.lagging([report], self.manifest, now), {})
        later = self.at("2025-03-11T20:00:00+00:00")
        self.assertEqual(list(self.known.lagging([report], self.manifest, later)), ["lmp"])

    def test_marketInAnyCase(self) -> None:
        """
        A report's market is matched with the log's in any case, as the
        catalogue takes it: C{dam} is capped by the log's C{DAM} days and
        its schedule brings reads forward; what an earlier run saved is
        taken up in any case too, the newest day kept.
        """
        report = self.report(market_run_id="dam")
        now = self.at("2025-03-10T20:00:00+00:00")
        self.assertEqual(
            self.known.published_through([report], self.manifest, now), {"lmp": datetime.date(2025, 3, 8)}
        )
        self.known.schedule = [Scheduled("PRC_LMP", "DAM", datetime.time(13, 5))]
        self.assertEqual(self.known.next_delay(now, self.manifest, [report]), 5 * 60 + 60)
        restored = Knowledge()
        saved = {"base_url": "http://oasis.test/oasisapi", "read_through": repr(now)}
        days = {"PRC_LMP|dam": "2025-03-09", "PRC_LMP|DAM": "2025-03-08"}
        self.assertTrue(restored.restore("http://oasis.test/oasisapi", saved, days))
        self.assertEqual(restored.published, {("PRC_LMP", "DAM"): datetime.date(2025, 3, 9)})

    def test_dateRangesForAll(self) -> None:
        """
        While every report falls back to date ranges (the log unreadable),
        none is said to lag.
        """
        self.known.mode = DATE_RANGES
        now = self.at("2025-03-20T20:00:00+00:00")
        self.assertEqual(self.known.lagging([self.report()], self.manifest, now), {})


class ScheduleTests(SynchronousTestCase):
    """
    L{Knowledge.next_delay}: a read is brought forward to just after each
    publication the schedule announces.
    """

    def test_pacificTimes(self) -> None:
        """
        The schedule's times are market times: a 13:00 publication is at
        20:00Z in June whatever zone the manifest's days are of, and the
        log is read a minute later; once it has passed, the next is
        tomorrow's.
        """
        report = ReportTopic(name="lmp", queryname="PRC_LMP", market_run_id="DAM", params={"node": "X"})
        known = Knowledge(schedule=[Scheduled("PRC_LMP", "DAM", datetime.time(13, 0))])
        for zone in ("America/Los_Angeles", "UTC", "Asia/Tokyo", "Pacific/Honolulu"):
            manifest = ManifestTopic(timezone=zone, publications_interval=86400)
            for now, read in [
                (
                    datetime.datetime(2025, 6, 10, 12, tzinfo=datetime.UTC),
                    datetime.datetime(2025, 6, 10, 20, 1),
                ),
                (
                    datetime.datetime(2025, 6, 10, 21, tzinfo=datetime.UTC),
                    datetime.datetime(2025, 6, 11, 20, 1),
                ),
            ]:
                delay = known.next_delay(now.timestamp(), manifest, [report])
                self.assertEqual(now.timestamp() + delay, read.replace(tzinfo=datetime.UTC).timestamp(), zone)
