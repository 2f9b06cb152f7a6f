"""
Tests for L{harbour.services.pausing}: the hub's pauses, announced and
followed by workers.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.interfaces import IEvent
from harbour.services.pausing import PAUSED, PauseAnnouncer, PauseFollower
from harbour.test.helpers import Pausable, SilentHub, capture_log


class AnnouncerTests(SynchronousTestCase):
    """
    L{PauseAnnouncer} on the hub.
    """

    def test_startAnnounces(self) -> None:
        """
        Started, it publishes which services are paused, retained, whenever
        a worker connects: one that followed an earlier hub's pause hears
        the new hub's.
        """
        bus, download = Bus(), Pausable()
        download.pause()
        PauseAnnouncer(bus, {"download": download, "tables": Pausable()}).startService()
        heard: list[IEvent] = []
        self.successResultOf(bus.subscribe(PAUSED, heard.append))
        self.assertEqual([e.payload for e in heard], [{"services": ["download"]}])


class FollowerTests(SynchronousTestCase):
    """
    L{PauseFollower} on a worker.
    """

    def setUp(self) -> None:
        self.bus = Bus()
        self.download, self.tables = Pausable(), Pausable()
        self.follower = PauseFollower(self.bus, {"download": self.download, "tables": self.tables})

    def announce(self, payload: object) -> None:
        """
        Publish C{payload} on the C{paused} topic, as the hub would.
        """
        self.successResultOf(self.bus.publish(PAUSED, payload, retain=True))

    def test_followsTheHub(self) -> None:
        """
        The hub's pauses in force when it starts are taken at once; later
        ones pause and resume only the services they name and that it has.
        """
        self.announce({"services": ["download", "work"]})
        self.follower.startService()
        self.assertEqual((self.download.paused, self.tables.paused), (True, False))
        self.announce({"services": ["tables"]})
        self.assertEqual((self.download.paused, self.tables.paused), (False, True))
        self.announce({"services": []})
        self.assertEqual((self.download.paused, self.tables.paused), (False, False))

    def test_malformed(self) -> None:
        """
        An announcement without a list of services is logged and changes
        nothing.
        """
        self.follower.startService()
        self.announce({"services": ["download"]})
        logged = capture_log(self)
        self.announce({"services": "tables"})
        self.announce([])
        self.assertEqual((self.download.paused, self.tables.paused), (True, False))
        self.assertEqual(len([e for e in logged if "without a list of services" in e]), 2)

    def test_stopUnsubscribes(self) -> None:
        """
        Stopped, it follows nothing more.
        """
        self.follower.startService()
        self.follower.stopService()
        self.announce({"services": ["download"]})
        self.assertFalse(self.download.paused)

    def test_stopHubSilent(self) -> None:
        """
        On a worker whose hub is connected but silent, it stops at once,
        not waiting for the hub to answer its unsubscription.
        """
        hub = SilentHub()
        follower = PauseFollower(hub, {"download": self.download})
        follower.startService()
        self.successResultOf(maybeDeferred(follower.stopService))
        self.assertFalse(follower.running)
