"""
Tests for L{harbour.web.test.helpers}: its fake daemon behaves as a real
daemon with a configuration service does, where the web side asks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from harbour.bus import Bus
from harbour.config.watcher import ConfigService
from harbour.interfaces import IDaemon
from harbour.service import DaemonControls
from harbour.store.memory import MemoryTaskStore
from harbour.web.test.helpers import FakeDaemon

if TYPE_CHECKING:
    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object


class DaemonBehaviourMixin(_MixinBase):
    """
    What the web side asks of a daemon.  Subclasses make C{self.daemon}.
    """

    daemon: IDaemon

    def test_interface(self) -> None:
        """
        It provides L{IDaemon}.
        """
        self.assertTrue(verifyObject(IDaemon, self.daemon))

    def test_ownsTheConfigurationTopics(self) -> None:
        """
        The configuration's topics, its reports' pages among them, are the
        daemon's; others are not.
        """
        for topic in ("manifest", "work", "download", "reports", "reports.0"):
            self.assertTrue(self.daemon.owns(topic), topic)
        for topic in ("task.done", "config.error", "paused"):
            self.assertFalse(self.daemon.owns(topic), topic)

    def test_nothingPausable(self) -> None:
        """
        Without pausable services, none is offered.
        """
        self.assertEqual(self.daemon.pausable(None), {})

    def test_taskStore(self) -> None:
        """
        Its task store is an empty one to begin with.
        """
        self.assertEqual(self.successResultOf(self.daemon.task_store().counts()), {})


class FakeDaemonTests(DaemonBehaviourMixin, SynchronousTestCase):
    """
    The behaviour suite against L{FakeDaemon}.
    """

    def setUp(self) -> None:
        self.daemon = FakeDaemon(Clock())


class DaemonControlsTests(DaemonBehaviourMixin, SynchronousTestCase):
    """
    The behaviour suite against the real L{DaemonControls}, with a real
    configuration service (never started).
    """

    def setUp(self) -> None:
        clock = Clock()
        config = ConfigService(clock, Path(self.mktemp()), Bus())
        self.daemon = DaemonControls(status=lambda: succeed({}), config=config, tasks=MemoryTaskStore(clock))
