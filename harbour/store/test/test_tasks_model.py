"""
A model test of the task stores: Hypothesis drives L{MemoryTaskStore} and
L{RedisTaskStore} (on a private redis-server) through the same random
sequences of operations, on one shared L{Clock}, and checks after every
step that they answer alike and hold alike.

The memory store is the twin unit tests trust in place of Redis, so any
difference between the two is a bug in one of them.

Redis answers over a socket, through the reactor; the state machine runs in
a thread of its own and hands each call to the reactor thread with
L{blockingCallFromThread}, waiting for the answer.  Both stores are called
on the reactor thread, one after the other, so nothing runs concurrently.

Revision times are whole seconds, as the publications log gives them, or
the time of a fetch (on the clock's half seconds, to meet the boundary
where a revision is just too old to count): see L{SubSecondRevisionTests}
for what the stores do with finer ones.
"""

from __future__ import annotations

import datetime
import itertools
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.trial.unittest import TestCase

from harbour.interfaces import ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.connection import StoreService
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import (
    DOWNLOADED,
    DOWNLOADING,
    EMPTY,
    FAILED,
    FINAL_STATES,
    STATES,
    Outcome,
    RedisTaskStore,
    Task,
)
from harbour.test.helpers import private_redis

#: Where the shared clock starts: a present-day POSIX time, on a whole second.
START = 1_700_000_000.0


