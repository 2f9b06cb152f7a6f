"""
The C{download} service (the seed's DOWNLOAD SERVER).

C{concurrency} workers each claim a task (newest trading day first),
reserve a start slot with the shared politeness limiter, and stream the
answer with treq into a hidden temporary file beside the target, under
harbour's own deadlines: no byte for C{idle_timeout}, or longer than
C{total_timeout} in all, ends the attempt.  The lease is renewed while
bytes flow.  The file is synced and classified off the reactor thread;
data is renamed into place (no partial file ever carries a final name),
anything else retries with exponential backoff and jitter, honouring
C{Retry-After}, until C{max_attempts}.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import shutil
import socket
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import attr
import treq
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone, _HTTP11ClientFactory
from twisted.web.http import PotentialDataLoss
from zope.interface import implementer

from harbour.oasis import classify as verdicts
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, ILimiter, IPausable, IStatusSource, ITaskStore
from harbour.oasis.requests import UnsafeName, confined
from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED, LEASE_EXPIRED, Task

#: Seconds the rate figure in the status averages over.
RATE_WINDOW = 10.0


class AttemptFailed(Exception):
    """
    One attempt at a download failed for a reason worth retrying.

    @ivar retry_after: Seconds the server asked us to wait, if it did.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """
    An attempt failed in a way no retry can mend.
    """


def retry_after(value: bytes | None, now: float) -> float | None:
    """
    @return: Seconds from a C{Retry-After} header (seconds or HTTP date).
    """
    if not value:
        return None
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """
    @return: Exponential backoff with jitter for the given attempt count.
    """
    return min(cap, base * 2 ** max(0, attempts - 1)) * rng.uniform(0.5, 1.5)


class _BodyWriter(Protocol):
    """
    Streams a response body into a file, hashing it, within limits.
    """

    def __init__(self, file, limit: int, progress) -> None:
        self.file = file
        self.limit = limit
        self.progress = progress
        self.received = 0
        self.sha256 = hashlib.sha256()
        self.done: Deferred = Deferred()
        self._failure: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._failure is not None:
            return
        self.received += len(data)
        if self.received > self.limit:
            self.abort(PermanentFailure(f"answer larger than max_bytes ({self.limit:,} bytes)"))
            return
        self.file.write(data)
        self.sha256.update(data)
        self.progress(len(data))

    def abort(self, error: Exception) -> None:
        """
        Stop receiving, failing with C{error}.
        """
        if self._failure is None:
            self._failure = Failure(error)
            self.transport.stopProducing()

    def connectionLost(self, reason: Failure) -> None:
        if self._failure is not None:
            self.done.errback(self._failure)
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(self.received)
        else:
            self.done.errback(AttemptFailed(f"connection lost mid-body: {reason.getErrorMessage()}"))


