"""
The C{monitor} service: follows the bus and the daemon's C{Status}, and
keeps the L{Snapshot} that the HTTP side serves, with each report's
health.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, FirstError, inlineCallbacks
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import CooperativeTask, Cooperator, LoopingCall, TaskFinished, TaskStopped
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour import __version__
from harbour.bus import Subscription
from harbour.config.topics import TOPICS, ManifestTopic, TopicError
from harbour.config.watcher import LOADED
from harbour.errors import HarbourError
from harbour.interfaces import IBus, IDaemon, IEvent, IStatusSource, StatusDocument
from harbour.oasis.requests import ReportURL
from harbour.web.coverage import APPLIED, LEGEND, Coverage
from harbour.web.health import Health, ReportActivity, Thresholds, assess
from harbour.web.snapshot import ReportView, Snapshot
from harbour.web.tally import Tally

#: Seconds between two readings of the daemon's C{Status}.
INTERVAL = 5.0

#: Seconds after an event before C{Status} is read again, so that the
#: counts soon agree with the map the event changed.
SOON = 1.0

#: Seconds between two readings of every task's state from the store.  The
#: events keep the map current between them, but some changes come with
#: none: a remote worker's outcome whose event was lost while its link to
#: the hub was down, or a task that a changed request puts back to
#: C{pending} as it is created again.  Such a change shows within this.
RESYNC = 300.0

#: The least wait after a reading of the task states, as a multiple of
#: the time it took: on a large store (a reading of hundreds of thousands
#: of tasks takes seconds of Redis's time), readings take at most this
#: share of it.
RESYNC_SHARE = 20

#: The most requests the map lays out anew in one turn of the reactor (a
#: few tens of milliseconds of it): a map that would lay out more, at start,
#: when the C{timezone} changes, or when the configuration changes every
#: report's range, is laid out a step at a time beside the one shown, and
#: shown once whole.
AT_ONCE = 20_000

#: Events after which the task states are read from the store again: the
#: end of a Redis outage (writes made just before it may be lost).  New
#: tasks need no reading (a file with no known task counts as pending); an
#: operator's retry does, and is told by its C{task.created} event's
#: C{retried}.
_RESYNC = frozenset({"store.connected"})

_DAY_NAMES: Mapping[str, str] = MappingProxyType({code: name for code, name, ignored in LEGEND})

#: What the monitor follows: task outcomes, the dataset's writes, Redis's
#: comings and goings, and the configuration's topics and reloads (a reload
#: that publishes them, or C{config.loaded}, succeeded) and errors.  Only
#: these, so that a topic of nobody's is still delivered to nobody.
FOLLOWED = ("task.*", "table.*", "store.*", "config.error", LOADED, *TOPICS, "reports*")


@implementer(IStatusSource)
@attr.s(eq=False)
class Monitor(Service):
    """
    Keeps L{current}, the snapshot of the daemon, up to date.

    @ivar daemon: The daemon: its C{Status}, requests and task store.
    @ivar zone: The zone whose days are the map's trading days until the
        C{manifest} topic gives its C{timezone}.
    @ivar resync: Seconds between two readings of every task's state (see
        L{RESYNC}).
    @ivar current: The latest snapshot; replaced whole, never changed.
    @ivar coverage: The coverage map shown: replaced whole by one laid out
        beside it when laying it out takes more than L{at_once} requests.
    @ivar cooperator: Runs the steps of a map being laid out (by default,
        a few milliseconds of them in each turn of C{reactor}).
    @ivar at_once: See L{AT_ONCE}.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    bus: IBus = attr.ib()
    daemon: IDaemon = attr.ib()
    interval: float = attr.ib(default=INTERVAL)
    resync: float = attr.ib(default=RESYNC)
    thresholds: Thresholds = attr.ib(factory=Thresholds)
    zone: ZoneInfo = attr.ib(factory=lambda: ZoneInfo("America/Los_Angeles"))
    cooperator: Cooperator = attr.ib(
        default=attr.Factory(lambda self: _cooperator(self.reactor), takes_self=True), kw_only=True
    )
    at_once: int = attr.ib(default=AT_ONCE, kw_only=True)
    coverage: Coverage = attr.ib(init=False)
    tally: Tally = attr.ib(init=False)
    current: Snapshot = attr.ib(init=False)
    _document: StatusDocument = attr.ib(factory=dict, init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    _loop: LoopingCall | None = attr.ib(default=None, init=False)
    _pending_rebuild: IDelayedCall | None = attr.ib(default=None, init=False)
    _pending_tick: IDelayedCall | None = attr.ib(default=None, init=False)
    _resync: bool = attr.ib(default=True, init=False)
    #: When the last reading of the task states began.
    _read_at: float | None = attr.ib(default=None, init=False)
    #: The reading of the task states under way: one at a time.
    _reading: Deferred[int] | None = attr.ib(default=None, init=False)
    #: How long the last reading took.
    _read_took: float = attr.ib(default=0.0, init=False)
    #: {report: {state: count}} as last read: kept while Redis is away, so
    #: that an outage does not look like a mirror with nothing to do.
    _counts: dict[str, dict[str, int]] = attr.ib(factory=dict, init=False)
    #: The last error of the store's outage under way, as C{Status} last
    #: said, or L{None}: the store may be connected to a Redis that refuses
    #: every write (C{OOM}, C{MISCONF}, C{READONLY}).
    _outage: str | None = attr.ib(default=None, init=False)
    #: Whether the service is stopping (or stopped): the daemon is not
    #: ready, whatever the last snapshot said.
    _stopping: bool = attr.ib(default=False, init=False)
    #: The map being laid out to replace L{coverage}, and its steps: one at
    #: a time, a newer layout going on from it (or replacing it, for a new
    #: zone).
    _building: Coverage | None = attr.ib(default=None, init=False)
    _laying_out: CooperativeTask[Any] | None = attr.ib(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.coverage = Coverage(self.zone)
        self.tally = Tally(self.daemon.owns, self.reactor.seconds, self.thresholds.window)
        self.current = Snapshot(self.reactor.seconds(), __version__)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the events of L{FOLLOWED}, and read C{Status} now and every
        L{interval}.
        """
        super().startService()
        self._stopping = False
        for pattern in FOLLOWED:
            self._subscriptions.append((yield self.bus.subscribe(pattern, self._heard)))
        self._loop = LoopingCall(self._safe_tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=True).addErrback(
            lambda failure: self.log.failure("monitor stopped", failure, service="monitor")
        )

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Say the daemon is stopping (a scraper may still ask), then stop
        reading and following.
        """
        super().stopService()
        self._stopping = True
        self.current = attr.evolve(self.current, ready="stopping")
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for pending in (self._pending_rebuild, self._pending_tick):
            if pending is not None and pending.active():
                pending.cancel()
        if self._reading is not None:
            # A reading of every task's pages is no use to a stopped monitor.
            self._reading.cancel()
        self._stop_laying_out()
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            yield self.bus.unsubscribe(subscription)

    def _heard(self, event: IEvent) -> None:
        topic: str = event.topic
        payload = event.payload
        before = self.coverage.version
        changed = self.tally.apply(topic, payload)
        if topic == "manifest":
            self._follow_zone(payload)
        if isinstance(payload, dict):
            filename = payload.get("filename")
            if topic in APPLIED and isinstance(filename, str) and not self.coverage.knows(filename):
                # A new window's task may end before the next reading lays
                # it out: the map keeps the states of its own files only.
                self._lay_out()
            self.coverage.apply(topic, payload)
            if self._building is not None:
                self._building.apply(topic, payload)
        changed = changed or self.coverage.version != before
        if _asks_resync(topic, payload):
            # Soon, rather than at the next reading: an operator is waiting.
            self._resync = changed = True
        if not changed:
            return
        # A burst of events makes one new snapshot at once, and one reading
        # of Status soon after.
        self._rebuild_soon()
        self._tick_soon(SOON)

    def _rebuild_soon(self) -> None:
        """
        Take a new snapshot in the reactor's next turn (once, however many
        ask before it).
        """
        if self._pending_rebuild is None or not self._pending_rebuild.active():
            self._pending_rebuild = self.reactor.callLater(0, self.rebuild)

    def _tick_soon(self, delay: float) -> None:
        """
        Read C{Status} (and what else L{tick} reads) in C{delay} seconds,
        if no such reading is waiting already.
        """
        if self._pending_tick is None or not self._pending_tick.active():
            self._pending_tick = self.reactor.callLater(delay, self._safe_tick)

    def _follow_zone(self, payload: object) -> None:
        """
        Lay the map out in the trading days of the C{manifest} topic's
        C{timezone}.
        """
        try:
            zone = ManifestTopic.from_payload(payload).timezone
        except TopicError as e:
            # The configuration checks it before publishing: whoever else
            # published it is not followed.
            self.log.warn("manifest ignored: {error}", error=str(e), service="monitor")
            return
        latest = self._building or self.coverage
        if str(latest.zone) == zone:
            return
        requests = latest.requested
        if self._building is None and len(requests or ()) <= self.at_once:
            self.coverage.set_zone(ZoneInfo(zone))
        else:
            # Every row is laid out again: a new map from the newest states.
            self._build(latest.fresh(ZoneInfo(zone)), requests or [])

    def _safe_tick(self) -> Deferred[None]:
        """
        L{tick}, its failure logged: the loop and the readings an event
        asks for must go on whatever one reading meets.
        """

        def failed(failure: Failure) -> None:
            self.log.failure("cannot take a snapshot", failure, service="monitor")

        return self.tick().addErrback(failed)

    @inlineCallbacks
    def tick(self) -> Generator[Deferred[Any], Any, None]:
        """
        Read C{Status}, the manifest's requests and (when due) the task
        states, then take a new snapshot.  Nothing here may stop the loop:
        what cannot be read is read on the next tick.
        """
        try:
            document = yield self.daemon.status()
            self._document = document.get("services", {})
            self._document["uptime"] = document.get("uptime", 0.0)
        except Exception:
            self.log.failure("cannot read the daemon's status", service="monitor")
        counts = _task_counts(self._document.get("work"))
        if counts is not None:
            self._counts = counts
        store = self._document.get("store")
        if isinstance(store, dict) and "connected" in store:
            self.tally.redis_up = bool(store["connected"])
            failing = store.get("outage_since") is not None
            self._outage = str(store.get("last_error") or "an outage is under way") if failing else None
        self._lay_out()
        # Not while a map is laid out: the states read would go to the map
        # shown only (the reading is made once the new one is shown).
        if self._read_due() and self._reading is None and self._building is None and self.tally.redis_up:
            self._resync = False
            self._read_at = self.reactor.seconds()
            self._reading = self.coverage.load(self.daemon.task_store())
            try:
                yield self._reading
                self._read_took = self.reactor.seconds() - self._read_at
            except Exception as e:
                if not self.running:
                    return
                # The store reads pages at once: its errors come wrapped.
                cause = e.subFailure.value if isinstance(e, FirstError) else e
                self._resync = True
                self.log.warn(
                    "cannot read task states: {error}",
                    error=str(cause) or type(cause).__name__,
                    service="monitor",
                )
            finally:
                self._reading = None
        self.rebuild()

    def _lay_out(self) -> None:
        """
        Lay the map out for the manifest's requests as they are now: at
        once if it takes few rows laid out anew, else beside the map shown
        (see L{AT_ONCE}).  The states of a report that comes (back) are
        read from the store soon: the map keeps none for files it does not
        show.
        """
        try:
            requests = self.daemon.requests()
        except HarbourError:  # no manifest here: the map stays as it is
            return
        if self._building is not None:
            if requests is not self._building.requested:
                # The newer list, from the rows laid out so far.
                self._build(self._building, requests)
            return
        before = set(self.coverage.reports())
        if not self.coverage.set_requests(requests, most=self.at_once):
            self._build(self.coverage.fresh(), requests)
        elif not before.issuperset(self.coverage.reports()):
            self._resync = True

    def _build(self, coverage: Coverage, requests: Sequence[ReportURL]) -> None:
        """
        Lay C{coverage} out for C{requests} a step at a time, in place of
        any layout under way, and show it once laid out.
        """
        previous = self._stop_laying_out()
        if previous is not None and previous is not coverage:
            self.cooperator.cooperate(previous.clearing())
        if self._reading is not None:
            # Its states reach the map shown only: read them again after.
            self._resync = True
        self._building = coverage
        task = self._laying_out = self.cooperator.cooperate(coverage.laying_out(requests))

        def failed(failure: Failure) -> None:
            if failure.check(TaskStopped):
                return
            self.log.failure("cannot lay the coverage map out", failure, service="monitor")
            if self._laying_out is task:
                self._building = self._laying_out = None
                self._rebuild_soon()

        task.whenDone().addCallbacks(lambda ignored: self._built(task), failed)
        self._rebuild_soon()

    def _built(self, task: CooperativeTask[Any]) -> None:
        """
        Show the map C{task} laid out.
        """
        if self._laying_out is not task or self._building is None:
            return
        before = set(self.coverage.reports())
        shown, self.coverage, self._building, self._laying_out = self.coverage, self._building, None, None
        # Freed a step at a time too (a reading still under way finds it
        # empty, and keeps nothing).
        self.cooperator.cooperate(shown.clearing())
        if not before.issuperset(self.coverage.reports()):
            self._resync = True
        if self._resync:
            self._tick_soon(0)
        self._rebuild_soon()

    def _stop_laying_out(self) -> Coverage | None:
        """
        Stop the steps of the layout under way, if any.

        @return: The map it was laying out, if any.
        """
        task, building, self._laying_out, self._building = self._laying_out, self._building, None, None
        if task is not None:
            with contextlib.suppress(TaskFinished):
                task.stop()
        return building

    def _read_due(self) -> bool:
        """
        @return: Whether the task states are to be read from the store: an
            event asked for it, or the last reading began L{resync} seconds
            ago or more, and L{RESYNC_SHARE} times as long as it took.
        """
        if self._resync:
            return True
        wait = max(self.resync, RESYNC_SHARE * self._read_took)
        return self._read_at is not None and self.reactor.seconds() - self._read_at >= wait

    def rebuild(self) -> None:
        """
        Take a new snapshot from what is known now.
        """
        now = self.reactor.seconds()
        services = self._document
        counts = self._counts
        recent = self.tally.within_window()
        views = []
        for report in sorted(set(counts) | set(self.coverage.reports())):
            views.append(self._view(report, counts.get(report, {}), recent.get(report, {}), now))
        store = services.get("store") or {}
        config = services.get("config") or {}
        work = services.get("work") or {}
        self.current = Snapshot(
            taken=now,
            version=__version__,
            reports=tuple(views),
            requests=_copy(self.tally.requests),
            fetched_bytes=dict(self.tally.fetched_bytes),
            retries=_copy(self.tally.retries),
            rows_written=dict(self.tally.rows_written),
            table_failures=dict(self.tally.table_failures),
            config_successful=self.tally.config_successful,
            config_success_at=self.tally.config_success_at,
            config_errors=tuple(config.get("errors") or ()),
            redis_connected=bool(self.tally.redis_up),
            redis_failing=(self._outage or "") if self.tally.redis_up else "",
            redis_error=str(store.get("last_error") or ""),
            redis=str(store.get("redis") or ""),
            refresh_error=_refresh_error(work.get("refresh_error")),
            laying_out=self._building is not None,
            ready=self._unready(),
            workers=dict(services.get("workers") or {}),
            publications=dict(services.get("publications") or {}),
            download=dict(services.get("download") or {}),
            uptime=float(services.get("uptime") or 0.0),
        )

    def _view(
        self, report: str, counts: Mapping[str, int], recent: Mapping[str, int], now: float
    ) -> ReportView:
        newest = self.coverage.newest_unmirrored(report)
        activity = ReportActivity(
            counts=counts,
            failed_recently=recent.get("failed", 0),
            ended_recently=recent.get("ended", 0),
            retried_recently=recent.get("retried", 0),
            last_success=self.tally.last_success.get(report),
            unmirrored_since=newest[1] if newest else None,
            newest_day=newest[0] if newest else "",
        )
        # Counted when a row changes, not at every snapshot (a tenth of a
        # second for a million days).
        days = self.coverage.days(report) if self.coverage.shows(report) else {}
        return ReportView(
            name=report,
            health=assess(activity, now, self.thresholds),
            counts=dict(counts),
            last_success=self.tally.last_success.get(report),
            last_error=self.tally.last_error.get(report),
            days={_DAY_NAMES[code]: n for code, n in days.items() if code in _DAY_NAMES},
        )

    def _unready(self) -> str:
        """
        @return: Why the daemon is not ready to serve, or C{""}.
        """
        if self._stopping:
            return "stopping"
        if self.tally.config_success_at is None:
            errors = (self._document.get("config") or {}).get("errors") or []
            return "configuration not loaded" + (f": {errors[0]}" if errors else "")
        if not self.tally.redis_up:
            return "Redis is not reachable"
        if self._outage is not None:
            return f"Redis commands fail: {self._outage}"
        siblings = list(self.parent) if self.parent is not None else [self]
        stopped = sorted(str(s.name) for s in siblings if not s.running)
        if stopped:
            return f"services not started: {', '.join(stopped)}"
        return ""

    def health(self) -> dict[str, Health]:
        """
        @return: C{{report: its health}} as of the last snapshot.
        """
        return {view.name: view.health for view in self.current.reports}

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}: each report's health, and readiness.
        """
        return {
            "reports": {name: health.to_json() for name, health in self.health().items()},
            "ready": self.current.ready or "ready",
            "thresholds": self.thresholds.to_json(),
        }


def _cooperator(reactor: IReactorTime) -> Cooperator:
    """
    @return: A L{Cooperator} that runs its steps in C{reactor}'s turns, a
        few milliseconds of them at a time (as Twisted's own does in the
        global reactor's).
    """
    return Cooperator(scheduler=lambda step: reactor.callLater(0, step))


def _asks_resync(topic: str, payload: object) -> bool:
    """
    @return: Whether the event of C{topic} means the task states must be
        read from the store again.
    """
    retried = topic == "task.created" and isinstance(payload, dict) and bool(payload.get("retried"))
    return retried or topic in _RESYNC


def _task_counts(work: object) -> dict[str, dict[str, int]] | None:
    """
    @return: C{{report: {state: count}}} from the C{work} service's
        C{Status}, or L{None} if it could not count them (Redis away).
    """
    tasks = work.get("tasks") if isinstance(work, dict) else None
    if not isinstance(tasks, dict) or isinstance(tasks.get("error"), str):
        return None
    return {report: dict(counts) for report, counts in tasks.items() if isinstance(counts, dict)}


def _refresh_error(error: object) -> dict[str, str] | None:
    """
    @return: The C{work} service's C{refresh_error}, as its C{Status} says
        it (C{since} and C{error}), or L{None} if there is none.
    """
    if not isinstance(error, dict):
        return None
    return {"since": str(error.get("since") or ""), "error": str(error.get("error") or "")}


def _copy(nested: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {key: dict(inner) for key, inner in nested.items()}
