"""
Tests of L{harbour.services.workers}: the workers listed from their
heartbeats, and what is kept of a heartbeat.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour import __version__
from harbour.bus import Bus
from harbour.services import workers as workers_module
from harbour.services.workers import MISSED, WorkersService
from harbour.test.helpers import capture_log

#: A heartbeat as a download service sends it.
BEAT: dict[str, Any] = {
    "owner": "host:1",
    "paused": False,
    "concurrency": 2,
    "bytes_per_second": 1500,
    "in_flight": [{"id": "a", "report": "lmp", "filename": "lmp/a.zip", "bytes": 10}],
    "version": __version__,
}


class WorkersTests(SynchronousTestCase):
    """
    L{WorkersService} following the bus's C{worker.status}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = Bus()
        self.workers = WorkersService(self.clock, self.bus)
        self.workers.startService()
        self.addCleanup(self.workers.stopService)
        self.logged = capture_log(self)

    def beat(self, **payload: Any) -> None:
        """
        Publish a heartbeat of C{payload}.
        """
        self.successResultOf(self.bus.publish("worker.status", payload))

    def test_listed(self) -> None:
        """
        A worker is listed with its heartbeat and how long ago it was
        heard, until it misses a few heartbeats.
        """
        self.beat(**BEAT)
        self.clock.advance(2)
        self.assertEqual(self.workers.status(), {"host:1": {**BEAT, "seen_seconds_ago": 2.0}})
        self.clock.advance(MISSED * self.workers.interval)
        self.assertEqual(self.workers.status(), {})
        self.assertEqual(self.logged, [])

    def test_forgottenWithoutStatus(self) -> None:
        """
        A worker that falls silent is forgotten, with what was noted of its
        heartbeat, by the next heartbeat of any worker, though nobody asks
        for C{status}: otherwise every owner ever heard would be kept.
        """
        self.beat(owner="host:1", bogus=1)
        self.clock.advance(MISSED * self.workers.interval + 1)
        self.beat(owner="host:2")
        self.assertEqual((list(self.workers._seen), list(self.workers._dropped)), (["host:2"], ["host:2"]))

    def test_workersKept(self) -> None:
        """
        At most L{workers_module.WORKERS_KEPT} workers are kept, however
        many owners beat at once: past it, the one heard from longest ago
        is forgotten; one that beats again counts as heard from last.
        """
        self.patch(workers_module, "WORKERS_KEPT", 3)
        for n in range(5):
            self.beat(owner=f"host:{n}")
        self.beat(owner="host:2")
        self.beat(owner="host:5")
        self.assertEqual(len(self.workers._dropped), 3)
        self.assertEqual(sorted(self.workers.status()), ["host:2", "host:4", "host:5"])

    def test_wrongTypesDropped(self) -> None:
        """
        A heartbeat's fields of the wrong type (or unknown) are dropped,
        logged once for as long as the worker sends the same ones; the
        others are kept.
        """
        mine = {"owner": "w2", "version": __version__}
        for ignored in range(2):
            self.beat(**mine, paused="no", concurrency=True, bytes_per_second=[], in_flight=2)
        self.beat(**mine, paused=False, concurrency=-1, bytes_per_second="fast", in_flight=[1])
        self.assertEqual(self.workers.status(), {"w2": {**mine, "paused": False, "seen_seconds_ago": 0.0}})
        wrong = "worker w2: heartbeat fields ignored, unknown or of the wrong type: "
        self.assertEqual(
            self.logged,
            [
                wrong + "bytes_per_second, concurrency, in_flight, paused",
                wrong + "bytes_per_second, concurrency, in_flight",
            ],
        )

    def test_waiting(self) -> None:
        """
        A worker waiting for its first valid configuration is listed, with
        what it waits for; a C{waiting} that is not text is dropped.
        """
        self.beat(**BEAT, waiting="a valid configuration")
        self.assertEqual(self.workers.status()["host:1"]["waiting"], "a valid configuration")
        self.beat(**BEAT, waiting=True)
        self.assertNotIn("waiting", self.workers.status()["host:1"])

    def test_seenComputed(self) -> None:
        """
        How long ago a worker was heard is the hub's own reckoning, whatever
        the heartbeat says.
        """
        self.beat(**BEAT, seen_seconds_ago="now")
        self.clock.advance(1.5)
        self.assertEqual(self.workers.status()["host:1"]["seen_seconds_ago"], 1.5)

    def test_withoutOwner(self) -> None:
        """
        A heartbeat that does not name its worker (or is not a table) is
        logged and lists nobody.
        """
        self.beat(**{**BEAT, "owner": 7})
        self.successResultOf(self.bus.publish("worker.status", ["host:1"]))
        self.assertEqual(self.workers.status(), {})
        self.assertEqual(self.logged, ["a heartbeat without its worker's name ignored"] * 2)


