"""
The ends of attempts: recorded in the task store, through its outages,
and announced on the bus.

An attempt ends in a finish (downloaded, empty or failed) or a release
(the task given back, due later), written with its claim's fencing token:
only a claim still held is ended, and a write that finds it gone raises
L{LostClaim}.  Through a store outage a write is tried again with backoff
until the store answers or harbour stops.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attr
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, ITaskStore
from harbour.oasis.client import AttemptFailed, PermanentFailure
from harbour.services.activity import DownloadActivity
from harbour.services.announcing import Announcements
from harbour.services.files import Unwritable
from harbour.services.finishing import Finishes
from harbour.store.outages import STORE_RETRY, next_retry
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED, Outcome, Task

if TYPE_CHECKING:
    from harbour.services.attempt import AttemptContext

_T = TypeVar("_T")


#: How long a group zip OASIS still prepares (error 1015) is asked for
#: again without using an attempt, from the first 1015 of an unbroken run:
#: OASIS prepares a zip in minutes, and one it answers 1015 for longer is
#: retried with backoff as any error, until C{max_attempts}.
PREPARATION_UNCOUNTED = 3600.0

#: How the time of the first 1015 of a run is carried from one try to the
#: next: at the end of the task's C{last_error}, which the store keeps.
_PREPARED_SINCE = re.compile(r" \(being prepared since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z\)$")


def prepared_since(last_error: str) -> float | None:
    """
    @param last_error: A task's C{last_error}, as its latest try left it.
    @return: When the run of 1015 answers that try was part of began (a
        POSIX time, to the second), or L{None} if that try was no 1015.
    """
    found = _PREPARED_SINCE.search(last_error)
    if found is None:
        return None
    return datetime.datetime.fromisoformat(found.group(1)).replace(tzinfo=datetime.UTC).timestamp()


def _since_text(since: float) -> str:
    """
    @return: What L{prepared_since} reads back as C{since}, to the second.
    """
    stamp = datetime.datetime.fromtimestamp(since, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f" (being prepared since {stamp}Z)"


class LostClaim(Exception):
    """
    The attempt's claim is no longer its own: its lease expired and the
    task was swept (and perhaps claimed again).
    """


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """
    @return: Exponential backoff with jitter for the given attempt count.
    """
    # The exponent is bounded: past 2 ** 1023 a float cannot hold it, and
    # this host's disk faults in a row (unlike a task's attempts) have no
    # most.
    return min(cap, base * 2.0 ** min(max(0, attempts - 1), 64)) * rng.uniform(0.5, 1.5)


@attr.s(eq=False)
class Outcomes:
    """
    Ends attempts (see the module's docstring).

    @ivar context: The download service the attempts work for.
    @ivar reactor: Times the backoffs.
    @ivar store: Where outcomes are recorded.
    @ivar bus: Where they are announced.
    @ivar activity: Counts them.
    @ivar finishes: Records finishes, a batch per store call.
    @ivar announcements: Announces them, without waiting.
    @ivar disk_faults: How many attempts in a row this host's disk failed
        (see L{unwritable}).
    """

    log = Logger()

    context: AttemptContext = attr.ib()
    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    bus: IBus = attr.ib()
    activity: DownloadActivity = attr.ib()
    finishes: Finishes = attr.ib(init=False)
    announcements: Announcements = attr.ib(factory=Announcements, init=False)
    disk_faults: int = attr.ib(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self.finishes = Finishes(self.store)

    @inlineCallbacks
    def stored(
        self, write: Callable[[], Deferred[_T]], delay: float = STORE_RETRY[0]
    ) -> Generator[Deferred[Any], Any, _T]:
        """
        Call C{write}, a store write, until the store answers: through an
        outage, with backoff (the store logs the outage), unless harbour
        stops meanwhile.

        @param delay: The first backoff.
        @raise StoreUnavailable: if harbour stopped before the store answered.
        @return: A Deferred firing with what C{write} answers.
        """
        while True:
            try:
                return (yield write())
            except StoreUnavailable:
                if not self.context.running:
                    raise
            yield self._backoff(delay)
            delay = next_retry(delay)

    def _backoff(self, delay: float) -> Deferred[None]:
        """
        @return: A Deferred firing after about C{delay} seconds (jittered).
        """
        return deferLater(self.reactor, delay * self.context.rng.uniform(0.5, 1.5), lambda: None)

    def _recorded(self, task: Task, write: Callable[[bool], Deferred[bool]]) -> Deferred[bool]:
        """
        Record an outcome of C{task}'s claim with C{write}, which is told
        whether this is a try after one that failed.  Through a store
        outage it tries again (L{stored}).  The first try is made without
        the generators that riding out an outage takes: nearly every one
        is answered.

        @return: A Deferred firing with whether the claim was still held
            (and the outcome recorded).
        """

        def again(failure: Failure) -> Deferred[bool]:
            failure.trap(StoreUnavailable)
            if not self.context.running:
                failure.raiseException()
            return self._recorded_after_outage(task, write)

        return maybeDeferred(write, False).addErrback(again)

    @inlineCallbacks
    def _recorded_after_outage(
        self, task: Task, write: Callable[[bool], Deferred[bool]]
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        Record an outcome as L{_recorded} does, after a first try that met
        an outage.
        """
        yield self._backoff(STORE_RETRY[0])
        held = yield self.stored(lambda: write(True), next_retry(STORE_RETRY[0]))
        if held:
            return held
        # A try whose answer was lost (the connection dropped) may have
        # recorded the outcome: then this claim is the last one ended by its
        # holder.  Its state alone cannot tell: a lease that ran out
        # meanwhile also leaves it pending under the same claim.
        now = yield self.stored(lambda: self.store.get(task.id))
        return now is not None and now.ended == task.claim

    @inlineCallbacks
    def release(
        self, task: Task, delay: float, error: str, counted: bool = True
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Give C{task} back, due C{delay} seconds from now (as the store
        tells time), riding out an outage.

        @raise LostClaim: if the claim is no longer held.
        """
        owner = self.context.owner
        held = yield self._recorded(
            task,
            lambda again: self.store.release(
                task.id, owner, error=error, counted=counted, token=task.claim, delay=delay
            ),
        )
        if not held:
            raise LostClaim(task.id)

    def after_failure(self, task: Task, failure: Failure) -> Deferred[None]:
        """
        End an attempt at C{task} whose download failed with C{failure}:
        failed for good, given back to be tried again, given back at once
        using no attempt (harbour stopping: not OASIS's failure), or given
        back using no attempt (the limiter could not reserve a slot, Redis
        away, so nothing was sent).

        @raise LostClaim: if the claim is no longer held.
        """
        if failure.check(PermanentFailure):
            return self.conclude(task, FAILED, error=str(failure.value))
        if failure.check(AttemptFailed):
            return self.retry(task, str(failure.value), cast(AttemptFailed, failure.value).retry_after)
        if failure.check(Unwritable):
            return self.unwritable(task, cast(Unwritable, failure.value))
        if failure.check(CancelledError) and not self.context.running:
            # Restarts must not use up a task's attempts: a long answer
            # cut by each would end failed without OASIS failing it once.
            return self.release(task, 0.0, "harbour stopped mid-download", counted=False)
        if failure.check(StoreUnavailable):
            # The limiter could not reserve a politeness slot, so nothing
            # was sent: an outage, not OASIS's answer, and no attempt is
            # used.  The release rides out the outage as every outcome
            # does; should harbour stop first, the lease brings the task
            # back.
            return self.recheck(
                task, self._backoff_of(task), f"no politeness slot: {failure.getErrorMessage()}"
            )
        # A Failure of an exception always has its type.
        kind = cast("type[BaseException]", failure.type)
        return self.retry(task, failure.getErrorMessage() or kind.__name__, None)

    @inlineCallbacks
    def retry(self, task: Task, error: str, pause: float | None) -> Generator[Deferred[Any], Any, None]:
        """
        Give C{task} back for another attempt after a backoff of at least
        C{pause} seconds, or fail it once it has used every attempt.

        @raise LostClaim: if the claim is no longer held.
        """
        if task.attempts >= self.context.work.max_attempts:
            yield self.conclude(task, FAILED, error=f"{error} (after {task.attempts} attempts)")
            return
        delay = max(pause or 0.0, self._backoff_of(task))
        self.log.info(
            "retrying {url} in {delay:.1f} s: {error}",
            url=task.url,
            delay=delay,
            error=error,
            service="download",
        )
        yield self.release(task, delay, error)
        self._retried(task, delay, error, counted=True)

    @inlineCallbacks
    def in_preparation(self, task: Task, description: str) -> Generator[Deferred[Any], Any, None]:
        """
        Give C{task} back after OASIS answered that its group zip is still
        being prepared (error 1015, C{description}): to be asked again
        using no attempt, for L{PREPARATION_UNCOUNTED} seconds from the
        first 1015 of an unbroken run, after the backoff of its current
        attempt, at least the politeness interval, and at least half the
        time it has been prepared so far (so that a long preparation is
        asked about fifteen times in that hour, not hundreds); after that,
        as any error (L{retry}).  The run's start is kept in C{last_error}.

        @raise LostClaim: if the claim is no longer held.
        """
        now = self.reactor.seconds()
        since = prepared_since(task.last_error)
        if since is None:
            since = now
        error = description + _since_text(since)
        if now - since >= PREPARATION_UNCOUNTED:
            yield self.retry(task, error, None)
            return
        delay = max(self._backoff_of(task), self.context.settings.min_request_interval, (now - since) / 2)
        self.log.info(
            "{url}: OASIS is still preparing it, asking again in {delay:.1f} s",
            url=task.url,
            delay=delay,
            service="download",
        )
        yield self.recheck(task, delay, error)

    def _backoff_of(self, task: Task) -> float:
        """
        @return: The backoff, jittered, after C{task}'s current attempt.
        """
        work = self.context.work
        return backoff(task.attempts, work.retry_base, work.retry_cap, self.context.rng)

    def unwritable(self, task: Task, fault: Unwritable) -> Deferred[None]:
        """
        Give C{task} back after this host's disk failed its file
        (C{fault}): to be tried again using no attempt, as OASIS did
        nothing wrong and asking it again cannot mend a disk, after a
        backoff that grows with the faults met in a row by this process's
        attempts (whatever their tasks: one disk serves them all) until an
        attempt's file work succeeds again (L{disk_worked}).

        @raise LostClaim: if the claim is no longer held.
        """
        self.disk_faults += 1
        work = self.context.work
        delay = backoff(self.disk_faults, work.retry_base, work.retry_cap, self.context.rng)
        self.log.warn(
            "{error}: {url} is tried again in {delay:.1f} s, using no attempt"
            " (a fault of this host's disk, {count} in a row)",
            error=str(fault),
            url=task.url,
            delay=delay,
            count=self.disk_faults,
            service="download",
        )
        return self.recheck(task, delay, str(fault))

    def disk_worked(self) -> None:
        """
        An attempt's file work succeeded: the next disk fault starts a new
        run of backoffs (see L{unwritable}).
        """
        self.disk_faults = 0

    @inlineCallbacks
    def recheck(self, task: Task, delay: float, error: str) -> Generator[Deferred[Any], Any, None]:
        """
        Give C{task} back to be asked again in C{delay} seconds, using no
        attempt: nothing counts against it (OASIS had no data for its
        window yet, and may publish it late; its group zip is still being
        prepared; or no request was sent).

        @raise LostClaim: if the claim is no longer held.
        """
        yield self.release(task, delay, error, counted=False)
        self._retried(task, delay, error, counted=False)

    def _retried(self, task: Task, delay: float, error: str, counted: bool) -> None:
        """
        Announce that C{task} will be tried again (C{task.retried}), for the
        retry counters and, if the retry used an attempt, the health of the
        report.  Nobody waits on it.
        """
        self.bus.publish(
            "task.retried",
            {
                "id": task.id,
                "report": task.report,
                "attempt": task.attempts,
                "delay": round(delay, 1),
                "error": error,
                "counted": counted,
            },
        ).addErrback(lambda failure: None)

    @inlineCallbacks
    def conclude(
        self, task: Task, state: str, size: int = 0, digest: str = "", error: str = "", storage: str = ""
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Finish C{task} in C{state} (C{downloaded}, C{empty} or C{failed}),
        riding out an outage, and announce it without waiting: the
        returned Deferred fires once the outcome is recorded.

        A day ahead fetched again (see L{ITaskStore.refetch_ahead}) that
        ends empty or failed is kept by the store as it was: nothing is
        announced or counted, and it is logged at info level.

        @param size: The file's size, if downloaded.
        @param digest: Its hash, if downloaded.
        @param error: Why it ended so, if empty or failed.
        @param storage: The storage id of the directory it went to, if
            downloaded (C{""}: unknown).
        @raise LostClaim: if the claim is no longer held: nothing is
            announced.
        """
        outcome = Outcome(task.id, self.context.owner, state, size, digest, error, task.claim, storage)
        held = yield self._recorded(task, lambda again: self.finishes.finish(outcome, alone=again))
        if not held:
            raise LostClaim(task.id)
        if task.ahead_from and state != DOWNLOADED:
            # A day ahead fetched again without a new answer: the store
            # kept the answer it had, as it was (see
            # ITaskStore.refetch_ahead), so nothing ended so.  Announced
            # as empty or failed, it would show the day so on the coverage
            # map and count in the outcomes; as done, count a download that
            # brought nothing.  The kept file's parse, queued again, is
            # found by the tables service's own polling.
            self.log.info(
                "{url}: no new answer while its day is ahead ({state}: {error}),"
                " the one fetched before is kept",
                url=task.url,
                state=state,
                error=error,
                service="download",
            )
            return
        self.activity.concluded(task, state, success=state == DOWNLOADED)
        topic = {DOWNLOADED: "task.done", EMPTY: "task.empty", FAILED: "task.failed"}[state]
        if state == FAILED:
            self.log.error("{url} failed: {error}", url=task.url, error=error, service="download")
        # The outcome is recorded: the event only wakes its followers
        # sooner, and a worker's bus is its link to the hub, which may be
        # away or silent, so the attempt does not wait for it.
        self.announcements.announce(
            self.bus,
            self.log,
            topic,
            {
                "id": task.id,
                "report": task.report,
                "url": task.url,
                "filename": task.filename,
                "bytes": size,
                "error": error,
                "revision": task.revision,
            },
            "{url} ended {state}, but {topic} could not be sent: {error}",
            url=task.url,
            state=state,
            service="download",
        )
