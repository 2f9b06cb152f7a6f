"""
Tests for L{harbour.store.tasks}: one behaviour suite for every L{ITaskStore},
run against the in-memory store and against Redis (a real redis-server).
"""

from __future__ import annotations

import datetime
import gc
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import attr
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from harbour.errors import StoreUnavailable
from harbour.interfaces import IRedis, ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.memory import MemoryTaskStore
from harbour.store.parse_queue import CUT_OFF_ERROR, CUT_OFF_MOST
from harbour.store.scripts import answers
from harbour.store.tasks import (
    DOWNLOADED,
    DOWNLOADING,
    EMPTY,
    FAILED,
    PARSED,
    PARSING,
    PENDING,
    QUEUED,
    RETIRED,
    UNPARSABLE,
    Outcome,
    ParseJob,
    RedisTaskStore,
    RetiredTables,
    Retirement,
    Task,
    completion,
    redefinition,
    task_id,
)
from harbour.test.helpers import private_redis

UTC = datetime.UTC
DAY = datetime.timedelta(days=1)


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


def _timed_day(day: int, hour: int = 0) -> ReportURL:
    """
    A request of report C{a} for 2025-01-C{day}, its window starting
    C{hour} hours after 08:00 and named by its bounds (as OASIS's are), so
    that another C{hour} resizes it.
    """
    start = datetime.datetime(2025, 1, day, 8 + hour, tzinfo=UTC)
    end = start + DAY
    return ReportURL(
        f"http://oasis/a?q=1&startdatetime={start:%Y%m%dT%H:%M}-0000&enddatetime={end:%Y%m%dT%H:%M}-0000",
        f"a/2025-01-{day:02d}.zip",
        "a",
        start,
        end,
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

    async def _create_meanwhile(
        self, requests: list[ReportURL], meanwhile: Callable[[], Awaitable[object]]
    ) -> dict[str, int]:
        """
        Create C{requests} while C{meanwhile} (another client's call) runs
        at the worst moment: once the store has read the tasks asked for,
        before it has written any.  Subclasses say when that is.

        @return: What the create returned.
        """
        raise NotImplementedError()

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

    async def test_numbersNotFiniteRefused(self) -> None:
        """
        A lease or delay that is not a finite number (a C{Retry-After: inf}
        taken literally, say) is refused with L{StoreRefused} and changes
        nothing: the claim is still held, its lease still runs.
        """
        from harbour.errors import StoreRefused

        await self.store.create([request("a", 1), request("a", 2)])
        with self.assertRaises(StoreRefused):
            await self.store.claim("w", float("nan"))
        with self.assertRaises(StoreRefused):
            await self.store.claim_many("w", float("inf"), 2)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 2}})
        task = await self._task(self.store.claim("w", 60))
        for refused in [
            self.store.release(task.id, "w", float("inf"), "503", token=task.claim),
            self.store.renew(task.id, "w", float("nan"), token=task.claim),
        ]:
            with self.assertRaises(StoreRefused):
                await refused
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1, DOWNLOADING: 1}})
        self.clock.advance(61)
        self.assertEqual(await self.store.sweep(), 1)

    async def test_claimNoneChecksLease(self) -> None:
        """
        A claim of no tasks claims nothing, and still refuses a lease that
        is not a finite number.
        """
        from harbour.errors import StoreRefused

        await self.store.create([request("a", 1)])
        self.assertEqual(await self.store.claim_many("w", 60, 0), [])
        with self.assertRaises(StoreRefused):
            await self.store.claim_many("w", float("nan"), 0)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})

    async def test_emptyPage(self) -> None:
        """
        A page of no tasks holds none, and tells how many there are.
        """
        await self.store.create([request("a", day) for day in (1, 2, 3)])
        self.assertEqual(await self.store.tasks(PENDING, None, 0, 0), ([], 3))
        self.assertEqual(await self.store.tasks(PENDING, "a", 1, 0), ([], 3))

    async def test_badStateFailsTheDeferred(self) -> None:
        """
        A state a call does not take fails its L{Deferred} with
        L{ValueError}, rather than raising as it is called.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        calls: list[Callable[[], Deferred[Any]]] = [
            lambda: self.store.finish(task.id, "w", PENDING, token=task.claim),
            lambda: self.store.tasks("lost", None, 0, 10),
            lambda: self.store.retry(PENDING, None),
        ]
        for call in calls:
            answer = call()
            with self.assertRaises(ValueError):
                await answer

    async def _downloaded(self, original: ReportURL, storage: str = "") -> Task:
        """
        Create C{original}'s task and download it, into C{storage}.
        """
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", DOWNLOADED, 10, "old", storage=storage)
        return task

    async def test_sameFileTwiceLastWins(self) -> None:
        """
        Of requests given together that name one file, only the last
        counts: a new task takes its URL, counted once; a downloaded task
        whose last request is the one it has is left as it is, not fetched
        again for the earlier one.
        """
        first, last = request("a", 1, hour=0), request("a", 1, hour=1)
        self.assertEqual(first.filename, last.filename)
        self.assertEqual(await self.store.create([first, last]), {"a": 1})
        task = await self._task(self.store.get(task_id(first.filename)))
        self.assertEqual((task.url, task.window_start), (last.url, last.window_start.timestamp()))
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})
        claimed = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(claimed.id, "w", DOWNLOADED, 10, "h", token=claimed.claim))
        self.assertEqual(await self.store.create([first, last]), {})
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.url, again.revision), (DOWNLOADED, last.url, 0))

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

    def _block(self, first: int, last: int = 31, report: str = "a") -> ReportURL:
        """
        A request of C{report} for the days C{first} to C{last} of
        January 2025, under the file name of its block (as a window cut by
        a relative start is).
        """
        start = datetime.datetime(2025, 1, first, 8, tzinfo=UTC)
        end = datetime.datetime(2025, 1, last, 8, tzinfo=UTC) + datetime.timedelta(days=1)
        return ReportURL(
            f"http://oasis/{report}?startdatetime={start:%Y%m%dT%H:%M-0000}&enddatetime={end:%Y%m%dT%H:%M-0000}",
            f"{report}/2025-01-01_2025-01-31.zip",
            report,
            start,
            end,
        )

    async def test_trimmedWindowKept(self) -> None:
        """
        A downloaded (or empty) window whose request is now the same window
        cut at its start (a relative start has passed its first day) keeps
        its file, its request and its window: the file holds every day the
        new request asks for, and fetching it again each day would spend a
        request on nothing.
        """
        for report, state in [("a", DOWNLOADED), ("b", EMPTY)]:
            original = self._block(1, report=report)
            await self.store.create([original])
            task = await self._task(self.store.claim("w", 60))
            await self.store.finish(task.id, "w", state, 10, "old")
            before = await self._task(self.store.get(task.id))
            self.assertEqual((before.state, before.url), (state, original.url))
            self.assertEqual(await self.store.create([self._block(2, report=report)]), {})
            self.assertEqual(await self.store.get(task.id), before)
        self.assertEqual(await self.store.claim("w", 60), None)

    async def test_trimmedWindowNotFinal(self) -> None:
        """
        A window cut at its start whose task has no answer yet (pending,
        or failed: OASIS may have refused the longer one) takes the
        shorter request.
        """
        original = self._block(1)
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", FAILED, error="1014: Start Date is beyond the limit")
        trimmed = self._block(2)
        await self.store.create([trimmed])
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.url), (PENDING, trimmed.url))

    async def test_widenedWindowFetchedAgain(self) -> None:
        """
        A downloaded window whose start moved earlier, or whose end moved,
        is fetched again: its file lacks days.
        """
        original = self._block(5, 30)
        task = await self._downloaded(original)
        widened = self._block(4, 30)
        await self.store.create([widened])
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.url), (PENDING, widened.url))
        await self.store.finish((await self._task(self.store.claim("w", 60))).id, "w", DOWNLOADED, 10, "new")
        cut = self._block(6, 31)
        await self.store.create([cut])
        self.assertEqual(((await self._task(self.store.get(task.id))).state), PENDING)

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

    async def test_resizedWhileDownloadingListed(self) -> None:
        """
        A window resized while it is being downloaded is listed among the
        downloading tasks by its new window (newest first), for the whole
        store and for its report.
        """
        await self.store.create([self._block(5, 10), request("a", 20)])
        claimed = [await self._task(self.store.claim("w", 60)) for ignored in range(2)]
        self.assertEqual([t.filename for t in claimed], ["a/2025-01-20.zip", "a/2025-01-01_2025-01-31.zip"])
        await self.store.create([self._block(25, 31)])
        for report in (None, "a"):
            listed, total = await self.store.tasks(DOWNLOADING, report, 0, 10)
            self.assertEqual(
                ([t.filename for t in listed], total),
                (["a/2025-01-01_2025-01-31.zip", "a/2025-01-20.zip"], 2),
            )

    def _day_group(self, day: int, end: bool) -> ReportURL:
        """
        A day group's request for 2025-01-C{day}, with or without the
        C{enddatetime} that OASIS ignores for it.
        """
        start = datetime.datetime(2025, 1, day, 8, tzinfo=UTC)
        times = f"startdatetime={start:%Y%m%dT%H:%M}-0000"
        if end:
            times += f"&enddatetime={start + datetime.timedelta(days=1):%Y%m%dT%H:%M}-0000"
        return ReportURL(
            f"http://oasis/GroupZip?groupid=DAM_LMP_GRP&{times}&version=1",
            f"g/2025-01-{day:02d}.zip",
            "g",
            start,
            start + datetime.timedelta(days=1),
        )

    async def test_restatedKeepsAnswer(self) -> None:
        """
        A request that only drops its C{enddatetime} (a day group's, asked
        as the spec asks) takes the new URL and keeps its answer, in any
        state: nothing is fetched again, a download under way is not made
        stale, a failed task stays failed.
        """
        downloaded = await self._downloaded(self._day_group(15, end=True))
        await self.store.create([self._day_group(16, end=True), self._day_group(17, end=True)])
        downloading = await self._task(self.store.claim("w", 60))
        failed = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(failed.id, "w", FAILED, error="no", token=failed.claim))
        restated = [self._day_group(day, end=False) for day in (15, 16, 17)]
        await self.store.create(restated)
        found = [await self._task(self.store.get(task.id)) for task in (downloaded, downloading, failed)]
        urls = {request.filename: request.url for request in restated}
        self.assertEqual([task.url for task in found], [urls[task.filename] for task in found])
        self.assertEqual(
            [(task.state, task.sha256, task.revision, task.stale) for task in found],
            [(DOWNLOADED, "old", 0, ""), (DOWNLOADING, "", 0, ""), (FAILED, "", 0, "")],
        )
        self.assertTrue(
            await self.store.finish(downloading.id, "w", DOWNLOADED, 5, "new", token=downloading.claim)
        )
        self.assertEqual(await self.store.counts(), {"g": {DOWNLOADED: 2, FAILED: 1}})

    async def test_dayGroupAskedFromAnotherStartFetchedAgain(self) -> None:
        """
        A day group's request by C{startdatetime} alone whose start moved
        (its day was a UTC one, and is now the trading day of that date)
        asks for another day, not the same one cut at its start: its
        downloaded or empty answer is fetched again, under the new URL.
        """

        def day_group(report: str, hour: int) -> ReportURL:
            start = datetime.datetime(2025, 1, 15, hour, tzinfo=UTC)
            return ReportURL(
                f"http://oasis/GroupZip?groupid=DAM_LMP_GRP&startdatetime={start:%Y%m%dT%H:%M}-0000",
                f"{report}/2025-01-15.zip",
                report,
                start,
                start + datetime.timedelta(days=1),
            )

        states = {"a": DOWNLOADED, "b": EMPTY}
        await self.store.create([day_group(report, 0) for report in states])
        for ignored in states:
            task = await self._task(self.store.claim("w", 60))
            await self.store.finish(task.id, "w", states[task.report], 10, "old")
        pacific = [day_group(report, 8) for report in states]
        await self.store.create(pacific)
        found = [await self._task(self.store.get(task_id(request.filename))) for request in pacific]
        self.assertEqual(
            [(task.state, task.url) for task in found], [(PENDING, request.url) for request in pacific]
        )

    async def test_staleForgottenWhenGivenBack(self) -> None:
        """
        A claim given back, or whose lease ran out, after its request
        changed fetched nothing: the next claim fetches the new request,
        and once it has, the task is done (not fetched a third time, no
        revision made of the new answer).
        """
        for end_claim in ("release", "sweep"):
            with self.subTest(end_claim=end_claim):
                original = request(end_claim, 1)
                await self.store.create([original])
                first = await self._task(self.store.claim("w", 60))
                changed = ReportURL(
                    original.url + "&grp_type=ALL",
                    original.filename,
                    end_claim,
                    original.window_start,
                    original.window_end,
                )
                await self.store.create([changed])
                if end_claim == "release":
                    self.assertTrue(
                        await self.store.release(first.id, "w", 0.0, "not yet", token=first.claim)
                    )
                else:
                    self.clock.advance(61)
                    self.assertEqual(await self.store.sweep(), 1)
                second = await self._task(self.store.claim("w", 60))
                self.assertEqual((second.id, second.url, second.stale), (first.id, changed.url, ""))
                self.assertTrue(
                    await self.store.finish(second.id, "w", DOWNLOADED, 10, "new", token=second.claim)
                )
                done = await self._task(self.store.get(first.id))
                self.assertEqual((done.state, done.sha256, done.revision), (DOWNLOADED, "new", 0))

    async def test_resizedGivenBackKeepsNothing(self) -> None:
        """
        A window resized while its file was being fetched again (its
        definition changed), then given back, is fetched anew with nothing
        kept of the file in place, as a resized window's file is replaced.
        """
        downloaded = await self._downloaded(self._block(1, 10))
        changed = self._block(1, 10)
        changed = attr.evolve(changed, url=changed.url + "&x=1")
        await self.store.create([changed])
        refetching = await self._task(self.store.claim("w", 60))
        self.assertEqual((refetching.id, refetching.revision, refetching.sha256), (downloaded.id, 1, "old"))
        grown = self._block(1, 11)
        grown = attr.evolve(grown, url=grown.url + "&x=1")
        await self.store.create([grown])
        self.assertTrue(await self.store.release(refetching.id, "w", 0.0, "not yet", token=refetching.claim))
        again = await self._task(self.store.get(downloaded.id))
        self.assertEqual((again.state, again.sha256, again.stale, again.url), (PENDING, "", "", grown.url))

    async def test_shrunkWindowTablesListed(self) -> None:
        """
        A window resized to one that no longer holds every hour of its
        file (as an hourly window does whose size shrinks, keeping its
        name) lists its window, as a retirement does, if a file was
        downloaded for it: its tables hold hours that other windows now
        answer, and go until it is fetched again and parsed, whatever its
        state meanwhile; so does one whose definition changed with it.  A
        grown window keeps its tables (they hold only hours it still asks
        for), as does one that never had a file.
        """
        shrunk = await self._downloaded(self._block(1, 10, "a"))
        grown = await self._downloaded(self._block(1, 10, "b"))
        changed = await self._downloaded(self._block(1, 10, "e"))
        refetching = await self._downloaded(self._block(1, 10, "c"))
        self.clock.advance(10)
        await self.store.revise([(refetching.id, self.clock.seconds() - 1, "2")])
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, refetching.id)
        await self.store.create([self._block(1, 10, "d")])
        await self.store.create(
            [
                self._block(1, 5, "a"),
                self._block(1, 11, "b"),
                self._block(2, 10, "c"),
                self._block(1, 5, "d"),
                attr.evolve(self._block(1, 5, "e"), url=self._block(1, 5, "e").url + "&x=1"),
            ]
        )
        self.assertEqual((await self._task(self.store.get(shrunk.id))).state, PENDING)
        listed = await self.store.retired_tables(10)
        self.assertEqual(
            listed.files, (("a", shrunk.filename), ("c", refetching.filename), ("e", changed.filename))
        )
        self.assertEqual((await self._task(self.store.get(grown.id))).state, PENDING)
        self.assertEqual(listed.dropped, listed.entries)
        self.assertTrue(await self.store.finish(refetching.id, "w", DOWNLOADED, 5, "new"))
        self.assertEqual(await self.store.retired_tables(10), listed)

    async def test_shrunkWindowParsedAnewKeepsTables(self) -> None:
        """
        A shrunk window fetched and parsed again keeps the tables its new
        file wrote (they replaced the old ones); one whose tables were
        dropped while its new file was parsed is parsed again when its
        entry is forgotten.
        """
        task = await self._downloaded(self._block(1, 10))
        await self.store.create([self._block(1, 5)])
        claimed = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(claimed.id, "w", DOWNLOADED, 5, "new", token=claimed.claim))
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        while_parsed = await self.store.retired_tables(10)
        self.assertEqual(while_parsed.files, (("a", task.filename),))
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 5, ""))
        self.assertEqual((await self.store.retired_tables(10)).dropped, ())
        self.assertEqual(
            await self.store.forget_retired_tables(while_parsed.entries, while_parsed.dropped), 1
        )
        self.assertEqual((await self._task(self.store.get(task.id))).parse, QUEUED)

    async def test_shrunkWindowAskedForAgainKeepsTables(self) -> None:
        """
        A shrunk window whose request is put back (or grown further) before
        its entry is read keeps its tables: its window again holds every
        hour of the file they were parsed from, as a grown window's does,
        and dropping them would leave its hours without rows until it is
        fetched and parsed again.  One still shrunk, or resized to a window
        that holds only part of its old one, has them dropped.
        """
        tasks = {}
        for report in "abcd":
            tasks[report] = await self._downloaded(self._block(1, 10, report))
            job = await self.store.claim_parse("p", 60)
            assert job is not None
            self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 5, ""))
        await self.store.create([self._block(1, 5, report) for report in "abcd"])
        await self.store.create([self._block(1, 10, "a"), self._block(1, 8, "c"), self._block(1, 11, "d")])
        listed = await self.store.retired_tables(10)
        self.assertEqual(len(listed.entries), 4)
        self.assertEqual(listed.files, (("b", tasks["b"].filename), ("c", tasks["c"].filename)))
        self.assertEqual(await self.store.forget_retired_tables(listed.entries, listed.dropped), 4)
        self.assertEqual((await self.store.retired_tables(10)).entries, ())

    async def test_revivedCutAtStartKept(self) -> None:
        """
        A downloaded window retired, then asked for again cut at its start
        (as a relative start passes it while its report was away), comes
        back downloaded, its file kept, as it would had it never been
        retired.
        """
        task = await self._downloaded(self._block(1))
        self.assertEqual(await self.store.retire([task.id]), 1)
        self.assertEqual(await self.store.create([self._block(2)]), {"a": 1})
        again = await self._task(self.store.get(task.id))
        self.assertEqual((again.state, again.sha256, again.url), (DOWNLOADED, "old", self._block(1).url))
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}})

    async def test_purgedWhileRevivedCreatedAgain(self) -> None:
        """
        Retired tasks forgotten by a purge while a create that asks for
        them again is under way are made anew by that create, pending, and
        counted as created: none is missing until a later create.
        """
        downloaded = await self._downloaded(request("a", 1))
        await self.store.create([request("a", 2)])
        retired = [downloaded, await self._task(self.store.get(task_id(request("a", 2).filename)))]
        await self.store.retire([task.id for task in retired])
        self.clock.advance(100)
        asked = [request("a", 1), attr.evolve(request("a", 2), url=request("a", 2).url + "&x=1")]
        self.assertEqual(await self._create_meanwhile(asked, lambda: self.store.purge(50)), {"a": 2})
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 2}})
        self.assertEqual(await self.store.ids(), {task.id for task in retired})
        found = [await self._task(self.store.get(task.id)) for task in retired]
        self.assertEqual(
            [(task.state, task.url, task.attempts, task.sha256, task.retired_from) for task in found],
            [(PENDING, r.url, 0, "", "") for r in asked],
        )
        claimed = await self.store.claim_many("w", 60, 5)
        self.assertEqual({task.id for task in claimed}, {task.id for task in retired})

    async def test_revivedMeanwhileCountedOnce(self) -> None:
        """
        A retired task asked for again by two creates at once is revived
        once, and counted once: by the create that revived it.
        """
        asked = [request("a", 1)]
        await self.store.create(asked)
        await self.store.retire([task_id(asked[0].filename)])
        meanwhile: list[dict[str, int]] = []

        async def revive() -> None:
            meanwhile.append(await self.store.create(asked))

        self.assertEqual(await self._create_meanwhile(asked, revive), {})
        self.assertEqual(meanwhile, [{"a": 1}])
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})

    async def test_finishedMeanwhileCutKept(self) -> None:
        """
        A window cut at its start while its download ends is taken as the
        state it ended in: its answer, downloaded, is kept with its
        request, not fetched again for nothing.
        """
        original = self._block(1)
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))

        async def finish() -> None:
            self.assertTrue(await self.store.finish(task.id, "w", DOWNLOADED, 10, "old", token=task.claim))

        self.assertEqual(await self._create_meanwhile([self._block(2)], finish), {})
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.url, again.sha256, again.stale), (DOWNLOADED, original.url, "old", "")
        )
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}})
        self.assertIsNone(await self.store.claim("w", 60))

    async def test_retriedMeanwhileTakesCut(self) -> None:
        """
        A window cut at its start while its empty answer is put back to be
        fetched again takes the shorter request, as a pending task does.
        """
        await self.store.create([self._block(1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(task.id, "w", EMPTY, token=task.claim))
        cut = self._block(2)
        self.assertEqual(await self._create_meanwhile([cut], lambda: self.store.retry(EMPTY, None)), {})
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.url, again.window_start), (PENDING, cut.url, cut.window_start.timestamp())
        )
        claimed = await self._task(self.store.claim("w", 60))
        self.assertEqual((claimed.id, claimed.url), (task.id, cut.url))

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

    async def test_retireWithFiles(self) -> None:
        """
        Retiring tasks names those with a file downloaded before, whose
        tables are to go: downloaded ones, and ones revised back to pending
        or being downloaded again; not those never downloaded, nor those
        retired or marked already; unknown ids are ignored.
        """
        earlier = await self._downloaded(request("b", 1))
        self.assertEqual(
            await self.store.retire_with_files({earlier.id}), Retirement(1, (("b", "b/2025-01-01.zip"),))
        )
        downloaded = await self._downloaded(request("a", 1))
        revised = await self._downloaded(request("a", 2))
        again = await self._downloaded(request("a", 4))
        self.clock.advance(10)
        await self.store.revise([(t.id, self.clock.seconds() - 1, "2") for t in (revised, again)])
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, again.id)
        await self.store.create([request("a", 3), request("a", 5)])
        first = await self._task(self.store.claim("w", 60))
        self.assertEqual(first.filename, "a/2025-01-05.zip")
        ids = await self.store.ids() | {"unknown"}
        files = (("a", downloaded.filename), ("a", revised.filename), ("a", again.filename))
        self.assertEqual(await self.store.retire_with_files(ids), Retirement(3, files))
        self.assertEqual(await self.store.retire_with_files(ids), Retirement(0, ()))
        self.assertEqual(
            await self.store.counts(), {"a": {"retired": 3, DOWNLOADING: 2}, "b": {"retired": 1}}
        )

    async def test_retiredTablesListed(self) -> None:
        """
        The files L{retire_with_files} names are also listed in the store,
        oldest first, until forgotten: read again, they name the tasks
        still retired, marked to be, or forgotten since, but not one
        brought back; every entry read is given back to forget.
        """
        kept = await self._downloaded(request("a", 1))
        revived = await self._downloaded(request("a", 2))
        purged = await self._downloaded(request("c", 1))
        busy = await self._downloaded(request("b", 1))
        self.clock.advance(10)
        await self.store.revise([(busy.id, self.clock.seconds() - 1, "2")])
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, busy.id)
        await self.store.create([request("a", 3)])
        first = await self.store.retire_with_files({kept.id, revived.id, purged.id})
        second = await self.store.retire_with_files({busy.id, task_id(request("a", 3).filename)})
        self.assertEqual((first.count, second.count), (3, 1))
        listed = await self.store.retired_tables(10)
        self.assertEqual(len(listed.entries), 4)
        self.assertEqual(
            set(listed.files[:3]), {("a", kept.filename), ("a", revived.filename), ("c", purged.filename)}
        )
        self.assertEqual(listed.files[3:], (("b", busy.filename),))
        self.assertEqual(listed.dropped, listed.entries)
        self.assertEqual(
            await self.store.retired_tables(1), RetiredTables(listed.entries[:1], listed.entries[:1])
        )
        await self.store.create([request("a", 2)])
        self.clock.advance(10)
        await self.store.purge(0)
        again = await self.store.retired_tables(10)
        self.assertEqual(again.entries, listed.entries)
        self.assertEqual(set(again.files), set(listed.files) - {("a", revived.filename)})
        self.assertEqual(await self.store.forget_retired_tables(listed.entries[:3], again.dropped), 3)
        self.assertEqual(
            await self.store.retired_tables(10), RetiredTables(listed.entries[3:], listed.entries[3:])
        )
        self.assertEqual(await self.store.forget_retired_tables(listed.entries[3:]), 1)
        self.assertEqual(await self.store.retired_tables(10), RetiredTables((), ()))

    async def test_emptiedTablesListed(self) -> None:
        """
        A claim ended C{empty} where a file answered before (a revision
        fetched again, answered with no data) lists its window as a
        retirement does, its tables to go while the task stays empty; one
        that never had a file lists nothing, and one downloaded again
        since keeps its tables.
        """
        emptied = await self._downloaded(request("a", 1))
        again = await self._downloaded(request("a", 2))
        await self.store.create([request("a", 3)])
        self.clock.advance(10)
        await self.store.revise([(t.id, self.clock.seconds() - 1, "2") for t in (emptied, again)])
        for ignored in range(3):
            task = await self._task(self.store.claim("w", 60))
            self.assertTrue(await self.store.finish(task.id, "w", EMPTY, error="no data"))
        listed = await self.store.retired_tables(10)
        self.assertEqual(set(listed.files), {("a", emptied.filename), ("a", again.filename)})
        self.assertEqual(listed.dropped, listed.entries)
        self.clock.advance(10)
        await self.store.revise([(again.id, self.clock.seconds() - 1, "3")])
        task = await self._task(self.store.claim("w", 60))
        self.assertEqual(task.id, again.id)
        await self.store.finish(task.id, "w", DOWNLOADED, bytes=5, sha256="new")
        self.assertEqual((await self.store.retired_tables(10)).files, (("a", emptied.filename),))
        self.assertEqual((await self._task(self.store.get(emptied.id))).state, EMPTY)

    async def refetched(self, task: Task, storage: str) -> None:
        """
        Have OASIS revise C{task}, then download it again into C{storage}.
        """
        self.clock.advance(10)
        await self.store.revise([(task.id, self.clock.seconds() - 1, "2")])
        claimed = await self._task(self.store.claim("w", 60))
        self.assertEqual(claimed.id, task.id)
        await self.store.finish(claimed.id, "w", DOWNLOADED, 10, "new", storage=storage)

    async def test_movedTablesListed(self) -> None:
        """
        A file downloaded anew into another storage than its last (a
        revision fetched by another host) lists its window for the tables
        parsed from the last: a reader of that storage drops them, a
        reader of another storage (or of none) keeps them; forgetting the
        entry queues no parse (the new file's is written where it is).
        The same storage again lists nothing.
        """
        task = await self._downloaded(request("a", 1), storage="hub")
        await self.refetched(task, "worker")
        listed = await self.store.retired_tables(10, "hub")
        self.assertEqual(listed.files, (("a", task.filename),))
        self.assertEqual(listed.dropped, listed.entries)
        self.assertEqual((await self.store.retired_tables(10, "worker")).dropped, ())
        self.assertEqual((await self.store.retired_tables(10)).dropped, ())
        await self.refetched(task, "worker")
        self.assertEqual((await self.store.retired_tables(10, "hub")).entries, listed.entries)
        job = await self.store.claim_parse("p", 60, "worker")
        assert job is not None
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 5, ""))
        self.assertEqual(await self.store.forget_retired_tables(listed.entries, listed.dropped), 1)
        self.assertEqual((await self._task(self.store.get(task.id))).parse, PARSED)
        with self.assertRaises(ValueError):
            await self.store.retired_tables(10, "not a storage")

    async def test_movedBackTablesKept(self) -> None:
        """
        A window whose file moved to another storage and back again keeps
        the tables parsed from the first: its new file is parsed there.
        """
        task = await self._downloaded(request("a", 1), storage="hub")
        await self.refetched(task, "worker")
        await self.refetched(task, "hub")
        listed = await self.store.retired_tables(10, "hub")
        self.assertEqual(len(listed.entries), 2)
        self.assertEqual((await self.store.retired_tables(10, "worker")).files, (("a", task.filename),))
        self.assertEqual(listed.dropped, ())

    async def cut_off(self) -> str:
        """
        Claim the next file to parse and let its lease expire.

        @return: Its parse state after the sweep.
        """
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.clock.advance(61)
        await self.store.sweep()
        return (await self._task(self.store.get(job.id))).parse

    async def test_parseCutOffUnparsable(self) -> None:
        """
        A file whose parses are cut off (their lease expires: the process
        died or stalled) L{CUT_OFF_MOST} times in a row is unparsable,
        saying why, rather than taken again after every restart; a
        reparse starts the count again.
        """
        task = await self._downloaded(request("a", 1))
        for ignored in range(CUT_OFF_MOST - 1):
            self.assertEqual(await self.cut_off(), QUEUED)
        self.assertEqual(await self.cut_off(), UNPARSABLE)
        found = await self._task(self.store.get(task.id))
        self.assertEqual(found.parse_error, CUT_OFF_ERROR)
        self.assertIn("cut off 3 times in a row", found.parse_error)
        self.assertEqual((await self.store.parse_counts())["a"][UNPARSABLE], 1)
        self.assertEqual(await self.store.requeue_parse("a", False), 1)
        self.assertEqual(await self.cut_off(), QUEUED)

    async def test_retiredTablesForgottenOnlyAsRead(self) -> None:
        """
        Only entries given are forgotten, from the oldest, while each is
        still the oldest: two readers of the same entries forget them once,
        and never one that neither read.
        """
        for day in (1, 2):
            await self._downloaded(request("a", day))
        await self.store.retire_with_files(await self.store.ids())
        head = await self.store.retired_tables(1)
        self.assertEqual(await self.store.forget_retired_tables(head.entries), 1)
        self.assertEqual(await self.store.forget_retired_tables(head.entries), 0)
        self.assertEqual(len((await self.store.retired_tables(10)).entries), 1)
        with self.assertRaises(ValueError):
            await self.store.retired_tables(0)

    async def test_revivedWhileDroppedParsedAgain(self) -> None:
        """
        Forgetting the entry of a task downloaded again (brought back while
        its tables were dropped, and parsed meanwhile) queues it to be
        parsed again.
        """
        task = await self._downloaded(request("a", 1))
        await self.store.retire_with_files({task.id})
        listed = await self.store.retired_tables(10)
        await self.store.create([request("a", 1)])
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 5, ""))
        self.assertEqual((await self._task(self.store.get(task.id))).parse, "parsed")
        self.assertEqual(await self.store.forget_retired_tables(listed.entries, listed.dropped), 1)
        self.assertEqual((await self._task(self.store.get(task.id))).parse, "queued")
        self.assertEqual((await self.store.parse_counts())["a"]["queued"], 1)

    async def test_revivedBeforeReadNotParsedAgain(self) -> None:
        """
        An entry whose tables were not dropped (its window was brought back
        before it was read) is forgotten without touching its parse: one
        under way keeps its claim, one that failed stays failed.
        """
        task = await self._downloaded(request("a", 1))
        await self.store.retire_with_files({task.id})
        await self.store.create([request("a", 1)])
        listed = await self.store.retired_tables(10)
        self.assertEqual(listed.dropped, ())
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.assertEqual(await self.store.forget_retired_tables(listed.entries, listed.dropped), 1)
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 0, "bad zip"))
        self.assertEqual((await self._task(self.store.get(task.id))).parse, "unparsable")

    async def test_purgeAfterRetention(self) -> None:
        """
        Retired tasks are forgotten once retired at least the given
        seconds ago, with their report's counts when nothing is left of it.
        """
        from harbour.errors import StoreRefused

        await self.store.create([request("a", 1), request("b", 1)])
        await self.store.retire({task_id(request("a", 1).filename)})
        self.assertEqual(await self.store.purge(1), 0)
        self.clock.advance(10)
        self.assertEqual(await self.store.purge(11), 0)
        with self.assertRaises(StoreRefused):
            await self.store.purge(float("nan"))
        self.assertEqual(await self.store.purge(10), 1)
        self.assertEqual(await self.store.counts(), {"b": {PENDING: 1}})
        self.assertEqual(await self.store.ids(), {task_id(request("b", 1).filename)})
        self.assertIsNone(await self.store.get(task_id(request("a", 1).filename)))

    async def test_recountRightCounts(self) -> None:
        """
        A recount of counts and parse counts that followed every
        transition finds nothing wrong, and changes none.
        """
        await self.store.create([request("a", day) for day in range(1, 8)] + [request("b", 1)])
        for ignored in range(5):
            task = await self._task(self.store.claim("w", 60))
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        await self._task(self.store.claim("w", 60))
        await self.store.retire({task_id(request("b", 1).filename)})
        # Parsed, unparsable, and one left parsing.
        for error in ["", "no CSV member", None]:
            job = await self.store.claim_parse("p", 60)
            assert job is not None
            if error is not None:
                await self.store.finish_parse(job.id, "p", job.token, 3, error)
        counts, parse_counts = await self.store.counts(), await self.store.parse_counts()
        self.assertEqual(parse_counts, {"a": {QUEUED: 2, PARSING: 1, PARSED: 1, UNPARSABLE: 1}})
        # Not part of ITaskStore: only the hub's store recounts, as it starts.
        store = cast(MemoryTaskStore | RedisTaskStore, self.store)
        self.assertEqual(await store.recount(), {})
        self.assertEqual((await self.store.counts(), await self.store.parse_counts()), (counts, parse_counts))

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

    async def test_claimMany(self) -> None:
        """
        Several claims in one step take the most urgent due tasks in turn,
        each as one claim would, and no more than are due; a count below
        one claims nothing.
        """
        await self.store.create([request("a", d) for d in (3, 1, 2)])
        await self._task(self.store.claim("w", 60))
        await self.store.release(task_id(request("a", 3).filename), "w", 0.0)
        claimed = await self.store.claim_many("v", 60, 2)
        self.assertEqual([t.filename for t in claimed], ["a/2025-01-03.zip", "a/2025-01-02.zip"])
        self.assertEqual(
            [(t.state, t.attempts, t.claim, t.owner) for t in claimed],
            [(DOWNLOADING, 2, 2, "v"), (DOWNLOADING, 1, 1, "v")],
        )
        self.assertEqual(await self.store.claim_many("v", 60, 0), [])
        [last] = await self.store.claim_many("v", 60, 5)
        self.assertEqual(last.filename, "a/2025-01-01.zip")
        self.assertEqual(await self.store.claim_many("v", 60, 5), [])
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADING: 3}})
        self.clock.advance(61)
        self.assertEqual(await self.store.sweep(), 3)

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

    async def test_finishMany(self) -> None:
        """
        Several claims end in one step, in turn, each as L{finish} would
        end it: one held by another owner, or under an older token, or
        ended already, changes nothing and answers C{False}.
        """
        await self.store.create([request("a", d) for d in range(1, 5)])
        tasks = [await self._task(self.store.claim("w", 60)) for ignored in range(4)]
        first, second, third, fourth = tasks
        outcomes = [
            Outcome(first.id, "w", DOWNLOADED, 10, "ab", token=first.claim),
            Outcome(second.id, "other", DOWNLOADED, 10, "cd"),
            Outcome(third.id, "w", FAILED, error="HTTP 400", token=third.claim + 1),
            Outcome(fourth.id, "w", EMPTY, error="no data"),
            Outcome(first.id, "w", FAILED, token=first.claim),
        ]
        self.assertEqual(await self.store.finish_many(outcomes), [True, False, False, True, False])
        ended = [await self._task(self.store.get(task.id)) for task in tasks]
        self.assertEqual(
            [(t.state, t.bytes, t.sha256, t.last_error, t.owner) for t in ended],
            [
                (DOWNLOADED, 10, "ab", "", ""),
                (DOWNLOADING, 0, "", "", "w"),
                (DOWNLOADING, 0, "", "", "w"),
                (EMPTY, 0, "", "no data", ""),
            ],
        )
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1, DOWNLOADING: 2, EMPTY: 1}})
        self.assertEqual(await self.store.finish_many([]), [])

    async def test_endedClaim(self) -> None:
        """
        A task tells the token of the latest claim its holder ended,
        finished or given back; a claim whose lease ran out, or one refused,
        leaves it.
        """
        await self.store.create([request("a", d) for d in range(1, 4)])
        finished, released, swept = [await self._task(self.store.claim("w", 10)) for ignored in range(3)]
        self.assertEqual([t.ended for t in (finished, released, swept)], [0, 0, 0])
        await self.store.finish(finished.id, "w", DOWNLOADED, bytes=1, sha256="ab", token=finished.claim)
        await self.store.release(released.id, "w", 0.0, "HTTP 503", token=released.claim)
        self.assertFalse(await self.store.release(swept.id, "w", 0.0, "late", token=swept.claim + 1))
        self.clock.advance(11)
        await self.store.sweep()
        ended = [await self._task(self.store.get(t.id)) for t in (finished, released, swept)]
        self.assertEqual(
            [(t.state, t.claim, t.ended) for t in ended],
            [(DOWNLOADED, 1, 1), (PENDING, 1, 1), (PENDING, 1, 0)],
        )
        again = await self._task(self.store.claim("w", 10))
        self.assertEqual((again.claim, again.ended), (2, 1))

    async def test_releaseWithBackoff(self) -> None:
        """
        A released task is not claimed again before its C{not_before}.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.release(task.id, "w", 30.0, "HTTP 503"))
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
        self.assertEqual(
            changed,
            [
                {
                    "id": task.id,
                    "report": "a",
                    "previous": DOWNLOADED,
                    "revision": 1,
                    "revised": 1,
                    "url": task.url,
                    "filename": task.filename,
                }
            ],
        )
        revised = await self._task(self.store.get(task.id))
        self.assertEqual(
            (revised.state, revised.revision, revised.revised, revised.sha256, revised.attempts),
            (PENDING, 1, 1, "old", 0),
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
        self.assertEqual(
            changed,
            [
                {
                    "id": task.id,
                    "report": "a",
                    "previous": EMPTY,
                    "revision": 0,
                    "revised": 0,
                    "url": task.url,
                    "filename": task.filename,
                }
            ],
        )
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

    async def test_reviseRetiredDownloaded(self) -> None:
        """
        A revision of a retired task that was downloaded, newer than its
        fetch, leaves it retired but brings it back pending when asked for
        again, its revision raised and counted and its old hash kept (its
        file is kept as a revision), as for one revised while asked for.
        Another revision before it comes back changes nothing more.
        """
        original = request("a", 1)
        task = await self._downloaded(original)
        await self.store.retire({task.id})
        self.clock.advance(10)
        changed = await self.store.revise([(task.id, self.clock.seconds() - 1, "2")])
        self.assertEqual([(c["id"], c["previous"], c["revision"]) for c in changed], [(task.id, RETIRED, 1)])
        self.assertEqual(await self.store.counts(), {"a": {RETIRED: 1}})
        self.assertEqual(await self.store.revise([(task.id, self.clock.seconds(), "3")]), [])
        self.assertEqual(await self.store.revision_counts(), {"a": 1})
        self.assertIsNone(await self.store.claim("w", 60))
        self.assertEqual(await self.store.create([original]), {"a": 1})
        back = await self._task(self.store.get(task.id))
        self.assertEqual(
            (back.state, back.revision, back.sha256, back.attempts, back.retired_from),
            (PENDING, 1, "old", 0, ""),
        )
        self.assertEqual((await self._task(self.store.claim("w", 60))).id, task.id)

    async def test_reviseRetiredEmpty(self) -> None:
        """
        A day published while its window is retired after an answer of no
        data comes back pending, not empty; that is not counted as a
        revision.
        """
        original = request("a", 1)
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        await self.store.finish(task.id, "w", EMPTY)
        await self.store.retire({task.id})
        self.clock.advance(10)
        changed = await self.store.revise([(task.id, self.clock.seconds(), "1")])
        self.assertEqual([(c["previous"], c["revision"]) for c in changed], [(RETIRED, 0)])
        await self.store.create([original])
        self.assertEqual((await self._task(self.store.get(task.id))).state, PENDING)
        self.assertEqual(await self.store.revision_counts(), {})

    async def test_reviseRetiredOlderThanFetchIgnored(self) -> None:
        """
        A revision of a retired task from before its fetch, or of one
        retired while waiting (fetched again anyway when back), changes
        nothing: the downloaded one comes back downloaded.
        """
        original, waiting = request("a", 1), request("a", 2)
        task = await self._downloaded(original)
        await self.store.create([waiting])
        await self.store.retire({task.id, task_id(waiting.filename)})
        self.clock.advance(10)
        revisions = [
            (task.id, self.clock.seconds() - 20, "2"),
            (task_id(waiting.filename), self.clock.seconds(), "2"),
        ]
        self.assertEqual(await self.store.revise(revisions), [])
        await self.store.create([original, waiting])
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1, PENDING: 1}})
        self.assertEqual(await self.store.revision_counts(), {})

    async def test_reviseRetiredMidDownload(self) -> None:
        """
        A revision noted while a task was being downloaded is not dropped
        when the task, retired meanwhile, is retired as its attempt ends:
        the next call marks it to come back pending.
        """
        original = request("a", 1)
        await self.store.create([original])
        task = await self._task(self.store.claim("w", 60))
        self.clock.advance(5)
        self.assertEqual(await self.store.revise([(task.id, self.clock.seconds(), "2")]), [])
        await self.store.retire({task.id})
        await self.store.finish(task.id, "w", DOWNLOADED, bytes=10, sha256="old")
        self.assertEqual(await self.store.counts(), {"a": {RETIRED: 1}})
        self.assertEqual([c["previous"] for c in await self.store.revise([])], [RETIRED])
        await self.store.create([original])
        back = await self._task(self.store.get(task.id))
        self.assertEqual((back.state, back.revision), (PENDING, 1))

    async def test_refetchMissing(self) -> None:
        """
        L{ITaskStore.refetch_missing} puts a downloaded task whose file is
        gone back to pending, due at once, its attempts reset, its hash
        cleared and out of the parse queue, counted as pending: its next
        download is a first one, its revision unchanged and nothing
        counted as revised.  Its bytes and storage stay, naming the file
        whose tables were parsed.  It returns the ids moved, each once.
        """
        task = await self._downloaded(request("a", 1), storage="hub")
        # Revised once and downloaded again: its revision stays 1.
        await self.refetched(task, "hub")
        self.clock.advance(5)
        moved = await self.store.refetch_missing([(task.id, "hub", "new"), (task.id, "hub", "new")])
        self.assertEqual(moved, [task.id])
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.attempts, again.not_before, again.sha256, again.revision),
            (PENDING, 0, 0.0, "", 1),
        )
        self.assertEqual((again.bytes, again.storage, again.parse), (10, "hub", ""))
        self.assertEqual(again.modified, self.clock.seconds())
        self.assertIn("gone", again.last_error)
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})
        self.assertEqual(await self.store.revision_counts(), {"a": 1})
        self.assertEqual(await self.store.parse_counts(), {})
        self.assertIsNone(await self.store.claim_parse("p", 60, "hub"))
        claimed = await self._task(self.store.claim("w", 60))
        self.assertEqual((claimed.id, claimed.attempts), (task.id, 1))
        self.assertTrue(
            await self.store.finish(
                claimed.id, "w", DOWNLOADED, 10, "again", token=claimed.claim, storage="hub"
            )
        )
        downloaded = await self._task(self.store.get(task.id))
        self.assertEqual((downloaded.state, downloaded.revision, downloaded.parse), (DOWNLOADED, 1, QUEUED))
        self.assertEqual(await self.store.revision_counts(), {"a": 1})
        self.assertEqual((await self.store.retired_tables(10, "hub")).entries, ())

    async def test_refetchAhead(self) -> None:
        """
        L{ITaskStore.refetch_ahead} puts back to pending, due at once, its
        attempts reset, the downloaded and empty tasks given whose window
        ends after now and whose last claim was before the time given: a
        downloaded one keeps its hash and storage, so that the file in
        place is not taken for the new answer, and gets its revision
        raised, so that the file it replaces is kept under its own name;
        nothing is counted as revised, and no tables are listed to go (the
        new answer's parse replaces them), but a parse under way ends
        without writing.  Each id is moved once, in the order given, and
        other states and unknown ids are left alone.
        """
        retired = await self._downloaded(request("b", 1))
        await self.store.retire([retired.id])
        downloaded = await self._downloaded(request("a", 1), storage="hub")
        # Claimed newest first: 5, 4 and 3; 2 stays pending.
        await self.store.create([request("a", 2), request("a", 3), request("a", 4), request("a", 5)])
        empty = await self._task(self.store.claim("w", 60))
        await self.store.finish(empty.id, "w", EMPTY)
        failed = await self._task(self.store.claim("w", 60))
        await self.store.finish(failed.id, "w", FAILED, error="500")
        downloading = await self._task(self.store.claim("w", 60))
        parse = await self.store.claim_parse("p", 60, "hub")
        assert parse is not None
        self.clock.advance(100)
        since = self.clock.seconds()
        pending = task_id(request("a", 2).filename)
        ids = [
            downloaded.id,
            empty.id,
            downloaded.id,
            failed.id,
            downloading.id,
            retired.id,
            pending,
            "unknown",
        ]
        self.assertEqual(await self.store.refetch_ahead(ids, since), [downloaded.id, empty.id])
        self.assertEqual(await self.store.refetch_ahead(ids, since), [])
        again = await self._task(self.store.get(downloaded.id))
        self.assertEqual(
            (again.state, again.attempts, again.not_before, again.sha256, again.revision, again.storage),
            (PENDING, 0, 0.0, "old", 1, "hub"),
        )
        self.assertEqual((again.parse, again.modified), ("", since))
        self.assertIn("ahead", again.last_error)
        emptied = await self._task(self.store.get(empty.id))
        self.assertEqual((emptied.state, emptied.revision), (PENDING, 0))
        self.assertEqual(
            await self.store.counts(),
            {"a": {PENDING: 3, FAILED: 1, DOWNLOADING: 1}, "b": {RETIRED: 1}},
        )
        self.assertEqual(await self.store.revision_counts(), {})
        self.assertEqual(await self.store.parse_counts(), {})
        self.assertFalse(await self.store.finish_parse(downloaded.id, "p", parse.token, 7, ""))
        listed = (await self.store.retired_tables(10, "hub")).entries
        self.assertEqual([entry.split("\n")[0] for entry in listed], [retired.id])
        # Fetched again: the day's last fetch is now after the time given.
        [claimed] = [task for task in await self.store.claim_many("w", 60, 3) if task.id == downloaded.id]
        await self.store.finish(claimed.id, "w", DOWNLOADED, 12, "new", token=claimed.claim, storage="hub")
        self.assertEqual(await self.store.refetch_ahead([downloaded.id], since), [])
        fetched = await self._task(self.store.get(downloaded.id))
        self.assertEqual(
            (fetched.state, fetched.sha256, fetched.revision, fetched.revised, fetched.parse),
            (DOWNLOADED, "new", 1, 0, QUEUED),
        )
        self.assertEqual(
            await self.store.refetch_ahead([downloaded.id], self.clock.seconds() + 1), [downloaded.id]
        )

    async def test_refetchAheadLeavesPast(self) -> None:
        """
        L{ITaskStore.refetch_ahead} leaves alone a task whose window has
        ended: a day that has passed keeps the answer fetched on it.
        """
        task = await self._downloaded(request("a", 1))
        end = datetime.datetime(2025, 1, 2, 8, tzinfo=UTC).timestamp()
        self.clock.advance(end - self.clock.seconds())
        self.assertEqual(await self.store.refetch_ahead([task.id], self.clock.seconds()), [])
        self.assertEqual((await self._task(self.store.get(task.id))).state, DOWNLOADED)
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}})

    async def _ahead(self, storage: str = "hub", day: ReportURL | None = None) -> Task:
        """
        Download the window of 2025-01-05 (or C{day}) into C{storage},
        parse it, then put it back with L{ITaskStore.refetch_ahead} as a day
        ahead, the clock a minute into that day.

        @return: The task as it was downloaded.
        """
        if day is None:
            day = request("a", 5)
        await self._downloaded(day, storage=storage)
        job = await self.store.claim_parse("p", 60, storage)
        assert job is not None
        await self.store.finish_parse(job.id, "p", job.token, 7, "")
        task = await self._task(self.store.get(job.id))
        self.clock.advance(day.window_start.timestamp() + 60 - self.clock.seconds())
        self.assertEqual(await self.store.refetch_ahead([task.id], day.window_start.timestamp()), [task.id])
        return task

    async def _assertKept(self, before: Task, state: str = DOWNLOADED) -> Task:
        """
        Assert that C{before}'s task is back in C{state}, with its file,
        hash, storage and revision, queued to be parsed again, not claimed
        again, and that none of its tables is listed to go.

        @return: The task as it is now.
        """
        self.assertIsNone(await self.store.claim("w", 60))
        task = await self._task(self.store.get(before.id))
        self.assertEqual(
            (task.state, task.sha256, task.bytes, task.storage, task.revision, task.ahead_from),
            (state, before.sha256, before.bytes, before.storage, before.revision, ""),
        )
        self.assertIn("fetched before is kept", task.last_error)
        self.assertEqual(await self.store.counts(), {"a": {state: 1}})
        self.assertEqual((await self.store.retired_tables(10, before.storage)).entries, ())
        self.assertEqual(await self.store.revision_counts(), {})
        return task

    async def test_refetchAheadOverKept(self) -> None:
        """
        A task put back by L{ITaskStore.refetch_ahead} that is not fetched
        again before its day ends is not claimed once it is over: OASIS
        serves no past day of such a report.  It is back as it was, its
        file queued to be parsed again, its tables kept.
        """
        before = await self._ahead()
        self.assertEqual((await self._task(self.store.get(before.id))).ahead_from, DOWNLOADED)
        self.clock.advance(request("a", 5).window_end.timestamp() - self.clock.seconds())
        task = await self._assertKept(before)
        self.assertEqual(task.parse, QUEUED)
        self.assertEqual((await self.store.parse_counts())["a"][QUEUED], 1)

    async def test_refetchAheadNoDataKept(self) -> None:
        """
        A fetch again of a day ahead that ends with no data, or failed,
        leaves the task in the state it came from, as it was: no new
        outcome, no tables listed to go.
        """
        before = await self._ahead()
        claimed = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(claimed.id, "w", EMPTY, token=claimed.claim))
        self.assertIn("no data", (await self._assertKept(before)).last_error)
        # An empty one fetched again that fails is empty again.
        emptied = request("b", 6)
        await self.store.create([emptied])
        claimed = await self._task(self.store.claim("w", 60))
        await self.store.finish(claimed.id, "w", EMPTY)
        self.assertEqual(await self.store.refetch_ahead([claimed.id], self.clock.seconds() + 1), [claimed.id])
        again = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.finish(again.id, "w", FAILED, error="500", token=again.claim))
        task = await self._task(self.store.get(claimed.id))
        self.assertEqual((task.state, task.revision, task.ahead_from), (EMPTY, 0, ""))
        self.assertIn("500", task.last_error)
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: 1}, "b": {EMPTY: 1}})

    async def test_refetchAheadDueAfterItsDayKept(self) -> None:
        """
        A fetch again of a day ahead given back due only once its day is
        over (a recheck, a backoff), or whose lease runs out after it, is
        back as it was at once; one due within its day waits.
        """
        before = await self._ahead()
        day = request("a", 5)
        claimed = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.release(claimed.id, "w", 3600, "not yet", token=claimed.claim))
        self.assertEqual((await self._task(self.store.get(before.id))).state, PENDING)
        self.clock.advance(3600)
        claimed = await self._task(self.store.claim("w", 60))
        late = day.window_end.timestamp() - self.clock.seconds()
        self.assertTrue(await self.store.release(claimed.id, "w", late, "no data yet", token=claimed.claim))
        self.assertIn("no data yet", (await self._assertKept(before)).last_error)
        # Fetched again the next day, its lease running out after its end.
        self.clock.advance(-60 - self.clock.seconds() + day.window_end.timestamp())
        self.assertEqual(await self.store.refetch_ahead([before.id], self.clock.seconds() - 1), [before.id])
        await self._task(self.store.claim("w", 120))
        self.clock.advance(120)
        await self.store.sweep()
        self.assertIn("lease expired", (await self._assertKept(before)).last_error)

    async def test_refetchAheadNewAnswerReplaces(self) -> None:
        """
        A fetch again of a day ahead that brings data replaces what the
        day had, as any download does, and is what the day keeps: a later
        outcome is the task's own.
        """
        before = await self._ahead()
        claimed = await self._task(self.store.claim("w", 60))
        await self.store.finish(claimed.id, "w", DOWNLOADED, 12, "new", token=claimed.claim, storage="hub")
        task = await self._task(self.store.get(before.id))
        self.assertEqual(
            (task.state, task.sha256, task.revision, task.ahead_from), (DOWNLOADED, "new", 1, "")
        )
        self.clock.advance(request("a", 5).window_end.timestamp() - self.clock.seconds())
        self.assertEqual((await self._task(self.store.get(before.id))).state, DOWNLOADED)
        self.assertIsNone(await self.store.claim("w", 60))

    async def test_refetchAheadKeptRevisedSince(self) -> None:
        """
        A day ahead back as it was keeps the time its answer was fetched:
        a revision OASIS published after that, noted while the day was
        fetched again, puts it back to be fetched again.  It is not put
        back again the same day by L{ITaskStore.refetch_ahead}.
        """
        before = await self._ahead()
        claimed = await self._task(self.store.claim("w", 60))
        self.assertGreater(claimed.fetched, before.fetched)
        self.assertEqual(await self.store.revise([(claimed.id, claimed.fetched - 10, "2")]), [])
        self.assertTrue(await self.store.finish(claimed.id, "w", EMPTY, token=claimed.claim))
        kept = await self._assertKept(before)
        self.assertEqual(kept.fetched, before.fetched)
        self.assertEqual(
            await self.store.refetch_ahead([before.id], request("a", 5).window_start.timestamp()), []
        )
        [revised] = await self.store.revise([])
        self.assertEqual(
            (revised["id"], revised["previous"], revised["revision"], revised["revised"]),
            (before.id, DOWNLOADED, 1, 1),
        )
        self.assertEqual((await self._task(self.store.get(before.id))).state, PENDING)

    async def test_refetchAheadResizedWhileDownloading(self) -> None:
        """
        A day ahead whose window is resized while it is fetched again is
        fetched again for its new window, and is still a day ahead: the
        answer just fetched is kept (its hash, and a revision to keep it
        under once another replaces it), and once its day is over the day
        is not fetched again but keeps that answer.
        """
        before = await self._ahead(day=_timed_day(5))
        claimed = await self._task(self.store.claim("w", 60))
        resized = _timed_day(5, hour=1)
        self.assertEqual(redefinition(claimed.url, resized.url, DOWNLOADING), "resized")
        await self.store.create([resized])
        self.assertTrue(
            await self.store.finish(
                claimed.id, "w", DOWNLOADED, 12, "new", token=claimed.claim, storage="hub"
            )
        )
        again = await self._task(self.store.get(before.id))
        self.assertEqual(
            (again.state, again.sha256, again.revision, again.ahead_from, again.url),
            (PENDING, "new", 2, DOWNLOADED, resized.url),
        )
        self.clock.advance(resized.window_end.timestamp() - self.clock.seconds())
        self.assertIsNone(await self.store.claim("w", 60))
        task = await self._task(self.store.get(before.id))
        self.assertEqual(
            (task.state, task.sha256, task.bytes, task.revision, task.ahead_from, task.parse),
            (DOWNLOADED, "new", 12, 1, "", QUEUED),
        )

    async def test_refetchMissingLeavesChanged(self) -> None:
        """
        L{ITaskStore.refetch_missing} leaves alone a task that is no longer
        downloaded with the storage and hash given: downloaded again (a
        new hash), of another storage, revised, claimed, retired, or
        unknown; it refuses a storage name the store cannot take before
        it changes anything.
        """
        other = await self._downloaded(request("a", 1), storage="worker")
        rehashed = await self._downloaded(request("a", 2), storage="hub")
        revised = await self._downloaded(request("a", 3), storage="hub")
        retired = await self._downloaded(request("a", 4), storage="hub")
        self.clock.advance(10)
        await self.store.revise([(revised.id, self.clock.seconds() - 1, "2")])
        await self.store.retire([retired.id])
        await self.store.create([request("b", 1)])
        claimed = await self._task(self.store.claim("w", 60))
        self.assertEqual(claimed.id, revised.id)
        await self.store.create([request("b", 2)])
        pending = task_id(request("b", 2).filename)
        counts = await self.store.counts()
        entries = [
            (other.id, "hub", "old"),
            (rehashed.id, "hub", "older"),
            (revised.id, "hub", "old"),
            (retired.id, "hub", "old"),
            (pending, "hub", ""),
            ("unknown", "hub", "old"),
        ]
        with self.assertRaises(ValueError):
            await self.store.refetch_missing(
                [(rehashed.id, "hub", "old"), (other.id, "not a storage", "old")]
            )
        self.assertEqual(await self.store.refetch_missing(entries), [])
        self.assertEqual(await self.store.refetch_missing([]), [])
        self.assertEqual(await self.store.counts(), counts)
        for task, state in [
            (other, DOWNLOADED),
            (rehashed, DOWNLOADED),
            (revised, DOWNLOADING),
            (retired, RETIRED),
        ]:
            self.assertEqual((await self._task(self.store.get(task.id))).state, state)
        self.assertEqual((await self._task(self.store.get(rehashed.id))).sha256, "old")

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

    async def test_releaseDelay(self) -> None:
        """
        A task released with a C{delay} is due that many seconds from now,
        as the store tells time; one released with a delay not positive is
        due at once.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertTrue(
            await self.store.release(task.id, "w", error="HTTP 503", delay=30.0, token=task.claim)
        )
        released = await self._task(self.store.get(task.id))
        self.assertEqual(released.not_before, self.clock.seconds() + 30.0)
        self.clock.advance(29.5)
        self.assertIsNone(await self.store.claim("w", 60))
        self.clock.advance(0.5)
        again = await self._task(self.store.claim("w", 60))
        self.assertTrue(await self.store.release(again.id, "w", -1.0, "late"))
        self.assertEqual((await self._task(self.store.claim("w", 60))).claim, 3)

    async def _parse_job(self, day: int = 1, owner: str = "p", lease: float = 60) -> ParseJob:
        """
        Download the task of C{request("a", day)} and claim its parse.
        """
        await self._downloaded(request("a", day))
        job = await self.store.claim_parse(owner, lease)
        if job is None:
            self.fail("nothing to parse")
        return job

    async def test_downloadedIsQueuedToParse(self) -> None:
        """
        A download recorded queues its file to be parsed; the parse claim
        names the file, its hash and revision, with a fencing token; the
        counts follow every step; a parsed file records its rows.
        """
        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        self.assertIsNone(await self.store.claim_parse("p", 60))
        await self.store.finish(task.id, "w", DOWNLOADED, 10, "ab", token=task.claim)
        queued = await self._task(self.store.get(task.id))
        self.assertEqual((queued.parse, queued.parse_error), (QUEUED, ""))
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 1, PARSING: 0, PARSED: 0, UNPARSABLE: 0}}
        )
        job = await self.store.claim_parse("p", 60)
        self.assertEqual(job, ParseJob(task.id, "a", task.filename, task.url, "ab", 0, 1))
        self.assertIsNone(await self.store.claim_parse("p", 60))
        self.assertEqual((await self._task(self.store.get(task.id))).parse, PARSING)
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 0, PARSING: 1, PARSED: 0, UNPARSABLE: 0}}
        )
        self.assertTrue(await self.store.finish_parse(task.id, "p", 1, 42, ""))
        parsed = await self._task(self.store.get(task.id))
        self.assertEqual(
            (parsed.state, parsed.parse, parsed.rows, parsed.parse_error), (DOWNLOADED, PARSED, 42, "")
        )
        self.assertEqual(parsed.to_json()["parse"], PARSED)
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 0, PARSING: 0, PARSED: 1, UNPARSABLE: 0}}
        )
        self.assertFalse(await self.store.finish_parse(task.id, "p", 1, 42, ""), "ended already")

    async def test_parseOldestFirst(self) -> None:
        """
        The parse queue hands out the file downloaded first first.
        """
        await self.store.create([request("a", d) for d in (1, 2, 3)])
        for ignored in range(3):
            task = await self._task(self.store.claim("w", 60))
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h")
            self.clock.advance(1)
        jobs = [await self.store.claim_parse("p", 60) for ignored in range(3)]
        self.assertEqual([j.filename for j in jobs if j], [f"a/2025-01-0{d}.zip" for d in (3, 2, 1)])

    async def test_unparsable(self) -> None:
        """
        A parse that ends with an error marks the file unparsable, keeping
        the error; the task stays downloaded.
        """
        job = await self._parse_job()
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 0, "no CSV member"))
        task = await self._task(self.store.get(job.id))
        self.assertEqual(
            (task.state, task.parse, task.parse_error), (DOWNLOADED, UNPARSABLE, "no CSV member")
        )
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 0, PARSING: 0, PARSED: 0, UNPARSABLE: 1}}
        )

    async def test_negativeRowsRefused(self) -> None:
        """
        A parse ended as parsed with fewer than 0 rows is refused with
        L{StoreRefused}, whoever ends it, and changes nothing: the parse is
        still held.  Rows are not read from a parse ended with an error.
        """
        from harbour.errors import StoreRefused

        job = await self._parse_job()
        for owner in ("p", "stranger"):
            with self.assertRaises(StoreRefused):
                await self.store.finish_parse(job.id, owner, job.token, -5, "")
        task = await self._task(self.store.get(job.id))
        self.assertEqual((task.parse, task.parse_owner, task.rows), (PARSING, "p", 0))
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 0, PARSING: 1, PARSED: 0, UNPARSABLE: 0}}
        )
        self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, -5, "no CSV member"))
        task = await self._task(self.store.get(job.id))
        self.assertEqual((task.parse, task.parse_error, task.rows), (UNPARSABLE, "no CSV member", 0))

    async def test_parseFencing(self) -> None:
        """
        A parse claim whose lease expired is swept back to the queue; once
        claimed again (even by the same owner), the first claim's token is
        refused by renew, release and finish; a stranger is refused too.
        """
        stale = await self._parse_job(lease=5)
        self.assertTrue(await self.store.renew_parse(stale.id, "p", stale.token, 5))
        self.assertFalse(await self.store.renew_parse(stale.id, "other", stale.token, 5))
        self.clock.advance(5)
        self.assertEqual(await self.store.sweep(), 1)
        swept = await self._task(self.store.get(stale.id))
        self.assertEqual((swept.parse, swept.parse_error), (QUEUED, "lease expired"))
        live = await self.store.claim_parse("p", 60)
        assert live is not None
        self.assertEqual((live.id, live.token), (stale.id, stale.token + 1))
        self.assertFalse(await self.store.renew_parse(stale.id, "p", stale.token, 60))
        self.assertFalse(await self.store.release_parse(stale.id, "p", stale.token, 0, "late"))
        self.assertFalse(await self.store.finish_parse(stale.id, "p", stale.token, 1, ""))
        self.assertTrue(await self.store.finish_parse(live.id, "p", live.token, 7, ""))
        self.assertEqual((await self._task(self.store.get(live.id))).rows, 7)

    async def test_releaseParse(self) -> None:
        """
        A parse given back is due again after its delay, with its error.
        """
        job = await self._parse_job()
        self.assertTrue(await self.store.release_parse(job.id, "p", job.token, 30, "disk full"))
        task = await self._task(self.store.get(job.id))
        self.assertEqual((task.parse, task.parse_error, task.parse_owner), (QUEUED, "disk full", ""))
        self.assertIsNone(await self.store.claim_parse("p", 60))
        self.clock.advance(30)
        again = await self.store.claim_parse("p", 60)
        self.assertEqual((again.id, again.token) if again else None, (job.id, 2))

    async def test_revisedLeavesParseQueue(self) -> None:
        """
        A downloaded task put back to pending (revised) leaves the parse
        queue: its parse is refused, nothing is left to parse, it is not
        counted; downloaded again, it is queued again.
        """
        job = await self._parse_job()
        self.clock.advance(10)
        await self.store.revise([(job.id, self.clock.seconds() - 1, "2")])
        task = await self._task(self.store.get(job.id))
        self.assertEqual((task.state, task.parse), (PENDING, ""))
        self.assertFalse(await self.store.finish_parse(job.id, "p", job.token, 1, ""))
        self.assertIsNone(await self.store.claim_parse("p", 60))
        self.assertEqual(await self.store.parse_counts(), {})
        again = await self._task(self.store.claim("w", 60))
        await self.store.finish(again.id, "w", DOWNLOADED, 10, "new", token=again.claim)
        requeued = await self.store.claim_parse("p", 60)
        self.assertEqual(
            (requeued.id, requeued.sha256, requeued.revision) if requeued else None, (again.id, "new", 1)
        )

    async def test_retiredLeavesParseQueue(self) -> None:
        """
        A retired file leaves the parse queue; brought back, downloaded as
        it was, it is queued again.
        """
        task = await self._downloaded(request("a", 1))
        await self.store.retire({task.id})
        self.assertEqual(
            ((await self._task(self.store.get(task.id))).parse, await self.store.parse_counts()), ("", {})
        )
        await self.store.create([request("a", 1)])
        self.assertEqual((await self._task(self.store.get(task.id))).parse, QUEUED)

    async def test_requeueParse(self) -> None:
        """
        Requeueing puts every downloaded file of a report back in the
        queue (a reparse), or only those never queued; files queued
        already keep their place and are not counted.
        """
        from harbour.store import parse_queue

        self.patch(parse_queue, "REQUEUE_BATCH", 2)
        first = await self._parse_job(1)
        await self.store.finish_parse(first.id, "p", first.token, 3, "")
        second = await self._parse_job(2)
        await self._downloaded(request("a", 3))
        await self._downloaded(request("b", 1))
        self.assertEqual(await self.store.requeue_parse("a", only_unqueued=True), 0)
        self.assertEqual(await self.store.requeue_parse("a", only_unqueued=False), 2)
        self.assertEqual(
            await self.store.parse_counts(),
            {
                "a": {QUEUED: 3, PARSING: 0, PARSED: 0, UNPARSABLE: 0},
                "b": {QUEUED: 1, PARSING: 0, PARSED: 0, UNPARSABLE: 0},
            },
        )
        self.assertFalse(await self.store.finish_parse(second.id, "p", second.token, 1, ""))
        self.assertEqual(await self.store.requeue_parse(None, only_unqueued=False), 0)

    async def _claimed_by(self, storage: str) -> list[str]:
        """
        Claim every parse due for a claimer of C{storage}.

        @return: The files claimed, in order.
        """
        claimed = []
        while (job := await self.store.claim_parse("p", 60, storage)) is not None:
            claimed.append(job.filename)
        return claimed

    async def test_parsedWhereDownloaded(self) -> None:
        """
        A download records the storage its file went to, and its parse is
        claimed only by a claimer of that storage; a file recorded without
        a storage (before storages were) is claimed by any.  A claimer
        takes the oldest due first, of its storage's or the others.
        """
        for day, storage in ((1, "here"), (2, "there"), (3, ""), (4, "here"), (5, "")):
            await self._downloaded(request("a", day), storage)
            self.clock.advance(1)
        self.assertEqual((await self._task(self.store.get(task_id("a/2025-01-01.zip")))).storage, "here")
        self.assertEqual(await self._claimed_by("here"), [f"a/2025-01-0{day}.zip" for day in (1, 3, 4, 5)])
        self.assertEqual(await self._claimed_by("elsewhere"), [])
        self.assertEqual(await self._claimed_by(""), [])
        self.assertEqual(await self._claimed_by("there"), ["a/2025-01-02.zip"])

    async def test_parseStaysWithStorage(self) -> None:
        """
        However a file comes to be queued again (given back, its lease
        swept, queued again, brought back after its window was retired,
        its tables dropped meanwhile), only a claimer of its storage takes
        it; downloaded again into
        another storage, it follows the new one.
        """
        task = await self._downloaded(request("a", 1), "here")

        async def only_here() -> ParseJob:
            self.assertIsNone(await self.store.claim_parse("p", 60, "there"))
            job = await self.store.claim_parse("p", 5, "here")
            if job is None:
                self.fail("not queued for its storage")
            return job

        job = await only_here()
        await self.store.release_parse(job.id, "p", job.token, 0, "disk full")
        await only_here()
        self.clock.advance(5)
        await self.store.sweep()
        job = await only_here()
        await self.store.finish_parse(job.id, "p", job.token, 1, "")
        await self.store.requeue_parse(None, only_unqueued=False)
        await only_here()
        await self.store.retire_with_files({task.id})
        listed = await self.store.retired_tables(10)
        await self.store.create([request("a", 1)])
        await only_here()
        # Its tables were dropped after it was parsed again: queued again.
        await self.store.forget_retired_tables(listed.entries, listed.dropped)
        await only_here()
        self.clock.advance(10)
        await self.store.revise([(task.id, self.clock.seconds() - 1, "2")])
        again = await self._task(self.store.claim("w", 60))
        await self.store.finish(again.id, "w", DOWNLOADED, 10, "new", token=again.claim, storage="there")
        self.assertEqual(await self._claimed_by("here"), [])
        self.assertEqual(await self._claimed_by("there"), [task.filename])

    async def test_storageNamesChecked(self) -> None:
        """
        A storage's name ends a key's name: one that is not letters,
        digits, C{-} and C{_}, at most 64 of them, is refused, and nothing
        changes.
        """
        from harbour.errors import StoreRefused

        await self.store.create([request("a", 1)])
        task = await self._task(self.store.claim("w", 60))
        for bad in ("a b", "x" * 65, "q:1"):
            with self.assertRaises(ValueError):
                await self.store.finish(task.id, "w", DOWNLOADED, 10, "ab", storage=bad)
            with self.assertRaises(StoreRefused):
                await self.store.claim_parse("p", 60, bad)
        self.assertEqual((await self._task(self.store.get(task.id))).state, DOWNLOADING)
        await self.store.finish(task.id, "w", DOWNLOADED, 10, "ab", storage="A-z_0" * 12)
        self.assertEqual(await self._claimed_by("A-z_0" * 12), [task.filename])


class RetirementTests(SynchronousTestCase):
    """
    L{Retirement} validates when built.
    """

    def test_retirementValidated(self) -> None:
        """
        A L{Retirement} is a count and (report, filename) pairs.
        """
        for count, files in ((-1, ()), (0, [("a", "a/1.zip")]), (0, (("a",),)), (0, (("a", ""),))):
            with self.assertRaises(ValueError):
                Retirement(count, files)  # type: ignore[arg-type]


class CompletionTests(SynchronousTestCase):
    """
    L{completion} counts what is done of the windows asked for.
    """

    def test_retiredNotAsked(self) -> None:
        """
        Retired windows are not asked for: a report whose every window
        asked for is done is done, however many it retired.
        """
        states = {DOWNLOADED: 14, EMPTY: 1, FAILED: 1, RETIRED: 5}
        self.assertEqual(completion(states), (16, 16))
        self.assertEqual(completion({PENDING: 3, DOWNLOADING: 1, DOWNLOADED: 2}), (2, 6))
        self.assertEqual(completion({}), (0, 0))


class OutcomeTests(SynchronousTestCase):
    """
    L{Outcome} validates when built.
    """

    def test_outcomeValidated(self) -> None:
        """
        An outcome's state is a final one, and its size not negative.
        """
        with self.assertRaises(ValueError):
            Outcome("id", "w", PENDING)
        with self.assertRaises(ValueError):
            Outcome("id", "w", DOWNLOADED, bytes=-1)
        self.assertEqual(Outcome("id", "w", FAILED).token, None)


class AwayRedis:
    """
    A Redis connection whose every command fails: the store is away.
    """

    prefix = "{harbour}:"

    def execute(self, *args: object) -> Deferred[Any]:
        """
        Fail with L{StoreUnavailable}.
        """
        return fail(StoreUnavailable("not connected"))


class OutageTests(SynchronousTestCase):
    """
    Reads made of several commands fail during an outage as one command
    would: with L{StoreUnavailable} itself, the other failures consumed.
    """

    def test_tasks(self) -> None:
        """
        L{RedisTaskStore.tasks} fails with L{StoreUnavailable} (not
        L{twisted.internet.defer.FirstError}, which the control port
        cannot name), and leaves no failure unhandled.
        """
        store = RedisTaskStore(cast(IRedis, AwayRedis()), Clock())
        self.failureResultOf(store.tasks(FAILED, None, 0, 10), StoreUnavailable)
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_answers(self) -> None:
        """
        L{answers} gives every reply in order, or the first failure itself.
        """
        self.assertEqual(self.successResultOf(answers([succeed(1), succeed(2)])), [1, 2])
        first = self.failureResultOf(
            answers([succeed(1), fail(StoreUnavailable("away")), fail(ValueError("later"))]), StoreUnavailable
        )
        self.assertEqual(str(first.value), "away")
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])


class MemoryTaskStoreTests(TaskStoreBehaviourMixin, TestCase):
    """
    The behaviour suite against L{MemoryTaskStore}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = MemoryTaskStore(self.clock)

    async def _create_meanwhile(
        self, requests: list[ReportURL], meanwhile: Callable[[], Awaitable[object]]
    ) -> dict[str, int]:
        """
        This store's create reads and writes in one step: another call can
        come only before it (or after).
        """
        await meanwhile()
        return await self.store.create(requests)


