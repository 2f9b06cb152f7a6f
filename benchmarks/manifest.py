"""
Benchmark of manifest generation: 100 reports over 12 years of daily
windows (about 440,000 URLs).
"""

from __future__ import annotations

import datetime
import time

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.requests import report_urls


def generation(reports: int = 100) -> dict:
    """
    @return: Seconds to compute every request, and how many there were.
    """
    definitions = [
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
    manifest = ManifestTopic(start="2013-01-01", end="2024-12-31")
    started = time.perf_counter()
    urls = report_urls(manifest, definitions, datetime.date(2025, 1, 1))
    return {"seconds": time.perf_counter() - started, "urls": len(urls)}
