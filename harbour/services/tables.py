"""
The C{tables} service (the seed's pipeline after DOWNLOAD): turns each
downloaded file into Parquet under C{<data-dir>/tables/}.

Parse work is claimed from the task store like downloads (a file that
finishes C{downloaded} is queued in the same script), so every host that
downloads also parses, and a process killed mid-parse loses nothing: its
lease expires and the file is parsed again.  A host claims only the files
of its own storage (the id of its download directory, recorded with each
file downloaded, see L{harbour.services.storage}) and those recorded
without one: it parses what it has.  The parse itself runs in a
thread and writes each table under a temporary name
(L{harbour.dataset.write}).  A file that cannot be parsed marks its task
C{unparsable} with the reason and stays in place; nothing stops the
service.  On the hub, the views file is kept in step (L{Views}), with its
own tables and with those other processes write into its tables directory
(storage shared with them), which it hears of through C{table.written}.
Nothing is claimed or drained before the first C{download} and C{work}
topics are in force (L{harbour.services.configured}): the download
directory the files are read from may not be the default one.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar, cast

import attr
from twisted.application.service import Service
from twisted.internet.defer import (
    Deferred,
    FirstError,
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
from twisted.python.threadable import isInIOThread
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from harbour.bus import Subscription
from harbour.config.paging import follow_reports
from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.config.topics import ReportTopic
from harbour.dataset.naming import view_name
from harbour.dataset.write import remove_abandoned
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IEvent, IPausable, IStatusSource, ITaskStore, StatusDocument
from harbour.processes import process_name
from harbour.services.announcing import unsubscribe_all
from harbour.services.configured import FirstConfiguration
from harbour.services.cycle import guarded
from harbour.services.parses import Parses
from harbour.services.retirement import Retirements
from harbour.services.storage import StorageIds
from harbour.services.views import Views
from harbour.services.waking import Waker
from harbour.store.outages import STORE_RETRY, next_retry
from harbour.store.tasks import DOWNLOADING, EMPTY, RETIRED, Task, task_id

_R = TypeVar("_R")

#: How often temporary files of killed parses are looked for (and, on the
#: hub, a failed drain of retired windows' tables is tried again), and how
#: old such a file must be: a live parse writes to its files every few
#: seconds.
JANITOR_INTERVAL = 600.0
ABANDONED_AFTER = 3600.0

#: How long the tables must be quiet before they are announced as up to date.
ANNOUNCE_AFTER = 5.0

#: The longest a parse's thread waits for the reactor to say whether its
#: claim holds: the store answers or fails within its reply timeout (5 s
#: by default), twice over at worst (a script loaded again).
REACTOR_ANSWER_TIMEOUT = 30.0


def _still_retired(task: Task | None) -> bool:
    """
    @return: Whether the tables of C{task}'s window are still to go after
        its retirement: it is gone (purged), still retired (or being
        retired as its download ends), or answers no data now; as the
        store's list of retired windows tells (C{retired_tables.lua}).
    """
    if task is None:
        return True
    return task.state in (RETIRED, EMPTY) or (task.state == DOWNLOADING and bool(task.retiring))


@implementer(IStatusSource, IPausable)
@attr.s(eq=False)
class TablesService(Service):
    """
    Parses downloaded files into tables.

    @ivar owner: This process's name on its claims (host and pid).
    @ivar workers: How many files are parsed at once.
    @ivar work: The C{work} topic, whose C{lease_seconds} a parse's claim
        lasts between renewals (as a download's does).
    @ivar keep_views: Whether this process keeps the views file (the hub
        does; a worker has no configuration of reports).
    @ivar ready: Called at start; fires once the store can be used.
    @ivar configured: Whether C{settings} and C{work}, as given, are the
        configuration in force; if not (by default), nothing is claimed
        until the first C{download} and C{work} topics are heard.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    bus: IBus = attr.ib()
    data_dir: Path = attr.ib(converter=Path)
    keep_views: bool = attr.ib(default=True)
    settings: DownloadTopic = attr.ib(factory=DownloadTopic)
    owner: str = attr.ib(factory=process_name)
    work: WorkTopic = attr.ib(factory=WorkTopic)
    workers: int = attr.ib(default=1)
    poll_interval: float = attr.ib(default=5.0)
    paused: bool = attr.ib(default=False)
    ready: Callable[[], Deferred[Any]] = attr.ib(default=lambda: succeed(None))
    configured: bool = attr.ib(default=False)
    #: Runs a function in a thread (tests run it at once); by default, in
    #: the service's own pool.
    run_in_thread: Callable[..., Deferred[Any]] | None = attr.ib(default=None)
    #: From one of those threads, runs a function on the reactor's thread
    #: and waits for its answer, at most L{REACTOR_ANSWER_TIMEOUT} seconds;
    #: tests whose C{run_in_thread} runs functions at once on the reactor's
    #: thread must give one that calls at once.
    call_from_thread: Callable[..., Any] | None = attr.ib(default=None)
    parses: Parses = attr.ib(init=False)
    _announced: int = attr.ib(default=0, init=False)
    _announcement: IDelayedCall | None = attr.ib(default=None, init=False)
    _janitor: LoopingCall | None = attr.ib(default=None, init=False)
    views: Views = attr.ib(init=False)
    retirements: Retirements = attr.ib(init=False)
    _waker: Waker = attr.ib(init=False)
    _running: dict[int, Deferred[None]] = attr.ib(factory=dict, init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    _threads: ThreadPool | None = attr.ib(default=None, init=False)
    _storages: StorageIds = attr.ib(init=False)
    _configuration: FirstConfiguration = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._waker = Waker(self.reactor, self.poll_interval)
        self._configuration = FirstConfiguration.given(self.configured)
        self._storages = StorageIds(self._in_thread, "tables")
        self.views = Views(self.tables_dir, self._in_thread)
        # Only the hub drains, and keeps the views.
        self.retirements = Retirements(
            self.store,
            self.tables_dir,
            self._in_thread,
            self.views.rebuild,
            lambda: self._storages.of(self.downloads_dir),
        )
        self.parses = Parses(
            self.reactor,
            self.store,
            self.bus,
            self.owner,
            self.tables_dir,
            lambda: self.work.lease_seconds,
            lambda: self.downloads_dir,
            self._in_thread,
            self._written,
            self._from_thread,
            running=lambda: bool(self.running),
            storage=lambda: self._storages.of(self.downloads_dir),
        )

    @property
    def downloads_dir(self) -> Path:
        """
        Where the download service puts the files parsed here.
        """
        return self.data_dir / self.settings.directory

    @property
    def tables_dir(self) -> Path:
        """
        Where the tables go.
        """
        return self.data_dir / "tables"

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the configuration, and once the store is ready and the
        first C{download} and C{work} topics are in force, queue the files
        mirrored before there were tables (on the hub), and start the
        workers.
        """
        super().startService()
        # Parsing holds a thread for seconds: the reactor's shared pool
        # would queue DNS and disk work behind it.
        if self.run_in_thread is None:
            self._threads = ThreadPool(minthreads=0, maxthreads=self.workers + 1, name="harbour-tables")
            self._threads.start()
        # Known before the hub hears of another process's table.
        self.parses.tables_storage = yield self._storages.of(self.tables_dir)
        if not self.running:
            return  # stopped meanwhile: nothing to follow
        subscriptions = [
            self.bus.subscribe("download", self._download_changed),
            self.bus.subscribe("work", self._work_changed),
            self.bus.subscribe("task.done", lambda event: self._waker.wake()),
            self.bus.subscribe("table.queued", lambda event: self._waker.wake()),
            self.bus.subscribe("task.retired", self._retired),
            self.bus.subscribe("task.empty", self._emptied),
            self.bus.subscribe("store.connected", self._store_back),
        ]
        if self.keep_views:
            subscriptions.append(follow_reports(self.bus, self._reports_changed))
            subscriptions.append(self.bus.subscribe("table.written", self._written_elsewhere))
        subscribed = yield gatherResults(subscriptions)
        if not self.running:
            # Stopped while subscribing (a worker's are round trips to the
            # hub): the stop found none of these to end.
            for subscription in subscribed:
                yield self.bus.unsubscribe(subscription)
            return
        self._subscriptions = subscribed
        yield self.ready()
        if not self.running:
            return
        arrived = yield self._configuration.arrives(
            self.log, "waiting for a valid configuration before parsing", service="tables"
        )
        if not arrived:
            return  # stopped meanwhile
        if self.keep_views:
            yield self._queue_earlier_files()
        # The janitor's first round, at once, drains the retired-tables list.
        self.retirements.start()
        for number in range(self.workers):
            self._running[number] = self._worker(number)
        self._janitor = LoopingCall(guarded(self.log, "janitor", self._tidy, service="tables"))
        self._janitor.clock = self.reactor
        self._janitor.start(JANITOR_INTERVAL)

    def _tidy(self) -> Deferred[int]:
        """
        Remove temporary files of parses killed mid-write; on the hub, drop
        the tables of retired windows a failed drain left listed.
        """
        if self.keep_views:
            self.retirements.drain()
        return self._in_thread(remove_abandoned, self.tables_dir, ABANDONED_AFTER, self.reactor.seconds())

    def _store_back(self, event: IEvent) -> None:
        self._waker.wake()
        if self.keep_views and self.running:
            self._drain()

    def _drain(self) -> Deferred[None]:
        """
        Drop the tables of the retired windows the store lists, if the
        configuration is in force: before, the download directory, whose
        storage tells which windows are this host's, may not be the
        configured one (the first drain comes at start, once it is).
        """
        if not self._configuration.arrived:
            return succeed(None)
        return self.retirements.drain()

    def _download_changed(self, event: IEvent) -> None:
        self.settings = DownloadTopic.from_payload(event.payload)
        self._configuration.heard("download")

    def _retired(self, event: IEvent) -> Deferred[None]:
        """
        Windows the configuration no longer asks for leave the tables (their
        zips stay); a window asked for again is parsed again when revived.
        The hub drops those the store lists (L{Retirements}); a worker,
        those the event names, for its own disk, if their tasks are still
        retired.
        """
        if self.keep_views:
            return self._drain()
        files = [(entry["report"], entry["filename"]) for entry in event.payload.get("files", [])]
        return self._drop_retired(files)

    @inlineCallbacks
    def _drop_retired(self, files: list[tuple[str, str]]) -> Generator[Deferred[Any], Any, None]:
        if not files:
            return
        try:
            tasks = yield gatherResults(
                [self.store.get(task_id(filename)) for ignored, filename in files], consumeErrors=True
            )
        except Exception as e:
            cause = e.subFailure.value if isinstance(e, FirstError) else e
            self.log.warn(
                "cannot tell whether the tables of {count} retired windows are to go: {error}",
                count=len(files),
                error=str(cause) or type(cause).__name__,
                service="tables",
            )
            return
        # An event can come late (the bus holds each behind the drops of
        # those before it): a window asked for again since was revived,
        # and perhaps parsed anew, and keeps its tables, as the store's
        # list keeps them on the hub.
        gone = [file for file, task in zip(files, tasks, strict=True) if _still_retired(task)]
        if gone:
            yield self.retirements.drop(gone)

    def _emptied(self, event: IEvent) -> Deferred[None]:
        """
        A window's request answers no data now: if a file answered it
        before, the store lists its window, whose tables the hub drops; a
        worker drops them from its own disk if the task is still so.
        """
        if self.keep_views:
            return self._drain()
        return self._drop_emptied(str(event.payload.get("id", "")))

    @inlineCallbacks
    def _drop_emptied(self, task_id: str) -> Generator[Deferred[Any], Any, None]:
        try:
            task = yield self.store.get(task_id)
        except Exception as e:
            self.log.warn(
                "cannot tell whether the tables of task {id} are to go: {error}",
                id=task_id,
                error=str(e) or type(e).__name__,
                service="tables",
            )
            return
        # Fetched again since (a stale request), it keeps them for now.
        if task is not None and task.state == EMPTY and task.bytes > 0:
            yield self.retirements.drop([(task.report, task.filename)])

    def _work_changed(self, event: IEvent) -> None:
        self.work = WorkTopic.from_payload(event.payload)
        self._configuration.heard("work")

    def _reports_changed(self, reports: list[ReportTopic]) -> None:
        # Not waited for: the bus would hold later events behind a rebuild.
        self.views.configure(reports)

    @inlineCallbacks
    def _queue_earlier_files(self) -> Generator[Deferred[Any], Any, None]:
        try:
            queued = yield self.store.requeue_parse(None, True)
        except Exception as e:
            # Not fatal: reparse, or the next start, queues them.
            self.log.warn("cannot queue earlier files for parsing: {error}", error=str(e), service="tables")
        else:
            if queued:
                self.log.info("queued {count} earlier files for parsing", count=queued, service="tables")

    def pause(self) -> None:
        """
        Claim nothing new; parses under way finish.
        """
        self.paused = True

    def resume(self) -> None:
        """
        Claim again.
        """
        self.paused = False
        self._waker.wake()

    @inlineCallbacks
    def _worker(self, number: int) -> Generator[Deferred[Any], Any, None]:
        """
        One worker: claim, parse, again, until stopped.  A store outage is
        waited out with backoff; any other failure is logged and followed by
        the next claim.
        """
        outage = STORE_RETRY[0]
        try:
            while self.running:
                if self.paused:
                    yield self._waker.idle()
                    continue
                try:
                    # The directory's, as the download service records it
                    # with each file it puts there.
                    storage = yield self._storages.of(self.downloads_dir)
                    job = yield self.store.claim_parse(self.owner, self.work.lease_seconds, storage)
                except StoreUnavailable:
                    yield self._waker.idle(outage)
                    outage = next_retry(outage)
                    continue
                except Exception:
                    self.log.failure("cannot claim a file to parse", service="tables")
                    yield self._waker.idle()
                    continue
                outage = STORE_RETRY[0]
                if job is None:
                    self._caught_up()
                    yield self._waker.idle()
                    continue
                try:
                    if not self.running or self.paused:
                        # Stopped or paused while the claim was asked for:
                        # a parse can take minutes, which a stop would wait.
                        yield self.parses.give_back(job)
                        continue
                    yield self.parses.run(job)
                except StoreUnavailable as e:
                    # Stopped while the store was away, so the outcome is not
                    # recorded: the lease expires and the file is parsed again.
                    self.log.warn(
                        "could not record the parse of {file}: {error}",
                        file=job.filename,
                        error=str(e),
                        service="tables",
                    )
                except Exception:
                    self.log.failure("cannot record the parse of {file}", file=job.filename, service="tables")
        finally:
            self._running.pop(number, None)

    def _written(self, report: str, columns: frozenset[str]) -> None:
        """
        A table of C{report} was written, with C{columns}: the tables are
        not quiet yet, and the report may need its views made again.
        """
        if self._announcement is not None:
            self._announcement.cancel()
            self._announcement = None
        if self.keep_views:
            self.views.written(report, columns)

    def _written_elsewhere(self, event: IEvent) -> None:
        """
        A table was written by another process (a worker): if it went to
        this tables directory (storage shared with it), the views follow
        it as they follow this process's own tables.  This process's own
        were followed as written (L{_written}); one written elsewhere is
        not in this directory, and would have the views made again for
        nothing.
        """
        payload = event.payload
        if not isinstance(payload, dict) or payload.get("owner") == self.owner:
            return
        here = self.parses.tables_storage
        if not here or payload.get("tables_storage") != here:
            # Written elsewhere: perhaps a revision of a window whose
            # tables here show the file before (see Retirements).
            if self.running:
                self._drain()
            return
        report, columns = payload.get("report"), payload.get("columns")
        if not isinstance(report, str) or not isinstance(columns, list):
            return
        self.views.written(report, frozenset(c for c in columns if isinstance(c, str)))

    def _caught_up(self) -> None:
        """
        Nothing is left to parse: once nothing new has come for
        L{ANNOUNCE_AFTER} seconds, say how to query the new tables (once per
        quiet spell, not after every file of a mirror under way).
        """
        if not self.keep_views or self.parses.written == self._announced or self._announcement is not None:
            return
        self._announcement = self.reactor.callLater(ANNOUNCE_AFTER, self._announce)

    def _announce(self) -> None:
        self._announcement = None
        if not self.views.shown:
            return
        self._announced = self.parses.written
        self.log.info(
            "tables are up to date ({rows:,} rows so far); ask them, e.g.: "
            'harbourctl query --data-dir {data_dir} "select count(*) from {view}"',
            rows=self.parses.rows,
            data_dir=str(self.data_dir),
            view=view_name(min(self.views.shown)),
            service="tables",
        )

    def _from_thread(self, f: Callable[..., Any], *args: object) -> Any:
        """
        From one of the service's threads: run C{f(*args)} on the reactor's
        thread, and wait for its answer (what its L{Deferred} fires with).

        @raise TimeoutError: If none came within L{REACTOR_ANSWER_TIMEOUT}
            seconds (the reactor stopped, or stalls): a parse asks while it
            holds a window's lock, which others, in other processes too,
            wait for.
        """
        if self.call_from_thread is not None:
            return self.call_from_thread(f, *args)
        if isInIOThread():
            raise RuntimeError("the reactor's thread cannot wait for itself: give call_from_thread")
        answers: queue.Queue[Any] = queue.Queue()
        cast(IReactorFromThreads, self.reactor).callFromThread(
            lambda: maybeDeferred(f, *args).addBoth(answers.put)
        )
        try:
            answer = answers.get(timeout=REACTOR_ANSWER_TIMEOUT)
        except queue.Empty:
            raise TimeoutError(f"no answer from the reactor within {REACTOR_ANSWER_TIMEOUT:g} s") from None
        if isinstance(answer, Failure):
            answer.raiseException()
        return answer

    def _in_thread(self, f: Callable[..., _R], *args: object) -> Deferred[_R]:
        if self.run_in_thread is not None:
            return self.run_in_thread(f, *args)
        # The pool is made at start, before anything is parsed.
        threads = cast(ThreadPool, self._threads)
        return deferToThreadPool(cast(IReactorFromThreads, self.reactor), threads, f, *args)

    @inlineCallbacks
    def status(self) -> Generator[Deferred[Any], Any, StatusDocument]:
        """
        See L{IStatusSource.status}: what this process parsed since it
        started, and the store's counts per report.
        """
        try:
            counts = yield self.store.parse_counts()
        except Exception as e:
            counts = {"error": str(e)}
        return {
            "owner": self.owner,
            "paused": self.paused,
            **self._configuration.status(),
            "directory": str(self.tables_dir),
            "parsing": sorted(job.filename for job in self.parses.parsing.values()),
            "written": self.parses.written,
            "rows": self.parses.rows,
            "failed": self.parses.failed,
            "last_error": self.parses.last_error,
            "reports": counts,
        }

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop claiming; parses under way finish (each is one thread call
        that cannot be interrupted, and a kill loses nothing either).
        """
        super().stopService()
        self._configuration.stop()
        if self._janitor is not None and self._janitor.running:
            self._janitor.stop()
        if self._announcement is not None:
            self._announcement.cancel()
            self._announcement = None
        self._waker.wake()
        yield gatherResults(list(self._running.values()), consumeErrors=True)
        yield self.views.idle()
        yield self.retirements.stop()
        unsubscribe_all(self.bus, self._subscriptions, self.log, "tables")
        if self._threads is not None:
            self._threads.stop()
