"""
Tests of C{make bench}'s harness (L{benchmarks}): what it counts, how it
builds its rows and what it judges; never how fast anything is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from benchmarks import dataset, mirror, run
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


class FakeSpawner:
    """
    The reactor's C{spawnProcess} for a child that writes C{out} and
    C{err}, then ends as C{reason} says, all at once.

    @ivar spawned: The arguments of each child spawned.
    """

    def __init__(self, out: bytes, err: bytes, reason: Exception) -> None:
        self.out, self.err, self.reason = out, err, reason
        self.spawned: list[list[str]] = []

    def spawnProcess(
        self, protocol: ProcessProtocol, executable: str, args: list[str], *a: Any, **k: Any
    ) -> None:
        """
        Run the child's life through C{protocol}.
        """
        self.spawned.append(list(args))
        protocol.makeConnection(StringTransport())
        if self.err:
            protocol.childDataReceived(2, self.err)
        protocol.childDataReceived(1, self.out)
        protocol.processEnded(Failure(self.reason))


class InProcessTests(SynchronousTestCase):
    """
    A measure run in a process of its own gives its figures, however much
    it wrote on its standard error, and fails with a line saying why if
    it exited other than 0.
    """

    def measure(self, out: bytes, err: bytes, reason: Exception) -> Deferred:
        """
        @return: What L{run.in_process}'s measure of C{files --count 50}
            gives for a child that writes C{out} and C{err}, then ends
            as C{reason} says.
        """
        from twisted.internet import reactor

        spawner = FakeSpawner(out, err, reason)
        self.patch(reactor, "spawnProcess", spawner.spawnProcess)
        measuring = Deferred.fromCoroutine(run.in_process("files", "--count", "50")(Path("unused")))
        self.assertEqual(
            spawner.spawned, [[sys.executable, "-m", "benchmarks.mirror", "files", "--count", "50"]]
        )
        return measuring

    def test_figuresDespiteStandardError(self) -> None:
        """
        A child that exits 0 gives the figures of its last line, whatever
        it (or a peer it ran) wrote on its standard error.
        """
        measuring = self.measure(
            b'starting\n{"harbour_seconds": 1.5}\n', b"aria2c: a warning\n", ProcessDone(None)
        )
        self.assertEqual(self.successResultOf(measuring), {"harbour_seconds": 1.5})

    def test_exitCode(self) -> None:
        """
        A child that exits other than 0 fails with L{run.Failed}, saying
        its code and the last line of its standard error (a traceback's
        exception).
        """
        measuring = self.measure(
            b"",
            b"Traceback (most recent call last):\n  ...\nShortRun: files: 0, not 50\n",
            ProcessTerminated(exitCode=1),
        )
        failure = self.failureResultOf(measuring, run.Failed)
        self.assertEqual(
            str(failure.value), "mirror files --count 50 failed: exit 1: ShortRun: files: 0, not 50"
        )

    def test_killed(self) -> None:
        """
        A child a signal ended fails with L{run.Failed} saying which.
        """
        measuring = self.measure(b"", b"", ProcessTerminated(signal=9))
        failure = self.failureResultOf(measuring, run.Failed)
        self.assertEqual(str(failure.value), "mirror files --count 50 failed: killed by signal 9")

    def test_noFigures(self) -> None:
        """
        A child that exits 0 without printing its figures fails with
        L{run.Failed}.
        """
        failure = self.failureResultOf(self.measure(b"done\n", b"", ProcessDone(None)), run.Failed)
        self.assertEqual(str(failure.value), "mirror files --count 50 printed no figures")


class FailedPeerTests(SynchronousTestCase):
    """
    One failing peer, or one failing measurement, leaves a row saying so,
    and the rest of the table.
    """

    def test_timedPeer(self) -> None:
        """
        L{mirror.timed_peer} gives a peer's time if it exits 0, and if not
        its exit code and the first line of its standard error.
        """
        failing = "import sys; sys.stderr.write('aria2c: errorCode=1\\nmore\\n'); sys.exit(3)"
        self.assertEqual(
            mirror.timed_peer("aria2c", [sys.executable, "-c", failing]),
            {"aria2c_failed": "exit 3, aria2c: errorCode=1"},
        )
        passing = mirror.timed_peer("wget", [sys.executable, "-c", "import sys; sys.stderr.write('hm')"])
        self.assertEqual(list(passing), ["wget_seconds"])

    def test_medians(self) -> None:
        """
        L{run.medians} keeps a peer's failure as text, and leaves out that
        peer's figures when a run lacks them.
        """
        results = iter(
            [
                {"harbour_seconds": 1.0, "aria2c_seconds": 2.0, "aria2c_ratio": 2.0},
                {"harbour_seconds": 3.0, "aria2c_failed": "exit 1"},
                {"harbour_seconds": 2.0, "aria2c_seconds": 2.0, "aria2c_ratio": 1.0},
            ]
        )

        async def measure(directory: Path) -> dict[str, Any]:
            return next(results)

        figures = self.successResultOf(Deferred.fromCoroutine(run.medians(3, measure)))
        self.assertEqual(figures, {"harbour_seconds": 2.0, "aria2c_failed": "exit 1"})

    def test_filesRows(self) -> None:
        """
        A failed peer's row says why, its target not judged; the others'
        rows are as ever.
        """
        table = run.Table()
        figures = {
            "harbour_seconds": 1.0,
            "aria2c_failed": "exit 1, aria2c: errorCode=1",
            "treq_seconds": 0.5,
            "treq_ratio": 0.5,
        }
        run.add_files(table, "files", figures, {"aria2c": 1.5, "treq": 0.6})
        self.assertEqual(
            table.rows,
            [
                ("files", "1.00 s", "(aria2c failed: exit 1, aria2c: errorCode=1)", "", ">= 1.5x", "-"),
                ("", "", "0.50 s treq loop", "0.50x", ">= 0.6x", "NO"),
            ],
        )

    def test_measured(self) -> None:
        """
        A section that fails adds a failed row saying why, which is not
        met, and the next section runs.
        """
        table = run.Table()

        async def failing() -> None:
            raise run.Failed("mirror refresh failed: exit 1: ShortRun: new tasks created: 0, not 100,000")

        async def passing() -> None:
            table.row("next", "1", "-", None)

        self.successResultOf(Deferred.fromCoroutine(run.measured(table, "refresh", failing)))
        self.successResultOf(Deferred.fromCoroutine(run.measured(table, "next", passing)))
        self.assertEqual(
            table.rows,
            [
                (
                    "refresh",
                    "failed",
                    "(mirror refresh failed: exit 1: ShortRun: new tasks created: 0, not 100,000)",
                    "",
                    "",
                    "NO",
                ),
                ("next", "1", "", "", "-", "-"),
            ],
        )


#: The figures of a dataset run: every target met.
DATASET = {
    "rows": 192_000.0,
    "harbour_seconds": 0.1,
    "pyarrow_seconds": 0.1,
    "pandas_seconds": 1.0,
    "peak_rss_mb": 100.0,
    "parquet_bytes": 80.0,
    "zip_bytes": 100.0,
    "views_seconds": 0.01,
    "pandas_month_seconds": 1.0,
    "month_days": 7.0,
    "month_nodes": 200.0,
    "xml_rows": 1000.0,
    "xml_harbour_seconds": 1.0,
    "xml_expat_seconds": 0.5,
    "xml_lxml_seconds": 1.0,
}


class QuickTests(SynchronousTestCase):
    """
    A C{--quick} run, a tenth of the sizes, does not judge the rows whose
    targets are set for the full sizes; a full run judges them.
    """

    def test_datasetRows(self) -> None:
        """
        Quick, the parse's two ratios, its peak RSS and the hub prices
        show C{-} for target and met; Parquet against zip bytes is judged
        as ever.  At full size every target is judged.
        """
        full = [(row["target"], row["met"]) for row in dataset.rows(DATASET)]
        quick = [(row["target"], row["met"]) for row in dataset.rows(DATASET, quick=True)]
        self.assertEqual(
            full,
            [
                (">= 0.5x read_csv", True),
                (">= 5x pandas", True),
                ("<= 512 MB", True),
                ("<= 1.0", True),
                (">= 50x pandas", True),
                ("-", None),
                ("-", None),
            ],
        )
        self.assertEqual(quick, [("-", None)] * 3 + [("<= 1.0", True)] + [("-", None)] * 3)

    def test_fileRows(self) -> None:
        """
        Quick, the file rows and harbour's peak memory show C{-} for target
        and met, and a missing peer with a target at full size is left
        out; at full size they are judged.
        """
        figures = {
            "harbour_seconds": 1.0,
            "harbour_peak_rss_mb": 60.0,
            "treq_seconds": 0.5,
            "treq_ratio": 0.5,
        }
        quick, full = run.Table(), run.Table()
        run.add_large_files(quick, "4 files of 20 MB", figures, quick=True)
        run.add_large_files(full, "4 files of 20 MB", figures)
        self.assertEqual(
            [row[4:] for row in quick.rows],
            [("-", "-"), ("-", "-")],
        )
        self.assertEqual(
            [row[4:] for row in full.rows],
            [(">= 1.5x", "-"), ("-", "-"), ("<= 100 MB", "yes")],
        )
        small = run.Table()
        run.add_files(small, "200 files", figures, {"treq": 0.6}, quick=True)
        self.assertEqual(small.rows, [("200 files", "1.00 s", "0.50 s treq loop", "0.50x", "-", "-")])


class InTurnsTests(SynchronousTestCase):
    """
    The parse's contestants are timed alike: each its best of three, in
    turns.
    """

    def test_bestOfThreeInTurns(self) -> None:
        """
        L{dataset.in_turns} runs each contestant once a round, in turns,
        and gives each its fastest run: a first run slower than the later
        ones is not the pandas peer's only one.
        """
        now = [0.0]
        ran: list[str] = []
        durations = {
            "harbour": iter([1.0, 0.8, 0.9]),
            "pyarrow": iter([0.5, 0.6, 0.4]),
            "pandas": iter([2.0, 1.8, 1.9]),
        }

        def contestant(name: str) -> Any:
            def work() -> None:
                ran.append(name)
                now[0] += next(durations[name])

            return work

        best = dataset.in_turns({name: contestant(name) for name in durations}, clock=lambda: now[0])
        self.assertEqual(ran, ["harbour", "pyarrow", "pandas"] * 3)
        self.assertEqual(
            {name: round(seconds, 6) for name, seconds in best.items()},
            {"harbour": 0.8, "pyarrow": 0.4, "pandas": 1.8},
        )


class ShownRatioTests(SynchronousTestCase):
    """
    L{run.shown_ratio}.
    """

    def test_roundedDown(self) -> None:
        """
        A ratio is shown rounded down, so that one just short of its
        target never reads as the target beside a "NO".
        """
        self.assertEqual(run.shown_ratio(0.5996), "0.59x")
        self.assertEqual(run.shown_ratio(0.6), "0.60x")
        self.assertEqual(run.shown_ratio(66.229), "66.22x")
