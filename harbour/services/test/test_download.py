"""
Tests for L{harbour.services.download} against the OASIS simulator over real HTTP on
127.0.0.1, with the in-memory task store and limiter.
"""

from __future__ import annotations

import datetime
import errno
import gc
import hashlib
import io
import json
import os
import random
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import attr
import treq
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, TimeoutError, fail, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.static import Data
from zope.interface import implementer

from harbour.bus import Bus, Event, Subscription
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IEvent, ILimiter
from harbour.oasis.classify import DATA, IN_PREPARATION, classify
from harbour.oasis.client import LONGEST_RETRY_AFTER, OasisClient, retry_after
from harbour.oasis.requests import ReportURL, gmt, report_urls
from harbour.oasis.test.test_classify import repeated, well_compressed, zipped
from harbour.oasis.test.test_client import NOW, stubbed_attempts
from harbour.services import attempt, commit, download, files
from harbour.services.attempt import RECHECK
from harbour.services.checking import AnswerCheck
from harbour.services.download import BEAT_SPACING, STORE_WAITING, DownloadService
from harbour.services.files import is_bookkeeping, record, record_path
from harbour.services.finishing import Finishes
from harbour.services.outcomes import PREPARATION_UNCOUNTED, backoff, prepared_since
from harbour.services.storage import STORAGE_FILE, StorageIds
from harbour.services.writeback import Writeback
from harbour.store.memory import MemoryTaskStore
from harbour.store.politeness import MemoryLimiter
from harbour.store.tasks import DOWNLOADED, DOWNLOADING, EMPTY, FAILED, PENDING, Outcome, Task
from harbour.test.helpers import SilentHub
from harbour.testing.simulator import Faults, OasisSimulator, error_document

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
#: OASIS's answer to a real request, 3,149 bytes: smaller than a file's
#: write buffer (L{files.WRITE_BUFFER}).
SAMPLE_ZIP = "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
#: A report definition: L{ReportTopic}'s arguments.
LMP: dict[str, Any] = {
    "name": "lmp",
    "queryname": "PRC_LMP",
    "kind": "single_zip",
    "market_run_id": "DAM",
    "resultformat": "csv",
    "params": {"grp_type": "ALL_APNODES"},
}


class Harness:
    """
    A simulator, a store full of tasks, and a download service between.
    """

    def __init__(self, testcase: TestCase, faults: Faults = Faults(), **settings: Any) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.testcase = testcase
        self.simulator = OasisSimulator(
            reactor,
            seed=5,
            faults=faults,
            last_day=datetime.date(2025, 1, 31),
            min_interval=settings.pop("simulator_interval", 0.0),
        )
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, self.simulator.site(), interface="127.0.0.1")  # type: ignore[arg-type]
        testcase.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.base_url = f"http://127.0.0.1:{address.port}/oasisapi"
        self.data = Path(testcase.mktemp())
        self.bus = Bus()
        self.store = MemoryTaskStore(reactor)
        work = WorkTopic(
            retry_base=0.02, retry_cap=0.1, lease_seconds=5, max_attempts=settings.pop("max_attempts", 6)
        )
        download = DownloadTopic(
            min_request_interval=settings.pop("min_request_interval", 0.0),
            idle_timeout=settings.pop("idle_timeout", 5.0),
            **settings,
        )
        self.service = DownloadService(
            reactor,
            self.store,
            OasisClient(reactor, MemoryLimiter(reactor)),
            self.bus,
            self.data,
            download,
            work,
            poll_interval=0.05,
            configured=True,
        )
        self.events: list[IEvent] = []
        self.retried: list[IEvent] = []
        self._waiting: list[tuple[int, Deferred[None]]] = []
        self.bus.subscribe("task.*", self._event)

    def _event(self, event: IEvent) -> None:
        if event.topic == "task.retried":
            self.retried.append(event)
            return
        if event.topic == "task.created":
            return
        self.events.append(event)
        for count, d in list(self._waiting):
            if len(self.events) >= count:
                self._waiting.remove((count, d))
                d.callback(None)

    async def run(
        self, *reports: dict[str, Any], start: str = "2025-01-10", end: str = "2025-01-12"
    ) -> list[Task]:
        """
        Create the tasks of C{reports}, download until each has ended, and
        return the final tasks.
        """
        requests = await self.create(*reports, start=start, end=end)
        finished = self.events_seen(len(self.events) + len(requests))
        self.start()
        await finished
        await self.service.stopService()
        return [await self.fetched(t.id) for t in (await self.all_tasks())]

    def start(self) -> None:
        """
        Start the service; it is stopped at the test's end unless the test
        stopped it.
        """
        self.service.startService()
        self.testcase.addCleanup(lambda: self.service.running and self.service.stopService())

    async def create(self, *reports: dict[str, Any], start: str, end: str) -> list[ReportURL]:
        """
        Create the tasks of C{reports} from C{start} to C{end}.

        @return: Their requests.
        """
        manifest = ManifestTopic(base_url=self.base_url, start=start, end=end)
        requests = report_urls(manifest, [ReportTopic(**r) for r in reports], datetime.date(2025, 2, 1))
        await self.store.create(requests)
        return requests

    def hold_finishes(self) -> tuple[list[list[str]], Callable[[], None]]:
        """
        Hold the outcomes the service records from now on, and let them
        (and any later) through once the returned release is called; it
        is called at the test's end in any case.

        @return: The task ids of each call to record outcomes, and the
            release.
        """
        finish_many = self.store.finish_many
        calls: list[list[str]] = []
        held: list[Deferred[None]] = []
        released: list[bool] = []

        def slow_finish_many(outcomes: Sequence[Outcome]) -> Deferred[list[bool]]:
            calls.append([o.task_id for o in outcomes])
            if released:
                return finish_many(outcomes)
            d: Deferred[None] = Deferred()
            held.append(d)
            return d.addCallback(lambda ignored: finish_many(outcomes))

        def release() -> None:
            released.append(True)
            for d in held:
                if not d.called:
                    d.callback(None)

        self.store.finish_many = slow_finish_many  # type: ignore[method-assign]
        self.testcase.addCleanup(release)
        return calls, release

    def events_seen(self, count: int) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once C{count} tasks have ended (their
            events published), failing with L{TimeoutError} after 60 s.
        """
        seen: Deferred[None] = Deferred()
        self._waiting.append((count, seen))
        return seen.addTimeout(60, self.reactor)

    def called(self, owner: object, name: str, count: int = 1) -> Deferred[None]:
        """
        Watch C{owner}'s method C{name} (patched for the rest of the test).

        @return: A L{Deferred} firing once the method has been called
            C{count} times, in a later turn of the reactor than the call
            (what called it has gone on by then); failing with
            L{TimeoutError} after 60 s.
        """
        original = getattr(owner, name)
        reached: Deferred[None] = Deferred()
        calls = 0

        def watched(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == count:
                self.reactor.callLater(0, reached.callback, None)
            return original(*args, **kwargs)

        self.testcase.patch(owner, name, watched)
        return reached.addTimeout(60, self.reactor)

    async def fetched(self, task_id: str) -> Task:
        """
        @return: The task C{task_id}, which exists.
        """
        task = await self.store.get(task_id)
        assert task is not None, task_id
        return task

    async def all_tasks(self) -> list[Task]:
        """
        @return: Every task, in any state.
        """
        found: list[Task] = []
        for state in (PENDING, DOWNLOADED, EMPTY, FAILED, "downloading"):
            found += (await self.store.tasks(state, None, 0, 10_000))[0]
        return found

    def serve(self, resource: Resource) -> None:
        """
        Ask C{resource}, served on 127.0.0.1 until the test ends, instead
        of the simulator.
        """
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = self.reactor.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[arg-type]
        self.testcase.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.base_url = f"http://127.0.0.1:{address.port}/oasisapi"

    def serve_silence(self) -> Deferred[None]:
        """
        Ask, instead of the simulator, a server on 127.0.0.1 (until the test
        ends) that takes every request and never answers it, not even with
        a head.

        @return: A L{Deferred} firing once the first request has come whole.
        """
        arrived: Deferred[None] = Deferred()
        factory = Factory.forProtocol(lambda: Silent(arrived))
        # Twisted types listenTCP's factory too narrowly for a Factory.
        port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.testcase.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.base_url = f"http://127.0.0.1:{address.port}/oasisapi"
        return arrived

    def files(self) -> list[Path]:
        """
        @return: Every file under the data directory but harbour's
        bookkeeping: the records kept beside downloaded files, and the
        directory's storage id.
        """
        return sorted(p for p in self.data.rglob("*") if p.is_file() and not is_bookkeeping(p))


class Silent(Protocol):
    """
    Takes a request and never answers it, as OASIS seems to while it
    prepares a large answer.

    @ivar arrived: Fired once a request's head has come whole (unless
        fired already, by another connection's).
    """

    def __init__(self, arrived: Deferred[None]) -> None:
        self.arrived = arrived
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}; note a request once its head is whole.
        """
        self.received += data
        if b"\r\n\r\n" in self.received and not self.arrived.called:
            self.arrived.callback(None)


