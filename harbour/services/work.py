"""
The C{work} service (the seed's WORK SERVER).

C{refresh()} asks the manifest for every request and creates the tasks
that are missing (C{work_server:refresh()} → C{manifest_server:reports()}
→ C{harbour_db:create(tasks)}).  It runs at start, every
C{refresh_interval}, on the C{Refresh} command, and whenever the
C{manifest} or C{reports} topics change or the manifest announces newly
published days (C{publications.updated}); refreshes asked for while one runs
are folded into one more.  The first refresh of a day puts the days still
ahead of a report published ahead (L{harbour.oasis.requests.published_ahead})
back to C{pending}, to be fetched again that day.  It applies the publications log's revisions
(a task whose window changed in OASIS after its fetch goes back to
C{pending}, announced with C{task.revised}), purges the retired tasks past
their retention, and logs each report's progress as it changes.  (Expired
leases are swept by L{harbour.services.sweeping}.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from typing import Any, cast

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.bus import Subscription
from harbour.config.paging import follow_reports
from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import (
    IBus,
    IEvent,
    IManifest,
    IPausable,
    IPublications,
    IStatusSource,
    ITaskStore,
    StatusDocument,
)
from harbour.oasis.client import described
from harbour.oasis.publications import Publication
from harbour.oasis.requests import ReportURL
from harbour.services.cycle import guarded
from harbour.services.knowledge import iso
from harbour.services.progress import ProgressLog
from harbour.services.sweeping import sweep_interval
from harbour.store.outages import STORE_RETRY, next_retry
from harbour.store.tasks import DOWNLOADING, PENDING, RETIRED, task_id

#: Seconds between progress lines in the log (only when something changed).
PROGRESS_INTERVAL = 5.0

#: The longest wait before retrying a refresh that met an unavailable store.
MAX_RETRY_DELAY = 30.0

#: Files named per C{task.retired} event: well within one AMP value.
RETIRED_PER_EVENT = 200


@implementer(IStatusSource, IPausable)
@attr.s(eq=False)
class WorkService(Service):
    """
    Keeps the task store in step with the manifest.

    @ivar ready: Called at start; fires once the store can be used.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    manifest: IManifest = attr.ib()
    bus: IBus = attr.ib()
    settings: WorkTopic = attr.ib(factory=WorkTopic)
    publications: IPublications | None = attr.ib(default=None)
    progress_interval: float = attr.ib(default=PROGRESS_INTERVAL)
    # Deferred[Any]: what it fires with is not used.
    ready: Callable[[], Deferred[Any]] = attr.ib(default=lambda: succeed(None))
    paused: bool = attr.ib(default=False)
    _running_refresh: Deferred[int] | None = attr.ib(default=None, init=False)
    _waiting: list[Deferred[int]] = attr.ib(factory=list, init=False)
    _scheduled: IDelayedCall | None = attr.ib(default=None, init=False)
    _retry_delay: float = attr.ib(default=1.0, init=False)
    _timers: dict[str, LoopingCall] = attr.ib(factory=dict, init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    _last_refresh: dict[str, object] = attr.ib(factory=dict, init=False)
    # The error of the refreshes failing since the last that worked, and
    # since when: Status shows it beside the last refresh that worked.
    _refresh_error: dict[str, object] | None = attr.ib(default=None, init=False)
    _progress: ProgressLog = attr.ib(
        default=attr.Factory(lambda self: ProgressLog(self.store), takes_self=True), init=False
    )
    _asked: frozenset[str] = attr.ib(default=frozenset(), init=False)
    _request_interval: float = attr.ib(default=DownloadTopic().min_request_interval, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the configuration, and start the timers.
        """
        super().startService()
        self._subscriptions = yield gatherResults(
            [
                self.bus.subscribe("work", self._work_changed),
                self.bus.subscribe("download", self._download_changed),
                self.bus.subscribe("manifest", lambda event: self.schedule()),
                follow_reports(self.bus, lambda reports: self.schedule()),
                self.bus.subscribe("store.connected", lambda event: self.schedule(now=True)),
                self.bus.subscribe("publications.updated", lambda event: self.schedule()),
            ]
        )
        if self.publications is not None:
            self.publications.observe(self.revise)
        yield self.ready()
        self._start_timers()
        self.schedule()

    def _start_timers(self) -> None:
        """
        Start each timer that does not run at its interval under the
        current settings (every one, at start).  The others keep their
        time: restarted, each would be put off by a whole interval by any
        edit of C{[work]}, the refresh by an hour.
        """
        timers: dict[str, tuple[float, Callable[[], object]]] = {
            "refresh": (self.settings.refresh_interval, self.schedule),
            # As often as leases are swept (see services.sweeping).
            "purge": (sweep_interval(self.settings), self._purge),
            "progress": (self.progress_interval, self._progress),
        }
        for name, (interval, call) in timers.items():
            running = self._timers.get(name)
            if running is not None and running.running:
                if running.interval == interval:
                    continue
                running.stop()
            # Guarded: a LoopingCall stops for good on its first failure.
            timer = LoopingCall(guarded(self.log, getattr(call, "__name__", "timer"), call, "work"))
            timer.clock = self.reactor
            timer.start(interval, now=False)
            self._timers[name] = timer

    def _download_changed(self, event: IEvent) -> None:
        # Only to say how long the backlog takes at the politeness rule.
        self._request_interval = DownloadTopic.from_payload(event.payload).min_request_interval

    def _work_changed(self, event: IEvent) -> None:
        settings = WorkTopic.from_payload(event.payload)
        changed = settings != self.settings
        self.settings = settings
        if changed and self._timers:
            self._start_timers()

    def pause(self) -> None:
        """
        See L{IPausable.pause}: refresh nothing until resumed.
        """
        self.paused = True

    def resume(self) -> None:
        """
        See L{IPausable.resume}: refresh, and go on refreshing.
        """
        self.paused = False
        self.schedule()

    def schedule(self, now: bool = False) -> None:
        """
        Refresh soon, once, however many times this is called meanwhile.

        @param now: Whether a retry after a failed refresh, if one waits,
            is to run now rather than when it comes due: the store is
            connected again.  Other reasons wait for it, so that events
            arriving during an outage do not undo its backoff.
        """
        if self.paused:
            return
        if not self._timers:
            return  # the store is not ready: start-up refreshes then
        if self._scheduled is None or not self._scheduled.active():
            self._scheduled = self.reactor.callLater(0, self._refresh_logged)
        elif now and self._scheduled.getTime() > self.reactor.seconds():
            self._scheduled.reset(0)

    def _refresh_logged(self) -> None:
        if self.paused:
            # A retry after a failed refresh, due after a pause: resuming
            # refreshes.
            return
        self.refresh().addErrback(self._refresh_failed)

    def _refresh_failed(self, failure: Failure) -> None:
        if failure.check(StoreUnavailable):
            # The store logs the outage, once; each try is only a detail.
            self.log.debug(
                "refresh postponed {delay:g} s: {error}",
                delay=self._retry_delay,
                error=failure.getErrorMessage(),
                service="work",
            )
        else:
            self.log.failure("refresh failed", failure, service="work")
        # One timer at a time: a refresh asked for while this one failed
        # may be waiting already.
        if self.running and (self._scheduled is None or not self._scheduled.active()):
            self._scheduled = self.reactor.callLater(self._retry_delay, self._refresh_logged)
            self._retry_delay = min(MAX_RETRY_DELAY, self._retry_delay * 2)

    def refresh(self) -> Deferred[int]:
        """
        Create the tasks the manifest has and the store lacks.

        @return: A Deferred firing with how many were created; a refresh
            asked for while one runs waits for one more to run after it.
        """
        d: Deferred[int] = Deferred()
        self._waiting.append(d)
        if self._running_refresh is None:
            self._run()
        return d

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._running_refresh = self._refresh_once()

        def done(result: int | Failure) -> None:
            self._running_refresh = None
            self._note_outcome(result)
            for d in waiting:
                if isinstance(result, Failure):
                    d.errback(result)
                else:
                    d.callback(result)
            if self._waiting:  # asked for while this one ran
                self._run()

        self._running_refresh.addBoth(done)

    def _note_outcome(self, result: int | Failure) -> None:
        """
        Keep the error of a failed refresh (since the first of a run of
        failures), or forget it once one works.
        """
        if not isinstance(result, Failure):
            self._refresh_error = None
        elif not result.check(CancelledError):
            since = self._refresh_error["since"] if self._refresh_error else iso(self.reactor.seconds())
            self._refresh_error = {"error": described(cast(BaseException, result.value)), "since": since}

    @inlineCallbacks
    def _refresh_once(self) -> Generator[Deferred[Any], Any, int]:
        started = self.reactor.seconds()
        # Both at once: caps that change between them would leave days in neither.
        requests, held = self.manifest.reports(), self.manifest.held_back()
        since, ahead = self.manifest.ahead()
        created = yield self.store.create(requests)
        if ahead:
            # Each day, the days still ahead are fetched again: a day once
            # past keeps the answer fetched on it (see published_ahead).
            again = yield self.store.refetch_ahead([task_id(request.filename) for request in ahead], since)
            if again:
                self.log.info(
                    "{count} windows of days ahead to fetch again today", count=len(again), service="work"
                )
        yield self._retire(requests, held)
        self._retry_delay = 1.0
        total = sum(created.values())
        self._last_refresh = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requests": len(requests),
            "created": total,
            "seconds": round(self.reactor.seconds() - started, 3),
        }
        for report, count in sorted(created.items()):
            self.log.info("{report}: {count} new tasks", report=report, count=count, service="work")
            yield self.bus.publish("task.created", {"report": report, "count": count})
        return total

    @inlineCallbacks
    def _retire(
        self, requests: list[ReportURL], held: list[ReportURL]
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Retire the tasks the manifest no longer asks for (reports disabled
        or removed, windows out of range), whenever the set of requests
        changed since the last time.  The days C{held} back until the
        publications log shows them are asked for all the same.
        """
        asked = frozenset(task_id(request.filename) for request in (*requests, *held))
        if asked == self._asked:
            return
        retirement = yield self.store.retire_with_files((yield self.store.ids()) - asked)
        self._asked = asked
        if retirement.count:
            self.log.info(
                "{count} tasks retired: the configuration no longer asks for them",
                count=retirement.count,
                service="work",
            )
        files = [{"report": report, "filename": filename} for report, filename in retirement.files]
        # In pieces: a change of a report's windows can retire thousands of
        # files, and one event is one AMP value.
        for start in range(0, len(files), RETIRED_PER_EVENT):
            yield self.bus.publish("task.retired", {"files": files[start : start + RETIRED_PER_EVENT]})

    @inlineCallbacks
    def revise(self, entries: list[Publication]) -> Generator[Deferred[Any], Any, None]:
        """
        Put back to C{pending} the tasks whose data changed in OASIS after
        they were fetched, and announce each with C{task.revised}; a
        retired one is marked to come back pending if asked for again.

        @raise StoreUnavailable: if harbour stops while Redis is away: the
            entries are not applied (the publications follower reads them
            again).
        """
        found = self.manifest.revised(entries)
        revisions = [(task_id(request.filename), entry.published, entry.version) for request, entry in found]
        delay = STORE_RETRY[0]
        while True:
            try:
                changed = yield self.store.revise(revisions)
                break
            except StoreUnavailable:
                # Wait the outage out (the store logs it), unless harbour
                # stops: then the follower reads these entries again at the
                # next start.
                if not self.running:
                    raise
            yield deferLater(self.reactor, delay, lambda: None)
            delay = next_retry(delay)
        # Some may have been noted by an earlier call, their downloads then
        # under way: each says what it is.
        for task in changed:
            if task["previous"] == RETIRED:
                # Nothing is fetched yet: the window is not asked for.
                self.log.info(
                    "{report}: {filename} changed in OASIS while retired: fetched again if asked for again",
                    report=task["report"],
                    filename=task["filename"],
                    service="work",
                )
                continue
            self.log.info(
                "{report}: {filename} changed in OASIS after it was fetched: fetching it again",
                report=task["report"],
                filename=task["filename"],
                service="work",
            )
            yield self.bus.publish("task.revised", task)

    @inlineCallbacks
    def _purge(self) -> Generator[Deferred[Any], Any, None]:
        try:
            # Measured on the store's clock, which retirement is stamped with.
            yield self.store.purge(self.settings.retired_retention)
        except StoreUnavailable as e:
            # The store logs the outage, once.
            self.log.debug("cannot purge retired tasks: {error}", error=str(e), service="work")

    @inlineCallbacks
    def status(self) -> Generator[Deferred[Any], Any, StatusDocument]:
        """
        See L{IStatusSource.status}: the per-report counts by state.
        """
        try:
            counts = yield self.store.counts()
            revisions = yield self.store.revision_counts()
        except StoreUnavailable as e:
            counts = revisions = {"error": str(e)}
        else:
            # A report the configuration no longer names leaves Status
            # with its last task, though its retired tasks are kept a while.
            named = self.manifest.report_names()
            counts = {r: c for r, c in counts.items() if r in named or set(c) - {RETIRED}}
        return {
            "tasks": counts,
            "backlog": backlog(counts, self._request_interval),
            "revisions": revisions,
            "last_refresh": self._last_refresh,
            "refresh_error": self._refresh_error,
            "paused": self.paused,
            "refresh_interval": self.settings.refresh_interval,
        }

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop the timers and wait for a refresh under way.
        """
        super().stopService()
        for timer in self._timers.values():
            if timer.running:
                timer.stop()
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        for subscription in self._subscriptions:
            yield self.bus.unsubscribe(subscription)
        if self._running_refresh is not None:
            # Its outcome went to whoever asked for the refresh.
            with contextlib.suppress(Exception):
                yield self._running_refresh


def backlog(counts: dict[str, Any], interval: float) -> dict[str, float]:
    """
    @param counts: Tasks by report and state.
    @param interval: Seconds between requests (C{min_request_interval}).
    @return: The requests still to make and the hours they take, one
        every C{interval}: the time left to catch up.
    """
    left = sum(
        states.get(PENDING, 0) + states.get(DOWNLOADING, 0)
        for states in counts.values()
        if isinstance(states, dict)
    )
    return {"requests": left, "hours": round(left * interval / 3600, 2)}
