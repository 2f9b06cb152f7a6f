"""
Benchmarks of the mirror, each run in a fresh process so that its peak
memory is its own:

    python -m benchmarks.mirror refresh      # 100,000 tasks: new, then present
    python -m benchmarks.mirror ceiling      # the same keys, plain pipelined commands
    python -m benchmarks.mirror politeness   # slot use under a 0.2 s rule
    python -m benchmarks.mirror files --count 2000 --size 100000 --concurrency 16

Each prints one JSON object.  harbour here is its download service with
its Redis task store and Redis politeness limiter, in one process with an
embedded redis-server, as in C{twistd harbour}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import treq
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults, maybeDeferred
from twisted.internet.task import deferLater, react

from benchmarks import embedded_socket, port_number
from benchmarks.memory import peak_rss_mb
from harbour.bus import Bus
from harbour.collector import tune_collector
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, WorkTopic
from harbour.oasis.client import OasisClient
from harbour.oasis.requests import ReportURL, report_urls
from harbour.services.download import DownloadService
from harbour.store.connection import StoreService
from harbour.store.politeness import RedisLimiter
from harbour.store.tasks import RedisTaskStore, task_id
from harbour.testing.simulator import Faults, OasisSimulator

if TYPE_CHECKING:
    from benchmarks import IBenchReactor
    from harbour.interfaces import IEvent


async def redis_store(reactor: IBenchReactor, directory: Path) -> StoreService:
    """
    @return: A started store on a private embedded redis-server.
    """
    store = StoreService.from_config(reactor, None, directory, "bench")
    store.startService()
    await store.when_ready()
    return store


def requests_for(base_url: str, reports: int, days: int) -> list[ReportURL]:
    """
    @return: The requests of C{reports} daily reports over C{days} days.
    """
    manifest = ManifestTopic(
        base_url=base_url,
        start="2000-01-01",
        end=(datetime.date(2000, 1, 1) + datetime.timedelta(days=days - 1)).isoformat(),
    )
    definitions = [
        ReportTopic(
            name=f"r{i}",
            queryname="PRC_LMP",
            kind="single_zip",
            market_run_id="DAM",
            resultformat="csv",
            window="1d",
            params={"node": f"NODE{i}"},
        )
        for i in range(reports)
    ]
    return report_urls(manifest, definitions, datetime.date(2030, 1, 1))


#: The reports and days of a refresh, and so its tasks.
REFRESH_REPORTS, REFRESH_DAYS = 50, 2000
REFRESH_TASKS = REFRESH_REPORTS * REFRESH_DAYS


class ShortRun(Exception):
    """
    A run did not do all the work it is timed for: its figures would
    flatter harbour.
    """


def expect(what: str, got: float, wanted: float) -> None:
    """
    @raise ShortRun: saying C{what}, unless C{got} (a count) is C{wanted}.
    """
    if got != wanted:
        raise ShortRun(f"{what}: {got:,.0f}, not {wanted:,.0f}")


class Downloads:
    """
    Follows the task events of a run on its bus: L{finished} fires once
    every one of C{expected} tasks has been downloaded (C{task.done}), and
    fails at the first that ends otherwise (C{task.failed}, C{task.empty}),
    so that a run's time ends only with its last file, and a run that
    cannot get every file says why at once.  A retry (C{task.retried}) is
    counted in L{retries}: the task is still to be downloaded.

    @ivar done: The tasks downloaded so far.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.done = 0
        self.retries = 0
        self.finished: Deferred[None] = Deferred()

    def __call__(self, event: IEvent) -> None:
        """
        Count one task event.
        """
        if self.finished.called:
            return
        if event.topic == "task.done":
            self.done += 1
            if self.done == self.expected:
                self.finished.callback(None)
        elif event.topic == "task.retried":
            self.retries += 1
        elif event.topic in ("task.failed", "task.empty"):
            payload = event.payload
            self.finished.errback(
                ShortRun(
                    f"{event.topic.removeprefix('task.')} after {self.done} of {self.expected} downloaded:"
                    f" {payload.get('filename')}: {payload.get('error', '')}"
                )
            )


