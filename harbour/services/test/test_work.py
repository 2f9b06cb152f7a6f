"""
Tests for L{harbour.services.work}: its timers follow the C{work} topic.
"""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.config.schema import ManifestTopic, ReportTopic, WorkTopic, to_payload
from harbour.errors import StoreUnavailable
from harbour.oasis.requests import ReportURL
from harbour.services.manifest import ManifestService
from harbour.services.work import WorkService
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import task_id


class TimerTests(SynchronousTestCase):
    """
    A change of the C{work} topic restarts only the timers whose interval
    it changes.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = Bus()
        manifest = ManifestService(self.clock, self.bus)
        manifest.startService()
        self.work = WorkService(self.clock, MemoryTaskStore(self.clock), manifest, self.bus)
        self.refreshes: list[float] = []
        refresh_once = self.work._refresh_once

        def noted() -> Deferred[int]:
            self.refreshes.append(self.clock.seconds())
            return refresh_once()

        self.patch(self.work, "_refresh_once", noted)
        self.work.startService()
        self.clock.advance(0)
        self.addCleanup(self.work.stopService)

    def publish(self, **settings: Any) -> None:
        """
        Publish the C{work} topic with C{settings}, the others default.
        """
        self.successResultOf(self.bus.publish("work", to_payload(WorkTopic(**settings)), retain=True))

    def test_otherSettingKeepsTheRefreshTime(self) -> None:
        """
        An edit of C{[work]} that leaves C{refresh_interval} as it was does
        not put the next refresh off: it comes a whole interval after the
        timer's start, not after the edit.  A new interval restarts its
        timer from the change (the purge follows the lease).
        """
        self.publish(refresh_interval=600)
        self.clock.advance(500)
        self.publish(refresh_interval=600, max_attempts=3, lease_seconds=60)
        self.clock.advance(100)
        self.assertEqual(self.refreshes, [0, 600])
        self.assertEqual(self.work._timers["purge"].interval, 15)
        self.clock.advance(100)
        self.publish(refresh_interval=300, max_attempts=3, lease_seconds=60)
        self.clock.advance(299)
        self.assertEqual(self.refreshes, [0, 600])
        self.clock.advance(1)
        self.assertEqual(self.refreshes, [0, 600, 1000])


class FailedRefreshTests(SynchronousTestCase):
    """
    A refresh that fails on a store outage is tried again later, but not
    once C{work} is paused, and not later than a new reason to refresh.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = Bus()
        manifest = ManifestService(self.clock, self.bus)
        manifest.startService()
        store = MemoryTaskStore(self.clock)
        create = store.create
        self.creates: list[float] = []

        def first_fails(requests: Any) -> Deferred[dict[str, int]]:
            self.creates.append(self.clock.seconds())
            if len(self.creates) == 1:
                return fail(StoreUnavailable("Redis away"))
            return create(requests)

        self.patch(store, "create", first_fails)
        self.work = WorkService(self.clock, store, manifest, self.bus)
        self.work.startService()
        self.addCleanup(self.work.stopService)
        self.clock.advance(0)
        self.assertEqual(self.creates, [0])
        # The service's own timers, besides the retry.
        self.timers = len(self.clock.getDelayedCalls()) - 1

    def test_askedWhileFailingOneTimer(self) -> None:
        """
        A refresh asked for while one is failing leaves one timer once it
        has failed, not a retry beside the refresh asked for.
        """
        failing: Deferred[dict[str, int]] = Deferred()
        self.patch(self.work.store, "create", lambda requests: failing)
        self.clock.advance(1)
        self.work.schedule()
        failing.errback(StoreUnavailable("Redis away"))
        self.assertEqual(len(self.clock.getDelayedCalls()) - self.timers, 1)

    def test_failureInStatus(self) -> None:
        """
        Refreshes that keep failing show in C{Status}: the last one's
        error, since when the first failed; one that works clears it.
        """
        status = self.successResultOf(self.work.status())
        self.assertEqual(status["refresh_error"], {"error": "Redis away", "since": "1970-01-01T00:00:00Z"})
        self.assertEqual(status["last_refresh"], {})
        self.patch(self.work.store, "create", lambda requests: fail(ValueError("ERR script error")))
        self.clock.advance(1)
        status = self.successResultOf(self.work.status())
        self.assertEqual(
            status["refresh_error"], {"error": "ERR script error", "since": "1970-01-01T00:00:00Z"}
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.patch(self.work.store, "create", lambda requests: succeed({}))
        self.clock.advance(2)
        status = self.successResultOf(self.work.status())
        self.assertIsNone(status["refresh_error"])
        self.assertEqual(status["last_refresh"]["requests"], 0)

    def test_pausedRetryRefreshesNothing(self) -> None:
        """
        Paused after a failed refresh, C{work} refreshes nothing when the
        retry comes due; resumed, it refreshes at once.
        """
        self.work.pause()
        self.clock.advance(10)
        self.assertEqual(self.creates, [0])
        self.work.resume()
        self.clock.advance(0)
        self.assertEqual(self.creates, [0, 10])

    def test_connectedBeforeTheRetry(self) -> None:
        """
        The store connected again while a failed refresh waits for its
        retry: the refresh runs at once.
        """
        self.clock.advance(0.5)
        self.successResultOf(self.bus.publish("store.connected", {}))
        self.clock.advance(0)
        self.assertEqual(self.creates, [0, 0.5])

    def test_otherEventsWaitForTheRetry(self) -> None:
        """
        Another reason to refresh (the manifest or the publications log
        changed) while a failed refresh waits for its retry waits for it,
        and leaves one timer: events arriving during an outage do not undo
        its backoff.
        """
        self.clock.advance(0.5)
        self.work.schedule()
        self.clock.advance(0)
        self.assertEqual(self.creates, [0])
        self.assertEqual(len(self.clock.getDelayedCalls()) - self.timers, 1)
        self.clock.advance(0.5)
        self.assertEqual(self.creates, [0, 1])


class PurgeTests(SynchronousTestCase):
    """
    The work service forgets retired tasks once retired
    C{retired_retention} seconds ago, on the store's clock.
    """

    def test_purgedAfterRetention(self) -> None:
        """
        A retired task is kept for the retention, and forgotten by the
        next purge after it.
        """
        clock = Clock()
        clock.advance(1_700_000_000)
        bus = Bus()
        manifest = ManifestService(clock, bus)
        manifest.startService()
        store = MemoryTaskStore(clock)
        start = datetime.datetime(2025, 1, 1, 8, tzinfo=datetime.UTC)
        window = ReportURL(
            "http://oasis/a", "a/2025-01-01.zip", "a", start, start + datetime.timedelta(days=1)
        )
        self.successResultOf(store.create([window]))
        self.assertEqual(self.successResultOf(store.retire({task_id(window.filename)})), 1)
        work = WorkService(clock, store, manifest, bus, WorkTopic(retired_retention=3600.0))
        work.startService()
        self.addCleanup(work.stopService)
        clock.advance(3000)
        self.assertEqual(self.successResultOf(store.ids()), {task_id(window.filename)})
        clock.advance(700)
        self.assertEqual(self.successResultOf(store.ids()), set())


class CurrentOnlyTests(SynchronousTestCase):
    """
    The windows of a report OASIS serves only current data of are asked
    for from today, and those fetched while they were current are kept
    once their day is past.
    """

    def test_fetchedWhileCurrentKept(self) -> None:
        """
        The hours of C{PRC_CURR_LMP} fetched on their day are neither
        retired nor dropped from the tables after midnight, though no past
        hour is asked for; they are retired once out of range.
        """
        pacific = ZoneInfo("America/Los_Angeles")
        clock = Clock()
        clock.advance(datetime.datetime(2025, 6, 10, 23, 30, tzinfo=pacific).timestamp())
        bus = Bus()
        manifest = ManifestService(clock, bus)
        manifest.startService()
        manifest.manifest = ManifestTopic(start="-1d", end="today")
        manifest.definitions = [
            ReportTopic(
                name="curr",
                queryname="PRC_CURR_LMP",
                kind="single_zip",
                market_run_id="RTM",
                window="1h",
                params={"node": "TH_NP15_GEN-APND"},
            )
        ]
        store = MemoryTaskStore(clock)
        work = WorkService(clock, store, manifest, bus)
        retired: list[str] = []
        bus.subscribe(
            "task.retired", lambda event: retired.extend(f["filename"] for f in event.payload["files"])
        )
        self.successResultOf(work.refresh())
        claims = self.successResultOf(store.claim_many("w", 60, 100))
        self.assertEqual(len(claims), 23, "the hours of June 10 that have ended")
        for task in claims:
            self.assertTrue(
                self.successResultOf(
                    store.finish(task.id, "w", "downloaded", bytes=10, sha256="0" * 64, token=task.claim)
                )
            )
        clock.advance(3600)
        self.successResultOf(work.refresh())
        self.assertEqual(self.successResultOf(store.counts())["curr"].get("downloaded"), 23)
        self.assertEqual(retired, [])
        clock.advance(86400)
        self.successResultOf(work.refresh())
        self.assertEqual(len(retired), 23, "June 10 is out of the range")
