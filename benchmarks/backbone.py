"""
Benchmarks of the runtime backbone, against a real C{twistd harbour}:

- config save to C{Event}: the time from the close of a saved file to the
  event's arrival at a subscriber in another process (p50 and p99);
- bus fan-out: events per second delivered to each of 4 remote subscriber
  processes, published in-process (as harbour's services publish) and,
  separately, by a remote publisher keeping 500 commands in flight;
- its peer: Redis pub/sub fanning the same events out to 4 subscriber
  processes, published from Python 500 at a time.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults, succeed
from twisted.internet.task import cooperate

from benchmarks import embedded_socket
from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, RemoteBus, connect
from harbour.amp.server import ControlService, read_token
from harbour.bus import Bus
from harbour.service import DaemonControls
from harbour.store.connection import StoreService
from tests.processes import WatchedProcess, control_endpoint, spawn, start_harbour

if TYPE_CHECKING:
    from benchmarks import IBenchReactor
    from harbour.interfaces import IEvent

T = TypeVar("T")

#: Makes a connection to the daemon's control port, authenticated.
ClientFactory = Callable[[], Deferred[HarbourClientProtocol]]


def percentile(values: list[float], fraction: float) -> float:
    """
    @return: The value below which C{fraction} of C{values} lie.
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def with_daemon(
    reactor: IBenchReactor, directory: Path, body: Callable[[ClientFactory], Awaitable[T]]
) -> T:
    """
    Run C{body(client_factory)} against a fresh daemon, then stop it.
    """
    (directory / "config").mkdir(parents=True, exist_ok=True)
    (directory / "config" / "work.toml").write_text("[work]\nmax_attempts = 1\n")
    daemon = start_harbour(reactor, directory)
    try:
        await daemon.wait_for("store ready")
        await daemon.wait_for("control port listening")
        token = read_token(directory / "data" / "amp.token")
        return await body(lambda: connect(reactor, control_endpoint(directory), token))
    finally:
        daemon.signal("TERM")
        await daemon.ended


async def config_latency(reactor: IBenchReactor, directory: Path, saves: int = 200) -> dict[str, float]:
    """
    Save C{work.toml} C{saves} times, each after the previous event
    arrived, timing close-to-event.
    """

    async def body(client_factory: ClientFactory) -> list[float]:
        client = await client_factory()
        waiting: list[tuple[int, Deferred[float]]] = []

        def received(event: IEvent) -> None:
            if waiting and event.payload["max_attempts"] == waiting[0][0]:
                waiting.pop(0)[1].callback(time.perf_counter())

        await RemoteBus(client).subscribe("work", received)
        latencies = []
        path = directory / "config" / "work.toml"
        for n in range(2, saves + 2):
            arrived: Deferred[float] = Deferred()
            waiting.append((n, arrived))
            with open(path, "w") as f:
                f.write(f"[work]\nmax_attempts = {n}\n")
            closed = time.perf_counter()
            latencies.append(await arrived - closed)
        if client.transport is not None:
            client.transport.loseConnection()
        return latencies

    latencies = await with_daemon(reactor, directory, body)
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def spawn_subscribers(
    reactor: IBenchReactor, endpoint: str, token: str, events: int, count: int
) -> list[WatchedProcess]:
    """
    Start C{count} subscriber processes and wait until each is subscribed.
    """
    watchers = [
        spawn(
            reactor,
            [sys.executable, "-m", "benchmarks.subscriber", endpoint, token, "bench", str(events)],
            Path.cwd(),
        )
        for i in range(count)
    ]
    await gatherResults([w.wait_for("ready") for w in watchers])
    return watchers


async def last_arrival(watchers: list[WatchedProcess]) -> float:
    """
    @return: When the last subscriber received its last event (epoch seconds).
    """
    lasts = await gatherResults([w.wait_for("last ") for w in watchers])
    await gatherResults([w.ended for w in watchers])
    return max(float(line.split()[-1]) for line in lasts)


PAYLOAD = {"id": "0123456789abcdef", "report": "lmp", "bytes": 12345}


async def fan_out_in_process(
    reactor: IBenchReactor, directory: Path, events: int = 50_000, subscribers: int = 4
) -> dict[str, float]:
    """
    The daemon's own services publish (as they publish C{task.done}); the
    bus and control port fan each event out to C{subscribers} remote
    subscriber processes.  Publishing yields to the reactor every 500
    events, as events arising from network activity do.
    """
    bus = Bus()
    control = ControlService(
        reactor,
        f"unix:{directory / 'amp.sock'}",
        "bench-token",
        bus,
        daemon=DaemonControls(lambda: succeed({})),
    )
    control.privilegedStartService()
    control.startService()
    try:
        watchers = await spawn_subscribers(
            reactor, control_endpoint(directory), "bench-token", events, subscribers
        )
        start = time.time()

        def chunks() -> Iterator[None]:
            published = 0
            while published < events:
                # Publish only as fast as the subscribers read: a faster
                # publisher would (rightly) get them dropped for overflow.
                if control.backlog() < 2_000:
                    for ignored in range(min(500, events - published)):
                        bus.publish("bench", PAYLOAD)
                    published += 500
                yield None

        await cooperate(chunks()).whenDone()
        return {"events_per_second": events / (await last_arrival(watchers) - start)}
    finally:
        await control.stopService()


async def fan_out(
    reactor: IBenchReactor, directory: Path, events: int = 20_000, subscribers: int = 4
) -> dict[str, float]:
    """
    Publish C{events} events through the daemon to C{subscribers} remote
    subscribers, each in its own process; the rate counts until the last
    of them has received the last event.
    """

    async def body(client_factory: ClientFactory) -> float:
        token = read_token(directory / "data" / "amp.token")
        watchers = await spawn_subscribers(reactor, control_endpoint(directory), token, events, subscribers)
        publisher = await client_factory()
        window = DeferredSemaphore(500)
        payload = json.dumps(PAYLOAD)
        start = time.time()
        await gatherResults(
            [
                window.run(publisher.callRemote, commands.Publish, topic="bench", payload=payload)
                for i in range(events)
            ]
        )
        if publisher.transport is not None:
            publisher.transport.loseConnection()
        return events / (await last_arrival(watchers) - start)

    rate = await with_daemon(reactor, directory, body)
    return {"events_per_second": rate}


async def redis_fan_out(
    reactor: IBenchReactor, directory: Path, events: int = 50_000, subscribers: int = 4
) -> dict[str, float]:
    """
    The peer of L{fan_out_in_process}: the same events, JSON-encoded, sent
    with C{PUBLISH} to a private redis-server 500 at a time (each 500
    waiting for the replies of the last, as harbour's publisher waits for
    its subscribers' backlog), and fanned out by it to C{subscribers}
    subscriber processes that decode each one.
    """
    store = StoreService.from_config(reactor, None, directory, "bench")
    store.startService()
    await store.when_ready()
    try:
        socket = embedded_socket(store)
        watchers = [
            spawn(
                reactor,
                [
                    sys.executable,
                    "-m",
                    "benchmarks.redis_subscriber",
                    str(socket),
                    "bench",
                    str(events),
                ],
                Path.cwd(),
            )
            for i in range(subscribers)
        ]
        await gatherResults([w.wait_for("ready") for w in watchers])
        payload = json.dumps(PAYLOAD)
        start = time.time()
        for first in range(0, events, 500):
            await gatherResults(
                [store.execute("PUBLISH", "bench", payload) for i in range(min(500, events - first))]
            )
        return {"events_per_second": events / (await last_arrival(watchers) - start)}
    finally:
        await store.stopService()
