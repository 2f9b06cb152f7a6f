"""
C{make bench}: run every benchmark and print one table.

Each row gives harbour's figure (the median of several runs), the figure of
the peer measured in the same run where there is one, their ratio (higher
is better for harbour), the target, and whether it is met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from benchmarks import backbone, catalogue, manifest, publications
from harbour.store.server import find_redis_server


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


async def medians(runs: int, measure) -> dict[str, float]:
    """
    @return: For each figure C{measure(directory)} returns, its median over
        C{runs} runs, each in a fresh directory.
    """
    results: list[dict] = []
    for ignored in range(runs):
        directory = Path(tempfile.mkdtemp(prefix="hb-bench-"))
        try:
            results.append(await measure(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def in_process(*args: str):
    """
    @return: A measure that runs C{python -m benchmarks.mirror ARGS} in a
        fresh process (so that its peak memory is its own).
    """

    async def measure(directory):
        from twisted.internet.utils import getProcessOutput

        output = await getProcessOutput(
            sys.executable,
            ["-m", "benchmarks.mirror", *args],
            env=dict(os.environ),
            path=os.getcwd(),
            errortoo=False,
        )
        return json.loads(output.decode().strip().splitlines()[-1])

    return measure


class Table:
    """
    The rows of the report.
    """

    header = ("measurement", "harbour", "peer", "ratio", "target", "met")

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def row(
        self, name: str, value: str, target: str, met: bool | None, peer: str = "", ratio: float | None = None
    ):
        verdict = "-" if met is None else ("yes" if met else "NO")
        self.rows.append((name, value, peer, "" if ratio is None else f"{ratio:.2f}x", target, verdict))

    def print(self) -> None:
        widths = [max(len(str(r[i])) for r in self.rows + [self.header]) for i in range(len(self.header))]
        for line in [self.header, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))


async def main(reactor, runs: int, quick: bool) -> None:
    """
    Run the benchmarks and print the table.
    """
    table = Table()

    latency = await medians(runs, lambda d: backbone.config_latency(reactor, d))
    table.row("config save -> remote event, p50", f"{latency['p50_ms']:.1f} ms", "-", None)
    table.row(
        "config save -> remote event, p99", f"{latency['p99_ms']:.1f} ms", "<= 50 ms", latency["p99_ms"] <= 50
    )
    rate = (await medians(runs, lambda d: backbone.fan_out_in_process(reactor, d)))["events_per_second"]
    table.row("bus fan-out to 4 remote subscribers", f"{rate:,.0f} events/s", ">= 20,000/s", rate >= 20_000)
    rate = (await medians(runs, lambda d: backbone.fan_out(reactor, d)))["events_per_second"]
    table.row("  same, from a remote publisher", f"{rate:,.0f} events/s", "-", None)

    async def generation(directory):
        return manifest.generation()

    figures = await medians(runs, generation)
    table.row(
        f"manifest: {figures['urls']:,.0f} URLs (100 reports x 12 years)",
        f"{figures['seconds']:.2f} s",
        "<= 2 s",
        figures["seconds"] <= 2,
    )

    refresh = await medians(runs, in_process("refresh"))
    table.row(
        "refresh creating 100,000 new tasks",
        f"{refresh['new_seconds']:.2f} s",
        "<= 10 s",
        refresh["new_seconds"] <= 10,
    )
    table.row(
        "refresh finding 100,000 present",
        f"{refresh['present_seconds']:.2f} s",
        "<= 3 s",
        refresh["present_seconds"] <= 3,
    )

    polite = await medians(runs, in_process("politeness"))
    table.row(
        "politeness 0.2 s, latency 0.1 s: starts/slot",
        f"{polite['harbour_slot_use']:.3f}",
        ">= 0.98",
        polite["harbour_slot_use"] >= 0.98,
        peer=f"{polite['sequential_slot_use']:.3f} sleepy",
        ratio=polite["harbour_slot_use"] / polite["sequential_slot_use"],
    )

    # Counts of requests, not times: one run says it all.
    directory = Path(tempfile.mkdtemp(prefix="hb-bench-"))
    try:
        following = await publications.mirror(reactor, directory / "following", True)
        ranges = await publications.mirror(reactor, directory / "ranges", False)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    table.row(
        "requests per useful file, up to today",
        f"{following['requests_per_useful_file']:.2f}",
        "-",
        None,
        peer=f"{ranges['requests_per_useful_file']:.2f} date ranges",
        ratio=ranges["requests_per_useful_file"] / following["requests_per_useful_file"],
    )
    table.row(
        "  requests for unpublished windows",
        f"{following['no_data_answers']}",
        "0",
        following["no_data_answers"] == 0,
        peer=f"{ranges['no_data_answers']} date ranges",
    )

    plan = catalogue.requests()
    table.row(
        "requests for 39 months of 10 typical reports",
        f"{plan['catalogue_requests']:,} ({plan['catalogue_hours']:.1f} h at 5 s)",
        ">= 5x fewer",
        plan["daily_requests"] >= 5 * plan["catalogue_requests"],
        peer=f"{plan['daily_requests']:,} one a day ({plan['daily_hours']:.1f} h)",
        ratio=plan["daily_requests"] / plan["catalogue_requests"],
    )

    count, size = (200, 100_000) if quick else (2000, 100_000)
    small = await medians(runs, in_process("files", "--count", str(count), "--size", str(size)))
    add_files(table, f"{count:,} files of 100 KB, 16 at once", small)
    big = (4, 20_000_000) if quick else (4, 200_000_000)
    large = await medians(
        runs, in_process("files", "--count", str(big[0]), "--size", str(big[1]), "--concurrency", "4")
    )
    add_files(table, f"{big[0]} files of {big[1] // 1_000_000} MB", large)
    table.row(
        "  harbour's peak memory",
        f"{large['harbour_peak_rss_mb']:.0f} MB",
        "<= 100 MB",
        large["harbour_peak_rss_mb"] <= 100,
    )

    print(f"\nharbour benchmarks on {machine()}; median of {runs} runs\n")
    table.print()


def add_files(table: Table, name: str, figures: dict) -> None:
    """
    Throughput rows: harbour against aria2c C{-j16 -x1} (the target), then
    against C{wget -i} and a plain treq loop (this machine's ceiling).
    """
    harbour = figures["harbour_seconds"]
    if "aria2c_seconds" in figures:
        ratio = figures["aria2c_seconds"] / harbour
        table.row(
            name,
            f"{harbour:.2f} s",
            ">= 1.0x aria2c",
            ratio >= 1.0,
            peer=f"{figures['aria2c_seconds']:.2f} s aria2c",
            ratio=ratio,
        )
    else:
        table.row(name, f"{harbour:.2f} s", ">= 1.0x aria2c", None, peer="(no aria2c)")
    for key, label in [("wget_seconds", "wget -i"), ("treq_seconds", "treq loop")]:
        if key in figures:
            table.row("", "", "-", None, peer=f"{figures[key]:.2f} s {label}", ratio=figures[key] / harbour)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="smaller file benchmarks")
    arguments = parser.parse_args()
    react(lambda reactor: ensureDeferred(main(reactor, arguments.runs, arguments.quick)))
