"""
Tests for L{harbour.services.configured}.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import CancelledError
from twisted.logger import ILogObserver, Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.configured import WAITING, FirstConfiguration


def logger(events: list[dict[str, Any]]) -> Logger:
    """
    @return: A logger whose events go to C{events}.
    """
    return Logger(observer=cast(ILogObserver, events.append))


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

    def test_arrives(self) -> None:
        """
        L{FirstConfiguration.arrives} logs its message once, with its
        fields, and fires with C{True} once every needed topic is heard.
        """
        events: list[dict[str, Any]] = []
        configuration = FirstConfiguration()
        arriving = configuration.arrives(logger(events), "waiting for {what}", what="it")
        self.assertEqual([formatEvent(event) for event in events], ["waiting for it"])
        configuration.heard("download")
        self.assertNoResult(arriving)
        configuration.heard("work")
        self.assertIs(self.successResultOf(arriving), True)
        self.assertEqual(len(events), 1)

    def test_arrivedLogsNothing(self) -> None:
        """
        With nothing to wait for, L{FirstConfiguration.arrives} logs
        nothing and fires with C{True} at once.
        """
        events: list[dict[str, Any]] = []
        arriving = FirstConfiguration.given(True).arrives(logger(events), "waiting")
        self.assertIs(self.successResultOf(arriving), True)
        self.assertEqual(events, [])

    def test_arrivesStopped(self) -> None:
        """
        Stopped first, L{FirstConfiguration.arrives} fires with C{False}
        rather than failing: the service starts nothing.
        """
        configuration = FirstConfiguration()
        arriving = configuration.arrives(logger([]), "waiting")
        configuration.stop()
        self.assertIs(self.successResultOf(arriving), False)
