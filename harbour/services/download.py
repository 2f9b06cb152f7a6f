"""
The C{download} service (the seed's DOWNLOAD SERVER): the claim loop.

C{concurrency} workers each claim a task (newest trading day first; the
claims of workers asking at once go to the store together, see
L{harbour.services.claiming}) and fetch it through the shared
L{OasisClient} (politeness, deadlines, caps) into a hidden temporary file
beside the target, renewing the lease while the attempt lasts.  The answer
is verified as it streams in (L{harbour.oasis.streaming}; off the reactor
thread, read back, only when the stream cannot judge it) and committed in
groups (L{harbour.services.commit}): data is renamed into place (no
partial file ever carries a final name); anything else retries with
exponential backoff and jitter, honouring C{Retry-After}, until
C{max_attempts}.  A worker claims its next task as soon as its download is
over: the commit and the record of the last one go on meanwhile, a few per
worker at most.  Every C{audit_interval}, the files downloaded here are
checked to be still there (L{harbour.services.audit}).  Nothing is
claimed, audited or tidied before the first C{download} and C{work}
topics are in force (L{harbour.services.configured}): the defaults may
not be the configuration's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar, cast

import attr
from twisted.application.service import Service
from twisted.internet.defer import (
    Deferred,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from harbour import __version__
from harbour.bus import Subscription
from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IEvent, IPausable, IStatusSource, ITaskStore, StatusDocument
from harbour.oasis.client import OasisClient
from harbour.processes import process_name
from harbour.services.activity import DownloadActivity
from harbour.services.announcing import unsubscribe_all
from harbour.services.attempt import Attempts
from harbour.services.audit import Audit
from harbour.services.claiming import Claims
from harbour.services.commit import GroupCommit
from harbour.services.configured import FirstConfiguration
from harbour.services.cycle import guarded
from harbour.services.files import remove_abandoned
from harbour.services.storage import StorageIds
from harbour.services.waking import Waker
from harbour.store.outages import STORE_RETRY, next_retry
from harbour.store.tasks import Task

_R = TypeVar("_R")

#: The least time between two syncs of the download directory's file
#: system (see L{GroupCommit.interval}): a file waits for at most two.
SYNC_INTERVAL = 0.02

#: The least time between two beats a download's start asks for.
BEAT_SPACING = 0.1

#: What a worker says it waits for (its heartbeat's C{waiting}, as
#: L{harbour.services.configured.WAITING}) until its store can be used.
STORE_WAITING = "its task store"

#: How many attempts per download slot may be past their download, being
#: committed and recorded, before the workers wait for them.
FINISHING_PER_WORKER = 8


@implementer(IStatusSource, IPausable)
@attr.s(eq=False)
class DownloadService(Service):
    """
    Downloads claimed tasks.

    @ivar reactor: Also an L{IReactorFromThreads}, to run disk work in
        threads.
    @ivar owner: This process's name on its claims (host and pid).
    @ivar poll_interval: How often an idle worker looks for due tasks.
    @ivar ready: Called at start; fires once the store can be used.
    @ivar configured: Whether C{settings} and C{work}, as given, are the
        configuration in force; if not (by default), nothing is claimed
        until the first C{download} and C{work} topics are heard.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    client: OasisClient = attr.ib()
    bus: IBus = attr.ib()
    data_dir: Path = attr.ib(converter=Path)
    settings: DownloadTopic = attr.ib(factory=DownloadTopic)
    work: WorkTopic = attr.ib(factory=WorkTopic)
    owner: str = attr.ib(factory=process_name)
    #: The C{--prefix} of the store's keys, told in heartbeats so that the
    #: hub sees a worker that claims from other keys than its own.
    prefix: str | None = attr.ib(default=None)
    poll_interval: float = attr.ib(default=2.0)
    heartbeat_interval: float = attr.ib(default=5.0)
    janitor_interval: float = attr.ib(default=600.0)
    rng: random.Random = attr.ib(factory=random.Random)
    paused: bool = attr.ib(default=False)
    # Deferred[Any]: what it fires with is not used.
    ready: Callable[[], Deferred[Any]] = attr.ib(default=lambda: succeed(None))
    configured: bool = attr.ib(default=False)
    _configuration: FirstConfiguration = attr.ib(init=False)
    _workers: dict[int, Deferred[None]] = attr.ib(factory=dict, init=False)
    # Attempts whose bytes are in, being committed and recorded: their
    # workers have moved on to the next claim.
    _finishing: set[Deferred[None]] = attr.ib(factory=set, init=False)
    _waker: Waker = attr.ib(init=False)
    activity: DownloadActivity = attr.ib(init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    _started: bool = attr.ib(default=False, init=False)
    _store_ready: bool = attr.ib(default=False, init=False)
    _threads: ThreadPool | None = attr.ib(default=None, init=False)
    _heartbeat: LoopingCall | None = attr.ib(default=None, init=False)
    _janitor: LoopingCall | None = attr.ib(default=None, init=False)
    _attempts: Attempts = attr.ib(init=False)
    # The temporary files of the attempts under way: not the janitor's.
    _temporaries: set[Path] = attr.ib(factory=set, init=False)
    _claims: Claims = attr.ib(init=False)
    _last_beat: float = attr.ib(default=float("-inf"), init=False)
    _next_beat: IDelayedCall | None = attr.ib(default=None, init=False)
    _directory: Path = attr.ib(init=False)
    _directory_of: DownloadTopic | None = attr.ib(default=None, init=False)
    _storages: StorageIds = attr.ib(init=False)
    #: The audit of the files downloaded here (see L{harbour.services.audit}).
    audit: Audit = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._waker = Waker(self.reactor, self.poll_interval)
        self._configuration = FirstConfiguration.given(self.configured)
        self.activity = DownloadActivity(self.reactor)
        self.client.configure(self.settings)
        self._storages = StorageIds(lambda f, *args: self._in_thread(f, *args), "download")
        self.audit = Audit(
            self.reactor,
            self.store,
            lambda f, *args: self._in_thread(f, *args),
            lambda: self.directory,
            self.storage,
            lambda: self.settings.audit_interval,
        )

    @property
    def directory(self) -> Path:
        """
        Where files go.
        """
        # Asked once per attempt: made anew only when the settings change.
        settings = self.settings
        if self._directory_of is not settings:
            self._directory = self.data_dir / settings.directory
            self._directory_of = settings
        return self._directory

    def storage(self, directory: Path) -> Deferred[str]:
        """
        @return: A L{Deferred} firing with the storage id of C{directory}
            (see L{harbour.services.storage}), or C{""} if it cannot be
            told; it never fails.
        """
        return self._storages.of(directory)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the C{download} and C{work} topics, wake on C{task.created},
        and start the workers once the store is ready and the first of
        both topics is in force.
        """
        super().startService()
        # Disk work (sync, verify, rename) of every worker at once: the
        # reactor's shared pool would queue it behind other work.
        self._threads = ThreadPool(minthreads=0, maxthreads=64, name="harbour-download")
        self._threads.start()
        self._claims = Claims(self.store)
        self._attempts = Attempts(
            self,
            self.reactor,
            self.store,
            self.client,
            self.bus,
            self.activity,
            self._in_thread,
            GroupCommit(self._in_thread, clock=self.reactor, interval=SYNC_INTERVAL),
            self._temporaries,
        )
        self._subscriptions = yield gatherResults(
            [
                self.bus.subscribe("download", self._download_changed),
                self.bus.subscribe("work", self._work_changed),
                self.bus.subscribe("task.created", lambda event: self.wake()),
                self.bus.subscribe("task.revised", lambda event: self.wake()),
                self.bus.subscribe("store.connected", lambda event: self.wake()),
            ]
        )
        if not self.running:
            return  # stopped while subscribing: nothing to beat for
        # Before the waits: the hub lists a worker that waits, as waiting,
        # and closes a link silent for long (see harbour.amp.server).
        self._heartbeat = LoopingCall(guarded(self.log, "heartbeat", self._beat_now, service="download"))
        self._heartbeat.clock = self.reactor
        ready = self.ready().addCallback(self._store_is_ready)
        self._heartbeat.start(self.heartbeat_interval)
        yield ready
        if not self.running:
            return  # stopped meanwhile
        waited = not self._configuration.arrived
        arrived = yield self._configuration.arrives(
            self.log, "waiting for a valid configuration before downloading", service="download"
        )
        if not arrived:
            return  # stopped meanwhile
        if waited:
            self.beat()  # no longer waiting: not only at the next heartbeat
        self._started = True
        self._janitor = LoopingCall(guarded(self.log, "janitor", self._tidy, service="download"))
        self._janitor.clock = self.reactor
        self._janitor.start(self.janitor_interval)
        self.audit.start()
        self._adjust_workers()

    def _store_is_ready(self, ignored: object) -> None:
        started = self._heartbeat is not None and self._heartbeat.running
        self._store_ready = True
        if started and self.running:
            self.beat()  # no longer waiting for it: not only at the next heartbeat

    def _download_changed(self, event: IEvent) -> None:
        self.settings = DownloadTopic.from_payload(event.payload)
        self.client.configure(self.settings)
        self._configuration.heard("download")
        self.audit.configured()
        self._adjust_workers()

    def _work_changed(self, event: IEvent) -> None:
        self.work = WorkTopic.from_payload(event.payload)
        self._configuration.heard("work")

    def _adjust_workers(self) -> None:
        if not (self.running and self._started):
            return
        for number in range(self.settings.concurrency):
            if number not in self._workers:
                self._workers[number] = self._worker(number)
        self.wake()

    def wake(self) -> None:
        """
        Let idle workers look for work now.
        """
        self._waker.wake()

    def pause(self) -> None:
        """
        Claim nothing new; downloads under way finish.
        """
        self.paused = True

    def resume(self) -> None:
        """
        Claim again.
        """
        self.paused = False
        self.wake()

    @inlineCallbacks
    def _worker(self, number: int) -> Generator[Deferred[Any], Any, None]:
        """
        One worker: claim, attempt, again, until stopped or no longer
        wanted.  Nothing ends it sooner: a store outage is waited out with
        backoff (the store logs it, once), and any other failure is logged
        and followed by the next claim.
        """
        outage = STORE_RETRY[0]
        try:
            while self.running and number < self.settings.concurrency:
                if self.paused:
                    yield self._waker.idle()
                    continue
                asked = self.reactor.seconds()
                seconds = self.work.lease_seconds
                try:
                    task = yield self._claims.claim(self.owner, seconds)
                except StoreUnavailable:
                    # Woken early when the connection is back.
                    yield self._waker.idle(outage * self.rng.uniform(0.5, 1.5))
                    outage = next_retry(outage)
                    continue
                except Exception:
                    self.log.failure("cannot claim", service="download")
                    yield self._waker.idle()
                    continue
                outage = STORE_RETRY[0]
                if task is None:
                    yield self._waker.idle()
                    continue
                yield self._attempt(task, asked, seconds)
                while len(self._finishing) > FINISHING_PER_WORKER * self.settings.concurrency:
                    yield self._waker.idle()
        finally:
            self._workers.pop(number, None)

    def _attempt(self, task: Task, claimed: float, lease_seconds: float) -> Deferred[None]:
        """
        Start an attempt at C{task}, claimed at C{claimed} for a lease of
        C{lease_seconds}.

        @return: A L{Deferred} firing once its download is over: its worker
            may claim again while the attempt is verified, committed and
            recorded (its lease renewed meanwhile), so that the time a
            durable commit takes is not a download slot's.  It never fails.
        """
        downloaded: Deferred[None] = Deferred()

        def over(ignored: object = None) -> None:
            if not downloaded.called:
                downloaded.callback(None)

        attempt = self._whole_attempt(task, claimed, lease_seconds, over)
        self._finishing.add(attempt)

        def ended(ignored: None) -> None:
            self._finishing.discard(attempt)
            over()
            if len(self._finishing) == FINISHING_PER_WORKER * self.settings.concurrency:
                self.wake()  # a worker may be waiting for this room

        attempt.addCallback(ended)
        return downloaded

    def _whole_attempt(
        self, task: Task, claimed: float, lease_seconds: float, downloaded: Callable[[], None]
    ) -> Deferred[None]:
        """
        Run one attempt at C{task}; it never fails.

        @param downloaded: Called once its bytes are in.
        """
        attempt = maybeDeferred(self._attempts.run, task, claimed, downloaded, lease_seconds)
        return attempt.addErrback(self._attempt_failed, task)

    @inlineCallbacks
    def _attempt_failed(self, failure: Failure, task: Task) -> Generator[Deferred[Any], Any, None]:
        """
        An attempt at C{task} failed with C{failure}.  A store outage that
        outlasted harbour is logged (the lease brings the task back); any
        other failure is unforeseen, logged, and the task is given back.
        It never fails.
        """
        if failure.check(StoreUnavailable):
            # Harbour stopped before the outcome could be recorded: the
            # lease expires and the task comes back; a complete file is
            # then verified, not fetched again.
            self.log.warn(
                "could not record {url}: {error}",
                url=task.url,
                error=failure.getErrorMessage(),
                service="download",
            )
            return
        self.log.failure("download of {url} failed unexpectedly", failure, url=task.url, service="download")
        try:
            yield self._attempts.outcomes.retry(
                task,
                f"internal error: {type(failure.value).__name__}: {failure.getErrorMessage()} (see the log)",
                None,
            )
        except Exception:
            self.log.failure("cannot give {url} back", url=task.url, service="download")

    def _in_thread(self, f: Callable[..., _R], *args: object) -> Deferred[_R]:
        # The pool is made at start, before any attempt or tidying runs.
        threads = cast(ThreadPool, self._threads)
        return deferToThreadPool(cast(IReactorFromThreads, self.reactor), threads, f, *args)

    @inlineCallbacks
    def _tidy(self) -> Generator[Deferred[Any], Any, None]:
        """
        Remove temporary files abandoned by workers that died, never those
        of this process's attempts under way.
        """
        if not self.directory.exists():
            return
        # Four idle deadlines: a live download would have written since.
        older_than = 4 * self.settings.idle_timeout + 60
        # A copy: the thread must not read the set while attempts change it.
        live = frozenset(self._temporaries)
        removed = yield self._in_thread(
            remove_abandoned, self.directory, older_than, self.reactor.seconds(), live
        )
        if removed:
            self.log.info("removed {count} abandoned temporary files", count=removed, service="download")

    def beat(self) -> None:
        """
        Tell the hub what this worker is doing (C{worker.status}) now, or
        if it was told less than L{BEAT_SPACING} ago, then: the downloads
        that start meanwhile share one beat.  Once stopped, nothing.
        """
        if self._next_beat is not None or not self.running:
            return
        wait = self._last_beat + BEAT_SPACING - self.reactor.seconds()
        if wait > 0:
            self._next_beat = self.reactor.callLater(wait, self._beat_now)
        else:
            self._beat_now()

    def _beat_now(self) -> None:
        """
        Tell the hub what this worker is doing, now.
        """
        if self._next_beat is not None and self._next_beat.active():
            self._next_beat.cancel()
        self._next_beat = None
        self._last_beat = self.reactor.seconds()
        self.bus.publish("worker.status", self._activity()).addErrback(lambda failure: None)

    def _activity(self) -> dict[str, Any]:
        """
        What this worker is doing: its heartbeat, and the core of its status.
        """
        told = {"prefix": self.prefix} if self.prefix is not None else {}
        waiting = self._configuration.status() if self._store_ready else {"waiting": STORE_WAITING}
        return {
            "owner": self.owner,
            "version": __version__,
            "paused": self.paused,
            "concurrency": self.settings.concurrency,
            **told,
            **waiting,
            **self.activity.heartbeat(),
        }

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}.
        """
        # Until then, the directory would be the schema's default, which
        # may not be the configuration's.
        directory = {"directory": str(self.directory)} if self._configuration.arrived else {}
        return {
            **self._activity(),
            **self.activity.status(),
            **directory,
            "audit": self.audit.status(),
        }

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop claiming and auditing (a round under way stops), abort
        downloads under way (their tasks go back to C{pending} at once),
        and fire when every worker has ended.
        """
        super().stopService()
        self._configuration.stop()
        for timer in (self._heartbeat, self._janitor):
            if timer is not None and timer.running:
                timer.stop()
        if self._next_beat is not None and self._next_beat.active():
            self._next_beat.cancel()
        self._next_beat = None
        for flight in list(self.activity.in_flight.values()):
            if flight.request is not None:
                flight.request.cancel()
        self.wake()
        yield self.audit.stop()
        yield gatherResults(list(self._workers.values()), consumeErrors=True)
        yield gatherResults(list(self._finishing), consumeErrors=True)
        unsubscribe_all(self.bus, self._subscriptions, self.log, "download")
        yield self.client.close()
        if self._threads is not None:
            self._threads.stop()
