"""
The C{download} service (the seed's DOWNLOAD SERVER): the claim loop.

C{concurrency} workers each claim a task (newest trading day first) and
fetch it through the shared L{OasisClient} (politeness, deadlines, caps)
into a hidden temporary file beside the target, renewing the lease while
the attempt lasts.  The file is verified off the reactor thread and
committed in groups (L{harbour.services.files}): data is renamed into place
(no partial file ever carries a final name); anything else retries with
exponential backoff and jitter, honouring C{Retry-After}, until
C{max_attempts}.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IPausable, IStatusSource, ITaskStore
from harbour.oasis import classify as verdicts
from harbour.oasis.client import AttemptFailed, OasisClient, PermanentFailure, Transfer
from harbour.oasis.requests import UnsafeName, confined
from harbour.services.files import GroupCommit, kept_name, prepare, remove_abandoned, verify
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED, LEASE_EXPIRED, Task

#: Seconds the rate figure in the status averages over.
RATE_WINDOW = 10.0


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """
    @return: Exponential backoff with jitter for the given attempt count.
    """
    return min(cap, base * 2 ** max(0, attempts - 1)) * rng.uniform(0.5, 1.5)


@implementer(IStatusSource, IPausable)
@attr.s(eq=False)
class DownloadService(Service):
    """
    Downloads claimed tasks.

    @ivar owner: This process's name on its claims (host and pid).
    @ivar poll_interval: How often an idle worker looks for due tasks.
    """

    log = Logger()

    reactor = attr.ib()
    store: ITaskStore = attr.ib()
    client: OasisClient = attr.ib()
    bus: IBus = attr.ib()
    data_dir: Path = attr.ib(converter=Path)
    settings: DownloadTopic = attr.ib(factory=DownloadTopic)
    work: WorkTopic = attr.ib(factory=WorkTopic)
    owner: str = attr.ib(factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    poll_interval: float = attr.ib(default=2.0)
    heartbeat_interval: float = attr.ib(default=5.0)
    janitor_interval: float = attr.ib(default=600.0)
    rng: random.Random = attr.ib(factory=random.Random)
    paused: bool = attr.ib(default=False)
    ready = attr.ib(default=lambda: succeed(None))
    _workers: dict = attr.ib(factory=dict, init=False)
    _waiting: list = attr.ib(factory=list, init=False)
    _in_flight: dict = attr.ib(factory=dict, init=False)
    _per_second: dict = attr.ib(factory=dict, init=False)
    _last_success: dict = attr.ib(factory=dict, init=False)
    _finished: dict = attr.ib(factory=dict, init=False)
    _subscriptions: list = attr.ib(factory=list, init=False)
    _started: bool = attr.ib(default=False, init=False)
    _threads: ThreadPool | None = attr.ib(default=None, init=False)
    _heartbeat: LoopingCall | None = attr.ib(default=None, init=False)
    _janitor: LoopingCall | None = attr.ib(default=None, init=False)
    _commits: GroupCommit | None = attr.ib(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.client.configure(self.settings)

    @property
    def directory(self) -> Path:
        """
        Where files go.
        """
        return self.data_dir / self.settings.directory

    @inlineCallbacks
    def startService(self):
        """
        Follow the C{download} and C{work} topics, wake on C{task.created},
        and start the workers.
        """
        super().startService()
        # Disk work (sync, verify, rename) of every worker at once: the
        # reactor's shared pool would queue it behind other work.
        self._threads = ThreadPool(minthreads=0, maxthreads=64, name="harbour-download")
        self._threads.start()
        self._commits = GroupCommit(self._in_thread)
        self._subscriptions = yield gatherResults([
            self.bus.subscribe("download", self._download_changed),
            self.bus.subscribe("work", self._work_changed),
            self.bus.subscribe("task.created", lambda event: self.wake()),
            self.bus.subscribe("task.revised", lambda event: self.wake()),
            self.bus.subscribe("store.connected", lambda event: self.wake()),
        ])
        yield self.ready()
        self._started = True
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = self.reactor
        self._heartbeat.start(self.heartbeat_interval)
        self._janitor = LoopingCall(self._tidy)
        self._janitor.clock = self.reactor
        self._janitor.start(self.janitor_interval)
        self._adjust_workers()

    def _download_changed(self, event) -> None:
        self.settings = DownloadTopic(**event.payload)
        self.client.configure(self.settings)
        self._adjust_workers()

    def _work_changed(self, event) -> None:
        self.work = WorkTopic(**event.payload)

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
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    def _idle(self) -> Deferred:
        """
        @return: A Deferred firing on L{wake} or after C{poll_interval}.
        """
        d: Deferred = Deferred()
        self._waiting.append(d)
        timer = self.reactor.callLater(self.poll_interval, lambda: d.called or d.callback(None))

        def woken(result):
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(woken)

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
    def _worker(self, number: int):
        try:
            while self.running and number < self.settings.concurrency:
                if self.paused:
                    yield self._idle()
                    continue
                try:
                    task = yield self.store.claim(self.owner, self.work.lease_seconds)
                except StoreUnavailable as e:
                    self.log.warn("cannot claim: {error}", error=str(e), service="download")
                    yield self._idle()
                    continue
                if task is None:
                    yield self._idle()
                    continue
                try:
                    yield self._attempt(task)
                except StoreUnavailable as e:
                    # The outcome could not be recorded: the lease expires and
                    # the task comes back; a complete file is then verified,
                    # not fetched again.
                    self.log.warn("could not record {url}: {error}", url=task.url, error=str(e),
                                  service="download")
                except Exception:
                    self.log.failure("download of {url} failed unexpectedly", url=task.url,
                                     service="download")
                    yield self._retry(task, "internal error (see the log)", None).addErrback(
                        lambda f: None)
        finally:
            self._workers.pop(number, None)

    @inlineCallbacks
    def _attempt(self, task: Task):
        """
        One attempt at one claimed task, ending in a finish or a release.
        """
        try:
            target = self.directory / confined(task.filename)
        except UnsafeName as e:
            yield self._conclude(task, FAILED, error=str(e))
            return
        temporary = target.with_name(f".{target.name}.part-{self.rng.getrandbits(32):08x}")
        # Only a worker that died leaves a temporary file behind; one that
        # lives always removes its own.
        # A task with a hash but not downloaded is a revision: the file in
        # place is the one it replaces.
        prepared = yield self._in_thread(prepare, target, temporary, task.last_error == LEASE_EXPIRED,
                                         task.sha256)
        if isinstance(prepared, tuple):
            verdict, size, digest = prepared
            yield self._conclude(task, DOWNLOADED, size, digest)
            return
        try:
            with prepared as file:
                received, digest, failure = yield self._fetch(task, file)
            if failure is None:
                verdict = yield self._in_thread(verify, temporary)
                if verdict.kind == verdicts.DATA:
                    if digest == task.sha256:  # a revision that left this window as it was
                        temporary.unlink()
                    else:
                        keep = None
                        if task.sha256 and self.settings.keep_revisions:
                            keep = kept_name(target, task.revision - 1)
                        yield self._commits.commit(temporary, target, keep)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if failure is not None:
            temporary.unlink(missing_ok=True)
            yield self._after_failure(task, failure)
        elif verdict.kind == verdicts.DATA:
            yield self._conclude(task, DOWNLOADED, received, digest)
        elif verdict.kind == verdicts.EMPTY:
            yield self._conclude(task, EMPTY, error=verdict.description)
        elif verdict.kind == verdicts.BAD_REQUEST:
            yield self._conclude(task, FAILED, error=verdict.description)
        else:
            yield self._retry(task, verdict.description, None)

    def _in_thread(self, f, *args) -> Deferred:
        return deferToThreadPool(self.reactor, self._threads, f, *args)

    def _after_failure(self, task: Task, failure: Failure):
        if failure.check(PermanentFailure):
            return self._conclude(task, FAILED, error=str(failure.value))
        if failure.check(AttemptFailed):
            return self._retry(task, str(failure.value), failure.value.retry_after)
        if failure.check(CancelledError) and not self.running:
            return self.store.release(task.id, self.owner, 0.0, "harbour stopped mid-download")
        return self._retry(task, failure.getErrorMessage() or failure.type.__name__, None)

    @inlineCallbacks
    def _fetch(self, task: Task, file: Any):
        """
        Fetch C{task.url} into C{file} through the client, renewing the
        lease meanwhile.

        @return: A Deferred firing with (bytes, sha256, failure or None).
        """
        transfer = Transfer(task.url)
        digest = hashlib.sha256()

        def write(data: bytes) -> None:
            file.write(data)
            digest.update(data)
            self._count_bytes(len(data))

        flight = self._in_flight[task.id] = _Flight(task, transfer)
        renewer = LoopingCall(self._renew, task)
        renewer.clock = self.reactor
        renewer.start(max(1.0, self.work.lease_seconds / 3), now=False)
        self._beat()  # the hub sees work as it starts, not only on the next heartbeat
        try:
            if not self.running:
                raise CancelledError()
            flight.request = self.client.fetch(transfer, write)
            received = yield flight.request
        except Exception:
            return transfer.received, "", Failure()
        finally:
            renewer.stop()
            self._in_flight.pop(task.id, None)
        return received, digest.hexdigest(), None

    @inlineCallbacks
    def _renew(self, task: Task):
        try:
            held = yield self.store.renew(task.id, self.owner, self.work.lease_seconds)
        except StoreUnavailable as e:
            self.log.warn("cannot renew the lease of {id}: {error}", id=task.id, error=str(e),
                          service="download")
            return
        if not held:
            self.log.warn("lost the lease of {url}", url=task.url, service="download")

    @inlineCallbacks
    def _retry(self, task: Task, error: str, pause: float | None):
        if task.attempts >= self.work.max_attempts:
            yield self._conclude(task, FAILED, error=f"{error} (after {task.attempts} attempts)")
            return
        delay = max(pause or 0.0, backoff(task.attempts, self.work.retry_base, self.work.retry_cap, self.rng))
        self.log.info("retrying {url} in {delay:.1f} s: {error}", url=task.url, delay=delay,
                      error=error, service="download")
        yield self.store.release(task.id, self.owner, self.reactor.seconds() + delay, error)

    @inlineCallbacks
    def _conclude(self, task: Task, state: str, size: int = 0, digest: str = "", error: str = ""):
        held = yield self.store.finish(task.id, self.owner, state, size, digest, error)
        if not held:
            self.log.warn("{url} was no longer ours to finish", url=task.url, service="download")
            return
        if state == DOWNLOADED:
            self._last_success[task.report] = time.time()
        self._finished[state] = self._finished.get(state, 0) + 1
        topic = {DOWNLOADED: "task.done", EMPTY: "task.empty", FAILED: "task.failed"}[state]
        if state == FAILED:
            self.log.error("{url} failed: {error}", url=task.url, error=error, service="download")
        yield self.bus.publish(topic, {
            "id": task.id, "report": task.report, "url": task.url, "filename": task.filename,
            "bytes": size, "error": error, "revision": task.revision,
        })

    def _count_bytes(self, size: int) -> None:
        second = int(self.reactor.seconds())
        self._per_second[second] = self._per_second.get(second, 0) + size
        if len(self._per_second) > RATE_WINDOW + 1:
            for old in [s for s in self._per_second if s < second - RATE_WINDOW]:
                del self._per_second[old]

    @inlineCallbacks
    def _tidy(self):
        """
        Remove temporary files abandoned by workers that died.
        """
        if not self.directory.exists():
            return
        # Four idle deadlines: a live download would have written since.
        older_than = 4 * self.settings.idle_timeout + 60
        removed = yield self._in_thread(remove_abandoned, self.directory, older_than, time.time())
        if removed:
            self.log.info("removed {count} abandoned temporary files", count=removed, service="download")

    def _beat(self) -> None:
        """
        Tell the hub what this worker is doing (C{worker.status}).
        """
        self.bus.publish("worker.status", self._activity()).addErrback(lambda failure: None)

    def _activity(self) -> dict:
        """
        What this worker is doing: its heartbeat, and the core of its status.
        """
        return {
            "owner": self.owner,
            "paused": self.paused,
            "concurrency": self.settings.concurrency,
            "bytes_per_second": round(self.bytes_per_second()),
            "in_flight": [flight.to_json() for flight in self._in_flight.values()],
        }

    def bytes_per_second(self) -> float:
        """
        The download rate over the last few seconds.
        """
        horizon = self.reactor.seconds() - RATE_WINDOW
        return sum(n for second, n in self._per_second.items() if second >= horizon) / RATE_WINDOW

    def status(self) -> dict:
        """
        See L{IStatusSource.status}.
        """
        return {
            **self._activity(),
            "directory": str(self.directory),
            "finished": dict(self._finished),
            "last_success": {r: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
                             for r, t in self._last_success.items()},
        }

    @inlineCallbacks
    def stopService(self):
        """
        Stop claiming, abort downloads under way (their tasks go back to
        C{pending} at once), and fire when every worker has ended.
        """
        super().stopService()
        for timer in (self._heartbeat, self._janitor):
            if timer is not None and timer.running:
                timer.stop()
        for flight in list(self._in_flight.values()):
            if flight.request is not None:
                flight.request.cancel()
        self.wake()
        yield gatherResults(list(self._workers.values()), consumeErrors=True)
        for subscription in self._subscriptions:
            yield self.bus.unsubscribe(subscription)
        yield self.client.close()
        if self._threads is not None:
            self._threads.stop()


@attr.s(auto_attribs=True, eq=False)
class _Flight:
    """
    A download under way, as C{Status} and the heartbeat show it.
    """

    task: Task
    transfer: Transfer
    request: Deferred | None = None

    def to_json(self) -> dict[str, Any]:
        """
        @return: What C{Status} shows of it.
        """
        return {
            "id": self.task.id, "report": self.task.report, "filename": self.task.filename,
            "bytes": self.transfer.received, "started": self.transfer.started, "attempt": self.task.attempts,
        }
