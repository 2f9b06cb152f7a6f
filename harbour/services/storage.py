"""
Which storage a directory is on: a random id kept in a small file in it
(L{STORAGE_FILE}), made once, so that the processes sharing the directory
(one file system mounted on several hosts, or several processes of one
host) share the id, and those that do not, do not.

A download records its directory's id with the file (the task's
C{storage}), and a parser claims only the files of its own download
directory's id: a host parses only the files it has.  The id stays with
the directory: one moved to another host, file and all, takes its files'
parses with it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.config.checks import DATA_DIR_ENTRIES
from harbour.durability import sync_path

#: The name of the file holding a directory's storage id.
STORAGE_FILE = ".harbour-storage"

#: What a storage id is: 32 hexadecimal digits (128 random bits).
_STORAGE_ID = re.compile(r"[0-9a-f]{32}")

#: Errors of L{os.link} from a file system without hard links.
_NO_LINKS = frozenset((errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS))


def storage_id(directory: Path) -> str:
    """
    In a thread: the storage id of C{directory}, made (and the directory
    with it) if it has none yet.

    The id is made atomically and durably: written and synced under a
    temporary name, then linked to its final name, which a link never
    replaces, so that of processes making it at once the first wins and
    all read its id; and the directory is synced, so that the id outlives
    a crash.  (A file system without hard links gets the file made
    exclusively instead.)

    @raise OSError: if the directory or the file cannot be made or read.
    @raise ValueError: if the file holds anything but a storage id.
    """
    path = directory / STORAGE_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(16)
    temporary = directory / f"{STORAGE_FILE}.{secrets.token_hex(8)}.tmp"
    _write(temporary, made, os.O_EXCL)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
        with contextlib.suppress(FileExistsError):
            _write(path, made, os.O_EXCL)
    finally:
        temporary.unlink(missing_ok=True)
    sync_path(directory)
    return _read(path)


def held_storage(directory: Path) -> str:
    """
    In a thread: the storage id C{directory} holds now, made by nobody: a
    check that it is still the directory it was (its volume mounted, not
    replaced by an empty one).

    @raise OSError: if its file cannot be read (L{FileNotFoundError} if it
        has none).
    @raise ValueError: if the file holds anything but a storage id.
    """
    return _read(directory / STORAGE_FILE)


def storage_and_mirrors(directory: Path) -> tuple[str, list[Path]]:
    """
    In a thread: the storage id of C{directory} (see L{storage_id}), and if
    this call made it, the directories beside it that hold a storage of
    their own: mirrors left behind, as when C{[download] directory} was
    changed with harbour stopped and the files not moved.

    @raise OSError: as L{storage_id} does.
    @raise ValueError: as L{storage_id} does.
    """
    had = (directory / STORAGE_FILE).exists()
    identifier = storage_id(directory)
    if had:
        return identifier, []
    with contextlib.suppress(OSError):
        return identifier, sorted(
            found.parent
            for found in directory.parent.glob(f"*/{STORAGE_FILE}")
            # The tables directory holds a storage of its own (see
            # harbour.services.tables), and is never a mirror.
            if found.parent != directory and found.parent.name not in DATA_DIR_ENTRIES
        )
    return identifier, []


def _write(path: Path, identifier: str, flags: int) -> None:
    """
    Write C{identifier} to a new file C{path}, and sync it.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(descriptor, f"{identifier}\n".encode("ascii"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read(path: Path) -> str:
    """
    @return: The storage id in C{path}.
    @raise ValueError: if it holds anything else (an empty file, say: one
        made exclusively and not yet written).
    """
    text = path.read_bytes().decode("ascii", "replace").strip()
    if not _STORAGE_ID.fullmatch(text):
        raise ValueError(f"{path} does not hold a storage id (32 hexadecimal digits): {text[:40]!r}")
    return text


@attr.s(eq=False)
class StorageIds:
    """
    The storage ids of directories, each read (or made) once, in a thread.

    @ivar in_thread: Runs a function in a thread.
    @ivar service: The service asking, for the log.
    """

    log = Logger()

    in_thread: Callable[..., Deferred[Any]] = attr.ib()
    service: str = attr.ib()
    _known: dict[Path, str] = attr.ib(factory=dict, init=False)
    _logged: dict[Path, str] = attr.ib(factory=dict, init=False)

    def of(self, directory: Path) -> Deferred[str]:
        """
        @return: A L{Deferred} firing with the storage id of C{directory},
            or with C{""} if it cannot be told now (logged once per
            error; asked again next time); it never fails.
        """
        if directory in self._known:
            return succeed(self._known[directory])

        def found(result: tuple[str, list[Path]]) -> str:
            identifier, mirrors = result
            self._known[directory] = identifier
            self._logged.pop(directory, None)
            if mirrors:
                self.log.warn(
                    "made a new storage for {directory}, beside {mirrors}, which hold files of a mirror: if"
                    " [download] directory was changed, the files downloaded so far are still there and"
                    " are not found (stop harbour, move the old directory whole to the new name, start"
                    " harbour)",
                    directory=str(directory),
                    mirrors=", ".join(map(str, mirrors)),
                    service=self.service,
                )
            return identifier

        def unknown(failure: Failure) -> str:
            failure.trap(OSError, ValueError)
            error = str(failure.value)
            if self._logged.get(directory) != error:
                self._logged[directory] = error
                self.log.warn(
                    "cannot tell the storage of {directory}: {error}",
                    directory=str(directory),
                    error=error,
                    service=self.service,
                )
            return ""

        return self.in_thread(storage_and_mirrors, directory).addCallbacks(found, unknown)
