"""
One parse of a claimed file (the tables service's counterpart of
L{harbour.services.attempt}): the parse in a thread under a renewed lease,
then its outcome recorded in the store and announced on the bus.

The tables are committed only if the claim still holds when asked, under
the window's lock, just before the commit.  A retirement ends the claim,
then drops the window's tables under the same lock: so a parse retired
before its question commits nothing, and one retired after it commits
before that drop, which removes what it wrote (where the hub's drop
reaches: its own tables directory, or storage shared with it).

Whatever happens, the claim ends: C{parsed}, C{unparsable} with the reason
(a malformed answer, any error harbour did not foresee, or memory run out
on the same file L{MEMORY_FAILURES_MOST} times in a row, so that no file
is parsed again and again forever), or back to the queue for later (the
file is not on this host, the disk failed or filled, memory ran out, or
the store could not say whether the claim held), or at once (a revision
replaced the zip mid-parse, and the store did not give the file to
another claim meanwhile, or the service stopped or paused as its claim
came); unless it had ended already, when whoever ended it has the say.
A file of this host's storage that is gone is not waited for: its task is
put back to be downloaded again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import attr
import pyarrow
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.dataset.parse import ParseError
from harbour.dataset.write import ClaimEnded, Superseded, WrittenWindow, drop_window, write_window
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, ITaskStore
from harbour.services.announcing import Announcements
from harbour.services.audit import StorageAway, missing_files
from harbour.store.outages import STORE_RETRY, next_retry
from harbour.store.parse_queue import CUT_OFF_MOST, ParseJob
from harbour.store.tasks import RETIRED

#: How long a file that is not on this host waits before another try.  A
#: host claims only files of its own storage, or recorded without one
#: (before storages were recorded, or where the download could not tell
#: its directory's): such a file may be on a worker's own disk elsewhere.
ABSENT_RETRY = 600.0

#: How long a parse that failed for want of resources (a full disk, say)
#: waits before it is tried again.
TRANSIENT_RETRY = 60.0

#: The most parses of one file in a row that may run out of memory in one
#: process before the file is C{unparsable}, as many as the store lets be
#: cut off: one may have met other large parses at once, but a file that
#: needs more memory than the host has would otherwise be parsed, and run
#: out, every L{TRANSIENT_RETRY} seconds for ever.
MEMORY_FAILURES_MOST = CUT_OFF_MOST


class ClaimUnknown(Exception):
    """
    Whether a parse's claim still held could not be asked before its
    commit (the store was away, say): nothing was written.
    """


@attr.s(eq=False)
class Parses:
    """
    Runs parses and keeps their tally.

    @ivar lease_seconds: The current lease of a claim, read at each use
        (the C{work} topic may change it).
    @ivar downloads_dir: This host's download directory, read at each
        parse (the C{download} topic may change it): the zip of a job is
        there, as C{job.filename}, whether the directory is this host's
        own or storage shared with the host that downloaded it.
    @ivar in_thread: Runs a function in a thread.
    @ivar on_written: Called with the report of each table written, and
        the table's columns.
    @ivar call_from_thread: From one of C{in_thread}'s threads, runs a
        function on the reactor's thread and waits for its answer, or
        raises L{TimeoutError} if none comes in time.
    @ivar running: Whether the service runs: an outcome the store cannot
        record is tried again until it does, or the service stops.
    @ivar tables_storage: The storage id of C{tables_dir} (C{""} until
        known, or if it cannot be told), which each C{table.written}
        carries: the hub follows the tables other processes write into
        its own tables directory.
    @ivar starved: {task id: (the sha256 of its file, how many of its
        parses in a row ran out of memory)}, for the files whose last
        parse here did: any other outcome, or a revision, counts again
        from nothing.  A process the system kills for want of memory
        counts nothing here; its lease's expiry is counted by the store
        instead.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    store: ITaskStore = attr.ib()
    bus: IBus = attr.ib()
    owner: str = attr.ib()
    tables_dir: Path = attr.ib()
    lease_seconds: Callable[[], float] = attr.ib()
    downloads_dir: Callable[[], Path] = attr.ib()
    in_thread: Callable[..., Deferred[Any]] = attr.ib()
    on_written: Callable[[str, frozenset[str]], object] = attr.ib()
    call_from_thread: Callable[..., Any] = attr.ib()
    running: Callable[[], bool] = attr.ib(kw_only=True)
    #: Gives the storage id of this host's download directory (C{""} if it
    #: cannot be told); it never fails.
    storage: Callable[[], Deferred[str]] = attr.ib(default=lambda: succeed(""), kw_only=True)
    rows: int = attr.ib(default=0, init=False)
    written: int = attr.ib(default=0, init=False)
    failed: int = attr.ib(default=0, init=False)
    last_error: str = attr.ib(default="", init=False)
    parsing: dict[str, ParseJob] = attr.ib(factory=dict, init=False)
    tables_storage: str = attr.ib(default="", init=False)
    announcements: Announcements = attr.ib(factory=Announcements, init=False)
    starved: dict[str, tuple[str, int]] = attr.ib(factory=dict, init=False)

    @inlineCallbacks
    def run(self, job: ParseJob) -> Generator[Deferred[Any], Any, None]:
        """
        Parse one claimed file, holding its lease, and record the outcome.
        """
        directory = self.downloads_dir()
        source = directory / job.filename
        label = window_label(job.filename)
        # Renewed for this length at its pace, whatever the settings say
        # meanwhile: a shorter lease would run out between renewals.
        lease = self.lease_seconds()
        renewal = LoopingCall(self._keep, job, lease)
        renewal.clock = self.reactor
        renewal.start(lease / 3, now=False)
        self.parsing[job.id] = job

        def still_held() -> bool:
            # In the parse's thread, under the window's lock.
            try:
                return bool(self.call_from_thread(self._renew, job, lease))
            except (StoreUnavailable, TimeoutError) as e:
                raise ClaimUnknown(f"cannot ask whether the claim of {job.filename} holds: {e}") from e

        try:
            try:
                written = yield self.in_thread(_write, source, self.tables_dir, job, label, still_held)
            finally:
                # The parse is over: a renewal answered from now on may
                # find the claim ended by the outcome recorded next.
                self.parsing.pop(job.id, None)
                # Any outcome but running out of memory again counts anew.
                starved = self.starved.pop(job.id, None)
        except ParseError as e:
            yield self._unparsable(job, str(e))
        except Superseded:
            # A revision replaced the zip, so this claim is most likely
            # gone; if not, the zip now in place is parsed at once.
            yield self._later(job, 0, "its zip was replaced mid-parse")
        except ClaimEnded:
            # Whoever ended it (a retirement, another claim) has the say.
            self.log.info(
                "the claim of {file} ended mid-parse: nothing written", file=job.filename, service="tables"
            )
        except ClaimUnknown as e:
            yield self._later(job, TRANSIENT_RETRY, str(e))
        except FileNotFoundError:
            yield self._absent(job, directory, source)
        except OSError as e:
            yield self._later(job, TRANSIENT_RETRY, f"cannot write the tables of {source}: {e}")
        except (MemoryError, pyarrow.ArrowMemoryError) as e:
            yield self._out_of_memory(job, source, e, starved)
        except Exception as e:
            # Unforeseen, so most likely the same next time: record it
            # rather than parse the file again at every lease.
            self.log.failure("unexpected error parsing {file}", file=job.filename, service="tables")
            yield self._unparsable(job, f"{type(e).__name__}: {e}")
        else:
            yield self._parsed(job, written)
        finally:
            if renewal.running:
                renewal.stop()

    def _out_of_memory(
        self, job: ParseJob, source: Path, error: BaseException, starved: tuple[str, int] | None
    ) -> Deferred[None]:
        """
        The parse of C{job} ran out of memory: for want of memory, as a
        full disk is for want of room (two large parses at once, say), it
        is tried again later, unless its file's last parses here ran out
        too, as many as L{MEMORY_FAILURES_MOST} in a row with this one.

        @param starved: What L{starved} held for C{job} before this parse.
        """
        sha256, failures = starved or (job.sha256, 0)
        failures = failures + 1 if sha256 == job.sha256 else 1
        if failures >= MEMORY_FAILURES_MOST:
            return self._unparsable(
                job,
                f"its parse ran out of memory {failures} times in a row (last: {error}): "
                "harbourctl reparse tries again",
            )
        self.starved[job.id] = (job.sha256, failures)
        return self._later(job, TRANSIENT_RETRY, f"out of memory parsing {source}: {error}")

    def _renew(self, job: ParseJob, seconds: float) -> Deferred[bool]:
        """
        Renew C{job}'s lease for C{seconds}.

        @return: A L{Deferred} firing with whether its claim still holds.
        """
        return self.store.renew_parse(job.id, self.owner, job.token, seconds)

    def _keep(self, job: ParseJob, seconds: float) -> Deferred[None]:
        """
        Renew C{job}'s lease for C{seconds}, once: the renewal's tick.  It never fails (a
        failure would stop the renewal).
        """

        def answered(held: bool) -> None:
            if not held and job.id in self.parsing:
                self.log.warn("lost the claim of {file} mid-parse", file=job.filename, service="tables")

        def failed(failure: Failure) -> None:
            # The next renewal tries again: the lease outlives a short outage.
            if not failure.check(StoreUnavailable):
                self.log.failure(
                    "cannot renew the claim of {file}", failure, file=job.filename, service="tables"
                )

        return self._renew(job, seconds).addCallbacks(answered, failed)

    @inlineCallbacks
    def _recorded(self, write: Callable[[], Deferred[bool]]) -> Generator[Deferred[Any], Any, bool]:
        """
        Record a parse's outcome with C{write}, through a store outage, with
        backoff (the store logs the outage): not recorded, the parse would
        be cut off once its lease expired, and three such in a row would
        leave a good file unparsable.

        @raise StoreUnavailable: if the service stopped before the store
            answered; the lease then brings the file back.
        @return: A L{Deferred} firing with what C{write} answers: whether
            the claim still held.  (If an answer was lost with the
            connection after the store recorded the outcome, the next try
            finds the claim ended: the outcome stands, unannounced.)
        """
        delay = STORE_RETRY[0]
        while True:
            try:
                return (yield write())
            except StoreUnavailable:
                if not self.running():
                    raise
            yield deferLater(self.reactor, delay)
            delay = next_retry(delay)

    @inlineCallbacks
    def _parsed(self, job: ParseJob, written: WrittenWindow) -> Generator[Deferred[Any], Any, None]:
        held = yield self._recorded(
            lambda: self.store.finish_parse(job.id, self.owner, job.token, written.rows, "")
        )
        if not held:
            # A revision or another claim took it meanwhile, and that one
            # records; but a window retired meanwhile must not keep the
            # tables this parse just wrote.
            task = yield self.store.get(job.id)
            if task is None or task.state == RETIRED:
                yield self.in_thread(drop_window, self.tables_dir, job.report, window_label(job.filename))
            return
        self.rows += written.rows
        self.written += 1
        self._announce(
            "table.written",
            {
                "report": job.report,
                "task": job.id,
                "filename": job.filename,
                "rows": written.rows,
                "files": len(written.files),
                "days": [day.isoformat() for day in written.days],
                "columns": sorted(written.columns),
                "owner": self.owner,
                "tables_storage": self.tables_storage,
            },
        )
        self.on_written(job.report, written.columns)

    @inlineCallbacks
    def _unparsable(self, job: ParseJob, error: str) -> Generator[Deferred[Any], Any, None]:
        self.log.error("cannot parse {file}: {error}", file=job.filename, error=error, service="tables")
        held = yield self._recorded(lambda: self.store.finish_parse(job.id, self.owner, job.token, 0, error))
        if not held:
            return
        self.failed += 1
        self.last_error = f"{job.filename}: {error}"
        self._announce(
            "table.failed", {"report": job.report, "task": job.id, "filename": job.filename, "error": error}
        )

    def _announce(self, topic: str, payload: dict[str, Any]) -> None:
        """
        Publish the event of a parse whose outcome is recorded, without
        waiting for it: the outcome stands either way (a worker's bus is
        its link to the hub, which may be away or silent), and the event
        only wakes its followers sooner.
        """
        self.announcements.announce(
            self.bus,
            self.log,
            topic,
            payload,
            "{filename}: {topic} could not be sent: {error}",
            filename=payload["filename"],
            service="tables",
        )

    def give_back(self, job: ParseJob) -> Deferred[bool]:
        """
        Give C{job}'s claim back unparsed, for any host to parse at once.
        """
        return self.store.release_parse(job.id, self.owner, job.token, 0, "")

    @inlineCallbacks
    def _absent(self, job: ParseJob, directory: Path, source: Path) -> Generator[Deferred[Any], Any, None]:
        """
        The zip of C{job} is not at C{source}, in the download directory
        C{directory}.  If it was downloaded into this host's storage, it is
        gone (deleted, or a disk restored from an old backup): its task is
        put back to be downloaded again (see L{ITaskStore.refetch_missing}),
        which ends this claim.  A file of no storage may be on another
        host's disk, and is given back for later (L{ABSENT_RETRY}), as is
        one whose task the store would not put back or could not be asked
        about, or whose download directory no longer holds this storage
        (its volume not mounted).
        """
        here = yield self.storage()
        if here:
            try:
                gone = yield self.in_thread(missing_files, directory, here, [job.filename])
                moved = (yield self.store.refetch_missing([(job.id, here, job.sha256)])) if gone else []
            except StorageAway:
                # Its volume not mounted, say: every file is missing, none gone.
                moved = []
            except Exception as e:
                if not isinstance(e, StoreUnavailable):
                    self.log.failure(
                        "cannot put {file} back to be downloaded again", file=job.filename, service="tables"
                    )
                moved = []
            if job.id in moved:
                self.log.warn(
                    "{source} is gone from this host: it is downloaded again",
                    source=str(source),
                    service="tables",
                )
                self.last_error = f"{job.filename}: its zip was gone, so it is downloaded again"
                return
        yield self._later(job, ABSENT_RETRY, f"{source} is not on this host")

    @inlineCallbacks
    def _later(self, job: ParseJob, delay: float, error: str) -> Generator[Deferred[Any], Any, None]:
        self.log.warn("{error}; trying again in {delay:.0f} s", error=error, delay=delay, service="tables")
        self.last_error = f"{job.filename}: {error}"
        yield self._recorded(lambda: self.store.release_parse(job.id, self.owner, job.token, delay, error))


def _write(
    source: Path, tables_dir: Path, job: ParseJob, label: str, still_held: Callable[[], bool]
) -> WrittenWindow:
    """
    In a thread: the parse itself, committed only while its claim holds
    (see L{write_window}).

    @raise FileNotFoundError: If the file is not on this host (a zip that
        cannot be opened is a L{ParseError}).
    """
    if not source.is_file():
        raise FileNotFoundError(source)
    return write_window(
        source, tables_dir, job.report, label, url=job.url, sha256=job.sha256, still_held=still_held
    )


def window_label(filename: str) -> str:
    """
    @return: The label of the window a downloaded file holds (its name
        without C{.zip}), as its table files are named.
    """
    return Path(filename).name.removesuffix(".zip")
