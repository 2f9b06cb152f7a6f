"""
Tests of L{harbour.web.monitor}: a loop that no failure stops, the task
states read from the store only when they must be, and the counts kept
through a Redis outage.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from twisted.internet.defer import Deferred, FirstError, fail
from twisted.internet.task import Clock, CooperativeTask, TaskStopped
from twisted.logger import ILogObserver, LogEvent, Logger, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.errors import StoreUnavailable
from harbour.store.tasks import DOWNLOADED, FAILED
from harbour.web.monitor import INTERVAL, RESYNC, RESYNC_SHARE, SOON, Monitor
from harbour.web.test.helpers import FakeDaemon, day_requests, healthy_services, started_monitor, stepwise

T0 = 1_750_000_000.0


class MonitorTests(SynchronousTestCase):
    """
    The monitor of a fake daemon with one report of two days, whose first
    day's task is downloaded in the store.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.daemon = FakeDaemon(self.clock)
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"pending": 1, "downloaded": 1}}})
        self.daemon.asked = day_requests("lmp", datetime.date(2025, 6, 1), 2)
        store = self.daemon.store
        self.successResultOf(store.create(self.daemon.asked))
        task = self.successResultOf(store.claim("w", 60))
        assert task is not None
        self.successResultOf(store.finish(task.id, "w", DOWNLOADED))
        self.first = task
        self.reads: list[str] = []
        self.failures = 0
        read = store.tasks

        def tasks(state: str, report: str | None, offset: int, limit: int) -> Deferred[Any]:
            self.reads.append(state)
            if self.failures:
                self.failures -= 1
                # What the Redis store's pages read at once fail with.
                return fail(FirstError(Failure(StoreUnavailable("Redis is away")), 0))
            return read(state, report, offset, limit)

        store.tasks = tasks  # type: ignore[method-assign]
        self.logged: list[LogEvent] = []

    def start(self) -> None:
        """
        Start the monitor, its log kept in C{logged}.
        """
        self.bus = Bus()
        self.monitor = Monitor(self.clock, self.bus, self.daemon)
        self.monitor.log = Logger(observer=cast(ILogObserver, self.logged.append))
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)

    def states(self) -> str:
        """
        @return: The map's row of C{lmp}.
        """
        return self.monitor.coverage.row("lmp").states

    def test_storeFailureWrapped(self) -> None:
        """
        A task store that fails while the states are read (its error
        wrapped in a L{FirstError}) is logged as a warning with the store's
        own message; the loop goes on, and reads them on a later tick.
        """
        self.failures = 1
        self.start()
        self.assertEqual(self.states(), "WW")
        self.assertEqual(
            [formatEvent(e) for e in self.logged if e["log_level"].name == "warn"],
            ["cannot read task states: Redis is away"],
        )
        self.clock.advance(INTERVAL)
        self.assertEqual(self.states(), "WD")
        self.clock.advance(INTERVAL)
        self.assertEqual(self.monitor.current.taken, T0 + 2 * INTERVAL)

    def test_tickFailureLogged(self) -> None:
        """
        Whatever a reading meets, it is logged and the next reading
        happens: the loop never stops.
        """
        requests = self.daemon.asked
        broken = [RuntimeError("the manifest broke")]

        def asked() -> list[Any]:
            if broken:
                raise broken.pop()
            return requests

        self.daemon.requests = asked  # type: ignore[method-assign]
        self.start()
        [failure] = [e["log_failure"] for e in self.logged if "log_failure" in e]
        self.assertIsInstance(failure.value, RuntimeError)
        self.assertEqual(self.monitor.coverage.reports(), [])
        self.clock.advance(INTERVAL)
        self.assertEqual(self.states(), "WD")

    def test_countsKeptWhileRedisAway(self) -> None:
        """
        While Redis is away the C{work} service cannot count the tasks: the
        last counts are kept, and the report's health with them.
        """
        self.start()
        before = self.monitor.current.reports
        self.assertEqual(before[0].counts, {"pending": 1, "downloaded": 1})
        self.daemon.services = healthy_services(
            store={"connected": False, "redis": "redis://127.0.0.1:6379/0"},
            work={"tasks": {"error": "Redis is away"}},
        )
        self.bus.publish("store.disconnected", {})
        self.clock.advance(INTERVAL)
        self.assertFalse(self.monitor.current.redis_up)
        self.assertEqual(self.monitor.current.reports, before)

    def test_newTasksNotRead(self) -> None:
        """
        New tasks need no reading of the store: their files count as
        pending already.
        """
        self.start()
        self.assertEqual(len(self.reads), 5)
        self.bus.publish("task.created", {"report": "lmp", "count": 2})
        self.clock.advance(SOON)
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.reads), 5)

    def test_retryRead(self) -> None:
        """
        An operator's retry (a C{task.created} with C{retried}) has the
        states read again soon: the failed day is pending again.
        """
        store = self.daemon.store
        second = self.successResultOf(store.claim("w", 60))
        assert second is not None
        self.successResultOf(store.finish(second.id, "w", FAILED, error="HTTP 400"))
        self.start()
        self.assertEqual(self.states(), "FD")
        self.successResultOf(store.retry(FAILED, None))
        self.bus.publish("task.created", {"report": "*", "count": 1, "retried": True})
        self.clock.advance(SOON)
        self.assertEqual(self.states(), "WD")

    def test_reconnectRead(self) -> None:
        """
        Redis back after an outage has the states read again (writes made
        just before it may be lost).
        """
        self.start()
        self.bus.publish("store.disconnected", {})
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.reads), 5)
        self.bus.publish("store.connected", {})
        self.clock.advance(SOON)
        self.assertEqual(len(self.reads), 10)

    def test_readAgainPeriodically(self) -> None:
        """
        The task states are read again every L{RESYNC} seconds: a task that
        ended with no event to tell (a remote worker's, sent while its
        link to the hub was down) is on the map within that, and the
        report's health follows.
        """
        self.start()
        store = self.daemon.store
        second = self.successResultOf(store.claim("remote", 60))
        assert second is not None
        self.successResultOf(store.finish(second.id, "remote", DOWNLOADED))
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"downloaded": 2}}})
        ticks = int(RESYNC / INTERVAL)
        for ignored in range(ticks - 1):
            self.clock.advance(INTERVAL)
        self.assertEqual((self.states(), len(self.reads)), ("WD", 5))
        self.clock.advance(INTERVAL)
        self.assertEqual((self.states(), len(self.reads)), ("DD", 10))
        [view] = self.monitor.current.reports
        self.assertEqual(view.days, {"downloaded": 2})
        for ignored in range(ticks):
            self.clock.advance(INTERVAL)
        self.assertEqual(len(self.reads), 15)

    def test_oneReadingAtATime(self) -> None:
        """
        A reading of the task states that has not ended is not begun
        again, however long it takes; stopping the monitor cancels it, and
        nothing is read once stopped.
        """
        reads: list[Deferred[Any]] = []
        cancelled: list[Deferred[Any]] = []

        def tasks(state: str, report: str | None, offset: int, limit: int) -> Deferred[Any]:
            d: Deferred[Any] = Deferred(cancelled.append)
            reads.append(d)
            return d

        self.daemon.store.tasks = tasks  # type: ignore[method-assign]
        self.start()
        self.assertEqual(len(reads), 1)
        self.bus.publish("store.connected", {})
        for ignored in range(int(3 * RESYNC / INTERVAL)):
            self.clock.advance(INTERVAL)
        self.assertEqual(len(reads), 1)
        self.successResultOf(self.monitor.stopService())
        self.assertEqual(cancelled, reads)
        self.clock.advance(3 * RESYNC)
        self.assertEqual(len(reads), 1)
        self.assertEqual([e for e in self.logged if e["log_level"].name in ("warn", "error", "critical")], [])

    def test_longReadingSpaced(self) -> None:
        """
        After a reading of the task states that took long (a large store),
        the next periodic one waits L{RESYNC_SHARE} times as long, so that
        readings take a bounded share of Redis's time.
        """
        reads: list[Deferred[Any]] = []

        def tasks(state: str, report: str | None, offset: int, limit: int) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            reads.append(d)
            return d

        self.daemon.store.tasks = tasks  # type: ignore[method-assign]
        self.start()
        began = self.clock.seconds()
        self.clock.advance(60)
        while not all(d.called for d in reads):
            for d in [d for d in reads if not d.called]:
                d.callback(([], 0))
        one_reading = len(reads)
        while self.clock.seconds() < began + RESYNC_SHARE * 60 - INTERVAL:
            self.clock.advance(INTERVAL)
        self.assertEqual(len(reads), one_reading)
        for ignored in range(2):
            self.clock.advance(INTERVAL)
        self.assertGreater(len(reads), one_reading)

    def test_manifestZone(self) -> None:
        """
        The map's trading days are those of the C{manifest} topic's
        C{timezone}, laid out again when it changes; a payload the
        configuration would refuse is logged and changes nothing.
        """
        self.start()
        first = datetime.date(2025, 6, 1)
        self.assertEqual(self.monitor.coverage.row("lmp").first, first)
        self.bus.publish("manifest", {"timezone": "Asia/Tokyo"}, retain=True)
        self.clock.advance(0)
        # A Pacific day begins in the afternoon of Tokyo's.
        self.assertEqual((self.monitor.coverage.row("lmp").first, self.states()), (first, "WPD"))
        [view] = self.monitor.current.reports
        self.assertEqual(view.days, {"pending": 1, "partly": 1, "downloaded": 1})
        self.bus.publish("manifest", {"timezone": "Nowhere/Atlantis"}, retain=True)
        self.clock.advance(0)
        self.assertEqual(self.states(), "WPD")
        self.assertEqual(
            [formatEvent(e).split(":")[0] for e in self.logged if e["log_level"].name == "warn"],
            ["manifest ignored"],
        )
        self.bus.publish("manifest", {}, retain=True)
        self.clock.advance(0)
        self.assertEqual((self.monitor.coverage.row("lmp").first, self.states()), (first, "WD"))

    def test_windowEndedBeforeLaidOut(self) -> None:
        """
        A new window whose task ends before the next reading lays it out
        is laid out at its event, and its day is on the map at once.
        """
        self.start()
        [later] = day_requests("lmp", datetime.date(2025, 6, 3), 1)
        self.daemon.asked = [*self.daemon.asked, later]
        self.bus.publish("task.done", {"report": "lmp", "filename": later.filename, "revision": 0})
        self.clock.advance(0)
        self.assertEqual(self.states(), "WDD")

    def test_reportBackRead(self) -> None:
        """
        A report that comes back on the map has its task states read from
        the store at once: the map kept none while it was gone.
        """
        self.start()
        asked, self.daemon.asked = self.daemon.asked, []
        self.clock.advance(INTERVAL)
        self.assertEqual(self.monitor.coverage.reports(), [])
        self.daemon.asked = asked
        self.clock.advance(INTERVAL)
        self.assertEqual((self.states(), len(self.reads)), ("WD", 10))


