"""
The C{config} service (the seed's CONFIG SERVER and INOTIFY).

It reads every C{*.toml} file of the configuration directory, validates the
whole configuration, and publishes each topic on the bus (retained, so that
a service starting later still gets it).  It watches the directory with
C{twisted.internet.inotify}; a burst of events, such as an editor's save
through a temporary file and a rename, is coalesced into one reload.  What
inotify cannot see is caught within two L{CHECK_SECONDS}: every so often
the service compares the directory and its files (their links followed)
with what it last read, and reloads if they differ and have stopped
changing, watching the directory afresh if it was replaced.  The end of
the directory's own watch (it was removed or moved away) and an overflow
of the kernel's queue of events (L{OverflowNotifier}) make a reload at
once, and every reload too watches the directory at the path afresh if it
is not the one watched.  So a file that is a link into another directory
(a Kubernetes ConfigMap's), the directory renamed or removed and made
again, and events inotify dropped are all read.  A file still open for
writing (changed, and not yet closed, as inotify tells) is waited for, at
most L{WRITING_GRACE}, before the directory is read, each reload taking
in first the events the reactor has not read yet; a file that defined
a topic and is gone or empty, or goes away as the reload reads it, is
waited for (L{VANISHED_GRACE}) too.  Still empty after that, a file that
defined a topic is an error that keeps the configuration (read as such,
its topics would take their defaults: an emptied manifest would send
every request to the real OASIS, 39 months back); a file removed gives its
topics their defaults, except the reports'.  A change of the download
directory is an error that keeps the configuration too: the files
downloaded so far are recorded relative to it, and would be left behind.
Only topics whose content changed are published again.  A configuration
with errors publishes C{config.error} once per bad file (in as many
messages as its errors need) and changes nothing, as does a failure of
the loader itself, reported as an error of the directory; every reload
without errors ends with C{config.loaded} (not retained), whether or not a
topic changed.

No event grows with the configuration: the reports go out in pages
(L{harbour.config.paging}); a report too large for one is a configuration
error, found before anything is published.  A topic counts as published
only once the bus has accepted it; one the bus refuses is logged with the
reason and published as C{config.error}, the topics that could be
published are, and the next reload tries it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet import inotify
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath
from zope.interface import implementer

from harbour.config.paging import LIMIT, REPORTS, encode, pack, page_number, paginate
from harbour.config.schema import (
    TOPICS,
    Configuration,
    Loaded,
    Locator,
    Problem,
    config_files,
    default_configuration,
    is_config_name,
    printable,
    read_directory,
)
from harbour.errors import HarbourError
from harbour.interfaces import IBus, IConfigSource, IStatusSource

#: What a save looks like to inotify, whatever the editor; C{IN_MODIFY}
#: without its C{IN_CLOSE_WRITE} yet is a file still being written.
#: C{IN_ATTRIB} is a C{chmod} or C{chown}: a file saved unreadable to the
#: service and then made readable changes nothing else.
WATCH_MASK = (
    inotify.IN_MODIFY
    | inotify.IN_ATTRIB
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_MOVED_TO
    | inotify.IN_MOVED_FROM
    | inotify.IN_CREATE
    | inotify.IN_DELETE
)

#: What ends the watch of the directory itself, or leaves it watching
#: what is no longer at its path (the kernel sends C{IN_IGNORED} whatever
#: the mask, once the watch is gone).
WATCH_ENDED = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED

#: The event (not retained) that ends every reload without errors.
LOADED = "config.loaded"

#: Quiet time after the last event of a burst before reloading.
SETTLE_SECONDS = 0.01

#: A burst that never goes quiet is still read this often.
MAX_SETTLE_SECONDS = 0.1

#: How often the directory is compared with what was last read, for what
#: inotify cannot see.
CHECK_SECONDS = 5.0

#: How long a reload waits for a file read last time to come back: an
#: editor's save may rename it away before it puts the new one in place,
#: and read in between, its topics would take their defaults (a manifest's
#: would change every request) for a moment.
VANISHED_GRACE = 1.0

#: How long a reload waits for a file that is open for writing (changed
#: and not yet closed) to be closed: a slow writer (C{scp}, C{curl >
#: file}, a template rendered) leaves it half-written meanwhile.  A writer
#: that holds it open longer has it read all the same, and logged.
WRITING_GRACE = 60.0

#: The entry a Kubernetes ConfigMap volume swaps to change its files.
CONFIGMAP_DATA = "..data"

#: What the configuration directory and its files were when last read:
#: the directory's device and inode, then each configuration file's name,
#: device, inode, modification time, size, mode and change time (which a
#: C{chmod} or C{chown} moves: a file made readable is read again), its
#: link followed (or None for a link to nothing); None if the directory
#: cannot be listed.
Fingerprint = tuple[object, ...] | None


#: How much of the kernel's queue of inotify events one read takes in
#: when a reload drains it (see L{OverflowNotifier.drain}).
DRAIN_BYTES = 64 * 1024

#: The most reads of one drain: 4 MiB, more than the kernel's queue
#: holds by default (16,384 events of at most 272 bytes each).
DRAIN_READS = 64

#: The header of an inotify event: watch descriptor, mask, cookie and the
#: length of the name after it.
_EVENT_HEADER = struct.Struct("=LLLL")


class OverflowNotifier(inotify.INotify):
    """
    An L{inotify.INotify} that also tells when the kernel's queue of
    events overflowed, and so events were lost.
    """

    def __init__(self, reactor: IReactorTime, overflowed: Callable[[], object]) -> None:
        """
        @param overflowed: Called on each overflow.
        """
        super().__init__(reactor)
        self._overflowed = overflowed

    def _doRead(self, in_: bytes) -> None:
        # Twisted passes on only the events of the watches it knows, and
        # an overflow belongs to none (its watch descriptor is -1): it is
        # looked for here, in the events as read.  An event cut short is
        # kept in _buffer, so the events start there.
        data = self._buffer + in_
        offset = 0
        while len(data) - offset >= _EVENT_HEADER.size:
            ignored, mask, cookie, size = _EVENT_HEADER.unpack_from(data, offset)
            if mask & inotify.IN_Q_OVERFLOW:
                self._overflowed()
            offset += _EVENT_HEADER.size + size
        super()._doRead(in_)

    def drain(self) -> None:
        """
        Take in now the events the kernel has queued, as the reactor does
        once it polls for them.  Twisted runs the timers that are due
        before it polls: a reload due then knows nothing of a write begun
        during the callback before, unless it drains them first.
        """
        # Bounded, should a writer queue events as fast as they are read.
        for ignored in range(DRAIN_READS):
            try:
                data = os.read(self._fd, DRAIN_BYTES)
            except InterruptedError:
                continue
            except OSError:
                return  # nothing more queued (the descriptor does not block), or closed
            if not data:
                return
            self._doRead(data)


def fingerprint(directory: Path) -> Fingerprint:
    """
    @return: The L{Fingerprint} of C{directory} now.
    """
    try:
        state = os.stat(directory)
        paths = config_files(directory)
    except OSError:
        return None
    files: list[object] = [(state.st_dev, state.st_ino)]
    for path in paths:
        try:
            found = os.stat(path)
        except OSError:
            files.append((path.name, None))
            continue
        files.append(
            (
                path.name,
                found.st_dev,
                found.st_ino,
                found.st_mtime_ns,
                found.st_size,
                found.st_mode,
                found.st_ctime_ns,
            )
        )
    return tuple(files)


def is_configuration_topic(topic: str) -> bool:
    """
    @return: Whether C{topic} is one the configuration service publishes:
        a topic of the schema, the C{reports} index, or one of its pages
        (C{reports.<n>}; any C{reports.} topic, so that no look-alike page
        can be slipped in next to them).
    """
    return topic in TOPICS or topic == REPORTS or topic.startswith(REPORTS + ".")


#: The longest message or text of one problem in a C{config.error} event;
#: a message may quote a value, and a value may be of any length.
MAX_PROBLEM_TEXT = 2000


def _clip(text: str) -> str:
    if len(text) <= MAX_PROBLEM_TEXT:
        return text
    return text[: MAX_PROBLEM_TEXT - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _problem_entry(problem: Problem) -> dict[str, object]:
    return {
        "line": problem.line,
        "key": _clip(problem.key),
        "message": _clip(problem.message),
        "text": _clip(str(problem)),
    }


def error_payloads(file: str, problems: list[Problem], limit: int = LIMIT) -> list[dict[str, object]]:
    """
    @return: The C{config.error} messages for one file's problems: one, or
        as many as needed for each to fit in one AMP value.  Each is
        C{{"file", "line", "errors": [{"line", "key", "message", "text"}]}},
        its C{line} that of its own first problem.
    """
    entries: list[object] = [_problem_entry(p) for p in problems]
    # A line number of 20 digits is room enough; the file name is what varies.
    room = len(encode({"file": file, "line": 10**19, "errors": []}))
    payloads = []
    for run in pack(entries, room, limit):
        first = run[0]
        assert isinstance(first, dict)
        payloads.append({"file": file, "line": first["line"], "errors": run})
    return payloads


def _placed(directory: str) -> str:
    """
    @return: Where a download C{directory} is: absolute, or in the data
        directory.
    """
    return directory if directory.startswith("/") else f"<data-dir>/{directory}"


@implementer(IConfigSource, IStatusSource)
@attr.s(eq=False)
class ConfigService(Service):
    """
    Publishes the configuration directory's topics and follows its changes.

    @ivar reactor: Also an L{twisted.internet.interfaces.IReactorFDSet},
        for inotify, once started.
    @ivar defaults: Per-topic defaults that replace the schema's own (the
        demo points C{manifest.base_url} at its simulator this way).
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    directory: Path = attr.ib(converter=Path)
    bus: IBus = attr.ib()
    defaults: dict[str, dict[str, Any]] = attr.ib(factory=dict)
    settle: float = attr.ib(default=SETTLE_SECONDS)
    max_settle: float = attr.ib(default=MAX_SETTLE_SECONDS)
    check_interval: float = attr.ib(default=CHECK_SECONDS)
    _published: dict[str, object] = attr.ib(factory=dict, init=False)
    _sent: dict[str, object] = attr.ib(factory=dict, init=False)
    _sources: dict[str, str] = attr.ib(factory=dict, init=False)
    _problems: list[Problem] = attr.ib(factory=list, init=False)
    _unpublished: list[Problem] = attr.ib(factory=list, init=False)
    _warnings: list[str] = attr.ib(factory=list, init=False)
    _last_error: dict[str, object] | None = attr.ib(default=None, init=False)
    _notifier: OverflowNotifier | None = attr.ib(default=None, init=False)
    _pending: IDelayedCall | None = attr.ib(default=None, init=False)
    _burst_started: float = attr.ib(default=0.0, init=False)
    _reloads: int = attr.ib(default=0, init=False)
    _read: Fingerprint = attr.ib(default=None, init=False)
    # The device and inode of the directory watched, None if none is.
    _watched: tuple[int, int] | None = attr.ib(default=None, init=False)
    _checks: LoopingCall | None = attr.ib(default=None, init=False)
    # What the last check found, when it differed from what was read: a
    # change is read once a check finds it again, settled.
    _seen: Fingerprint = attr.ib(default=None, init=False)
    # Whether the pending reload already waited for a vanished file.
    _waited: bool = attr.ib(default=False, init=False)
    # The configuration files changed and not yet closed (inotify told of
    # an IN_MODIFY and no IN_CLOSE_WRITE since), each with when it was
    # first told: reloads wait for them (see WRITING_GRACE).
    _writing: dict[str, float] = attr.ib(factory=dict, init=False)
    # Those of them whose wait is already logged.
    _writing_told: set[str] = attr.ib(factory=set, init=False)
    # Whether the pending reload waits for a file being written.
    _holding: bool = attr.ib(default=False, init=False)
    # Whether the last try to get an inotify instance failed (and was
    # told): each check tries again.
    _uninotified: bool = attr.ib(default=False, init=False)

    def owns(self, topic: str) -> bool:
        """
        @return: Whether C{topic} is this service's alone: its value comes
            from the configuration directory, and nobody else may publish it.
        """
        return is_configuration_topic(topic)

    def startService(self) -> None:
        """
        Watch the directory, then publish every topic.
        """
        super().startService()
        self._watch()
        self.reload()
        self._checks = LoopingCall(self._check_guarded)
        self._checks.clock = self.reactor
        self._checks.start(self.check_interval, now=False)

    def _watch(self) -> None:
        """
        Watch the directory now at the configured path.  Without an
        inotify instance (the per-user limit reached), warn once and go on
        with the checks alone, each of which tries again.
        """
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None
        self._watched = None
        # Their closes would come through the old watch, if at all.
        self._forget_writing()
        try:
            self._notifier = OverflowNotifier(self.reactor, self.schedule)
        except (inotify.INotifyError, OSError) as e:
            if not self._uninotified:
                self._uninotified = True
                self.log.warn(
                    "cannot watch {directory} with inotify ({error}): most likely too many inotify"
                    " instances, so raise fs.inotify.max_user_instances; meanwhile changes are read"
                    " within {within} seconds, by the periodic checks",
                    directory=printable(str(self.directory)),
                    error=str(e).rstrip("."),
                    within=f"{2 * self.check_interval:g}",
                    service="config",
                )
            return
        if self._uninotified:
            self._uninotified = False
            self.log.info(
                "watching {directory} with inotify again",
                directory=printable(str(self.directory)),
                service="config",
            )
        self._notifier.startReading()
        # Gone, it is watched again by the next check that finds it back.
        with contextlib.suppress(inotify.INotifyError, OSError):
            state = os.stat(self.directory)
            self._notifier.watch(
                FilePath(str(self.directory)), mask=WATCH_MASK | WATCH_ENDED, callbacks=[self._changed]
            )
            self._watched = (state.st_dev, state.st_ino)

    def _check_guarded(self) -> None:
        # A failure would stop the checks for good.
        try:
            self.check()
        except Exception:
            self.log.failure("cannot check the configuration directory", service="config")

    def check(self) -> bool:
        """
        Watch the directory afresh if it is not the one watched (replaced,
        or back); reload if it or its files differ from what was last read
        and are as the check before found them.  A file inotify does not
        see being written (a link into another directory, say) may be
        half-written when one check comes; read, it would be applied so.

        @return: Whether a reload was scheduled.
        """
        now = fingerprint(self.directory)
        self._follow(now)
        if now == self._read:
            self._seen = None
            return False
        if now != self._seen:
            self._seen = now
            return False
        self.schedule()
        return True

    def _follow(self, now: Fingerprint) -> None:
        """
        Watch the directory afresh if the one at its path, as C{now} found
        it, is not the one watched (replaced, back, or its watch ended);
        forget the watch if it is gone.
        """
        if now is None:
            # Gone, so not watched: back, even with its old inode, it is
            # watched afresh.
            self._watched = None
        elif (self._notifier is not None or self._uninotified) and now[0] != self._watched:
            self._watch()

    def stopService(self) -> None:
        """
        Stop watching.
        """
        super().stopService()
        if self._checks is not None and self._checks.running:
            self._checks.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._holding = False
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None
        self._uninotified = False

    def _changed(self, ignored: object, path: FilePath, mask: int) -> None:
        if mask & WATCH_ENDED:
            # The directory was removed (made again at once, it may have
            # its old inode, which a check would take for the one
            # watched) or moved away: the reload watches what is there,
            # and what was being written in it went with it.
            self._watched = None
            self._forget_writing()
            self.schedule()
            return
        name = path.asTextMode().basename()
        if not (is_config_name(name) or name == CONFIGMAP_DATA):
            return
        if mask & inotify.IN_MODIFY:
            self._writing.setdefault(name, self.reactor.seconds())
        elif mask & inotify.IN_ATTRIB:
            # Its mode or owner changed, not what is at the name, nor
            # whether it is being written.
            pass
        else:
            # Closed, or another file now at its name (created, renamed
            # there) or none: what is at the name is no longer written.
            self._writing.pop(name, None)
            self._writing_told.discard(name)
        self.schedule()

    def _forget_writing(self) -> None:
        """
        Forget the files being written: no close of theirs will be told.
        """
        self._writing.clear()
        self._writing_told.clear()

    def _still_writing(self, now: float) -> dict[str, float]:
        """
        @return: The files being written that a reload still waits for:
            those first changed less than L{WRITING_GRACE} ago.
        """
        return {name: since for name, since in self._writing.items() if now - since < WRITING_GRACE}

    def schedule(self) -> None:
        """
        Reload once the current burst of changes has settled, and no file
        is being written (see L{WRITING_GRACE}).
        """
        now = self.reactor.seconds()
        if self._pending is not None and self._pending.active():
            if not self._holding:
                # The wait for a vanished file is never cut short: the
                # event may be its replacement being created, and not
                # yet written.
                if not self._waited and now - self._burst_started + self.settle <= self.max_settle:
                    self._pending.reset(self.settle)
                return
            if self._still_writing(now):
                return
            # What was waited for is closed: read as any save is.
            self._pending.cancel()
        self._holding = False
        self._burst_started = now
        self._pending = self.reactor.callLater(self.settle, self._reload_now)

    def _reload_now(self) -> None:
        self._pending = None
        self._holding = False
        self._drain()
        if self._hold_for_writing():
            return
        if not self._waited and self._vanished_files():
            self._wait_for_vanished()
            return
        self._waited = False
        # Nobody waits for a reload inotify started: say here if it broke.
        self.reload().addErrback(lambda failure: self.log.failure("reload failed", failure, service="config"))

    def _drain(self) -> None:
        """
        Take in the inotify events queued and not yet read, so that a file
        whose writing began a moment ago (while the reactor was busy
        elsewhere) is waited for rather than read half-written.  This
        reload reads, or waits for, what they tell: the reload they
        scheduled is this one.
        """
        if self._notifier is None:
            return
        self._notifier.drain()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self._holding = False

    def _hold_for_writing(self) -> bool:
        """
        Put the reload off while a file is being written, until it is
        closed or, at the latest, L{WRITING_GRACE} after it was first
        changed; log the files read all the same, still open, and forget
        them (changed again, each is waited for afresh).

        @return: Whether the reload was put off.
        """
        now = self.reactor.seconds()
        writing = self._still_writing(now)
        for name in sorted(set(self._writing) - set(writing)):
            self.log.warn(
                "reading {file} while it is still open for writing: it was changed {seconds:.0f} s ago"
                " and not closed since",
                file=printable(name),
                seconds=now - self._writing.pop(name),
                service="config",
            )
            self._writing_told.discard(name)
        if not writing:
            return False
        untold = sorted(set(writing) - self._writing_told)
        if untold:
            self.log.info(
                "waiting for {files} to be closed: still open for writing (read in {seconds:.0f} s at most)",
                files=", ".join(map(printable, untold)),
                seconds=WRITING_GRACE,
                service="config",
            )
            self._writing_told.update(untold)
        self._holding = True
        self._pending = self.reactor.callLater(min(writing.values()) + WRITING_GRACE - now, self._reload_now)
        return True

    def _wait_for_vanished(self) -> None:
        """
        Reload once L{VANISHED_GRACE} has passed, without waiting again,
        whatever happens meanwhile (see L{schedule}).
        """
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._holding = False
        self._waited = True
        self._pending = self.reactor.callLater(VANISHED_GRACE, self._reload_now)

    def _vanished_files(self) -> bool:
        """
        @return: Whether a file that defined a topic when last read is gone
            or empty now.
        """
        for name in set(self._sources.values()):
            try:
                if not (self.directory / name).stat().st_size:
                    return True
            except OSError:
                return True
        return False

    @inlineCallbacks
    def reload(self) -> Generator[Deferred[Any], Any, tuple[list[str], list[str]]]:
        """
        See L{IConfigSource.reload}.

        @return: A L{Deferred} firing with (topics republished, problems as
            C{file:line: message} strings): the configuration's errors, or
            the topics that could not be published.  If a file that defined
            a topic went away as it was read, nothing is published (so both
            are empty), and the directory is read again after
            L{VANISHED_GRACE}, as when a file is found gone before reading.
        """
        self._reloads += 1
        # Taken before reading: a change made while reading differs from it.
        read = fingerprint(self.directory)
        self._follow(read)
        logged = False
        try:
            loaded = read_directory(self.directory, self.defaults)
        except Exception as e:
            loaded, logged = Loaded(None, [self._unloadable(e)]), True
        # Recorded once the load is over: a load that raised would
        # otherwise leave the directory counted as read, and nothing would
        # read it again until it changed.
        self._read = read
        gone = sorted(set(loaded.vanished) & set(self._sources.values()))
        if gone:
            # Most likely renamed away by a save: waited for as a file
            # found gone before reading is, lest its topics take their
            # defaults for a moment.
            self.log.info(
                "waiting for what went away as it was read: {files}",
                files=", ".join(map(printable, gone)),
                service="config",
            )
            self._wait_for_vanished()
            return [], []
        configuration, problems = loaded.configuration, loaded.problems
        if configuration is not None and (refusals := self._refusals(configuration)):
            configuration, problems = None, refusals
        self._problems = problems
        if configuration is None:
            yield self._report(problems, logged)
            return [], [str(p) for p in problems]
        self._sources = dict(configuration.sources)
        warnings = [str(w) for w in configuration.warnings]
        for warning in warnings:
            if warning not in self._warnings:
                # Not "warning=": the legacy log bridge takes an event with
                # that key for a Python warning and chokes on it.
                self.log.warn("config warning: {problem}", problem=warning, service="config")
        self._warnings = warnings
        republished: list[str] = []
        unpublished: list[Problem] = []
        for topic, payload in configuration.payloads().items():
            try:
                sent = yield self._publish(topic, payload, configuration)
            except Exception as e:
                unpublished.append(self._unpublishable(topic, e, configuration))
                continue
            self._published[topic] = payload
            if sent:
                republished.append(topic)
        self._unpublished = unpublished
        if unpublished:
            yield self._report(unpublished, logged=True)
        else:
            yield self._loaded(len(warnings))
        return sorted(republished), [str(p) for p in unpublished]

    def _unloadable(self, error: Exception) -> Problem:
        """
        Log a failure of the loader itself, which should report every
        problem of the files instead: lost, it would leave the daemon on
        its last configuration, or on the defaults at start, with no error
        to show for it.

        @return: The failure as a problem of the directory, naming it.
        """
        problem = Problem(
            self.directory.name or str(self.directory),
            1,
            "",
            _clip(f"cannot load the configuration: {type(error).__name__}: {error}"),
        )
        self.log.failure(
            "config error: {problem}",
            Failure(error),
            problem=str(problem),
            file=problem.file,
            service="config",
        )
        return problem

    def _refusals(self, configuration: Configuration) -> list[Problem]:
        """
        @return: Why C{configuration}, valid in itself, is refused as a
            change of the one in force: a topic that a file defined is no
            longer defined by any, the reports whether their file is gone
            or empty (see L{_reports_vanished}), another topic if its file
            is still there, empty (see L{_emptied}); or the download
            directory changed (see L{_directory_changed}).
        """
        refusals = [self._reports_vanished(configuration)]
        refusals.extend(self._emptied(topic, configuration) for topic in TOPICS if topic != "reports")
        refusals.append(self._directory_changed(configuration))
        return [problem for problem in refusals if problem is not None]

    def _directory_changed(self, configuration: Configuration) -> Problem | None:
        """
        @return: Why C{configuration} is refused if its download directory
            is not the one published: the tasks record their files
            relative to it, so that, taken while harbour runs, the files
            downloaded so far would be looked for in the new directory,
            neither found there nor fetched again, their parses waiting
            for good on the old directory's storage, while the status
            counted them downloaded.  Moving the directory whole,
            C{.harbour-storage} and all, with harbour stopped, keeps them.
        """
        published = self._published.get("download")
        if not isinstance(published, dict):
            return None  # nothing in force yet: the first configuration read sets it
        before, after = published["directory"], configuration.topics["download"].directory
        if after == before:
            return None
        file = configuration.sources.get("download") or self._sources.get("download", "(defaults)")
        return Problem(
            file,
            self._line(file, ("download", "directory")),
            "download.directory",
            f"cannot change while harbour runs (from {before!r} to {after!r}): the files downloaded so"
            f" far are recorded in {before!r}, and would be neither found in {after!r} nor fetched"
            " again, so the configuration stays as it was.  To move the mirror: stop harbour (and"
            f" its workers), move {_placed(before)} to {_placed(after)} on each host, whole"
            " (.harbour-storage and all), change directory, and start harbour again",
        )

    def _reports_vanished(self, configuration: Configuration) -> Problem | None:
        """
        @return: Why C{configuration} is refused if no file defines the
            reports any more where one did (emptied by a save cut short,
            removed before its replacement is copied in): taken, it would
            retire every task.  An explicit C{reports = []} is taken.
        """
        before = self._sources.get("reports")
        if before is None or "reports" in configuration.sources:
            return None
        if before in configuration.sources.values():
            what = f"{before} no longer defines [[reports]]"
        elif not (self.directory / before).exists():
            what = f"{before} is gone"
        else:
            what = f"{before} is empty or defines nothing"
        # TOML puts a key written after a [table] header inside that table.
        return Problem(
            before,
            1,
            "reports",
            f"no file defines the reports any more ({what}): taken, this would retire every task, so"
            " the configuration stays as it was (to stop every report, save reports = [] at the top of"
            " a file, before any [table])",
        )

    def _emptied(self, topic: str, configuration: Configuration) -> Problem | None:
        """
        @return: Why C{configuration} is refused if the file that defined
            C{topic} is still there but defines nothing (a writer that
            truncated it and has not written it yet, or a save cut short):
            taken, each key of the topic would take its default, an
            emptied manifest's the real OASIS and 39 months back.  A file
            removed, or that still defines other topics, was changed on
            purpose: its topic takes its defaults, as does an empty table.
        """
        before = self._sources.get(topic)
        if before is None or topic in configuration.sources or before in configuration.sources.values():
            return None
        if not (self.directory / before).exists():
            return None
        defaults = default_configuration(self.defaults).payloads()[topic]
        shown = ", ".join(f"{key} = {json.dumps(value)}" for key, value in defaults.items())
        return Problem(
            before,
            1,
            topic,
            f"no file defines [{topic}] any more ({before} is empty): taken, every key of it would take"
            f" its default ({shown}), so the configuration stays as it was (to take the defaults, save"
            f" an empty [{topic}] table, or remove {before})",
        )

    @inlineCallbacks
    def _loaded(self, warnings: int) -> Generator[Deferred[Any], Any, None]:
        """
        Publish C{config.loaded}: the reload succeeded, even if no topic
        changed (a bad save put right publishes nothing else).
        """
        try:
            yield self.bus.publish(LOADED, {"reloads": self._reloads, "warnings": warnings})
        except Exception:
            self.log.failure("cannot publish {topic}", topic=LOADED, service="config")

    @inlineCallbacks
    def _publish(
        self, topic: str, payload: object, configuration: Configuration
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        Publish the events of one topic that differ from those last
        published, each retained, in order; the reports go out in pages,
        their index last.

        @return: A L{Deferred} firing with whether anything was published,
            or failing with the first refusal (the events after it are not
            published, so the index never names a page that was not).
        """
        if topic == REPORTS:
            assert isinstance(payload, list)
            pages = paginate(payload)
            stale = [n for n in map(page_number, self._sent) if n is not None]
            events: list[tuple[str, object]] = list(pages.messages(stale))
            detail = f" ({len(payload)} reports in {len(pages.pages)} pages)"
        else:
            events = [(topic, payload)]
            detail = ""
        due = [(name, value) for name, value in events if self._sent.get(name) != value]
        if due:
            self.log.info(
                "publishing {topic} from {file}{detail}",
                topic=topic,
                file=configuration.sources.get(topic, "(defaults)"),
                detail=detail,
                service="config",
            )
        for name, value in due:
            yield self.bus.publish(name, value, retain=True)
            self._sent[name] = value
        return bool(due)

    def _unpublishable(self, topic: str, error: Exception, configuration: Configuration) -> Problem:
        """
        Log a topic the bus refused.

        @return: The problem, located in the file that defines the topic.
        """
        file = configuration.sources.get(topic, "(defaults)")
        # A topic too large for the bus was refused as the configuration
        # was loaded: this is the bus's own refusal.
        reason = str(error) or type(error).__name__
        problem = Problem(file, self._line(file, (topic,)), topic, _clip(f"cannot publish: {reason}"))
        if isinstance(error, HarbourError):
            self.log.error("config error: {problem}", problem=str(problem), file=file, service="config")
        else:
            self.log.failure(
                "config error: {problem}", Failure(error), problem=str(problem), file=file, service="config"
            )
        return problem

    def _line(self, file: str, path: tuple[object, ...]) -> int:
        try:
            return Locator((self.directory / file).read_text(encoding="utf-8-sig")).line(path)
        except (OSError, UnicodeDecodeError):
            return 1  # the defaults, or a file gone since

    @inlineCallbacks
    def _report(self, problems: list[Problem], logged: bool = False) -> Generator[Deferred[Any], Any, None]:
        """
        Log problems (unless C{logged} already) and publish them as
        C{config.error}, in as many messages as each file's problems need.
        """
        by_file: dict[str, list[Problem]] = {}
        for problem in problems:
            by_file.setdefault(problem.file, []).append(problem)
            if not logged:
                self.log.error(
                    "config error: {problem}",
                    problem=str(problem),
                    file=problem.file,
                    service="config",
                )
        payloads = [payload for file, found in by_file.items() for payload in error_payloads(file, found)]
        self._last_error = payloads[-1]
        for payload in payloads:
            try:
                yield self.bus.publish("config.error", payload)
            except Exception:
                self.log.failure("cannot publish config.error", file=payload["file"], service="config")

    def current(self, topic: str) -> object:
        """
        @return: The payload last published for C{topic}.
        """
        return self._published.get(topic)

    def status(self) -> dict[str, object]:
        """
        See L{IStatusSource.status}.
        """
        return {
            "directory": str(self.directory),
            "sources": {topic: printable(file) for topic, file in self._sources.items()},
            "errors": [str(p) for p in self._problems + self._unpublished],
            "warnings": list(self._warnings),
            "last_error": self._last_error,
            "reloads": self._reloads,
        }
