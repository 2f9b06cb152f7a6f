"""
Tests for L{harbour.store.migrate}: keys written before hash tags are moved
under the tagged prefix, on a real redis-server.
"""

from __future__ import annotations

from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from harbour.store.connection import StoreService
from harbour.store.migrate import MARKER, KeyMigration, glob_escape
from harbour.store.politeness import RedisLimiter
from harbour.store.tasks import DOWNLOADED, PENDING, RedisTaskStore
from harbour.store.test.test_tasks import request
from harbour.test.helpers import private_redis, short_directory

#: The prefixes of the private store: before hash tags, and now.
LEGACY, TAGGED = "t:", "{t}:"


class MigrationTests(TestCase):
    """
    L{KeyMigration} moves a store written by an older version.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A private redis-server holding an old store: tasks in several
        states, a politeness slot, the publications follower's keys, and a
        key harbour never wrote.
        """
        self.redis = await private_redis(self)
        await self.redis.execute("DEL", TAGGED + MARKER)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        old = RedisTaskStore(self.redis, self.clock, LEGACY)
        await old.create([request("a", d) for d in range(1, 5)] + [request("b", 1)])
        task = await old.claim("w", 60)
        assert task is not None
        await old.finish(task.id, "w", DOWNLOADED, 10, "ab", token=task.claim)
        self.claimed = await old.claim("w", 60)
        await RedisLimiter(self.redis, self.clock, LEGACY).reserve("oasis", 1.0)
        await self.redis.execute("HSET", LEGACY + "pub", "source", "x")
        await self.redis.execute("SET", LEGACY + "unrelated", "kept")
        self.before = sorted(await self.redis.execute("KEYS", LEGACY + "*"))

    async def tagged_store(self) -> RedisTaskStore:
        """
        @return: The store under the tagged prefix, checked to hold the old
            one's tasks whole.
        """
        store = RedisTaskStore(self.redis, self.clock, TAGGED)
        self.assertEqual(
            await store.counts(), {"a": {PENDING: 2, DOWNLOADED: 1, "downloading": 1}, "b": {PENDING: 1}}
        )
        assert self.claimed is not None
        self.assertTrue(
            await store.finish(self.claimed.id, "w", DOWNLOADED, 1, "h", token=self.claimed.claim)
        )
        return store

    async def test_moved(self) -> None:
        """
        Every key harbour wrote is moved under the tagged prefix (a
        politeness slot keeps its expiry); other keys are left alone; the
        store works on; a second run moves nothing.
        """
        moved = await KeyMigration(self.redis, LEGACY, TAGGED).run()
        self.assertEqual(moved, len(self.before) - 1)
        self.assertEqual(await self.redis.execute("KEYS", LEGACY + "*"), [LEGACY + "unrelated"])
        self.assertGreater(int(await self.redis.execute("PTTL", TAGGED + "slot:oasis")), 0)
        self.assertEqual(await self.redis.execute("HGET", TAGGED + "pub", "source"), "x")
        await self.tagged_store()
        self.assertEqual(await KeyMigration(self.redis, LEGACY, TAGGED).run(), 0)

    async def test_otherHarbourUntouched(self) -> None:
        """
        The keys of older harbours sharing the Redis whose prefixes begin
        with this one's (C{t:s}, and C{t:slot}, whose C{ids} looks like a
        politeness slot by its name) are left where they are, whole.
        """
        for prefix in ("t:s:", "t:slot:"):
            other = RedisTaskStore(self.redis, self.clock, prefix)
            await other.create([request("x", 1), request("x", 2)])
            task = await other.claim("w", 60)
            assert task is not None
            await other.finish(task.id, "w", DOWNLOADED, 10, "ab", token=task.claim)
            await RedisLimiter(self.redis, self.clock, prefix).reserve("oasis", 1.0)
            await self.redis.execute("HSET", prefix + "pub", "source", "y")
        others = sorted(set(await self.redis.execute("KEYS", LEGACY + "*")) - set(self.before))
        self.assertGreater(len(others), 20)
        moved = await KeyMigration(self.redis, LEGACY, TAGGED).run()
        self.assertEqual(moved, len(self.before) - 1)
        self.assertEqual(
            sorted(await self.redis.execute("KEYS", LEGACY + "*")), sorted(others + [LEGACY + "unrelated"])
        )
        await self.tagged_store()

    async def test_sameNameOtherType(self) -> None:
        """
        A key of a name harbour wrote but of another type (another
        program's) is not moved.
        """
        await self.redis.execute("SET", LEGACY + "slot:elsewhere", "x", "PX", 60_000)
        await self.redis.execute("SADD", LEGACY + "slot:shared", "x")
        await KeyMigration(self.redis, LEGACY, TAGGED).run()
        self.assertEqual(
            sorted(await self.redis.execute("KEYS", LEGACY + "*")),
            [LEGACY + "slot:shared", LEGACY + "unrelated"],
        )

    async def test_together(self) -> None:
        """
        Two processes moving at once (in small batches) move each key
        once, between them.
        """
        from harbour.store import migrate

        self.patch(migrate, "BATCH", 3)
        counts = await gatherResults(
            [KeyMigration(self.redis, LEGACY, TAGGED).run(), KeyMigration(self.redis, LEGACY, TAGGED).run()]
        )
        self.assertEqual(sum(counts), len(self.before) - 1)
        await self.tagged_store()

    async def test_interrupted(self) -> None:
        """
        A move that stopped halfway (some keys renamed, no mark) is ended
        by the next; a key whose new name was taken meanwhile is left under
        its old name, not overwritten.
        """
        for key in self.before[:3]:
            await self.redis.execute("RENAME", key, TAGGED + key[len(LEGACY) :])
        await self.redis.execute("SET", TAGGED + "unrelated", "new")
        await self.redis.execute("RENAME", LEGACY + "unrelated", LEGACY + "slot:elsewhere")
        await self.redis.execute("SET", TAGGED + "slot:elsewhere", "taken")
        moved = await KeyMigration(self.redis, LEGACY, TAGGED).run()
        self.assertEqual(moved, len(self.before) - 4)
        self.assertEqual(await self.redis.execute("KEYS", LEGACY + "*"), [LEGACY + "slot:elsewhere"])
        self.assertEqual(await self.redis.execute("GET", TAGGED + "slot:elsewhere"), "taken")
        await self.tagged_store()

    async def test_storeStartMoves(self) -> None:
        """
        A store service started with C{--prefix t} on a Redis holding the
        old keys moves them before it is ready.
        """
        from twisted.internet import reactor

        service = StoreService.from_config(reactor, self.redis.address, short_directory(self), "t")
        service.startService()
        self.addCleanup(service.stopService)
        await service.when_ready()
        self.assertEqual((service.prefix, service.legacy_prefix), (TAGGED, LEGACY))
        self.assertEqual(await self.redis.execute("KEYS", LEGACY + "*"), [LEGACY + "unrelated"])
        self.assertEqual(await self.redis.execute("GET", TAGGED + MARKER), "1")
        await self.tagged_store()

    def test_globEscape(self) -> None:
        """
        A prefix's glob characters match only themselves.
        """
        self.assertEqual(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\")