class PrivateRedisStoreCase(TestCase):
    """
    A test of L{RedisTaskStore} on a private redis-server, following a
    test's clock.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        The store, its Redis and its clock.
        """
        self.redis = await private_redis(self)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = RedisTaskStore(self.redis, self.clock, self.redis.prefix)


# The suite knows its store by its interface, the base by its class.
class RedisTaskStoreTests(TaskStoreBehaviourMixin, PrivateRedisStoreCase):  # type: ignore[misc]
    """
    The behaviour suite against L{RedisTaskStore} on a private redis-server.
    """

    async def _create_meanwhile(
        self, requests: list[ReportURL], meanwhile: Callable[[], Awaitable[object]]
    ) -> dict[str, int]:
        """
        This store's create reads the tasks asked for in one script, then
        writes in others: another call runs just after that read.
        """
        from harbour.store import tasks

        store = cast(RedisTaskStore, self.store)
        run, pending = store._run, [meanwhile]

        async def read_then_meanwhile(script: str, *args: object) -> object:
            reply = await run(script, *args)
            if script == tasks.URLS and pending:
                await pending.pop()()
            return reply

        self.patch(
            store, "_run", lambda script, *args: Deferred.fromCoroutine(read_then_meanwhile(script, *args))
        )
        return await store.create(requests)

    async def test_redefinedMeanwhileLeft(self) -> None:
        """
        A task whose request another create changed after this one read it
        is left as that create made it: what to do was decided from the
        request read, and the next create decides again from the new one.
        A downloaded window whose new request is fetched meanwhile is not
        fetched a second time for the request this create read.
        """
        original = request("a", 1)
        task = await self._downloaded(original)
        ours, theirs = (attr.evolve(original, url=original.url + extra) for extra in ("&x=1", "&x=2"))

        async def redefine_and_fetch() -> None:
            await self.store.create([theirs])
            again = await self._task(self.store.claim("w", 60))
            self.assertTrue(await self.store.finish(again.id, "w", DOWNLOADED, 10, "new", token=again.claim))

        self.assertEqual(await self._create_meanwhile([ours], redefine_and_fetch), {})
        again = await self._task(self.store.get(task.id))
        self.assertEqual(
            (again.state, again.url, again.revision, again.sha256), (DOWNLOADED, theirs.url, 1, "new")
        )


