"""
Tests of C{make bench}'s harness (L{benchmarks}): what it counts, how it
builds its rows and what it judges; never how fast anything is.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import mirror
from harbour.bus import Bus


def publish(bus: Bus, topic: str, filename: str = "r0/2000-01-01.zip", error: str = "") -> None:
    """
    Publish a task event as the download service does.
    """
    bus.publish(topic, {"id": "t", "report": "r0", "filename": filename, "error": error})


class DownloadsTests(SynchronousTestCase):
    """
    A file row's time ends only once every task is downloaded, and a run
    short of files fails.
    """

    def following(self, expected: int) -> tuple[Bus, mirror.Downloads]:
        """
        @return: A bus, and a L{mirror.Downloads} of C{expected} tasks
            following its task events as L{mirror.run_downloads} does.
        """
        bus = Bus()
        downloads = mirror.Downloads(expected)
        self.successResultOf(bus.subscribe("task.*", downloads))
        return bus, downloads

    def test_finishedByDone(self) -> None:
        """
        Only C{task.done} counts: a retry leaves the run going (counted as
        a retry), and it finishes with the last task downloaded.
        """
        bus, downloads = self.following(2)
        publish(bus, "task.done")
        publish(bus, "task.retried")
        self.assertNoResult(downloads.finished)
        publish(bus, "task.done")
        self.successResultOf(downloads.finished)
        self.assertEqual((downloads.done, downloads.retries), (2, 1))

    def test_failedTask(self) -> None:
        """
        A task that fails, or comes back empty, fails the run at once,
        saying which and why.
        """
        for topic in ("task.failed", "task.empty"):
            bus, downloads = self.following(3)
            publish(bus, "task.done")
            publish(bus, topic, "r0/2000-01-02.zip", "too big")
            failure = self.failureResultOf(downloads.finished, mirror.ShortRun)
            self.assertEqual(
                str(failure.value),
                f"{topic.removeprefix('task.')} after 1 of 3 downloaded: r0/2000-01-02.zip: too big",
            )

    def test_expect(self) -> None:
        """
        L{mirror.expect} passes a count that is what was asked, and raises
        L{mirror.ShortRun} on one that is not, saying both.
        """
        mirror.expect("files", 200, 200)
        failure = self.assertRaises(mirror.ShortRun, mirror.expect, "files harbour downloaded", 0, 2000)
        self.assertEqual(str(failure), "files harbour downloaded: 0, not 2,000")
