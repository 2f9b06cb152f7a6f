"""
The commands of C{harbourctl} that talk to a running harbour over AMP.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TextIO, cast

from OpenSSL import SSL
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.defer import TimeoutError as NoAnswer
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.protocols import amp
from twisted.protocols.amp import TooLong
from twisted.python.failure import Failure

from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, RemoteBus, authenticated, client_endpoint, status
from harbour.amp.server import read_token
from harbour.bus import Event, matches
from harbour.ctl.codes import FAILED, OK, UNREACHABLE, USAGE
from harbour.ctl.offline import plan_table
from harbour.ctl.output import DataConsole, PipeConsole, discard_output, is_terminal
from harbour.errors import BadRequest, ConfigurationError, HarbourError, PayloadTooLarge, Unauthorized
from harbour.interfaces import IEvent
from harbour.store.tasks import STATES, completion
from harbour.web.health import CHECK_WORDS, refreshes_failing, verdict

#: Seconds a control port has to accept the connection and the token, and
#: to answer C{Status}: harbour answers them at once, so a longer wait
#: means something else listens, or the daemon is stuck or stopped.
ANSWER_WITHIN = 10.0
#: Seconds the daemon has to answer any other command: some work before
#: they answer (a refresh of every task, say).
COMMAND_WITHIN = 300.0

#: Seconds between the checks C{subscribe} makes that the daemon still
#: answers (a C{Status}, to be answered within L{ANSWER_WITHIN}): a daemon
#: stopped (SIGSTOP) or a host gone sends nothing, as a quiet daemon does.
ALIVE_EVERY = 30.0

#: A subcommand run against a connected daemon: it fires with the exit code.
RemoteCommand = Callable[[IReactorCore, HarbourClientProtocol, argparse.Namespace, TextIO], Deferred[int]]


#: What AMP answers for an error its responder did not name: the daemon
#: logs the error itself.
UNNAMED_ERROR = "Unknown Error"


class RemoteFailure(Exception):
    """
    The daemon could not answer a command: it does not know the command
    (it is an older harbour, say), or it failed while answering, with an
    error harbour's commands do not name: one it logs, or one of a newer
    harbour's, with its reason.

    @ivar command: The name of the AMP command.
    @ivar unknown: Whether the daemon does not know the command, rather
        than failed while answering it.
    @ivar reason: What the daemon said of an error this harbourctl does
        not know, if it said anything.
    """

    def __init__(self, command: str, unknown: bool, reason: str | None = None) -> None:
        super().__init__(command, unknown, reason)
        self.command = command
        self.unknown = unknown
        self.reason = reason

    def __str__(self) -> str:
        if self.unknown:
            return f"the daemon does not know the command {self.command}: is it an older harbour?"
        if self.reason:
            return f"the daemon could not answer {self.command}: {self.reason}"
        return f"the daemon failed while answering {self.command}; see its log"


class Unanswered(Exception):
    """
    The daemon did not answer a command in time.
    """


class Unreadable(Exception):
    """
    The other end sent what AMP cannot read (a key longer than AMP allows,
    as the first bytes of an SSH or SMTP greeting are, a box that is no
    command and no answer, an answer to nothing asked): it is not harbour's
    control port, or not only.
    """


class ControlClient(HarbourClientProtocol):
    """
    C{harbourctl}'s end of a control connection: a command the daemon
    cannot answer fails with a L{RemoteFailure} that names the command,
    rather than with AMP's error, which does not; one it does not answer
    in time (L{ANSWER_WITHIN} for C{Status}, L{COMMAND_WITHIN} for any
    other), with L{Unanswered}; each command waiting when the other end
    sends what AMP cannot read, with L{Unreadable}, as the connection
    closes.

    @ivar clock: Times the answers; without one, they are waited for
        without end.
    @ivar unreadable: What the other end sent that AMP cannot read, once
        it has.
    """

    def __init__(self, clock: IReactorTime | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.unreadable: Unreadable | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Read C{data} as L{HarbourClientProtocol} does; what cannot be read
        closes the connection, as a key too long does, and nothing after
        it is read.  Raised, it would close it too, but with a traceback the
        reactor logs.
        """
        if self.unreadable is not None:
            return
        try:
            super().dataReceived(data)
        except amp.NoEmptyBoxes:
            self._cannot_read("a box neither a command nor an answer")
        except (amp.AmpError, KeyError, ValueError, BadRequest) as e:
            # An answer to nothing asked, an event without a topic, ...
            self._cannot_read(_one_line(f"{type(e).__name__}: {e}"))

    def lengthLimitExceeded(self, length: int) -> None:
        """
        A key longer than AMP allows closes the connection, failing each
        command waiting with L{Unreadable}: AMP's own L{TooLong} would
        read as an argument of ours too long to send.
        """
        self._cannot_read(f"a key of {length:,} bytes")

    def _cannot_read(self, what: str) -> None:
        """
        Close the connection, having received C{what}, which AMP cannot
        read.
        """
        self.unreadable = Unreadable(what)
        if self.transport is not None:
            self.transport.loseConnection()

    def stopReceivingBoxes(self, reason: Failure) -> None:
        """
        Fail each command waiting with C{reason}, the connection's end, or
        with L{Unreadable} if that is why it ended.
        """
        super().stopReceivingBoxes(reason if self.unreadable is None else Failure(self.unreadable))

    def callRemote(self, commandType: type[amp.Command], *a: object, **kw: object) -> Deferred[Any] | None:
        """
        Send a command, as L{amp.AMP.callRemote} does.

        @return: A L{Deferred} of the answer, failing with L{RemoteFailure}
            if the daemon cannot answer, L{Unanswered} if it does not in
            time; L{None} for a command that asks for no answer.
        """
        asked: Deferred[Any] | None = super().callRemote(commandType, *a, **kw)
        if asked is None:
            return None
        name = commandType.commandName.decode("ascii")
        # The token's answer is timed with the connection (see run_remote).
        if self.clock is not None and commandType is not commands.Authenticate:
            within = ANSWER_WITHIN if commandType is commands.Status else COMMAND_WITHIN
            asked.addTimeout(within, self.clock).addErrback(_late, name, within)
        return asked.addErrback(_cannot_answer, name)