class RedisSweepTests(PrivateRedisStoreCase):
    """
    L{RedisTaskStore.sweep} returns a bounded number of leases per script.
    """

    async def test_everyExpiredLeaseSwept(self) -> None:
        """
        One sweep returns every expired lease, of downloads and of parses,
        even more than one script returns of each.
        """
        from harbour.store.tasks import SWEEP_BATCH

        more = SWEEP_BATCH + 1
        first = datetime.datetime(2020, 1, 1, tzinfo=UTC)
        requests = []
        for day in range(2 * more):
            start = first + datetime.timedelta(days=day)
            requests.append(
                ReportURL(f"http://oasis/a?d={day}", f"a/{start:%Y-%m-%d}.zip", "a", start, start + DAY)
            )
        await self.store.create(requests)
        parsed = await self.store.claim_many("w", 60, more)
        await self.store.finish_many([Outcome(t.id, "w", DOWNLOADED, 1, "h", token=t.claim) for t in parsed])
        for ignored in range(more):
            await self.store.claim_parse("p", 60)
        await self.store.claim_many("w", 60, more)
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: more, DOWNLOADING: more}})
        self.clock.advance(60)
        self.assertEqual(await self.store.sweep(), 2 * more)
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADED: more, PENDING: more}})
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: more, PARSING: 0, PARSED: 0, UNPARSABLE: 0}}
        )
        self.assertEqual(await self.store.sweep(), 0)


