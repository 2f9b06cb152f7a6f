"""
Tests for L{harbour.config.watcher}: publication, diffing, errors and coalescing on
a L{Clock}, then real inotify on a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import attr
from twisted.internet.defer import Deferred, fail
from twisted.internet.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_Q_OVERFLOW,
    INotifyError,
)
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from harbour.bus import Bus, Subscription
from harbour.config import schema, watcher
from harbour.config.paging import LIMIT, encode, follow_reports, page_topic
from harbour.config.topics import ReportTopic, to_payload
from harbour.config.watcher import (
    MAX_SETTLE_SECONDS,
    SETTLE_SECONDS,
    VANISHED_GRACE,
    WRITING_GRACE,
    ConfigService,
    error_payloads,
)
from harbour.errors import PayloadTooLarge, StoreUnavailable
from harbour.interfaces import IBus, IEvent
from harbour.test.helpers import capture_log

#: How long an integration test waits for an inotify-driven event.
EVENT_TIMEOUT = 10

#: Whether an event, given its topic and (JSON) payload, is the one awaited.
Predicate = Callable[[str, Any], bool]


def logged(testcase: SynchronousTestCase, fragment: str, reactor: IReactorTime) -> Deferred[str]:
    """
    @return: A L{Deferred} firing with the text of the first log event
        from now on that contains C{fragment}, failing after a while.
    """
    found: Deferred[str] = Deferred()

    def observe(event: LogEvent) -> None:
        text = formatEvent(event)
        if fragment in text and not found.called:
            found.callback(text)

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    testcase.addCleanup(globalLogPublisher.removeObserver, observer)
    return found.addTimeout(EVENT_TIMEOUT, reactor)


def setting(bus: Bus, topic: str, key: str) -> object:
    """
    @return: C{key} of the retained payload of C{topic}.
    """
    payload = bus.retained(topic)
    assert isinstance(payload, dict)
    return payload[key]


class Recorder:
    """
    Subscribes to every topic of a bus and records what arrives.
    """

    def __init__(self, bus: Bus) -> None:
        self.events: list[tuple[str, Any]] = []
        self._waiting: list[tuple[Predicate, Deferred[tuple[str, Any]]]] = []
        bus.subscribe("*", self._received)

    def _received(self, event: IEvent) -> None:
        self.events.append((event.topic, event.payload))
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate(event.topic, event.payload):
                self._waiting.remove(entry)
                d.callback((event.topic, event.payload))

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.events]

    def wait(self, predicate: Predicate, reactor: IReactorTime) -> Deferred[tuple[str, Any]]:
        """
        @return: A L{Deferred} firing with the first later event for which
            C{predicate(topic, payload)} is true, failing after a while.
        """
        d: Deferred[tuple[str, Any]] = Deferred()
        self._waiting.append((predicate, d))
        return d.addTimeout(EVENT_TIMEOUT, reactor)


class QuietNotifier:
    """
    Stands for an inotify instance that has no events queued.
    """

    def drain(self) -> None:
        """
        Take in nothing.
        """


class ConfigServiceTests(SynchronousTestCase):
    """
    The service's logic, without inotify.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.clock = Clock()
        self.bus = Bus()
        self.recorder = Recorder(self.bus)
        self.service = ConfigService(self.clock, self.directory, self.bus)

    def write(self, name: str, text: str) -> None:
        (self.directory / name).write_text(text)

    def test_firstLoadPublishesEveryTopic(self) -> None:
        """
        The first load publishes every topic, retained, defaults included.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual((topics, errors), (["download", "manifest", "reports", "work"], []))
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)
        self.assertEqual(setting(self.bus, "reports", "count"), 0)

    def test_onlyChangedTopicsRepublished(self) -> None:
        """
        A reload publishes only the topics whose content changed.
        """
        self.write("a.toml", "[work]\nmax_attempts = 3\n[download]\nconcurrency = 1\n")
        self.successResultOf(self.service.reload())
        del self.recorder.events[:]
        self.write("a.toml", "# a comment\n[work]\nmax_attempts = 3\n[download]\nconcurrency = 2\n")
        topics, ignored = self.successResultOf(self.service.reload())
        self.assertEqual(topics, ["download"])
        self.assertEqual(self.recorder.topics(), ["download", "config.loaded"])

    def test_badFileKeepsLastGood(self) -> None:
        """
        A bad file publishes C{config.error} with its file, line and every
        error, and the last good configuration stays in force.
        """
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.write("a.toml", "[work]\nmax_attempts = 0\nlease_second = 9\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(topics, [])
        self.assertEqual(len(errors), 2)
        topic, payload = self.recorder.events[-1]
        self.assertEqual(topic, "config.error")
        self.assertEqual((payload["file"], payload["line"]), ("a.toml", 2))
        self.assertEqual([e["line"] for e in payload["errors"]], [2, 3])
        self.assertIn('did you mean "lease_seconds"', payload["errors"][1]["message"])
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)
        self.assertEqual(self.service.status()["last_error"], payload)
        self.flushLoggedErrors()

    def test_reportsVanishedRefused(self) -> None:
        """
        A reload in which no file defines the reports any more, where one
        did (the file emptied by a save cut short, or removed before its
        replacement is copied in), is an error that keeps the reports: it
        would retire every task.  Saving C{reports = []} stops them all.
        """
        reports = '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n'
        self.write("reports.toml", reports)
        self.successResultOf(self.service.reload())
        self.assertEqual(setting(self.bus, "reports", "count"), 1)
        for vanish, what in (
            (lambda: self.write("reports.toml", ""), "reports.toml is empty or defines nothing"),
            ((self.directory / "reports.toml").unlink, "reports.toml is gone"),
        ):
            vanish()
            topics, errors = self.successResultOf(self.service.reload())
            self.assertEqual(topics, [])
            self.assertEqual(
                errors,
                [
                    (
                        f"reports.toml:1: reports: no file defines the reports any more ({what}): taken,"
                        " this would retire every task, so the configuration stays as it was (to stop"
                        " every report, save reports = [] at the top of a file, before any [table])"
                    )
                ],
            )
            self.assertEqual(setting(self.bus, "reports", "count"), 1)
            self.write("reports.toml", reports)
            self.successResultOf(self.service.reload())
        self.write("reports.toml", "reports = []\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual((topics, errors), (["reports"], []))
        self.assertEqual(setting(self.bus, "reports", "count"), 0)

    def test_reportsRemovedFromFileKeepingOthers(self) -> None:
        """
        The reports' tables removed from a file that still defines another
        topic are refused as the reports gone are, saying that the file no
        longer defines them (it is neither gone nor empty).  Following the
        advice after a table, as TOML reads it, is refused, saying why.
        """
        manifest = '[manifest]\nstart = "2024-01-01"\n'
        self.write(
            "harbour.toml",
            manifest + '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n',
        )
        self.assertEqual(self.successResultOf(self.service.reload())[1], [])
        self.write("harbour.toml", manifest)
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(len(errors), 1)
        self.assertIn(
            "harbour.toml:1: reports: no file defines the reports any more (harbour.toml no longer"
            " defines [[reports]]): ",
            errors[0],
        )
        self.write("harbour.toml", manifest + "reports = []\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(
            errors,
            [
                (
                    "harbour.toml:3: manifest.reports: unknown key 'reports' (a top-level key must come"
                    " before the first [table])"
                )
            ],
        )
        self.write("harbour.toml", "reports = []\n" + manifest)
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual((topics, errors), (["reports"], []))

    def test_fileNameNotUTF8(self) -> None:
        """
        A file whose name is not UTF-8 is read; its errors are published
        as C{config.error} and C{Status} names it, both in UTF-8, each
        byte of the name that is not written as C{\\xe9}.
        """
        path = self.directory / os.fsdecode(b"caf\xe9.toml")
        path.write_text("[download]\nconcurrency = 0\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(errors, ["caf\\xe9.toml:2: download.concurrency: must be at least 1, not 0"])
        topic, payload = self.recorder.events[-1]
        self.assertEqual((topic, payload["file"]), ("config.error", "caf\\xe9.toml"))
        path.write_text("[download]\nconcurrency = 3\n")
        self.assertEqual(
            self.successResultOf(self.service.reload()), (["download", "manifest", "reports", "work"], [])
        )
        status = self.service.status()
        self.assertEqual(status["sources"], {"download": "caf\\xe9.toml"})
        encode(status)
        self.flushLoggedErrors()

    def test_loaderFailureReported(self) -> None:
        """
        A failure of the loader itself, which should have reported every
        problem of the files, is a configuration error of the directory
        naming the exception: logged with its traceback, published as
        C{config.error} and shown by C{Status}, and the last good
        configuration stays.
        """
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())

        def broken(directory: Path, defaults: object) -> None:
            raise RuntimeError("the loader broke")

        self.patch(watcher, "read_directory", broken)
        self.write("a.toml", "[work]\nmax_attempts = 4\n")
        topics, errors = self.successResultOf(self.service.reload())
        expected = f"{self.directory.name}:1: cannot load the configuration: RuntimeError: the loader broke"
        self.assertEqual((topics, errors), ([], [expected]))
        topic, payload = self.recorder.events[-1]
        self.assertEqual(
            (topic, payload["file"], payload["errors"][0]["text"]),
            ("config.error", self.directory.name, expected),
        )
        self.assertEqual(self.service.status()["errors"], [expected])
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_deeplyNestedValueLocated(self) -> None:
        """
        A value nested thousands deep (a dotted key of thousands of parts)
        is an error at its file and line, shown with the errors of the
        other files, not a failure of the loader naming none of them.
        """
        self.write("a.toml", "[work]\nmax_attempts = 0\n")
        self.write("b.toml", "[download]\ndirectory." + ".".join(["a"] * 3000) + " = 1\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(
            (topics, errors),
            (
                [],
                [
                    "a.toml:2: work.max_attempts: must be at least 1, not 0",
                    "b.toml:2: download.directory: must be a string, not {'a': {'a': {'a': {...}}}} (dict)",
                ],
            ),
        )
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_checkFollowsLinks(self) -> None:
        """
        A check finds what inotify cannot see: a file that is a link into
        another directory changed there.  It reloads only on a change.
        """
        elsewhere = Path(self.mktemp()).absolute()
        elsewhere.mkdir()
        (elsewhere / "work.toml").write_text("[work]\nmax_attempts = 3\n")
        (self.directory / "work.toml").symlink_to(elsewhere / "work.toml")
        self.successResultOf(self.service.reload())
        self.assertFalse(self.service.check())
        (elsewhere / "work.toml").write_text("[work]\nmax_attempts = 4\n")
        # A second later, as an edit would be: same size, so the time tells.
        read = (elsewhere / "work.toml").stat().st_mtime_ns
        os.utime(elsewhere / "work.toml", ns=(read + 10**9, read + 10**9))
        self.assertFalse(self.service.check(), "seen once: it may still be being written")
        self.assertTrue(self.service.check())
        self.clock.advance(self.service.settle)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 4)
        self.assertFalse(self.service.check())

    def test_checkSeesModeChange(self) -> None:
        """
        A check finds a file whose mode or owner alone changed, as a file
        saved unreadable to the service and then made readable with
        C{chmod} or C{chown} (its time and size are the same), and reads it
        again: where inotify cannot see, that error would otherwise stay
        until another file changed.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        os.chmod(self.directory / "work.toml", 0o600)
        self.successResultOf(self.service.reload())
        self.assertFalse(self.service.check())
        os.chmod(self.directory / "work.toml", 0o644)
        self.assertFalse(self.service.check(), "seen once")
        self.assertTrue(self.service.check())
        self.clock.advance(self.service.settle)
        self.assertEqual(self.service.status()["reloads"], 2)
        self.assertFalse(self.service.check())

    def test_checkWaitsUntilSettled(self) -> None:
        """
        A check reloads only a change the check before found as it is now:
        a file still being written (which inotify does not report until
        it is closed) is not applied half-written.
        """
        reports = "".join(
            f'[[reports]]\nname = "r{i}"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n' for i in range(3)
        )
        self.write("reports.toml", reports)
        self.successResultOf(self.service.reload())
        with open(self.directory / "reports.toml", "w") as writing:
            writing.write(reports[: len(reports) // 3])
            writing.flush()
            self.assertFalse(self.service.check())
            writing.write(reports[len(reports) // 3 : 2 * len(reports) // 3])
            writing.flush()
            self.assertFalse(self.service.check())
            writing.write(reports[2 * len(reports) // 3 :] + "# saved again\n")
        self.assertFalse(self.service.check())
        self.assertTrue(self.service.check())
        self.clock.advance(self.service.settle)
        self.assertEqual(setting(self.bus, "reports", "count"), 3)
        self.assertNotIn("config.error", self.recorder.topics())

    def test_vanishedFileWaitedFor(self) -> None:
        """
        A reload waits a moment for a file that defined a topic and is
        gone (renamed away by an editor's save before the new one is put
        in place): back by then, its topics never take their defaults.
        Gone for good, it is read without it then.
        """
        self.write("manifest.toml", '[manifest]\nstart = "2024-01-01"\n')
        self.successResultOf(self.service.reload())
        del self.recorder.events[:]
        os.rename(self.directory / "manifest.toml", self.directory / "manifest.toml~")
        self.service.schedule()
        self.clock.advance(self.service.settle)
        self.assertEqual(self.recorder.topics(), [])
        os.rename(self.directory / "manifest.toml~", self.directory / "manifest.toml")
        self.service.schedule()
        self.clock.advance(VANISHED_GRACE)
        self.assertEqual(self.recorder.topics(), ["config.loaded"])
        self.assertEqual(setting(self.bus, "manifest", "start"), "2024-01-01")
        (self.directory / "manifest.toml").unlink()
        self.service.schedule()
        self.clock.advance(self.service.settle)
        self.assertEqual(self.recorder.topics(), ["config.loaded"])
        self.clock.advance(VANISHED_GRACE)
        self.assertEqual(self.recorder.topics(), ["config.loaded", "manifest", "config.loaded"])
        self.assertEqual(setting(self.bus, "manifest", "start"), "-39mo")

    def test_vanishedFileWaitNotCutShort(self) -> None:
        """
        Events during the wait for a vanished file do not shorten it: the
        first may be its replacement being created, empty, and read then
        its topics would take their defaults until it is written.
        """
        self.write("manifest.toml", '[manifest]\nstart = "2024-01-01"\n')
        self.successResultOf(self.service.reload())
        del self.recorder.events[:]
        (self.directory / "manifest.toml").unlink()
        self.service.schedule()
        self.clock.advance(self.service.settle)
        self.clock.advance(0.03)
        self.write("manifest.toml", "")
        self.service.schedule()
        self.clock.advance(0.2)
        self.assertEqual(self.recorder.topics(), [])
        self.write("manifest.toml", '[manifest]\nstart = "2024-02-01"\n')
        self.service.schedule()
        self.clock.advance(VANISHED_GRACE)
        self.assertEqual(self.recorder.topics(), ["manifest", "config.loaded"])
        self.assertEqual(setting(self.bus, "manifest", "start"), "2024-02-01")

    def told(self, name: str, mask: int) -> None:
        """
        Tell the service what inotify would: C{mask} happened to C{name}.
        """
        self.service._changed(None, FilePath(str(self.directory / name)), mask)

    def test_writingWaitedFor(self) -> None:
        """
        A file changed and not yet closed (inotify told C{IN_MODIFY}, and
        no C{IN_CLOSE_WRITE} yet) is still being written: no reload reads
        it, neither the one its change schedules nor one a check
        schedules, until it is closed; then it is read after the usual
        settle time.
        """
        self.write("reports.toml", reports_toml(2))
        self.successResultOf(self.service.reload())
        del self.recorder.events[:]
        with open(self.directory / "reports.toml", "w") as writing:
            writing.write(reports_toml(1))
            writing.flush()
            self.told("reports.toml", IN_MODIFY)
            self.clock.advance(self.service.settle)
            self.assertFalse(self.service.check())
            self.assertTrue(self.service.check())
            self.clock.advance(WRITING_GRACE - 1)
            self.told("reports.toml", IN_MODIFY)
            self.clock.advance(self.service.settle)
            self.assertEqual((self.recorder.topics(), self.service.status()["reloads"]), ([], 1))
            writing.write(reports_toml(3)[len(reports_toml(1)) :])
        self.told("reports.toml", IN_CLOSE_WRITE)
        self.clock.advance(self.service.settle)
        self.assertEqual(self.service.status()["reloads"], 2)
        self.assertEqual(setting(self.bus, "reports", "count"), 3)
        self.assertEqual([p["count"] for t, p in self.recorder.events if t == "reports"], [3])

    def test_modeChangeRereads(self) -> None:
        """
        inotify's C{IN_ATTRIB} (a C{chmod} or C{chown}) makes a reload, and
        does not end the wait for a file still being written.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.told("work.toml", IN_ATTRIB)
        self.clock.advance(self.service.settle)
        self.assertEqual(self.service.status()["reloads"], 2)
        self.told("work.toml", IN_MODIFY)
        self.told("work.toml", IN_ATTRIB)
        self.clock.advance(self.service.settle)
        self.assertEqual(self.service.status()["reloads"], 2)
        self.told("work.toml", IN_CLOSE_WRITE)
        self.clock.advance(self.service.settle)
        self.assertEqual(self.service.status()["reloads"], 3)

    def test_writingWaitBounded(self) -> None:
        """
        A file held open for writing longer than L{WRITING_GRACE} from
        its first change is read all the same, and the log says it was
        read while still open; changed again after that, it is waited for
        afresh.
        """
        messages = capture_log(self)
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.write("work.toml", "[work]\nmax_attempts = 4\n")
        self.told("work.toml", IN_MODIFY)
        self.clock.advance(self.service.settle)
        self.assertTrue(any("waiting for work.toml to be closed" in m for m in messages), messages)
        self.clock.advance(WRITING_GRACE - self.service.settle - 0.001)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)
        self.clock.advance(0.001)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 4)
        self.assertTrue(
            any("reading work.toml while it is still open for writing" in m for m in messages), messages
        )
        self.write("work.toml", "[work]\nmax_attempts = 5\n")
        self.told("work.toml", IN_MODIFY)
        self.clock.advance(WRITING_GRACE - 1)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 4)
        self.told("work.toml", IN_CLOSE_WRITE)
        self.clock.advance(self.service.settle)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 5)

    def test_saveInPlaceSettles(self) -> None:
        """
        A file written in place and closed at once, as an ordinary save
        is, is read once the burst of its events settles, and another
        file's save is not held up by a file that is no longer written.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.write("work.toml", "[work]\nmax_attempts = 4\n")
        self.told("work.toml", IN_MODIFY)
        self.told("work.toml", IN_CLOSE_WRITE)
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 4)
        self.write("download.toml", "[download]\nconcurrency = 3\n")
        self.told("download.toml", IN_CLOSE_WRITE)
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(setting(self.bus, "download", "concurrency"), 3)

    def test_emptiedFileRefused(self) -> None:
        """
        A file that defined a topic and is still there but empty (a
        writer truncated it and has not written it yet, or a save was cut
        short) is, once waited for, an error that keeps the configuration,
        as an emptied file of reports is: taken, an emptied manifest would
        send every request to the real OASIS, 39 months back.  A file
        removed gives its topics their defaults, and so does an empty
        table, or a file that still defines another topic without it.
        """
        manifest = '[manifest]\nbase_url = "http://127.0.0.1:1/oasisapi"\nstart = 2025-01-01\n'
        self.write("manifest.toml", manifest)
        self.write("both.toml", "[work]\nmax_attempts = 3\n[download]\nconcurrency = 3\n")
        self.successResultOf(self.service.reload())
        self.write("manifest.toml", "# being written\n")
        self.service.schedule()
        self.clock.advance(self.service.settle + VANISHED_GRACE)
        self.assertEqual(setting(self.bus, "manifest", "start"), "2025-01-01")
        self.assertEqual(
            self.service.status()["errors"],
            [
                (
                    "manifest.toml:1: manifest: no file defines [manifest] any more (manifest.toml is"
                    " empty): taken, every key of it would take its default (base_url ="
                    ' "https://oasis.caiso.com/oasisapi", start = "-39mo", end = "today", timezone ='
                    ' "America/Los_Angeles", follow_publications = true, publications_interval = 900.0), so'
                    " the configuration stays as it was (to take the defaults, save an empty [manifest]"
                    " table, or remove manifest.toml)"
                )
            ],
        )
        self.write("manifest.toml", manifest)
        self.assertEqual(self.successResultOf(self.service.reload()), ([], []))
        self.write("both.toml", "[work]\nmax_attempts = 3\n")
        self.assertEqual(self.successResultOf(self.service.reload()), (["download"], []))
        self.write("manifest.toml", "[manifest]\n")
        self.assertEqual(self.successResultOf(self.service.reload()), (["manifest"], []))
        self.write("manifest.toml", manifest)
        self.successResultOf(self.service.reload())
        (self.directory / "manifest.toml").unlink()
        self.assertEqual(self.successResultOf(self.service.reload()), (["manifest"], []))
        self.assertEqual(setting(self.bus, "manifest", "start"), "-39mo")
        self.flushLoggedErrors()

    def test_directoryChangeRefused(self) -> None:
        """
        A change of the download directory while harbour runs, which
        would leave every file downloaded so far behind, its tasks
        counted downloaded, is an error at the key that keeps the whole
        configuration and says how to move a mirror; the same directory
        written otherwise is no change.  Read at start, the directory is
        taken.
        """
        self.write("download.toml", '[download]\nconcurrency = 3\ndirectory = "mirror"\n')
        self.successResultOf(self.service.reload())
        self.write("download.toml", '[download]\nconcurrency = 4\ndirectory = "./mirror/"\n')
        self.assertEqual(self.successResultOf(self.service.reload()), (["download"], []))
        del self.recorder.events[:]
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.write("download.toml", '[download]\nconcurrency = 4\ndirectory = "other"\n')
        refusal = (
            "download.toml:3: download.directory: cannot change while harbour runs (from 'mirror' to"
            " 'other'): the files downloaded so far are recorded in 'mirror', and would be neither found"
            " in 'other' nor fetched again, so the configuration stays as it was.  To move the mirror:"
            " stop harbour (and its workers), move <data-dir>/mirror to <data-dir>/other on each host,"
            " whole (.harbour-storage and all), change directory, and start harbour again"
        )
        self.assertEqual(self.successResultOf(self.service.reload()), ([], [refusal]))
        self.assertEqual(self.recorder.topics(), ["config.error"])
        self.assertEqual(setting(self.bus, "download", "directory"), "mirror")
        (self.directory / "download.toml").unlink()
        [error] = self.successResultOf(self.service.reload())[1]
        self.assertTrue(
            error.startswith(
                "download.toml:1: download.directory: cannot change while harbour runs (from"
                " 'mirror' to 'reports')"
            ),
            error,
        )
        self.write("download.toml", '[download]\ndirectory = "other"\n')
        restarted = ConfigService(self.clock, self.directory, Bus())
        self.assertEqual(self.successResultOf(restarted.reload())[1], [])
        self.assertEqual(restarted.current("download")["directory"], "other")  # type: ignore[index]
        self.flushLoggedErrors()

    def test_fileGoneAsItIsRead(self) -> None:
        """
        A file that defined a topic and goes away between the listing of
        the directory and its reading (renamed away by an editor's save)
        is waited for as one found gone before: the reload publishes
        nothing, and the one after the wait reads it back, so that its
        topics never take their defaults.
        """
        self.write("manifest.toml", '[manifest]\nstart = "2024-01-01"\n')
        self.successResultOf(self.service.reload())
        del self.recorder.events[:]
        listing = schema.config_files
        backup = self.directory / "manifest.toml~"
        renamed: list[Path] = []

        def listed_then_renamed(directory: Path) -> list[Path]:
            paths = listing(directory)
            if not renamed:
                os.rename(self.directory / "manifest.toml", backup)
                renamed.append(backup)
            return paths

        self.patch(schema, "config_files", listed_then_renamed)
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.assertEqual(self.successResultOf(self.service.reload()), ([], []))
        self.assertEqual(self.recorder.topics(), [])
        os.rename(backup, self.directory / "manifest.toml")
        self.clock.advance(VANISHED_GRACE)
        self.assertEqual(self.recorder.topics(), ["work", "config.loaded"])
        self.assertEqual(setting(self.bus, "manifest", "start"), "2024-01-01")

    def recordWatches(self) -> list[tuple[int, int]]:
        """
        Have the service's watches of its directory recorded rather than
        made, and watch it once.

        @return: The device and inode of the directory at each watch.
        """
        watches: list[tuple[int, int]] = []

        def watch() -> None:
            state = os.stat(self.directory)
            watches.append((state.st_dev, state.st_ino))
            self.service._watched = watches[-1]

        self.patch(self.service, "_watch", watch)
        self.service._notifier = cast(Any, QuietNotifier())
        watch()
        return watches

    def test_backWatchedAfresh(self) -> None:
        """
        A directory found gone by a check is watched afresh once back, even
        with the inode it had (rmdir and mkdir often give it back; here it
        is moved away and back): the watch went with it.
        """
        watches = self.recordWatches()
        self.successResultOf(self.service.reload())
        self.assertFalse(self.service.check())
        away = Path(f"{self.directory}.away")
        os.rename(self.directory, away)
        self.service.check()
        os.rename(away, self.directory)
        self.service.check()
        self.assertEqual(len(watches), 2)
        self.assertEqual(watches[0], watches[1])

    def test_watchEndedWatchedAfresh(self) -> None:
        """
        When the watch of the directory itself ends (the directory
        removed, or moved away), the directory is read and watched afresh
        at once, even if the one now at its path has the inode of the one
        watched (ext4 gives a directory removed and made again its old
        inode at once), which a check takes for the one watched.
        """
        watches = self.recordWatches()
        self.successResultOf(self.service.reload())
        for number, event in enumerate((IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED), start=2):
            self.service._changed(None, FilePath(str(self.directory)), event)
            self.clock.advance(self.service.settle)
            self.assertEqual((len(watches), self.service.status()["reloads"]), (number, number))
        self.assertEqual(len(set(watches)), 1)

    def test_overflowRereads(self) -> None:
        """
        An overflow of the kernel's queue of events, which belongs to no
        watch, schedules a reload: events were lost.
        """
        reactor = MemoryReactorClock()
        service = ConfigService(reactor, self.directory, self.bus)
        self.addCleanup(reactor.advance, 0)  # closes the notifier
        service.startService()
        self.addCleanup(service.stopService)
        assert service._notifier is not None
        service._notifier._doRead(struct.pack("=LLLL", 0xFFFFFFFF, IN_Q_OVERFLOW, 0, 0))
        reactor.advance(service.settle)
        self.assertEqual(service.status()["reloads"], 2)

    def test_writingBegunBeforeDueReloadWaitedFor(self) -> None:
        """
        A reload that comes due before the reactor has read the events of
        a write begun meanwhile (Twisted runs due timers before it polls,
        so a busy callback leaves them queued) takes them in first: the
        file half-written is waited for until it is closed, and never
        published.
        """
        good = '[manifest]\nstart = "2024-01-01"\nbase_url = "http://127.0.0.1:7751/oasisapi"\n'
        self.write("manifest.toml", good)
        reactor = MemoryReactorClock()
        service = ConfigService(reactor, self.directory, self.bus, check_interval=3600)
        self.addCleanup(reactor.advance, 0)  # closes the notifier
        service.startService()
        self.addCleanup(service.stopService)
        assert service._notifier is not None
        # A save read by the reactor just before: its reload is pending.
        self.write("work.toml", "[work]\nmax_attempts = 2\n")
        service._notifier.doRead()
        with open(self.directory / "manifest.toml", "w") as writing:
            writing.write(good[:32])  # "[manifest]\nstart = ...": valid TOML
            writing.flush()
            reactor.advance(service.settle)
            self.assertEqual(setting(self.bus, "manifest", "base_url"), "http://127.0.0.1:7751/oasisapi")
            writing.write(good[32:])
        service._notifier.doRead()
        reactor.advance(service.settle)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 2)
        published = [p["base_url"] for t, p in self.recorder.events if t == "manifest"]
        self.assertEqual(published, ["http://127.0.0.1:7751/oasisapi"])

    def test_withoutInotify(self) -> None:
        """
        Without an inotify instance to be had (the per-user limit
        reached), the service starts all the same, warns once how to fix
        it, reads changes with its checks alone, and watches with inotify
        once a check can get an instance again.
        """
        messages = capture_log(self)
        failing = [True]
        real = watcher.OverflowNotifier

        def notifier(*args: Any) -> watcher.OverflowNotifier:
            if failing[0]:
                raise INotifyError("INotify initialization error.")
            return real(*args)

        self.patch(watcher, "OverflowNotifier", notifier)
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        reactor = MemoryReactorClock()
        service = ConfigService(reactor, self.directory, self.bus, check_interval=5.0)
        self.addCleanup(reactor.advance, 0)  # closes the notifier
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)
        warned = [m for m in messages if "with inotify" in m]
        self.assertEqual(len(warned), 1)
        self.assertIn(f"cannot watch {self.directory} with inotify (INotify initialization error)", warned[0])
        self.assertIn("fs.inotify.max_user_instances", warned[0])
        self.assertIn("within 10 seconds", warned[0])
        self.write("work.toml", "[work]\nmax_attempts = 4\n")
        reactor.advance(5.0)
        reactor.advance(5.0)
        reactor.advance(service.settle)
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 4)
        self.assertEqual(len([m for m in messages if "with inotify" in m]), 1, "warned once")
        self.assertIsNone(service._notifier)
        failing[0] = False
        reactor.advance(5.0)
        self.assertIsNotNone(service._notifier)
        self.assertIn(f"watching {self.directory} with inotify again", messages[-1])

    def test_directoryGoneRefused(self) -> None:
        """
        A configuration directory that cannot be listed (removed, or
        replaced by a file) is an error that keeps the configuration, not
        an empty one.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        (self.directory / "work.toml").unlink()
        self.directory.rmdir()
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual(topics, [])
        self.assertEqual(
            errors,
            [
                (
                    f"{self.directory.name}:1: cannot list the configuration directory {self.directory}:"
                    " No such file or directory"
                )
            ],
        )
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)

    def test_loadedAfterEveryGoodReload(self) -> None:
        """
        Every reload without errors ends with C{config.loaded} (not
        retained), even one that changes no topic: the files put back as
        they were after a bad save; a reload with errors does not.
        """
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.assertEqual(self.recorder.events[-1], ("config.loaded", {"reloads": 1, "warnings": 0}))
        self.write("a.toml", "[work]\nmax_attempts = 0\n")
        self.successResultOf(self.service.reload())
        self.assertEqual(self.recorder.topics()[-1], "config.error")
        del self.recorder.events[:]
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.assertEqual(self.successResultOf(self.service.reload()), ([], []))
        self.assertEqual(self.recorder.events, [("config.loaded", {"reloads": 3, "warnings": 0})])
        self.assertIsNone(self.bus.retained("config.loaded"))
        self.flushLoggedErrors()

    def test_recoveryAfterError(self) -> None:
        """
        Fixing a bad file publishes the topics that changed since the last
        good configuration.
        """
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.successResultOf(self.service.reload())
        self.write("a.toml", "[work\n")
        self.successResultOf(self.service.reload())
        self.write("a.toml", "[work]\nmax_attempts = 4\n")
        topics, errors = self.successResultOf(self.service.reload())
        self.assertEqual((topics, errors), (["work"], []))
        self.assertEqual(self.service.status()["errors"], [])

    def test_burstCoalesced(self) -> None:
        """
        Events closer together than the settle time make one reload, after
        the burst goes quiet.
        """
        self.successResultOf(self.service.reload())
        for _ in range(5):
            self.service.schedule()
            self.clock.advance(SETTLE_SECONDS / 2)
        self.assertEqual(self.service.status()["reloads"], 1)
        self.clock.advance(SETTLE_SECONDS)
        self.assertEqual(self.service.status()["reloads"], 2)

    def test_endlessBurstStillRead(self) -> None:
        """
        A burst that never goes quiet is still read within the longest
        settle time.
        """
        self.successResultOf(self.service.reload())
        elapsed = 0.0
        while self.service.status()["reloads"] == 1:
            self.service.schedule()
            self.clock.advance(SETTLE_SECONDS / 2)
            elapsed += SETTLE_SECONDS / 2
            self.assertLessEqual(elapsed, MAX_SETTLE_SECONDS + SETTLE_SECONDS)


def reports_toml(count: int, prefix: str = "r", extra: str = "") -> str:
    """
    @return: A file of C{count} reports named C{<prefix>0000} on, each with
        C{extra} lines.
    """
    return "".join(
        f'[[reports]]\nname = "{prefix}{i:04d}"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n{extra}'
        for i in range(count)
    )


@implementer(IBus)
@attr.s(auto_attribs=True)
class RefusingBus:
    """
    A L{Bus} that refuses to publish some topics, a number of times each.

    @ivar refusals: How many more times to refuse each topic.
    @ivar error: What to refuse them with.
    """

    bus: Bus
    refusals: dict[str, int]
    error: Exception = attr.Factory(lambda: StoreUnavailable("the bus is away"))

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        See L{IBus.publish}: refused if C{topic} is still to be refused.
        """
        if self.refusals.get(topic, 0) > 0:
            self.refusals[topic] -= 1
            return fail(self.error)
        return self.bus.publish(topic, payload, retain)

    def subscribe(self, pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
        """
        See L{IBus.subscribe}.
        """
        return self.bus.subscribe(pattern, callback)

    def unsubscribe(self, subscription: Subscription) -> Deferred[None]:
        """
        See L{IBus.unsubscribe}.
        """
        return self.bus.unsubscribe(subscription)


class ScaleTests(SynchronousTestCase):
    """
    No event grows with the configuration, and a topic counts as published
    only once the bus has taken it.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.clock = Clock()
        self.bus = Bus()
        self.refusing = RefusingBus(self.bus, {})
        self.recorder = Recorder(self.bus)
        self.service = ConfigService(self.clock, self.directory, self.refusing)
        self.followed: list[list[ReportTopic]] = []
        self.successResultOf(follow_reports(self.bus, self.followed.append))

    def write(self, name: str, text: str) -> None:
        (self.directory / name).write_text(text)

    def reload(self) -> tuple[list[str], list[str]]:
        """
        Reload, and check that every event published fits in one value.
        """
        result = self.successResultOf(self.service.reload())
        for topic, payload in self.recorder.events:
            self.assertLess(len(encode(payload)), LIMIT, topic)
        return result

    def test_twoThousandReports(self) -> None:
        """
        Two thousand reports (some 400 kB) are published in pages, each
        within one value, and a follower gets all of them, once.
        """
        self.write("reports.toml", reports_toml(2000))
        topics, errors = self.reload()
        self.assertEqual((topics, errors), (["download", "manifest", "reports", "work"], []))
        [reports] = self.followed
        self.assertEqual([r.name for r in reports], [f"r{i:04d}" for i in range(2000)])
        pages = [topic for topic, ignored in self.recorder.events if topic.startswith("reports.")]
        self.assertGreater(len(pages), 5)
        topics = self.recorder.topics()
        self.assertGreater(topics.index("reports"), topics.index(page_topic(len(pages) - 1)))
        self.assertEqual(setting(self.bus, "reports", "count"), 2000)
        self.assertEqual(self.service.current("reports"), [to_payload(r) for r in reports])

    def test_oneReportChanged(self) -> None:
        """
        Changing one report republishes the list, which a follower gets
        once, whole; a reload without changes publishes only that it
        loaded.
        """
        self.write("reports.toml", reports_toml(2000))
        self.reload()
        self.write("reports.toml", reports_toml(1999) + reports_toml(1, "z"))
        del self.recorder.events[:]
        self.assertEqual(self.reload(), (["reports"], []))
        self.assertEqual([r.name for r in self.followed[-1]][-2:], ["r1998", "z0000"])
        self.assertEqual(len(self.followed), 2)
        self.assertEqual(self.recorder.topics()[-2:], ["reports", "config.loaded"])
        del self.recorder.events[:]
        self.assertEqual(self.reload(), ([], []))
        self.assertEqual(self.recorder.topics(), ["config.loaded"])

    def test_shrinking(self) -> None:
        """
        After a shorter list, the pages only the longer one used are
        blanked, and a late follower gets the shorter list.
        """
        self.write("reports.toml", reports_toml(2000))
        self.reload()
        longer = setting(self.bus, "reports", "pages")
        assert isinstance(longer, int)
        self.write("reports.toml", reports_toml(10))
        self.reload()
        self.assertEqual(setting(self.bus, "reports", "pages"), 1)
        for number in range(1, longer):
            self.assertEqual(setting(self.bus, page_topic(number), "reports"), [])
        late: list[list[ReportTopic]] = []
        self.successResultOf(follow_reports(self.bus, late.append))
        self.assertEqual([len(reports) for reports in late], [10])
        self.assertEqual([len(reports) for reports in self.followed], [2000, 10])

    def test_reportTooLarge(self) -> None:
        """
        A report too large for one value is a configuration error, found
        before anything is published (so no topic of the save is taken
        without the others): the error, located at the report, is logged
        and published as C{config.error}, C{Status} and C{Reload} show it,
        and fixing it publishes every topic.
        """
        huge = f'params = {{ node = "{"N" * LIMIT}" }}\n'
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        self.write("reports.toml", reports_toml(2) + reports_toml(1, "big", huge))
        topics, errors = self.reload()
        self.assertEqual(topics, [])
        self.assertIsNone(self.bus.retained("work"))
        [error] = errors
        self.assertTrue(error.startswith("reports.toml:9: reports[2]: cannot publish: it is "), error)
        topic, payload = self.recorder.events[-1]
        self.assertEqual((topic, payload["file"], payload["line"]), ("config.error", "reports.toml", 9))
        self.assertEqual(self.service.status()["errors"], [error])
        self.assertIsNone(self.bus.retained("reports"))
        self.assertIsNone(self.service.current("reports"))
        self.assertEqual(self.followed, [])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.write("reports.toml", reports_toml(3))
        self.assertEqual(self.reload(), (["download", "manifest", "reports", "work"], []))
        self.assertEqual(self.service.status()["errors"], [])
        self.assertEqual(len(self.followed[0]), 3)

    def test_refusedPublishRetried(self) -> None:
        """
        A topic the bus refuses is not counted as published: the refusal is
        logged and published as C{config.error}, and the next reload,
        with no file changed, publishes it.
        """
        self.refusing.refusals["work"] = 1
        self.refusing.error = PayloadTooLarge("far too large")
        self.write("a.toml", "[work]\nmax_attempts = 3\n")
        topics, errors = self.reload()
        self.assertEqual(topics, ["download", "manifest", "reports"])
        self.assertEqual(errors, ["a.toml:1: work: cannot publish: far too large"])
        self.assertEqual(self.recorder.events[-1][0], "config.error")
        self.assertIsNone(self.bus.retained("work"))
        self.assertIsNone(self.service.current("work"))
        self.assertEqual(self.reload(), (["work"], []))
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 3)

    def test_refusedPageRetried(self) -> None:
        """
        If one page is refused, the index is not published (a follower
        keeps the list it has); the next reload publishes what is missing.
        """
        self.write("reports.toml", reports_toml(10))
        self.reload()
        self.refusing.refusals[page_topic(1)] = 1
        self.write("reports.toml", reports_toml(2000))
        topics, errors = self.reload()
        self.assertNotIn("reports", topics)
        self.assertEqual(len(errors), 1)
        self.assertIn("the bus is away", errors[0])
        self.assertEqual([len(reports) for reports in self.followed], [10])
        self.assertEqual(setting(self.bus, "reports", "count"), 10)
        self.assertEqual(self.reload(), (["reports"], []))
        self.assertEqual([len(reports) for reports in self.followed], [10, 2000])
        self.flushLoggedErrors()

    def test_manyErrors(self) -> None:
        """
        A file with thousands of errors publishes them as several
        C{config.error} events, each within one value, that together
        carry every error; C{Reload} answers them all.
        """
        self.write("reports.toml", reports_toml(2000, extra="window = 5\n"))
        topics, errors = self.reload()
        self.assertEqual(len(errors), 2000)
        published = [payload for topic, payload in self.recorder.events if topic == "config.error"]
        self.assertGreater(len(published), 1)
        carried = [entry["text"] for payload in published for entry in payload["errors"]]
        self.assertEqual(carried, errors)
        self.assertEqual([p["line"] for p in published], [p["errors"][0]["line"] for p in published])
        self.assertEqual(self.service.status()["last_error"], published[-1])
        self.flushLoggedErrors()

    def test_errorPayloadsClipped(self) -> None:
        """
        A problem quoting a huge value is clipped, so that one problem
        always fits in one event.
        """
        from harbour.config.schema import Problem

        [payload] = error_payloads("a.toml", [Problem("a.toml", 2, "k", "x" * (2 * LIMIT))])
        self.assertLess(len(encode(payload)), 5000)


class InotifyTests(TestCase):
    """
    The service watching a real directory with real inotify.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = 1\n")
        self.bus = Bus()
        self.recorder = Recorder(self.bus)
        self.service = ConfigService(reactor, self.directory, self.bus)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def attempts(self, n: int) -> Predicate:
        return lambda topic, payload: topic == "work" and payload["max_attempts"] == n

    def restart(self, **settings: Any) -> None:
        """
        Stop the service and start another over the same directory, with
        C{settings}.
        """
        self.service.stopService()
        self.service = ConfigService(self.reactor, self.directory, self.bus, **settings)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def replace(self, attempts: int) -> None:
        """
        Rename the directory away (to C{<name>.old}) and put in its place
        another whose C{max_attempts} is C{attempts}.
        """
        replacement = Path(self.mktemp())
        replacement.mkdir()
        (replacement / "work.toml").write_text(f"[work]\nmax_attempts = {attempts}\n")
        os.rename(self.directory, f"{self.directory}.old")
        os.rename(replacement, self.directory)

    async def test_directoryReplaced(self) -> None:
        """
        A directory renamed away and another put in its place is watched
        afresh and read, at the next check.
        """
        self.restart(check_interval=0.05)
        arrived = self.recorder.wait(self.attempts(5), self.reactor)
        self.replace(5)
        await arrived
        arrived = self.recorder.wait(self.attempts(6), self.reactor)
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = 6\n")
        await arrived

    async def test_replacedThenOldRemoved(self) -> None:
        """
        A directory replaced, then the old one removed (whose events make
        a reload read the new one before any check), is still watched
        afresh at the next check: it is the watched directory that is
        compared, not the one last read.
        """
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(self.attempts(5), self.reactor)
        self.replace(5)
        shutil.rmtree(f"{self.directory}.old")
        await arrived
        self.assertFalse(self.service.check(), "read already")
        arrived = self.recorder.wait(self.attempts(6), self.reactor)
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = 6\n")
        await arrived

    async def test_removedAndMadeAgain(self) -> None:
        """
        A directory removed and made again (with its old inode, as ext4
        gives it at once, or another) is read, and its later changes too,
        before any check: the watch of the removed one ended with it.
        """
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(self.attempts(2), self.reactor)
        shutil.rmtree(self.directory)
        self.directory.mkdir()
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = 2\n")
        await arrived
        arrived = self.recorder.wait(self.attempts(3), self.reactor)
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = 3\n")
        await arrived

    async def test_configMapSwap(self) -> None:
        """
        A Kubernetes ConfigMap's files, links through C{..data} to a
        directory of the current version, change when C{..data} is swapped
        for a link to the next: that is read at once.
        """
        (self.directory / "work.toml").unlink()
        for version, attempts in (("v1", 1), ("v2", 7)):
            (self.directory / version).mkdir()
            (self.directory / version / "work.toml").write_text(f"[work]\nmax_attempts = {attempts}\n")
        (self.directory / "..data").symlink_to("v1")
        (self.directory / "work.toml").symlink_to("..data/work.toml")
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(self.attempts(7), self.reactor)
        (self.directory / "..data_tmp").symlink_to("v2")
        os.rename(self.directory / "..data_tmp", self.directory / "..data")
        await arrived

    async def test_atomicRenameSave(self) -> None:
        """
        A save through a temporary file and a rename, as editors do, is
        published once.
        """
        self.restart(check_interval=3600)
        before = self.recorder.topics().count("work")
        arrived = self.recorder.wait(self.attempts(2), self.reactor)
        temporary = self.directory / ".work.toml.swp"
        temporary.write_text("[work]\nmax_attempts = 2\n")
        os.rename(temporary, self.directory / "work.toml")
        await arrived
        self.assertEqual(self.recorder.topics().count("work"), before + 1)

    async def test_modeChange(self) -> None:
        """
        A file's mode changed with C{chmod}, as one saved unreadable to the
        service and then made readable, is read again at once.
        """
        self.restart(check_interval=3600)
        reloaded = self.recorder.wait(lambda topic, payload: topic == "config.loaded", self.reactor)
        os.chmod(self.directory / "work.toml", 0o600)
        await reloaded

    async def test_closeWrite(self) -> None:
        """
        Rewriting a file in place is published.
        """
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(self.attempts(3), self.reactor)
        with open(self.directory / "work.toml", "w") as f:
            f.write("[work]\nmax_attempts = 3\n")
        await arrived

    async def test_writingWaitedFor(self) -> None:
        """
        A file truncated and written slowly, held open meanwhile, is not
        read half-written: the reload its first change schedules waits
        for it to be closed, then reads it whole.
        """
        self.restart(check_interval=3600)
        waiting = logged(self, "waiting for work.toml to be closed", self.reactor)
        arrived = self.recorder.wait(self.attempts(7), self.reactor)
        with open(self.directory / "work.toml", "w") as writing:
            writing.write("[work]\n")
            writing.flush()
            await waiting
            self.assertEqual(setting(self.bus, "work", "max_attempts"), 1)
            writing.write("max_attempts = 7\n")
        await arrived
        self.assertNotIn(
            8, [payload["max_attempts"] for topic, payload in self.recorder.events if topic == "work"]
        )

    async def test_delete(self) -> None:
        """
        Deleting a file returns its topics to their defaults.
        """
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(self.attempts(8), self.reactor)
        (self.directory / "work.toml").unlink()
        await arrived

    async def test_malformedSave(self) -> None:
        """
        Saving a malformed file publishes C{config.error} and keeps the
        last good value.
        """
        self.restart(check_interval=3600)
        arrived = self.recorder.wait(lambda topic, payload: topic == "config.error", self.reactor)
        (self.directory / "work.toml").write_text("[work]\nmax_attempts = \n")
        ignored, payload = await arrived
        self.assertEqual((payload["file"], payload["line"]), ("work.toml", 2))
        self.assertEqual(setting(self.bus, "work", "max_attempts"), 1)
        self.flushLoggedErrors()

    async def test_burstOfSaves(self) -> None:
        """
        Of a burst of 50 saves, the final content is the last published,
        and the burst is coalesced into fewer publications.
        """
        self.restart(check_interval=3600)
        final = self.recorder.wait(self.attempts(50), self.reactor)
        for n in range(1, 51):
            (self.directory / "work.toml").write_text(f"[work]\nmax_attempts = {n}\n")
        await final
        # A later, unrelated save: anything still pending from the burst
        # would be published before it.
        sentinel = self.recorder.wait(lambda topic, payload: topic == "download", self.reactor)
        (self.directory / "download.toml").write_text("[download]\nconcurrency = 3\n")
        await sentinel
        work = [payload["max_attempts"] for topic, payload in self.recorder.events if topic == "work"]
        self.assertEqual(work[-1], 50)
        self.assertLess(len(work), 50)
