"""
Tests for L{harbour.services.download} riding out Redis outages: a real
redis-server answers C{BUSY}, C{OOM} or C{READONLY} while the download
service mirrors the OASIS simulator, and the mirror completes with nothing
lost.  C{LOADING} comes from C{DEBUG RELOAD} of a store with enough ballast
to take a moment to load.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.interfaces import IEvent
from harbour.services.test.test_download import LMP, Harness
from harbour.store.connection import StoreService
from harbour.store.tasks import DOWNLOADED, RedisTaskStore
from harbour.test.helpers import private_redis

#: A script that keeps Redis busy for ARGV[1] milliseconds.
BUSY = """
local function ms() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local start = ms()
while ms() - start < tonumber(ARGV[1]) do end
return 1
"""
#: How long each outage lasts, in seconds: shorter than the lease, longer
#: than several claims and renewals.
OUTAGE = 1.0

#: Keys of ballast, and the bytes of each, for C{LOADING}: Redis serves
#: other clients (with C{LOADING}) only every 2 MB of the file it loads, so
#: the file must be several times that; 10,000 keys of 1,000 bytes, with
#: C{rdbcompression} off, make a 10 MB file, served about every 2,000 keys.
BALLAST_KEYS = 10_000
BALLAST_BYTES = 1_000


class OutageTests(TestCase):
    """
    The mirror completes through each kind of outage.
    """

    timeout = 120

    async def mirror_through(
        self, fault: Callable[[StoreService, Any], Coroutine[Any, Any, None]], reply: str
    ) -> None:
        """
        Mirror the simulator through a Redis-backed store; on the first
        download recorded, run C{fault} (which begins an outage and ends
        it); check that every task was downloaded, that no temporary file
        is left, and that the store saw an outage whose error names
        C{reply}.
        """
        redis = await private_redis(self)
        assert redis.address is not None and redis.address.path is not None
        side: Any = await txredisapi.UnixConnection(redis.address.path, reconnect=False)
        self.addCleanup(side.disconnect)
        # Two politeness slots: the mirror is still going when the fault comes.
        harness = Harness(self, concurrency=3, min_request_interval=0.1)
        # The harness's store is the memory one unless a test swaps it.
        harness.store = RedisTaskStore(redis, harness.reactor, redis.prefix)  # type: ignore[assignment]
        harness.service.store = harness.store
        faulted: list[Deferred[None]] = []

        def first_done(event: IEvent) -> None:
            if not faulted:
                faulted.append(ensureDeferred(fault(redis, side)))

        await harness.bus.subscribe("task.done", first_done)
        tasks = await harness.run(LMP, start="2025-01-01", end="2025-01-15")
        await faulted[0]
        self.assertEqual(len(tasks), 15)
        self.assertEqual({t.state for t in tasks}, {DOWNLOADED})
        self.assertEqual(len(harness.files()), 15)
        self.assertEqual(list(harness.data.rglob(".*.part-*")), [])
        self.assertGreaterEqual(redis.outages, 1)
        self.assertIn(reply, redis.last_error)
        self.assertEqual(redis.status()["outage_since"], None)

    async def test_busy(self) -> None:
        """
        A script running past C{lua-time-limit} makes Redis answer C{BUSY}
        to everybody else until it ends.
        """

        async def busy(redis: StoreService, side: Any) -> None:
            await side.execute_command("CONFIG", "SET", "lua-time-limit", "50")
            await side.eval(BUSY, [], [str(int(OUTAGE * 1000))])

        await self.mirror_through(busy, "BUSY")

    async def test_outOfMemory(self) -> None:
        """
        Past C{maxmemory}, Redis answers C{OOM} to every write.
        """

        async def oom(redis: StoreService, side: Any) -> None:
            self.addCleanup(side.execute_command, "CONFIG", "SET", "maxmemory", "0")
            await side.execute_command("CONFIG", "SET", "maxmemory", "1")
            await deferLater(redis.reactor, OUTAGE, lambda: None)
            await side.execute_command("CONFIG", "SET", "maxmemory", "0")

        await self.mirror_through(oom, "OOM")

    async def test_readOnly(self) -> None:
        """
        A replica (as a master becomes after a failover) answers
        C{READONLY} to every write until it is a master again.
        """

        async def readonly(redis: StoreService, side: Any) -> None:
            self.addCleanup(side.execute_command, "REPLICAOF", "NO", "ONE")
            # Port 1: a master that never answers, so nothing is replaced.
            await side.execute_command("REPLICAOF", "127.0.0.1", "1")
            await deferLater(redis.reactor, OUTAGE, lambda: None)
            await side.execute_command("REPLICAOF", "NO", "ONE")

        await self.mirror_through(readonly, "READONLY")

    async def test_loading(self) -> None:
        """
        While Redis loads its dataset (at startup, after a restart, or on a
        replica after a full resynchronization), it answers C{LOADING} to
        almost everything.
        """

        async def loading(redis: StoreService, side: Any) -> None:
            # Ballast beside the store's keys (under t:), uncompressed so
            # that the file is long enough to be served from while loading.
            await side.execute_command("DEBUG", "POPULATE", str(BALLAST_KEYS), "ballast:", str(BALLAST_BYTES))
            await side.execute_command("CONFIG", "SET", "rdbcompression", "no")
            # key-load-delay (microseconds a key) stretches the load to about
            # OUTAGE whatever the machine's speed, so that it is observed.
            self.addCleanup(side.execute_command, "CONFIG", "SET", "key-load-delay", "0")
            delay = int(OUTAGE * 1_000_000 / BALLAST_KEYS)
            await side.execute_command("CONFIG", "SET", "key-load-delay", str(delay))
            # Saves the dataset, empties it, loads it again: nothing is lost,
            # and the command returns once the load is done.
            await side.execute_command("DEBUG", "RELOAD")
            await side.execute_command("CONFIG", "SET", "key-load-delay", "0")

        await self.mirror_through(loading, "LOADING")

    async def test_noScript(self) -> None:
        """
        After C{SCRIPT FLUSH} (as after a restart or failover), scripts are
        loaded again: no outage at all.
        """

        async def flush(redis: StoreService, side: Any) -> None:
            await side.execute_command("SCRIPT", "FLUSH")

        redis = await private_redis(self)
        store = RedisTaskStore(redis, redis.reactor, redis.prefix)
        self.assertEqual(await store.sweep(), 0)
        await redis.execute("SCRIPT", "FLUSH")
        self.assertEqual(await store.sweep(), 0)
        self.assertEqual(redis.outages, 0)
