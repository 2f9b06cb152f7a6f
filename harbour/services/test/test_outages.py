"""
Tests for L{harbour.services.download} riding out Redis outages: a real
redis-server answers C{BUSY}, C{OOM} or C{READONLY} while the download
service mirrors the OASIS simulator, and the mirror completes with nothing
lost.  C{LOADING} comes from C{DEBUG RELOAD} of a store with enough ballast
to take a moment to load.  Each fault lasts until the store has met it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, cast

import txredisapi
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from harbour.interfaces import IEvent
from harbour.services.test.test_download import LMP, Harness
from harbour.store.connection import StoreService
from harbour.store.tasks import DOWNLOADED, RedisTaskStore
from harbour.test.helpers import private_redis

#: A script that keeps Redis busy for ARGV[1] milliseconds, unless killed
#: first (C{SCRIPT KILL}, which Redis still answers meanwhile).
BUSY = """
local function ms() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local start = ms()
while ms() - start < tonumber(ARGV[1]) do end
return 1
"""
#: How long, at most, a fault is held for the store to meet it, in seconds:
#: far longer than that takes (the mirror sends commands every few
#: hundredths of a second), and shorter than the test's timeout.
WAIT = 30.0

#: How long, in seconds, Redis must go without a failure for the store's
#: outage to be over, in these tests.
QUIET = 0.2

#: Keys of ballast, and the bytes of each, for C{LOADING}: Redis serves
#: other clients (with C{LOADING}) only every 2 MB of the file it loads, so
#: the file must be several times that; 10,000 keys of 1,000 bytes, with
#: C{rdbcompression} off, make a 10 MB file, served about every 2,000 keys.
BALLAST_KEYS = 10_000
BALLAST_BYTES = 1_000
#: How long each load lasts, in seconds, stretched by C{key-load-delay}
#: whatever the machine's speed; and how many loads at most, one after
#: another, until the store has met C{LOADING}.
LOAD = 0.5
RELOADS = 20

#: A fault: given the store, a connection of the test's own to its Redis,
#: and a L{Deferred} that fires once the store has met the fault, it begins
#: an outage, holds it until then, and ends it.
Fault = Callable[[StoreService, Any, "Deferred[None]"], Coroutine[Any, Any, None]]


class OutageTests(TestCase):
    """
    The mirror completes through each kind of outage.
    """

    timeout = 120

    async def connect(self, redis: StoreService) -> Any:
        """
        @return: A connection of the test's own to the server of C{redis},
            closed at the test's end.
        """
        assert redis.address is not None and redis.address.path is not None
        connection: Any = await txredisapi.UnixConnection(redis.address.path, reconnect=False)
        self.addCleanup(connection.disconnect)
        return connection

    def met(self, redis: StoreService, reply: str) -> Deferred[None]:
        """
        @return: A L{Deferred} that fires once C{redis} logs the beginning
            of an outage, having recorded an error that names C{reply}; it
            fails if that has not happened within L{WAIT} seconds.
        """
        met: Deferred[None] = Deferred()

        def observe(event: LogEvent) -> None:
            # Once met, or given up on, the timer is no longer active.
            if not give_up.active() or event.get("log_source") is not redis:
                return
            if redis.outages >= 1 and reply in redis.last_error:
                give_up.cancel()
                # Not from within the store's own call.
                redis.reactor.callLater(0, met.callback, None)

        def too_late() -> None:
            met.errback(
                self.failureException(
                    f"the store met no {reply} in {WAIT} s (last error: {redis.last_error!r})"
                )
            )

        give_up = redis.reactor.callLater(WAIT, too_late)
        observer = cast(ILogObserver, observe)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

        def stop() -> None:
            if give_up.active():
                give_up.cancel()

        self.addCleanup(stop)
        return met

    async def mirror_through(self, fault: Fault, reply: str) -> None:
        """
        Mirror the simulator through a Redis-backed store; on the first
        download recorded, run C{fault}, holding its outage until the store
        has met an error that names C{reply}; check that every task was
        downloaded, that no temporary file is left, and that the store saw
        the outage, and its end.
        """
        redis = await private_redis(self)
        # An outage is over once nothing has failed for this long: short,
        # for its end to come soon after the fault's.
        redis._outages.quiet = QUIET
        side = await self.connect(redis)
        # Two politeness slots: the mirror is still going when the fault comes.
        harness = Harness(self, concurrency=3, min_request_interval=0.1)
        # The harness's store is the memory one unless a test swaps it.
        harness.store = RedisTaskStore(redis, harness.reactor, redis.prefix)  # type: ignore[assignment]
        harness.service.store = harness.store
        faulted: list[Deferred[None]] = []

        def first_done(event: IEvent) -> None:
            if not faulted:
                faulted.append(ensureDeferred(fault(redis, side, self.met(redis, reply))))

        await harness.bus.subscribe("task.done", first_done)
        tasks = await harness.run(LMP, start="2025-01-01", end="2025-01-15")
        await faulted[0]
        self.assertEqual(len(tasks), 15)
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        self.assertEqual(len(harness.files()), 15)
        self.assertEqual(list(harness.data.rglob(".*.part-*")), [])
        self.assertGreaterEqual(redis.outages, 1)
        self.assertIn(reply, redis.last_error)
        # The mirror may be done within the quiet time after the fault.
        for ignored in range(int(WAIT / QUIET)):
            await redis.execute("PING")
            if redis.status()["outage_since"] is None:
                break
            await deferLater(redis.reactor, QUIET)
        self.assertEqual(redis.status()["outage_since"], None)

    async def test_busy(self) -> None:
        """
        A script running past C{lua-time-limit} makes Redis answer C{BUSY}
        to everybody else until it ends.
        """

        async def busy(redis: StoreService, side: Any, met: Deferred[None]) -> None:
            # The script's own connection waits for its reply: SCRIPT KILL
            # goes on another.
            killer = await self.connect(redis)
            await side.execute_command("CONFIG", "SET", "lua-time-limit", "50")
            running = side.eval(BUSY, [], [str(int(2 * WAIT * 1000))])
            try:
                await met
            finally:
                await killer.execute_command("SCRIPT", "KILL")
            killed = await self.assertFailure(running, txredisapi.ResponseError)
            self.assertIn("SCRIPT KILL", str(killed))

        await self.mirror_through(busy, "BUSY")

    async def test_outOfMemory(self) -> None:
        """
        Past C{maxmemory}, Redis answers C{OOM} to every write.
        """

        async def oom(redis: StoreService, side: Any, met: Deferred[None]) -> None:
            await side.execute_command("CONFIG", "SET", "maxmemory", "1")
            try:
                await met
            finally:
                await side.execute_command("CONFIG", "SET", "maxmemory", "0")

        await self.mirror_through(oom, "OOM")

    async def test_readOnly(self) -> None:
        """
        A replica (as a master becomes after a failover) answers
        C{READONLY} to every write until it is a master again.
        """

        async def readonly(redis: StoreService, side: Any, met: Deferred[None]) -> None:
            # Port 1: a master that never answers, so nothing is replaced.
            await side.execute_command("REPLICAOF", "127.0.0.1", "1")
            try:
                await met
            finally:
                await side.execute_command("REPLICAOF", "NO", "ONE")

        await self.mirror_through(readonly, "READONLY")

    async def test_loading(self) -> None:
        """
        While Redis loads its dataset (at startup, after a restart, or on a
        replica after a full resynchronization), it answers C{LOADING} to
        almost everything.
        """

        async def loading(redis: StoreService, side: Any, met: Deferred[None]) -> None:
            # Ballast beside the store's keys (under t:), uncompressed so
            # that the file is long enough to be served from while loading.
            await side.execute_command("DEBUG", "POPULATE", str(BALLAST_KEYS), "ballast:", str(BALLAST_BYTES))
            await side.execute_command("CONFIG", "SET", "rdbcompression", "no")
            # key-load-delay (microseconds a key) stretches each load to
            # about LOAD.  A load cannot be held open, so it is done again
            # until the store has met it.
            delay = int(LOAD * 1_000_000 / BALLAST_KEYS)
            await side.execute_command("CONFIG", "SET", "key-load-delay", str(delay))
            try:
                for ignored in range(RELOADS):
                    # Saves the dataset, empties it, loads it again: nothing
                    # is lost, and the command returns once the load is done.
                    await side.execute_command("DEBUG", "RELOAD")
                    if met.called:
                        break
                else:
                    self.fail(f"the store met no LOADING in {RELOADS} loads")
            finally:
                await side.execute_command("CONFIG", "SET", "key-load-delay", "0")
            await met

        await self.mirror_through(loading, "LOADING")

    async def test_noScript(self) -> None:
        """
        After C{SCRIPT FLUSH} (as after a restart or failover), scripts are
        loaded again: no outage at all.
        """

        redis = await private_redis(self)
        store = RedisTaskStore(redis, redis.reactor, redis.prefix)
        self.assertEqual(await store.sweep(), 0)
        await redis.execute("SCRIPT", "FLUSH")
        self.assertEqual(await store.sweep(), 0)
        self.assertEqual(redis.outages, 0)