@implementer(ILimiter)
@attr.s(eq=False)
class RecordingLimiter:
    """
    A limiter that records every reservation it passes on.

    @ivar outages: How many reservations, the first, fail as if Redis were
        away instead of being passed on.
    """

    limiter: ILimiter = attr.ib()
    reservations: list[tuple[str, float]] = attr.ib(factory=list)
    outages: int = attr.ib(default=0)

    def reserve(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.reserve}.
        """
        self.reservations.append((host, interval))
        if self.outages:
            self.outages -= 1
            return fail(StoreUnavailable("Redis is away"))
        return self.limiter.reserve(host, interval)

    def confirm(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.confirm}.
        """
        return self.limiter.confirm(host, interval)

    def hold(self, host: str, seconds: float) -> Deferred[None]:
        """
        See L{ILimiter.hold}.
        """
        return self.limiter.hold(host, seconds)


class BombServer(Resource):
    """
    Answers every request with a zip bomb: unless given another, 16 MiB of
    zeros, deflated to about 16 KiB, about 1,000 times.

    @ivar requests: How many requests it has answered.
    """

    isLeaf = True

    def __init__(self, bomb: bytes | None = None) -> None:
        super().__init__()
        self.requests = 0
        if bomb is None:
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("PRC_LMP.csv", bytes(16 << 20))
            bomb = out.getvalue()
        self.bomb = bomb

    def render_GET(self, request: Request) -> bytes:
        """
        The bomb.
        """
        self.requests += 1
        return self.bomb


