"""
Tests for L{harbour.services.audit}: the audit of downloaded files, on a
real directory, with a test's clock and a store in memory.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus, Event
from harbour.config.schema import DownloadTopic, to_payload
from harbour.errors import StoreUnavailable
from harbour.oasis.client import OasisClient
from harbour.oasis.requests import ReportURL
from harbour.services.audit import PAGE, Audit, AuditRound, missing_files
from harbour.services.download import DownloadService
from harbour.services.storage import STORAGE_FILE, storage_id
from harbour.store.memory import MemoryTaskStore
from harbour.store.politeness import MemoryLimiter
from harbour.store.tasks import DOWNLOADED, PENDING, Task

UTC = datetime.UTC

#: The seconds between rounds in these tests.
INTERVAL = 100.0


def request(day: int) -> ReportURL:
    """
    A request of report C{lmp} for 2025-01-C{day}.
    """
    start = datetime.datetime(2025, 1, day, 8, tzinfo=UTC)
    return ReportURL(
        f"http://oasis/lmp?day={day}",
        f"lmp/2025-01-{day:02d}.zip",
        "lmp",
        start,
        start + datetime.timedelta(days=1),
    )


class PagedStore(MemoryTaskStore):
    """
    A store in memory that records the pages asked of it, and fails them
    with C{failure} when set.
    """

    pages: list[tuple[str, int, int]]
    failure: Exception | None = None

    def tasks(
        self, state: str, report: str | None, offset: int, limit: int
    ) -> Deferred[tuple[list[Task], int]]:
        """
        See L{MemoryTaskStore.tasks}; recorded.
        """
        self.pages.append((state, offset, limit))
        if self.failure is not None:
            return fail(self.failure)
        return super().tasks(state, report, offset, limit)


class AuditTests(SynchronousTestCase):
    """
    Tests for L{Audit}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = PagedStore(self.clock)
        self.store.pages = []
        self.directory = Path(self.mktemp())
        self.here = storage_id(self.directory)
        self.interval = INTERVAL
        # What the audit's thread work does: at once, unless a test says.
        self.in_thread: Callable[..., Deferred[Any]] = lambda f, *args: succeed(f(*args))

    def audit(self, page: int = PAGE) -> tuple[Audit, list[LogEvent]]:
        """
        @return: An audit of C{self.directory} (not started), and the events
            it logs.
        """
        audit = Audit(
            self.clock,
            self.store,
            lambda f, *args: self.in_thread(f, *args),
            lambda: self.directory,
            lambda directory: succeed(self.here),
            lambda: self.interval,
            page=page,
        )
        events: list[LogEvent] = []
        audit.log = Logger(namespace="audit", observer=cast(ILogObserver, events.append))
        return audit, events

    def hold_threads(self) -> list[Deferred[Any]]:
        """
        Hold the audit's thread work until the test fires it.

        @return: A Deferred per call, which runs the call when fired.
        """
        looked: list[Deferred[Any]] = []

        def held(f: Callable[..., Any], *args: object) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            looked.append(d)
            d.addCallback(lambda ignored: f(*args))
            return d

        self.in_thread = held
        return looked

    def downloaded(self, day: int, storage: str | None = None, on_disk: bool = True) -> Task:
        """
        Download C{request(day)} into C{storage} (by default, this
        directory's), its file on disk if C{on_disk}.

        @return: The task, downloaded.
        """
        self.store.create([request(day)])
        task = self.successResultOf(self.store.claim("w", 60))
        assert task is not None
        storage = self.here if storage is None else storage
        self.successResultOf(self.store.finish(task.id, "w", DOWNLOADED, 3, f"sha{day}", storage=storage))
        if on_disk:
            path = self.directory / task.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"zip")
        found = self.successResultOf(self.store.get(task.id))
        assert found is not None
        return found

    def state(self, task: Task) -> str:
        """
        @return: The state C{task} is in now.
        """
        found = self.successResultOf(self.store.get(task.id))
        assert found is not None
        return found.state

    def warnings(self, events: list[LogEvent]) -> list[str]:
        """
        @return: The text of the warnings among C{events}.
        """
        return [formatEvent(event) for event in events if event["log_level"] == LogLevel.warn]

    def test_missingPutBack(self) -> None:
        """
        One interval after the start (not at it), a round looks at the
        files downloaded into this directory's storage, page after page,
        and puts the tasks of those gone back to pending, each named once
        in a warning; a file of another storage, on another host, is not
        looked at.  The round ends with one info line and is kept as the
        last, and the next comes an interval later.
        """
        tasks = [self.downloaded(day) for day in range(1, 6)]
        elsewhere = self.downloaded(6, storage="worker", on_disk=False)
        for task in (tasks[0], tasks[3]):
            (self.directory / task.filename).unlink()
        audit, events = self.audit(page=2)
        audit.start()
        self.clock.advance(INTERVAL - 1)
        self.assertEqual((self.store.pages, audit.status()), ([], None))
        self.clock.advance(1)
        self.assertEqual(
            [self.state(t) for t in tasks], [PENDING, DOWNLOADED, DOWNLOADED, PENDING, DOWNLOADED]
        )
        self.assertEqual(self.state(elsewhere), DOWNLOADED)
        self.assertEqual(audit.last, AuditRound(self.clock.seconds(), 5, 2, 0.0))
        self.assertEqual(
            audit.status(), {"when": self.clock.seconds(), "checked": 5, "missing": 2, "seconds": 0.0}
        )
        warnings = self.warnings(events)
        self.assertEqual(len(warnings), 2)
        for task, warning in zip((tasks[3], tasks[0]), warnings):
            self.assertIn(task.filename, warning)
        infos = [formatEvent(e) for e in events if e["log_level"] == LogLevel.info]
        self.assertEqual(len(infos), 1)
        self.assertIn("checked 5 files, 2 missing", infos[0])
        # Pages of two, newest window first: the one put back from the
        # second page left the listing, so the third starts one sooner.
        self.assertEqual([offset for state, offset, limit in self.store.pages], [0, 2, 3])
        self.assertEqual({(state, limit) for state, offset, limit in self.store.pages}, {(DOWNLOADED, 2)})
        self.clock.advance(INTERVAL)
        self.assertEqual(
            audit.status(), {"when": self.clock.seconds(), "checked": 3, "missing": 0, "seconds": 0.0}
        )

    def test_pageAfterPage(self) -> None:
        """
        A round asks for the next page only once the files of the last
        have been looked at, and pages are of L{PAGE} tasks by default.
        """
        for day in (1, 2, 3):
            self.downloaded(day)
        looked = self.hold_threads()
        audit, events = self.audit(page=1)
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.store.pages), 1)
        looked[0].callback(None)
        self.assertEqual(len(self.store.pages), 2)
        looked[1].callback(None)
        looked[2].callback(None)
        self.assertEqual([offset for state, offset, limit in self.store.pages], [0, 1, 2])
        self.assertEqual(
            audit.status(), {"when": self.clock.seconds(), "checked": 3, "missing": 0, "seconds": 0.0}
        )
        self.assertEqual(self.audit()[0].page, PAGE)
        self.assertEqual(PAGE, 500)

    def test_changedMeanwhileLeftAlone(self) -> None:
        """
        A task downloaded again between the look at its file and the
        store's answer is left alone, and neither logged nor counted.
        """
        task = self.downloaded(1)
        (self.directory / task.filename).unlink()

        def then_downloaded_again(f: Callable[..., Any], *args: object) -> Deferred[Any]:
            result = f(*args)
            self.clock.advance(1)
            self.store.revise([(task.id, self.clock.seconds(), "2")])
            claimed = self.successResultOf(self.store.claim("w", 60))
            assert claimed is not None
            self.store.finish(claimed.id, "w", DOWNLOADED, 3, "new", storage=self.here)
            return succeed(result)

        self.in_thread = then_downloaded_again
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(self.state(task), DOWNLOADED)
        self.assertEqual((audit.last.checked, audit.last.missing), (1, 0))  # type: ignore[union-attr]
        self.assertEqual(self.warnings(events), [])

    def test_storeAway(self) -> None:
        """
        A store outage ends the round with a warning, keeps no round as
        the last, and the next round comes on time.
        """
        self.downloaded(1)
        self.store.failure = StoreUnavailable("connection lost")
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        [warning] = self.warnings(events)
        self.assertIn("connection lost", warning)
        self.assertIsNone(audit.status())
        self.store.failure = None
        self.clock.advance(INTERVAL)
        self.assertEqual(
            audit.status(), {"when": self.clock.seconds(), "checked": 1, "missing": 0, "seconds": 0.0}
        )

    def test_statError(self) -> None:
        """
        A file that cannot be looked at for another reason than its absence
        (a part of its path is a file) ends the round with a warning: no
        task is put back, and the service goes on.
        """
        task = self.downloaded(1)
        (self.directory / task.filename).unlink()
        (self.directory / "lmp").rmdir()
        (self.directory / "lmp").write_bytes(b"not a directory")
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(self.state(task), DOWNLOADED)
        [warning] = self.warnings(events)
        self.assertIn("ended early", warning)
        self.assertIsNone(audit.status())
        self.assertEqual(len(self.clock.getDelayedCalls()), 1, "the next round")

    def test_volumeAway(self) -> None:
        """
        A directory that no longer holds its storage id (its volume not
        mounted, an empty directory in its place) has none of its files
        found missing: the round ends with a warning.
        """
        task = self.downloaded(1)
        (self.directory / task.filename).unlink()
        (self.directory / STORAGE_FILE).unlink()
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(self.state(task), DOWNLOADED)
        [warning] = self.warnings(events)
        self.assertIn("is its volume mounted?", warning)

    def test_stopMidRound(self) -> None:
        """
        Stopping the audit stops a round under way at once (what it waited
        for is left to end, unheeded, not cancelled): nothing is put back, no round is
        kept, and none is planned.
        """
        task = self.downloaded(1)
        (self.directory / task.filename).unlink()
        looked = self.hold_threads()
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(len(looked), 1)
        self.successResultOf(audit.stop())
        self.assertFalse(looked[0].called, "the thread's work is not cancelled")
        looked[0].callback(None)
        self.assertEqual(self.state(task), DOWNLOADED)
        self.assertIsNone(audit.status())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.warnings(events), [])
        self.assertIn("stopped", formatEvent(events[-1]))

    def test_off(self) -> None:
        """
        An interval of 0 plans no round; one set later plans the next
        round that interval from then; a change to the interval while a
        round is planned plans it anew, and the same interval again
        changes nothing.
        """
        self.downloaded(1)
        self.interval = 0
        audit, events = self.audit()
        audit.start()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10 * INTERVAL)
        self.interval = INTERVAL
        audit.configured()
        self.clock.advance(INTERVAL / 2)
        audit.configured()
        self.interval = INTERVAL / 4
        audit.configured()
        self.clock.advance(INTERVAL / 4 - 1)
        self.assertIsNone(audit.status())
        self.clock.advance(1)
        self.assertEqual(
            audit.status(), {"when": self.clock.seconds(), "checked": 1, "missing": 0, "seconds": 0.0}
        )
        self.interval = 0
        audit.configured()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_changedMidRound(self) -> None:
        """
        A change of the interval while a round runs is for the next round:
        no other round starts beside the one under way or right after it,
        and the next comes the interval in force at its end after that
        end; none comes if the audit was turned off meanwhile.
        """
        self.downloaded(1)
        looked = self.hold_threads()
        audit, events = self.audit()
        audit.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.store.pages), 1)
        self.interval = INTERVAL / 4
        audit.configured()
        self.assertEqual((len(self.store.pages), self.clock.getDelayedCalls()), (1, []))
        self.clock.advance(10)
        looked[0].callback(None)
        ended = self.clock.seconds()
        self.assertEqual(audit.last, AuditRound(ended, 1, 0, 10.0))
        [planned] = self.clock.getDelayedCalls()
        self.assertEqual(planned.getTime(), ended + INTERVAL / 4)
        self.clock.advance(INTERVAL / 4)
        self.assertEqual(len(self.store.pages), 2)
        # Off, then on again with another interval, in the same round.
        self.interval = 0
        audit.configured()
        self.interval = INTERVAL / 2
        audit.configured()
        self.assertEqual((len(self.store.pages), self.clock.getDelayedCalls()), (2, []))
        looked[1].callback(None)
        ended = self.clock.seconds()
        [planned] = self.clock.getDelayedCalls()
        self.assertEqual(planned.getTime(), ended + INTERVAL / 2)
        self.clock.advance(INTERVAL / 2)
        self.assertEqual(len(self.store.pages), 3)
        self.interval = 0
        audit.configured()
        looked[2].callback(None)
        self.assertEqual(audit.last, AuditRound(self.clock.seconds(), 1, 0, 0.0))
        self.assertEqual((len(self.store.pages), self.clock.getDelayedCalls()), (3, []))
        self.assertEqual(self.warnings(events), [])

    def test_missingFiles(self) -> None:
        """
        L{missing_files} names the files not in the directory, by index,
        and skips a name that would leave it.
        """
        (self.directory / "a.zip").write_bytes(b"zip")
        self.assertEqual(
            missing_files(self.directory, self.here, ["b.zip", "a.zip", "../c.zip", "d/e.zip"]), [0, 3]
        )