def request(report: str, day: int, days: int = 1, extra: str = "") -> ReportURL:
    """
    A request of C{report} for C{days} trading days from 2025-01-C{day},
    kept in the file of its first day.

    @param extra: More query parameters (another definition of the report).
    """
    start = datetime.datetime(2025, 1, day, 8, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(days=days)
    return ReportURL(
        f"http://oasis/{report}?startdatetime={start:%Y%m%d}&enddatetime={end:%Y%m%d}{extra}",
        f"{report}/2025-01-{day:02d}.zip",
        report,
        start,
        end,
    )


#: Every request a step may create: two reports, few enough files that
#: steps keep meeting the same tasks; C{a} on day 1 starts with C{b} on day
#: 1 (ties are broken by task id).  C{a}'s day 1 also comes resized (two
#: days) and changed (another parameter): the same file, another URL.
UNIVERSE: list[ReportURL] = [
    request("a", 1),
    request("a", 1, days=2),
    request("a", 1, extra="&grp_type=ALL"),
    request("a", 2),
    request("b", 1),
    request("b", 2),
]
IDS = sorted({Task.from_request(r, START).id for r in UNIVERSE})
OWNERS = ("w1", "w2")
#: The storages a download goes to, and a parser claims for (C{""}: none).
STORAGES = ("", "s1", "s2")
LEASES = (5.0, 10.0)
#: How far a step moves the clock: leases and delays are reached exactly,
#: or just missed, by sums of these.  The clock stays on half seconds, so
#: that a fetch and a revision (whole seconds) can fall on the same time.
ADVANCES = (0.0, 0.5, 4.5, 5.0, 10.0, 61.0)
#: The delay of a release (negative: already due).
DELAYS = (-5.0, 0.0, 3.0, 30.0)
#: How many seconds before the current whole second a revision happened
#: (negative: in the future); L{None}: at the very time of the task's fetch.
AGES = (None, -1, 0, 1, 5, 120)
#: What a worker that may have lost its task passes to each operation,
#: after the task id and the owner.
LATE: dict[str, tuple[object, ...]] = {
    "renew": (60.0,),
    "finish": (FAILED, 0, "", "late"),
    "release": (0.0, "late"),
}
#: The arguments of L{ITaskStore.tasks}: state, report, offset, limit.
Listing = tuple[str, str | None, int, int]
#: The listings compared after every step: all tasks of each state.  Every
#: task is in one state, so they show every task whole.
LISTINGS: list[Listing] = [(state, None, 0, 100) for state in STATES]
#: The listings compared at the end of each run: those of each report, and
#: pages further on.
LAST_LISTINGS: list[Listing] = [(state, report, 0, 100) for state in STATES for report in ("a", "b")] + [
    (state, None, 1, 2) for state in STATES
]

#: Bounded and deterministic: the same examples on every run, in seconds.
SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Disagreement(AssertionError):
    """
    The two stores answered or held differently.
    """


async def observe(store: ITaskStore, listings: Sequence[Listing]) -> dict[str, Any]:
    """
    @return: What a store shows of its state: C{listings}, its counts and
        its revision counts.
    """
    asked: dict[str, Deferred[Any]] = {
        "counts": store.counts(),
        "revisions": store.revision_counts(),
        "parse_counts": store.parse_counts(),
    }
    for listing in listings:
        asked[f"tasks{listing}"] = store.tasks(*listing)
    # All at once: Redis answers the commands of one connection in order.
    answers = await gatherResults(list(asked.values()))
    return dict(zip(asked, answers))


class TwoStores(RuleBasedStateMachine):
    """
    A memory store and a Redis store taken through the same steps.

    A subclass sets L{reactor} and L{redis}; each run of the machine has
    keys of its own under the Redis store's prefix.
    """

    reactor: ClassVar[Any]
    redis: ClassVar[StoreService]
    runs: ClassVar[itertools.count[int]]

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.clock.advance(START)
        self.memory = MemoryTaskStore(self.clock)
        self.store = RedisTaskStore(self.redis, self.clock, f"{self.redis.prefix}run{next(self.runs)}:")
        #: From the last step: who holds each task being downloaded, and
        #: when each task fetched was last fetched (those a revision can
        #: concern).
        self.held: dict[str, str] = {}
        self.fetched: dict[str, float] = {}
        self.disagreed = False

    def agree(self, what: str, memory: object, redis: object) -> None:
        """
        @raise Disagreement: unless C{memory} and C{redis} are equal.
        """
        if memory != redis:
            self.disagreed = True
            raise Disagreement(f"{what}:\n  memory: {memory!r}\n  redis:  {redis!r}")

    def call(
        self, f: Callable[..., Deferred[Any] | Coroutine[Any, Any, Any]], *args: object, **kwargs: object
    ) -> Any:
        """
        Call C{f} on the reactor thread and wait for its answer.
        """
        return blockingCallFromThread(
            self.reactor, lambda: Deferred.fromCoroutine(_awaited(f(*args, **kwargs)))
        )

    def both(self, method: str, *args: object, **kwargs: object) -> Any:
        """
        Call C{method} of both stores with C{args} and C{kwargs}; they must
        answer alike.

        @return: The answer.
        """
        expected = self.call(getattr(self.memory, method), *args, **kwargs)
        actual = self.call(getattr(self.store, method), *args, **kwargs)
        self.agree(f"{method}{args!r}{kwargs!r}", expected, actual)
        return expected

    def compare(self, listings: Sequence[Listing]) -> dict[str, Any]:
        """
        Compare what the stores show: C{listings}, counts, revision counts.

        @return: What the memory store shows.
        """
        memory = self.call(observe, self.memory, listings)
        redis = self.call(observe, self.store, listings)
        for key in memory:
            self.agree(key, memory[key], redis[key])
        return memory

    def revised(self, task: str, age: int | None) -> float:
        """
        @return: The time of a revision of C{task}: C{age} whole seconds
            before the current whole second, as the log gives times; or, for
            L{None}, the time C{task} was fetched (on the clock's half
            seconds), where a revision is just too old to count.
        """
        if age is None and task in self.fetched:
            return self.fetched[task]
        return float(math.floor(self.clock.seconds()) - (age or 0))

    def holder(self, data: st.DataObject) -> tuple[str, str]:
        """
        @return: A task being downloaded and its holder.
        """
        return data.draw(st.sampled_from(sorted(self.held.items())), label="held")

    # A batch names each file once, as the manifest does.  Given one new
    # file twice under two URLs in one batch, the stores disagree (to be
    # decided): the memory store creates it and takes the second URL,
    # create.lua creates it with the first and drops the second.
    @initialize(chosen=st.lists(st.sampled_from(UNIVERSE), min_size=1, unique_by=lambda r: r.filename))
    def start(self, chosen: list[ReportURL]) -> None:
        """
        Begin with some tasks.
        """
        self.both("create", chosen)

    @rule(chosen=st.lists(st.sampled_from(UNIVERSE), max_size=4, unique_by=lambda r: r.filename))
    def create(self, chosen: list[ReportURL]) -> None:
        """
        Create tasks, some known already, perhaps under another URL (a
        window resized, a definition changed): in any state.
        """
        self.both("create", chosen)

    @rule(owner=st.sampled_from(OWNERS), lease=st.sampled_from(LEASES))
    def claim(self, owner: str, lease: float) -> None:
        """
        Claim the most urgent due task, if any.
        """
        self.both("claim", owner, lease)

    @rule(owner=st.sampled_from(OWNERS), lease=st.sampled_from(LEASES), count=st.integers(0, 3))
    def claim_many(self, owner: str, lease: float, count: int) -> None:
        """
        Claim the most urgent due tasks, at most C{count}, in one step.
        """
        self.both("claim_many", owner, lease, count)

    @rule(
        owner=st.sampled_from(OWNERS),
        lease=st.sampled_from(LEASES),
        seconds=st.sampled_from(ADVANCES),
        outcome=st.sampled_from((*FINAL_STATES, "release")),
        delay=st.sampled_from(DELAYS),
        storage=st.sampled_from(STORAGES),
    )
    def download(
        self, owner: str, lease: float, seconds: float, outcome: str, delay: float, storage: str
    ) -> None:
        """
        A worker's round: claim, let time pass, and (if it claimed) finish,
        into C{storage}, or give the task back to be tried again after
        C{delay}.
        """
        task = self.both("claim", owner, lease)
        self.clock.advance(seconds)
        if task is None:
            return
        if outcome == "release":
            self.both("release", task.id, owner, delay, "HTTP 503")
        else:
            self.both("finish", task.id, owner, outcome, 10, "cd", "", storage=storage)

    @rule(
        owner=st.sampled_from(OWNERS),
        lease=st.sampled_from(LEASES),
        renewed=st.sampled_from((None, 0.5, 4.5)),
        late=st.sampled_from((-0.5, 0.0, 0.5)),
        operation=st.sampled_from(("finish", "release")),
        sibling=st.booleans(),
    )
    def stall(
        self, owner: str, lease: float, renewed: float | None, late: float, operation: str, sibling: bool
    ) -> None:
        """
        A worker stalls mid-download: it claims, perhaps renews its lease
        once after C{renewed} seconds, and goes quiet; the janitor sweeps
        just before, at, or just after the lease runs out; another worker
        (of another process, or a C{sibling} of the same process, with the
        same owner) claims; then the first comes back to renew and finish
        or release with its claim's token, refused unless it still held
        the task.
        """
        task = self.both("claim", owner, lease)
        if task is not None and renewed is not None:
            self.clock.advance(renewed)
            self.both("renew", task.id, owner, lease, task.claim)
        self.clock.advance(lease + late)
        self.both("sweep")
        self.both("claim", owner if sibling else OWNERS[1 - OWNERS.index(owner)], lease)
        if task is not None:
            self.both("renew", task.id, owner, *LATE["renew"], task.claim)
            fenced = {"finish": (task.claim,), "release": (True, task.claim)}[operation]
            self.both(operation, task.id, owner, *LATE[operation], *fenced)

    @rule(
        owner=st.sampled_from(OWNERS),
        seconds=st.sampled_from(ADVANCES),
        age=st.sampled_from(AGES),
        outcome=st.sampled_from(FINAL_STATES),
    )
    def revised_mid_download(self, owner: str, seconds: float, age: int | None, outcome: str) -> None:
        """
        The log shows a revision while its task downloads: it is noted,
        and looked at again by the next revise once the task is final.
        """
        task = self.both("claim", owner, 60.0)
        if task is None:
            return
        self.clock.advance(seconds)
        self.fetched[task.id] = task.fetched
        self.both("revise", [(task.id, self.revised(task.id, age), "2")])
        self.both("finish", task.id, owner, outcome, 10, "ef", "")
        self.both("revise", [])

    @precondition(lambda self: self.held)
    @rule(data=st.data(), lease=st.sampled_from(LEASES))
    def renew(self, data: st.DataObject, lease: float) -> None:
        """
        Renew a lease.
        """
        self.both("renew", *self.holder(data), lease)

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(),
        state=st.sampled_from(FINAL_STATES),
        size=st.sampled_from((0, 10)),
        sha256=st.sampled_from(("", "ab")),
        error=st.sampled_from(("", "1000")),
    )
    def finish(self, data: st.DataObject, state: str, size: int, sha256: str, error: str) -> None:
        """
        End a claim as downloaded, empty or failed.
        """
        self.both("finish", *self.holder(data), state, size, sha256, error)

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(),
        ends=st.lists(
            st.tuples(
                st.sampled_from(FINAL_STATES),
                st.sampled_from((0, 10)),
                st.sampled_from(("", "ab")),
                st.sampled_from((None, 0)),
                st.booleans(),
                st.sampled_from(STORAGES),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def finish_many(
        self, data: st.DataObject, ends: list[tuple[str, int, str, int | None, bool, str]]
    ) -> None:
        """
        End several claims in one step: a claim may come twice (ended by
        the first), under a stale token (0: no claim has it) or by a
        stranger.
        """
        outcomes = []
        for state, size, sha256, token, stranger, storage in ends:
            task, owner = self.holder(data)
            if stranger:
                owner = OWNERS[1 - OWNERS.index(owner)]
            outcomes.append(Outcome(task, owner, state, size, sha256, "late", token, storage))
        self.both("finish_many", outcomes)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), delay=st.sampled_from(DELAYS), error=st.sampled_from(("", "HTTP 503")))
    def release(self, data: st.DataObject, delay: float, error: str) -> None:
        """
        Give a claim back, due now, earlier, or later (in seconds from now,
        the preferred form).
        """
        self.both("release", *self.holder(data), error=error, delay=delay)

    @rule(
        owner=st.sampled_from(OWNERS),
        lease=st.sampled_from(LEASES),
        seconds=st.sampled_from(ADVANCES),
        outcome=st.sampled_from(("parsed", "unparsable", "release", "renew", "abandon")),
        delay=st.sampled_from(DELAYS),
        sweep=st.booleans(),
        storage=st.sampled_from(STORAGES),
        claimers=st.tuples(st.sampled_from(STORAGES), st.sampled_from(STORAGES)),
    )
    def parse(
        self,
        owner: str,
        lease: float,
        seconds: float,
        outcome: str,
        delay: float,
        sweep: bool,
        storage: str,
        claimers: tuple[str, str],
    ) -> None:
        """
        A downloader's and a parser's round: download the most urgent task
        if any, into C{storage}, then claim a parse (for the first of
        C{claimers}' storages), let time pass (perhaps the janitor sweeps,
        perhaps another parser, of the second, claims meanwhile), then end
        it (parsed, unparsable), give it back after C{delay}, renew it, or
        abandon it to its lease; refused if its claim is no longer live.
        """
        task = self.both("claim", owner, lease)
        if task is not None:
            self.both("finish", task.id, owner, DOWNLOADED, 10, "ab", "", task.claim, storage)
        job = self.both("claim_parse", owner, lease, claimers[0])
        self.clock.advance(seconds)
        if sweep:
            self.both("sweep")
            self.both("claim_parse", OWNERS[1 - OWNERS.index(owner)], lease, claimers[1])
        if job is None or outcome == "abandon":
            return
        if outcome == "release":
            self.both("release_parse", job.id, owner, job.token, delay, "disk full")
        elif outcome == "renew":
            self.both("renew_parse", job.id, owner, job.token, lease)
        else:
            self.both("finish_parse", job.id, owner, job.token, 5, "" if outcome == "parsed" else "bad zip")

    @rule(report=st.sampled_from((None, "a", "b")), only_unqueued=st.booleans())
    def requeue_parse(self, report: str | None, only_unqueued: bool) -> None:
        """
        Queue downloaded files to be parsed again.
        """
        self.both("requeue_parse", report, only_unqueued)

    @rule(
        data=st.data(),
        operation=st.sampled_from(("renew", "finish", "release")),
        owner=st.sampled_from(OWNERS),
    )
    def stranger(self, data: st.DataObject, operation: str, owner: str) -> None:
        """
        Renew, finish or release a task being downloaded, or any task, as
        any owner: most often one that does not hold it (a worker whose
        lease was swept), to be refused.
        """
        task = data.draw(
            st.sampled_from(sorted(self.held)) | st.sampled_from(IDS) if self.held else st.sampled_from(IDS),
            label="task",
        )
        self.both(operation, task, owner, *LATE[operation])

    @rule(chosen=st.lists(st.sampled_from([*IDS, "unknown"]), max_size=4, unique=True))
    def retire(self, chosen: list[str]) -> None:
        """
        Retire tasks (in any state), naming those with a file downloaded
        before; a later create brings them back.
        """
        self.both("retire_with_files", chosen)

    @rule(count=st.integers(min_value=1, max_value=4))
    def retired_tables(self, count: int) -> None:
        """
        Read the retired windows whose tables are to go, then forget them.
        """
        listed = self.both("retired_tables", count)
        self.both("forget_retired_tables", listed.entries, listed.dropped)

    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds: float) -> None:
        """
        Let time pass (for both stores: they share the clock).
        """
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        """
        Sweep expired leases back to pending.
        """
        self.both("sweep")

    @rule(state=st.sampled_from((FAILED, EMPTY)), report=st.sampled_from((None, "a", "b")))
    def retry(self, state: str, report: str | None) -> None:
        """
        Put failed or empty tasks back to pending.
        """
        self.both("retry", state, report)

    @rule(data=st.data())
    def revise(self, data: st.DataObject) -> None:
        """
        Apply revisions from the publications log, old or new, mostly of
        tasks fetched already (in any state since), at times of a task never
        fetched or unknown.
        """
        fetched = st.sampled_from(sorted(self.fetched)) if self.fetched else st.nothing()
        entry = st.tuples(
            fetched | st.sampled_from([*IDS, "unknown"]), st.sampled_from(AGES), st.sampled_from(("1", "2"))
        )
        entries = data.draw(st.lists(entry, max_size=3), label="revisions")
        self.both("revise", [(task, self.revised(task, age), version) for task, age, version in entries])

    @invariant()
    def same_state(self) -> None:
        """
        Both stores hold the same tasks (state, owner, attempts, times and
        all), list them alike, and count them alike.
        """
        memory = self.compare(LISTINGS)
        downloading: list[Task] = memory[f"tasks{(DOWNLOADING, None, 0, 100)}"][0]
        self.held = {task.id: task.owner for task in downloading}
        every = [task for state in STATES for task in memory[f"tasks{(state, None, 0, 100)}"][0]]
        self.fetched = {task.id: task.fetched for task in every if task.fetched}

    def teardown(self) -> None:
        """
        At the end of a run that went well so far, both stores also list
        each report's tasks alike, and page alike.
        """
        if not self.disagreed:
            self.compare(LAST_LISTINGS)