class RedisRequeueTests(TestCase):
    """
    L{RedisTaskStore.requeue_parse} walks the downloaded tasks in steps,
    one script each, while other scripts run between the steps.
    """

    async def test_taskLeavingBetweenSteps(self) -> None:
        """
        A downloaded task revised (so no longer downloaded) between two
        steps of a reparse makes no other one missed: every task still
        downloaded ends queued.
        """
        from harbour.store import parse_queue

        redis = await private_redis(self)
        # A listing this small would be answered whole by one step: make
        # Redis keep it as a skip list, which ZSCAN walks COUNT at a time.
        await redis.execute("CONFIG", "SET", "zset-max-ziplist-entries", "0")
        clock = Clock()
        clock.advance(1_700_000_000)
        store = RedisTaskStore(redis, clock, redis.prefix)
        await store.create([request("a", day) for day in range(1, 10)])
        for ignored in range(9):
            task = await store.claim("w", 60)
            assert task is not None
            await store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
            job = await store.claim_parse("p", 60)
            assert job is not None
            await store.finish_parse(job.id, "p", job.token, 1, "")
        self.patch(parse_queue, "REQUEUE_BATCH", 3)
        newest = task_id(request("a", 9).filename)
        steps = []
        run = store._run

        async def step_then_revise(script: str, *args: object) -> object:
            reply = await run(script, *args)
            if script == parse_queue.REQUEUE_PARSE:
                steps.append(reply)
                if len(steps) == 1:
                    await store.revise([(newest, clock.seconds() + 1, 2)])
            return reply

        self.patch(
            store, "_run", lambda script, *args: Deferred.fromCoroutine(step_then_revise(script, *args))
        )
        await store.requeue_parse(None, only_unqueued=False)
        downloaded, total = await store.tasks(DOWNLOADED, None, 0, 100)
        self.assertEqual(
            (total, {t.filename: t.parse for t in downloaded}),
            (8, {f"a/2025-01-0{day}.zip": QUEUED for day in range(1, 9)}),
        )
        self.assertGreater(len(steps), 1)


