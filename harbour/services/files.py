"""
What the downloads do on disk, in threads: prepare a target (for a first
claim, open its temporary file), verify a downloaded file the stream could
not judge, name the records kept beside files, and remove temporary files
that dead workers left behind.  (Commits are
L{harbour.services.commit}'s.)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import IO, Any

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from harbour.durability import sync_path
from harbour.oasis import classify as verdicts
from harbour.services.storage import STORAGE_FILE

#: The write buffer of a download's file, whatever block size its file
#: system prefers.  Bytes arrive in reads of up to 64 KB (256 KB on plain
#: HTTP, see L{harbour.oasis.client.READ_SIZE}): one larger than the
#: buffer is written as it is, without a copy, and smaller ones (a slow
#: sender's trickle) are gathered.
WRITE_BUFFER = 8 << 10
#: Encodes records (see L{record}): C{json.dumps} with options builds an
#: encoder on every call, and a record is written for every file.
_RECORD_ENCODER = json.JSONEncoder(sort_keys=True)

#: Runs a function in a thread: C{run(f, *args)} fires with its result.
#: (L{Deferred}[L{Any}]: each function has its own result.)
InThread = Callable[..., Deferred[Any]]


class Unwritable(Exception):
    """
    A download's file could not be made, written, read back or put in
    place: a fault of this host's disk (full, read-only, a file where a
    directory should be), not of OASIS's answer.

    @ivar path: The file or directory at fault: the one the error names,
        if it names one (the directory a C{mkdir} could not make), else
        the one given.
    @ivar error: The operating system's error.
    """

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path if error.filename is None else error.filename
        self.error = error
        super().__init__(f"cannot write {self.path}: {error.strerror or error}")


def remove_abandoned(directory: Path, older_than: float, now: float, keep: Collection[Path] = ()) -> int:
    """
    In a thread: remove temporary files that no download has written to for
    C{older_than} seconds.  A live download writes at least every
    C{idle_timeout} (see L{KeptFresh}), so such a file belongs to a worker
    that died; but an attempt waiting to commit its file writes nothing,
    so this process's own attempts name theirs.

    @param keep: The temporary files of this process's attempts under way:
        never removed.
    @return: How many were removed.
    """
    removed = 0
    for path in directory.rglob(".*.part-*"):
        if path in keep:
            continue
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


@attr.s(eq=False)
class KeptFresh:
    """
    Flushes a download's file at least every C{every} seconds while its
    bytes arrive: a trickle's bytes would otherwise wait in the write
    buffer (L{WRITE_BUFFER}) for minutes, and the file's modification time
    would show it abandoned to the janitor of every process sharing the
    directory (L{remove_abandoned}).

    @ivar clock: Tells the time.
    @ivar every: The longest time bytes are held in the buffer, in seconds.
    """

    clock: IReactorTime = attr.ib()
    every: float = attr.ib()
    _due: float = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._due = self.clock.seconds() + self.every

    def wrote(self, file: IO[bytes]) -> None:
        """
        Bytes were written to C{file}: flush it if it is due.
        """
        now = self.clock.seconds()
        if now >= self._due:
            file.flush()
            self._due = now + self.every


def verify(temporary: Path) -> verdicts.Verdict:
    """
    In a thread: classify a downloaded file; remove it unless it holds data.
    """
    verdict = verdicts.classify(temporary)
    if verdict.kind != verdicts.DATA:
        os.unlink(temporary)
    return verdict


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


def is_bookkeeping(path: Path) -> bool:
    """
    @return: Whether C{path} is harbour's own, not a download: a file's
        record, or the directory's storage id (see
        L{harbour.services.storage}).
    """
    return is_record(path) or path.name == STORAGE_FILE


def record(url: str, sha256: str) -> str:
    """
    @return: The record written with a file: the request it answers and
        its hash.
    """
    return _RECORD_ENCODER.encode({"url": url, "sha256": sha256})


def _recorded(target: Path) -> dict[str, str]:
    try:
        found = json.loads(record_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


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
    fsync: Callable[[int], None] = os.fsync,
) -> tuple[verdicts.Verdict, int, str] | IO[bytes]:
    """
    In a thread: make the directory; remove the temporary files of earlier
    claims of the task (their workers died, or lost the task and end with
    no use for them) that nothing has written to for C{idle} seconds: a
    worker whose lease expired may still be writing, and removes its own
    file when it ends (older ones are the janitor's); take a file already
    in place as the answer only if its record shows it was fetched for
    C{url} and it still has the recorded hash (and that hash is not
    C{superseded}: a revision replaces it), once it is durable (see
    L{make_durable}); else open the temporary file.

    @param token: The fencing token of the claim C{temporary} is for.
    @param fsync: See L{make_durable}.
    @return: (verdict, size, sha256) of a complete file already in place,
        or the opened temporary file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # A first claim has no earlier ones to clean up after; listing the
    # directory for each file would cost time growing with its size.
    # (Names that carry no claim predate fencing tokens: the janitor's.)
    if token > 1:
        for path in target.parent.glob(f".{target.name}.part-*"):
            claim = _claim_of(path, target)
            try:
                if claim is not None and claim < token and now - path.stat().st_mtime > idle:
                    path.unlink()
            except FileNotFoundError:
                pass
    if target.exists() and (recorded := _recorded(target)).get("url") == url:
        found = _existing(target)
        if found[0].kind == verdicts.DATA and found[2] == recorded.get("sha256") and found[2] != superseded:
            # Its rename may not be durable yet (a commit whose sync was
            # still to come when its worker died, or failed): the task is
            # recorded done only once it is.
            make_durable(target, fsync)
            return found
    return _create(temporary)


def _create(temporary: Path) -> IO[bytes]:
    """
    @return: C{temporary}, created (or emptied) and open for writing, with
        a buffer of L{WRITE_BUFFER} bytes.
    """
    # A buffer size given spares asking whether the file is a terminal: a
    # system call, and so a turn at the interpreter's lock for the thread
    # that opens it.
    return open(temporary, "wb", buffering=WRITE_BUFFER)


def open_fresh(target: Path, temporary: Path, made: set[Path] | None = None) -> IO[bytes] | None:
    """
    In a thread, for a first claim (no earlier claim of the task left
    files to clean up after): make the directory and open the temporary
    file, as L{prepare} would, unless a file is already in place.

    @param made: Directories made (or found) already, not to be made
        again; the target's is added to it.
    @return: The opened temporary file, or L{None} if there is a file at
        C{target}: L{prepare} must judge it.
    """
    directory = target.parent
    if made is None or directory not in made:
        directory.mkdir(parents=True, exist_ok=True)
        if made is not None:
            made.add(directory)
    if target.exists():
        return None
    return _create(temporary)


def open_fresh_all(files: Sequence[tuple[Path, Path]]) -> list[IO[bytes] | None | Exception]:
    """
    In a thread: L{open_fresh} for each (target, temporary) pair of
    C{files}, each on its own, each directory made once.

    @return: For each, in order, what L{open_fresh} returned, or the
        exception it raised.
    """
    made: set[Path] = set()
    opened: list[IO[bytes] | None | Exception] = []
    for target, temporary in files:
        try:
            opened.append(open_fresh(target, temporary, made))
        except Exception as e:
            # Its own failure: the files opened before it are others'.
            opened.append(e)
    return opened


def make_durable(target: Path, fsync: Callable[[int], None] = os.fsync) -> None:
    """
    In a thread: make the file at C{target}, its record and their names
    durable.

    @param fsync: Makes one open file durable: L{os.fsync} unless a test
        watches.
    @raise OSError: if one cannot be.
    """
    for path in (target, record_path(target), target.parent):
        sync_path(path, fsync)


def kept_name(target: Path, revision: int) -> Path:
    """
    @return: Where the file of C{target} as of C{revision} (0: as first
        fetched) is kept once a revision replaces it.
    """
    return target.with_name(f"{target.stem}.rev{revision}{target.suffix}")