async def refresh(reactor: IBenchReactor, directory: Path) -> dict[str, float]:
    """
    A refresh (manifest and creation) of 100,000 new tasks, then of the
    same 100,000 already present.
    """
    store = await redis_store(reactor, directory)
    try:
        tasks = RedisTaskStore(store, reactor, store.prefix)
        timings = {}
        for label in ("new", "present"):
            started = time.perf_counter()
            created = await tasks.create(
                requests_for("http://oasis.invalid/oasisapi", REFRESH_REPORTS, REFRESH_DAYS)
            )
            timings[f"{label}_seconds"] = time.perf_counter() - started
            timings[f"{label}_created"] = sum(created.values())
        # A refresh that created too few, or created again what was there,
        # did less (or other) work than the ceiling it is held to.
        expect("new tasks created", timings["new_created"], REFRESH_TASKS)
        expect("tasks created again, all present", timings["present_created"], 0)
        return timings
    finally:
        await store.stopService()


def command(*words: object) -> bytes:
    """
    @return: One Redis command in the protocol's own encoding.
    """
    encoded = [str(word).encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded)


def pipelined(path: Path, commands: list[bytes]) -> None:
    """
    Send C{commands} at once on a fresh connection to the unix socket
    C{path}, and read their replies (one line each: every command here
    answers an integer).

    @raise RuntimeError: if one answers an error.
    """
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(path))
        connection.sendall(b"".join(commands))
        replies = bytearray()
        while replies.count(b"\r\n") < len(commands):
            replies += connection.recv(1 << 20)
        if replies.startswith(b"-") or b"\n-" in replies:
            raise RuntimeError(bytes(replies[:200]).decode())


def read_pipelined(path: Path, commands: list[bytes]) -> int:
    """
    Send C{commands} (each an C{HMGET}) at once on a fresh connection to
    the unix socket C{path}, and read their replies.

    @return: How many non-nil fields they answered.
    """
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(path))
        connection.sendall(b"".join(commands))
        replies = bytearray()
        answered = 0
        while answered < len(commands):
            replies += connection.recv(1 << 20)
            # Every reply starts a line with "*" (its fields are "$"
            # lines and their values, which never start with "*").
            answered = replies.count(b"\r\n*") + replies.startswith(b"*")
        return replies.count(b"\r\n$") + replies.startswith(b"$") - replies.count(b"$-1\r\n")