class LayOutInStepsTests(SynchronousTestCase):
    """
    A map that takes more than L{Monitor.at_once} requests laid out anew,
    at start or in another zone, is laid out a step at a time beside the
    one shown, and shown once whole.  Here a step lays out one row (or
    looks at the requests), and the cooperator runs one step a turn.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.daemon = FakeDaemon(self.clock)
        self.daemon.services = healthy_services()
        self.daemon.asked = [
            *day_requests("lmp", datetime.date(2025, 6, 1), 3),
            *day_requests("load", datetime.date(2025, 6, 1), 3),
            *day_requests("wind", datetime.date(2025, 6, 2), 2),
        ]
        store = self.daemon.store
        self.successResultOf(store.create(self.daemon.asked))
        task = self.successResultOf(store.claim("w", 60))
        assert task is not None and task.filename == "load/2025-06-03.zip"
        self.successResultOf(store.finish(task.id, "w", DOWNLOADED))
        self.turns = Clock()
        #: The tasks of the layouts given to the cooperator.
        self.tasks: list[CooperativeTask[Any]] = []
        cooperator = stepwise(self.turns)
        cooperate = cooperator.cooperate

        def counted(iterator: Any) -> CooperativeTask[Any]:
            task = cooperate(iterator)
            if iterator.__qualname__ in ("Coverage._laid_out", "Coverage.laying_out"):
                self.tasks.append(task)
            return task

        cooperator.cooperate = counted  # type: ignore[method-assign]
        self.monitor, self.bus = started_monitor(self.clock, self.daemon, cooperator=cooperator, at_once=4)
        self.addCleanup(self.monitor.stopService)

    def shown(self) -> dict[str, tuple[str, str]]:
        """
        @return: C{{report: (first day, states)}} of the map shown.
        """
        return {row.report: (row.first.isoformat(), row.states) for row in self.monitor.coverage.rows()}

    def turn(self) -> None:
        """
        One turn of the reactor: a step of the layout, and what it
        scheduled on the monitor's clock.
        """
        self.turns.advance(1)
        self.clock.advance(0)

    def until_shown(self, before: dict[str, tuple[str, str]]) -> int:
        """
        Run turns until the map shown is another than C{before}, checking
        after each that it is still C{before} as a whole and that the
        snapshot says a layout is under way.

        @return: How many turns it took.
        """
        turns = 0
        while self.shown() == before:
            self.assertTrue(self.monitor.current.laying_out)
            self.assertLess(turns, 100, "never shown")
            self.turn()
            turns += 1
        return turns

    def test_atStart(self) -> None:
        """
        At start the map is laid out over several turns, the map shown
        staying empty (never part of one) and the snapshot saying it is
        being laid out; then it is shown whole, and its task states are
        read from the store.
        """
        self.clock.advance(0)
        self.assertEqual((self.shown(), self.monitor.current.laying_out), ({}, True))
        self.assertGreater(self.until_shown({}), 3)
        self.assertEqual(
            self.shown(),
            {
                "lmp": ("2025-06-01", "WWW"),
                "load": ("2025-06-01", "WWD"),
                "wind": ("2025-06-02", "WW"),
            },
        )
        self.assertFalse(self.monitor.current.laying_out)
        self.assertEqual(self.monitor.current.reports[1].days, {"downloaded": 1, "pending": 2})

    def test_newZone(self) -> None:
        """
        A new C{timezone} lays the map out again over several turns, the
        map shown meanwhile being the whole one in the old zone; the new
        one keeps the task states known.
        """
        self.until_shown({})
        before = self.shown()
        self.bus.publish("manifest", {"timezone": "Asia/Tokyo"}, retain=True)
        self.clock.advance(0)
        self.assertGreater(self.until_shown(before), 3)
        # A Pacific day begins in the afternoon of Tokyo's.
        self.assertEqual(self.shown()["load"], ("2025-06-01", "WWPD"))
        self.assertFalse(self.monitor.current.laying_out)

    def test_eventsMeanwhile(self) -> None:
        """
        A task that ends while the map is laid out, before its row is, is
        shown with its state as soon as the map is, before the store is
        read again.
        """
        self.clock.advance(0)
        self.turn()
        name = self.daemon.asked[-1].filename
        self.bus.publish("task.done", {"report": "wind", "filename": name, "revision": 0})
        self.until_shown({})
        self.assertEqual(self.shown()["wind"], ("2025-06-02", "WD"))

    def test_eventAsLayoutStarts(self) -> None:
        """
        A task that ends in the turn a layout starts, before its first
        step, is shown with its state once the map is, as the store has
        it, not only after the store is read again.
        """
        self.until_shown({})
        before = self.shown()
        self.bus.publish("manifest", {"timezone": "Asia/Tokyo"}, retain=True)
        self.clock.advance(0)
        store = self.daemon.store
        task = self.successResultOf(store.claim("w", 60))
        assert task is not None
        self.successResultOf(store.finish(task.id, "w", DOWNLOADED))
        self.bus.publish("task.done", {"report": task.report, "filename": task.filename, "revision": 0})
        for ignored in range(100):
            if not self.monitor.current.laying_out:
                break
            self.turn()
        self.assertFalse(self.monitor.current.laying_out, "never shown")
        laid_out = self.shown()
        self.assertNotEqual(laid_out, before)
        self.clock.advance(RESYNC)
        self.assertEqual(laid_out, self.shown())

    def test_newerSupersedes(self) -> None:
        """
        A newer list of requests, or another zone, while a map is laid out
        stops that layout: the newer one goes on (from the rows laid out so
        far, for a list; anew, for a zone), and only the newest is shown.
        """
        self.clock.advance(0)
        self.turn()
        self.daemon.asked = [*self.daemon.asked, *day_requests("solar", datetime.date(2025, 6, 1), 1)]
        self.clock.advance(INTERVAL)
        self.turn()
        self.bus.publish("manifest", {"timezone": "UTC"}, retain=True)
        self.clock.advance(0)
        first, second, third = self.tasks
        for stopped in (first, second):
            self.failureResultOf(stopped.whenDone(), TaskStopped)
        self.until_shown({})
        self.assertEqual(sorted(self.shown()), ["lmp", "load", "solar", "wind"])
        # A Pacific day is the end of a UTC day and the start of the next.
        self.assertEqual(self.shown()["solar"], ("2025-06-01", "WW"))
        self.successResultOf(third.whenDone())

    def test_stopped(self) -> None:
        """
        A monitor stopped while it lays a map out stops laying it out.
        """
        self.clock.advance(0)
        self.turn()
        self.monitor.stopService()
        self.failureResultOf(self.tasks[0].whenDone(), TaskStopped)
        self.assertEqual(self.turns.getDelayedCalls(), [])
        self.assertEqual(self.shown(), {})

    def test_fewAtOnce(self) -> None:
        """
        A change that lays out no more than L{Monitor.at_once} requests
        anew, as a day passing or a report added, is made at once.
        """
        self.until_shown({})
        count = len(self.tasks)
        self.daemon.asked = [
            *self.daemon.asked[1:],
            *day_requests("lmp", datetime.date(2025, 6, 4), 1),
            *day_requests("solar", datetime.date(2025, 6, 1), 2),
        ]
        self.clock.advance(INTERVAL)
        self.assertEqual(self.shown()["lmp"], ("2025-06-02", "WWW"))
        self.assertEqual(self.shown()["solar"], ("2025-06-01", "WW"))
        self.assertEqual(len(self.tasks), count)
