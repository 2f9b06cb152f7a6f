"""
Zips for the dataset's tests: the real samples, and answers made with the
simulator's own report generators.
"""

from __future__ import annotations

import datetime
import io
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset.inventory import file_sha256
from harbour.dataset.write import WrittenWindow, write_window
from harbour.oasis.requests import trading_day
from harbour.testing.simulator.documents import deterministic_zip
from harbour.testing.simulator.formats import PACIFIC, Draws, Span
from harbour.testing.simulator.reports import CATALOGUE, report_members

#: The real OASIS samples.
SAMPLES = Path(__file__).parent.parent.parent / "test" / "samples"
#: The zipped PRC_LMP hubs sample (2020-01-02T00:00Z to 24:00Z).
HUBS_ZIP = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
HUBS_CSV = SAMPLES / "csv_PRC_LMP_DAM_v1_20200101_hubs.csv"
#: The autumn change day of 2025, with its repeated hour as C{OPR_HR} 25.
FALLBACK_CSV = SAMPLES / "csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv"

STAMP = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def zip_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """
    Write a zip of C{members} at C{path}.

    @return: C{path}.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(deterministic_zip(members, STAMP))
    return path


def simulated(
    path: Path,
    queryname: str,
    market: str,
    first: datetime.date,
    last: datetime.date,
    *,
    csv: bool = True,
    nodes: int = 3,
    version: int = 1,
    seed: int = 1,
) -> Path:
    """
    Write at C{path} the simulator's answer for trading days C{first} to
    C{last}: one CSV member, or (C{csv=False}) one XML member per price
    component as group zips have.

    @return: C{path}.
    """
    start, end = trading_day(first, PACIFIC)[0], trading_day(last, PACIFIC)[1]
    span = Span(version, start, end, Draws(seed), STAMP, csv)
    members = report_members(CATALOGUE[queryname], market, span, nodes)
    return zip_of(path, members)


def sample_zip(path: Path, sample: Path) -> Path:
    """
    Put a sample file alone in a zip at C{path}.

    @return: C{path}.
    """
    return zip_of(path, [(sample.name, sample.read_bytes())])


def write(zip_path: Path, tables_dir: Path, report: str = "lmp", label: str | None = None) -> WrittenWindow:
    """
    L{write_window} with the zip's own hash and a made-up URL.
    """
    return write_window(
        zip_path,
        tables_dir,
        report,
        label or zip_path.stem,
        url=f"https://oasis.example/{zip_path.name}",
        sha256=file_sha256(zip_path),
    )


def member_text(zip_path: Path) -> str:
    """
    @return: The text of a zip's only member.
    """
    with zipfile.ZipFile(zip_path) as archive:
        return io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="utf-8").read()


def removed_when_scanned(case: SynchronousTestCase, directory: Path) -> None:
    """
    Have C{directory} removed, with its files, just before it is first
    scanned (C{os.scandir}, which C{Path.glob} uses too), as a day's
    directory is when a rewrite of its window over fewer days commits
    while the day's files are listed.
    """
    scandir, target = os.scandir, directory.resolve()
    removed: list[Path] = []

    def scanning(path: Any = ".") -> Any:
        # A descriptor is the scan of shutil.rmtree's own.
        if not removed and not isinstance(path, int) and Path(os.fsdecode(path)).resolve() == target:
            removed.append(target)
            shutil.rmtree(target)
        return scandir(path)

    case.patch(os, "scandir", scanning)