def _late(failure: Failure, command: str, within: float) -> Failure:
    """
    @return: A failure with L{Unanswered} for a command not answered in
        time; C{failure} itself for any other.
    """
    if failure.check(NoAnswer):
        return Failure(
            Unanswered(f"no answer to {command} within {within:g} s: is the daemon stuck or stopped?")
        )
    return failure


def _cannot_answer(failure: Failure, command: str) -> Failure:
    """
    Name C{command} in an AMP error that does not: the daemon did not
    know it, or failed while answering it.

    @return: A failure with L{RemoteFailure} for those errors; C{failure}
        itself for any other.
    """
    if failure.check(amp.UnhandledCommand):
        return Failure(RemoteFailure(command, unknown=True))
    if failure.check(amp.UnknownRemoteError):
        # AMP keeps only the description of an error code its command does
        # not name: a newer daemon's error says there what went wrong.
        said = str(cast(amp.UnknownRemoteError, failure.value).description)
        return Failure(
            RemoteFailure(command, unknown=False, reason=None if said == UNNAMED_ERROR else _one_line(said))
        )
    return failure


#: The most characters of a daemon's reason that harbourctl repeats.
REASON_SHOWN = 200


def _one_line(said: str) -> str:
    """
    C{said}, as one line of at most L{REASON_SHOWN} characters: what is not
    printable (a line break, a terminal's escape) escaped as C{repr}
    escapes it.
    """
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in said[:REASON_SHOWN])
    return line + "..." if len(said) > REASON_SHOWN else line


#: The commands that run until they are interrupted (Ctrl-C, SIGTERM):
#: that is their usual end, and success.
UNTIL_INTERRUPTED = frozenset({"watch", "subscribe"})


class Interrupted(Exception):
    """
    The command was interrupted (the reactor is stopping) before it ended.
    """


