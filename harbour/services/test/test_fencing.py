"""
Tests for fenced leases in L{harbour.services.attempt}: a worker whose lease
expired mid-download, while a sibling worker of the same process claimed
the task again, neither puts its file in place nor touches the sibling's.
"""

from __future__ import annotations

import datetime
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import attr
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.oasis.client import AttemptFailed, OasisClient, Transfer
from harbour.oasis.requests import ReportURL
from harbour.services import attempt
from harbour.services.activity import DownloadActivity
from harbour.services.attempt import Attempts, Lease
from harbour.services.checking import AnswerCheck
from harbour.services.commit import GroupCommit
from harbour.services.files import prepare, record_path, remove_abandoned, temporary_name
from harbour.store.memory import MemoryTaskStore
from harbour.store.outages import STORE_RETRY
from harbour.store.tasks import DOWNLOADED, DOWNLOADING, PENDING, Outcome, Task
from harbour.test.helpers import SilentHub

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
DATA = (SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip").read_bytes()
UTC = datetime.UTC
#: The instant the tests' clocks start at, and their files are aged from.
NOW = 1_750_000_000.0


@attr.s(eq=False, auto_attribs=True)
class Context:
    """
    What attempts need of their download service.
    """

    directory: Path
    owner: str = "host:1"
    rng: random.Random = attr.Factory(lambda: random.Random(1))
    settings: DownloadTopic = attr.Factory(lambda: DownloadTopic(idle_timeout=30.0))
    work: WorkTopic = attr.Factory(lambda: WorkTopic(lease_seconds=5))
    running: int = 1

    def beat(self) -> None:
        """
        Tell nobody what this worker is doing.
        """

    def storage(self, directory: Path) -> Deferred[str]:
        """
        No storage known.
        """
        return succeed("")


@attr.s(eq=False)
class FakeClient:
    """
    An OASIS client whose answers the test gives, one fetch at a time.
    """

    fetches: list[tuple[Callable[[bytes], None], Deferred[int]]] = attr.ib(factory=list)

    def fetch(self, transfer: Transfer, write: Callable[[bytes], None]) -> Deferred[int]:
        """
        Start a fetch, answered by L{answer}.
        """
        d: Deferred[int] = Deferred()
        self.fetches.append((write, d))
        return d

    def answer(self, index: int, body: bytes) -> None:
        """
        Answer fetch C{index} with C{body}.
        """
        write, d = self.fetches[index]
        write(body)
        d.callback(len(body))


@attr.s(eq=False)
class FlakyRenewals:
    """
    A task store whose renewals fail (the store is away for this worker)
    while C{away} is set.
    """

    store: MemoryTaskStore = attr.ib()
    away: bool = attr.ib(default=False)
    renewals: int = attr.ib(default=0)

    def renew(self, *args: Any, **kwargs: Any) -> Deferred[bool]:
        """
        Renew, unless away; count the tries.
        """
        self.renewals += 1
        if self.away:
            return fail(StoreUnavailable("away"))
        return self.store.renew(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def synchronously(f: Callable[..., Any], *args: object) -> Deferred[Any]:
    """
    Run C{f} at once, as a thread would.
    """
    return maybeDeferred(f, *args)


class OneTaskTestCase(SynchronousTestCase):
    """
    One task in a memory store, the answers of whose fetches the test
    gives, and the attempts of workers of one process at it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        # Temporary files are aged by their mtime against this clock: the
        # tests set the mtimes that matter.
        self.clock.advance(NOW)
        self.memory = MemoryTaskStore(self.clock)
        self.store = FlakyRenewals(self.memory)
        self.directory = Path(self.mktemp())
        self.client = FakeClient()
        start = datetime.datetime(2025, 1, 1, 8, tzinfo=UTC)
        request = ReportURL("http://oasis/a?day=1", "a/2025-01-01.zip", "a", start, start)
        self.successResultOf(self.memory.create([request]))
        self.target = self.directory / "a" / "2025-01-01.zip"

    def attempts(self, activity: DownloadActivity | None = None) -> Attempts:
        """
        A worker's attempts, sharing the store and owner.

        @param activity: The record of the downloads under way, if shared
            with other workers' (as a download service's workers share it).
        """
        return Attempts(
            Context(self.directory),
            self.clock,
            cast(Any, self.store),
            cast(OasisClient, self.client),
            Bus(),
            DownloadActivity(self.clock) if activity is None else activity,
            synchronously,
            # The clock stands for the wall clock, as the real reactor's is.
            GroupCommit(synchronously, wall=self.clock.seconds),
        )

    def claim(self) -> Task:
        """
        Claim the task as this process.
        """
        task = self.successResultOf(self.memory.claim("host:1", 5))
        assert task is not None
        return task

    def state(self) -> str:
        """
        @return: The one task's state.
        """
        [task_id] = self.successResultOf(self.memory.ids())
        task = self.successResultOf(self.memory.get(task_id))
        assert task is not None
        return task.state


class FencedLeaseTests(OneTaskTestCase):
    """
    Two workers of one process (one owner) meet over one task.
    """

    def held_commits(self, attempts: Attempts) -> list[Deferred[None]]:
        """
        Make C{attempts} commit in groups whose sync and renames wait until
        the test fires the L{Deferred} each adds to the list returned.
        """
        commits: list[Deferred[None]] = []

        def held_commit(f: Callable[..., Any], *args: object) -> Deferred[Any]:
            if getattr(f, "__name__", "") in ("_sync_and_rename", "_commit_each"):
                d: Deferred[None] = Deferred()
                commits.append(d)
                return d.addCallback(lambda ignored: f(*args))
            return maybeDeferred(f, *args)

        # The clock stands for the wall clock, as the real reactor's is.
        attempts.commits = GroupCommit(held_commit, wall=self.clock.seconds)
        return commits

    def temporaries(self) -> list[Path]:
        """
        @return: The temporary files beside the target.
        """
        return sorted(self.target.parent.glob(".*.part-*"))

    def test_leaseShortenedMidDownload(self) -> None:
        """
        A lease shortened in the settings while a download is under way
        does not make it run out between the renewals, which come at the
        pace of the lease the claim asked for: they keep asking for that
        lease, and the download lands.
        """
        attempts = self.attempts()
        attempts.context.work = WorkTopic(lease_seconds=300)
        task = self.successResultOf(self.memory.claim("host:1", 300))
        assert task is not None
        done = attempts.run(task, self.clock.seconds(), lease_seconds=300)
        attempts.context.work = WorkTopic(lease_seconds=30)
        # Swept a little after each renewal, when a 30-second lease asked
        # for then would have run out.
        self.clock.advance(100)
        for ignored in range(3):
            self.clock.advance(31)
            self.successResultOf(self.memory.sweep())
            self.clock.advance(69)
        self.client.answer(0, DATA)
        self.successResultOf(done)
        self.assertTrue(self.target.exists())
        [task_id] = self.successResultOf(self.memory.ids())
        self.assertEqual(cast(Task, self.successResultOf(self.memory.get(task_id))).state, DOWNLOADED)

    def test_leaseLostMidDownload(self) -> None:
        """
        A worker whose renewals fail long enough loses its lease; a
        sibling claims the task again (a later token) and starts its own
        download, leaving the first one's file alone.  The first, once its
        answer arrives, finds its claim gone: it commits and records
        nothing, and removes only its own file.  The second's file is the
        one that lands, and its claim is recorded.  The two downloads are
        both under way for a while, each on record until it ends.
        """
        activity = DownloadActivity(self.clock)
        first = self.claim()
        running = self.attempts(activity).run(first)
        self.assertEqual(len(self.temporaries()), 1)
        (stale_file,) = self.temporaries()
        self.assertTrue(stale_file.name.startswith(f".2025-01-01.zip.part-{first.claim}-"))
        # Written to just now, as the clock tells.
        os.utime(stale_file, (self.clock.seconds(), self.clock.seconds()))

        self.store.away = True
        self.clock.advance(6)
        self.assertEqual(self.successResultOf(self.memory.sweep()), 1)
        self.store.away = False
        second = self.claim()
        self.assertEqual(second.claim, first.claim + 1)
        finishing = self.attempts(activity).run(second)
        self.assertEqual(len(self.temporaries()), 2, "the first worker's file is untouched")
        self.assertEqual(
            sorted(f.task.claim for f in activity.in_flight.values()), [first.claim, second.claim]
        )
        self.assertTrue(stale_file.exists())

        self.client.answer(0, DATA)
        self.successResultOf(running)
        self.assertEqual([f.task.claim for f in activity.in_flight.values()], [second.claim])
        self.assertFalse(self.target.exists(), "the stale claim commits nothing")
        (live_file,) = self.temporaries()
        self.assertTrue(live_file.name.startswith(f".2025-01-01.zip.part-{second.claim}-"))
        task = self.successResultOf(self.memory.get(first.id))
        assert task is not None
        self.assertEqual((task.state, task.claim), (DOWNLOADING, second.claim))

        self.client.answer(1, DATA)
        self.successResultOf(finishing)
        self.assertEqual(self.target.read_bytes(), DATA)
        self.assertEqual(self.temporaries(), [])
        self.assertEqual(
            sorted(p.name for p in self.target.parent.iterdir()),
            sorted([self.target.name, record_path(self.target).name]),
        )
        task = self.successResultOf(self.memory.get(first.id))
        assert task is not None
        self.assertEqual(task.state, DOWNLOADED)

    def test_laterClaimCleansUp(self) -> None:
        """
        A later claim's attempt prepares its target in full: the idle
        temporary file of an earlier claim, whose worker died mid-download,
        is removed before the download starts.  (A first claim's attempt
        only opens its own file: no claim came before it.)
        """
        first = self.claim()
        stale = temporary_name(self.target, first.claim, 7)
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"partial")
        idle = self.clock.seconds() - 100
        os.utime(stale, (idle, idle))
        self.clock.advance(6)
        self.assertEqual(self.successResultOf(self.memory.sweep()), 1)
        second = self.claim()
        running = self.attempts().run(second)
        self.assertEqual(len(self.client.fetches), 1)
        self.assertFalse(stale.exists())
        self.client.answer(0, DATA)
        self.successResultOf(running)
        self.assertEqual(self.target.read_bytes(), DATA)

    def test_leaseRenewedThroughCommit(self) -> None:
        """
        The lease is renewed for as long as the attempt lasts, not only
        while bytes flow: a commit that waits past the lease keeps it.
        """
        attempts = self.attempts()
        commits = self.held_commits(attempts)
        task = self.claim()
        running = attempts.run(task)
        self.client.answer(0, DATA)
        self.assertEqual(len(commits), 1)
        for ignored in range(10):
            self.clock.advance(2)
        self.assertEqual(self.successResultOf(self.memory.sweep()), 0)
        while commits:
            commits.pop(0).callback(None)
        self.successResultOf(running)
        done = self.successResultOf(self.memory.get(task.id))
        assert done is not None
        self.assertEqual(done.state, DOWNLOADED)

    def test_noRenamePastTheLease(self) -> None:
        """
        A commit that waits past the claim's lease, which could not be
        renewed meanwhile, puts nothing in place when its turn comes: the
        claim is lost (another worker may hold the task), and nothing is
        recorded.
        """
        attempts = self.attempts()
        commits = self.held_commits(attempts)
        task = self.claim()
        running = attempts.run(task)
        self.client.answer(0, DATA)
        self.assertEqual(len(commits), 1)
        self.store.away = True
        for ignored in range(3):
            self.clock.advance(2)
        while commits:
            commits.pop(0).callback(None)
        self.successResultOf(running)
        self.assertFalse(self.target.exists())
        self.assertEqual(self.temporaries(), [])
        found = self.successResultOf(self.memory.get(task.id))
        assert found is not None
        self.assertEqual(found.state, DOWNLOADING)

    def test_renameWithinRenewedLease(self) -> None:
        """
        Renewals move the deadline on: a commit that waits past the lease
        the claim began with, while it is renewed, puts its file in place.
        """
        attempts = self.attempts()
        commits = self.held_commits(attempts)
        task = self.claim()
        running = attempts.run(task)
        self.client.answer(0, DATA)
        for ignored in range(10):
            self.clock.advance(2)
        while commits:
            commits.pop(0).callback(None)
        self.successResultOf(running)
        self.assertEqual(self.target.read_bytes(), DATA)


class HeldCommitTests(OneTaskTestCase):
    """
    A verified file whose commit waits out a store outage stays alive to
    the janitors of every process sharing the directory.
    """

    def test_touchedWhileHeld(self) -> None:
        """
        While an attempt waits for the store to confirm its claim before
        committing, its temporary file is touched every half
        C{idle_timeout}: another process's janitor, which knows nothing
        of this attempt, leaves it be however long the outage lasts, and
        once the store is back the file is put in place and the task
        recorded downloaded, with no second fetch.  Once the file is in
        place, nothing touches it or waits to.
        """
        attempts = self.attempts()
        idle = attempts.context.settings.idle_timeout
        task = self.claim()
        # Claimed at an unknown time: the lease must be confirmed before
        # the commit.
        running = attempts.run(task)
        self.store.away = True
        self.client.answer(0, DATA)
        (temporary,) = attempts.temporaries
        # Written to just now, as the clock tells.
        os.utime(temporary, (self.clock.seconds(), self.clock.seconds()))
        janitor_after = 4 * idle + 60
        for ignored in range(int((janitor_after + idle) * 3 / idle)):
            self.clock.advance(idle / 3)
            self.assertEqual(
                remove_abandoned(self.directory, janitor_after, self.clock.seconds()),
                0,
                "another process's janitor removes nothing",
            )
            self.assertLessEqual(self.clock.seconds() - temporary.stat().st_mtime, idle / 2 + idle / 3)
        self.assertNoResult(running)
        self.store.away = False
        self.clock.advance(STORE_RETRY[-1] * 1.5)
        self.successResultOf(running)
        self.assertEqual(self.target.read_bytes(), DATA)
        self.assertFalse(temporary.exists())
        self.assertEqual(len(self.client.fetches), 1)
        self.assertEqual(self.state(), DOWNLOADED)
        self.assertEqual(self.clock.getDelayedCalls(), [], "nothing touches the file any more")


class FreshLeaseTests(OneTaskTestCase):
    """
    An attempt trusts a claim whose lease surely has half its time left,
    and asks the store otherwise.
    """

    def setUp(self) -> None:
        super().setUp()
        self.worker = self.attempts()

    def attempt(self, claimed: float | None, lease_seconds: float | None = None) -> Task:
        """
        Claim the task now, and run an attempt at it as if the claim had
        been asked for at C{claimed} (for a lease of C{lease_seconds}, if
        given); answer it with data at once.

        @return: The task as recorded.
        """
        task = self.claim()
        running = self.worker.run(task, claimed, lease_seconds=lease_seconds)
        self.client.answer(0, DATA)
        self.successResultOf(running)
        done = self.successResultOf(self.memory.get(task.id))
        assert done is not None
        return done

    def test_freshLeaseTrusted(self) -> None:
        """
        A claim asked for just now is committed and recorded with no
        renewal.
        """
        self.assertEqual(self.attempt(self.clock.seconds()).state, DOWNLOADED)
        self.assertEqual(self.store.renewals, 0)

    def test_oldLeaseRenewed(self) -> None:
        """
        A claim asked for half a lease ago is renewed before its file is
        committed.
        """
        self.assertEqual(self.attempt(self.clock.seconds() - 2.5).state, DOWNLOADED)
        self.assertEqual(self.store.renewals, 1)

    def test_unknownClaimTimeRenewed(self) -> None:
        """
        A claim asked for at an unknown time is renewed before its file is
        committed.
        """
        self.assertEqual(self.attempt(None).state, DOWNLOADED)
        self.assertEqual(self.store.renewals, 1)

    def test_leaseLengthenedSinceClaimRenewed(self) -> None:
        """
        A claim is judged by the lease it asked for, not by a longer one
        the settings give since: three seconds into a five-second lease,
        it is renewed before its file is committed.
        """
        self.worker.context.work = WorkTopic(lease_seconds=600)
        self.assertEqual(self.attempt(self.clock.seconds() - 3, lease_seconds=5).state, DOWNLOADED)
        self.assertEqual(self.store.renewals, 1)

    def test_failedDownloadAbandonsCheck(self) -> None:
        """
        A download that fails abandons the following of its bytes: nothing
        more is handed to a thread for an answer nobody will keep.
        """
        abandoned: list[AnswerCheck] = []

        class Watched(AnswerCheck):
            """
            A check that says when it is abandoned.
            """

            def abandon(self) -> None:
                """
                Note it, then abandon.
                """
                abandoned.append(self)
                super().abandon()

        self.patch(attempt, "AnswerCheck", Watched)
        task = self.claim()
        running = self.worker.run(task, self.clock.seconds())
        write, d = self.client.fetches[0]
        write(DATA[:100])
        d.errback(AttemptFailed("connection lost mid-body"))
        self.successResultOf(running)
        self.assertEqual(len(abandoned), 1)

    def test_clockBackwardsRenewed(self) -> None:
        """
        A claim that seems to be asked for in the future (the clock went
        back) is renewed.
        """
        self.attempt(self.clock.seconds() + 1)
        self.assertEqual(self.store.renewals, 1)


@attr.s(eq=False)
class FlakyFinishes:
    """
    A task store whose calls to record outcomes fail while C{failures}
    lasts: each takes the next, which may first record the outcomes (an
    answer lost on the way back).
    """

    store: MemoryTaskStore = attr.ib()
    failures: list[bool] = attr.ib(factory=list)
    calls: list[int] = attr.ib(factory=list)
    failed: Callable[[], None] = attr.ib(default=lambda: None)

    def finish_many(self, outcomes: Any) -> Deferred[list[bool]]:
        """
        Record C{outcomes}, unless a failure is due; note how many went.
        """
        self.calls.append(len(outcomes))
        if self.failures:
            if self.failures.pop(0):
                self.store.finish_many(outcomes)
            self.failed()
            return fail(StoreUnavailable("away"))
        return self.store.finish_many(outcomes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class RecordingTests(OneTaskTestCase):
    """
    An outcome is recorded through a store outage.
    """

    def attempt(self, failures: list[bool], stop: bool = False) -> tuple[Deferred[None], FlakyFinishes]:
        """
        Download the task with the store's calls to record outcomes
        failing as C{failures} says.

        @param stop: Whether harbour stops as the store's first call fails.
        @return: The attempt, and the store.
        """
        flaky = FlakyFinishes(self.memory, failures)
        self.store = cast(Any, flaky)
        attempts = self.attempts()
        if stop:
            flaky.failed = lambda: setattr(attempts.context, "running", 0)
        self.events: list[str] = []
        attempts.bus.subscribe("task.*", lambda event: self.events.append(event.topic))
        self.alone: list[bool] = []
        finish = attempts.outcomes.finishes.finish

        def noted(outcome: Outcome, alone: bool = False) -> Deferred[bool]:
            self.alone.append(alone)
            return finish(outcome, alone)

        self.patch(attempts.outcomes.finishes, "finish", noted)
        done = attempts.run(self.claim(), self.clock.seconds())
        self.client.answer(0, DATA)
        return done, flaky

    def test_recordedAfterOutage(self) -> None:
        """
        An outcome whose recording meets an outage is recorded once the
        store answers again, each try after the first alone, with backoff.
        """
        done, flaky = self.attempt([False, False])
        self.assertNoResult(done)
        self.assertEqual(flaky.calls, [1])
        self.clock.advance(STORE_RETRY[0] * 1.5)
        self.assertEqual(flaky.calls, [1, 1])
        self.assertNoResult(done)
        self.clock.advance(STORE_RETRY[0] * 3)
        self.successResultOf(done)
        self.assertEqual((flaky.calls, self.alone), ([1, 1, 1], [False, True, True]))
        self.assertEqual(self.events, ["task.done"])
        self.assertEqual(self.clock.getDelayedCalls(), [], "the renewer stopped")
        self.assertEqual(self.state(), DOWNLOADED)

    def test_lostAnswer(self) -> None:
        """
        A try whose answer was lost, though it recorded the outcome, is
        found recorded: the attempt ends well, not as a lost claim.
        """
        done, flaky = self.attempt([True])
        self.clock.advance(STORE_RETRY[0] * 1.5)
        self.successResultOf(done)
        self.assertEqual(flaky.calls, [1, 1])
        self.assertEqual(self.events, ["task.done"])
        self.assertEqual(self.clock.getDelayedCalls(), [], "the renewer stopped")
        self.assertEqual(self.state(), DOWNLOADED)

    def test_announcementFails(self) -> None:
        """
        An outcome recorded but not announced (a worker's link to the hub
        is away) ends the attempt well, with a warning naming the event.
        """

        class HubAway:
            def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
                return fail(StoreUnavailable("not connected to the hub"))

        attempts = self.attempts()
        attempts.outcomes.bus = cast(Any, HubAway())
        logged: list[LogEvent] = []
        attempts.outcomes.log = Logger(observer=cast(ILogObserver, logged.append))
        task = self.claim()
        done = attempts.run(task, self.clock.seconds())
        self.client.answer(0, DATA)
        self.successResultOf(done)
        self.assertEqual(self.state(), DOWNLOADED)
        self.assertEqual(
            [formatEvent(e) for e in logged if e["log_level"] == LogLevel.warn],
            [f"{task.url} ended downloaded, but task.done could not be sent: not connected to the hub"],
        )

    def test_sweptInOutage(self) -> None:
        """
        An outage longer than the lease, with the task swept back to
        pending before the store answers again, is a lost claim: nothing is
        announced, and the task stays pending for the next claim, though
        its state is no longer C{downloading} under the same claim.
        """
        done, flaky = self.attempt([False] * 6)
        # Cut off from the store, the worker cannot renew either.
        cast(Any, flaky).renew = lambda *args, **kwargs: fail(StoreUnavailable("away"))
        self.clock.advance(10)
        self.successResultOf(self.memory.sweep())
        self.assertEqual(self.state(), PENDING)
        for ignored in range(12):
            self.clock.advance(STORE_RETRY[-1])
        self.successResultOf(done)
        self.assertEqual(self.events, [])
        self.assertEqual(self.state(), PENDING)

    def test_stoppedInOutage(self) -> None:
        """
        Once harbour stops, an outage is not waited out: the attempt fails
        with L{StoreUnavailable}, and the task stays claimed (its lease
        brings it back).
        """
        done, flaky = self.attempt([False], stop=True)
        self.failureResultOf(done, StoreUnavailable)
        self.assertEqual(flaky.calls, [1])
        self.assertEqual(self.events, [])
        self.assertEqual(self.clock.getDelayedCalls(), [], "the renewer stopped")
        self.assertEqual(self.state(), DOWNLOADING)


class SilentHubTests(OneTaskTestCase):
    """
    A worker whose hub is connected but silent (stopped, say) never hears
    whether its announcements were delivered: an attempt ends once its
    outcome is recorded all the same.
    """

    def silent(self) -> tuple[Attempts, SilentHub, list[LogEvent]]:
        """
        @return: A worker's attempts whose bus is a silent hub, the hub,
            and what the attempts log.
        """
        attempts = self.attempts()
        hub = SilentHub()
        attempts.bus = attempts.outcomes.bus = hub
        logged: list[LogEvent] = []
        attempts.log = attempts.outcomes.log = Logger(observer=cast(ILogObserver, logged.append))
        return attempts, hub, logged

    def test_endsOnceRecorded(self) -> None:
        """
        The attempt ends once its outcome is recorded, its announcement
        sent but unanswered, and its lease is renewed no more.
        """
        attempts, hub, logged = self.silent()
        done = attempts.run(self.claim(), self.clock.seconds())
        self.client.answer(0, DATA)
        self.successResultOf(done)
        self.assertEqual(hub.published, ["task.done"])
        self.assertEqual(self.state(), DOWNLOADED)
        self.assertEqual(self.clock.getDelayedCalls(), [], "the renewer stopped")

    def test_noLeaseLostOnceRecorded(self) -> None:
        """
        A claim ended by its recorded outcome is not said to have lost its
        lease, however long the announcement goes unanswered.
        """
        attempts, hub, logged = self.silent()
        renewals = self.store.renewals
        attempts.run(self.claim(), self.clock.seconds())
        self.client.answer(0, DATA)
        self.assertEqual(self.state(), DOWNLOADED)
        for ignored in range(30):
            self.clock.advance(1)
        self.assertEqual(self.store.renewals, renewals)
        self.assertEqual([formatEvent(e) for e in logged if "lost the lease" in formatEvent(e)], [])

    def test_renewalAnsweredAfterRecord(self) -> None:
        """
        A renewal asked before the outcome was recorded and answered after
        (the claim ended, so not held) is not a lost lease.
        """
        renewals: list[Deferred[bool]] = []

        def held_renew(*args: Any, **kwargs: Any) -> Deferred[bool]:
            d: Deferred[bool] = Deferred()
            renewals.append(d)
            return d

        attempts, hub, logged = self.silent()
        self.patch(self.store, "renew", held_renew)
        done = attempts.run(self.claim(), self.clock.seconds())
        self.clock.advance(2)
        self.assertEqual(len(renewals), 1)
        self.client.answer(0, DATA)
        self.successResultOf(done)
        self.assertEqual(self.state(), DOWNLOADED)
        renewals[0].callback(False)
        self.assertEqual([formatEvent(e) for e in logged if e["log_level"] >= LogLevel.warn], [])


class LeaseTests(SynchronousTestCase):
    """
    Tests for L{Lease}.
    """

    def test_freshForHalfItsLength(self) -> None:
        """
        A lease is fresh for half the length its confirmed request asked for.
        """
        lease = Lease()
        self.assertFalse(lease.fresh(0.0))
        lease.confirm(asked=10.0, now=10.5, lease_seconds=8.0, wall=1000.5)
        self.assertEqual(lease.deadline(), 1008.0)
        self.assertTrue(lease.fresh(13.9))
        self.assertFalse(lease.fresh(14.0))

    def test_earlierRequestAnsweredLate(self) -> None:
        """
        A request asked before the one last confirmed changes nothing: the
        store took it first, and the later request set the expiry.
        """
        lease = Lease()
        lease.confirm(asked=20.0, now=20.0, lease_seconds=4.0, wall=2000.0)
        lease.confirm(asked=19.0, now=20.5, lease_seconds=600.0, wall=2000.5)
        self.assertEqual((lease.confirmed, lease.seconds, lease.deadline()), (20.0, 4.0, 2004.0))
        self.assertFalse(lease.fresh(22.0))


class PrepareTests(SynchronousTestCase):
    """
    Tests for L{prepare}'s clean-up of earlier claims' temporary files.
    """

    def test_onlyIdleFilesOfEarlierClaims(self) -> None:
        """
        Only idle temporary files of earlier claims are removed: never one
        of this claim or a later one, nor one written to recently (a
        worker whose lease expired may still be writing it), nor one whose
        name carries no claim.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        target = directory / "x.zip"
        now = NOW
        idle_earlier = temporary_name(target, 1, 1)
        busy_earlier = temporary_name(target, 2, 2)
        later = temporary_name(target, 9, 3)
        unnamed = target.with_name(".x.zip.part-0000abcd")
        for path in (idle_earlier, busy_earlier, later, unnamed):
            path.write_bytes(b"partial")
        os.utime(busy_earlier, (now, now))
        for path in (idle_earlier, later, unnamed):
            os.utime(path, (now - 100, now - 100))
        opened = prepare(target, temporary_name(target, 5, 4), 5, "", "http://oasis/x", 30.0, now)
        assert not isinstance(opened, tuple)
        opened.close()
        left = sorted(p.name for p in directory.iterdir())
        expected = sorted(p.name for p in (busy_earlier, later, unnamed, temporary_name(target, 5, 4)))
        self.assertEqual(left, expected)