async def _awaited(answer: Deferred[Any] | Coroutine[Any, Any, Any]) -> Any:
    """
    @return: The answer of a store method, a L{Deferred} or a coroutine.
    """
    return await answer


class TaskStoresAgreeTests(TestCase):
    """
    L{MemoryTaskStore} and L{RedisTaskStore} behave alike.
    """

    timeout = 300

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        Start a private redis-server.
        """
        self.redis = await private_redis(self)

    async def test_sameSteps(self) -> None:
        """
        Through random sequences of create, claim (several owners), renew,
        finish (downloaded, empty, failed), release, sweep as the clock
        advances, retry, revise and retire, both stores return the same answers and
        end every step holding the same tasks.
        """
        from twisted.internet import reactor

        class Machine(TwoStores):
            """
            L{TwoStores} on this test's Redis.
            """

        Machine.reactor, Machine.redis, Machine.runs = reactor, self.redis, itertools.count()

        def run() -> None:
            try:
                run_state_machine_as_test(Machine, settings=SETTINGS)
            except Exception as e:
                # Hypothesis adds the failing steps as notes, which trial
                # does not show: put them in the message.
                raise self.failureException("\n".join([str(e), *getattr(e, "__notes__", [])])) from e

        await deferToThread(run)


class SubSecondRevisionTests(TestCase):
    """
    A revision that meets its task mid-download, at a time finer than the
    log's whole seconds.
    """

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        """
        Start a private redis-server.
        """
        self.redis = await private_redis(self)

    async def test_notNewerThanFetch(self) -> None:
        """
        A revision noted mid-download whose time is that of the fetch, so
        not newer than it, is not applied once the download is recorded:
        by either store.
        """
        answers = []
        for make in [MemoryTaskStore, lambda clock: RedisTaskStore(self.redis, clock, self.redis.prefix)]:
            clock = Clock()
            clock.advance(START + 0.123456)
            store: ITaskStore = make(clock)
            await store.create([UNIVERSE[0]])
            task = await store.claim("w", 60.0)
            if task is None:
                self.fail("nothing to claim")
            noted = await store.revise([(task.id, task.fetched, "2")])
            await store.finish(task.id, "w", DOWNLOADED, 10, "ab", "")
            answers.append((noted, await store.revise([])))
        self.assertEqual(answers, [([], []), ([], [])])