class RedisLostHashTests(PrivateRedisStoreCase):
    """
    A task whose hash is gone from Redis (evicted by a Redis that evicts
    keys, which the store refuses at start, or deleted by hand) strands no
    other task, and is made anew when asked for again.
    """

    async def lose(self, filename: str) -> None:
        """
        Delete the hash of the task whose file is C{filename}, as an
        eviction would.
        """
        await self.redis.execute("DEL", self.redis.prefix + "t:" + task_id(filename))

    async def queued(self) -> dict[str, list[str]]:
        """
        @return: The ids in the queues of pending tasks, by queue.
        """
        prefix = self.redis.prefix
        return {
            name: await self.redis.execute("ZRANGE", prefix + name, 0, -1) for name in ("ready", "delayed")
        }

    async def test_claimSkipsLostHash(self) -> None:
        """
        A claim meeting a due id whose hash is gone drops it and claims
        the next tasks in its place; every other task is claimed in turn,
        none left out of the queues.
        """
        await self.store.create([request("a", day) for day in range(1, 6)])
        await self.lose(request("a", 5).filename)
        claimed = await self.store.claim_many("w", 60, 3)
        self.assertEqual([t.filename for t in claimed], [f"a/2025-01-0{day}.zip" for day in (4, 3, 2)])
        [last] = await self.store.claim_many("w", 60, 3)
        self.assertEqual(last.filename, "a/2025-01-01.zip")
        self.assertEqual(await self.queued(), {"ready": [], "delayed": []})

    async def test_delayedLostHashDropped(self) -> None:
        """
        A delayed id whose hash is gone is dropped once due, not moved to
        the due queue, and the claim goes on.
        """
        await self.store.create([request("a", 1), request("a", 2)])
        task = await self.store.claim("w", 60)
        assert task is not None
        self.assertTrue(await self.store.release(task.id, "w", 30.0, "HTTP 503", token=task.claim))
        await self.lose(task.filename)
        self.clock.advance(31)
        self.assertEqual([t.filename for t in await self.store.claim_many("w", 60, 5)], ["a/2025-01-01.zip"])
        self.assertEqual(await self.queued(), {"ready": [], "delayed": []})

    async def test_lostHashCreatedAgain(self) -> None:
        """
        A task whose hash is gone is created anew when asked for again,
        pending, and what was left of it (its listing and count as
        downloaded) is forgotten.
        """
        requests = [request("a", 1), request("a", 2)]
        await self.store.create(requests)
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        await self.lose(task.filename)
        self.assertEqual(await self.store.create(requests), {"a": 1})
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 2}})
        self.assertEqual((await self.store.tasks(DOWNLOADED, None, 0, 10))[1], 0)
        again = await self.store.claim("w", 60)
        assert again is not None
        self.assertEqual((again.id, again.state, again.attempts, again.claim), (task.id, DOWNLOADING, 1, 1))

    async def test_lostHashParseCountRecounted(self) -> None:
        """
        The parse count of a downloaded task whose hash is gone, which its
        task made anew cannot tell, is put right by a recount.
        """
        await self.store.create([request("a", 1)])
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        await self.lose(task.filename)
        self.assertIsNone(await self.store.claim_parse("p", 60))
        self.assertEqual(await self.store.create([request("a", 1)]), {"a": 1})
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 1, PARSING: 0, PARSED: 0, UNPARSABLE: 0}}
        )
        self.assertEqual(await self.store.recount(), {"a": {"parse queued": ("1", 0)}})
        self.assertEqual(
            (await self.store.parse_counts(), await self.store.counts()), ({}, {"a": {PENDING: 1}})
        )

    async def test_retrySkipsLostHash(self) -> None:
        """
        A retry meeting a failed task whose hash is gone drops it from the
        listings, puts the others back, and fails no later retry.
        """
        await self.store.create([request("a", day) for day in (1, 2)])
        for ignored in range(2):
            task = await self.store.claim("w", 60)
            assert task is not None
            await self.store.finish(task.id, "w", FAILED, error="HTTP 400", token=task.claim)
        await self.lose(request("a", 2).filename)
        self.assertEqual(await self.store.retry(FAILED, "a"), 1)
        self.assertEqual(await self.store.retry(FAILED, None), 0)
        self.assertEqual((await self.store.tasks(FAILED, None, 0, 10))[1], 0)
        self.assertEqual((await self.store.tasks(PENDING, None, 0, 10))[1], 1)

    async def test_requeueParseSkipsLostHash(self) -> None:
        """
        Queueing every downloaded file to be parsed again skips a task
        whose hash is gone, drops it from the listing and writes no hash
        of parse fields alone in its place.
        """
        await self.store.create([request("a", day) for day in (1, 2)])
        for ignored in range(2):
            task = await self.store.claim("w", 60)
            assert task is not None
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        lost = request("a", 2).filename
        await self.lose(lost)
        # The other is queued already, from its download.
        self.assertEqual(await self.store.requeue_parse(None, only_unqueued=False), 0)
        self.assertEqual(await self.redis.execute("EXISTS", self.redis.prefix + "t:" + task_id(lost)), 0)
        downloaded, total = await self.store.tasks(DOWNLOADED, None, 0, 10)
        self.assertEqual((total, [t.filename for t in downloaded]), (1, ["a/2025-01-01.zip"]))