class DownloadTests(TestCase):
    """
    Each end state, reached through real HTTP.
    """

    timeout = 90

    async def test_mirror(self) -> None:
        """
        Every task is downloaded once, newest day first; each file is the
        simulator's bytes, with its size and SHA-256 recorded; only final
        names remain.  (One worker, so that requests arrive in claim order.)
        """
        harness = Harness(self, concurrency=1)
        tasks = await harness.run(LMP)
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        days = [r[2]["startdatetime"] for r in harness.simulator.requests]
        self.assertEqual(days, ["20250112T08:00-0000", "20250111T08:00-0000", "20250110T08:00-0000"])
        for task in tasks:
            path = harness.data / "reports" / task.filename
            expected = await treq.content(await treq.get(task.url, persistent=False))
            self.assertEqual(path.read_bytes(), expected)
            self.assertEqual((task.bytes, task.sha256), (len(expected), hashlib.sha256(expected).hexdigest()))
        self.assertEqual(
            [p.name for p in harness.files()], ["2025-01-10.zip", "2025-01-11.zip", "2025-01-12.zip"]
        )
        self.assertEqual([e.topic for e in harness.events], ["task.done"] * 3)

    async def test_empty(self) -> None:
        """
        Days OASIS has no data for end C{empty}, with no file.
        """
        harness = Harness(self)
        tasks = await harness.run(LMP, start="2025-02-05", end="2025-02-06")
        self.assertEqual(
            {(t.state, t.last_error) for t in tasks},
            {(EMPTY, "OASIS error 1000: No data returned for the specified selection")},
        )
        self.assertEqual(harness.files(), [])

    async def test_recentEmptyAskedAgain(self) -> None:
        """
        "No data" for a window that ended within the last few days is not
        final: the task waits a few hours, pending, with no attempt used,
        and says why.
        """
        harness = Harness(self)
        now = harness.reactor.seconds()
        hour_ago = datetime.datetime.fromtimestamp(now - 3600, datetime.UTC)
        end = hour_ago.replace(minute=0, second=0, microsecond=0)
        start = end - datetime.timedelta(days=1)
        url = (
            f"{harness.base_url}/SingleZip?queryname=PRC_LMP&startdatetime={gmt(start)}"
            f"&enddatetime={gmt(end)}&market_run_id=DAM&version=1&resultformat=6&grp_type=ALL_APNODES"
        )
        await harness.store.create([ReportURL(url, "lmp/recent.zip", "lmp", start, end)])
        released = harness.called(harness.store, "release")
        harness.start()
        await released
        [task] = await harness.all_tasks()
        self.assertEqual((task.state, task.attempts), (PENDING, 0))
        self.assertTrue(task.last_error.startswith("no data yet"), task.last_error)
        self.assertGreaterEqual(task.not_before, now + RECHECK)
        # Announced, for the retry counters, as a retry that used no attempt.
        [retried] = harness.retried
        self.assertEqual(
            (retried.payload["error"], retried.payload["counted"], retried.payload["delay"]),
            (task.last_error, False, RECHECK),
        )

    async def test_badDefinition(self) -> None:
        """
        A wrong report definition fails at once with OASIS's description.
        """
        harness = Harness(self)
        tasks = await harness.run(dict(LMP, queryname="PRC_NOPE"), end="2025-01-10")
        [task] = tasks
        self.assertEqual((task.state, task.attempts), (FAILED, 1))
        self.assertIn("1005", task.last_error)
        self.assertEqual(harness.events[0].topic, "task.failed")

    async def test_bombFailsAtOnce(self) -> None:
        """
        A zip bomb ends C{failed} after one request, with the cap it
        breaks: no retry can mend it.
        """
        harness = Harness(self, max_attempts=6)
        bomb = BombServer()
        harness.serve(bomb)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual((task.state, task.attempts, bomb.requests), (FAILED, 1, 1))
        self.assertIn("inflates beyond 200 times its compressed size", task.last_error)
        self.assertEqual(harness.retried, [])
        self.assertEqual(harness.files(), [])

    async def test_overlappingMembersFailAtOnce(self) -> None:
        """
        A zip listing one member's bytes many times, each entry within the
        caps though together they inflate thousands of times the answer's
        size, ends C{failed} after one request, saying so, with no file
        kept: no retry can mend it.
        """
        harness = Harness(self, max_attempts=6)
        bomb = BombServer(repeated(zipped(("PRC_LMP.csv", well_compressed(2 << 20))), 30))
        harness.serve(bomb)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual((task.state, task.attempts, bomb.requests), (FAILED, 1, 1))
        self.assertEqual(
            task.last_error, "members PRC_LMP.csv and PRC_LMP.csv overlap: their bytes would be read twice"
        )
        self.assertEqual(harness.retried, [])
        self.assertEqual(harness.files(), [])

    async def test_fewCyclesPerFile(self) -> None:
        """
        A download leaves next to nothing for the cycle collector: what an
        attempt made is freed as it ends, not scanned again and again by
        the collector until a collection finds it.  (A body whose
        callbacks referred back to it left 41 objects a file; what is left
        now, about 8 a file, is Twisted's own, mostly its thread pool's.)
        """
        harness = Harness(self)
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        tasks = await harness.run(LMP, start="2025-01-01", end="2025-01-30")
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        self.assertLess(gc.collect() / len(tasks), 20)

    async def test_largeAnswer(self) -> None:
        """
        An answer of several megabytes, followed in a thread past its first
        (see L{harbour.services.checking}) and its write-back started as it
        arrives (L{harbour.services.writeback}), is recorded with its
        bytes' hash and put in place whole.
        """
        harness = Harness(self)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("PRC_LMP.csv", os.urandom(3 << 20))
        answer = Data(out.getvalue(), "application/zip")
        answer.isLeaf = True
        harness.serve(answer)
        asked: list[int] = []

        def sync_file_range(fd: int, offset: int, length: int, flags: int) -> int:
            asked.append(length)
            return 0

        def judged_whole(path: Path) -> None:
            raise AssertionError("the answer was followed as it arrived: nothing to judge whole")

        handed: list[int] = []
        hand_over = AnswerCheck._hand_over

        def counted(check: AnswerCheck) -> None:
            handed.append(check._waiting_bytes)
            hand_over(check)

        self.patch(attempt, "judge_file", judged_whole)
        self.patch(attempt, "Writeback", lambda run: Writeback(run, 1 << 20, sync_file_range))
        self.patch(AnswerCheck, "_hand_over", counted)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertGreaterEqual(sum(asked), 2 << 20)
        self.assertGreaterEqual(sum(handed), 1 << 20)
        self.assertEqual(task.state, DOWNLOADED)
        self.assertEqual(
            (task.bytes, task.sha256), (len(answer.data), hashlib.sha256(answer.data).hexdigest())
        )
        [path] = harness.files()
        self.assertEqual(path.read_bytes(), answer.data)

    async def test_faultsRetriedThenDownloaded(self) -> None:
        """
        5xx answers, connections reset mid-body, truncated zips and slow
        trickles are retried until each file is whole; no partial file is
        left, under a final name or not.
        """
        faults = Faults(
            error_rate=0.2,
            reset_rate=0.2,
            truncate_rate=0.2,
            trickle_rate=0.2,
            retry_after=0,
            trickle_bytes=4096,
        )
        harness = Harness(self, faults, max_attempts=20)
        tasks = await harness.run(LMP, start="2025-01-01", end="2025-01-12")
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        outcomes = {r[3] for r in harness.simulator.requests}
        self.assertTrue({"503", "reset", "truncated", "trickle"} <= outcomes, outcomes)
        for path in harness.files():
            self.assertFalse(path.name.startswith("."), path)
            self.assertEqual(classify(path).kind, DATA)
        self.assertEqual(len(harness.files()), 12)

    async def test_retryAfterForever(self) -> None:
        """
        A 503 saying C{Retry-After: inf} is retried a day later: its
        attempt ends, the task waits as pending, and the worker is free.
        Such a wait used to reach the store's scripts, which refuse a
        number that is not finite, and held the worker for good.
        """
        harness = Harness(self, Faults(error_rate=1.0, retry_after=float("inf")), concurrency=1)
        released = harness.called(harness.store, "release")
        await harness.create(LMP, start="2025-01-10", end="2025-01-10")
        harness.start()
        await released
        [task] = await harness.all_tasks()
        self.assertEqual((task.state, task.attempts), (PENDING, 1))
        self.assertEqual([e.payload["delay"] for e in harness.retried], [LONGEST_RETRY_AFTER])
        self.assertEqual([r[3] for r in harness.simulator.requests], ["503"])

    async def test_groupZipPreparation(self) -> None:
        """
        A GroupZip answered 1015 first (still being prepared) is asked for
        again without using an attempt: with one attempt allowed, it is
        downloaded.
        """
        harness = Harness(self, max_attempts=1)
        [task] = await harness.run(
            {"name": "grp", "groupid": "DAM_LMP_GRP", "kind": "group_zip"}, end="2025-01-10"
        )
        self.assertEqual((task.state, task.attempts), (DOWNLOADED, 1))
        [retried] = harness.retried
        self.assertEqual((retried.payload["report"], retried.payload["counted"]), ("grp", False))
        self.assertIn("1015", retried.payload["error"])

    async def test_idleTimeout(self) -> None:
        """
        An answer slower than C{idle_timeout} is abandoned and retried; in
        the end the task fails with a clear error.
        """
        harness = Harness(self, Faults(latency=1.0), idle_timeout=0.2, max_attempts=2)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual(task.state, FAILED)
        self.assertIn("after 2 attempts", task.last_error)
        self.assertEqual(harness.files(), [])

    async def test_maxBytes(self) -> None:
        """
        An answer larger than C{max_bytes} fails the task, leaving no file.
        """
        harness = Harness(self, max_bytes=100)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual(task.state, FAILED)
        self.assertIn("larger than max_bytes", task.last_error)
        self.assertEqual(harness.files(), [])

    def _in_place(self, harness: Harness, url: str | None) -> tuple[Path, Path]:
        """
        Put a complete answer at C{lmp/2025-01-10.zip}, recorded as fetched
        for C{url} (with no record if L{None}).

        @return: The sample file and the file in place.
        """
        target = harness.data / "reports" / "lmp" / "2025-01-10.zip"
        target.parent.mkdir(parents=True)
        sample = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        shutil.copy(sample, target)
        if url is not None:
            digest = hashlib.sha256(sample.read_bytes()).hexdigest()
            record_path(target).write_text(record(url, digest))
        return sample, target

    def _url(self, harness: Harness, definition: dict[str, Any]) -> str:
        """
        @return: The URL of C{definition}'s request for 2025-01-10.
        """
        manifest = ManifestTopic(base_url=harness.base_url, start="2025-01-10", end="2025-01-10")
        [request] = report_urls(manifest, [ReportTopic(**definition)], datetime.date(2025, 1, 31))
        return request.url

    async def test_recordedFileNotFetched(self) -> None:
        """
        A file in place whose record shows it was fetched for the task's
        very request is taken as its answer, without a request.
        """
        harness = Harness(self)
        sample, ignored = self._in_place(harness, self._url(harness, LMP))
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual((task.state, task.bytes), (DOWNLOADED, os.path.getsize(sample)))
        self.assertEqual(harness.simulator.requests, [])

    async def test_storageRecorded(self) -> None:
        """
        Each file downloaded, fetched or found in place, records the
        storage id of its directory, made there once and kept: only a
        process that has the directory parses it.
        """
        harness = Harness(self)
        self._in_place(harness, self._url(harness, LMP))
        tasks = await harness.run(LMP)
        self.assertEqual(len(harness.simulator.requests), 2, "one file was in place")
        identifier = (harness.data / "reports" / STORAGE_FILE).read_text().strip()
        self.assertRegex(identifier, "^[0-9a-f]{32}$")
        self.assertEqual([t.storage for t in tasks], [identifier] * 3)
        # Fetched again by a service started afresh, which knows only what
        # the directory keeps: the same storage.
        harness.service._storages = StorageIds(harness.service._in_thread, "download")
        [first] = [t for t in tasks if t.filename.endswith("2025-01-10.zip")]
        harness.simulator.revise("PRC_LMP", datetime.date(2025, 1, 10))
        await harness.store.revise([(first.id, harness.reactor.seconds() + 1, "2")])
        tasks = await harness.run(LMP, end="2025-01-10")
        self.assertEqual([(t.revision, t.storage) for t in tasks if t.id == first.id], [(1, identifier)])

    async def test_unrecordedFileFetched(self) -> None:
        """
        A file in place with no record, or recorded for another request
        (the report's definition changed), is fetched again and replaced;
        its new record names the request.
        """
        other = {**LMP, "params": {"grp_type": "ALL"}}
        for url in (None, self._url(Harness(self), other)):
            harness = Harness(self)
            sample, target = self._in_place(harness, url)
            [task] = await harness.run(LMP, end="2025-01-10")
            self.assertEqual(task.state, DOWNLOADED)
            self.assertEqual(len(harness.simulator.requests), 1)
            self.assertNotEqual(target.read_bytes(), sample.read_bytes())
            self.assertEqual(json.loads(record_path(target).read_text())["url"], task.url)

    async def _revised(self, harness: Harness, content_changes: bool) -> tuple[Task, Task, bytes]:
        """
        Download one day, let OASIS revise it (or only say so), and
        download it again.

        @return: The first and second task, and the first file's bytes.
        """
        [task] = await harness.run(LMP, end="2025-01-10")
        old = (harness.data / "reports" / task.filename).read_bytes()
        if content_changes:
            harness.simulator.revise("PRC_LMP", datetime.date(2025, 1, 10))
        changed = await harness.store.revise([(task.id, harness.reactor.seconds() + 1, "2")])
        self.assertEqual(len(changed), 1)
        [again] = await harness.run(LMP, end="2025-01-10")
        return task, again, old

    async def test_revisionReplacesAndKeeps(self) -> None:
        """
        A revised file is fetched again and replaces the old one, which is
        kept as C{.rev0.zip}; the task records the new size and hash.
        """
        harness = Harness(self)
        task, again, old = await self._revised(harness, content_changes=True)
        target = harness.data / "reports" / "lmp" / "2025-01-10.zip"
        expected = await treq.content(await treq.get(task.url, persistent=False))
        self.assertNotEqual(expected, old)
        self.assertEqual(target.read_bytes(), expected)
        self.assertEqual(target.with_name("2025-01-10.rev0.zip").read_bytes(), old)
        self.assertEqual(
            (again.state, again.revision, again.sha256), (DOWNLOADED, 1, hashlib.sha256(expected).hexdigest())
        )
        self.assertEqual([e.payload["revision"] for e in harness.events], [0, 1])

    async def test_revisionUnchangedOrDropped(self) -> None:
        """
        A revision that leaves a window's bytes as they were keeps no copy;
        with C{keep_revisions} off, a changed file replaces the old one
        and nothing else is kept.
        """
        harness = Harness(self)
        ignored, again, old = await self._revised(harness, content_changes=False)
        self.assertEqual((again.state, again.revision), (DOWNLOADED, 1))
        self.assertEqual([p.name for p in harness.files()], ["2025-01-10.zip"])
        self.assertEqual(len(harness.simulator.requests), 2)

        dropping = Harness(self, keep_revisions=False)
        ignored, again, old = await self._revised(dropping, content_changes=True)
        self.assertEqual([p.name for p in dropping.files()], ["2025-01-10.zip"])
        self.assertNotEqual(dropping.files()[0].read_bytes(), old)

    async def test_politeness(self) -> None:
        """
        Every request starts on a slot reserved with the limiter for its
        host at C{min_request_interval}, after waiting what the limiter
        said: one reservation per request, whatever the concurrency.  (The
        limiter's spacing itself is tested on a L{Clock}.)
        """
        harness = Harness(self, min_request_interval=0.05, concurrency=3)
        limiter = RecordingLimiter(MemoryLimiter(harness.reactor))
        harness.service.client.limiter = limiter
        tasks = await harness.run(LMP, start="2025-01-01", end="2025-01-06")
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        host = urlsplit(harness.base_url).netloc
        self.assertEqual(limiter.reservations, [(host, 0.05)] * len(harness.simulator.requests))

    async def test_slotOutageUsesNoAttempt(self) -> None:
        """
        A politeness slot that cannot be reserved (Redis away) sends no
        request, and gives the task back without using an attempt: with
        one attempt allowed, the task is still downloaded once Redis
        answers.
        """
        harness = Harness(self, min_request_interval=0.01, max_attempts=1)
        harness.service.client.limiter = RecordingLimiter(MemoryLimiter(harness.reactor), outages=1)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual((task.state, task.attempts), (DOWNLOADED, 1))
        self.assertEqual(len(harness.simulator.requests), 1)
        [retried] = harness.retried
        self.assertEqual(retried.payload["counted"], False)
        self.assertIn("no politeness slot: Redis is away", retried.payload["error"])

    async def test_temporaryNamedWhileUnderWay(self) -> None:
        """
        An attempt names its temporary file to the janitor while it is
        under way, and no longer once it is over.
        """
        harness = Harness(self)
        seen: list[tuple[set[Path], list[Path]]] = []
        service = harness.service
        fetch = service.client.fetch

        def watched(*args: Any, **kwargs: Any) -> Deferred[int]:
            seen.append((set(service._temporaries), sorted(harness.data.rglob(".*.part-*"))))
            return fetch(*args, **kwargs)

        self.patch(service.client, "fetch", watched)
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual(task.state, DOWNLOADED)
        [(named, on_disk)] = seen
        self.assertEqual((len(named), sorted(named)), (1, on_disk))
        self.assertEqual(service._temporaries, set())

    async def test_slotFreedOnceDownloaded(self) -> None:
        """
        A worker claims its next task once its download is over, while the
        last one is still being committed and recorded, one store call at a
        time; stopping waits for them to be recorded.
        """
        harness = Harness(self, concurrency=1)
        await harness.create(LMP, start="2025-01-10", end="2025-01-12")
        calls, release = harness.hold_finishes()
        # An outcome is asked to be recorded once its file is in place.
        asked = harness.called(Finishes, "finish", 3)
        harness.start()
        await asked
        self.assertEqual(len([p for p in harness.files() if p.suffix == ".zip"]), 3)
        self.assertEqual(len(calls), 1, "one call at a time; the others wait for it")
        self.assertEqual({t.state for t in await harness.all_tasks()}, {DOWNLOADING})
        stopped = harness.service.stopService()
        self.assertFalse(stopped.called, "stopping waits for the attempts being recorded")
        release()
        await stopped
        self.assertEqual(sorted(sum(calls, [])), sorted(t.id for t in await harness.all_tasks()))
        self.assertEqual({t.state for t in await harness.all_tasks()}, {DOWNLOADED})
        self.assertEqual([e.topic for e in harness.events], ["task.done"] * 3)

    async def test_finishingBounded(self) -> None:
        """
        Once C{FINISHING_PER_WORKER} attempts per download slot are past
        their download, waiting to be committed and recorded, the workers
        claim nothing more until there is room again.
        """
        self.patch(download, "FINISHING_PER_WORKER", 1)
        harness = Harness(self, concurrency=1)
        await harness.create(LMP, start="2025-01-10", end="2025-01-13")
        ignored, release = harness.hold_finishes()
        asked = harness.called(Finishes, "finish", 2)
        harness.start()
        await asked
        # The worker has two attempts finishing, one more than its room:
        # it waits, looking again each poll interval, and claims nothing.
        await harness.called(harness.service._waker, "idle", 3)
        self.assertEqual(len(harness.simulator.requests), 2)
        states = sorted(t.state for t in await harness.all_tasks())
        self.assertEqual(states, [DOWNLOADING] * 2 + [PENDING] * 2)
        release()
        await harness.events_seen(4)
        self.assertEqual({t.state for t in await harness.all_tasks()}, {DOWNLOADED})
        self.assertEqual(len(harness.simulator.requests), 4)

    async def test_stopReleases(self) -> None:
        """
        Stopping mid-download gives the task back to C{pending} at once,
        its attempt not counted, and removes the temporary file.
        """
        harness = Harness(self, Faults(trickle_rate=1.0, trickle_bytes=64))
        await harness.create(LMP, start="2025-01-10", end="2025-01-10")
        receiving = harness.called(harness.service.activity, "count_bytes")
        harness.start()
        await receiving
        self.assertTrue(harness.service.status()["in_flight"], "mid-download")
        await harness.service.stopService()
        [task] = await harness.all_tasks()
        self.assertEqual(
            (task.state, task.attempts, task.last_error), (PENDING, 0, "harbour stopped mid-download")
        )
        self.assertLessEqual(task.not_before, harness.reactor.seconds(), "due at once")
        self.assertEqual(harness.files(), [])

    async def test_stopWhileWaitingForHead(self) -> None:
        """
        Stopping while a request waits for its answer's head (OASIS
        preparing it) gives the task back to C{pending} at once, as a stop
        mid-body does: the attempt is not counted, not even the task's
        last, and the task does not fail.
        """
        harness = Harness(self, idle_timeout=60.0, max_attempts=1)
        arrived = harness.serve_silence()
        await harness.create(LMP, start="2025-01-10", end="2025-01-10")
        harness.start()
        await arrived
        await harness.service.stopService()
        [task] = await harness.all_tasks()
        self.assertEqual(
            (task.state, task.attempts, task.last_error), (PENDING, 0, "harbour stopped mid-download")
        )
        self.assertLessEqual(task.not_before, harness.reactor.seconds(), "due at once")
        self.assertEqual(harness.files(), [])

    async def test_noHeadInTime(self) -> None:
        """
        A request whose answer's head never comes is ended by the deadline
        for headers, C{idle_timeout}, with an error that says so.
        """
        harness = Harness(self, idle_timeout=0.2, max_attempts=1)
        harness.serve_silence()
        [task] = await harness.run(LMP, end="2025-01-10")
        self.assertEqual((task.state, task.last_error), (FAILED, "no answer within 0.2 s (after 1 attempts)"))
        self.assertEqual(harness.files(), [])

    async def test_stoppedBeforeReady(self) -> None:
        """
        Stopped while it waits to be ready, the service starts nothing once
        it is: no worker, heartbeat or janitor runs after its stop.
        """
        harness = Harness(self)
        await harness.create(LMP, start="2025-01-10", end="2025-01-10")
        ready: Deferred[None] = Deferred()
        harness.service.ready = lambda: ready
        harness.start()
        await harness.service.stopService()
        ready.callback(None)
        heartbeat = harness.service._heartbeat
        self.assertEqual(
            (heartbeat is not None and heartbeat.running, harness.service._janitor, harness.service._workers),
            (False, None, {}),
        )
        [task] = await harness.all_tasks()
        self.assertEqual(task.state, PENDING)

    async def test_workersSurviveUnexpectedErrors(self) -> None:
        """
        A claim that fails unexpectedly (a bug, not an outage) is logged,
        and the worker goes on: the mirror completes.
        """
        harness = Harness(self, concurrency=1)
        claim_many = harness.store.claim_many
        failures = [RuntimeError("a bug"), StoreUnavailable("away")]

        def flaky(owner: str, lease_seconds: float, count: int) -> Deferred[list[Task]]:
            if failures:
                return fail(failures.pop())
            return claim_many(owner, lease_seconds, count)

        harness.store.claim_many = flaky  # type: ignore[method-assign]
        tasks = await harness.run(LMP)
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def test_unexpectedAttemptErrorRecorded(self) -> None:
        """
        An attempt that fails unexpectedly (a bug) gives its task back, and
        the task's C{last_error} names the error, not only that there was
        one; the next attempt downloads it.
        """
        harness = Harness(self, concurrency=1)
        storage = harness.service.storage
        failures = [RuntimeError("a bug")]

        def flaky(directory: Path) -> Deferred[str]:
            if failures:
                raise failures.pop()
            return storage(directory)

        harness.service.storage = flaky  # type: ignore[method-assign]
        tasks = await harness.run(LMP, start="2025-01-12", end="2025-01-12")
        self.assertEqual([(t.state, t.attempts) for t in tasks], [(DOWNLOADED, 2)])
        [retried] = harness.retried
        self.assertEqual(retried.payload["error"], "internal error: RuntimeError: a bug (see the log)")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def silent_hub(self, harness: Harness, count: int) -> SilentHub:
        """
        Run C{harness}'s service with a silent hub for its bus until it has
        announced C{count} outcomes, failing if it has not within 30 s.

        @return: The hub.
        """
        hub = SilentHub()
        harness.service.bus = hub
        harness.start()
        try:
            await hub.published_count("task.done", count).addTimeout(30, harness.reactor)
        except TimeoutError:
            self.fail(f"{hub.published.count('task.done')} of {count} announced")
        # It fires within the last publish: let the attempt that made it end.
        await deferLater(harness.reactor, 0, lambda: None)
        return hub

    async def test_silentHubKeepsClaiming(self) -> None:
        """
        A worker whose hub is connected but silent (stopped, say) goes on
        claiming and downloading: an attempt is over once its outcome is
        recorded, its announcement unanswered.
        """
        harness = Harness(self, concurrency=1)
        requests = await harness.create(LMP, start="2025-01-01", end="2025-01-20")
        self.assertGreater(len(requests), download.FINISHING_PER_WORKER + 1)
        await self.silent_hub(harness, len(requests))
        self.assertEqual({t.state for t in await harness.all_tasks()}, {DOWNLOADED})
        self.assertEqual(harness.service._finishing, set())

    async def test_silentHubStops(self) -> None:
        """
        The service stops though its hub is connected but silent: neither
        its announcements nor its unsubscriptions are waited for.
        """
        harness = Harness(self, concurrency=1)
        await harness.create(LMP, start="2025-01-10", end="2025-01-12")
        await self.silent_hub(harness, 3)
        stopped = harness.service.stopService()
        await stopped.addTimeout(10, harness.reactor)
        self.assertEqual({t.state for t in await harness.all_tasks()}, {DOWNLOADED})


