"""
Benchmark of manifest generation: 100 reports over 12 years of daily
windows (about 440,000 URLs), against its peer, a bare loop formatting the
same URLs and file names.
"""

from __future__ import annotations

import datetime
import gc
import statistics
import time
from zoneinfo import ZoneInfo

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.requests import report_urls

FIRST = datetime.date(2013, 1, 1)
LAST = datetime.date(2024, 12, 31)
PACIFIC = ZoneInfo("America/Los_Angeles")
BASE = "https://oasis.caiso.com/oasisapi/SingleZip"


def definitions(reports: int) -> list[ReportTopic]:
    """
    @return: C{reports} daily C{PRC_LMP} reports.
    """
    return [
        ReportTopic(
            name=f"report-{i}",
            queryname="PRC_LMP",
            kind="single_zip",
            market_run_id="DAM",
            resultformat="csv",
            params={"grp_type": "ALL_APNODES"},
        )
        for i in range(reports)
    ]


def bare_loop(reports: int) -> list[tuple[str, str]]:
    """
    The peer: the URL and file name of every window, formatted in a loop
    that knows the answer (one query, daily windows, no catalogue, no
    checks), each day's times worked out once for every report.

    @return: (URL, file name) of each window.
    """
    utc = datetime.UTC
    days = []
    day = LAST
    while day >= FIRST:
        following = day + datetime.timedelta(days=1)
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(utc)
        end = datetime.datetime(following.year, following.month, following.day, tzinfo=PACIFIC).astimezone(
            utc
        )
        days.append((f"{start:%Y%m%dT%H:%M}", f"{end:%Y%m%dT%H:%M}", day.isoformat()))
        day -= datetime.timedelta(days=1)
    return [
        (
            (
                f"{BASE}?queryname=PRC_LMP&startdatetime={start}-0000&enddatetime={end}-0000"
                f"&market_run_id=DAM&version=1&resultformat=6&grp_type=ALL_APNODES"
            ),
            f"report-{report}/{name}.zip",
        )
        for report in range(reports)
        for start, end, name in days
    ]


def generation(reports: int = 100) -> dict:
    """
    @return: Seconds to compute every request, seconds for the bare loop
        to format the same, and how many there were.
    @raise AssertionError: if the two disagree on a single URL.
    """
    reported = definitions(reports)
    manifest = ManifestTopic(start=FIRST.isoformat(), end=LAST.isoformat())
    # Each contestant starts from a settled heap, so that neither pays for
    # collecting what was made before it.
    gc.collect()
    started = time.perf_counter()
    urls = report_urls(manifest, reported, datetime.date(2025, 1, 1))
    harbour = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    peer = bare_loop(reports)
    bare = time.perf_counter() - started
    if {(u.url, u.filename) for u in urls} != set(peer):
        raise AssertionError("the bare loop formats other URLs than harbour")
    return {"seconds": harbour, "bare_seconds": bare, "urls": len(urls)}


def main() -> None:
    """
    Print the median of three runs and the ratio to the bare loop.
    """
    runs = [generation() for ignored in range(3)]
    harbour = statistics.median(run["seconds"] for run in runs)
    bare = statistics.median(run["bare_seconds"] for run in runs)
    print(
        f"manifest: {runs[0]['urls']:,} URLs  harbour {harbour:.3f} s  bare loop {bare:.3f} s  "
        f"ratio {bare / harbour:.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()
