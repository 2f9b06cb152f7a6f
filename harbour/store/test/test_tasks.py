"""
Tests for L{harbour.store.tasks}: one behaviour suite for every L{ITaskStore},
run against the in-memory store and against Redis (a real redis-server).
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from harbour.interfaces import ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import (
    DOWNLOADED,
    DOWNLOADING,
    EMPTY,
    FAILED,
    PENDING,
    RedisTaskStore,
    Task,
    task_id,
)
from harbour.test.helpers import private_redis

UTC = datetime.UTC


def request(report: str, day: int, hour: int = 0) -> ReportURL:
    """
    A request of C{report} for 2025-01-C{day}.
    """
    start = datetime.datetime(2025, 1, day, 8 + hour, tzinfo=UTC)
    return ReportURL(
        f"http://oasis/{report}?day={day}&hour={hour}",
        f"{report}/2025-01-{day:02d}.zip",
        report,
        start,
        start + datetime.timedelta(days=1),
    )


if TYPE_CHECKING:
    _MixinBase = TestCase
else:
    _MixinBase = object


class TaskStoreBehaviourMixin(_MixinBase):
    """
    What every L{ITaskStore} does.  Subclasses set C{self.store} and
    C{self.clock} (a L{Clock} the store reads its time from).
    """

    store: ITaskStore
    clock: Clock

    async def _task(self, pending: Awaitable[Task | None]) -> Task:
        """
        Await C{pending}, a task the test expects the store to have: fail
        the test if there is none.
        """
        task = await pending
        if task is None:
            self.fail("the store has no such task")
        return task

    async def test_interface(self) -> None:
        """
        The store provides L{ITaskStore}.
        """
        verifyObject(ITaskStore, self.store)

    async def test_createIdempotent(self) -> None:
        """
        Creating the same requests twice creates each task once; counts
        follow.
        """
        requests = [request("a", d) for d in range(1, 6)] + [request("b", 1)]
        self.assertEqual(await self.store.create(requests), {"a": 5, "b": 1})
        self.assertEqual(await self.store.create(requests + [request("b", 2)]), {"b": 1})
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 5}, "b": {PENDING: 2}})
        task = await self._task(self.store.get(task_id(requests[0].filename)))
        self.assertEqual((task.state, task.filename, task.attempts), (PENDING, "a/2025-01-01.zip", 0))

    async def _downloaded(self, original: ReportURL) -> Task:
        """
        Create C{original}'s task and download it.
        """
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", DOWNLOADED, 10, "old")
        return task

    async def test_resizedWindowFetchedAgain(self) -> None:
        """
        A request whose window grew under the same file name is the same
        task with the new URL, fetched again; its file is replaced, not
        kept (no hash to keep, no revision).
        """
        original = request("a", 1)
        task = await self._downloaded(original)
        grown = ReportURL(
            original.url.replace("day=1", "day=1&enddatetime=2"),
            original.filename,
            "a",
            original.window_start,
            original.window_end + datetime.timedelta(days=1),
        )
        self.assertEqual(await self.store.create([grown]), {})
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.url, again.sha256, again.revision, again.window_end),
            (PENDING, grown.url, "", 0, grown.window_end.timestamp()),
        )
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, task.id)

    async def test_changedDefinitionKeepsRevision(self) -> None:
        """
        A request whose definition changed (another parameter) is fetched
        again with its revision raised, so the old file is kept.
        """
        original = request("a", 1)
        task = await self._downloaded(original)
        changed = ReportURL(
            original.url + "&grp_type=ALL", original.filename, "a", original.window_start, original.window_end
        )
        await self.store.create([changed])
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.url, again.sha256, again.revision), (PENDING, changed.url, "old", 1)
        )

    async def test_changedWhileDownloading(self) -> None:
        """
        A request that changes while its task is being downloaded is
        fetched again once that download finishes.
        """
        original = request("a", 1)
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        changed = ReportURL(
            original.url + "&x=1", original.filename, "a", original.window_start, original.window_end
        )
        await self.store.create([changed])
        self.assertEqual((await self._task(self.store.get(task.id))).state, DOWNLOADING)
        self.assertTrue(await self.store.finish(task.id, "w", DOWNLOADED, 10, "old"))
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.url, again.revision, again.stale), (PENDING, changed.url, 1, ""))
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})

    async def test_pendingTakesNewURL(self) -> None:
        """
        A pending task simply takes its request's new URL.
        """
        original = request("a", 1)
        await self.store.create([original])
        changed = ReportURL(
            original.url + "&x=1", original.filename, "a", original.window_start, original.window_end
        )
        await self.store.create([changed])
        claimed = await self._task(self.store.claim("w", 60))
        self.assertEqual((claimed.url, claimed.attempts), (changed.url, 1))

    async def test_retiredNeverClaimed(self) -> None:
        """
        Retired tasks are never claimed and are counted as retired; one
        being downloaded is left to finish, and retired then.
        """
        requests = [request("a", d) for d in range(1, 4)]
        await self.store.create(requests)
        claimed = await self._task(self.store.claim("w", 60))
        ids = await self.store.ids()
        self.assertEqual(ids, {task_id(r.filename) for r in requests})
        self.assertEqual(await self.store.retire(ids), 2)
        self.assertIsNone(await self.store.claim("w", 60))
        self.assertEqual(await self.store.counts(), {"a": {"retired": 2, DOWNLOADING: 1}})
        self.assertTrue(await self.store.finish(claimed.id, "w", DOWNLOADED, 1, "h"))
        self.assertEqual(await self.store.counts(), {"a": {"retired": 3}})
        self.assertEqual(await self.store.retire(ids), 0)

    async def test_retiredComeBack(self) -> None:
        """
        Creating a retired task's request again brings it back to the state
        it was retired from: a downloaded one keeps its file, without a
        request; a pending one is pending, with no attempt used.
        """
        original = request("a", 1)
        task = await self._downloaded(original)
        await self.store.create([request("a", 2)])
        await self.store.retire({task.id, task_id(request("a", 2).filename)})
        self.assertEqual(await self.store.create([original, request("a", 2)]), {"a": 2})
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.sha256), (DOWNLOADED, "old"))
        waiting = await self._task(self.store.get(task_id(request("a", 2).filename)))
        self.assertEqual((waiting.state, waiting.attempts), (PENDING, 0))
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1, PENDING: 1}})

    async def test_askedAgainMidDownload(self) -> None:
        """
        A task retired while being downloaded and asked for again before
        that ends is not retired when it ends.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        await self.store.retire({task.id})
        await self.store.create([request("a", 1)])
        self.assertTrue(await self.store.finish(task.id, "w", DOWNLOADED, 1, "h"))
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}})

    async def test_retiredMidDownload(self) -> None:
        """
        A task retired while being downloaded is retired as soon as its
        attempt ends, released or swept: it is never claimed again.
        """
        await self.store.create([request("a", 1), request("a", 2)])
        first = await self._task(self.store.claim("w", 60))
        second = await self._task(self.store.claim("w", 60))
        await self.store.retire({first.id, second.id})
        self.assertTrue(await self.store.release(first.id, "w", 0.0, "stopped"))
        self.clock.advance(61)
        self.assertEqual(await self.store.sweep(), 1)
        self.assertIsNone(await self.store.claim("w", 60))
        self.assertEqual(await self.store.counts(), {"a": {"retired": 2}})

    async def test_purgeAfterRetention(self) -> None:
        """
        Retired tasks are forgotten once retired before the given time,
        with their report's counts when nothing is left of it.
        """
        await self.store.create([request("a", 1), request("b", 1)])
        await self.store.retire({task_id(request("a", 1).filename)})
        self.assertEqual(await self.store.purge(self.clock.seconds() - 1), 0)
        self.clock.advance(10)
        self.assertEqual(await self.store.purge(self.clock.seconds()), 1)
        self.assertEqual(await self.store.counts(), {"b": {PENDING: 1}})
        self.assertEqual(await self.store.ids(), {task_id(request("b", 1).filename)})
        self.assertIsNone(await self.store.get(task_id(request("a", 1).filename)))

    async def test_claimNewestFirst(self) -> None:
        """
        Claims take the newest trading day first, count an attempt, and
        return nothing once all are taken.
        """
        await self.store.create([request("a", d) for d in (3, 1, 2)])
        claimed = [await self._task(self.store.claim("w", 60)) for i in range(3)]
        self.assertEqual(
            [t.filename for t in claimed], ["a/2025-01-03.zip", "a/2025-01-02.zip", "a/2025-01-01.zip"]
        )
        self.assertEqual({(t.state, t.attempts, t.owner) for t in claimed}, {(DOWNLOADING, 1, "w")})
        self.assertIsNone(await self.store.claim("w", 60))
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADING: 3}})

    async def test_concurrentClaimsNeverShared(self) -> None:
        """
        Many claims at once never hand one task to two owners.
        """
        await self.store.create([request("a", d) for d in range(1, 21)])
        claimed = await gatherResults([self.store.claim(f"w{i}", 60) for i in range(30)])
        ids = [t.id for t in claimed if t is not None]
        self.assertEqual(len(ids), 20)
        self.assertEqual(len(set(ids)), 20)

    async def test_finish(self) -> None:
        """
        Finishing records the outcome; a stranger cannot finish another's
        claim.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertFalse(await self.store.finish(task.id, "other", DOWNLOADED))
        self.assertTrue(await self.store.finish(task.id, "w", DOWNLOADED, bytes=10, sha256="ab"))
        done = await self._task(self.store.get(task.id))
        self.assertEqual((done.state, done.bytes, done.sha256, done.owner), (DOWNLOADED, 10, "ab", ""))
        self.assertFalse(await self.store.finish(task.id, "w", FAILED))
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}})

    async def test_releaseWithBackoff(self) -> None:
        """
        A released task is not claimed again before its C{not_before}.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.release(task.id, "w", self.clock.seconds() + 30, "HTTP 503"))
        self.assertIsNone(await self.store.claim("w", 60))
        self.clock.advance(31)
        again = await self._task(self.store.claim("w", 60))
        self.assertEqual((again.id, again.attempts, again.last_error), (task.id, 2, "HTTP 503"))

    async def test_leaseExpirySwept(self) -> None:
        """
        A claim not renewed is swept back to pending once its lease
        expires; a renewed one is not; the old owner can no longer finish.
        """
        await self.store.create([request("a", 1), request("a", 2)])
        lost = await self._task(self.store.claim("dead", 10))
        kept = await self._task(self.store.claim("alive", 10))
        self.clock.advance(8)
        self.assertTrue(await self.store.renew(kept.id, "alive", 10))
        self.assertFalse(await self.store.renew(kept.id, "dead", 10))
        self.clock.advance(3)
        self.assertEqual(await self.store.sweep(), 1)
        swept = await self._task(self.store.get(lost.id))
        self.assertEqual((swept.state, swept.last_error), (PENDING, "lease expired"))
        self.assertFalse(await self.store.finish(lost.id, "dead", DOWNLOADED))
        self.assertEqual((await self._task(self.store.claim("new", 10))).id, lost.id)
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADING: 2}})

    async def test_listing(self) -> None:
        """
        Tasks page by state and report, newest first, with a total.
        """
        await self.store.create([request("a", d) for d in range(1, 6)] + [request("b", 9)])
        page, total = await self.store.tasks(PENDING, "a", 1, 2)
        self.assertEqual(([t.filename for t in page], total), (["a/2025-01-04.zip", "a/2025-01-03.zip"], 5))
        page, total = await self.store.tasks(PENDING, None, 0, 1)
        self.assertEqual(([t.report for t in page], total), (["b"], 6))
        self.assertEqual(await self.store.tasks(FAILED, None, 0, 10), ([], 0))

    async def test_retry(self) -> None:
        """
        Failed tasks of one report go back to pending with no attempts.
        """
        await self.store.create([request("a", 1), request("b", 1)])
        for ignored in range(2):
            task = await self._task(self.store.claim("w", 60))
            await self.store.finish(task.id, "w", FAILED, error="1005")
        self.assertEqual(await self.store.retry(FAILED, "a"), 1)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}, "b": {FAILED: 1}})
        revived = await self._task(self.store.claim("w", 60))
        self.assertEqual((revived.report, revived.attempts, revived.last_error), ("a", 1, ""))
        self.assertEqual(await self.store.retry(FAILED, None), 1)

    async def test_badState(self) -> None:
        """
        Unknown states are refused with a message listing the known ones.
        """
        with self.assertRaises(ValueError):
            await self.store.tasks("done", None, 0, 1)
        with self.assertRaises(ValueError):
            await self.store.retry(PENDING, None)
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        with self.assertRaises(ValueError):
            await self.store.finish(task.id, "w", PENDING)

    async def test_emptyState(self) -> None:
        """
        C{empty} is a final state that can be retried.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", EMPTY, error="1000")
        self.assertEqual(await self.store.retry(EMPTY, None), 1)

    async def _finished(self, state: str, day: int = 1) -> Task:
        await self.store.create([request("a", day)])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", state, bytes=10, sha256="old")
        return task

    async def test_reviseDownloaded(self) -> None:
        """
        A revision newer than the fetch puts a downloaded task back to
        pending with its revision raised and its old hash kept (the
        download compares it); it is counted per report and claimed again.
        """
        task = await self._finished(DOWNLOADED)
        self.clock.advance(10)
        changed = await self.store.revise([(task.id, self.clock.seconds() - 1, "2"), ("unknown", 0.0, "2")])
        self.assertEqual(changed, [{"id": task.id, "report": "a", "previous": DOWNLOADED, "revision": 1}])
        revised = await self._task(self.store.get(task.id))
        self.assertEqual(
            (revised.state, revised.revision, revised.sha256, revised.attempts), (PENDING, 1, "old", 0)
        )
        self.assertIn("revised", revised.last_error)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})
        self.assertEqual(await self.store.revision_counts(), {"a": 1})
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, task.id)

    async def test_reviseOlderThanFetchIgnored(self) -> None:
        """
        A revision from before the fetch changes nothing: the file already
        holds it.  Reading the same entry twice is harmless.
        """
        task = await self._finished(DOWNLOADED)
        self.assertEqual(await self.store.revise([(task.id, self.clock.seconds() - 5, "2")]), [])
        self.assertEqual((await self._task(self.store.get(task.id))).state, DOWNLOADED)
        self.assertEqual(await self.store.revision_counts(), {})

    async def test_reviseEmpty(self) -> None:
        """
        A day published after OASIS answered "no data" for it is fetched
        again; that is not counted as a revision.
        """
        task = await self._finished(EMPTY)
        self.clock.advance(10)
        changed = await self.store.revise([(task.id, self.clock.seconds(), "1")])
        self.assertEqual(changed, [{"id": task.id, "report": "a", "previous": EMPTY, "revision": 0}])
        self.assertEqual((await self._task(self.store.get(task.id))).state, PENDING)
        self.assertEqual(await self.store.revision_counts(), {})

    async def test_reviseMidDownload(self) -> None:
        """
        A revision that meets a task mid-download is applied by a later
        call once the download is recorded, since that answer may predate
        it.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.clock.advance(5)
        self.assertEqual(await self.store.revise([(task.id, self.clock.seconds(), "2")]), [])
        await self.store.finish(task.id, "w", DOWNLOADED, bytes=10, sha256="old")
        changed = await self.store.revise([])
        self.assertEqual([c["id"] for c in changed], [task.id])
        self.assertEqual(await self.store.revise([]), [], "applied once")

    async def test_claimTokens(self) -> None:
        """
        Every claim of a task has a fencing token one more than the one
        before, even when a release gives its attempt back.
        """
        await self.store.create([request("a", 1)])
        first = await self._task(self.store.claim("w", 60))
        await self.store.release(first.id, "w", 0.0, "no data yet", counted=False, token=first.claim)
        second = await self._task(self.store.claim("w", 60))
        self.assertEqual((first.claim, second.claim), (1, 2))
        self.assertEqual((first.attempts, second.attempts), (1, 1))
        self.assertEqual((await self._task(self.store.get(first.id))).claim, 2)

    async def test_staleTokenRefused(self) -> None:
        """
        Once a lease has expired and a sibling worker of the same process
        (the same owner) has claimed the task again, the first claim's
        token is refused by renew, finish and release; the live claim's is
        not.
        """
        await self.store.create([request("a", 1)])
        stale = await self._task(self.store.claim("w", 5))
        self.clock.advance(6)
        self.assertEqual(await self.store.sweep(), 1)
        live = await self._task(self.store.claim("w", 60))
        self.assertEqual(live.id, stale.id)
        self.assertFalse(await self.store.renew(stale.id, "w", 60, token=stale.claim))
        self.assertFalse(await self.store.finish(stale.id, "w", DOWNLOADED, 1, "x", token=stale.claim))
        self.assertFalse(await self.store.release(stale.id, "w", 0.0, "late", token=stale.claim))
        task = await self._task(self.store.get(live.id))
        self.assertEqual((task.state, task.claim), (DOWNLOADING, live.claim))
        self.assertTrue(await self.store.renew(live.id, "w", 60, token=live.claim))
        self.assertTrue(await self.store.finish(live.id, "w", DOWNLOADED, 1, "y", token=live.claim))
        self.assertEqual((await self._task(self.store.get(live.id))).sha256, "y")

    async def test_retryLargeBacklog(self) -> None:
        """
        Retrying more failed tasks than one script moves (it works in
        batches) puts every one back.
        """
        from harbour.store import tasks

        self.patch(tasks, "BATCH", 3)
        await self.store.create([request("a", d) for d in range(1, 8)])
        while (task := await self.store.claim("w", 60)) is not None:
            await self.store.finish(task.id, "w", FAILED, error="1000", token=task.claim)
        self.assertEqual(await self.store.retry(FAILED, "a"), 7)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 7}})


class MemoryTaskStoreTests(TaskStoreBehaviourMixin, TestCase):
    """
    The behaviour suite against L{MemoryTaskStore}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = MemoryTaskStore(self.clock)


class RedisTaskStoreTests(TaskStoreBehaviourMixin, TestCase):
    """
    The behaviour suite against L{RedisTaskStore} on a private redis-server.
    """

    # trial waits for the coroutine a setUp returns.
    async def setUp(self) -> None:  # type: ignore[override]
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        redis = await private_redis(self)
        self.store = RedisTaskStore(redis, self.clock, redis.prefix)