class Preparing(Resource):
    """
    Answers every request with OASIS's error 1015: the group zip is still
    being prepared.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        """
        The 1015 answer.
        """
        return zipped(("e.xml", error_document(IN_PREPARATION, datetime.datetime(2025, 3, 10))))


class PreparationTests(SynchronousTestCase):
    """
    A group zip OASIS keeps preparing (error 1015) is asked for again
    without using an attempt for an hour, then as any error.
    """

    def test_uncountedForAnHour(self) -> None:
        """
        Each 1015 within an hour of the first is given back uncounted,
        after at least the politeness interval and half the time prepared
        so far, saying since when; the first one after the hour, and every
        one after it, uses an attempt, until the task fails.
        """
        clock = Clock()
        clock.advance(NOW)
        stub = StubTreq(Preparing())
        settings = DownloadTopic(min_request_interval=5.0)
        work = WorkTopic(retry_base=1.0, retry_cap=10.0, max_attempts=2)
        store = MemoryTaskStore(clock)
        manifest = ManifestTopic(base_url="http://oasis.test/oasisapi", start="2025-03-09", end="2025-03-09")
        report = ReportTopic(name="grp", groupid="DAM_LMP_GRP", kind="group_zip")
        self.successResultOf(store.create(report_urls(manifest, [report], datetime.date(2025, 3, 10))))
        attempts = stubbed_attempts(Path(self.mktemp()), clock, store, settings, work, stub)
        tries: list[tuple[float, int, float]] = []
        while True:
            task = self.successResultOf(store.claim("tester", 300))
            assert task is not None
            done = attempts.run(task)
            stub.flush()
            if not done.called:
                # Its politeness slot is still to come: a backoff can be shorter.
                clock.advance(settings.min_request_interval)
                stub.flush()
            self.successResultOf(done)
            after = self.successResultOf(store.get(task.id))
            assert after is not None
            if after.state != PENDING:
                break
            tries.append((clock.seconds() - NOW, after.attempts, after.not_before - clock.seconds()))
            clock.advance(after.not_before - clock.seconds())
        uncounted = [(at, delay) for at, used, delay in tries if used == 0]
        self.assertEqual([used for at, used, delay in tries], [0] * len(uncounted) + [1])
        self.assertTrue(10 <= len(uncounted) <= 20, uncounted)
        self.assertTrue(all(delay >= max(5.0, at / 2) for at, delay in uncounted), uncounted)
        self.assertLess(uncounted[-1][0], PREPARATION_UNCOUNTED)
        self.assertGreaterEqual(tries[-1][0], PREPARATION_UNCOUNTED)
        self.assertEqual((after.state, after.attempts), (FAILED, 2))
        self.assertTrue(after.last_error.startswith("OASIS error 1015: GroupZip DownLoad is in Processing"))
        self.assertTrue(
            after.last_error.endswith(" (being prepared since 2025-03-10T20:00:00Z) (after 2 attempts)"),
            after.last_error,
        )

    def test_sinceReadBack(self) -> None:
        """
        The time of a run's first 1015 is read back from the error its
        latest try left, and only from a 1015's.
        """
        self.assertEqual(
            prepared_since("OASIS error 1015: x (being prepared since 2025-03-10T20:00:00Z)"), NOW
        )
        self.assertIsNone(prepared_since("HTTP 503"))
        self.assertIsNone(prepared_since(""))


class Served(Resource):
    """
    Answers every request with the same bytes.

    @ivar requests: How many requests it has answered.
    """

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.requests = 0

    def render_GET(self, request: Request) -> bytes:
        """
        The bytes.
        """
        self.requests += 1
        return self.body


class FullDisk(io.RawIOBase):
    """
    A new file on a disk with room for C{room} bytes more: a write that
    does not fit fails with C{ENOSPC}, as on a full file system.
    """

    def __init__(self, path: Path, room: int) -> None:
        self.name = str(path)
        self._room = room
        self._file = path.open("wb", buffering=0)

    def writable(self) -> bool:
        """
        It is written.
        """
        return True

    def write(self, data: Any) -> int:
        """
        Write C{data} if it fits, else fail with C{ENOSPC}.
        """
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def fileno(self) -> int:
        """
        The real file's descriptor.
        """
        return self._file.fileno()

    def close(self) -> None:
        """
        Close the real file too.
        """
        self._file.close()
        super().close()


class DiskFaultTests(SynchronousTestCase):
    """
    A fault of this host's disk (full, a file where a directory should
    be) ends the attempt saying what could not be written, and uses none of
    the task's attempts, after a backoff that grows with the faults in a
    row: once the disk is mended, the task is downloaded, although it is
    allowed only one attempt.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.answer = Served(SAMPLES.joinpath(SAMPLE_ZIP).read_bytes())
        self.stub = StubTreq(self.answer)
        self.store = MemoryTaskStore(self.clock)
        manifest = ManifestTopic(base_url="http://oasis.test/oasisapi", start="2025-03-09", end="2025-03-09")
        report = ReportTopic(**LMP)
        self.successResultOf(self.store.create(report_urls(manifest, [report], datetime.date(2025, 3, 10))))
        self.directory = Path(self.mktemp())
        self.attempts = stubbed_attempts(
            self.directory,
            self.clock,
            self.store,
            DownloadTopic(min_request_interval=0),
            WorkTopic(retry_base=1.0, retry_cap=10.0, max_attempts=1),
            self.stub,
        )

    def attempt(self) -> Task:
        """
        Claim the task once it is due, and make an attempt at it.

        @return: The task after it.
        """
        [task] = self.successResultOf(self.store.tasks(PENDING, None, 0, 1))[0]
        self.clock.advance(max(0.0, task.not_before - self.clock.seconds()))
        claimed = self.successResultOf(self.store.claim("tester", 300))
        assert claimed is not None
        done = self.attempts.run(claimed)
        self.stub.flush()
        self.successResultOf(done)
        after = self.successResultOf(self.store.get(claimed.id))
        assert after is not None
        return after

    def full(self, room: int) -> list[bool]:
        """
        Give every download's file a disk with C{room} bytes free, until
        the returned list is emptied.
        """
        create = files._create
        full = [True]

        def created(temporary: Path) -> IO[bytes]:
            if full:
                return io.BufferedWriter(FullDisk(temporary, room), files.WRITE_BUFFER)
            return create(temporary)

        self.patch(files, "_create", created)
        return full

    def assertFault(self, task: Task, path: str, error: str) -> None:
        """
        C{task} was given back after a disk fault, using no attempt, with
        C{last_error} naming C{path} (or, if it ends with C{*}, a path it
        begins) and C{error}; no temporary file is left.
        """
        self.assertEqual((task.state, task.attempts), (PENDING, 0))
        named, colon, said = task.last_error.rpartition(": ")
        self.assertEqual(said, error)
        if path.endswith("*"):
            self.assertTrue(named.startswith(f"cannot write {path[:-1]}"), task.last_error)
        else:
            self.assertEqual(named, f"cannot write {path}")
        self.assertEqual([p for p in self.directory.rglob("*") if ".part-" in p.name], [])

    def assertDownloaded(self, task: Task, requests: int) -> None:
        """
        C{task} is downloaded, its one attempt used, after C{requests}
        requests in all; its file and record are in place.
        """
        self.assertEqual((task.state, task.attempts, self.answer.requests), (DOWNLOADED, 1, requests))
        target = self.directory / task.filename
        self.assertEqual(target.read_bytes(), self.answer.body)
        self.assertEqual(json.loads(record_path(target).read_text())["sha256"], task.sha256)

    def assertFullDiskRidden(self, room: int) -> None:
        """
        The task's attempt on a disk with C{room} bytes left fails with the
        disk's fault; once the disk has room again, the next attempt
        downloads it.
        """
        full = self.full(room=room)
        [task] = self.successResultOf(self.store.tasks(PENDING, None, 0, 1))[0]
        target = self.directory / task.filename
        after = self.attempt()
        self.assertFault(after, f"{target.parent}/.{target.name}.part-1-*", "No space left on device")
        full.clear()
        self.assertDownloaded(self.attempt(), requests=2)

    def test_smallAnswerOnFullDisk(self) -> None:
        """
        An answer smaller than the file's buffer, so written only as the
        file is flushed, on a full disk.
        """
        self.assertFullDiskRidden(room=0)

    def test_largeAnswerOnFullDisk(self) -> None:
        """
        An answer larger than the file's buffer, on a disk that fills
        mid-body.
        """
        self.answer.body = zipped(("PRC_LMP.csv", random.Random(1).randbytes(64 << 10)))
        self.assertFullDiskRidden(room=16 << 10)

    def test_directoryUnusable(self) -> None:
        """
        A download directory that cannot be made (a file in its way) fails
        the attempt before anything is asked of OASIS.
        """
        self.directory.write_bytes(b"not a directory")
        [task] = self.successResultOf(self.store.tasks(PENDING, None, 0, 1))[0]
        after = self.attempt()
        self.assertFault(after, str((self.directory / task.filename).parent), "Not a directory")
        self.assertEqual(self.answer.requests, 0)
        self.directory.unlink()
        self.assertDownloaded(self.attempt(), requests=1)

    def test_commitFails(self) -> None:
        """
        A file that cannot be put in place: its record cannot be written
        once it is renamed.  The next attempt fetches it again, as a file
        without its record is not trusted.
        """
        write_record = commit._write_record
        faults = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))]

        def failing(path: Path, text: str) -> None:
            if faults:
                raise faults.pop()
            write_record(path, text)

        self.patch(commit, "_write_record", failing)
        [task] = self.successResultOf(self.store.tasks(PENDING, None, 0, 1))[0]
        after = self.attempt()
        self.assertFault(after, str(self.directory / task.filename), "No space left on device")
        self.assertDownloaded(self.attempt(), requests=2)

    def test_backoffGrows(self) -> None:
        """
        Each fault in a row waits longer, as the retries of any error do;
        an attempt whose file work succeeds starts the count again.
        """
        full = self.full(room=0)
        delays = []
        for ignored in range(4):
            after = self.attempt()
            self.assertEqual((after.state, after.attempts), (PENDING, 0))
            delays.append(after.not_before - self.clock.seconds())
        # backoff(n, 1, 10): 1, 2, 4, 8 s, each jittered by half either way.
        for n, delay in enumerate(delays):
            self.assertTrue(2**n / 2 <= delay <= 2**n * 1.5, delays)
        full.clear()
        self.assertDownloaded(self.attempt(), requests=5)
        self.assertEqual(self.attempts.outcomes.disk_faults, 0)


