"""
One attempt at one claimed task: prepare the target, fetch the answer into
a temporary file beside it, verify it, commit it, and end the attempt in
the task store and on the bus (L{harbour.services.outcomes}).  The lease
is renewed from the claim to the outcome, with the claim's fencing token:
an attempt that finds its claim gone (its lease expired and another
worker has the task) commits nothing and records nothing.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, cast

import attr
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.config.schema import DownloadTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, ITaskStore
from harbour.oasis import classify as verdicts
from harbour.oasis.client import OasisClient
from harbour.oasis.requests import UnsafeName, confined
from harbour.services.activity import DownloadActivity
from harbour.services.checking import AnswerCheck, judge_file
from harbour.services.commit import GroupCommit, LeaseRanOut
from harbour.services.files import (
    InThread,
    KeptFresh,
    Unwritable,
    kept_name,
    prepare,
    temporary_name,
    verify,
)
from harbour.services.opening import Openings
from harbour.services.outcomes import LostClaim, Outcomes
from harbour.services.writeback import Writeback
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED, Task

_T = TypeVar("_T")

#: An empty answer for a window that ended less than this ago is asked for
#: again: OASIS may publish it late.
RECENT = 3 * 86400.0
#: How long to wait before asking again for such a window.
RECHECK = 3 * 3600.0


@attr.s(eq=False)
class Lease:
    """
    What an attempt knows of its claim's lease.

    @ivar confirmed: When (on the reactor's clock) the store was last
        asked to set the lease's expiry, by the claim or a renewal it
        accepted; L{None} if unknown.  The lease lasts at least
        C{lease_seconds} from then: Redis takes the request later, not
        sooner.
    @ivar expires: When, on the wall clock, the lease surely lasts until;
        L{None} if unknown.
    @ivar seconds: How long a lease the request confirmed last asked for
        (the setting may have changed since).
    @ivar over: Whether the attempt is over (its outcome recorded, or its
        claim lost): a renewal answered since tells nothing.
    """

    confirmed: float | None = attr.ib(default=None)
    expires: float | None = attr.ib(default=None)
    seconds: float = attr.ib(default=0.0)
    over: bool = attr.ib(default=False)

    def confirm(self, asked: float, now: float, lease_seconds: float, wall: float) -> None:
        """
        The store accepted a request, made at C{asked}, to set the lease's
        expiry to C{lease_seconds} from when it takes it.  A request asked
        before the one last confirmed changes nothing: the store took it
        first, and the later one set the expiry.

        The lease is timed on the reactor's clock, which is the wall clock
        on a real reactor but not under a test's L{task.Clock}; so what is
        left of it is carried over to the wall clock, which the thread that
        renames reads (see L{harbour.services.commit.Move.deadline}).

        @param now: The reactor's time now.
        @param wall: The wall time now (L{time.time}).
        """
        if self.confirmed is not None and asked < self.confirmed:
            return
        self.confirmed = asked
        self.seconds = lease_seconds
        self.expires = wall + (asked + lease_seconds - now)

    def deadline(self) -> float:
        """
        @return: The wall time until which the lease surely lasts (as last
            confirmed: renewals move it on), or minus infinity if unknown.
        """
        return float("-inf") if self.expires is None else self.expires

    def fresh(self, now: float) -> bool:
        """
        @return: Whether the lease surely has half its time left at C{now}:
            then only the store's sweep of expired leases could have taken
            the claim, and it has not.
        """
        return self.confirmed is not None and 0 <= now - self.confirmed < self.seconds / 2


class AttemptContext(Protocol):
    """
    What attempts need of the download service they work for.
    """

    owner: str
    rng: random.Random
    settings: DownloadTopic
    work: WorkTopic
    running: int

    @property
    def directory(self) -> Path:
        """
        Where files go.
        """

    def storage(self, directory: Path) -> Deferred[str]:
        """
        @return: A L{Deferred} firing with the storage id of C{directory},
            or C{""} if it cannot be told; it never fails.
        """

    def beat(self) -> None:
        """
        Tell the hub what this worker is doing.
        """


@attr.s(eq=False)
class Attempts:
    """
    Carries out attempts at claimed tasks, each ending in a finish or a
    release.

    @ivar temporaries: The temporary files of the attempts under way, each
        added as its attempt names it and taken out once it is over.
    """

    log = Logger()

    context: AttemptContext = attr.ib()
    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    client: OasisClient = attr.ib()
    bus: IBus = attr.ib()
    activity: DownloadActivity = attr.ib()
    in_thread: InThread = attr.ib()
    commits: GroupCommit = attr.ib()
    temporaries: set[Path] = attr.ib(factory=set)
    outcomes: Outcomes = attr.ib(init=False)
    openings: Openings = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self.outcomes = Outcomes(self.context, self.reactor, self.store, self.bus, self.activity)
        self.openings = Openings(self.in_thread)

    def run(
        self,
        task: Task,
        claimed: float | None = None,
        downloaded: Callable[[], None] = lambda: None,
        lease_seconds: float | None = None,
    ) -> Deferred[None]:
        """
        One attempt at one claimed task, ending in a finish or a release,
        or in nothing if the claim was lost meanwhile; the lease is renewed
        throughout.

        @param claimed: When the claim was asked for, if known: until half
            the lease has passed, the claim needs no renewal to be trusted.
        @param downloaded: Called once the download is over (or there was
            none), before the answer is committed and recorded.
        @param lease_seconds: The lease the claim asked for, if not the
            one the settings give now.
        @return: A L{Deferred} firing once the attempt has ended; it fails
            only as recording the outcome failed (L{StoreUnavailable} once
            harbour stops) or as something unforeseen did.
        """
        lease = Lease()
        asked_for = self.context.work.lease_seconds if lease_seconds is None else lease_seconds
        if claimed is not None:
            self._confirm(lease, claimed, asked_for)
        # Renewed with the lease the claim asked for, at its pace, whatever
        # the settings say meanwhile: a shorter one would run out between
        # renewals.
        renewer = LoopingCall(self._renew, task, lease, asked_for)
        renewer.clock = self.reactor
        renewer.start(max(1.0, asked_for / 3), now=False)

        def lost(failure: Failure) -> None:
            failure.trap(LostClaim)
            self.log.warn(
                "lost the claim of {url} (its lease expired): another worker has it",
                url=task.url,
                service="download",
            )

        def over(result: _T) -> _T:
            # At once: the outcome is recorded (its announcement is not
            # waited for), and the claim is over.
            lease.over = True
            renewer.stop()
            return result

        return self._attempt(task, lease, asked_for, downloaded).addErrback(lost).addBoth(over)

    @inlineCallbacks
    def _attempt(
        self, task: Task, lease: Lease, lease_seconds: float, downloaded: Callable[[], None]
    ) -> Generator[Deferred[Any], Any, None]:
        directory = self.context.directory
        try:
            target = directory / confined(task.filename)
        except UnsafeName as e:
            yield self.outcomes.conclude(task, FAILED, error=str(e))
            return
        # Recorded with the file, so that only a process that has it
        # parses it.
        storage = yield self.context.storage(directory)
        temporary = temporary_name(target, task.claim, self.context.rng.getrandbits(32))
        # Named to the janitor as this process's own until the attempt is
        # over: an attempt waiting to commit writes nothing to it (other
        # processes' janitors see it touched: see _kept_alive).
        self.temporaries.add(temporary)
        try:
            # A worker that lives always removes its own temporary file;
            # prepare removes idle ones of earlier claims.  A task with a hash
            # but not downloaded is a revision: the file in place is the one it
            # replaces.  Even a first claim's file is opened in a thread:
            # creating a name waits on the file system's metadata updates,
            # which other writers on the same disk may keep busy for a
            # millisecond at a time.
            prepared: tuple[verdicts.Verdict, int, str] | IO[bytes] | None = None
            try:
                if task.claim == 1:
                    prepared = yield self.openings.open(target, temporary)
                if prepared is None:
                    prepared = yield self.in_thread(
                        prepare,
                        target,
                        temporary,
                        task.claim,
                        task.sha256,
                        task.url,
                        self.context.settings.idle_timeout,
                        self.reactor.seconds(),
                    )
            except OSError as e:
                # Nothing was asked of OASIS yet, and no file is open.
                yield self.outcomes.unwritable(task, Unwritable(target.parent, e))
                return
            if isinstance(prepared, tuple):
                verdict, size, digest = prepared
                yield self.outcomes.conclude(task, DOWNLOADED, size, digest, storage=storage)
                return
            try:
                try:
                    received, check, failure = yield self._fetch(task, prepared, temporary)
                finally:
                    unclosed = _close(prepared)
                if unclosed is not None and failure is None:
                    check.abandon()
                    failure = Failure(Unwritable(temporary, unclosed))
                downloaded()
                if failure is None:
                    judged = yield check.finish()
                    if judged is None:
                        # Followed only in part: the whole file tells.
                        judged = yield _on_disk(self.in_thread(judge_file, temporary), temporary)
                    digest, verdict = judged.sha256, judged.verdict
                    if verdict is None:
                        # An answer the stream could not judge: the whole file can.
                        verdict = yield _on_disk(self.in_thread(verify, temporary), temporary)
                    elif verdict.kind != verdicts.DATA:
                        yield self._discard(temporary)
                    if verdict.kind == verdicts.DATA:
                        keep = None
                        # The same bytes again (a revision or a changed request
                        # that left the answer as it was) keep no copy, but the
                        # record must name the request now asked.
                        if task.sha256 and digest != task.sha256 and self.context.settings.keep_revisions:
                            keep = kept_name(target, task.revision - 1)
                        # Only the claim's holder may put a file in place, and
                        # only while its lease lasts: a commit may wait.
                        if not lease.fresh(self.reactor.seconds()):
                            touching = self._kept_alive(temporary)
                            try:
                                yield self._hold(task, lease, lease_seconds)
                            finally:
                                touching.stop()
                        try:
                            yield _on_disk(
                                self.commits.commit(
                                    temporary, target, keep, task.url, digest, lease.deadline
                                ),
                                target,
                            )
                        except LeaseRanOut:
                            raise LostClaim(task.id) from None
                    self.outcomes.disk_worked()
            except Unwritable as e:
                # Reading the file back or putting it in place failed (a
                # write's and a close's faults are the fetch's failure).
                self._discard(temporary)
                yield self.outcomes.unwritable(task, e)
                return
            except BaseException:
                # Nobody waits on it: harbour may be stopping, and prepare or
                # the janitor removes what it leaves.
                self._discard(temporary)
                raise
            if failure is not None:
                yield self._discard(temporary)
                yield self.outcomes.after_failure(task, failure)
            elif verdict.kind == verdicts.DATA:
                yield self.outcomes.conclude(task, DOWNLOADED, received, digest, storage=storage)
            elif verdict.kind == verdicts.EMPTY and self.reactor.seconds() - task.window_end < RECENT:
                # Data for a recent window may still come: ask again later,
                # slowly, before "no data" is final.
                self.log.info(
                    "{url}: no data yet, asking again in {hours:g} h",
                    url=task.url,
                    hours=RECHECK / 3600,
                    service="download",
                )
                yield self.outcomes.recheck(task, RECHECK, f"no data yet: {verdict.description}")
            elif verdict.kind == verdicts.EMPTY:
                yield self.outcomes.conclude(task, EMPTY, error=verdict.description)
            elif verdict.kind in (verdicts.BAD_REQUEST, verdicts.REFUSED):
                # A wrong request, or an answer that breaks a decompression
                # cap: asking again would only spend OASIS's time and ours.
                yield self.outcomes.conclude(task, FAILED, error=verdict.description)
            elif verdict.code == verdicts.IN_PREPARATION:
                yield self.outcomes.in_preparation(task, verdict.description)
            else:
                yield self.outcomes.retry(task, verdict.description, None)
        finally:
            self.temporaries.discard(temporary)

    def _discard(self, temporary: Path) -> Deferred[None]:
        """
        Remove C{temporary}, if there, in a thread: removing a name waits on
        the file system's metadata updates, as creating one does.

        @return: A Deferred firing once it is gone, or could not be removed
            (which is logged: prepare or the janitor removes it later).
        """
        d: Deferred[None] = self.in_thread(temporary.unlink, True)

        def failed(failure: Failure) -> None:
            self.log.failure("cannot remove {path}", failure, path=str(temporary), service="download")

        return d.addErrback(failed)

    def _kept_alive(self, temporary: Path) -> LoopingCall:
        """
        Touch C{temporary}, a verified file waiting to be committed, every
        half C{idle_timeout}, in a thread, until the call returned is
        stopped.  Its commit may wait out a store outage (L{_hold}), for
        minutes, while nothing writes to it; yet the janitor of every other
        process sharing the directory, which does not know this attempt,
        removes a temporary file left unchanged for four idle deadlines and
        a minute (see L{harbour.services.files.remove_abandoned}).  Half a
        deadline is how often L{KeptFresh} shows a download alive, too.
        (Only a wait for the store is covered, so that a commit that waits
        for nothing starts no timer: the rename after it waits only for
        its turn on the disk.)

        @return: The running call that touches it.
        """

        def touch() -> Deferred[None]:
            # Set to the reactor's time, which the janitors judge files by.
            now = self.reactor.seconds()
            return self.in_thread(os.utime, temporary, (now, now)).addErrback(untouched)

        def untouched(failure: Failure) -> None:
            # Gone (renamed a moment ago, or removed) or not to be touched:
            # the commit, or its failure, tells what became of it.  Nothing
            # stops the touching but the attempt.
            if not failure.check(OSError):
                self.log.failure("cannot touch {path}", failure, path=str(temporary), service="download")

        touching = LoopingCall(touch)
        touching.clock = self.reactor
        touching.start(self.context.settings.idle_timeout / 2, now=False)
        return touching

    @inlineCallbacks
    def _hold(self, task: Task, lease: Lease, seconds: float) -> Generator[Deferred[Any], Any, None]:
        """
        Make sure C{task}'s claim, whose lease is not fresh, is still held:
        renew it for C{seconds} now, riding out an outage.

        @raise LostClaim: if the claim is no longer held.
        """
        asked = self.reactor.seconds()
        held = yield self.outcomes.stored(
            lambda: self.store.renew(task.id, self.context.owner, seconds, task.claim)
        )
        if not held:
            raise LostClaim(task.id)
        self._confirm(lease, asked, seconds)

    def _confirm(self, lease: Lease, asked: float, seconds: float) -> None:
        """
        The store accepted a request, made at C{asked}, to set C{lease}'s
        expiry C{seconds} on.
        """
        lease.confirm(asked, self.reactor.seconds(), seconds, self.commits.wall())

    @inlineCallbacks
    def _fetch(
        self, task: Task, file: IO[bytes], path: Path
    ) -> Generator[Deferred[Any], Any, tuple[int, AnswerCheck, Failure | None]]:
        """
        Fetch C{task.url} into C{file} (open at C{path}) through the client,
        hashing and judging its bytes as they arrive, renewing the lease
        meanwhile; once the body is whole, flush C{file}.

        @return: A Deferred firing with (bytes, the answer's check, failure
            or None).  A failure to write C{file} is an L{Unwritable}.
        """
        flight = self.activity.start(task)
        check = AnswerCheck(self.in_thread)
        writeback = Writeback(self.in_thread)
        # Bytes come at least every idle_timeout, or the attempt ends: on
        # disk at least every half of it, the file shows it is alive.
        fresh = KeptFresh(self.reactor, self.context.settings.idle_timeout / 2)

        unwritten: list[OSError] = []

        def write(data: bytes) -> None:
            try:
                file.write(data)
                fresh.wrote(file)
            except OSError as e:
                # The client fails the body with its own words; the
                # attempt's outcome is this disk's, not the answer's.
                unwritten.append(e)
                raise
            check.feed(data)
            writeback.wrote(file, len(data))
            self.activity.count_bytes(len(data))

        self.context.beat()  # the hub sees work as it starts, not only on the next heartbeat
        try:
            if not self.context.running:
                raise CancelledError()
            flight.request = self.client.fetch(flight.transfer, write)
            received = yield flight.request
            # An answer smaller than the file's buffer (every error
            # document) is not written yet: a full disk must fail it here,
            # where it is the attempt's outcome, not as the file closes.
            try:
                file.flush()
            except OSError as e:
                unwritten.append(e)
                raise
        except Exception:
            check.abandon()
            if unwritten:
                return flight.transfer.received, check, Failure(Unwritable(path, unwritten[0]))
            return flight.transfer.received, check, Failure()
        finally:
            self.activity.end(task)
        return received, check, None

    @inlineCallbacks
    def _renew(self, task: Task, lease: Lease, seconds: float) -> Generator[Deferred[Any], Any, None]:
        """
        Renew C{task}'s lease for C{seconds}, once: the renewer's tick.  It never fails
        (a failure would stop the renewer): an outage is the store's to
        log, and a lost claim is found before anything is committed or
        recorded.
        """
        asked = self.reactor.seconds()
        try:
            held = yield self.store.renew(task.id, self.context.owner, seconds, task.claim)
        except StoreUnavailable:
            return
        except Exception:
            self.log.failure("cannot renew the lease of {url}", url=task.url, service="download")
            return
        if lease.over:
            # Answered after the outcome was recorded, which ended the claim.
            return
        if held:
            self._confirm(lease, asked, seconds)
        else:
            self.log.warn("lost the lease of {url}", url=task.url, service="download")


def _close(file: IO[bytes]) -> OSError | None:
    """
    Close C{file}, flushed already unless its download failed.

    @return: The error closing it raised, if any: a file system may report
        a write's fault only then (NFS), and a failed download's file may
        hold bytes its disk would not take.
    """
    try:
        file.close()
    except OSError as e:
        return e
    return None


def _on_disk(d: Deferred[_T], path: Path) -> Deferred[_T]:
    """
    @return: C{d}, failing with an L{Unwritable} for C{path} where it
        fails with an L{OSError}: file work on this host's disk.
    """

    def unwritable(failure: Failure) -> _T:
        failure.trap(OSError)
        raise Unwritable(path, cast(OSError, failure.value))

    return d.addErrback(unwritable)
