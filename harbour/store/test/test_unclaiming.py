"""
Tests for L{harbour.store.unclaiming}: claims whose answers were lost come
back at once, on a real redis-server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from harbour.errors import StoreUnavailable
from harbour.interfaces import IRedis
from harbour.store import unclaiming
from harbour.store.connection import StoreService
from harbour.store.parse_queue import CLAIM_PARSE
from harbour.store.tasks import CLAIM_MANY, DOWNLOADED, DOWNLOADING, PENDING, RedisTaskStore, task_id
from harbour.store.test.test_tasks import request
from harbour.test.helpers import private_redis


@implementer(IRedis)
class LosingRedis:
    """
    A store's connection to Redis that loses replies to scripts on demand.

    @ivar lose: The scripts whose next reply is lost after Redis ran them.
    @ivar hold: The scripts whose next call is held, not sent, and fails
        as a lost reply does; L{held} keeps them to be sent later.
    @ivar scripts: Every script run, in turn.
    """

    def __init__(self, redis: StoreService) -> None:
        self.redis = redis
        self.prefix = redis.prefix
        self.lose: set[str] = set()
        self.hold: set[str] = set()
        self.held: list[tuple[str, Sequence[str], Sequence[object]]] = []
        self.scripts: list[str] = []

    def execute(self, *args: object) -> Deferred[Any]:
        """
        Send a command.
        """
        return self.redis.execute(*args)

    def eval(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        Run C{script}, unless its reply is to be lost or its call held.
        """
        self.scripts.append(script)
        if script in self.hold:
            self.hold.discard(script)
            self.held.append((script, keys, args))
            return fail(StoreUnavailable("timed out"))
        ran = self.redis.eval(script, keys, args)
        if script in self.lose:
            self.lose.discard(script)

            def lost(reply: object) -> Deferred[Any]:
                return fail(StoreUnavailable("connection lost"))

            ran.addCallback(lost)
        return ran


class LostClaimTests(TestCase):
    """
    A claim whose answer was lost after Redis ran it gives its tasks back
    at the next claim of its kind and owner, their attempts not counted,
    rather than leaving them held by nobody until their leases run out.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A store on a private redis-server, through a L{LosingRedis}, holding
        four tasks.
        """
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        redis = await private_redis(self)
        self.redis = LosingRedis(redis)
        self.store = RedisTaskStore(self.redis, self.clock, redis.prefix)
        await self.store.create([request("a", day) for day in range(1, 5)])

    async def states(self) -> dict[int, tuple[str, str, int]]:
        """
        @return: Each day's task's state, owner and attempts.
        """
        found = {}
        for day in range(1, 5):
            task = await self.store.get(task_id(request("a", day).filename))
            assert task is not None
            found[day] = (task.state, task.owner, task.attempts)
        return found

    async def test_downloadClaimGivenBack(self) -> None:
        """
        The tasks of a lost C{claim_many} are pending again, their attempts
        not counted, once the owner claims again; a claim of the same owner
        whose answer came (a sibling worker's) is left alone.
        """
        sibling = await self.store.claim("w", 60)
        assert sibling is not None
        self.redis.lose.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 2)
        # Each held once, one attempt each: the sibling's, then those claimed
        # again (the lost claim's given back).
        held = {
            4: (DOWNLOADING, "w", 1),
            3: (DOWNLOADING, "w", 1),
            2: (DOWNLOADING, "w", 1),
            1: (PENDING, "", 0),
        }
        self.assertEqual(await self.states(), held)
        again = await self.store.claim_many("w", 60, 2)
        self.assertEqual([t.filename for t in again], [request("a", day).filename for day in (3, 2)])
        self.assertEqual([t.attempts for t in again], [1, 1])
        self.assertEqual(await self.states(), held)
        self.assertEqual(self.redis.scripts.count(unclaiming.UNCLAIM), 1)
        await self.store.claim_many("w", 60, 1)
        # Found: not looked for again.
        self.assertEqual(self.redis.scripts.count(unclaiming.UNCLAIM), 1)

    async def test_otherOwnerNotGivenBack(self) -> None:
        """
        Another owner's lost claim is not given back by this owner's next
        claim.
        """
        self.redis.lose.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("other", 60, 1)
        claimed = await self.store.claim_many("w", 60, 4)
        self.assertEqual(len(claimed), 3)
        self.assertEqual((await self.states())[4], (DOWNLOADING, "other", 1))

    async def test_runLate(self) -> None:
        """
        A lost call that Redis runs only after the owner's next claim (sent
        on a connection that dropped) is given back by a later claim: its
        nonce is remembered until found.
        """
        self.redis.hold.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 1)
        first = await self.store.claim_many("w", 60, 1)
        self.assertEqual([t.filename for t in first], [request("a", 4).filename])
        [(script, keys, args)] = self.redis.held
        await self.redis.redis.eval(script, keys, args)
        self.assertEqual((await self.states())[3], (DOWNLOADING, "w", 1))
        second = await self.store.claim_many("w", 60, 1)
        self.assertEqual([t.filename for t in second], [request("a", 3).filename])
        self.assertEqual(second[0].attempts, 1)

    async def test_forgottenWithItsLease(self) -> None:
        """
        A lost call is forgotten once its lease would have run out (its
        tasks come back by the sweep then): later claims look no more.
        """
        self.redis.hold.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 1)
        self.clock.advance(60)
        await self.store.claim_many("w", 60, 1)
        self.assertNotIn(unclaiming.UNCLAIM, self.redis.scripts)

    async def test_failedUnclaimRemembered(self) -> None:
        """
        If giving back fails (the store is still away), the claim fails as
        well, and the lost call is looked for again at the next.
        """
        self.redis.lose.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 1)
        self.redis.hold.add(unclaiming.UNCLAIM)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 1)
        again = await self.store.claim_many("w", 60, 1)
        self.assertEqual([(t.filename, t.attempts) for t in again], [(request("a", 4).filename, 1)])

    async def test_parseClaimGivenBack(self) -> None:
        """
        The file of a lost C{claim_parse} is queued again at once, not cut
        off when its parse lease runs out.
        """
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        self.redis.lose.add(CLAIM_PARSE)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_parse("p", 60)
        held = await self.store.get(task.id)
        assert held is not None
        self.assertEqual((held.parse, held.parse_owner), ("parsing", "p"))
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.assertEqual(job.id, task.id)
        ended = await self.store.finish_parse(job.id, "p", job.token, 10, "")
        self.assertTrue(ended)

    async def test_parseClaimOfOtherKindUntouched(self) -> None:
        """
        A lost download claim is not looked for by a parse claim: the kinds
        keep apart.
        """
        self.redis.lose.add(CLAIM_MANY)
        with self.assertRaises(StoreUnavailable):
            await self.store.claim_many("w", 60, 1)
        self.assertIsNone(await self.store.claim_parse("w", 60))
        self.assertNotIn(unclaiming.UNCLAIM, self.redis.scripts)
        self.assertEqual((await self.states())[4], (DOWNLOADING, "w", 1))