class PolicyTests(SynchronousTestCase):
    """
    Retry arithmetic.
    """

    def test_retryAfter(self) -> None:
        """
        C{Retry-After} is read as seconds or as an HTTP date.
        """
        self.assertEqual(retry_after(b"7", 0), 7.0)
        self.assertEqual(retry_after(b"Thu, 01 Jan 1970 00:01:40 GMT", 40.0), 60.0)
        self.assertIsNone(retry_after(b"soon", 0))
        self.assertIsNone(retry_after(None, 0))

    def test_retryAfterDateWithoutZone(self) -> None:
        """
        An HTTP date without a zone, or with C{-0000}, is in GMT, whatever
        this machine's local time: it was read as local time, off by the
        zone's offset (hours, past the 5 s a page asks).
        """
        zone = os.environ.get("TZ")
        os.environ["TZ"] = "America/Los_Angeles"
        time.tzset()

        def restore() -> None:
            if zone is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = zone
            time.tzset()

        self.addCleanup(restore)
        for header in [b"Thu, 01 Jan 1970 00:01:40", b"Thu, 01 Jan 1970 00:01:40 -0000"]:
            self.assertEqual(retry_after(header, 40.0), 60.0, header)

    def test_retryAfterBounded(self) -> None:
        """
        A C{Retry-After} of no number (C{nan}) is none; one past a day
        (C{inf}, C{1e999}, a date centuries ahead) is a day: such a wait
        reached the store's scripts, which refuse a number that is not
        finite, and held its worker for good.
        """
        self.assertIsNone(retry_after(b"nan", 0))
        for header in [b"inf", b"Infinity", b"1e999", b"864000", b"Fri, 01 Jan 2400 00:00:00 GMT"]:
            self.assertEqual(retry_after(header, 0), LONGEST_RETRY_AFTER)
        self.assertEqual(retry_after(b"-5", 0), 0.0)

    def test_backoff(self) -> None:
        """
        Backoff doubles per attempt within jitter, and stops at the cap.
        """
        import random

        rng = random.Random(1)
        delays = [backoff(n, 10, 1000, rng) for n in (1, 2, 3, 4)]
        for n, delay in enumerate(delays):
            self.assertTrue(5 * 2**n <= delay <= 15 * 2**n, delays)
        self.assertLessEqual(backoff(30, 10, 1000, rng), 1500)
        # This host's disk faults in a row have no most.
        self.assertLessEqual(backoff(10_000, 10.0, 3600.0, rng), 5400)