class RedisForeignKeyTests(PrivateRedisStoreCase):
    """
    A key under the store's prefix of another type than the store writes
    there (another program's) makes a script fail; the counts written first
    fail it before it writes anything, and a recount puts right what such
    a failure left wrong.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        The store, and the key of report C{a}'s counts.
        """
        await super().setUp()
        self.counts = self.redis.prefix + "c:a"

    async def test_createWritesNothing(self) -> None:
        """
        Creation failing on report C{a}'s counts creates nothing of its
        task; once the key is gone, the task is created and counted.
        """
        await self.redis.execute("SET", self.counts, "another program's")
        with self.assertRaises(StoreUnavailable):
            await self.store.create([request("a", 1)])
        self.assertEqual(
            (await self.store.ids(), (await self.store.tasks(PENDING, None, 0, 10))[1]), (set(), 0)
        )
        await self.redis.execute("DEL", self.counts)
        self.assertEqual(await self.store.create([request("a", 1)]), {"a": 1})
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 1}})

    async def test_claimWritesNothing(self) -> None:
        """
        A claim failing on report C{a}'s counts moves nothing: once the key
        is gone and the counts recounted, the task is claimed and counted
        once.
        """
        await self.store.create([request("a", 1)])
        await self.redis.execute("DEL", self.counts)
        await self.redis.execute("SET", self.counts, "another program's")
        with self.assertRaises(StoreUnavailable):
            await self.store.claim("w", 60)
        await self.redis.execute("DEL", self.counts)
        self.assertEqual(await self.store.recount(), {"a": {PENDING: ("0", 1)}})
        task = await self.store.claim("w", 60)
        assert task is not None
        self.assertEqual(await self.store.counts(), {"a": {DOWNLOADING: 1}})
        self.assertEqual([t.id for t in (await self.store.tasks(DOWNLOADING, "a", 0, 10))[0]], [task.id])

    async def test_recount(self) -> None:
        """
        A recount sets each report's wrong counts to its listings' sizes,
        saying what they were; a second finds nothing wrong.
        """
        await self.store.create([request("a", 1), request("a", 2), request("b", 1)])
        await self.redis.execute("HINCRBY", self.counts, PENDING, 5)
        await self.redis.execute("HSET", self.redis.prefix + "c:b", FAILED, 2)
        self.assertEqual(await self.store.recount(), {"a": {PENDING: ("7", 2)}, "b": {FAILED: ("2", 0)}})
        self.assertEqual(await self.store.counts(), {"a": {PENDING: 2}, "b": {PENDING: 1}})
        self.assertEqual(await self.store.recount(), {})


