"""
Tests for L{harbour.services.activity}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.services.activity import DownloadActivity
from harbour.store.tasks import Task

#: 2025-06-01T12:00:00Z.
NOON = 1_748_779_200.0


def task(report: str) -> Task:
    """
    @return: A task of C{report}.
    """
    return Task(
        id=f"{report}-1",
        url=f"http://oasis.example/{report}",
        filename=f"{report}/2025-06-01.zip",
        report=report,
        window_start=NOON,
        window_end=NOON + 86_400,
    )


class DownloadActivityTests(SynchronousTestCase):
    """
    L{DownloadActivity} keeps the record C{Status} shows, on its clock.
    """

    def test_lastSuccessOnItsClock(self) -> None:
        """
        A report's last success is the time of its clock when the task
        concluded, not the machine's: shown in UTC, to the second.
        """
        clock = Clock()
        clock.advance(NOON)
        activity = DownloadActivity(clock)
        activity.concluded(task("lmp"), "downloaded", success=True)
        clock.advance(90)
        activity.concluded(task("load"), "failed", success=False)
        self.assertEqual(
            activity.status(),
            {"finished": {"downloaded": 1, "failed": 1}, "last_success": {"lmp": "2025-06-01T12:00:00Z"}},
        )
