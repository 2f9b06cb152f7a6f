"""
Tests of C{make bench}'s harness (L{benchmarks}): what it counts, how it
builds its rows and what it judges; never how fast anything is.
"""

from __future__ import annotations

import io
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


class Contestants:
    """
    Measures that note each run, in order, and give figures of their own.

    @ivar ran: The name of each measure run, in the order they ran.
    @ivar directories: The directory each run was given, and whether it
        was there as it ran.
    """

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.directories: list[tuple[Path, bool]] = []

    def measure(self, name: str, figures: list[dict[str, Any]] | Exception) -> run.Measure:
        """
        @param figures: What its runs give, in turn; or what each raises.
        @return: A measure, noted as C{name}.
        """
        given = iter(figures) if isinstance(figures, list) else None

        async def measure(directory: Path) -> dict[str, Any]:
            self.ran.append(name)
            self.directories.append((directory, directory.is_dir()))
            if given is None:
                raise figures
            return next(given)

        return measure


class RunInTurnsTests(SynchronousTestCase):
    """
    L{run.in_turns} times harbour and its peer in turns, each run in a
    fresh directory, and gives each contestant's medians.
    """

    def test_inTurns(self) -> None:
        """
        Each round runs every contestant once, in order; each gets the
        median of its own runs, and every directory is fresh and removed
        once all are over.
        """
        contestants = Contestants()
        measuring = Deferred.fromCoroutine(
            run.in_turns(
                3,
                {
                    "harbour": contestants.measure("harbour", [{"s": 1.0}, {"s": 5.0}, {"s": 2.0}]),
                    "peer": contestants.measure("peer", [{"s": 3.0}, {"s": 4.0}, {"s": 9.0}]),
                },
            )
        )
        turns = self.successResultOf(measuring)
        self.assertEqual(contestants.ran, ["harbour", "peer"] * 3)
        self.assertEqual((turns.of("harbour"), turns.of("peer")), ({"s": 2.0}, {"s": 4.0}))
        directories = [directory for directory, there in contestants.directories]
        self.assertEqual(len(set(directories)), 6)
        self.assertTrue(all(there for directory, there in contestants.directories))
        self.assertFalse(any(directory.exists() for directory in directories))

    def test_failedContestant(self) -> None:
        """
        A contestant that fails is not run again, and L{run.Turns.of}
        raises its failure; the others run every round.
        """
        contestants = Contestants()
        failed = run.Failed("mirror ceiling failed: exit 1")
        turns = self.successResultOf(
            Deferred.fromCoroutine(
                run.in_turns(
                    2,
                    {
                        "harbour": contestants.measure("harbour", [{"s": 1.0}, {"s": 3.0}]),
                        "peer": contestants.measure("peer", failed),
                    },
                )
            )
        )
        self.assertEqual(contestants.ran, ["harbour", "peer", "harbour"])
        self.assertEqual(turns.of("harbour"), {"s": 2.0})
        self.assertIs(self.assertRaises(run.Failed, turns.of, "peer"), failed)


class MainTurnsTests(SynchronousTestCase):
    """
    The rows of C{make bench} that measure harbour and its peer in runs of
    their own take their runs in turns: the fan-out's (Redis, harbour
    publishing in-process, harbour from a remote publisher) and the
    refresh's (harbour, the pipelined ceiling).
    """

    def rows(self, contestants: Contestants, remote: list[float] | Exception) -> dict[str, tuple[str, ...]]:
        """
        Run L{run.main}, 3 runs, with the fan-out and refresh measured by
        C{contestants} (the remote publisher's runs giving the rates
        C{remote}) and every other section failing at once.

        @return: The rows of the table it printed, by name.
        """

        def fan_out(name: str, rates: list[float] | Exception) -> Any:
            measure = contestants.measure(
                name, rates if isinstance(rates, Exception) else [{"events_per_second": r} for r in rates]
            )
            return lambda reactor, directory, events=20_000: measure(directory)

        self.patch(run.backbone, "redis_fan_out", fan_out("redis", [100.0, 300.0, 200.0]))
        self.patch(run.backbone, "fan_out_in_process", fan_out("in-process", [150.0, 100.0, 400.0]))
        self.patch(run.backbone, "fan_out", fan_out("remote", remote))
        refresh = {
            "refresh": [{"new_seconds": s, "present_seconds": s / 4} for s in (2.0, 4.0, 3.0)],
            "ceiling": [{"new_seconds": s, "present_seconds": s / 4} for s in (1.0, 1.5, 2.0)],
        }

        def in_process(*args: str, module: str = "benchmarks.mirror", in_directory: bool = False) -> Any:
            if args and args[0] in refresh:
                return contestants.measure(args[0], refresh[args[0]])
            return contestants.measure("other", run.Failed("not measured here"))

        def failing(*args: Any, **kwargs: Any) -> Any:
            raise run.Failed("not measured here")

        self.patch(run, "in_process", in_process)
        self.patch(run.backbone, "config_latency", failing)
        self.patch(run.manifest, "generation", failing)
        self.patch(run.publications, "mirror", failing)
        self.patch(run.catalogue, "requests", failing)
        self.patch(run, "machine", lambda: "a test")
        printed: list[tuple[str, ...]] = []
        self.patch(run.Table, "print", lambda table: printed.extend(table.rows))
        # Its heading, not wanted among the tests' output.
        self.patch(sys, "stdout", io.StringIO())
        self.successResultOf(Deferred.fromCoroutine(run.main(None, 3, False)))
        return {row[0]: row for row in printed}

    def test_inTurns(self) -> None:
        """
        The fan-out's three contestants run in turns, then the refresh's
        two; each row's figures are the medians of its contestants' runs,
        and its ratio theirs.
        """
        contestants = Contestants()
        rows = self.rows(contestants, [50.0, 60.0, 40.0])
        self.assertEqual(
            [name for name in contestants.ran if name != "other"],
            ["redis", "in-process", "remote"] * 3 + ["refresh", "ceiling"] * 3,
        )
        self.assertEqual(
            [
                rows["bus fan-out to 4 remote subscribers"],
                rows["  same, from a remote publisher"],
                rows["refresh creating 100,000 new tasks"],
                rows["refresh finding 100,000 present"],
            ],
            [
                ("bus fan-out to 4 remote subscribers", "150 events/s", "200/s Redis pub/sub", "0.75x")
                + (">= 1x", "NO"),
                ("  same, from a remote publisher", "50 events/s", "200/s Redis pub/sub", "0.25x", "-", "-"),
                (
                    "refresh creating 100,000 new tasks",
                    "3.00 s",
                    "1.50 s pipelined",
                    "0.50x",
                    ">= 0.5x",
                    "yes",
                ),
                ("refresh finding 100,000 present", "0.75 s", "0.38 s pipelined", "0.50x", ">= 0.5x", "yes"),
            ],
        )

    def test_remoteFails(self) -> None:
        """
        A remote publisher that fails leaves the in-process row as it is,
        and its own row says why.
        """
        contestants = Contestants()
        rows = self.rows(contestants, RuntimeError("the daemon did not start"))
        self.assertEqual(
            [name for name in contestants.ran if name in ("redis", "in-process", "remote")],
            ["redis", "in-process", "remote", "redis", "in-process", "redis", "in-process"],
        )
        self.assertEqual(
            rows["bus fan-out to 4 remote subscribers"][1:4],
            ("150 events/s", "200/s Redis pub/sub", "0.75x"),
        )
        self.assertEqual(
            rows["  same, from a remote publisher"],
            ("  same, from a remote publisher", "failed", "(RuntimeError: the daemon did not start)")
            + ("", "", "NO"),
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