class DirectoryTests(SynchronousTestCase):
    """
    Tests for L{DownloadService.directory}.
    """

    def test_followsSettings(self) -> None:
        """
        The directory is the data directory's C{[download] directory}, and
        follows a change of the settings.
        """
        reactor = MemoryReactorClock()
        store = MemoryTaskStore(reactor)
        client = OasisClient(reactor, MemoryLimiter(reactor))
        service = DownloadService(reactor, store, client, Bus(), Path("/srv/h"), DownloadTopic(directory="a"))
        self.assertEqual(service.directory, Path("/srv/h/a"))
        self.assertIs(service.directory, service.directory)
        service._download_changed(Event.create("download", {"directory": "b"}))
        self.assertEqual(service.directory, Path("/srv/h/b"))


class FirstConfigurationTests(SynchronousTestCase):
    """
    A download service made without settings claims nothing until the
    first C{download} and C{work} topics are in force.
    """

    def store_with_task(self, reactor: MemoryReactorClock) -> MemoryTaskStore:
        """
        @return: A store holding one pending task.
        """
        store = MemoryTaskStore(reactor)
        start = datetime.datetime(2025, 1, 10, 8, tzinfo=datetime.UTC)
        self.successResultOf(
            store.create([ReportURL("http://oasis.invalid/lmp", "lmp/2025-01-10.zip", "lmp", start, start)])
        )
        return store

    def started(
        self, reactor: MemoryReactorClock, bus: Bus, data: Path | None = None, **kwargs: Any
    ) -> DownloadService:
        """
        @return: A download service with an empty store on C{bus}, beating
            every 5 s, its disk work done at once, started (and stopped at
            the test's end if still running).
        """
        service = DownloadService(
            reactor,
            MemoryTaskStore(reactor),
            OasisClient(reactor, MemoryLimiter(reactor)),
            bus,
            data or Path(self.mktemp()),
            heartbeat_interval=5.0,
            **kwargs,
        )
        service._in_thread = lambda f, *args: succeed(f(*args))  # type: ignore[method-assign]
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    def beats(self, bus: Bus) -> list[dict[str, Any]]:
        """
        @return: The payload of every C{worker.status} published on C{bus}
            from now on, as it comes.
        """
        beats: list[dict[str, Any]] = []
        bus.subscribe("worker.status", lambda event: beats.append(event.payload))
        return beats

    def test_claimsNothingUntilConfigured(self) -> None:
        """
        Started with no configuration in force (one with errors publishes
        nothing), the service claims nothing and writes nothing, however
        long it waits, and its status says what it waits for; once both
        topics are heard, its workers claim, and download into the
        configured directory.
        """
        reactor = MemoryReactorClock()
        store = self.store_with_task(reactor)
        bus = Bus()
        data = Path(self.mktemp())
        data.mkdir()
        service = DownloadService(
            reactor, store, OasisClient(reactor, MemoryLimiter(reactor)), bus, data, poll_interval=1.0
        )
        service._in_thread = lambda f, *args: succeed(f(*args))  # type: ignore[method-assign]
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        for ignored in range(10):
            reactor.advance(60)
        [task] = self.successResultOf(store.tasks(PENDING, None, 0, 10))[0]
        self.assertEqual(task.attempts, 0)
        self.assertEqual(service.status()["waiting"], "a valid configuration")
        self.assertEqual(list(data.iterdir()), [])
        bus.publish("download", {"directory": "mirror", "concurrency": 1}, retain=True)
        reactor.advance(60)
        # The leases' length is not known yet.
        self.assertEqual(self.successResultOf(store.get(task.id)).state, PENDING)  # type: ignore[union-attr]
        bus.publish("work", {"lease_seconds": 30}, retain=True)
        reactor.advance(0)
        claimed = self.successResultOf(store.get(task.id))
        assert claimed is not None
        self.assertEqual((claimed.state, claimed.owner), (DOWNLOADING, service.owner))
        self.assertNotIn("waiting", service.status())
        self.assertEqual(service.directory, data / "mirror")
        self.assertEqual([p.name for p in data.iterdir()], ["mirror"])

    def test_beatsWhileWaiting(self) -> None:
        """
        While it waits for the configuration, the service beats as usual,
        saying what it waits for, so that the hub lists it as waiting; the
        configuration in force, it beats at once without.
        """
        reactor = MemoryReactorClock()
        bus = Bus()
        beats = self.beats(bus)
        service = self.started(reactor, bus)
        for ignored in range(2):
            reactor.advance(5)
        self.assertEqual([beat.get("waiting") for beat in beats], ["a valid configuration"] * 3)
        self.assertEqual({beat["owner"] for beat in beats}, {service.owner})
        bus.publish("download", {}, retain=True)
        bus.publish("work", {}, retain=True)
        reactor.advance(BEAT_SPACING)
        self.assertEqual(len(beats), 4)
        self.assertNotIn("waiting", beats[-1])

    def test_beatsWhileStoreNotReady(self) -> None:
        """
        Until its store can be used, the service beats, saying it waits for
        its task store (so that the hub lists it as waiting, and its link,
        never silent, is not closed as idle); the store ready, it waits for
        the configuration, then for nothing.
        """
        reactor = MemoryReactorClock()
        bus = Bus()
        beats = self.beats(bus)
        ready: Deferred[None] = Deferred()
        self.started(reactor, bus, ready=lambda: ready)
        for ignored in range(2):
            reactor.advance(5)
        self.assertEqual([beat.get("waiting") for beat in beats], [STORE_WAITING] * 3)
        ready.callback(None)
        reactor.advance(BEAT_SPACING)
        self.assertEqual(len(beats), 4)
        self.assertEqual(beats[-1].get("waiting"), "a valid configuration")
        bus.publish("download", {}, retain=True)
        bus.publish("work", {}, retain=True)
        reactor.advance(BEAT_SPACING)
        self.assertNotIn("waiting", beats[-1])

    def test_stoppedWhileSubscribing(self) -> None:
        """
        Stopped while its subscriptions are still being made (over a hub
        link, they may take a while), the service starts no heartbeat once
        they are: nothing beats for a stopped service.
        """
        reactor = MemoryReactorClock()
        bus = Bus()
        beats = self.beats(bus)
        subscribing: list[Deferred[None]] = []
        subscribed = bus.subscribe

        def subscribe(pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
            made = self.successResultOf(subscribed(pattern, callback))
            held: Deferred[None] = Deferred()
            subscribing.append(held)
            return held.addCallback(lambda ignored: made)

        bus.subscribe = subscribe  # type: ignore[method-assign]
        service = self.started(reactor, bus)
        self.successResultOf(service.stopService())
        for held in subscribing:
            held.callback(None)
        reactor.advance(10)
        self.assertEqual(beats, [])
        self.assertIsNone(service._heartbeat)

    def test_noDirectoryWhileWaiting(self) -> None:
        """
        While it waits for the configuration, the service's status names
        no download directory: the default one may not be the
        configuration's.  Once it is in force, the configured one.
        """
        reactor = MemoryReactorClock()
        bus = Bus()
        data = Path(self.mktemp())
        service = self.started(reactor, bus, data)
        self.assertNotIn("directory", service.status())
        bus.publish("download", {"directory": "mirror"}, retain=True)
        self.assertNotIn("directory", service.status())
        bus.publish("work", {}, retain=True)
        self.assertEqual(service.status()["directory"], str(data / "mirror"))

    def test_stoppedWhileWaiting(self) -> None:
        """
        Stopped while it waits for the configuration, the service stops at
        once, and the topics coming later start nothing.
        """
        reactor = MemoryReactorClock()
        store = self.store_with_task(reactor)
        bus = Bus()
        service = DownloadService(
            reactor, store, OasisClient(reactor, MemoryLimiter(reactor)), bus, Path(self.mktemp())
        )
        starting = service.startService()
        self.successResultOf(service.stopService())
        self.assertIsNone(self.successResultOf(starting))
        bus.publish("download", {}, retain=True)
        bus.publish("work", {}, retain=True)
        reactor.advance(60)
        self.assertEqual(self.successResultOf(store.tasks(PENDING, None, 0, 10))[1], 1)


class BeatTests(SynchronousTestCase):
    """
    Tests for L{DownloadService.beat}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.bus = Bus()
        self.published: list[IEvent] = []
        self.bus.subscribe("worker.status", self.published.append)

    def service(self, prefix: str | None = None) -> DownloadService:
        """
        @return: A download service on the bus, running as started but
            without its workers and threads.
        """
        reactor = self.reactor
        client = OasisClient(reactor, MemoryLimiter(reactor))
        service = DownloadService(
            reactor,
            MemoryTaskStore(reactor),
            client,
            self.bus,
            Path("/srv/h"),
            DownloadTopic(),
            prefix=prefix,
        )
        service.running = True
        return service

    def test_notWhenStopped(self) -> None:
        """
        An attempt starting as the service stops asks for a beat in vain:
        nothing is published or scheduled after the stop.
        """
        service = self.service()
        service.beat()
        self.assertEqual(len(self.published), 1)
        service.beat()
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1, "the next beat, spaced")
        service.stopService()
        service.beat()
        self.reactor.advance(1)
        self.assertEqual((len(self.published), self.reactor.getDelayedCalls()), (1, []))

    def test_prefixTold(self) -> None:
        """
        A beat names the store's C{--prefix} when the service was given
        it, so that the hub can tell a worker claiming from other keys.
        """
        for prefix in ("fleet", None):
            self.service(prefix).beat()
        self.assertEqual([event.payload.get("prefix") for event in self.published], ["fleet", None])
        self.assertNotIn("prefix", self.published[1].payload)


class JanitorTests(SynchronousTestCase):
    """
    Tests for L{remove_abandoned}.
    """

    def test_onlyAbandoned(self) -> None:
        """
        Temporary files untouched for longer than the limit go; recent ones
        and final files stay.
        """
        from harbour.services.download import remove_abandoned

        root = Path(self.mktemp())
        (root / "lmp").mkdir(parents=True)
        old = root / "lmp" / ".2025-01-01.zip.part-0000abcd"
        young = root / "lmp" / ".2025-01-02.zip.part-0000abce"
        final = root / "lmp" / "2025-01-03.zip"
        for path in (old, young, final):
            path.write_bytes(b"x")
        os.utime(old, (1000, 1000))
        os.utime(final, (1000, 1000))
        now = os.stat(young).st_mtime + 10
        self.assertEqual(remove_abandoned(root, 300, now), 1)
        self.assertEqual(sorted(p.name for p in (root / "lmp").iterdir()), [young.name, final.name])

    def tidying(self, now: float) -> DownloadService:
        """
        @return: A download service (not started) whose reactor's time is
            C{now}, and whose janitor runs its file work at once.
        """
        reactor = MemoryReactorClock()
        reactor.advance(now)
        service = DownloadService(
            reactor,
            MemoryTaskStore(reactor),
            OasisClient(reactor, MemoryLimiter(reactor)),
            Bus(),
            Path(self.mktemp()),
            DownloadTopic(),
        )
        service._in_thread = lambda f, *args: succeed(f(*args))  # type: ignore[method-assign]
        return service

    def test_serviceKeepsItsAttemptsFiles(self) -> None:
        """
        The service's janitor never removes the temporary file of one of
        its attempts under way, however old (an attempt waiting to commit,
        or a trickle held in the write buffer, writes nothing to it).
        """
        service = self.tidying(now=1_750_000_000.0)
        directory = service.directory / "lmp"
        directory.mkdir(parents=True)
        live = directory / ".2025-01-01.zip.part-1-0000abcd"
        live.write_bytes(b"x")
        os.utime(live, (0, 0))
        service._temporaries.add(live)
        self.successResultOf(service._tidy())
        self.assertEqual(list(directory.iterdir()), [live])

    def test_serviceTidiesByItsClock(self) -> None:
        """
        The service's janitor judges a temporary file's age by its reactor's
        time: past four idle deadlines and a minute, the file goes.
        """
        now = 1_750_000_000.0
        service = self.tidying(now)
        directory = service.directory / "lmp"
        directory.mkdir(parents=True)
        old = directory / ".2025-01-01.zip.part-1-0000abcd"
        young = directory / ".2025-01-02.zip.part-1-0000abce"
        limit = 4 * service.settings.idle_timeout + 60
        for path, age in ((old, limit + 1), (young, limit - 1)):
            path.write_bytes(b"x")
            os.utime(path, (now - age, now - age))
        self.successResultOf(service._tidy())
        self.assertEqual([p.name for p in directory.iterdir()], [young.name])