async def refresh_ceiling(reactor: IBenchReactor, directory: Path) -> dict[str, float]:
    """
    The ceiling of L{refresh}: the keys it writes for 100,000 new tasks,
    written from Python with plain commands, encoded by hand and pipelined
    2,000 tasks at a time on a bare socket (one C{HSET} per task, the sets
    and indexes in one command each per batch), with none of its checks;
    then the URL and state of each read back the same way, as a refresh
    finding them present reads them.
    """
    store = await redis_store(reactor, directory)
    try:
        prefix = store.prefix
        socket_path = embedded_socket(store)
        started = time.perf_counter()
        requests = requests_for("http://oasis.invalid/oasisapi", REFRESH_REPORTS, REFRESH_DAYS)
        now = repr(time.time())
        for first in range(0, len(requests), 2000):
            batch = requests[first : first + 2000]
            ids = [task_id(r.filename) for r in batch]
            commands = [command("SADD", prefix + "ids", *ids)]
            by_report: dict[str, list[object]] = {}
            for request, identifier in zip(batch, ids):
                window_start = request.window_start.timestamp()
                commands.append(
                    command(
                        "HSET",
                        f"{prefix}t:{identifier}",
                        *("id", identifier, "url", request.url, "filename", request.filename),
                        *("report", request.report, "window_start", repr(window_start)),
                        *("window_end", repr(request.window_end.timestamp()), "state", "pending"),
                        *("attempts", 0, "not_before", 0, "last_error", "", "bytes", 0, "sha256", ""),
                        *("created", now, "modified", now, "owner", ""),
                    )
                )
                by_report.setdefault(request.report, []).extend((repr(-window_start), identifier))
            everything = [item for scored in by_report.values() for item in scored]
            commands.append(command("ZADD", prefix + "ready", *everything))
            commands.append(command("ZADD", prefix + "s:pending", *everything))
            for report, scored in by_report.items():
                commands.append(command("ZADD", f"{prefix}s:pending:{report}", *scored))
                commands.append(command("HINCRBY", f"{prefix}c:{report}", "pending", len(scored) // 2))
            commands.append(command("SADD", prefix + "reports", *by_report))
            pipelined(socket_path, commands)
        timings = {"new_seconds": time.perf_counter() - started}
        # Finding them present: the URL of each, read back the same way.
        started = time.perf_counter()
        requests = requests_for("http://oasis.invalid/oasisapi", REFRESH_REPORTS, REFRESH_DAYS)
        for first in range(0, len(requests), 2000):
            ids = [task_id(r.filename) for r in requests[first : first + 2000]]
            reading = [command("HMGET", f"{prefix}t:{identifier}", "url", "state") for identifier in ids]
            found = read_pipelined(socket_path, reading)
            if found != 2 * len(ids):
                raise RuntimeError(f"read {found} fields of {len(ids)} tasks")
        timings["present_seconds"] = time.perf_counter() - started
        return timings
    finally:
        await store.stopService()


@contextlib.contextmanager
def daemon_collector() -> Iterator[None]:
    """
    Run the garbage collector as C{twistd harbour} does
    (L{tune_collector}) until the block ends, then as before, so that the
    peers run as their users would run them.
    """
    before = gc.get_threshold()
    tune_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def run_downloads(
    reactor: IBenchReactor,
    directory: Path,
    base_url: str,
    requests: list[ReportURL],
    settings: DownloadTopic,
) -> tuple[float, DownloadService, int]:
    """
    Create C{requests} as tasks and download them all, with the garbage
    collector run as the daemon runs it.

    @return: (seconds from the first claim to the last file, the service,
        the retries on the way).
    @raise ShortRun: if a task ends other than downloaded.
    """
    store = await redis_store(reactor, directory / "redis-data")
    bus = Bus()
    tasks = RedisTaskStore(store, reactor, store.prefix)
    await tasks.create(requests)
    service = DownloadService(
        reactor,
        tasks,
        OasisClient(reactor, RedisLimiter(store, reactor, store.prefix)),
        bus,
        directory / "harbour",
        settings,
        WorkTopic(),
        poll_interval=0.5,
        configured=True,
    )
    downloads = Downloads(len(requests))
    await bus.subscribe("task.*", downloads)
    try:
        with daemon_collector():
            started = time.perf_counter()
            service.startService()
            await downloads.finished
            elapsed = time.perf_counter() - started
    finally:
        await service.stopService()
        await store.stopService()
    return elapsed, service, downloads.retries


async def politeness(
    reactor: IBenchReactor, directory: Path, interval: float = 0.2, latency: float = 0.1, count: int = 40
) -> dict[str, float]:
    """
    Under a rule of one request start per C{interval}, with C{latency} per
    answer: harbour's request starts per allowed slot, and the same for a
    sequential client that sleeps C{interval} after each answer.
    """
    simulator = OasisSimulator(
        reactor,
        min_interval=interval * 0.95,
        faults=Faults(latency=latency),
        last_day=datetime.date(2030, 1, 1),
        first_day=datetime.date(2000, 1, 1),
    )
    # Twisted names listenTCP's factory ServerFactory[_ProtoWithFactory], a
    # type variable held invariant, which no Site matches.
    port = reactor.listenTCP(0, simulator.site(), interface="127.0.0.1")  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port_number(port)}/oasisapi"
    requests = requests_for(base, 1, count)

    def slot_use(records: list[list[Any]]) -> tuple[float, int]:
        starts = [r[0] for r in records if r[3] != "throttled"]
        allowed = 1 + (starts[-1] - starts[0]) / interval
        return len(starts) / allowed, sum(1 for r in records if r[3] == "throttled")

    settings = DownloadTopic(min_request_interval=interval, concurrency=4)
    await run_downloads(reactor, directory, base, requests, settings)
    harbour, throttled = slot_use(simulator.requests)
    del simulator.requests[:]
    for request in requests:
        answer = await treq.get(request.url)
        await treq.content(answer)
        await deferLater(reactor, interval, lambda: None)
    sequential, ignored = slot_use(simulator.requests)
    await maybeDeferred(port.stopListening)
    return {"harbour_slot_use": harbour, "sequential_slot_use": sequential, "harbour_throttled": throttled}


async def treq_loop(
    reactor: IBenchReactor, requests: list[ReportURL], directory: Path, concurrency: int
) -> float:
    """
    The ceiling: C{concurrency} plain treq loops writing each answer to a
    file, with no task store, verification or sync.

    @return: Seconds to fetch every request.
    """
    directory.mkdir(parents=True)
    pending = iter(enumerate(requests))

    async def loop() -> None:
        for number, request in pending:
            response = await treq.get(request.url, unbuffered=True)
            with open(directory / f"{number}.zip", "wb") as file:
                # treq names the collector Callable[[bytes], None], though it
                # ignores what the collector returns (a file's write, its
                # count).
                await treq.collect(response, file.write)  # type: ignore[arg-type]

    started = time.perf_counter()
    await gatherResults([ensureDeferred(loop()) for i in range(concurrency)])
    return time.perf_counter() - started


def timed_peer(name: str, argv: list[str]) -> dict[str, float | str]:
    """
    Run a peer's command to its end, timed.

    @return: C{{NAME_seconds: its time}} if it exited 0, else
        C{{NAME_failed: why}}: its exit code and the first line it wrote
        on its standard error, so that one failing peer leaves out its own
        figure, not the others'.
    """
    started = time.perf_counter()
    ended = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    elapsed = time.perf_counter() - started
    if ended.returncode == 0:
        return {f"{name}_seconds": elapsed}
    said = ended.stderr.strip().splitlines()
    return {f"{name}_failed": f"exit {ended.returncode}" + (f", {said[0][:100]}" if said else "")}


async def files(
    reactor: IBenchReactor, directory: Path, count: int, size: int, concurrency: int
) -> dict[str, float | str]:
    """
    Download C{count} files of C{size} bytes from a local file server with
    harbour, then from the same URL list with a plain treq loop (the
    ceiling; also timed until a C{sync} has made its files durable, as
    harbour's are when it reports them), C{wget -i} and aria2c (C{-j16
    -x1}).

    Each starts on a file system with nothing left to write: harbour's
    commits sync the whole file system, which must not include the bytes
    an earlier contestant left to the kernel (they leave them; harbour
    makes its own durable).  Nothing is deleted in between (see
    L{benchmarks.run.medians}).
    """
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fileserver", "--size", str(size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None, "started with stdout=PIPE"
        base = server.stdout.readline().split()[-1].rstrip("/") + "/oasisapi"
        requests = requests_for(base, 1, count)
        settings = DownloadTopic(min_request_interval=0, concurrency=concurrency, max_bytes=2 * size + 10**6)
        os.sync()
        harbour, service, retries = await run_downloads(reactor, directory, base, requests, settings)
        harbour_files = len(list((directory / "harbour").rglob("*.zip")))
        result: dict[str, float | str] = {
            "harbour_seconds": harbour,
            "harbour_peak_rss_mb": peak_rss_mb(),
            "harbour_files": harbour_files,
            "harbour_retries": retries,
        }
        expect("files harbour downloaded", harbour_files, count)
        os.sync()
        treq_seconds = await treq_loop(reactor, requests, directory / "treq", concurrency)
        result["treq_seconds"] = treq_seconds
        # The same loop with its files made durable, as harbour's are.
        started = time.perf_counter()
        os.sync()
        result["treq_synced_seconds"] = treq_seconds + time.perf_counter() - started
        wget = shutil.which("wget")
        if wget:
            listing = directory / "wget-urls.txt"
            listing.write_text("".join(f"{r.url}\n" for r in requests))
            os.sync()
            result.update(timed_peer("wget", [wget, "-q", "-i", str(listing), "-P", str(directory / "wget")]))
        aria2c = shutil.which("aria2c")
        if aria2c:
            listing = directory / "urls.txt"
            listing.write_text("".join(f"{r.url}\n  out={r.filename}\n" for r in requests))
            os.sync()
            result.update(
                timed_peer(
                    "aria2c",
                    [
                        aria2c,
                        "-i",
                        str(listing),
                        "-j16",
                        "-x1",
                        "-d",
                        str(directory / "aria2c"),
                        "--quiet",
                        "--allow-overwrite=true",
                        "--auto-file-renaming=false",
                    ],
                )
            )
        # Each peer's ratio to harbour in this run: the medians of these
        # pair figures measured a minute apart, where a ratio of medians
        # could pair harbour's figure of one run with a peer's of another.
        for peer in ("treq", "treq_synced", "wget", "aria2c"):
            seconds = result.get(f"{peer}_seconds")
            if isinstance(seconds, float):
                result[f"{peer}_ratio"] = seconds / harbour
        return result
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("benchmark", choices=["refresh", "ceiling", "politeness", "files"])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--directory",
        type=Path,
        default=None,
        help="work in this (empty) directory and leave what is made there for the caller to remove",
    )
    arguments = parser.parse_args()

    async def run(reactor: IBenchReactor) -> None:
        directory = arguments.directory or Path(tempfile.mkdtemp(prefix="hb-bench-"))
        result: Mapping[str, float | str]
        try:
            if arguments.benchmark == "refresh":
                result = await refresh(reactor, directory)
            elif arguments.benchmark == "ceiling":
                result = await refresh_ceiling(reactor, directory)
            elif arguments.benchmark == "politeness":
                result = await politeness(reactor, directory)
            else:
                result = await files(
                    reactor, directory, arguments.count, arguments.size, arguments.concurrency
                )
        finally:
            if arguments.directory is None:
                shutil.rmtree(directory, ignore_errors=True)
        print(json.dumps(result), flush=True)

    react(lambda reactor: ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