def run_remote(reactor: IReactorCore, args: argparse.Namespace, out: TextIO) -> Deferred[int]:
    """
    Run one subcommand that needs the daemon.

    @return: A L{Deferred} firing with the exit code: L{USAGE} for an
        endpoint that cannot be used or would not check the daemon's
        certificate, before anything is read or sent; L{UNREACHABLE} for a
        daemon that cannot be asked; L{FAILED} for a command refused, or
        one the daemon cannot answer (L{RemoteFailure}).  C{status --check}
        exits L{UNREACHABLE} (unknown, to monitoring) for any of these:
        whatever the reason, it has no status to judge.  Interrupted
        (Ctrl-C, or the SIGTERM of a monitoring system's timeout) before it
        ends, C{watch} and C{subscribe} fire with L{OK} at once, their
        usual end; any other command with L{FAILED} (C{status --check}:
        L{UNREACHABLE}), saying so, however far it got: as the reactor
        stops, what it waits for may never come.
    """
    interrupted: list[bool] = []
    ended: Deferred[int] = Deferred()

    def interrupt() -> None:
        interrupted.append(True)
        if ended.called:
            return
        try:
            code = _interrupted(args, out)
        except BrokenPipeError:
            ended.errback(Failure())
        else:
            ended.callback(code)

    def finished(result: int | Failure) -> None:
        # After an interruption, what the command met as the connection
        # closed is of no interest: its end was said already.
        if ended.called:
            return
        if isinstance(result, Failure):
            ended.errback(result)
        else:
            ended.callback(result)

    reactor.addSystemEventTrigger("before", "shutdown", interrupt)
    _run_remote(reactor, args, out, interrupted).addBoth(finished)
    return ended


def _interrupted(args: argparse.Namespace, out: TextIO) -> int:
    """
    Say that the command was interrupted before it ended, unless it runs
    until it is (L{UNTIL_INTERRUPTED}).

    @return: L{OK} for those that run until interrupted; L{FAILED}
        for any other (L{UNREACHABLE} for C{status --check}, which has no
        status to judge).
    """
    if args.command in UNTIL_INTERRUPTED:
        return OK
    return _failed(args, out, f"{args.command}: interrupted before {args.connect} answered", FAILED)


def _unless_interrupted(waiting: Deferred[Any], interrupted: list[bool]) -> Deferred[Any]:
    """
    @return: C{waiting}, whose failure, once C{interrupted} holds anything,
        is L{Interrupted}: the connection closes as the reactor stops, and
        what that does to the command is no error to report.
    """

    def check(failure: Failure) -> Failure:
        return Failure(Interrupted()) if interrupted else failure

    return waiting.addErrback(check)


