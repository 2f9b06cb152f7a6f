"""
Tests for L{harbour.config.watcher}: publication, diffing, errors and coalescing on
a L{Clock}, then real inotify on a temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.bus import Bus
from harbour.config.watcher import MAX_SETTLE_SECONDS, SETTLE_SECONDS, ConfigService
from harbour.interfaces import IEvent

#: How long an integration test waits for an inotify-driven event.
EVENT_TIMEOUT = 10

#: Whether an event, given its topic and (JSON) payload, is the one awaited.
Predicate = Callable[[str, Any], bool]


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
        self.assertEqual(self.bus.retained("reports"), [])

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
        self.assertEqual(self.recorder.topics(), ["download"])

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

    async def test_atomicRenameSave(self) -> None:
        """
        A save through a temporary file and a rename, as editors do, is
        published once.
        """
        arrived = self.recorder.wait(self.attempts(2), self.reactor)
        temporary = self.directory / ".work.toml.swp"
        temporary.write_text("[work]\nmax_attempts = 2\n")
        os.rename(temporary, self.directory / "work.toml")
        await arrived
        self.assertEqual(self.recorder.topics().count("work"), 2)

    async def test_closeWrite(self) -> None:
        """
        Rewriting a file in place is published.
        """
        arrived = self.recorder.wait(self.attempts(3), self.reactor)
        with open(self.directory / "work.toml", "w") as f:
            f.write("[work]\nmax_attempts = 3\n")
        await arrived

    async def test_delete(self) -> None:
        """
        Deleting a file returns its topics to their defaults.
        """
        arrived = self.recorder.wait(self.attempts(8), self.reactor)
        (self.directory / "work.toml").unlink()
        await arrived

    async def test_malformedSave(self) -> None:
        """
        Saving a malformed file publishes C{config.error} and keeps the
        last good value.
        """
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