@implementer(IRedis)
@attr.s(auto_attribs=True)
class SteppingRedis:
    """
    A Redis that runs C{meanwhile} (another client's calls) once, just
    after the first step of a parse recount.

    @ivar steps: The replies of the parse recount's steps.
    """

    redis: IRedis
    meanwhile: Callable[[], Awaitable[object]]
    steps: list[object] = attr.ib(factory=list)

    def execute(self, *args: object) -> Deferred[Any]:
        """
        Ask the Redis.
        """
        return self.redis.execute(*args)

    def eval(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        Run C{script} on the Redis, then C{meanwhile} if it is the first
        step of a parse recount.
        """
        from harbour.store.recount import RECOUNT_PARSE

        async def step() -> object:
            reply = await self.redis.eval(script, keys, args)
            if script == RECOUNT_PARSE:
                self.steps.append(reply)
                if len(self.steps) == 1:
                    await self.meanwhile()
            return reply

        return Deferred.fromCoroutine(step())


class RedisParseRecountTests(PrivateRedisStoreCase):
    """
    A recount sets each report's parse counts to its tasks' parse states,
    walking its downloaded tasks in steps while other calls move them.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A store whose downloaded tasks of report C{a} are walked a few at a
        time: a listing this small would be answered whole by one step, so
        Redis keeps it as a skip list, which ZSCAN walks COUNT at a time.
        """
        from harbour.store import recount

        await super().setUp()
        await self.redis.execute("CONFIG", "SET", "zset-max-ziplist-entries", "0")
        self.patch(recount, "RECOUNT_BATCH", 2)
        self.counts = self.redis.prefix + "pc:a"
        self.tally = self.redis.prefix + "pcr:a"

    async def parse_states(self) -> dict[str, dict[str, int]]:
        """
        @return: Report C{a}'s parse counts as its tasks' parse states say
            they should be.
        """
        downloaded, ignored = await self.store.tasks(DOWNLOADED, "a", 0, 100)
        states = dict.fromkeys((QUEUED, PARSING, PARSED, UNPARSABLE), 0)
        for task in downloaded:
            states[task.parse] += 1
        return {"a": states}

    async def test_recountWhileTasksMove(self) -> None:
        """
        Parse counts left wrong by hand, and the tally of a recount cut off
        before, are set to the tasks' parse states by a recount in steps,
        though between its steps the tasks its first step met are revised
        (no longer downloaded), parses are claimed and ended, and a file
        is downloaded; the tally is gone after, and a second recount finds
        nothing wrong.
        """
        from harbour.store.recount import recount

        # Enough tasks that the first step is never the last.
        await self.store.create([request("a", day) for day in range(1, 17)])
        for ignored in range(16):
            task = await self.store.claim("w", 60)
            assert task is not None
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        jobs = [await self.store.claim_parse("p", 60) for ignored in range(4)]
        for job, error in zip(jobs, ["", "", "no CSV member"]):
            assert job is not None
            await self.store.finish_parse(job.id, "p", job.token, 3, error)
        before = await self.parse_states()
        self.assertEqual(before, {"a": {QUEUED: 12, PARSING: 1, PARSED: 2, UNPARSABLE: 1}})
        self.assertEqual(await self.store.parse_counts(), before)
        await self.redis.execute("HINCRBY", self.counts, PARSED, 5)
        await self.redis.execute("HSET", self.counts, UNPARSABLE, 3)
        await self.redis.execute("HSET", self.tally, QUEUED, 9, "t:" + task_id("a/2025-01-01.zip"), 1)

        async def meanwhile() -> None:
            fields = await self.redis.execute("HKEYS", self.tally)
            met = [field[2:] for field in fields if field.startswith("t:")]
            self.assertTrue(met)
            parsing = jobs[3]
            assert parsing is not None
            self.assertTrue(await self.store.finish_parse(parsing.id, "p", parsing.token, 1, "bad"))
            job = await self.store.claim_parse("p", 60)
            assert job is not None
            self.assertTrue(await self.store.finish_parse(job.id, "p", job.token, 1, ""))
            at = self.clock.seconds() + 1
            self.assertEqual(len(await self.store.revise([(i, at, 2) for i in met])), len(met))
            await self.store.create([request("a", 17)])
            task = await self.store.claim("w", 60)
            assert task is not None
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
            await self.store.claim_parse("p", 60)

        stepping = SteppingRedis(self.redis, meanwhile)
        wrong = await recount(stepping, self.redis.prefix)
        # Tasks moved between steps: how many steps a scan takes depends on
        # Redis's hashing of the ids, seeded afresh by each redis-server.
        self.assertGreater(len(stepping.steps), 1)
        after = (await self.parse_states())["a"]
        self.assertEqual(await self.store.parse_counts(), {"a": after})
        drift = {PARSED: 5, UNPARSABLE: 2}
        self.assertEqual(
            wrong,
            {"a": {f"parse {state}": (str(after[state] + n), after[state]) for state, n in drift.items()}},
        )
        self.assertEqual(await self.redis.execute("EXISTS", self.tally), 0)
        self.assertEqual(await self.store.recount(), {})

    async def test_tallyGoneGivesUp(self) -> None:
        """
        A step of a parse recount that finds its tally gone before the scan
        is done (expired, or evicted) ends the scan, changing no parse
        count and leaving no tally; the next recount puts them right.
        """
        from harbour.store.recount import RECOUNT_PARSE
        from harbour.store.tasks import FIXED_KEYS

        await self.store.create([request("a", day) for day in range(1, 6)])
        for ignored in range(5):
            task = await self.store.claim("w", 60)
            assert task is not None
            await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        await self.redis.execute("HSET", self.counts, QUEUED, 7)
        keys = [self.redis.prefix + name for name in FIXED_KEYS]
        await self.store.claim_parse("p", 60)
        # A step after the first (its cursor is not 0), whose tally is gone.
        step = [self.redis.prefix, "", "a", "1", "2"]
        self.assertEqual(await self.redis.eval(RECOUNT_PARSE, keys, step), ["0", []])
        self.assertEqual(await self.redis.execute("HGET", self.counts, QUEUED), "6")
        self.assertEqual(await self.redis.execute("EXISTS", self.tally), 0)
        self.assertEqual(await self.store.recount(), {"a": {"parse queued": ("6", 4)}})
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 4, PARSING: 1, PARSED: 0, UNPARSABLE: 0}}
        )

    async def test_foreignTallyStopsNoMove(self) -> None:
        """
        Another program's key where a recount keeps its tally, of another
        type, fails no parse transition, and a recount replaces it.
        """
        await self.store.create([request("a", 1)])
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.redis.execute("SET", self.tally, "another program's")
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        self.assertIsNotNone(await self.store.claim_parse("p", 60))
        self.assertEqual(await self.store.recount(), {})
        self.assertEqual(await self.store.parse_counts(), await self.parse_states())
        self.assertEqual(await self.redis.execute("EXISTS", self.tally), 0)


class RedisTimeTests(TestCase):
    """
    L{RedisTaskStore} given a reactor (not a test's L{Clock}) takes every
    time its scripts compare from Redis's C{TIME}: the caller's clock is
    not read, so hosts need not agree on theirs.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A store on a private redis-server whose caller's clock is far
        behind Redis's.
        """
        self.redis = await private_redis(self)
        self.far_behind = Clock()
        self.store = RedisTaskStore(self.redis, self.far_behind, self.redis.prefix, server_time=True)

    async def redis_time(self) -> float:
        """
        @return: Redis's C{TIME}.
        """
        seconds, micros = await self.redis.execute("TIME")
        return int(seconds) + int(micros) / 1_000_000

    def test_reactorFollowsRedis(self) -> None:
        """
        By default a store follows Redis's clock unless given a L{Clock}.
        """
        from twisted.internet import reactor

        self.assertTrue(RedisTaskStore(self.redis, reactor, self.redis.prefix).server_time)
        self.assertFalse(RedisTaskStore(self.redis, Clock(), self.redis.prefix).server_time)

    async def test_claimOnRedisTime(self) -> None:
        """
        A claim's times are Redis's, between the C{TIME} read before and
        after it, whatever the caller's clock says.
        """
        await self.store.create([request("a", 1)])
        before = await self.redis_time()
        task = await self.store.claim("w", 60)
        after = await self.redis_time()
        assert task is not None
        self.assertTrue(before <= task.fetched <= after, (before, task.fetched, after))
        self.assertEqual(task.fetched, task.modified)

    async def test_leasesOnRedisTime(self) -> None:
        """
        A lease of no seconds has expired by the next sweep; one of an hour
        has not, though the caller's clock is decades behind.
        """
        await self.store.create([request("a", 1), request("a", 2)])
        lost = await self.store.claim("w", 0)
        kept = await self.store.claim("w", 3600)
        assert lost is not None and kept is not None
        self.assertEqual(await self.store.sweep(), 1)
        self.assertEqual([t.id for t in (await self.store.tasks(DOWNLOADING, None, 0, 10))[0]], [kept.id])
        self.assertTrue(await self.store.renew(kept.id, "w", 0, kept.claim))
        self.assertEqual(await self.store.sweep(), 1)

    async def test_delayOnRedisTime(self) -> None:
        """
        A task released for an hour is not due, one released with no delay
        is; its C{not_before} is an hour after Redis's time.
        """
        await self.store.create([request("a", 1)])
        task = await self.store.claim("w", 60)
        assert task is not None
        before = await self.redis_time()
        self.assertTrue(await self.store.release(task.id, "w", error="HTTP 503", delay=3600.0))
        after = await self.redis_time()
        released = await self.store.get(task.id)
        assert released is not None
        self.assertTrue(before + 3600 <= released.not_before <= after + 3600)
        self.assertIsNone(await self.store.claim("w", 60))

    async def test_purgeOnRedisTime(self) -> None:
        """
        A purge reckons how long ago a task was retired on Redis's clock,
        which retirement is stamped with: a task retired just now is
        forgotten by a purge of those retired no time ago, not by one of
        those retired an hour ago, though the caller's clock is decades
        behind.
        """
        await self.store.create([request("a", 1)])
        self.assertEqual(await self.store.retire({task_id(request("a", 1).filename)}), 1)
        self.assertEqual(await self.store.purge(3600), 0)
        self.assertEqual(await self.store.purge(0), 1)

    async def test_parseLeasesOnRedisTime(self) -> None:
        """
        A parse lease of no seconds has expired by the next sweep; a parse
        released for an hour is not due.
        """
        await self.store.create([request("a", 1)])
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        job = await self.store.claim_parse("p", 0)
        assert job is not None
        self.assertEqual(await self.store.sweep(), 1)
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.assertTrue(await self.store.release_parse(job.id, "p", job.token, 3600, "disk full"))
        self.assertIsNone(await self.store.claim_parse("p", 60))

    async def test_requeueNeverQueued(self) -> None:
        """
        A file downloaded before the parse queue existed (its task has no
        C{parse}) is queued by a requeue of those never queued, once.
        """
        await self.store.create([request("a", 1)])
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        prefix = self.redis.prefix
        await self.redis.execute("HDEL", prefix + "t:" + task.id, "parse", "parse_error", "rows")
        await self.redis.execute("DEL", prefix + "parse:queue", prefix + "pc:a")
        self.assertEqual(await self.store.parse_counts(), {})
        self.assertEqual(await self.store.requeue_parse(None, only_unqueued=True), 1)
        self.assertEqual(await self.store.requeue_parse(None, only_unqueued=True), 0)
        self.assertEqual(
            await self.store.parse_counts(), {"a": {QUEUED: 1, PARSING: 0, PARSED: 0, UNPARSABLE: 0}}
        )
        job = await self.store.claim_parse("p", 60)
        self.assertEqual(job.id if job else None, task.id)

    async def test_keysShareOneSlot(self) -> None:
        """
        Every key the store writes carries the prefix's hash tag (and the
        tag comes first), so Redis puts them all in one Cluster slot.
        """
        await self.store.create([request("a", 1), request("b", 1), request("a", 2)])
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim)
        await self.store.claim_parse("p", 60)
        # A storage's parse queue, left queued.
        task = await self.store.claim("w", 60)
        assert task is not None
        await self.store.finish(task.id, "w", DOWNLOADED, 1, "h", token=task.claim, storage="s")
        keys = await self.redis.execute("KEYS", "*")
        self.assertIn(self.store.prefix + "parse:queue:s", keys)
        # Redis Cluster hashes only what is between the first { and the
        # first } after it.
        tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
        self.assertEqual((tags, len(keys) > 10), ({"t"}, True), keys)


class RedisScriptArgumentTests(PrivateRedisStoreCase):
    """
    Every write script of L{RedisTaskStore} checks its arguments before it
    writes anything: Redis keeps what a script wrote before it failed, so
    a bad argument found halfway would leave the store half changed (a
    task claimed with no lease, say).  Each bad call fails and changes no
    key.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        A store holding a pending task, one being downloaded, one downloaded
        and being parsed, and one retired with its tables to drop.
        """
        await super().setUp()
        await self.store.create([request("a", day) for day in range(1, 5)])
        parsed = await self.store.claim("w", 60)
        assert parsed is not None
        await self.store.finish(parsed.id, "w", DOWNLOADED, 1, "h", token=parsed.claim)
        job = await self.store.claim_parse("p", 60)
        assert job is not None
        self.claimed = await self.store.claim("w", 60)
        assert self.claimed is not None
        await self.store.retire([task_id(request("a", 1).filename)])

    async def contents(self) -> dict[str, object]:
        """
        @return: Every key under the store's prefix and what it holds.
        """
        found: dict[str, object] = {}
        for key in await self.redis.execute("KEYS", self.redis.prefix + "*"):
            kind = await self.redis.execute("TYPE", key)
            reading = {
                "hash": ("HGETALL",),
                "zset": ("ZRANGE", 0, -1, "WITHSCORES"),
                "set": ("SMEMBERS",),
                "list": ("LRANGE", 0, -1),
                "string": ("GET",),
            }[kind]
            value = await self.redis.execute(reading[0], key, *reading[1:])
            found[key] = sorted(value) if kind == "set" else value
        return found

    async def assertRefused(self, script: str, *args: object, clock: str | None = None) -> None:
        """
        Run C{script} with C{args} (after the prefix and the clock, the
        store's own unless C{clock} is given) and check that it fails,
        with L{StoreRefused}, saying why, that no key changed, and that no
        outage was counted.
        """
        from harbour.errors import StoreRefused
        from harbour.store.tasks import FIXED_KEYS

        before = await self.contents()
        keys = [self.redis.prefix + name for name in FIXED_KEYS]
        now = repr(self.clock.seconds()) if clock is None else clock
        with self.assertRaises(StoreRefused) as caught:
            await self.redis.eval(script, keys, [self.redis.prefix, now, *args])
        self.assertTrue(str(caught.exception).startswith("harbour: bad script argument: "))
        self.assertEqual(await self.contents(), before)
        # Redis answered: a refusal is the caller's mistake, not an outage.
        self.assertEqual(self.redis.outages, 0)

    async def test_downloadScripts(self) -> None:
        """
        Claims, renewals, releases, ends of claims and sweeps refuse a
        number that is not one (C{nan}, C{inf}, a word), a count that is
        not whole (or none), and a state they do not move to, before moving
        any task.
        """
        from harbour.store import tasks, unclaiming

        claimed = self.claimed
        assert claimed is not None
        token = str(claimed.claim)
        await self.assertRefused(tasks.CLAIM_MANY, "nan", "w", "2")
        await self.assertRefused(tasks.CLAIM_MANY, "60", "w", "1.5")
        await self.assertRefused(tasks.CLAIM_MANY, "60", "w", "1e20")
        await self.assertRefused(tasks.CLAIM_MANY, "60", "w", "2", clock="soon")
        await self.assertRefused(unclaiming.UNCLAIM, "uploads", "w", "a nonce")
        await self.assertRefused(tasks.RENEW, claimed.id, "w", "inf", token)
        await self.assertRefused(tasks.RELEASE, claimed.id, "w", "never", "", "1", token)
        # The first end is good: it must not be made before the second is read.
        good = [claimed.id, "w", DOWNLOADED, "1", "h", "", token, "s"]
        await self.assertRefused(
            tasks.FINISH_MANY, *good, claimed.id, "w", DOWNLOADED, "nan", "h", "", token, "s"
        )
        await self.assertRefused(
            tasks.FINISH_MANY, *good, claimed.id, "w", "pending", "1", "h", "", token, "s"
        )
        await self.assertRefused(
            tasks.FINISH_MANY, *good, claimed.id, "w", DOWNLOADED, "1", "h", "", token, "a b"
        )
        await self.assertRefused(tasks.FINISH_MANY, *good, claimed.id)
        await self.assertRefused(tasks.SWEEP, str(CUT_OFF_MOST), CUT_OFF_ERROR, "0")

    async def test_taskScripts(self) -> None:
        """
        Creation, revival, redefinition, revision, retrying and purging refuse
        groups cut short, windows that are not times, and words they do
        not know, before changing any task.
        """
        from harbour.store import tasks

        new = [task_id("a/new.zip"), "http://oasis/new", "a/new.zip", "a", "1", "2"]
        await self.assertRefused(tasks.CREATE, *new, task_id("b/x.zip"), "u", "b/x.zip", "b", "soon", "2")
        await self.assertRefused(tasks.CREATE, *new, "extra")
        retired = [task_id(request("a", 1).filename), "u", request("a", 1).filename, "a", "1", "2"]
        await self.assertRefused(tasks.REVIVE, *retired, task_id("a/x.zip"))
        await self.assertRefused(tasks.REVIVE, *retired[:4], "1", "later")
        pending = task_id(request("a", 4).filename)
        redefined = [pending, "http://oasis/a", "http://oasis/b", "1", "2", "changed", "changed"]
        await self.assertRefused(tasks.REDEFINE, *redefined, pending, "u", "v", "x", "2", "", "changed")
        await self.assertRefused(tasks.REDEFINE, *redefined[:5], "", "grown")
        await self.assertRefused(tasks.REDEFINE, *redefined[:5], "grown", "changed")
        await self.assertRefused(tasks.REDEFINE, *redefined, pending)
        await self.assertRefused(tasks.REVISE, pending, "2e9", "1", pending, "nan", "2")
        await self.assertRefused(tasks.RETRY, "downloading", "", "100")
        await self.assertRefused(tasks.RETRY, "failed", "", "0")
        await self.assertRefused(tasks.PURGE, "2e9", "-1")
        await self.assertRefused(tasks.FORGET_RETIRED_TABLES, "2")
        await self.assertRefused(tasks.RETIRED_TABLES, "0")

    async def test_parseScripts(self) -> None:
        """
        The parse queue's scripts, and the parse counts' recount, refuse a
        lease, delay, row count, cursor, scan count or storage name that
        is not one.
        """
        from harbour.store import parse_queue, recount

        parsing = task_id(request("a", 1).filename)
        await self.assertRefused(parse_queue.CLAIM_PARSE, "p", "nan", "")
        await self.assertRefused(parse_queue.CLAIM_PARSE, "p", "60", "s:x")
        await self.assertRefused(parse_queue.RENEW_PARSE, parsing, "p", "1", "inf")
        await self.assertRefused(parse_queue.RELEASE_PARSE, parsing, "p", "1", "later", "")
        await self.assertRefused(parse_queue.FINISH_PARSE, parsing, "p", "1", "-3", "")
        await self.assertRefused(parse_queue.REQUEUE_PARSE, "", "0; FLUSHALL", "10", "0")
        await self.assertRefused(recount.RECOUNT_PARSE, "a", "0; FLUSHALL", "10")
        await self.assertRefused(recount.RECOUNT_PARSE, "a", "0", "0")