class ServiceAuditTests(SynchronousTestCase):
    """
    The download service runs the audit: one C{audit_interval} after it
    starts, stopped with it, its last round in its status.
    """

    def test_service(self) -> None:
        """
        The service's status carries its audit's last round (L{None}
        before the first), which runs one C{audit_interval} after the
        start and puts back a task whose file is gone; a stop stops the
        audit.
        """
        reactor = MemoryReactorClock()
        reactor.advance(1_700_000_000)
        store = MemoryTaskStore(reactor)
        service = DownloadService(
            reactor,
            store,
            OasisClient(reactor, MemoryLimiter(reactor)),
            Bus(),
            Path(self.mktemp()),
            DownloadTopic(audit_interval=INTERVAL, concurrency=1),
            paused=True,
            configured=True,
        )
        service._in_thread = lambda f, *args: succeed(f(*args))  # type: ignore[method-assign]
        here = self.successResultOf(service.storage(service.directory))
        store.create([request(1)])
        task = self.successResultOf(store.claim("w", 60))
        assert task is not None
        self.successResultOf(store.finish(task.id, "w", DOWNLOADED, 3, "sha", storage=here))
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        self.assertIsNone(service.status()["audit"])
        reactor.advance(INTERVAL - 1)
        self.assertIsNone(service.status()["audit"])
        reactor.advance(1)
        self.assertEqual(
            service.status()["audit"], {"when": reactor.seconds(), "checked": 1, "missing": 1, "seconds": 0.0}
        )
        found = self.successResultOf(store.get(task.id))
        assert found is not None
        self.assertEqual(found.state, PENDING)
        service._download_changed(
            Event.create("download", {**to_payload(service.settings), "audit_interval": 10})
        )
        self.successResultOf(service.stopService())
        reactor.advance(INTERVAL)
        self.assertEqual(service.audit.last.when, reactor.seconds() - INTERVAL)  # type: ignore[union-attr]