@inlineCallbacks
def _run_remote(
    reactor: IReactorCore, args: argparse.Namespace, out: TextIO, interrupted: list[bool]
) -> Generator[Deferred[Any], Any, int]:
    """
    Run one subcommand that needs the daemon, as L{run_remote} does, short
    of its interruption: once C{interrupted} holds anything, it fails with
    L{Interrupted}, saying nothing.
    """
    try:
        endpoint = client_endpoint(reactor, args.connect)
    except ConfigurationError as e:
        return _failed(args, out, f"--connect: {e}", USAGE)
    try:
        token = read_token(Path(args.token_file))
    except ConfigurationError as e:
        return _unreachable(args, out, str(e))
    connecting = authenticated(endpoint, token, ControlClient(IReactorTime(reactor)))
    try:
        # Whatever listens there may accept and never answer as harbour does.
        protocol = yield _unless_interrupted(
            connecting.addTimeout(ANSWER_WITHIN, IReactorTime(reactor)), interrupted
        )
    except Unauthorized as e:
        return _unreachable(args, out, f"not authorised by {args.connect}: {e}")
    except NoAnswer:
        why = f"no answer from {args.connect} within {ANSWER_WITHIN:g} s: is it harbour's control port?"
        return _unreachable(args, out, why)
    except Unreadable as e:
        return _unreachable(args, out, _unreadable(args, e))
    except RemoteFailure as e:
        if e.unknown:
            why = f"{args.connect} does not know the command {e.command}: is it harbour's control port?"
        else:
            why = f"{args.connect}: {e}"
        return _unreachable(args, out, why)
    except (ConnectError, ConnectionLost, ConnectionDone, OSError, OverflowError) as e:
        return _unreachable(args, out, f"cannot connect to {args.connect}: {e}")
    except SSL.Error as e:
        # The daemon's certificate is not trusted, say: the connection ends
        # at the first command, Authenticate.
        return _unreachable(args, out, f"cannot connect to {args.connect}: {_tls_reason(e)}")
    try:
        return (yield _unless_interrupted(_COMMANDS[args.command](reactor, protocol, args, out), interrupted))
    except (ConnectionDone, ConnectionLost) as e:
        # The daemon stopped (or the network failed) mid-command: watch and
        # subscribe last as long as the daemon does.  One that dropped the
        # connection for not reading its events has said so.
        if protocol.dropped is not None:
            why = (
                f"{args.connect} dropped this connection: {_one_line(protocol.dropped)}; "
                f"the events published since are lost"
            )
            return _unreachable(args, out, why)
        return _unreachable(args, out, f"lost the connection to {args.connect}: {e}")
    except Unanswered as e:
        return _unreachable(args, out, f"{args.connect}: {e}")
    except Unreadable as e:
        return _unreachable(args, out, _unreadable(args, e))
    except SSL.Error as e:
        return _unreachable(args, out, f"lost the connection to {args.connect}: {_tls_reason(e)}")
    except RemoteFailure as e:
        return _failed(args, out, str(e), FAILED)
    except TooLong as e:
        if not e.isLocal:
            # ControlClient says this as Unreadable; AMP's own, should one
            # come, is no argument of ours either.
            return _unreachable(args, out, _unreadable(args, e))
        # AMP refuses to send it: nothing reached the daemon.
        name = e.keyName.decode("ascii", "replace") if isinstance(e.keyName, bytes) else "an argument"
        why = f"{args.command}: {name} is longer than the {amp.MAX_VALUE_LENGTH:,} bytes a command carries"
        return _failed(args, out, why, USAGE)
    except BadRequest as e:
        return _failed(args, out, f"{args.command} refused: {e}", FAILED)
    except HarbourError as e:
        return _failed(args, out, f"{args.command} failed: {e}", FAILED)
    except json.JSONDecodeError as e:
        # Harbour answers JSON: this is another program, or a broken daemon.
        return _failed(args, out, f"{args.command}: the daemon's answer is not JSON: {e}", FAILED)
    finally:
        if protocol.transport is not None and protocol.transport.connected:
            protocol.transport.loseConnection()


def _unreadable(args: argparse.Namespace, error: Exception) -> str:
    """
    @return: Why the daemon cannot be asked when C{args.connect} sent what
        AMP cannot read (C{error}).
    """
    what = f" ({error})" if str(error) else ""
    return f"{args.connect} sent what AMP cannot read{what}: is it harbour's control port?"


def _tls_reason(error: SSL.Error) -> str:
    """
    @return: What OpenSSL says went wrong (C{certificate verify failed}),
        without the library and function it names with each reason.
    """
    try:
        reasons = [reason for library, function, reason in error.args[0]]
    except (IndexError, TypeError, ValueError):
        return str(error) or type(error).__name__
    return "; ".join(reasons) or type(error).__name__


def _unreachable(args: argparse.Namespace, out: TextIO, why: str) -> int:
    """
    Say why the daemon cannot be asked, as L{_failed} does.

    @return: L{UNREACHABLE}, the exit code monitoring reads as UNKNOWN.
    """
    return _failed(args, out, why, UNREACHABLE)


def _failed(args: argparse.Namespace, out: TextIO, why: str, code: int) -> int:
    """
    Say why the command failed: on standard error, and for C{status
    --check}, which then has no status to judge, also as the one line on
    standard output that monitoring plugins read (C{HARBOUR UNKNOWN -
    why}), or with C{--json} as a document in place of the status
    (C{{"check": "UNKNOWN", "error": why}}).

    @return: C{code}; for C{status --check}, L{UNREACHABLE}, the exit code
        monitoring reads as UNKNOWN.
    """
    print(f"harbourctl: {why}", file=sys.stderr)
    if args.command == "status" and getattr(args, "check", False):
        if getattr(args, "json", False):
            print(json.dumps({"check": CHECK_WORDS[UNREACHABLE], "error": why}, indent=2), file=out)
        else:
            print(f"HARBOUR {CHECK_WORDS[UNREACHABLE]} - {why}", file=out)
        return UNREACHABLE
    return code


