"""
The audit of downloaded files: every C{[download] audit_interval}, a
download process checks that the files it downloaded are still in its
download directory, and puts the tasks of those that are gone (deleted by
hand or by a cleanup script, or a disk restored from an old backup) back
to C{pending} (L{harbour.interfaces.ITaskStore.refetch_missing}), to be
downloaded again as first downloads.

A round pages through the C{downloaded} tasks, L{PAGE} at a time, the
next page only once the last is done, so that it never floods the store
or the disk; it looks only at the tasks recorded with this process's
storage (the id of its download directory, see
L{harbour.services.storage}): a file of another storage is on another
host's disk.  The files of a page are looked at in one thread, after a
check that the directory still holds its storage id: a volume not mounted
(an empty directory in its place) would otherwise have every file found
missing.  A store outage or a file that cannot be looked at (other than
one not there) ends the round with a warning; the next comes on time.
A task downloaded again, revised, retired or claimed between the look and
the store's answer is left alone by the store.

Pages are read by rank in the listing of downloaded tasks, which moves
while the round runs (other downloads end, other tasks are revised): a
task may be looked at twice or not at all in one round, never wrongly
put back, and the next round looks again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attr
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from harbour.errors import StoreUnavailable
from harbour.interfaces import ITaskStore
from harbour.oasis.requests import UnsafeName, confined
from harbour.services.cycle import Cycle
from harbour.services.storage import held_storage
from harbour.store.tasks import DOWNLOADED, Task

#: How many downloaded tasks a round reads, and whose files it looks at,
#: at a time.
PAGE = 500

_T = TypeVar("_T")


class StorageAway(Exception):
    """
    The download directory does not hold the storage id its downloads
    were recorded with (its volume is not mounted, say): its files are
    not looked at.
    """


@attr.s(frozen=True, auto_attribs=True)
class AuditRound:
    """
    One round of the audit that ran to its end.

    @ivar when: When it ended (POSIX time).
    @ivar checked: How many files it looked at.
    @ivar missing: How many of them were gone, their tasks put back to
        C{pending}.
    @ivar seconds: How long it took.
    """

    when: float
    checked: int = attr.ib(validator=attr.validators.ge(0))
    missing: int = attr.ib(validator=attr.validators.ge(0))
    seconds: float

    def to_json(self) -> dict[str, object]:
        """
        @return: The round as plain JSON data, for C{Status}.
        """
        return attr.asdict(self)


def missing_files(directory: Path, storage: str, filenames: Sequence[str]) -> list[int]:
    """
    In a thread: which of C{filenames} are not in C{directory}.

    @param storage: The storage id C{directory} must hold.
    @return: The indexes in C{filenames} of those not there (a name that
        would leave the directory is no file of it, and is skipped).
    @raise StorageAway: if C{directory} does not hold C{storage}.
    @raise OSError: if a file cannot be looked at for another reason than
        its absence.
    """
    try:
        held = held_storage(directory)
    except (OSError, ValueError) as e:
        raise StorageAway(f"{directory} does not hold its storage id ({e}): is its volume mounted?") from e
    if held != storage:
        raise StorageAway(f"{directory} holds storage {held}, not {storage}: is its volume mounted?")
    gone = []
    for index, filename in enumerate(filenames):
        try:
            path = directory / confined(filename)
        except UnsafeName:
            continue
        try:
            os.stat(path)
        except FileNotFoundError:
            gone.append(index)
    return gone


@attr.s(eq=False)
class Audit:
    """
    Runs the audit's rounds, one at a time, one L{interval} from the end
    of a round to the next, the first one L{interval} after L{start} (a
    start stays cheap).

    @ivar clock: Times the rounds and their length.
    @ivar in_thread: Runs a function in a thread.
    @ivar directory: The download directory, read at each round.
    @ivar storage: Gives the storage id of a directory (C{""} if it cannot
        be told); it never fails.
    @ivar interval: The seconds between rounds (0: none), read whenever a
        round is planned (see L{configured}).
    @ivar page: How many tasks a round reads at a time.
    @ivar last: The last round that ran to its end, if any.
    """

    log = Logger()

    clock: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    in_thread: Callable[..., Deferred[Any]] = attr.ib()
    directory: Callable[[], Path] = attr.ib()
    storage: Callable[[Path], Deferred[str]] = attr.ib()
    interval: Callable[[], float] = attr.ib()
    page: int = attr.ib(default=PAGE, kw_only=True, validator=attr.validators.ge(1))
    last: AuditRound | None = attr.ib(default=None, init=False)
    _started: bool = attr.ib(default=False, init=False)
    # The interval the next round was planned with, or is to be planned
    # with once the round under way ends.
    _planned: float = attr.ib(default=0.0, init=False)
    _rounds: Cycle = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._rounds = Cycle(
            self.clock,
            self.run,
            self._next_interval,
            lambda: self._started and self.interval() > 0,
            "audit",
        )

    def start(self) -> None:
        """
        Plan the first round, one interval from now.
        """
        self._started = True
        self._rounds.replan()

    def configured(self) -> None:
        """
        The interval may have changed: plan the next round with the new
        one, from now, unless it is the one planned.  A round under way is
        left to end, and the next is planned with the new one from there.
        """
        if self.interval() == self._planned:
            return
        self._planned = self.interval()
        self._rounds.replan()

    def stop(self) -> Deferred[None]:
        """
        Plan no more rounds, and stop the one under way.

        @return: A L{Deferred} firing once no round runs; it never fails.
        """
        self._started = False
        return self._rounds.stop()

    def status(self) -> dict[str, object] | None:
        """
        @return: The last round that ran to its end (C{when}, C{checked},
            C{missing}, C{seconds}), or L{None} before the first.
        """
        return None if self.last is None else self.last.to_json()

    def _next_interval(self) -> float:
        self._planned = self.interval()
        return self._planned

    def _stoppable(self, waited: Deferred[_T]) -> Deferred[_T]:
        """
        @return: A L{Deferred} with C{waited}'s result, or failed with
            L{CancelledError} as soon as L{stop} is called: what it waits
            for (a store call, a thread) is left to end, unheeded, for a
            Redis command cut short would leave its reply to the next.
        """
        waiting: Deferred[_T] = Deferred()
        waited.chainDeferred(waiting)
        return self._rounds.interruptible(waiting)

    @inlineCallbacks
    def run(self) -> Generator[Deferred[Any], Any, None]:
        """
        One round: look at every file this process downloaded, and put the
        tasks of those gone back to C{pending}.  It logs how it ended, and
        never fails.
        """
        started = self.clock.seconds()
        directory = self.directory()
        try:
            checked, missing = yield self._check(directory)
        except CancelledError:
            self.log.info("audit of {directory} stopped", directory=str(directory), service="download")
        except StoreUnavailable as e:
            self._ended(directory, f"the store is away: {e}")
        except (StorageAway, OSError) as e:
            self._ended(directory, str(e))
        except Exception:
            self.log.failure("audit of {directory} failed", directory=str(directory), service="download")
        else:
            now = self.clock.seconds()
            self.last = AuditRound(now, checked, missing, now - started)
            self.log.info(
                "audit of {directory}: checked {checked} files, {missing} missing, in {seconds:.1f} s",
                directory=str(directory),
                checked=checked,
                missing=missing,
                seconds=now - started,
                service="download",
            )

    def _ended(self, directory: Path, why: str) -> None:
        self.log.warn(
            "audit of {directory} ended early: {why}; the next round tries again",
            directory=str(directory),
            why=why,
            service="download",
        )

    @inlineCallbacks
    def _check(self, directory: Path) -> Generator[Deferred[Any], Any, tuple[int, int]]:
        """
        @return: How many files of this process's storage were looked at,
            and how many of them were gone and their tasks put back.
        """
        here = yield self._stoppable(self.storage(directory))
        if not here:
            raise StorageAway(f"the storage of {directory} cannot be told")
        checked = missing = offset = 0
        while True:
            page: list[Task]
            page, total = yield self._stoppable(self.store.tasks(DOWNLOADED, None, offset, self.page))
            ours = [task for task in page if task.storage == here]
            gone: list[int] = yield self._stoppable(
                self.in_thread(missing_files, directory, here, [task.filename for task in ours])
            )
            checked += len(ours)
            moved: list[str] = []
            if gone:
                lost = [ours[index] for index in gone]
                moved = yield self._stoppable(
                    self.store.refetch_missing([(task.id, task.storage, task.sha256) for task in lost])
                )
                put_back = set(moved)
                for task in lost:
                    if task.id in put_back:
                        self.log.warn(
                            "{file} is missing from {directory}: it is downloaded again",
                            file=task.filename,
                            directory=str(directory),
                            service="download",
                        )
                missing += len(moved)
            if offset + self.page >= total:
                return checked, missing
            # Those put back left the listing: the next page starts sooner.
            offset += self.page - len(moved)
