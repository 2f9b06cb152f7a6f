"""
Tests for L{harbour.services.configured}.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.configured import WAITING, FirstConfiguration


class FirstConfigurationTests(SynchronousTestCase):
    """
    Tests for L{FirstConfiguration}.
    """

    def test_waitsForEveryTopic(self) -> None:
        """
        A wait fires once both C{download} and C{work} are heard, in any
        order, heard again or not; until then, the status says what is
        waited for.
        """
        configuration = FirstConfiguration()
        waiting = configuration.wait()
        configuration.heard("work")
        configuration.heard("work")
        self.assertNoResult(waiting)
        self.assertEqual(configuration.status(), {"waiting": WAITING})
        configuration.heard("download")
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(configuration.status(), {})
        self.assertIsNone(self.successResultOf(configuration.wait()))

    def test_given(self) -> None:
        """
        Settings given as the configuration in force wait for nothing;
        otherwise, for every needed topic.
        """
        self.assertTrue(FirstConfiguration.given(True).arrived)
        self.assertEqual(FirstConfiguration.given(False).missing, {"download", "work"})

    def test_stop(self) -> None:
        """
        A stop cancels every wait, which then fires no more once the
        topics come.
        """
        configuration = FirstConfiguration()
        waits = [configuration.wait(), configuration.wait()]
        configuration.stop()
        for waiting in waits:
            self.failureResultOf(waiting, CancelledError)
        configuration.heard("download")
        configuration.heard("work")
        self.assertTrue(configuration.arrived)
