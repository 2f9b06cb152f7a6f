"""
The commands of C{harbourctl} that need no daemon: checking a
configuration directory and listing its requests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from harbour.config.schema import load_directory
from harbour.ctl.codes import FAILED, OK
from harbour.oasis.requests import market_today, report_urls


def check_config(directory: Path, out: TextIO) -> int:
    """
    Print every problem of a configuration directory as C{file:line: message}.

    @return: L{OK} if there are none, else L{FAILED}.
    """
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=out)
        return FAILED
    configuration, problems = load_directory(directory)
    for problem in problems:
        print(problem, file=out)
    if configuration is None:
        return FAILED
    print(f"{directory}: OK ({len(configuration.sources)} topics from files)", file=out)
    return OK


def print_manifest(args: argparse.Namespace, out: TextIO) -> int:
    """
    Print the URL of every request of a configuration directory, one a line.

    @return: L{OK}, or L{FAILED} if the configuration has errors.
    """
    configuration, problems = load_directory(args.config_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if configuration is None:
        return FAILED
    manifest = configuration.topics["manifest"]
    today = args.today or market_today(manifest, time.time())
    for request in report_urls(manifest, configuration.topics["reports"], today, args.start, args.end):
        out.write(request.url + "\n")
    return OK