@inlineCallbacks
def _status(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    document = yield status(protocol)
    services = document["services"]
    checking = getattr(args, "check", False)
    if args.json:
        # With --check, the document, and the check's exit code.
        print(json.dumps(document, indent=2, sort_keys=True), file=out)
        return verdict(services).code if checking else OK
    if checking:
        judged = verdict(services)
        print(judged.summary, file=out)
        return judged.code
    print(f"harbour {document['harbour']}  pid {document['pid']}  up {document['uptime']:.0f}s", file=out)
    download = services.get("download", {})
    if download:
        state = "paused" if download.get("paused") else "running"
        if download.get("waiting"):
            state = f"waiting for {download['waiting']}"
        print(
            f"download {state}, {len(download.get('in_flight', []))} in flight, "
            f"{download.get('bytes_per_second', 0):,} B/s",
            file=out,
        )
    paused = sorted(
        name for name, service in services.items() if isinstance(service, dict) and service.get("paused")
    )
    if paused:
        print(f"paused: {', '.join(paused)}", file=out)
    store = services.get("store", {})
    if store:
        print(f"redis {store.get('redis')} ({_redis_state(store)})", file=out)
    publications = services.get("publications", {})
    if publications.get("mode") not in (None, "off"):
        line = f"publications log: {publications['mode']}"
        if publications.get("last_read"):
            line += f", read {publications['last_read']}"
        if publications.get("error"):
            line += f" (last read failed: {publications['error']})"
        print(line, file=out)
        for report, why in sorted((publications.get("lagging") or {}).items()):
            print(f"{report}: on date ranges: {why}", file=out)
    revisions = services.get("work", {}).get("revisions", {})
    errors = services.get("config", {}).get("errors") or []
    for error in errors:
        print(f"config error: {error}", file=out)
    refresh_error = services.get("work", {}).get("refresh_error")
    if refresh_error:
        print(refreshes_failing(refresh_error), file=out)
    counts = services.get("work", {}).get("tasks", {})
    counting_error = _counting_error(counts) if isinstance(counts, dict) else None
    if counting_error is not None:
        # Redis stalled, say, before the store notices it is down.
        print(f"no task counts: {counting_error}", file=out)
    elif isinstance(counts, dict) and counts:
        # A daemon without the monitor service judges no health: no column.
        health = (services.get("monitor") or {}).get("reports")
        judging = ["health"] if isinstance(health, dict) else []
        health = health if isinstance(health, dict) else {}
        table = Table("report", *judging, *STATES, "total", "revised", box=None)
        for report, states in sorted(counts.items()):
            table.add_row(
                report,
                *[(health.get(report) or {}).get("health", "-") for ignored in judging],
                *(str(states.get(s, 0)) for s in STATES),
                str(sum(states.values())),
                str(revisions.get(report, 0)),
            )
        DataConsole(out, 120).print(table)
        for report, judged in sorted(health.items()):
            if judged.get("why"):
                print(f"{report}: {judged['health']}: {judged['why']}", file=out)
    backlog = services.get("work", {}).get("backlog") or {}
    if backlog.get("requests"):
        print(f"{backlog['requests']:,} requests to go{_catching_up(backlog.get('hours') or 0)}", file=out)
    return OK


def _counting_error(counts: dict[str, Any]) -> str | None:
    """
    @param counts: The C{work.tasks} entry of a C{Status} document: each
        report's task counts by state, or C{{"error": why}} when the daemon
        cannot count them.
    @return: Why the daemon cannot count its tasks; L{None} if it counted
        them, even those of a report named C{error}, whose counts are a
        dictionary, not text.
    """
    error = counts.get("error")
    return error if isinstance(error, str) else None


def _redis_state(store: dict[str, Any]) -> str:
    """
    @param store: The C{store} entry of a C{Status} document.
    @return: Whether the daemon's Redis is up, as C{status} says it:
        connected, and with no outage under way (a Redis that refuses
        every write, out of memory say, keeps its connections).
    """
    if not store.get("connected"):
        return f"NOT connected: {store['last_error']}" if store.get("last_error") else "NOT connected"
    if store.get("outage_since") is not None:
        since = datetime.datetime.fromtimestamp(store["outage_since"], datetime.UTC)
        return f"connected, outage since {since:%Y-%m-%dT%H:%M:%SZ}: {store.get('last_error')}"
    return "connected"


def _catching_up(hours: float) -> str:
    """
    @return: How long the requests to go take at the politeness rule's
        pace, as the end of C{status}' line: nothing without a rule.
    """
    if hours >= 1:
        return f": about {hours:g} h to catch up"
    if hours > 0:
        return f": about {max(1, round(hours * 60))} min to catch up"
    return ""


@inlineCallbacks
def _tasks(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    """
    List C{--limit} tasks from C{--offset}, or as many as there are.
    """
    found, total = yield _task_pages(protocol, args.state, args.report, args.offset, args.limit)
    if args.json:
        print(json.dumps(found, indent=2), file=out)
        return OK
    table = Table("id", "report", "file", "attempts", "parse", "last error", box=None)
    for task in found:
        # An unparsable file's reason matters more than its last download error.
        error = task.get("parse_error") or task["last_error"]
        parse = task.get("parse") or ""
        table.add_row(task["id"], task["report"], task["filename"], str(task["attempts"]), parse, error)
    DataConsole(out, 160).print(table)
    print(f"{len(found)} of {total} {args.state} tasks", file=out)
    return OK


@inlineCallbacks
def _task_pages(
    protocol: HarbourClientProtocol, state: str, report: str | None, offset: int, limit: int
) -> Generator[Deferred[Any], Any, tuple[list[dict[str, Any]], int]]:
    """
    Page through C{ListTasks} from C{offset} until C{limit} tasks are read
    or there are no more: the daemon stops a page early rather than exceed
    one AMP value (some hundred tasks), so each next page starts where the
    last one ended, as L{harbour.amp.client.all_requests} does.  A task
    that moves meanwhile may be missed, or met again on a later page: it
    is listed once.

    @return: A L{Deferred} firing with the tasks, in the daemon's order,
        and how many the state has in all (as of the last page).
    """
    found: dict[str, dict[str, Any]] = {}
    read = 0
    while True:
        answer = yield protocol.callRemote(
            commands.ListTasks, state=state, report=report, offset=offset + read, limit=limit - read
        )
        page = json.loads(answer["tasks"])
        read += len(page)
        for task in page:
            found.setdefault(task["id"], task)
        if not page or read >= limit or offset + read >= answer["total"]:
            return list(found.values()), answer["total"]


@inlineCallbacks
def _retry(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    answer = yield protocol.callRemote(commands.Retry, state=args.state, report=args.report)
    print(f"{answer['count']} tasks back to pending", file=out)
    return OK


@inlineCallbacks
def _reparse(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    answer = yield protocol.callRemote(commands.Reparse, report=args.report)
    print(f"{answer['count']} files queued to be parsed again", file=out)
    return OK


@inlineCallbacks
def _refresh(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    answer = yield protocol.callRemote(commands.Refresh)
    print(f"{answer['created']} new tasks", file=out)
    return OK


def _pauser(command: type[commands.Pause], verb: str) -> RemoteCommand:
    """
    @return: The subcommand that sends C{command} (L{commands.Pause} or
        L{commands.Resume}) and prints what it did.
    """

    @inlineCallbacks
    def run(
        reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
    ) -> Generator[Deferred[Any], Any, int]:
        answer = yield protocol.callRemote(command, service=args.service)
        print(f"{verb}: {', '.join(json.loads(answer['services']))}", file=out)
        return OK

    return run


@inlineCallbacks
def _watch(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    """
    Show each report's progress from C{Status} every C{--interval}
    seconds, until Ctrl-C: as a progress bar per report on a terminal,
    and elsewhere (a pipe, a file) as plain lines (L{_watch_lines}).
    """
    if not is_terminal(out):
        return (yield _watch_lines(reactor, protocol, args, out))
    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=PipeConsole(file=out),
        auto_refresh=False,
        transient=False,
    )
    bars: dict[str, TaskID] = {}
    # Ctrl-C stops the reactor, and this with it: leave the bars drawn as
    # they were.
    reactor.addSystemEventTrigger("before", "shutdown", _stop_drawing, progress)
    progress.start()
    try:
        while True:
            services = (yield status(protocol))["services"]
            rate = _rate(services)
            for report, finished, total in _progress(services):
                if report not in bars:
                    bars[report] = progress.add_task(report, total=total, rate=rate)
                progress.update(bars[report], total=total, completed=finished, rate=rate)
            progress.refresh()
            yield deferLater(IReactorTime(reactor), args.interval)
    finally:
        # Before whatever ended it is said (twice is harmless).
        _stop_drawing(progress)


def _stop_drawing(progress: Progress) -> None:
    """
    Stop drawing C{progress}; if its reader has gone, drop what is left
    to write: the command is ending anyway.
    """
    try:
        progress.stop()
    except BrokenPipeError:
        discard_output(progress.console.file)


@inlineCallbacks
def _watch_lines(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    """
    Write a line per report (C{2025-06-14T12:00:00Z lmp 1200/1462 0.52
    MB/s}: the time, the report, how many of its windows are done of how
    many, and the daemon's download rate) every C{--interval} seconds,
    until Ctrl-C, each time at once: a reader, whose output is not a
    terminal that progress bars could be drawn on, has them as they come,
    and one that has gone (C{harbourctl watch | head}) ends the command
    with a L{BrokenPipeError} within an interval.  A time with no report to
    show has a line saying so.
    """
    clock = IReactorTime(reactor)
    while True:
        services = (yield status(protocol))["services"]
        when = datetime.datetime.fromtimestamp(clock.seconds(), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rate = _rate(services)
        lines = [
            f"{when} {report} {finished}/{total} {rate}" for report, finished, total in _progress(services)
        ]
        counts = services.get("work", {}).get("tasks", {})
        error = _counting_error(counts) if isinstance(counts, dict) else None
        if not lines:
            lines = [f"{when} no task counts" + (f": {error}" if error else "")]
        print("\n".join(lines), file=out, flush=True)
        yield deferLater(clock, args.interval)


def _rate(services: dict[str, Any]) -> str:
    """
    @return: The daemon's download rate, as C{watch} shows it.
    """
    return f"{services.get('download', {}).get('bytes_per_second', 0) / 1e6:.2f} MB/s"


def _progress(services: dict[str, Any]) -> list[tuple[str, int, int]]:
    """
    @return: Each report's name, how many of its windows are done and how
        many it asks for, by name; none while the daemon cannot count them.
    """
    counts = services.get("work", {}).get("tasks", {})
    if not isinstance(counts, dict):
        return []
    return [
        (report, *completion(states)) for report, states in sorted(counts.items()) if isinstance(states, dict)
    ]


@inlineCallbacks
def _publish(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    try:
        payload = Event.from_text(args.topic, args.payload).payload
    except (BadRequest, PayloadTooLarge) as e:
        print(f"harbourctl: {e}", file=sys.stderr)
        return USAGE
    delivered = yield RemoteBus(protocol).publish(args.topic, payload, retain=args.retain)
    print(f"delivered to {delivered} subscriber(s)", file=out)
    return OK


@inlineCallbacks
def _subscribe(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    """
    Print each event of C{args.topics} as a line of JSON until Ctrl-C,
    asking the daemon's C{Status} every L{ALIVE_EVERY} seconds: one not
    answered in time ends the command (L{Unanswered}), as the daemon
    closing the connection does.
    """
    bus = RemoteBus(protocol)
    ended: Deferred[int] = Deferred()

    def show(event: IEvent) -> None:
        if ended.called:
            return
        try:
            print(json.dumps({"topic": event.topic, "payload": event.payload}), file=out, flush=True)
        except BrokenPipeError:
            # The bus delivering the event would swallow the error, and the
            # command would go on writing to nobody.
            ended.errback(Failure())

    # Each was checked as the command line was read, even one another covers.
    for pattern in _uncovered(args.topics):
        yield bus.subscribe(pattern, show)

    def lost(ignored: object) -> None:
        # Said and ended as watch's loss is: the daemon went away, or sent
        # what cannot be read.
        if ended.called:
            return
        unreadable = protocol.unreadable if isinstance(protocol, ControlClient) else None
        ended.errback(unreadable or ConnectionDone("the daemon closed the connection"))

    protocol.disconnected.addBoth(lost)

    def unanswered(failure: Failure) -> None:
        # The connection's end is said by lost, which follows.
        if ended.called or failure.check(ConnectionDone, ConnectionLost, Unreadable):
            return
        ended.errback(failure)

    # ControlClient fails a Status unanswered within ANSWER_WITHIN.
    checking = LoopingCall(protocol.callRemote, commands.Status)
    checking.clock = IReactorTime(reactor)
    checking.start(ALIVE_EVERY, now=False).addErrback(unanswered)
    try:
        # Ctrl-C, its usual end, ends it in run_remote.
        return (yield ended)
    finally:
        if checking.running:
            checking.stop()


def _uncovered(patterns: list[str]) -> list[str]:
    """
    @return: C{patterns}, in their order, without repeats and without
        those another covers (C{task.*} covers C{task.done} and
        C{task.d*}): each is a subscription of its own, and an event that
        matched several would be printed once for each.
    """
    unique = list(dict.fromkeys(patterns))
    return [
        pattern
        for pattern in unique
        if not any(
            other != pattern and other.endswith("*") and matches(other, pattern.removesuffix("*"))
            for other in unique
        )
    ]


@inlineCallbacks
def _reload(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    answer = yield protocol.callRemote(commands.Reload)
    topics, errors = json.loads(answer["topics"]), json.loads(answer["errors"])
    for error in errors:
        print(error, file=out)
    if errors:
        return FAILED
    print(f"republished: {', '.join(topics) or 'nothing changed'}", file=out)
    return OK


@inlineCallbacks
def _plan(
    reactor: IReactorCore, protocol: HarbourClientProtocol, args: argparse.Namespace, out: TextIO
) -> Generator[Deferred[Any], Any, int]:
    """
    The plan of a configuration, with what the daemon has done of it; a
    daemon that cannot say is planned without, as one that cannot be
    reached is.
    """
    try:
        document = yield status(protocol)
        counts = document.get("services", {}).get("work", {}).get("tasks", {})
        if not isinstance(counts, dict):
            return plan_table(args, out)
        counting_error = _counting_error(counts)
        if counting_error is not None:
            print(f"harbourctl: the daemon cannot count its tasks: {counting_error}", file=sys.stderr)
            return plan_without_progress(args, out)
        sizes = yield _mean_sizes(protocol, counts)
    except RemoteFailure as e:
        print(f"harbourctl: {e}", file=sys.stderr)
        return plan_without_progress(args, out)
    return plan_table(args, out, counts, sizes)


@inlineCallbacks
def _mean_sizes(
    protocol: HarbourClientProtocol, counts: dict[str, dict[str, int]]
) -> Generator[Deferred[Any], Any, dict[str, float]]:
    """
    The bytes to expect of each report's files: the mean size of up to
    L{SIZE_SAMPLE} files it already has.

    @param counts: The daemon's task counts per report and state.
    @return: A L{Deferred} firing with the mean size of each report that
        has downloaded files.
    """
    sizes: dict[str, float] = {}
    for report, states in counts.items():
        if states.get("downloaded"):
            answer = yield protocol.callRemote(
                commands.ListTasks, state="downloaded", report=report, offset=0, limit=SIZE_SAMPLE
            )
            found = [task["bytes"] for task in json.loads(answer["tasks"])]
            if found:
                sizes[report] = sum(found) / len(found)
    return sizes


def plan_without_progress(args: argparse.Namespace, out: TextIO) -> int:
    """
    Plan C{args}' configuration without the daemon's progress, saying so
    on standard error.

    @return: The exit code of L{plan_table}.
    """
    print("harbourctl: planning without the daemon's progress", file=sys.stderr)
    return plan_table(args, out)


#: How many of a report's files its mean size is taken from.
SIZE_SAMPLE = 50


_COMMANDS: dict[str, RemoteCommand] = {
    "plan": _plan,
    "status": _status,
    "publish": _publish,
    "subscribe": _subscribe,
    "reload": _reload,
    "tasks": _tasks,
    "retry": _retry,
    "reparse": _reparse,
    "refresh": _refresh,
    "watch": _watch,
    "pause": _pauser(commands.Pause, "paused"),
    "resume": _pauser(commands.Resume, "resumed"),
}
