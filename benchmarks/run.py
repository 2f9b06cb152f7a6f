"""
C{make bench}: run every benchmark and print one table.

Each row gives harbour's figure (the median of several runs), the target,
and whether it is met.
"""

from __future__ import annotations

import argparse
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

from benchmarks import backbone, manifest
from harbour.redisserver import find_redis_server


def machine() -> str:
    """
    @return: One line describing this machine.
    """
    redis = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True)
    version = redis.stdout.split()[2] if redis.returncode == 0 else "?"
    return (f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"Redis {version.removeprefix('v=')}, {platform.system()} {platform.machine()}")


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


async def main(reactor, runs: int) -> None:
    """
    Run the benchmarks and print the table.
    """
    rows = []

    def row(name, value, unit, target, met):
        rows.append((name, f"{value:,.1f} {unit}", target, "yes" if met else "NO"))

    latency = await medians(runs, lambda d: backbone.config_latency(reactor, d))
    row("config save -> remote event, p50", latency["p50_ms"], "ms", "-", True)
    row("config save -> remote event, p99", latency["p99_ms"], "ms", "<= 50 ms", latency["p99_ms"] <= 50)
    rate = (await medians(runs, lambda d: backbone.fan_out_in_process(reactor, d)))["events_per_second"]
    row("bus fan-out to 4 remote subscribers", rate, "events/s", ">= 20,000/s", rate >= 20_000)
    rate = (await medians(runs, lambda d: backbone.fan_out(reactor, d)))["events_per_second"]
    row("  same, from a remote publisher", rate, "events/s", "-", True)

    async def generation(directory):
        return manifest.generation()

    figures = await medians(runs, generation)
    row(f"manifest: {figures['urls']:,.0f} URLs (100 reports x 12 years)", figures["seconds"], "s",
        "<= 2 s", figures["seconds"] <= 2)

    print(f"\nharbour benchmarks on {machine()}; median of {runs} runs\n")
    widths = [max(len(r[i]) for r in rows + [("measurement", "harbour", "target", "met")]) for i in range(4)]
    header = ("measurement", "harbour", "target", "met")
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    arguments = parser.parse_args()
    react(lambda reactor: ensureDeferred(main(reactor, arguments.runs)))