class HubTestCase(SynchronousTestCase):
    """
    A hub's workers service, of prefix C{harbour}, hearing heartbeats.
    """

    def setUp(self) -> None:
        """
        Start the service on a bus, its log captured.
        """
        self.clock = Clock()
        self.bus = Bus()
        self.workers = WorkersService(self.clock, self.bus, prefix="harbour")
        self.workers.startService()
        self.addCleanup(self.workers.stopService)
        self.logged = capture_log(self)

    def beat(self, **payload: Any) -> None:
        """
        Publish a heartbeat of C{BEAT} with C{payload}.
        """
        self.successResultOf(self.bus.publish("worker.status", {**BEAT, **payload}))


class PrefixTests(HubTestCase):
    """
    A hub that knows its C{--prefix} tells a worker heartbeating another.
    """

    def test_otherPrefix(self) -> None:
        """
        A worker whose heartbeat names another prefix is listed with the
        problem, logged once while it lasts, and again if it comes back.
        """
        self.beat(prefix="other")
        self.beat(prefix="other")
        problem = self.workers.status()["host:1"]["problem"]
        self.assertIn("its --prefix 'other' is not this hub's 'harbour'", problem)
        self.assertIn("start it with --prefix harbour", problem)
        self.assertEqual(self.logged, [f"worker host:1: {problem}"])
        self.beat(prefix="harbour")
        self.assertNotIn("problem", self.workers.status()["host:1"])
        self.beat(prefix="other")
        self.assertEqual(len(self.logged), 2)

    def test_samePrefixOrNone(self) -> None:
        """
        A worker with the hub's prefix, or one that does not say (an older
        harbour), has no problem listed and nothing is logged.
        """
        self.beat(prefix="harbour")
        self.beat(owner="host:2")
        status = self.workers.status()
        self.assertEqual([("problem" in status[owner]) for owner in ("host:1", "host:2")], [False, False])
        self.assertEqual(status["host:1"]["prefix"], "harbour")
        self.assertEqual(self.logged, [])


class VersionTests(HubTestCase):
    """
    A hub tells a worker that runs another harbour than its own.
    """

    def test_otherVersion(self) -> None:
        """
        A worker of another version is listed with the problem, logged once
        while it lasts; one that does not say (a harbour from before
        heartbeats told it) is older.
        """
        self.beat(version="0.0.1")
        self.beat(version="0.0.1")
        problem = self.workers.status()["host:1"]["problem"]
        self.assertEqual(
            problem, f"it runs harbour 0.0.1, this hub {__version__}: upgrade hub and workers together"
        )
        self.assertEqual(self.logged, [f"worker host:1: {problem}"])
        self.beat()
        self.assertNotIn("problem", self.workers.status()["host:1"])
        self.successResultOf(
            self.bus.publish("worker.status", {k: v for k, v in BEAT.items() if k != "version"})
        )
        self.assertIn("it runs harbour an older version", self.workers.status()["host:1"]["problem"])

    def test_bothProblems(self) -> None:
        """
        A worker of another prefix and another version has both problems
        listed, in one line.
        """
        self.beat(prefix="other", version="0.0.1")
        problem = self.workers.status()["host:1"]["problem"]
        self.assertIn("its --prefix 'other'", problem)
        self.assertIn("; it runs harbour 0.0.1", problem)
