"""
What the downloads do on disk, in threads: prepare a target, verify a
downloaded file, keep a file a revision replaces, commit verified files in
groups (synced before and after their renames, so a file under a final name
is always whole, even after a crash), and remove temporary files that dead
workers left behind.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from harbour.oasis import classify as verdicts

#: One verified file to commit: its temporary name, its final name, and
#: where the file it replaces is kept (if at all).
Move = tuple[Path, Path, Path | None, str]

#: Runs a function in a thread: C{run(f, *args)} fires with its result.
#: (L{Deferred}[L{Any}]: each function has its own result.)
InThread = Callable[..., Deferred[Any]]

#: A move waiting for its batch, and the L{Deferred} its committer waits on.
_Queued = tuple[Path, Path, Path | None, str, Deferred[None]]


def remove_abandoned(directory: Path, older_than: float, now: float) -> int:
    """
    In a thread: remove temporary files that no download has written to for
    C{older_than} seconds.  A live download writes at least every
    C{idle_timeout}, so such a file belongs to a worker that died.

    @return: How many were removed.
    """
    removed = 0
    for path in directory.rglob(".*.part-*"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def verify(temporary: Path) -> verdicts.Verdict:
    """
    In a thread: classify a downloaded file; remove it unless it holds data.
    """
    verdict = verdicts.classify(temporary)
    if verdict.kind != verdicts.DATA:
        os.unlink(temporary)
    return verdict


@functools.cache
def _load_syncfs() -> Callable[[int], int] | None:
    """
    @return: Linux's C{syncfs(2)}, or L{None} where there is none.
    """
    try:
        syncfs: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
        return syncfs
    except (OSError, AttributeError):
        return None


def _fsync_path(path: Path, data_only: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


def _commit(moves: list[Move]) -> list[Exception | None]:
    """
    In a thread: make verified files durable, rename them into place, and
    make the renames durable, so that a file under a final name is always
    whole, even after a crash.  One C{syncfs} covers the whole batch where
    the system has it; each directory is synced once.  A file being
    replaced is first linked under its C{keep} name when it has one, so
    that both names always hold whole files.

    @return: For each move, in order, the error that stopped it, or
        L{None}: one file that cannot be written or renamed fails alone.
        (A sync that fails raises: it concerns the whole batch.)
    """
    outcomes: list[Exception | None] = []
    for move in moves:
        try:
            _record_part(move[1]).write_text(move[3], encoding="utf-8")
            outcomes.append(None)
        except OSError as e:
            outcomes.append(e)
    good = [move for move, outcome in zip(moves, outcomes) if outcome is None]
    if not good:
        return outcomes
    syncfs = _load_syncfs()
    if syncfs is not None:
        fd = os.open(good[0][0].parent, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        finally:
            os.close(fd)
    else:
        for temporary, target, *ignored in good:
            _fsync_path(temporary, data_only=True)
            _fsync_path(_record_part(target), data_only=True)
    for index, (temporary, target, keep, _record) in enumerate(moves):
        if outcomes[index] is not None:
            continue
        try:
            if keep is not None and target.exists():
                _keep(target, keep)
            os.replace(temporary, target)
            # The record follows its file: a crash between the two leaves an
            # old record, and the file is then fetched again, never trusted.
            os.replace(_record_part(target), record_path(target))
        except OSError as e:
            outcomes[index] = e
    for directory in {move[1].parent for move in good}:
        _fsync_path(directory)
    return outcomes


def record_path(target: Path) -> Path:
    """
    @return: Where the record of the request C{target} answers is kept.
    """
    return target.with_name(f".{target.name}.json")


def is_record(path: Path) -> bool:
    """
    @return: Whether C{path} is a file's record (see L{record_path}).
    """
    return path.name.startswith(".") and path.name.endswith(".zip.json")


def _record_part(target: Path) -> Path:
    return target.with_name(f".{target.name}.json.part-record")


def record(url: str, sha256: str) -> str:
    """
    @return: The record written with a file: the request it answers and
        its hash.
    """
    return json.dumps({"url": url, "sha256": sha256}, sort_keys=True)


def _recorded(target: Path) -> dict[str, str]:
    try:
        found = json.loads(record_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


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
        _fsync_path(linked, data_only=True)
    os.replace(linked, keep)


class GroupCommit:
    """
    Commits verified downloads in batches: while one batch is being synced
    and renamed, the next gathers, so the cost of a sync is shared by every
    file that finished meanwhile.  Each file's commit succeeds or fails on
    its own (one rename that fails fails only its file), but a failed sync
    fails the whole batch.
    """

    def __init__(self, run_in_thread: InThread) -> None:
        self._run = run_in_thread
        self._queue: list[_Queued] = []
        self._busy = False

    def commit(
        self, temporary: Path, target: Path, keep: Path | None, url: str, sha256: str
    ) -> Deferred[None]:
        """
        @param keep: Where the file C{temporary} replaces is kept, if at all.
        @param url: The request C{temporary} answers, recorded with it.
        @param sha256: Its hash, recorded with it.
        @return: A Deferred firing once C{temporary} is durably at C{target}.
        """
        d: Deferred[None] = Deferred()
        self._queue.append((temporary, target, keep, record(url, sha256), d))
        self._next()
        return d

    def _next(self) -> None:
        if self._busy or not self._queue:
            return
        batch, self._queue = self._queue, []
        self._busy = True
        self._run(_commit, [(t, g, k, r) for t, g, k, r, ignored in batch]).addBoth(self._done, batch)

    def _done(self, result: list[Exception | None] | Failure, batch: list[_Queued]) -> None:
        self._busy = False
        for index, (*ignored, d) in enumerate(batch):
            if isinstance(result, Failure):
                d.errback(result)
            elif result[index] is not None:
                d.errback(Failure(result[index]))
            else:
                d.callback(None)
        self._next()


def _existing(path: Path) -> tuple[verdicts.Verdict, int, str]:
    """
    In a thread: classify and hash a file already in place.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return verdicts.classify(path), path.stat().st_size, digest.hexdigest()


