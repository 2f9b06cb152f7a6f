"""
C{harbourctl}: the operator's client of a running harbour, over AMP.

Exit codes: 0 success, 1 the command failed (or the daemon could not
answer it, or it was interrupted before its answer), 2 usage error, 3
cannot connect or not authorised; C{status --check} exits 0, 1 or 2 for
ok, warning or critical (and 3, unknown, when it cannot have the status,
its command line wrong or an interruption included), as monitoring
plugins do.  Ctrl-C is the usual end of C{watch} and C{subscribe}: 0.
C{check-config}, C{manifest}, C{catalogue}, C{plan}, C{query} and C{tables}
work offline.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, NoReturn

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import react

from harbour.amp.commands import MAX_PAGE
from harbour.bus import validate_pattern
from harbour.ctl import dataset as dataset_commands
from harbour.ctl.codes import DEFAULT_CONNECT, FAILED, OK, UNREACHABLE, USAGE
from harbour.ctl.offline import check_config, plan_table, print_manifest, show_catalogue
from harbour.ctl.output import discard_output
from harbour.ctl.remote import _status, plan_without_progress, run_remote
from harbour.errors import BadRequest
from harbour.store.tasks import EMPTY, STATES
from harbour.store.tasks import FAILED as FAILED_TASKS
from harbour.web.health import CHECK_WORDS

__all__ = [
    "FAILED",
    "OK",
    "UNREACHABLE",
    "USAGE",
    "_status",
    "check_config",
    "main",
    "parser",
    "print_manifest",
]


def parser() -> argparse.ArgumentParser:
    """
    @return: The argument parser of every subcommand.
    """
    top = argparse.ArgumentParser(
        prog="harbourctl", description="harbourctl: the operator's client of a running harbour, over AMP."
    )
    top.add_argument(
        "--connect",
        default=os.environ.get("HARBOUR_CONNECT", DEFAULT_CONNECT),
        help=f"control port endpoint (default {DEFAULT_CONNECT})",
    )
    top.add_argument(
        "--token-file",
        default=os.environ.get("HARBOUR_TOKEN_FILE", "data/amp.token"),
        help="the daemon's token file (default data/amp.token)",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check-config", help="validate a configuration directory offline")
    check.add_argument("directory", type=Path)

    status = sub.add_parser("status", help="show the daemon's state")
    status.add_argument("--json", action="store_true", help="print the raw JSON document")
    status.add_argument(
        "--check",
        action="store_true",
        help=(
            "print one line and exit 0, 1 or 2 for ok, warning or critical, or 3 if the status "
            "cannot be had, as monitoring plugins do (with --json: the document, and the same exit)"
        ),
    )

    publish = sub.add_parser("publish", help="publish a JSON payload on a topic")
    publish.add_argument("topic")
    publish.add_argument("payload", help="JSON text")
    publish.add_argument("--retain", action="store_true", help="keep as the topic's current value")

    subscribe = sub.add_parser("subscribe", help="print events as JSON lines until Ctrl-C")
    subscribe.add_argument("topics", nargs="+", metavar="TOPIC", type=_pattern, help="a topic or prefix*")

    sub.add_parser("reload", help="re-read the configuration directory now")
    sub.add_parser("refresh", help="create the tasks the manifest has and the store lacks, now")
    for verb in ("pause", "resume"):
        command = sub.add_parser(verb, help=f"{verb} a service (download, work or tables), or all")
        command.add_argument("service", nargs="?")

    tasks = sub.add_parser("tasks", help="list tasks by state")
    tasks.add_argument("--state", default="failed", choices=STATES)
    tasks.add_argument("--report")
    tasks.add_argument("--limit", type=_within(1, MAX_PAGE), default=50, help=f"1 to {MAX_PAGE}")
    tasks.add_argument("--offset", type=_within(0, None), default=0)
    tasks.add_argument("--json", action="store_true", help="print the raw JSON list")

    retry = sub.add_parser("retry", help="put failed (or empty) tasks back to pending")
    retry.add_argument("--state", default="failed", choices=(FAILED_TASKS, EMPTY))
    retry.add_argument("--report")

    reparse = sub.add_parser("reparse", help="parse downloaded files into their tables again")
    reparse.add_argument("--report", help="only this report's files")

    watch = sub.add_parser(
        "watch", help="live progress per report until Ctrl-C: bars on a terminal, a line a report elsewhere"
    )
    watch.add_argument("--interval", type=_interval, default=1.0, help=argparse.SUPPRESS)

    catalogue = sub.add_parser("catalogue", help="the OASIS reports harbour knows, or one of them, offline")
    catalogue.add_argument("name", nargs="?", help="a queryname or groupid")

    plans = sub.add_parser(
        "plan", help="requests and hours a configuration needs (with what a reachable daemon has done)"
    )
    plans.add_argument("--config-dir", type=Path, default=Path("config"))
    plans.add_argument("--json", action="store_true", help="print JSON")
    plans.add_argument("--offline", action="store_true", help="do not ask the daemon")
    plans.add_argument("--today", type=datetime.date.fromisoformat, help=argparse.SUPPRESS)

    manifest = sub.add_parser("manifest", help="print every report URL of a configuration, offline")
    manifest.add_argument("--config-dir", type=Path, default=Path("config"))
    manifest.add_argument("--start", type=trading_day, help="first trading day (YYYY-MM-DD)")
    manifest.add_argument("--end", type=trading_day, help="last trading day (YYYY-MM-DD)")
    manifest.add_argument("--today", type=datetime.date.fromisoformat, help=argparse.SUPPRESS)
    dataset_commands.add_commands(sub)
    return top


def trading_day(text: str) -> datetime.date:
    """
    Read a C{--start} or C{--end}: a date in a year OASIS could have
    data for (the manifest also works out the day after and before it,
    which must be dates too).

    @raise argparse.ArgumentTypeError: for anything else, saying what is
        expected.
    """
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not 1900 <= day.year <= 9998:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year between 1900 and 9998")
    return day


def _pattern(text: str) -> str:
    """
    Read a C{subscribe} pattern: a topic, or the start of one followed by
    C{*}.  Each is read, even one another covers, as the daemon would
    read it alone.

    @raise argparse.ArgumentTypeError: for anything else, saying why.
    """
    try:
        return validate_pattern(text)
    except BadRequest as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: The fewest seconds between two of C{watch}'s C{Status} requests: fewer
#: (0, say) would ask the daemon without pause.
LEAST_INTERVAL = 0.1

#: The most seconds between two of them: the daemon closes a connection
#: that sends nothing for two minutes (L{harbour.amp.server.IDLE_TIMEOUT}).
MOST_INTERVAL = 60.0


def _interval(text: str) -> float:
    """
    Read C{watch --interval}: a number of seconds, from L{LEAST_INTERVAL}
    to L{MOST_INTERVAL}.

    @raise argparse.ArgumentTypeError: for anything else (C{nan} and
        C{inf} included), saying what is expected.
    """
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (LEAST_INTERVAL <= seconds <= MOST_INTERVAL):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from {LEAST_INTERVAL:g} to {MOST_INTERVAL:g}"
        )
    return seconds


def _within(least: int, most: int | None) -> Callable[[str], int]:
    """
    @return: A reader of an argument that is a whole number from C{least}
        to C{most} (or more, without one), raising
        L{argparse.ArgumentTypeError} for anything else.
    """

    def read(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < least or (most is not None and number > most):
            bounds = f"from {least} to {most}" if most is not None else f"{least} or more"
            raise argparse.ArgumentTypeError(f"{number} is not {bounds}")
        return number

    return read


def main(argv: list[str] | None = None) -> None:
    """
    The C{harbourctl} console script.
    """
    try:
        _run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        _reader_gone()


def _reader_gone() -> NoReturn:
    """
    Stop quietly when the reader of the output has gone (C{harbourctl
    manifest | head}), as a program killed by C{SIGPIPE} would, but with
    no traceback.
    """
    discard_output(sys.stdout)
    sys.exit(FAILED)


def _parse(arguments: list[str]) -> argparse.Namespace:
    """
    Parse C{arguments}, or exit with L{USAGE} saying why they cannot be:
    with L{UNREACHABLE} and a plugin's line for C{status --check}, which
    monitoring would read as CRITICAL otherwise, when the fault is the
    command line's, not the daemon's.
    """
    try:
        for argument in arguments:
            try:
                argument.encode("utf-8")
            except UnicodeEncodeError:
                # Bytes the locale could not decode: no name or payload has them.
                print(f"harbourctl: argument {argument!r} is not UTF-8 text", file=sys.stderr)
                sys.exit(USAGE)
        return parser().parse_args(arguments)
    except SystemExit as e:
        if e.code == USAGE and _checking(arguments):
            why = "harbourctl: the command line is wrong (see standard error)"
            print(f"HARBOUR {CHECK_WORDS[UNREACHABLE]} - {why}")
            sys.exit(UNREACHABLE)
        raise


def _checking(arguments: list[str]) -> bool:
    """
    @return: Whether C{arguments} ask for C{status --check}, as far as a
        command line that cannot be parsed tells.
    """
    return "status" in arguments and "--check" in arguments[arguments.index("status") :]


def _run(arguments: list[str]) -> None:
    """
    Run the command C{arguments} ask for.
    """
    args = _parse(arguments)
    if args.command == "check-config":
        sys.exit(check_config(args.directory, sys.stdout))
    if args.command == "manifest":
        sys.exit(print_manifest(args, sys.stdout))
    if args.command == "catalogue":
        sys.exit(show_catalogue(args.name, sys.stdout))
    if args.command in dataset_commands.COMMANDS:
        sys.exit(dataset_commands.run(args, sys.stdout))
    if args.command == "plan" and args.offline:
        sys.exit(plan_table(args, sys.stdout))

    @inlineCallbacks
    def _main(reactor: IReactorCore) -> Generator[Deferred[Any], Any, None]:
        # An interruption (Ctrl-C, SIGTERM) is run_remote's to judge: the
        # end of watch and subscribe, a failure of any other command.
        try:
            code = yield run_remote(reactor, args, sys.stdout)
            if code == UNREACHABLE and args.command == "plan":
                code = plan_without_progress(args, sys.stdout)
        except BrokenPipeError:
            _reader_gone()
        if code:
            raise SystemExit(code)

    react(_main)
