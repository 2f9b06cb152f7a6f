"""
Tests for L{harbour.services.outcomes}.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import cast

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.oasis.requests import ReportURL
from harbour.services.activity import DownloadActivity
from harbour.services.outcomes import Outcomes
from harbour.services.test.test_fencing import NOW, Context
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED, Task


class AheadOutcomeTests(SynchronousTestCase):
    """
    An attempt at a day ahead fetched again that ends with no new answer
    is not announced or counted as an outcome: the store kept the answer
    the day had.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.store = MemoryTaskStore(self.clock)
        self.bus = Bus()
        # Every event the outcomes publish, as (topic, payload).
        self.published: list[tuple[str, object]] = []
        self.bus.subscribe("*", lambda event: self.published.append((event.topic, event.payload)))
        self.activity = DownloadActivity(self.clock)
        self.outcomes = Outcomes(
            Context(Path(self.mktemp())), self.clock, self.store, self.bus, self.activity
        )
        self.logged: list[LogEvent] = []
        self.outcomes.log = Logger(observer=cast(ILogObserver, self.logged.append))

    def claimed(self, name: str, ahead: bool) -> Task:
        """
        Make a task of a day that ends tomorrow, download it, and, if
        C{ahead}, put it back as a day ahead fetched again.

        @return: Its claim for the attempt under test.
        """
        start = datetime.datetime.fromtimestamp(NOW - 60, datetime.UTC)
        request = ReportURL(
            f"http://oasis/{name}", f"a/{name}.zip", "a", start, start + datetime.timedelta(days=1)
        )
        self.successResultOf(self.store.create([request]))
        first = self.successResultOf(self.store.claim("host:1", 60))
        assert first is not None
        self.successResultOf(self.store.finish(first.id, "host:1", DOWNLOADED, 10, "old"))
        if ahead:
            self.clock.advance(1)
            self.assertEqual(
                self.successResultOf(self.store.refetch_ahead([first.id], self.clock.seconds())), [first.id]
            )
        else:
            self.successResultOf(self.store.revise([(first.id, self.clock.seconds() + 1, "2")]))
            self.clock.advance(2)
        claimed = self.successResultOf(self.store.claim("host:1", 60))
        assert claimed is not None and claimed.id == first.id
        return claimed

    def test_keptNotAnnounced(self) -> None:
        """
        A day ahead fetched again that ends empty or failed stays
        downloaded in the store; nothing is published, nothing counted,
        and no error is logged.
        """
        for name, state in (("empty", EMPTY), ("failed", FAILED)):
            task = self.claimed(name, ahead=True)
            self.successResultOf(self.outcomes.conclude(task, state, error="OASIS error 1000"))
            stored = self.successResultOf(self.store.get(task.id))
            assert stored is not None
            self.assertEqual((stored.state, stored.sha256), (DOWNLOADED, "old"))
        self.assertEqual(self.published, [])
        self.assertEqual(self.activity.finished, {})
        self.assertEqual([e["log_level"] for e in self.logged], [LogLevel.info, LogLevel.info])
        self.assertIn("the one fetched before is kept", self.logged[0]["log_format"])

    def test_otherOutcomesAnnounced(self) -> None:
        """
        A task fetched again for another reason (a revision) that ends
        empty is announced and counted as such.
        """
        task = self.claimed("revised", ahead=False)
        self.successResultOf(self.outcomes.conclude(task, EMPTY, error="OASIS error 1000"))
        self.assertEqual([topic for topic, payload in self.published], ["task.empty"])
        self.assertEqual(self.activity.finished, {EMPTY: 1})