def remove_abandoned(directory: Path, older_than: float, now: float) -> int:
    """
    In a thread: remove temporary files that no download has written to for
    C{older_than} seconds.  A live download writes at least every
    C{idle_timeout}, so such a file belongs to a worker that died.

    @return: How many were removed.
    """
    removed = 0
    for path in directory.rglob(".*.part-*"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def _verify(temporary: Path) -> verdicts.Verdict:
    """
    In a thread: classify a downloaded file; remove it unless it holds data.
    """
    verdict = verdicts.classify(temporary)
    if verdict.kind != verdicts.DATA:
        os.unlink(temporary)
    return verdict


def _load_syncfs():
    """
    @return: Linux's C{syncfs(2)}, or L{None} where there is none.
    """
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _fsync_path(path: Path, data_only: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


def _commit(moves: list[tuple[Path, Path, Path | None]]) -> None:
    """
    In a thread: make verified files durable, rename them into place, and
    make the renames durable, so that a file under a final name is always
    whole, even after a crash.  One C{syncfs} covers the whole batch where
    the system has it; each directory is synced once.  A file being
    replaced is first linked under its C{keep} name when it has one, so
    that both names always hold whole files.
    """
    if _SYNCFS is not None:
        fd = os.open(moves[0][0].parent, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        finally:
            os.close(fd)
    else:
        for temporary, ignored, ignored_keep in moves:
            _fsync_path(temporary, data_only=True)
    for temporary, target, keep in moves:
        if keep is not None and target.exists():
            _keep(target, keep)
        os.replace(temporary, target)
    for directory in {target.parent for ignored, target, ignored_keep in moves}:
        _fsync_path(directory)


def _keep(target: Path, keep: Path) -> None:
    """
    Give C{target}'s file the name C{keep} too (replacing an older one).
    """
    linked = keep.with_name(f".{keep.name}.part-keep")
    linked.unlink(missing_ok=True)
    try:
        os.link(target, linked)
    except OSError:  # a file system without hard links
        shutil.copy2(target, linked)
        _fsync_path(linked, data_only=True)
    os.replace(linked, keep)


class GroupCommit:
    """
    Commits verified downloads in batches: while one batch is being synced
    and renamed, the next gathers, so the cost of a sync is shared by every
    file that finished meanwhile.
    """

    def __init__(self, run_in_thread) -> None:
        self._run = run_in_thread
        self._queue: list[tuple[Path, Path, Path | None, Deferred]] = []
        self._busy = False

    def commit(self, temporary: Path, target: Path, keep: Path | None = None) -> Deferred:
        """
        @param keep: Where the file C{temporary} replaces is kept, if at all.
        @return: A Deferred firing once C{temporary} is durably at C{target}.
        """
        d: Deferred = Deferred()
        self._queue.append((temporary, target, keep, d))
        self._next()
        return d

    def _next(self) -> None:
        if self._busy or not self._queue:
            return
        batch, self._queue = self._queue, []
        self._busy = True
        self._run(_commit, [(t, g, k) for t, g, k, ignored in batch]).addBoth(self._done, batch)

    def _done(self, result, batch) -> None:
        self._busy = False
        for *ignored, d in batch:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)
        self._next()


def _existing(path: Path) -> tuple[verdicts.Verdict, int, str]:
    """
    In a thread: classify and hash a file already in place.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return verdicts.classify(path), path.stat().st_size, digest.hexdigest()


def _prepare(target: Path, temporary: Path, stale: bool, superseded: str):
    """
    In a thread: make the directory; remove the temporary files of earlier
    attempts if their worker died (C{stale}); check a file already in
    place (unless its sha256 is C{superseded}: a revision replaces it);
    else open the temporary file.

    @return: (verdict, size, sha256) of a complete file already in place,
        or the opened temporary file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if stale:
        for path in target.parent.glob(f".{target.name}.part-*"):
            path.unlink(missing_ok=True)
    if target.exists():
        found = _existing(target)
        if found[0].kind == verdicts.DATA and found[2] != superseded:
            return found
    return open(temporary, "wb")


def kept_name(target: Path, revision: int) -> Path:
    """
    @return: Where the file of C{target} as of C{revision} (0: as first
        fetched) is kept once a revision replaces it.
    """
    return target.with_name(f"{target.stem}.rev{revision}{target.suffix}")


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
    limiter: ILimiter = attr.ib()
    bus: IBus = attr.ib()
    data_dir: Path = attr.ib(converter=Path)
    settings: DownloadTopic = attr.ib(factory=DownloadTopic)
    work: WorkTopic = attr.ib(factory=WorkTopic)
    owner: str = attr.ib(factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    total_timeout: float = attr.ib(default=3600.0)
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
    _pool: HTTPConnectionPool | None = attr.ib(default=None, init=False)
    _client = attr.ib(default=None, init=False)
    _started: bool = attr.ib(default=False, init=False)
    _threads: ThreadPool | None = attr.ib(default=None, init=False)
    _heartbeat: LoopingCall | None = attr.ib(default=None, init=False)
    _janitor: LoopingCall | None = attr.ib(default=None, init=False)
    _commits: GroupCommit | None = attr.ib(default=None, init=False)

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
        self._make_client()
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

    def _make_client(self) -> None:
        old = self._pool
        self._pool = QuietPool(self.reactor, persistent=True)
        self._pool.maxPersistentPerHost = self.settings.concurrency
        self._pool.retryAutomatically = False
        agent = Agent(self.reactor, connectTimeout=self.settings.connect_timeout, pool=self._pool)
        self._client = treq.client.HTTPClient(agent)
        if old is not None:
            old.closeCachedConnections()

    def _download_changed(self, event) -> None:
        settings = DownloadTopic(**event.payload)
        rebuild = (settings.concurrency, settings.connect_timeout) != (
            self.settings.concurrency, self.settings.connect_timeout)
        self.settings = settings
        if rebuild and self.running:
            self._make_client()
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
        prepared = yield self._in_thread(_prepare, target, temporary, task.last_error == LEASE_EXPIRED,
                                         task.sha256)
        if isinstance(prepared, tuple):
            verdict, size, digest = prepared
            yield self._conclude(task, DOWNLOADED, size, digest)
            return
        try:
            with prepared as file:
                received, digest, failure = yield self._fetch(task, file)
            if failure is None:
                verdict = yield self._in_thread(_verify, temporary)
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
    def _fetch(self, task: Task, file):
        """
        Request C{task.url} on its politeness slot and stream the answer
        into C{file}.

        @return: A Deferred firing with (bytes, sha256, failure or None).
        """
        flight = self._in_flight[task.id] = {
            "id": task.id, "report": task.report, "filename": task.filename, "bytes": 0,
            "started": None, "attempt": task.attempts,
        }
        renewer = LoopingCall(self._renew, task)
        renewer.clock = self.reactor
        renewer.start(max(1.0, self.work.lease_seconds / 3), now=False)
        self._beat()  # the hub sees work as it starts, not only on the next heartbeat
        try:
            host = urlsplit(task.url).netloc
            wait = yield self.limiter.reserve(host, self.settings.min_request_interval)
            if wait > 0:
                slot = deferLater(self.reactor, wait, lambda: None)
                flight["cancel"] = slot.cancel
                yield slot
            if not self.running:
                raise CancelledError()
            return (yield self._stream(task, file, flight))
        except CancelledError:
            return 0, "", Failure()
        finally:
            renewer.stop()
            self._in_flight.pop(task.id, None)

    @inlineCallbacks
    def _stream(self, task: Task, file, flight: dict):
        started = flight["started"] = self.reactor.seconds()
        request = self._client.get(task.url, unbuffered=True, timeout=self.settings.idle_timeout)
        flight["cancel"] = request.cancel
        try:
            response = yield request
        except CancelledError:
            raise
        except Exception as e:
            return 0, "", Failure(AttemptFailed(f"request failed: {e}"))
        if response.code != 200:
            pause = retry_after(response.headers.getRawHeaders(b"retry-after", [None])[0],
                                self.reactor.seconds())
            response.deliverBody(_Discard())
            return 0, "", Failure(AttemptFailed(f"HTTP {response.code}", pause))
        body: _BodyWriter

        def progress(size: int) -> None:
            flight["bytes"] += size
            self._count_bytes(size)
            watchdog.reset(self.settings.idle_timeout)
            self._throttle(body, flight, started)

        body = _BodyWriter(file, self.settings.max_bytes, progress)
        idle = self.settings.idle_timeout
        watchdog = self.reactor.callLater(
            idle, lambda: body.abort(AttemptFailed(f"no data for {idle:g} s")))
        deadline = self.reactor.callLater(
            self.total_timeout,
            lambda: body.abort(AttemptFailed(f"download took longer than {self.total_timeout:g} s")))
        flight["cancel"] = lambda: body.abort(CancelledError())
        response.deliverBody(body)
        try:
            received = yield body.done
        except Exception:
            return body.received, "", Failure()
        finally:
            for timer in (watchdog, deadline):
                if timer.active():
                    timer.cancel()
        return received, body.sha256.hexdigest(), None

    def _throttle(self, body: _BodyWriter, flight: dict, started: float) -> None:
        cap = self.settings.max_bytes_per_second
        if not cap:
            return
        ahead = flight["bytes"] / cap - (self.reactor.seconds() - started)
        if ahead > 0.05:
            body.transport.pauseProducing()
            self.reactor.callLater(ahead, body.transport.resumeProducing)

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
            "in_flight": [{k: v for k, v in f.items() if k != "cancel"} for f in self._in_flight.values()],
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
            cancel = flight.get("cancel")
            if cancel is not None:
                cancel()
        self.wake()
        yield gatherResults(list(self._workers.values()), consumeErrors=True)
        for subscription in self._subscriptions:
            yield self.bus.unsubscribe(subscription)
        if self._pool is not None:
            yield self._pool.closeCachedConnections()
        if self._threads is not None:
            self._threads.stop()


class _QuietFactory(_HTTP11ClientFactory):
    """
    The pool's connection factory, without a log line per connection.
    """

    noisy = False


class QuietPool(HTTPConnectionPool):
    """
    A connection pool that does not log each connection it makes.
    """

    _factory = _QuietFactory


class _Discard(Protocol):
    """
    Reads and drops a body we do not want, so the connection can be reused.
    """

    def connectionLost(self, reason) -> None:
        pass