def temporary_name(target: Path, token: int, nonce: int) -> Path:
    """
    @param token: The claim's fencing token.
    @param nonce: Random: two attempts of one claim never share a name.
    @return: Where claim C{token} downloads C{target}: beside it, hidden,
        named after the claim, so that cleaning up never takes a live
        download's file for an earlier one's.
    """
    return target.with_name(f".{target.name}.part-{token}-{nonce:08x}")


def _claim_of(path: Path, target: Path) -> int | None:
    """
    @return: The claim whose temporary file C{path} (of C{target}) is, or
        L{None} for a name that carries none (made before names did).
    """
    tail = path.name[len(f".{target.name}.part-") :]
    token, dash, ignored = tail.partition("-")
    return int(token) if dash and token.isdigit() else None


def prepare(
    target: Path,
    temporary: Path,
    token: int,
    superseded: str,
    url: str,
    idle: float,
    now: float,
) -> tuple[verdicts.Verdict, int, str] | IO[bytes]:
    """
    In a thread: make the directory; remove the temporary files of earlier
    claims of the task (their workers died, or lost the task and end with
    no use for them) that nothing has written to for C{idle} seconds: a
    worker whose lease expired may still be writing, and removes its own
    file when it ends (older ones are the janitor's); take a file already
    in place as the answer only if its record shows it was fetched for
    C{url} and it still has the recorded hash (and that hash is not
    C{superseded}: a revision replaces it); else open the temporary file.

    @param token: The fencing token of the claim C{temporary} is for.
    @return: (verdict, size, sha256) of a complete file already in place,
        or the opened temporary file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for path in target.parent.glob(f".{target.name}.part-*"):
        claim = _claim_of(path, target)
        try:
            if claim is not None and claim < token and now - path.stat().st_mtime > idle:
                path.unlink()
        except FileNotFoundError:
            pass
    recorded = _recorded(target)
    if target.exists() and recorded.get("url") == url:
        found = _existing(target)
        if found[0].kind == verdicts.DATA and found[2] == recorded.get("sha256") and found[2] != superseded:
            return found
    return open(temporary, "wb")


def kept_name(target: Path, revision: int) -> Path:
    """
    @return: Where the file of C{target} as of C{revision} (0: as first
        fetched) is kept once a revision replaces it.
    """
    return target.with_name(f"{target.stem}.rev{revision}{target.suffix}")
