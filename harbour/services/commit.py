"""
Durable commits of verified downloads, in groups.

A verified file is renamed into place only once its bytes are on disk, and
its commit is reported only once the rename is too, so that a file under a
final name is always whole, even after a crash.  Where the system has
C{syncfs(2)} (Linux), commits are pipelined: each sync makes durable both
the files that finished since the last one and the renames made after the
last one, so every file costs one share of a sync.  The sync and the
renames and records that follow it run in one thread call per group: each
creates or renames a name in a directory, which waits on the file
system's metadata updates, and the reactor's thread must never wait so.
Elsewhere each group is synced file by file in a thread.  Either way a
group is whatever finished while the previous sync ran: its size follows
the time a sync takes, not a count.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harbour.durability import sync_path
from harbour.services.files import InThread, record, record_path

#: Makes a file system durable: C{syncfs(2)} given a descriptor on it.
SyncFS = Callable[[int], int]
#: Tells the wall time, as L{time.time} does.
WallClock = Callable[[], float]
#: Tells the wall time a lease lasts until (see L{Move.deadline}).  It is
#: read in a thread, and so only reads a value the reactor's thread sets.
Deadline = Callable[[], float]


@attr.s(auto_attribs=True, frozen=True)
class Move:
    """
    One verified file to commit.

    @ivar temporary: Where it is.
    @ivar target: Its final name.
    @ivar keep: Where the file it replaces is kept, if at all.
    @ivar record: The record written beside it (see L{record}).
    @ivar deadline: Tells, when asked in the thread that renames, the wall
        time (as L{time.time} tells it) until which the lease of the claim
        that fetched it surely lasts, if it has one: renewals move it on.
        Past it, another worker may hold the task, and the file is not put
        in place.
    """

    temporary: Path
    target: Path
    keep: Path | None
    record: str
    deadline: Deadline | None = None


class LeaseRanOut(Exception):
    """
    A file was not put in place: the lease of the claim that fetched it
    ran out before its rename.
    """


@functools.cache
def load_syncfs() -> SyncFS | None:
    """
    @return: Linux's C{syncfs(2)}, or L{None} where there is none.
    """
    try:
        syncfs: SyncFS = ctypes.CDLL(None, use_errno=True).syncfs
        return syncfs
    except (OSError, AttributeError):
        return None


def _keep(target: Path, keep: Path) -> None:
    """
    Give C{target}'s file the name C{keep} too (replacing an older one).
    """
    linked = keep.with_name(f".{keep.name}.part-keep")
    linked.unlink(missing_ok=True)
    try:
        os.link(target, linked)
    except OSError:  # a file system without hard links
        shutil.copy2(target, linked)
        sync_path(linked, os.fdatasync)
    os.replace(linked, keep)


def _keep_all(moves: Iterable[Move]) -> list[Exception | None]:
    """
    Keep the files that C{moves} replace, where asked.

    @return: For each move, in order, the error that stopped it, or L{None}.
    """
    outcomes: list[Exception | None] = []
    for move in moves:
        try:
            if move.keep is not None and move.target.exists():
                _keep(move.target, move.keep)
            outcomes.append(None)
        except OSError as e:
            outcomes.append(e)
    return outcomes


def _rename(move: Move, wall: WallClock) -> None:
    """
    Put C{move}'s file in place, then its record.  The record follows its
    file, and a file is trusted only if its record names its hash: a crash
    before the record is whole (and synced with the rename) leaves the file
    to be fetched again, never trusted.

    @param wall: Tells the time C{move.deadline} is in.
    @raise LeaseRanOut: past C{move.deadline}: nothing is renamed.
    """
    if move.deadline is not None and wall() > move.deadline():
        raise LeaseRanOut(move.target)
    os.replace(move.temporary, move.target)
    _write_record(record_path(move.target), move.record)


def _write_record(path: Path, text: str) -> None:
    """
    Write C{text} as the whole of the file at C{path}, with no more system
    calls than it takes: each is a turn at the interpreter's lock for the
    thread that makes it.
    """
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _sync_file_systems(directories: Iterable[Path], syncfs: SyncFS) -> None:
    """
    Make every file system holding one of C{directories} durable.

    @raise OSError: if one cannot be.
    """
    synced: set[int] = set()
    for directory in directories:
        # One system call for each directory, three only for the first of
        # each file system: each is a turn at the interpreter's lock.
        device = os.stat(directory).st_dev
        if device in synced:
            continue
        fd = os.open(directory, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), f"syncfs of {directory} failed")
            synced.add(device)
        finally:
            os.close(fd)


def sync_file_system(directory: Path) -> None:
    """
    In a thread: make the file system holding C{directory} durable, with
    C{syncfs(2)} where there is one, else with C{sync(2)}.

    @raise OSError: if it cannot be.
    """
    syncfs = load_syncfs()
    if syncfs is None:
        os.sync()
    else:
        _sync_file_systems([directory], syncfs)


def _sync_and_rename(
    moves: list[Move], directories: set[Path], syncfs: SyncFS, wall: WallClock
) -> list[Exception | None]:
    """
    In a thread: keep the files C{moves} replace, make the file systems of
    C{directories} durable (the moves' bytes and kept names, and every
    rename and record written before), then put each move's file in place
    with its record (made durable by the next sync).

    @return: As L{_keep_all}, for the keeping and the renaming.
    @raise OSError: if a sync fails: it concerns everything, and nothing
        is renamed.
    """
    outcomes = _keep_all(moves)
    _sync_file_systems(directories, syncfs)
    for index, move in enumerate(moves):
        if outcomes[index] is None:
            try:
                _rename(move, wall)
            except (OSError, LeaseRanOut) as e:
                outcomes[index] = e
    return outcomes


def _commit_each(moves: list[Move], wall: WallClock) -> list[Exception | None]:
    """
    In a thread, where there is no C{syncfs}: for each move, sync its file,
    keep what it replaces, rename it into place and sync its record; then
    sync each directory a file was renamed into, once.

    @return: As L{_keep_all}: each file succeeds or fails on its own (one
        missing temporary file fails only itself), but a directory that
        cannot be synced fails every file renamed into it.
    """
    outcomes: list[Exception | None] = []
    for move in moves:
        try:
            sync_path(move.temporary, os.fdatasync)
            if move.keep is not None and move.target.exists():
                _keep(move.target, move.keep)
            _rename(move, wall)
            sync_path(record_path(move.target), os.fdatasync)
            outcomes.append(None)
        except (OSError, LeaseRanOut) as e:
            outcomes.append(e)
    for directory in {move.target.parent for move, outcome in zip(moves, outcomes) if outcome is None}:
        try:
            sync_path(directory)
        except OSError as e:
            for index, move in enumerate(moves):
                if outcomes[index] is None and move.target.parent == directory:
                    outcomes[index] = e
    return outcomes


@attr.s(eq=False)
class GroupCommit:
    """
    Commits verified downloads in groups (see the module's docstring).
    Each file's commit succeeds or fails on its own (one rename that fails
    fails only its file), but a failed sync fails every file it concerned.

    @ivar run: Runs a function in a thread.
    @ivar syncfs: C{syncfs(2)}, or L{None} to sync file by file.
    @ivar clock: What spaces syncs.
    @ivar wall: Tells the wall time that the moves' deadlines are in, in
        the thread that renames.
    @ivar interval: The least time from the start of one sync to the start
        of the next: each forces the file system to write its metadata, and
        every file creation and rename waits meanwhile, so fewer, larger
        groups cost the downloads less.
    """

    run: InThread = attr.ib()
    syncfs: SyncFS | None = attr.ib(factory=load_syncfs)
    clock: IReactorTime | None = attr.ib(default=None)
    interval: float = attr.ib(default=0.0)
    wall: WallClock = attr.ib(default=time.time)
    _last: float = attr.ib(default=float("-inf"), init=False)
    _timer: IDelayedCall | None = attr.ib(default=None, init=False)
    _queue: list[tuple[Move, Deferred[None]]] = attr.ib(factory=list, init=False)
    # In place, waiting for the sync that makes their renames durable.
    _renamed: list[tuple[Move, Deferred[None]]] = attr.ib(factory=list, init=False)
    _busy: bool = attr.ib(default=False, init=False)

    def commit(
        self,
        temporary: Path,
        target: Path,
        keep: Path | None,
        url: str,
        sha256: str,
        deadline: Deadline | None = None,
    ) -> Deferred[None]:
        """
        @param keep: Where the file C{temporary} replaces is kept, if at all.
        @param url: The request C{temporary} answers, recorded with it.
        @param sha256: Its hash, recorded with it.
        @param deadline: See L{Move.deadline}.
        @return: A Deferred firing once C{temporary} is durably at C{target},
            or failing with L{LeaseRanOut} if it is past C{deadline} when
            its turn to be renamed comes.
        """
        d: Deferred[None] = Deferred()
        self._queue.append((Move(temporary, target, keep, record(url, sha256), deadline), d))
        self._next()
        return d

    def _next(self) -> None:
        if self._busy or self._timer is not None or not (self._queue or self._renamed):
            return
        if self.clock is not None:
            wait = self._last + self.interval - self.clock.seconds()
            if wait > 0:
                self._timer = self.clock.callLater(wait, self._spaced)
                return
            self._last = self.clock.seconds()
        self._busy = True
        batch, self._queue = self._queue, []
        moves = [move for move, ignored in batch]
        if self.syncfs is None:
            done = self.run(_commit_each, moves, self.wall)
            done.addBoth(self._committed, batch)
            return
        renamed, self._renamed = self._renamed, []
        directories = {move.target.parent for move, ignored in batch + renamed}
        done = self.run(_sync_and_rename, moves, directories, self.syncfs, self.wall)
        done.addBoth(self._synced, batch, renamed)

    def _spaced(self) -> None:
        self._timer = None
        self._next()

    def _committed(
        self, result: list[Exception | None] | Failure, batch: list[tuple[Move, Deferred[None]]]
    ) -> None:
        """
        A group synced file by file is in place, durably, but for the
        files whose outcome is an error.
        """
        self._busy = False
        for index, (ignored, d) in enumerate(batch):
            _settle(d, result if isinstance(result, Failure) else result[index])
        self._next()

    def _synced(
        self,
        result: list[Exception | None] | Failure,
        batch: list[tuple[Move, Deferred[None]]],
        renamed: list[tuple[Move, Deferred[None]]],
    ) -> None:
        """
        A sync is over: the renames made before it are durable, and the
        files of C{batch} are on disk and in place (but for those whose
        outcome is an error), their renames to be made durable by the next.
        """
        self._busy = False
        if isinstance(result, Failure):
            for ignored, d in batch + renamed:
                _settle(d, result)
            self._next()
            return
        for index, (move, d) in enumerate(batch):
            error = result[index]
            if error is None:
                self._renamed.append((move, d))
            else:
                _settle(d, error)
        for ignored, d in renamed:
            d.callback(None)
        self._next()


def _settle(d: Deferred[None], outcome: Exception | Failure | None) -> None:
    if outcome is None:
        d.callback(None)
    else:
        d.errback(outcome if isinstance(outcome, Failure) else Failure(outcome))
