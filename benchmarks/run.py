"""
C{make bench}: run every benchmark and print one table.

Each row gives harbour's figure (the median of several runs), the figure of
a peer or ceiling measured in the same run, their ratio (higher is better
for harbour), the target for that ratio, and whether it is met: ratios
hold still on a shared machine where absolute figures move by 2x.  Where
harbour and its peer are measured in runs of their own, their runs take
turns (L{in_turns}).  Only the config-to-event latency (bounded by the
10 ms coalescing, not by the machine) and peak memory stay absolute.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attr
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from harbour.store.server import find_redis_server

if TYPE_CHECKING:
    from benchmarks import IBenchReactor

try:
    from benchmarks import backbone, catalogue, dataset, manifest, publications
except ModuleNotFoundError as missing:
    # The bench extras (numpy, pandas...) are not among the test suite's.
    sys.exit(
        f"the benchmarks need {missing.name}: run make bench, which installs them, "
        "or .venv/bin/pip install -e '.[test,bench]'"
    )


def machine() -> str:
    """
    @return: One line describing this machine.
    """
    redis = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True)
    version = redis.stdout.split()[2] if redis.returncode == 0 else "?"
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Redis {version.removeprefix('v=')}, {platform.system()} {platform.machine()}"
    )


class Failed(Exception):
    """
    A measurement gave no figures (its process failed): its rows say why
    instead, and the table goes on.
    """


def describe(error: BaseException) -> str:
    """
    @return: C{error} in a line short enough for a table's cell.
    """
    said = str(error) if isinstance(error, Failed) else f"{type(error).__name__}: {error}"
    lines = said.strip().splitlines()
    return lines[0][:160] if lines else type(error).__name__


#: A measurement: given a fresh directory to work in, its figures.
Measure = Callable[[Path], Awaitable[dict[str, Any]]]


async def medians(runs: int, measure: Measure) -> dict[str, Any]:
    """
    @return: For each figure C{measure(directory)} returns, its median over
        C{runs} runs (L{in_turns}, with no other contestant).
    @raise Exception: what made a run fail.
    """
    return (await in_turns(runs, {"": measure})).of("")


@attr.s(auto_attribs=True, frozen=True)
class Turns:
    """
    What L{in_turns} measured.

    @ivar figures: The medians of each contestant that ran every round.
    @ivar failures: What made each other contestant fail.
    """

    figures: dict[str, dict[str, Any]]
    failures: dict[str, Exception]

    def of(self, name: str) -> dict[str, Any]:
        """
        @return: The medians of contestant C{name}.
        @raise Exception: what made it fail, if it did.
        """
        if name in self.failures:
            raise self.failures[name]
        return self.figures[name]


async def in_turns(runs: int, measures: dict[str, Measure]) -> Turns:
    """
    Run each of C{measures} once a round, in the order given, for C{runs}
    rounds (harbour, its peer, harbour, its peer...), each run in a fresh
    directory, so that a spell in which a shared machine is busier weighs
    on every contestant alike, not on whichever ran all its runs then.  A
    contestant that fails is not run again; the others go on.

    For each figure a contestant's runs return, its median is kept; a text
    (a peer's failure, C{NAME_failed}) is kept as the first run that gave
    it said it, and a figure that some run did not give (that peer's, in
    that run) is left out.  The directories are removed only once every
    run is over: on ext4 without a journal, each file created within a
    minute of many being deleted costs a scan past each of them (its
    C{recently_deleted} check), which would charge one run's clean-up to
    the next run's first contestant.
    """
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in measures}
    failures: dict[str, Exception] = {}
    directories: list[Path] = []
    try:
        for ignored in range(runs):
            for name, measure in measures.items():
                if name in failures:
                    continue
                directories.append(Path(tempfile.mkdtemp(prefix="hb-bench-")))
                try:
                    results[name].append(await measure(directories[-1]))
                except Exception as e:
                    failures[name] = e
    finally:
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
    return Turns(
        {name: median_figures(ran) for name, ran in results.items() if name not in failures}, failures
    )


def median_figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    """
    @return: The figures of a contestant's runs, C{results}, as
        L{in_turns} keeps them.
    """
    figures: dict[str, Any] = {}
    for key in dict.fromkeys(key for r in results for key in r):
        values = [r[key] for r in results if key in r]
        if isinstance(values[0], str):
            figures[key] = values[0]
        elif len(values) == len(results):
            figures[key] = statistics.median(values)
    return figures


def in_process(
    *args: str, module: str = "benchmarks.mirror", in_directory: bool = False
) -> Callable[[Path | None], Awaitable[dict[str, Any]]]:
    """
    @param in_directory: Whether the process works in the measure's
        directory (C{--directory}), leaving its files for L{in_turns} to
        remove.
    @return: A measure that runs C{python -m MODULE ARGS} in a fresh
        process (so that its peak memory is its own), which prints its
        figures as its last line, in JSON; what it writes on its standard
        error is no failure (a peer's warning), but an exit other than 0
        is, raised as L{Failed} with the last line it wrote there (a
        traceback's exception).
    """

    async def measure(directory: Path | None) -> dict[str, Any]:
        from twisted.internet.utils import getProcessOutputAndValue

        where = ["--directory", str(directory)] if in_directory else []
        ending = getProcessOutputAndValue(
            sys.executable, ["-m", module, *args, *where], env=dict(os.environ), path=os.getcwd()
        )
        # Killed by a signal, it fails with (out, err, signal): told apart
        # as subprocess tells it, by a negative code.
        ending.addErrback(
            lambda failure: (
                (*failure.value[:2], -failure.value[2]) if isinstance(failure.value, tuple) else failure
            )
        )
        out, err, code = await ending
        return child_figures(" ".join([module.removeprefix("benchmarks."), *args]), out, err, code)

    return measure


def child_figures(what: str, out: bytes, err: bytes, code: int | None) -> dict[str, Any]:
    """
    @param code: The child's exit code, or for a child a signal ended the
        signal's number, negated.
    @return: The figures a child printed as its last line, in JSON.
    @raise Failed: saying C{what} and why, if it exited other than 0 or
        printed no figures.
    """
    said = err.decode(errors="replace").strip().splitlines()
    last = f": {said[-1][:120]}" if said else ""
    if code != 0:
        how = f"exit {code}" if code is None or code > 0 else f"killed by signal {-code}"
        raise Failed(f"{what} failed: {how}{last}")
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        figures = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise Failed(f"{what} printed no figures{last}") from None
    if not isinstance(figures, dict):
        raise Failed(f"{what} printed no figures{last}")
    return figures


def shown_ratio(ratio: float) -> str:
    """
    @return: C{ratio} to two decimals, rounded down: rounded to nearest, a
        ratio just short of its target (0.5996 for 0.6) would read as
        meeting it beside a "NO".
    """
    return f"{math.floor(ratio * 100) / 100:.2f}x"


class Table:
    """
    The rows of the report: each gives harbour's figure, its peer's (or the
    ceiling's) measured in the same run, the ratio of the two (higher is
    better for harbour), the target for that ratio, and whether it is met.
    """

    header = ("measurement", "harbour", "peer", "ratio", "target", "met")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def row(
        self, name: str, value: str, target: str, met: bool | None, peer: str = "", ratio: float | None = None
    ) -> None:
        """
        Add a row; C{met} is L{None} where there is no target.
        """
        verdict = "-" if met is None else ("yes" if met else "NO")
        self.rows.append((name, value, peer, "" if ratio is None else shown_ratio(ratio), target, verdict))

    def failed(self, name: str, why: str) -> None:
        """
        Add the row of a measurement that failed, saying why: it is not
        met.
        """
        self.rows.append((name, "failed", f"({why})", "", "", "NO"))

    def ratio_row(self, name: str, harbour: str, peer: str, ratio: float, least: float | None) -> None:
        """
        Add a row whose target is a least ratio (none if C{least} is L{None}).
        """
        if least is None:
            self.row(name, harbour, "-", None, peer=peer, ratio=ratio)
        else:
            self.row(name, harbour, f">= {least:g}x", ratio >= least, peer=peer, ratio=ratio)

    def print(self) -> None:
        """
        Print the table.
        """
        widths = [max(len(str(r[i])) for r in self.rows + [self.header]) for i in range(len(self.header))]
        for line in [self.header, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())


async def measured(table: Table, name: str, section: Callable[[], Awaitable[None]]) -> None:
    """
    Run C{section}, which measures and adds its rows; if it fails, add a
    row named C{name} saying why instead, so that the table goes on with
    the next.
    """
    try:
        await section()
    except Exception as e:
        table.failed(name, describe(e))


async def main(reactor: IBenchReactor, runs: int, quick: bool) -> None:
    """
    Run the benchmarks and print the table.
    """
    table = Table()

    async def latency() -> None:
        latency = await medians(runs, lambda d: backbone.config_latency(reactor, d))
        table.row("config save -> remote event, p50", f"{latency['p50_ms']:.1f} ms", "-", None)
        table.row(
            "config save -> remote event, p99",
            f"{latency['p99_ms']:.1f} ms",
            "<= 50 ms",
            latency["p99_ms"] <= 50,
        )

    await measured(table, "config save -> remote event", latency)

    events = 10_000 if quick else 50_000
    fan_outs: list[Turns] = []

    async def fan_out() -> None:
        contestants: dict[str, Measure] = {
            "redis": lambda d: backbone.redis_fan_out(reactor, d, events),
            "in-process": lambda d: backbone.fan_out_in_process(reactor, d, events),
        }
        if not quick:
            # The remote publisher's row is held to the same Redis figure:
            # it takes its turns with the two others.
            contestants["remote"] = lambda d: backbone.fan_out(reactor, d)
        fan_outs.append(await in_turns(runs, contestants))
        redis = fan_outs[0].of("redis")["events_per_second"]
        rate = fan_outs[0].of("in-process")["events_per_second"]
        table.ratio_row(
            "bus fan-out to 4 remote subscribers",
            f"{rate:,.0f} events/s",
            f"{redis:,.0f}/s Redis pub/sub",
            rate / redis,
            1.0,
        )

    await measured(table, "bus fan-out to 4 remote subscribers", fan_out)

    async def remote_publisher() -> None:
        if not fan_outs:
            raise Failed("no Redis pub/sub figure to compare with")
        redis = fan_outs[0].of("redis")["events_per_second"]
        rate = fan_outs[0].of("remote")["events_per_second"]
        table.ratio_row(
            "  same, from a remote publisher",
            f"{rate:,.0f} events/s",
            f"{redis:,.0f}/s Redis pub/sub",
            rate / redis,
            None,
        )

    if not quick:
        await measured(table, "  same, from a remote publisher", remote_publisher)

    async def generation(directory: Path) -> dict[str, Any]:
        # Each run times harbour, then the bare loop: its turns are its own.
        return manifest.generation()

    async def manifest_rows() -> None:
        figures = await medians(runs, generation)
        table.ratio_row(
            f"manifest: {figures['urls']:,.0f} URLs (100 reports x 12 years)",
            f"{figures['seconds']:.2f} s",
            f"{figures['bare_seconds']:.2f} s bare loop",
            figures["bare_seconds"] / figures["seconds"],
            0.5,
        )

    await measured(table, "manifest", manifest_rows)

    async def refresh_rows() -> None:
        turns = await in_turns(runs, {"refresh": in_process("refresh"), "ceiling": in_process("ceiling")})
        refresh, ceiling = turns.of("refresh"), turns.of("ceiling")
        for label, key in [
            ("creating 100,000 new tasks", "new_seconds"),
            ("finding 100,000 present", "present_seconds"),
        ]:
            table.ratio_row(
                f"refresh {label}",
                f"{refresh[key]:.2f} s",
                f"{ceiling[key]:.2f} s pipelined",
                ceiling[key] / refresh[key],
                0.5,
            )

    await measured(table, "refresh", refresh_rows)

    async def politeness_rows() -> None:
        polite = await medians(runs, in_process("politeness"))
        table.ratio_row(
            "politeness 0.2 s, latency 0.1 s: starts/slot",
            f"{polite['harbour_slot_use']:.3f}",
            "1.000 allowed",
            polite["harbour_slot_use"],
            0.98,
        )
        table.ratio_row(
            "",
            "",
            f"{polite['sequential_slot_use']:.3f} sleepy loop",
            polite["harbour_slot_use"] / polite["sequential_slot_use"],
            None,
        )

    await measured(table, "politeness 0.2 s, latency 0.1 s", politeness_rows)

    async def publications_rows() -> None:
        # Counts of requests, not times: one run says it all.
        directory = Path(tempfile.mkdtemp(prefix="hb-bench-"))
        try:
            following = await publications.mirror(reactor, directory / "following", True)
            ranges = await publications.mirror(reactor, directory / "ranges", False)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        table.ratio_row(
            "requests per useful file, last day unpublished",
            f"{following['requests_per_useful_file']:.2f}",
            f"{ranges['requests_per_useful_file']:.2f} date ranges",
            ranges["requests_per_useful_file"] / following["requests_per_useful_file"],
            1.0,
        )
        table.row(
            "  requests for unpublished windows",
            f"{following['no_data_answers']}",
            "0",
            following["no_data_answers"] == 0,
            peer=f"{ranges['no_data_answers']} date ranges",
        )

    await measured(table, "requests per useful file", publications_rows)

    async def catalogue_rows() -> None:
        plan = catalogue.requests()
        table.ratio_row(
            "requests for 39 months of 10 typical reports",
            f"{plan['catalogue_requests']:,} ({plan['catalogue_hours']:.1f} h at 5 s)",
            f"{plan['daily_requests']:,} one a day ({plan['daily_hours']:.1f} h)",
            plan["daily_requests"] / plan["catalogue_requests"],
            5.0,
        )

    await measured(table, "requests for 39 months", catalogue_rows)

    count = 200 if quick else 2000
    small_name = f"{count:,} files of 100 KB, 16 at once"

    async def small_files() -> None:
        small = await medians(
            runs, in_process("files", "--count", str(count), "--size", "100000", in_directory=True)
        )
        add_files(table, small_name, small, {"aria2c": 1.5, "treq": 0.6}, quick)

    await measured(table, small_name, small_files)

    big = (4, 20_000_000) if quick else (4, 200_000_000)
    big_name = f"{big[0]} files of {big[1] // 1_000_000} MB"

    async def large_files() -> None:
        large = await medians(
            runs,
            # Each run removes its own files when over: four per contestant,
            # nothing for a file system to scan past, and three runs' 3 GB kept
            # would crowd the page cache the next runs write through.
            in_process("files", "--count", str(big[0]), "--size", str(big[1]), "--concurrency", "4"),
        )
        add_large_files(table, big_name, large, quick)

    await measured(table, big_name, large_files)

    async def dataset_rows() -> None:
        # It repeats what it must itself, and takes the best: one run.
        figures = await in_process(*(["--quick"] if quick else []), module="benchmarks.dataset")(None)
        for row in dataset.rows(figures, quick):
            table.row(**row)

    await measured(table, "parse+write all-node day", dataset_rows)

    print(f"\nharbour benchmarks on {machine()}; median of {runs} runs\n")
    table.print()
    if quick:
        print(f"\n{QUICK_NOTE}")


#: What a quick table says under its rows.
QUICK_NOTE = (
    "--quick: the rows whose targets are set for the full sizes (the file rows, harbour's peak"
    " memory, the parse and its peak RSS, the hub prices) show - for target and met:"
    " at a tenth of the size fixed costs set their ratios"
)


#: The peers of the throughput rows: the key of their figure, and their name.
PEERS = {
    "aria2c": ("aria2c_seconds", "aria2c"),
    "treq": ("treq_seconds", "treq loop"),
    "treq_synced": ("treq_synced_seconds", "treq loop, synced"),
    "wget": ("wget_seconds", "wget -i"),
}


def add_large_files(table: Table, name: str, figures: dict[str, Any], quick: bool = False) -> None:
    """
    The rows of the large files (L{add_files}, aria2c held to 1.5x) and
    harbour's peak memory as it downloads them (at most 100 MB); with
    C{quick} (files a tenth of the size), neither is judged.
    """
    add_files(table, name, figures, {"aria2c": 1.5}, quick)
    table.row(
        "  harbour's peak memory",
        f"{figures['harbour_peak_rss_mb']:.0f} MB",
        "-" if quick else "<= 100 MB",
        None if quick else figures["harbour_peak_rss_mb"] <= 100,
    )


def add_files(
    table: Table, name: str, figures: dict[str, Any], targets: dict[str, float], quick: bool = False
) -> None:
    """
    Throughput rows: harbour against each peer measured (aria2c C{-j16
    -x1}, a plain treq loop, the same loop until its files are durable,
    C{wget -i}), each ratio held to its target where C{targets} names one,
    unless C{quick}: a tenth of the files, or files a tenth of the size,
    where fixed costs (a process started, a service's first claim) weigh
    on the ratios as they do not at full size, and no target is judged.
    The ratio is the median of each run's own (the figures shown are the
    medians of each contestant's times, which need not come from one run).
    A peer that failed (C{NAME_failed}) has a row saying so, not judged.
    """
    if quick:
        targets = {}
    harbour = figures["harbour_seconds"]
    first = True
    for peer, (key, label) in PEERS.items():
        row = name if first else ""
        if f"{peer}_failed" in figures:
            # Its failure is no verdict on harbour: said, and not judged.
            table.row(
                row,
                f"{harbour:.2f} s" if first else "",
                f">= {targets[peer]:g}x" if peer in targets else "-",
                None,
                peer=f"({label} failed: {figures[f'{peer}_failed']})",
            )
            first = False
            continue
        if key not in figures:
            if peer in targets:
                table.row(
                    row,
                    f"{harbour:.2f} s" if first else "",
                    f">= {targets[peer]:g}x",
                    None,
                    peer=f"(no {label})",
                )
                first = False
            continue
        table.ratio_row(
            row,
            f"{harbour:.2f} s" if first else "",
            f"{figures[key]:.2f} s {label}",
            figures[f"{peer}_ratio"],
            targets.get(peer),
        )
        first = False


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per measurement (median; 3, or 1 if --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run each, smaller sizes; the targets set for the full sizes are not judged",
    )
    arguments = parser.parse_args()
    runs = arguments.runs or (1 if arguments.quick else 3)
    react(lambda reactor: ensureDeferred(main(reactor, runs, arguments.quick)))
