"""
C{make soak}: mirror the OASIS simulator for a fixed time while faults are
injected on a schedule, then audit the result.

    python -m benchmarks.soak --seconds 600 --every 15

Faults, in turn: C{kill -9} of harbour (then a restart), a report's
definition changed (its C{node} parameter toggled), the simulator's fault
modes switched on or off (5xx, resets mid-body, cut zips, slow trickles,
503s whose body never ends, heads flooded past 64 KiB), a report disabled
(and enabled again at the next fault), a kill of its redis-server (harbour restarts it), a report removed
for good, bad AMP commands and a wrong token, a malformed configuration save
(then the good one back), saves that would retire every task if taken (the
reports' file replaced by a link to nothing or emptied, the manifest's start
put after its end; the good files back after each), its redis-server made to answer C{BUSY} (a Lua
script spinning past C{lua-time-limit}) and C{OOM} (C{maxmemory 1} for a few
seconds), every connection to it dropped and it then stalled past the
reply timeout (C{DEBUG SLEEP}) while they log in again, the worker
started again while Redis answers C{BUSY} (it must connect once Redis lets
it in, not exit), a hostile
C{harbourctl publish} of the C{download} and
C{reports} topics (it must be refused and change nothing), strangers on
the control port and on the status page that send requests and read no
answer, and a
C{harbourctl reparse} followed at once by C{kill -9} (parses killed
mid-file), and a downloaded file deleted from disk.  A download worker
(C{--role worker}, sharing the hub's Redis and storage, as on another
host with shared storage) runs beside the hub throughout; further faults
kill it with C{kill -9} (then a restart) and pause the hub's downloads
(C{harbourctl pause download}, which every worker must follow, then
C{resume}).  The report a configuration fault changes is one
just added, changed while its first downloads are under way.  With each
fault, a configuration save adds a report, so that new work keeps arriving.
After the time is up, faults stop, the mirror is left to finish, and the
table reports what was injected and whether anything was lost:

- every task the final configuration asks for must be final, and its file
  on disk (if downloaded) must be whole, the simulator's bytes for the
  task's current URL, with a record naming that URL; what it asks for is
  what the soak reckons (a 1-day window per report and trading day), not
  harbour's manifest, which must plan exactly those windows;
- a file kept as C{<name>.rev<N>.zip} (a definition changed after it was
  fetched) must be the simulator's bytes for one of the URLs its report has
  had;
- a downloaded file deleted from disk (the fault "a downloaded file
  deleted", with C{audit_interval = 10}) must be downloaded again;
- a report removed for good leaves its files in place (harbour never deletes
  data): each must be whole and the simulator's bytes for the URL its record
  names; its tasks are retired, not lost, and must not be left in another
  state;
- every file downloaded must be parsed, none unparsable, and each window's
  tables must hold exactly the rows of its zip (none doubled by a
  revision, a re-fetch or a killed parse, none missing), window by window,
  so that one window doubled cannot make up for another missing; a report removed
  for good must have no table left (its windows' tables dropped, even when
  harbour was killed as it removed them); C{harbourctl tables --check} must
  find every table matching its zip;
- a report disabled or removed must get no request once the change has
  landed, beyond the downloads under way at that moment; enabled again, it
  must not fetch again a file already on disk for the same URL;
- no other file, and no temporary file, may be left (records, the hidden
  C{.<name>.zip.json} beside each file, are not strays), but for those of
  downloads killed as their report was removed: no claim comes to clean up
  after them, and the janitor removes them once four idle deadlines old
  (they are counted apart);
- no file may land outside the data directory (the hostile publish names
  another directory);
- the worker must have downloaded (some of its downloads seen under way in
  the hub's status), and every pause and resume must have reached every
  process downloading (the hub's status lists each with its C{paused});
- every bad input must be refused: a command or configuration taken, or a
  wrong token let in, fails the soak.
- every fault must take effect: a Redis C{BUSY} or C{OOM} that harbour's
  store (or the starting worker) did not see, no downloaded file to
  delete, or a report added for a fault that had no download under way
  within a minute (the fault was to meet downloads under way) fails the
  soak, the fault listed as not exercised.

Nothing is waited for without a bound: a command unanswered for a minute,
a C{harbourctl} running ten minutes, a line harbour or the worker must
log not logged within 30 s (a configuration error after a bad save, its
redis-server back after a kill, its start), or a process not ending
within a minute of C{SIGTERM} (it is then killed) fails the soak, saying
which.  A
run no longer than C{--every} still injects one fault.  However the soak
ends, by its verdict, an error or a signal (C{SIGTERM}, C{SIGINT}), it
stops harbour, its redis-server and the worker and removes its temporary
directory; interrupted, it exits 1 without a verdict.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import re
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

import pyarrow.parquet as pq
import treq
import txredisapi
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, ensureDeferred, maybeDeferred
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IPushProducer, IReactorTime, IStreamClientEndpoint, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater, react
from twisted.protocols import amp
from twisted.python.failure import Failure

from benchmarks import port_number
from benchmarks.memory import status_mb
from harbour.admission import EVICTION_GRACE
from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, connect
from harbour.amp.server import UNAUTHENTICATED_PER_HOST, read_token
from harbour.errors import BadRequest, Unauthorized
from harbour.oasis.classify import DATA, classify
from harbour.processes import host_name
from harbour.services.files import is_bookkeeping, record_path
from harbour.store.tasks import DOWNLOADING, FINAL_STATES, RETIRED
from harbour.testing.simulator import Faults, OasisSimulator
from harbour.testing.simulator.formats import day_start
from tests.processes import (
    PATIENCE,
    STOP_PATIENCE,
    DidNotEnd,
    WatchedProcess,
    control_endpoint,
    end_process,
    harbour_command,
    program,
    redis_pid,
    save,
    spawn,
    start_harbour,
    stop_harbour,
)
from tests.test_dataset import csv_rows

if TYPE_CHECKING:
    from benchmarks import IBenchReactor

FAULTY = Faults(
    latency=0.05,
    error_rate=0.1,
    reset_rate=0.05,
    truncate_rate=0.05,
    trickle_rate=0.05,
    endless_rate=0.02,
    flood_rate=0.02,
    retry_after=0,
    trickle_bytes=4096,
)
CALM = Faults(latency=0.05)

#: How long a configuration change may take to reach the task store.
LANDING = 60.0

#: A script that keeps Redis busy for ARGV[1] milliseconds (Redis answers
#: C{BUSY} to everybody else once it has run past C{lua-time-limit}).
BUSY_SCRIPT = """
local function ms() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local start = ms()
while ms() - start < tonumber(ARGV[1]) do end
return 1
"""

#: How long a Redis C{BUSY} or C{OOM} outage lasts, in seconds: longer than
#: several claims and renewals, shorter than a lease (5 s).
REDIS_OUTAGE = 2.0

#: How long Redis answers C{BUSY} while a worker starts, in seconds: past
#: the time a worker takes to start and reach Redis (about 2 s).
BUSY_AT_START = 6.0

#: How long Redis is kept from answering at all, in seconds: longer than
#: the daemon's reply timeout (5 s), so that its logins on the way back
#: time out.
REDIS_STALL = 7.0

#: How long the daemon may take to answer one command on its control
#: port (C{Status} while Redis is away answers after its reply timeout,
#: 5 s), and to accept a connection, in seconds.
REPLY_PATIENCE = 60.0

#: How long one C{harbourctl} may run, in seconds (C{tables --check} reads
#: every table file).
HARBOURCTL_PATIENCE = 600.0

#: A kept revision's name: C{<label>.rev<N>.zip}.
KEPT = re.compile(r"^(?P<label>.+)\.rev(?P<revision>\d+)\.zip$")


class Stuck(Exception):
    """
    Harbour, or a program of its, did not answer or end in time: the soak
    fails with this message rather than wait for ever.
    """


@dataclass
class Definition:
    """
    One report of the soak's configuration, as it stands.

    @ivar nodes: Every C{node} value it has had (its URLs differ only there).
    """

    index: int
    node: str
    enabled: bool = True
    removed: bool = False
    nodes: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.nodes.add(self.node)

    @property
    def name(self) -> str:
        """
        @return: Its name in the configuration.
        """
        return f"r{self.index:02d}"

    def toml(self) -> str:
        """
        @return: Its C{[[reports]]} table.
        """
        return (
            f'[[reports]]\nname = "{self.name}"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\n'
            f'resultformat = "csv"\nwindow = "1d"\nparams = {{ node = "{self.node}" }}\n'
            + ("" if self.enabled else "enabled = false\n")
        )


@dataclass
class Watch:
    """
    A report disabled or removed: the simulator's requests for it when the
    change landed, and the downloads of it under way then (which may still
    reach the simulator); C{beyond} is how many more it got, once known.
    """

    definition: Definition
    how: str
    requested: int
    under_way: int
    landed: bool
    beyond: int | None = None


#: Connections the strangers' fault opens without sending a token.
STRANGERS = 200
#: What the strangers may cost: the control port's warnings (refusals are
#: logged once a minute per peer), and MB of the daemon's memory.
STRANGER_LOG_LINES = 10
STRANGER_GROWTH_MB = 100
#: Connections that authenticate and send requests whose answers they
#: never read, and how many boxes each sends.
FLOODS = 3
FLOOD = 20_000
#: Tries to connect each of those, and the one that sends a command
#: before its token.
STRANGER_TRIES = 10
#: Requests the status page's stranger sends in one go.
PAGE_FLOOD = 2_000


class Stranger(Protocol):
    """
    A connection to the control port that ignores what it is sent, or
    with C{reading=False} does not even read it (and so cannot see the
    daemon close it).
    """

    def __init__(self, reading: bool = True) -> None:
        self.reading = reading

    def connectionMade(self) -> None:
        if not self.reading:
            IPushProducer(self.transport).pauseProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False

    def send(self, data: bytes) -> None:
        """
        Write C{data} on the connection.
        """
        assert self.transport is not None, "sent to before it connected"
        self.transport.write(data)

    def abort(self) -> None:
        """
        Close the connection at once, with whatever it has not sent.
        """
        ITCPTransport(self.transport).abortConnection()


async def connect_stranger(
    reactor: IReactorTime, endpoint: IStreamClientEndpoint, reading: bool = True, tries: int = 1
) -> Stranger | None:
    """
    Connect a L{Stranger} to C{endpoint}, in up to C{tries} tries.

    @return: The stranger, or L{None} if each try's connection was closed
        before it was made (its turn in the socket's backlog came after
        the daemon closed it to make room).
    """
    for attempt in range(tries):
        if attempt:
            # The daemon closes none of a peer's connections waiting for
            # their token that are all younger than EVICTION_GRACE (one
            # accept's): a try at once, while it is slow, is refused too.
            await deferLater(reactor, 2 * EVICTION_GRACE, lambda: None)
        try:
            return await connectProtocol(endpoint, Stranger(reading))
        except ConnectError:
            continue
    return None


def recorded(path: Path) -> str:
    """
    @return: The URL a downloaded file's record names (C{""} if none).
    """
    try:
        return str(json.loads(record_path(path).read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


#: A request's window: its first instant and its end (UTC).
Window = tuple[datetime.datetime, datetime.datetime]


def window_of(entry: dict[str, Any]) -> Window:
    """
    @param entry: A request of harbour's manifest (C{Reports}).
    @return: Its window.
    """
    return (
        datetime.datetime.fromisoformat(entry["window_start"]),
        datetime.datetime.fromisoformat(entry["window_end"]),
    )


def planned_windows(entries: list[dict[str, Any]]) -> dict[str, Counter[Window]]:
    """
    @param entries: Harbour's manifest (C{Reports}).
    @return: The windows it plans, per report, each with how many of its
        requests ask for it.
    """
    planned: dict[str, Counter[Window]] = {}
    for entry in entries:
        planned.setdefault(entry["report"], Counter())[window_of(entry)] += 1
    return planned


def compare_windows(expected: dict[str, set[Window]], entries: list[dict[str, Any]]) -> tuple[int, int]:
    """
    @param expected: The windows each report must be requested for.
    @param entries: Harbour's manifest (C{Reports}).
    @return: How many of the expected windows harbour does not plan, and
        how many requests it plans beyond them (another window, a report
        not expected, a window asked for twice).
    """
    planned = planned_windows(entries)
    unplanned = sum(len(windows - set(planned.get(report, {}))) for report, windows in expected.items())
    beyond = sum(
        n - (window in expected.get(report, set()))
        for report, counts in planned.items()
        for window, n in counts.items()
    )
    return unplanned, beyond


def with_node(url: str, node: str) -> str:
    """
    @return: C{url} asking for C{node} instead (as harbour writes it).
    """
    return re.sub(r"(?<=[?&])node=[^&]*", "node=" + quote(node, safe=","), url)


class Soak:
    """
    One soak run: a simulator, a configuration, a daemon, and the log of
    what was done to them.
    """

    def __init__(self, reactor: IBenchReactor, directory: Path, reports: int, days: int) -> None:
        self.reactor = reactor
        self.directory = directory
        self.days = days
        self.simulator = OasisSimulator(reactor, seed=7, faults=CALM, last_day=datetime.date(2025, 12, 31))
        # Twisted names listenTCP's factory ServerFactory[_ProtoWithFactory],
        # a type variable held invariant, which no Site matches.
        self.port = reactor.listenTCP(0, self.simulator.site(), interface="127.0.0.1")  # type: ignore[arg-type]
        (directory / "config").mkdir(parents=True)
        self.last = datetime.date(2025, 12, 31)
        self.manifest = self.manifest_text(self.last - datetime.timedelta(days=days - 1), self.last)
        save(directory / "config" / "manifest.toml", self.manifest)
        self.definitions: list[Definition] = []
        for _ in range(reports):
            self.add_report()
        self.save_reports()
        self.injected: Counter = Counter()
        #: Each bad input tried, and what became of it.
        self.bad_inputs: list[tuple[str, str]] = []
        #: Those of them taken, that must have been refused.
        self.bad_inputs_taken: list[str] = []
        #: What the strangers on the control port got that they must not.
        self.strangers_failed: list[str] = []
        self.watches: list[Watch] = []
        self.disabled: Watch | None = None
        #: URL -> requests for it when its file was on disk as its report
        #: was enabled again.
        self.taken_up: dict[str, int] = {}
        #: The downloaded files deleted (their names under the download
        #: directory), which harbour's audit must download again.
        self.deleted: set[str] = set()
        #: harbour and the soak's connection to its control port, once
        #: started (L{start}); see L{harbour} and L{control}.
        self.daemon: WatchedProcess | None = None
        self.client: HarbourClientProtocol | None = None
        #: The directory the hostile publish names: nothing may land there.
        self.elsewhere = directory / "elsewhere"
        #: Redis error replies injected, and whether harbour saw them
        #: (one it did not see fails the soak: the fault was no outage
        #: for harbour).
        self.redis_replies: Counter = Counter()
        #: Each fault that did not take effect, and why: it fails the soak.
        self.not_exercised: list[str] = []
        #: Why the fault being injected did not take effect, if it did not.
        self._not_exercised_because: list[str] = []
        self.worker: WatchedProcess | None = None
        #: The starts of the owner names the worker has had (one per start),
        #: the last its own: host and pid, then a word of its own follows.
        self.worker_owners: list[str] = []
        #: How the worker ended, each time the soak did not end it.
        self.worker_deaths: list[str] = []
        #: The signal the soak sent the worker to end it, while it ends.
        self._ending_worker: int | None = None
        #: Files seen downloading on the worker, in the hub's status.
        self.worker_downloads: set[str] = set()
        #: Whether each pause, then resume, reached every process.
        self.pauses: list[bool] = []
        #: What did not end when the soak stopped it (and was killed).
        self.stop_failures: list[str] = []
        #: Whether the soak is closing, or has closed (L{clean_up}).
        self.closing = False
        self.closed = False
        self._clean_up_waiters: list[Deferred] = []
        #: Whether the reactor stopped (a signal) before the soak's end.
        self.interrupted = False
        #: Whether L{clean_up} keeps the soak's directory, for a failed
        #: soak to be looked into.
        self.keep = False
        #: Each harbour and worker process started, named, in order.
        self.started: list[tuple[str, WatchedProcess]] = []

    def expected_windows(self) -> dict[str, set[Window]]:
        """
        @return: The windows each report of the configuration as it stands
            must be requested for, as the soak reckons them rather than as
            harbour plans them: every report asks for C{window = "1d"} over
            the manifest's C{days} days, a window per trading day, from its
            start to the next one's (23 or 25 hours on the change days).
        """
        days = [self.last - datetime.timedelta(days=n) for n in range(self.days)]
        windows = {(day_start(day), day_start(day + datetime.timedelta(days=1))) for day in days}
        return {d.name: set(windows) for d in self.definitions if not d.removed}

    def add_report(self) -> None:
        index = len(self.definitions)
        self.definitions.append(Definition(index, f"N{index}"))

    def save_reports(self) -> None:
        save(
            self.directory / "config" / "reports.toml",
            "".join(d.toml() for d in self.definitions if not d.removed),
        )

    async def mid_run(self) -> Definition:
        """
        Add a report and wait until it is being downloaded (at most
        L{LANDING} seconds), so that a change to it meets downloads under
        way; if none is under way by then, the fault being injected is
        noted as not exercised.

        @return: The report.
        """
        self.add_report()
        self.save_reports()
        self.injected["config saved adding a report"] += 1
        definition = self.definitions[-1]
        deadline = self.reactor.seconds() + LANDING
        while self.reactor.seconds() < deadline:
            flights = (await self.status())["services"]["download"].get("in_flight", [])
            if any(flight["report"] == definition.name for flight in flights):
                return definition
            await deferLater(self.reactor, 0.05, lambda: None)
        self.not_taking_effect(f"no download of {definition.name} under way within {LANDING:g} s")
        return definition

    def not_taking_effect(self, why: str) -> None:
        """
        Note that the fault being injected did not take effect, and why:
        L{run} counts it as not exercised, which fails the soak.
        """
        self._not_exercised_because.append(why)

    def asked(self, url: str) -> int:
        """
        @return: How many times the simulator was asked for exactly C{url}.
        """
        wanted = (urlsplit(url).path, dict(parse_qsl(urlsplit(url).query)))
        return sum(1 for r in self.simulator.requests if (r[1], r[2]) == wanted)

    def requests_of(self, definition: Definition) -> int:
        """
        @return: How many requests the simulator had for a report.
        """
        return sum(1 for r in self.simulator.requests if r[2].get("node") in definition.nodes)

    async def until_landed(self, definition: Definition, how: str) -> Watch:
        """
        Wait until the task store follows a report's disabling or removal:
        some of its tasks retired (or, with none left in another state, the
        report gone from C{Status}).
        """
        deadline = self.reactor.seconds() + LANDING
        while True:
            tasks = (await self.status())["services"]["work"]["tasks"]
            counts = tasks.get(definition.name) if isinstance(tasks, dict) else None
            if isinstance(tasks, dict) and "error" not in tasks and (counts or {}).get(RETIRED, 0) > 0:
                landed = True
                break
            if isinstance(tasks, dict) and "error" not in tasks and definition.name not in tasks:
                landed = True
                break
            if self.reactor.seconds() > deadline:
                landed = False
                break
            await deferLater(self.reactor, 0.1, lambda: None)
        watch = Watch(
            definition,
            how,
            self.requests_of(definition),
            (counts or {}).get(DOWNLOADING, 0),
            landed,
        )
        self.watches.append(watch)
        return watch

    def close(self, watch: Watch) -> None:
        """
        Count the requests a watched report got beyond those allowed.
        """
        watch.beyond = max(0, self.requests_of(watch.definition) - watch.requested - watch.under_way)

    @property
    def harbour(self) -> WatchedProcess:
        """
        harbour's process, once started (L{start}).
        """
        if self.daemon is None:
            raise RuntimeError("harbour is not started")
        return self.daemon

    @property
    def control(self) -> HarbourClientProtocol:
        """
        The soak's connection to harbour's control port, once made
        (L{start}).
        """
        if self.client is None:
            raise RuntimeError("harbour is not started")
        return self.client

    @property
    def running_worker(self) -> WatchedProcess:
        """
        The worker's process, once started (L{start_worker}).
        """
        if self.worker is None:
            raise RuntimeError("the worker is not started")
        return self.worker

    async def start(self) -> None:
        self.refuse_if_closing()
        self.daemon = start_harbour(self.reactor, self.directory, "--http", f"unix:{self.http_socket}")
        self.started.append(("harbour", self.daemon))
        line = await self.logged(self.daemon, " ready on ", "harbour", " as it started")
        self.redis_pid = redis_pid(line)
        await self.logged(self.daemon, "store ready", "harbour", " as it started")
        await self.logged(self.daemon, "control port listening", "harbour", " as it started")
        self.client = await self.bounded(
            connect(self.reactor, control_endpoint(self.directory), self.token()),
            "harbour's control port did not let the soak in",
        )

    async def start_worker(self) -> None:
        """
        Start a download worker on the hub's Redis and data directory, and
        wait until it is connected to both.
        """
        self.refuse_if_closing()
        (self.directory / "worker").mkdir(exist_ok=True)
        self.worker = spawn(
            self.reactor,
            harbour_command(
                "--role",
                "worker",
                "--hub",
                control_endpoint(self.directory),
                "--redis",
                f"unix://{self.directory / 'data' / 'redis' / 'redis.sock'}?db=0",
                "--data-dir",
                str(self.directory / "data"),
            ),
            self.directory / "worker",
        )
        self.started.append(("worker", self.worker))
        self.worker.ended.addCallback(self._worker_ended, self.worker)
        await self.logged(self.worker, "connected to hub", "the worker", " as it started")
        await self.logged(self.worker, "store ready", "the worker", " as it started")
        self.worker_owners.append(f"{host_name()}:{self.worker.pid}~")

    def _worker_ended(self, code: int | None, worker: WatchedProcess) -> None:
        """
        Note a worker's end that the soak did not cause, or that was not
        the end the soak's signal asks for: killed by C{KILL}; stopped
        cleanly by C{TERM} (twistd then ends by the same signal).
        """
        sent = self._ending_worker
        if sent == signal.SIGTERM:
            clean = (code == 0 or worker.signalled == sent) and "Server Shut Down" in worker.output()
        else:
            clean = sent is not None and worker.signalled == sent
        if not clean:
            self.worker_deaths.append(f"exit {code}, signal {worker.signalled}: {worker.output()[-300:]}")

    async def end_worker(self, name: str) -> None:
        """
        Send the worker the signal C{name} (C{"KILL"} or C{"TERM"}) and
        wait for its end.

        @raise DidNotEnd: if it did not end within L{STOP_PATIENCE} seconds
            (it is then killed).
        """
        self._ending_worker = signal.Signals[f"SIG{name}"]
        try:
            await end_process(self.running_worker, name, STOP_PATIENCE, "the worker")
        finally:
            self._ending_worker = None

    async def kill_worker(self) -> None:
        """
        Kill the worker with downloads under way, and start another: its
        claims come back when their leases run out.
        """
        await self.mid_run()
        await self.end_worker("KILL")
        await self.start_worker()

    async def pause_fleet(self) -> None:
        """
        Pause the hub's downloads with downloads under way, wait until
        every process downloading says it is paused, then resume them and
        wait until none does.
        """
        await self.mid_run()
        for command, paused in (("pause", True), ("resume", False)):
            code, said = await self.harbourctl(command, "download")
            if code != 0:
                raise RuntimeError(f"harbourctl {command} download failed: {said}")
            self.pauses.append(await self.until_workers_paused(paused))

    async def until_workers_paused(self, paused: bool) -> bool:
        """
        @return: Whether, within L{LANDING} seconds, the hub and the
            running worker both say they are C{paused} (or both say they
            are not), in the hub's list of the processes downloading.
        """
        deadline = self.reactor.seconds() + LANDING
        while self.reactor.seconds() < deadline:
            status = await self.status()
            workers = status["services"]["workers"]
            hub = status["services"]["download"]["owner"]
            worker = next(
                (w for owner, w in workers.items() if owner.startswith(self.worker_owners[-1])), None
            )
            both = [workers.get(hub), worker]
            if all(w is not None and w["paused"] is paused for w in both):
                return True
            await deferLater(self.reactor, 0.1, lambda: None)
        return False

    def token(self) -> str:
        return read_token(self.directory / "data" / "amp.token")

    async def logged(
        self, process: WatchedProcess, text: str, who: str, when: str = "", after: int = 0
    ) -> str:
        """
        Wait for C{process} to log a line holding C{text}.

        @param who: What the process is, and C{when} what it is waited
            for after, for the failure's message.
        @param after: Only its lines from this index on count.
        @return: The first such line.
        @raise Stuck: if none came within L{PATIENCE} seconds, or the
            process ended first (its output is kept with the soak's
            directory): what the wait was for is said, not a bare timeout.
        """
        try:
            line: str = await process.wait_for(text, after)
        except TimeoutError:
            raise Stuck(f"{who} did not log {text!r}{when} within {PATIENCE:g} s") from None
        except AssertionError:
            raise Stuck(f"{who} ended before it logged {text!r}{when}") from None
        return line

    async def bounded(self, d: Deferred, what: str, patience: float = REPLY_PATIENCE) -> Any:
        """
        @return: What C{d} fires with.
        @raise Stuck: saying C{what}, if that takes over C{patience} seconds.
        """
        try:
            return await d.addTimeout(patience, self.reactor)
        except TimeoutError:
            raise Stuck(f"{what} within {patience:g} s") from None

    async def call(self, command: type[amp.Command], **arguments: Any) -> dict[str, Any]:
        """
        Send C{command} on the soak's control connection.

        @return: Its answer.
        @raise Stuck: if none comes within L{REPLY_PATIENCE} seconds.
        """
        return await self.bounded(
            self.control.callRemote(command, **arguments), f"harbour did not answer {command.__name__}"
        )

    async def status(self) -> dict:
        status = json.loads((await self.call(commands.Status))["status"])
        workers = status["services"].get("workers")
        if isinstance(workers, dict):
            for owner, worker in workers.items():
                if owner.startswith(tuple(self.worker_owners)):
                    self.worker_downloads.update(f["filename"] for f in worker.get("in_flight", []))
        return status

    async def kill_harbour(self) -> None:
        if self.control.transport is not None:
            self.control.transport.loseConnection()
        await end_process(self.harbour, "KILL", STOP_PATIENCE, "harbour")
        await self.start()

    async def kill_mid_parse(self) -> None:
        """
        Queue every file to be parsed again and kill harbour at once, with
        parses under way.
        """
        code, said = await self.harbourctl("reparse")
        if code != 0:
            raise RuntimeError(f"harbourctl reparse failed: {said}")
        await self.kill_harbour()

    async def remove_then_kill(self) -> None:
        """
        Remove a report for good and kill harbour as soon as the store has
        retired its tasks, before (or as) the tables service hears of it:
        its windows' tables must go all the same, the store listing them in
        the step that retires them.
        """
        definition = await self.mid_run()
        definition.removed = True
        self.save_reports()
        await self.until_landed(definition, "removed")
        await self.kill_harbour()

    async def kill_redis(self) -> None:
        after = len(self.harbour.lines)
        os.kill(self.redis_pid, 9)
        line = await self.logged(
            self.harbour, " ready on ", "harbour", " after its redis-server was killed", after
        )
        self.redis_pid = redis_pid(line)

    async def redis_side(self) -> Any:
        """
        @return: A connection of our own to harbour's embedded redis-server,
            on its unix socket (the one the daemon uses stays its own).
        """
        path = self.directory / "data" / "redis" / "redis.sock"
        return await txredisapi.UnixConnection(str(path), reconnect=False)

    async def redis_busy(self) -> None:
        """
        Run a Lua script for L{REDIS_OUTAGE} seconds, past a short
        C{lua-time-limit}: Redis answers C{BUSY} to harbour until it ends.
        The script ends by itself, so the outage is bounded.
        """
        # Downloads under way, so that harbour meets the outage.
        await self.mid_run()
        side = await self.redis_side()
        try:
            await side.execute_command("CONFIG", "SET", "lua-time-limit", "50")
            await side.eval(BUSY_SCRIPT, [], [str(int(REDIS_OUTAGE * 1000))])
        finally:
            side.disconnect()
        await self.seen_by_harbour("BUSY")

    async def worker_start_busy(self) -> None:
        """
        Stop the worker and start it again while Redis answers C{BUSY} (a
        script running for L{BUSY_AT_START} seconds): its store must ride
        the refusal of its logins out and connect once Redis lets it in,
        not take it for a wrong configuration and exit.
        """
        await self.end_worker("TERM")
        side = await self.redis_side()
        try:
            await side.execute_command("CONFIG", "SET", "lua-time-limit", "50")
            busy = side.eval(BUSY_SCRIPT, [], [str(int(BUSY_AT_START * 1000))])
            await self.start_worker()
            await busy
        finally:
            side.disconnect()
        seen = "BUSY" in self.running_worker.output()
        self.redis_replies["BUSY " + ("seen" if seen else "NOT seen") + " by a starting worker"] += 1
        if not seen:
            self.not_taking_effect("the starting worker never met BUSY")

    async def redis_stall(self) -> None:
        """
        Drop every connection to Redis (harbour's and the worker's), then
        keep Redis from answering for L{REDIS_STALL} seconds while they
        connect again: logins timed out on the way back must not leave
        harbour unable to reach Redis.
        """
        await self.mid_run()
        side = await self.redis_side()
        try:
            await side.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await side.execute_command("DEBUG", "SLEEP", str(REDIS_STALL))
        finally:
            side.disconnect()

    async def redis_oom(self) -> None:
        """
        Set C{maxmemory} to one byte for L{REDIS_OUTAGE} seconds: Redis
        answers C{OOM} to every write, then takes them again.
        """
        await self.mid_run()
        side = await self.redis_side()
        try:
            await side.execute_command("CONFIG", "SET", "maxmemory", "1")
            await deferLater(self.reactor, REDIS_OUTAGE, lambda: None)
        finally:
            # Whatever happened, Redis must not stay full for the rest of the soak.
            await side.execute_command("CONFIG", "SET", "maxmemory", "0")
            side.disconnect()
        await self.seen_by_harbour("OOM")

    async def seen_by_harbour(self, reply: str) -> None:
        """
        Note whether harbour's store saw the error reply C{reply} (its
        C{last_error}, if no other outage came since), to show that the
        fault was an outage for harbour and not only for us.
        """
        store = (await self.status())["services"]["store"]
        seen = reply in (store.get("last_error") or "")
        self.redis_replies[reply + (" seen by harbour" if seen else " NOT seen by harbour")] += 1
        if not seen:
            self.not_taking_effect(f"harbour's store never met {reply}")

    async def harbourctl(self, *args: str) -> tuple[int, str]:
        """
        Run C{harbourctl} against the daemon.

        @return: Its exit code and its output (standard error and standard
            output, as they came), on one line.
        @raise Stuck: if it runs for over L{HARBOURCTL_PATIENCE} seconds
            (it is then killed).
        """
        process = spawn(
            self.reactor,
            [
                program("harbourctl"),
                "--connect",
                control_endpoint(self.directory),
                "--token-file",
                str(self.directory / "data" / "amp.token"),
                *args,
            ],
            self.directory,
        )
        try:
            code = await process.end_within(HARBOURCTL_PATIENCE)
        except TimeoutError:
            await end_process(process, "KILL", STOP_PATIENCE, "harbourctl")
            raise Stuck(f"harbourctl {' '.join(args)} did not end within {HARBOURCTL_PATIENCE:g} s") from None
        return code, " ".join(process.output().split())

    async def hostile_publish(self) -> None:
        """
        Publish the configuration directory's own topics with
        C{harbourctl}: a C{download} table naming another directory and no
        politeness, and a C{reports} list.  Both must be refused (exit 1),
        and the download service must keep its directory and settings.
        """
        before = (await self.status())["services"]["download"]
        for topic, payload in [
            (
                "download",
                {"directory": str(self.elsewhere), "min_request_interval": 0, "concurrency": 64},
            ),
            ("reports", [{"name": "evil", "queryname": "PRC_LMP", "directory": str(self.elsewhere)}]),
        ]:
            code, said = await self.harbourctl("publish", topic, json.dumps(payload))
            after = (await self.status())["services"]["download"]
            unchanged = all(after[k] == before[k] for k in ("directory", "concurrency"))
            if code == 1 and unchanged:
                outcome = f"refused (exit 1): {said}"
            else:
                outcome = (
                    f"{'ACCEPTED' if code == 0 else 'EXIT'} {code}, {'unchanged' if unchanged else 'CHANGED'}"
                )
            self.tried(f"harbourctl publish {topic}", outcome, refused=code == 1 and unchanged)

    async def toggle_faults(self) -> None:
        self.simulator.faults = CALM if self.simulator.faults == FAULTY else FAULTY

    async def malformed_config(self) -> None:
        after = len(self.harbour.lines)
        save(
            self.directory / "config" / "manifest.toml",
            self.manifest.replace("concurrency = 4", "concurrency = ["),
        )
        await self.logged(
            self.harbour, "config error", "harbour", " after a malformed manifest.toml was saved", after
        )
        kept = (await self.status())["services"]["download"]["concurrency"] == 4
        self.tried(
            "malformed TOML save", "config.error, old config kept" if kept else "CHANGED", refused=kept
        )
        save(self.directory / "config" / "manifest.toml", self.manifest)

    def manifest_text(self, start: datetime.date, end: datetime.date) -> str:
        """
        @return: The soak's C{manifest.toml}, asking for C{start} to C{end}.
        """
        return (
            f'[manifest]\nbase_url = "http://127.0.0.1:{port_number(self.port)}/oasisapi"\n'
            f"start = {start}\nend = {end}\n"
            "[work]\nlease_seconds = 5\nretry_base = 0.2\nretry_cap = 2\nmax_attempts = 30\n"
            "[download]\nconcurrency = 4\nmin_request_interval = 0\nidle_timeout = 5\naudit_interval = 10\n"
        )

    async def dangerous_config(self) -> None:
        """
        Saves that, taken, would retire every task, in turn: the reports'
        file replaced by a link to nothing, emptied (a save cut short), and
        the manifest's start put after its end.  Each must be a
        configuration error that keeps the configuration as it was.
        """
        after = len(self.harbour.lines)
        config = self.directory / "config"
        turn = self.injected["dangerous config saved"] % 3
        if turn == 0:
            what, taken = "reports file a dangling link", "publishing reports from (defaults)"
            link = config / ".reports.toml.link"
            link.symlink_to(config / "nowhere.toml")
            os.rename(link, config / "reports.toml")
        elif turn == 1:
            what, taken = "reports file emptied", "publishing reports from (defaults)"
            (config / "reports.toml").write_text("")
        else:
            what, taken = "manifest start after end", "publishing manifest"
            day_after = self.last + datetime.timedelta(days=1)
            save(config / "manifest.toml", self.manifest_text(day_after, self.last))
        await self.logged(self.harbour, "config error", "harbour", f" after a save with the {what}", after)
        changed = any(taken in line for line in self.harbour.lines[after:])
        self.tried(what, "CHANGED" if changed else "config.error, old config kept", refused=not changed)
        save(config / "manifest.toml", self.manifest)
        self.save_reports()

    async def change_definition(self) -> None:
        definition = await self.mid_run()
        definition.node = f"N{definition.index}" + ("" if definition.node.endswith("X") else "X")
        definition.nodes.add(definition.node)
        self.save_reports()

    async def disable_report(self) -> None:
        definition = await self.mid_run()
        definition.enabled = False
        self.save_reports()
        self.disabled = await self.until_landed(definition, "disabled")

    def enable_again(self) -> None:
        """
        Enable the report disabled at the last fault, once its quiet time
        has been checked.
        """
        if self.disabled is None:
            return
        self.close(self.disabled)
        # Files already fetched for the URLs it will ask for again: taken
        # up as they are, never fetched again.
        for path in (self.directory / "data" / "reports" / self.disabled.definition.name).glob("*.zip"):
            url = recorded(path)
            if url:
                self.taken_up[url] = self.asked(url)
        self.disabled.definition.enabled = True
        self.disabled = None
        self.save_reports()
        self.injected["report enabled again"] += 1

    async def delete_downloaded(self) -> bool:
        """
        Delete a downloaded file and its record, as a hand or a cleanup
        script might: of a report the soak keeps enabled, and not one taken
        up as a report came back (fetching it again is what that check
        forbids).  harbour's audit of its downloads must notice it and
        download it again: L{finish} waits for it, the audit checks it.

        @return: Whether a file was deleted (if none qualified, the fault
            is noted as not exercised).
        """
        root = self.directory / "data" / "reports"
        kept = {d.name for d in self.definitions if d.enabled and not d.removed}
        for path in sorted(root.glob("*/*.zip"), reverse=True):
            name = str(path.relative_to(root))
            if path.parent.name not in kept or KEPT.match(path.name) or name in self.deleted:
                continue
            url = recorded(path)
            if not url or url in self.taken_up:
                continue
            path.unlink()
            record_path(path).unlink(missing_ok=True)
            self.deleted.add(name)
            return True
        self.not_taking_effect("no downloaded file to delete")
        return False

    def deleted_back(self) -> int:
        """
        @return: How many of the files deleted are back, downloaded again.
        """
        root = self.directory / "data" / "reports"
        return sum((root / name).exists() for name in self.deleted)

    async def remove_report(self) -> None:
        definition = await self.mid_run()
        definition.removed = True
        self.save_reports()
        await self.until_landed(definition, "removed")

    async def bad_commands(self) -> None:
        for name, call, expected in [
            (
                "ListTasks state=bogus",
                lambda: self.call(commands.ListTasks, state="bogus", offset=0, limit=1),
                BadRequest,
            ),
            (
                "ListTasks limit=10000",
                lambda: self.call(commands.ListTasks, state="failed", offset=0, limit=10_000),
                BadRequest,
            ),
            (
                "Publish of bad JSON",
                lambda: self.call(commands.Publish, topic="x", payload="{"),
                BadRequest,
            ),
        ]:
            try:
                await call()
            except expected as e:
                self.tried(name, f"refused: {e}", refused=True)
            else:
                self.tried(name, "ACCEPTED", refused=False)
        try:
            stranger = await self.bounded(
                connect(self.reactor, control_endpoint(self.directory), "wrong-token"),
                "harbour neither let in nor refused a wrong token",
            )
        except Unauthorized:
            self.tried("wrong token", "refused: UNAUTHORIZED", refused=True)
        else:
            stranger.transport.loseConnection()
            self.tried("wrong token", "ACCEPTED", refused=False)

    def tried(self, name: str, said: str, refused: bool) -> None:
        """
        Note a bad input that must be refused, and what became of it.

        @param refused: Whether it was refused (else it was taken, and the
            soak fails).
        """
        self.bad_inputs.append((name, said[:60]))
        if not refused:
            self.bad_inputs_taken.append(f"{name}: {said}")

    def daemon_resident_mb(self) -> float:
        """
        @return: The daemon's resident memory, in MB.
        """
        pid = self.harbour.pid
        resident = None if pid is None else status_mb("VmRSS", pid)
        if resident is None:
            raise ValueError(f"no resident memory for process {pid}")
        return resident

    async def strangers(self) -> None:
        """
        Strangers on the control port: connections that never send their
        token, one command that asks no answer before it, and
        authenticated connections that pipeline requests and read none of
        their answers.  The daemon must hold only so many strangers (on
        its UNIX socket, all of one user, as one host's), log them in a few
        lines, not grow by the answers it cannot send, and let C{harbourctl}
        in meanwhile.
        """
        endpoint = clientFromString(self.reactor, control_endpoint(self.directory))
        after = len(self.harbour.lines)
        before = self.daemon_resident_mb()
        silent = [
            s for s in [await connect_stranger(self.reactor, endpoint) for ignored in range(STRANGERS)] if s
        ]
        rude = await connect_stranger(self.reactor, endpoint, tries=STRANGER_TRIES)
        if rude is None:
            self.strangers_failed.append(f"could not connect in {STRANGER_TRIES} tries")
            return
        rude.send(amp.AmpBox({b"_command": b"Status"}).serialize())
        token = read_token(self.directory / "data" / "amp.token").encode("ascii")
        requests = b"".join(
            [
                amp.AmpBox({b"_command": b"Authenticate", b"_ask": b"0", b"token": token}).serialize(),
                *(
                    amp.AmpBox({b"_command": b"Status", b"_ask": b"%d" % n}).serialize()
                    for n in range(1, FLOOD)
                ),
            ]
        )
        floods = []
        for ignored in range(FLOODS):
            flood = await connect_stranger(self.reactor, endpoint, reading=False, tries=STRANGER_TRIES)
            if flood is not None:
                flood.send(requests)
                floods.append(flood)
        await deferLater(self.reactor, 2.0, lambda: None)
        held = sum(stranger.connected for stranger in silent)
        code, said = await self.harbourctl("status", "--check")
        grown = self.daemon_resident_mb() - before
        for stranger in [*silent, rude, *floods]:
            if stranger.connected:
                stranger.abort()
        logged = sum(
            "harbour.amp.server" in line and "#info]" not in line for line in self.harbour.lines[after:]
        )
        answered = code in (0, 1, 2)
        if held > UNAUTHENTICATED_PER_HOST:
            self.strangers_failed.append(f"{held} strangers held, more than {UNAUTHENTICATED_PER_HOST}")
        if rude.connected:
            self.strangers_failed.append("a command without _ask before the token left its connection open")
        if logged > STRANGER_LOG_LINES:
            self.strangers_failed.append(f"{logged} warnings logged for strangers")
        if grown > STRANGER_GROWTH_MB:
            self.strangers_failed.append(f"the daemon grew {grown:,.0f} MB for answers never read")
        if not answered:
            self.strangers_failed.append(f"harbourctl status --check meanwhile: exit {code}: {said}")
        self.bad_inputs.append(
            (
                f"{STRANGERS} silent, 1 without _ask",
                (
                    f"{len(silent)} made, {held} held, {logged} warnings, "
                    f"{'harbourctl in' if answered else 'HARBOURCTL KEPT OUT'}"
                ),
            )
        )
        self.bad_inputs.append(
            (
                f"{FLOODS} x {FLOOD - 1:,} Status never read",
                f"{len(floods)} made, daemon grew {grown:+,.0f} MB",
            )
        )

    @property
    def http_socket(self) -> Path:
        """
        Where the daemon's status page listens.
        """
        return self.directory / "http.sock"

    async def page_strangers(self) -> None:
        """
        A stranger on the status page that sends L{PAGE_FLOOD} requests for
        C{/metrics} in one go and reads none of the answers: the daemon
        must close it, say so, and not grow by the answers.
        """
        endpoint = clientFromString(self.reactor, f"unix:{self.http_socket}")
        after = len(self.harbour.lines)
        before = self.daemon_resident_mb()
        stranger = await connect_stranger(self.reactor, endpoint, reading=False, tries=STRANGER_TRIES)
        if stranger is None:
            self.strangers_failed.append(f"status page: could not connect in {STRANGER_TRIES} tries")
            return
        stranger.send(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n" * PAGE_FLOOD)
        try:
            await self.harbour.wait_for("without reading the answers", after)
            closed = True
        except (TimeoutError, AssertionError):
            # Not said in time, or the daemon ended.
            closed = False
        grown = self.daemon_resident_mb() - before
        if stranger.connected:
            stranger.abort()
        if not closed:
            self.strangers_failed.append("status page: a client that read no answers was not closed")
        if grown > STRANGER_GROWTH_MB:
            self.strangers_failed.append(
                f"status page: the daemon grew {grown:,.0f} MB for answers never read"
            )
        self.bad_inputs.append(
            (
                f"status page: {PAGE_FLOOD:,} GET /metrics never read",
                f"{'closed' if closed else 'NOT CLOSED'}, daemon grew {grown:+,.0f} MB",
            )
        )

    async def run(self, seconds: float, every: float) -> None:
        # The Redis error replies, the hostile publish and the strangers
        # come first, so that a short run meets them too.
        schedule: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("redis BUSY (Lua script past lua-time-limit)", self.redis_busy),
            ("hostile harbourctl publish", self.hostile_publish),
            ("strangers on the control port", self.strangers),
            ("a stranger on the status page, reading no answers", self.page_strangers),
            ("a downloaded file deleted", self.delete_downloaded),
            ("redis OOM (maxmemory 1)", self.redis_oom),
            ("redis connections dropped, then stalled past the reply timeout", self.redis_stall),
            ("worker started while redis answers BUSY", self.worker_start_busy),
            ("kill -9 harbour", self.kill_harbour),
            ("kill -9 the worker", self.kill_worker),
            ("downloads paused on the hub, then resumed", self.pause_fleet),
            ("report definition changed", self.change_definition),
            ("simulator faults switched", self.toggle_faults),
            ("report disabled", self.disable_report),
            ("redis-server killed", self.kill_redis),
            ("report removed for good", self.remove_report),
            ("bad commands and token", self.bad_commands),
            ("malformed config saved", self.malformed_config),
            ("dangerous config saved", self.dangerous_config),
            ("reparse, then kill -9 mid-parse", self.kill_mid_parse),
            ("report removed, then kill -9", self.remove_then_kill),
        ]
        faults = itertools.cycle(schedule)
        deadline = self.reactor.seconds() + seconds
        # At least one fault, however short the run: the first after
        # `every` seconds, or at the end of a run no longer than that.
        while True:
            await deferLater(self.reactor, min(every, seconds), lambda: None)
            self.enable_again()
            name, inject = next(faults)
            self._not_exercised_because = []
            await inject()
            if self._not_exercised_because:
                self.not_exercised.append(f"{name}: {'; '.join(self._not_exercised_because)}")
            else:
                self.injected[name] += 1
            # New work keeps arriving, as new trading days do.
            self.add_report()
            self.save_reports()
            self.injected["config saved adding a report"] += 1
            print(f"  {max(0, int(deadline - self.reactor.seconds())):>5d} s left: {name}", flush=True)
            if self.reactor.seconds() + every >= deadline:
                break
        self.enable_again()
        self.simulator.faults = CALM

    async def manifest_entries(self) -> list[dict[str, Any]]:
        """
        @return: Every request of the daemon's manifest as it stands.
        """
        entries: list[dict[str, Any]] = []
        while True:
            answer = await self.call(commands.Reports, offset=len(entries), limit=500)
            page = json.loads(answer["urls"])
            entries += page
            if not page or len(entries) >= answer["total"]:
                return entries

    async def finish(self, patience: float) -> dict[str, Any]:
        """
        Wait until every task the final configuration asks for is final
        (at most C{patience} seconds); close the watches of removed reports.
        What it asks for is what the soak reckons (L{expected_windows}),
        not harbour's manifest: a window harbour does not plan is lost.

        @return: The tasks asked for, their states, those lost, the
            windows harbour does not plan and its requests beyond them,
            the tasks of removed reports left in a state other than
            retired, and whether the wait ran out.
        """
        expected = self.expected_windows()
        gone = {d.name for d in self.definitions if d.removed}
        total = sum(len(windows) for windows in expected.values())
        deadline = self.reactor.seconds() + patience
        while True:
            unplanned, beyond = compare_windows(expected, await self.manifest_entries())
            status = await self.status()
            tasks = status["services"]["work"]["tasks"]
            states: Counter = Counter()
            answering = isinstance(tasks, dict) and "error" not in tasks
            done = unplanned == beyond == 0 and answering
            parses = status["services"]["tables"]["reports"]
            for report, windows in expected.items():
                counts = tasks.get(report, {}) if answering else {}
                states.update(counts)
                final = sum(counts.get(s, 0) for s in FINAL_STATES)
                done = done and final == len(windows) == sum(counts.values())
                parsed = parses.get(report, {}) if isinstance(parses, dict) else {}
                settled = parsed.get("parsed", 0) + parsed.get("unparsable", 0)
                done = done and settled == counts.get("downloaded", 0)
            # A deleted file's task stays downloaded until an audit finds it gone.
            done = done and self.deleted_back() == len(self.deleted)
            if done or self.reactor.seconds() > deadline:
                break
            await deferLater(self.reactor, 1, lambda: None)
        for watch in self.watches:
            if watch.beyond is None:
                self.close(watch)
        fetched_again = sum(1 for url, before in self.taken_up.items() if self.asked(url) > before)
        parses = status["services"]["tables"]["reports"]
        unparsable = sum((parses.get(report) or {}).get("unparsable", 0) for report in expected)
        unretired = sum(
            n for report in gone for state, n in (tasks.get(report) or {}).items() if state != RETIRED
        )
        return {
            "total": total,
            "states": dict(states),
            # Final tasks of windows not asked for do not make up for one lost.
            "lost": total - min(total, sum(states.get(s, 0) for s in FINAL_STATES)),
            "unplanned": unplanned,
            "beyond": beyond,
            "unretired": unretired,
            "unparsable": unparsable,
            "fetched_again": fetched_again,
            "deleted": len(self.deleted),
            "deleted_back": self.deleted_back(),
            "unfinished": not done,
        }

    async def audit(self) -> dict[str, int]:
        """
        Compare the files on disk with the manifest and the simulator.
        """
        self.simulator.faults = Faults()
        answers: dict[str, bytes] = {}

        async def answer(url: str) -> bytes:
            if url not in answers:
                answers[url] = await treq.content(await treq.get(url, persistent=False))
            return answers[url]

        entries = await self.manifest_entries()
        urls = {entry["filename"]: entry["url"] for entry in entries}
        by_name = {d.name: d for d in self.definitions}
        root = self.directory / "data" / "reports"
        files = [p for p in root.rglob("*") if p.is_file() and not is_bookkeeping(p)]
        final = [p for p in files if not p.name.startswith(".")]
        counts = Counter({"files": len(final)})
        for path in files:
            if path.name.startswith("."):
                # A download killed as its report was removed leaves its
                # file to the janitor (no claim comes to clean up after it):
                # within four idle deadlines and a janitor's round.
                definition = by_name.get(str(path.relative_to(root)).split("/")[0])
                removed = definition is not None and definition.removed
                counts["temporary_janitor" if removed else "temporary_left"] += 1
        on_disk = {str(p.relative_to(root)) for p in final}
        # Every window the soak reckons must have its file: one harbour does
        # not plan has none.
        filenames = {(entry["report"], window_of(entry)): entry["filename"] for entry in entries}
        counts["missing"] = sum(
            filenames.get((report, window)) not in on_disk
            for report, windows in self.expected_windows().items()
            for window in windows
        )
        for path in final:
            name = str(path.relative_to(root))
            definition = by_name.get(name.split("/")[0])
            kept = KEPT.match(path.name)
            if name in urls:
                # A file the final configuration asks for: its current URL.
                good = recorded(path) == urls[name] and path.read_bytes() == await answer(urls[name])
                counts["wrong"] += not good
            elif kept is not None and definition is not None:
                # A revision kept: the answer to one of its report's URLs.
                base = path.with_name(kept.group("label") + ".zip")
                current = urls.get(str(base.relative_to(root))) or recorded(base)
                candidates = (
                    [with_node(current, node) for node in sorted(definition.nodes)] if current else []
                )
                body = path.read_bytes()
                good = False
                for url in candidates:
                    good = good or body == await answer(url)
                counts["revisions_kept"] += 1
                counts["wrong"] += not good
            elif definition is not None and definition.removed:
                # A removed report's file, left in place: whole, its record's answer.
                url = recorded(path)
                good = bool(url) and path.read_bytes() == await answer(url)
                counts["removed_kept"] += 1
                counts["wrong"] += not good
            else:
                counts["strays"] += 1
                continue
            counts["wrong"] += classify(path).kind != DATA
        # The hostile publish named another directory: nothing may be there,
        # nor anywhere else beside the configuration and data directories.
        counts["outside"] = (
            sum(
                1
                for path in self.directory.rglob("*")
                if path.is_file() and path.relative_to(self.directory).parts[0] not in ("config", "data")
            )
            + self.elsewhere.exists()
        )
        counts.update(await self.audit_tables(urls, root))
        return dict(counts)

    async def audit_tables(self, urls: dict[str, str], root: Path) -> Counter:
        """
        Compare each report's tables with its files, window by window: the
        rows of a window's Parquet files (C{part-<label>.parquet}, in any
        day's directory) against the rows of its zip, for every zip the
        configuration asks for, so that a window missing and another
        doubled do not make up for each other; and C{harbourctl tables
        --check}.  C{tables_wrong} counts the reports with a window wrong.
        """
        counts: Counter = Counter()
        tables = self.directory / "data" / "tables"
        for definition in self.definitions:
            if definition.removed:
                counts["removed_tables"] += len(list((tables / definition.name).glob("*/*.parquet")))
                continue
            zips = {Path(name).stem: root / name for name in urls if name.split("/")[0] == definition.name}
            wanted = {label: csv_rows(path) for label, path in zips.items() if path.exists()}
            held: Counter = Counter()
            parts = sorted((tables / definition.name).glob("*/*.parquet"))
            for part in parts:
                label = part.name.removeprefix("part-").removesuffix(".parquet")
                held[label] += pq.ParquetFile(part).metadata.num_rows
            counts["table_rows"] += sum(held.values())
            # A window with no rows has no table: 0 held for 0 wanted.
            wrong = sorted(
                label for label in wanted.keys() | held.keys() if held.get(label, 0) != wanted.get(label, 0)
            )
            counts["tables_wrong"] += bool(wrong)
            if wrong:
                print(
                    f"{definition.name}: {len(wrong)} windows whose tables do not hold their zip's rows"
                    f" (rows in tables of rows in the zip): "
                    + ", ".join(
                        f"{label} {held.get(label, 0)} of {wanted.get(label, 0)}" for label in wrong[:5]
                    ),
                    flush=True,
                )
        code, said = await self.harbourctl("tables", "--data-dir", str(self.directory / "data"), "--check")
        counts["tables_check_failed"] += code != 0
        if code != 0:
            print(f"harbourctl tables --check: {said}", flush=True)
        return counts

    def refuse_if_closing(self) -> None:
        """
        @raise CancelledError: if the soak is closing: a process started
            now would outlive it.
        """
        if self.closing:
            raise CancelledError("the soak is closing")

    def clean_up(self) -> Deferred:
        """
        Stop the worker, the daemon (and with it its redis-server) and the
        simulator, and remove the soak's directory, or if L{keep} says so
        (the soak failed) write each process's output into it and keep it:
        once, whichever way the soak ends (its verdict, an error, a signal).

        @return: A L{Deferred} that fires once that is done (a new one for
            each caller).
        """
        done: Deferred = Deferred()
        if self.closed:
            done.callback(None)
            return done
        self._clean_up_waiters.append(done)
        if not self.closing:
            self.closing = True
            Deferred.fromCoroutine(self._clean_up())
        return done

    async def _clean_up(self) -> None:
        try:
            await self.stop()
        finally:
            if self.keep or self.stop_failures:
                self.keep_directory()
            else:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.closed = True
            waiters, self._clean_up_waiters = self._clean_up_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def keep_directory(self) -> None:
        """
        Write the output of each harbour and worker process the soak
        started into its directory (C{harbour-1.log}, C{worker-1.log}, and
        so on), and say where it is.
        """
        counts: Counter = Counter()
        for name, process in self.started:
            counts[name] += 1
            (self.directory / f"{name}-{counts[name]}.log").write_text(process.output() + "\n")
        print(
            f"\nsoak: kept {self.directory} to be looked into (each process's output in its *.log)",
            flush=True,
        )

    def interrupt(self, soaking: Deferred) -> Deferred:
        """
        The reactor is stopping: if before the soak's end (a signal, such as
        the SIGTERM of a CI's timeout or a SIGINT), stop C{soaking} (see
        L{soak}), which stopping the reactor does not; in any case, close
        the soak before the reactor stops.

        @return: A L{Deferred} the reactor waits for: the soak closed.
        """
        if not soaking.called and not self.closing:
            self.interrupted = True
            self.keep = False
            print(
                "\nsoak interrupted: stopping harbour, its redis-server and the worker,"
                f" removing {self.directory}",
                flush=True,
            )
            soaking.cancel()
        return self.clean_up()

    async def soak(self, seconds: float, every: float) -> tuple[dict[str, Any], int, Counter, dict[str, int]]:
        """
        Start harbour and the worker, inject faults for C{seconds}, wait
        for the mirror to finish and audit it.

        @return: What L{finish} found, the requests to the simulator, their
            outcomes, and what L{audit} found.
        """
        await self.start()
        await self.start_worker()
        print(
            f"soak: {len(self.definitions)} reports x {self.days} days for {seconds:g} s,"
            f" a fault every {every:g} s, in {self.directory}",
            flush=True,
        )
        await self.run(seconds, every)
        outcome = await self.finish(patience=max(120.0, seconds))
        requests = len(self.simulator.requests)
        met = Counter(r[3] for r in self.simulator.requests)
        audit = await self.audit()
        return outcome, requests, met, audit

    async def stop(self) -> None:
        """
        Stop the worker, the daemon and the simulator; a process killed for
        not ending in time is noted in C{stop_failures}.
        """
        if self.worker is not None:
            try:
                await self.end_worker("TERM")
            except DidNotEnd as e:
                self.stop_failures.append(str(e))
        try:
            await stop_harbour(self.daemon, self.client)
        except DidNotEnd as e:
            self.stop_failures.append(str(e))
        await maybeDeferred(self.port.stopListening)


def table(rows: list[tuple[str, str]]) -> None:
    """
    Print C{rows} as two aligned columns, or C{(none)} for none.
    """
    if not rows:
        print("  (none)")
        return
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def passed(soak: Soak, outcome: dict[str, Any], audit: dict[str, int], met: Counter) -> bool:
    """
    @param outcome: What L{Soak.finish} found.
    @param audit: What L{Soak.audit} found.
    @param met: The outcomes of the requests to the simulator.
    @return: The soak's verdict before its clean-up: whether every check passed (what does
        not end when stopped is judged after it, in L{main}).
    """
    return (
        outcome["lost"] == 0
        and outcome["unplanned"] == 0
        and outcome["beyond"] == 0
        and outcome["unretired"] == 0
        and outcome["fetched_again"] == 0
        and outcome["deleted_back"] == outcome["deleted"]
        and all((w.beyond or 0) == 0 and w.landed for w in soak.watches)
        and not outcome["unfinished"]
        and outcome["unparsable"] == 0
        and len(soak.worker_downloads) > 0
        and all(soak.pauses)
        and not soak.worker_deaths
        and not soak.strangers_failed
        # A fault that did not take effect tested nothing: an outage
        # harbour never saw, a file not deleted, a change that met no
        # download under way.
        and not soak.not_exercised
        and not any("NOT seen" in reply for reply in soak.redis_replies)
        and met["endless, read on"] == 0
        and all(
            audit.get(k, 0) == 0
            for k in (
                "missing",
                "strays",
                "wrong",
                "temporary_left",
                "outside",
                "tables_wrong",
                "removed_tables",
                "tables_check_failed",
            )
        )
        # Every bad input must be refused: a bad configuration or command
        # taken, a wrong token let in, a hostile publish not refused.
        and not soak.bad_inputs_taken
    )


async def main(reactor: IBenchReactor, seconds: float, every: float, reports: int, days: int) -> int:
    directory = Path(tempfile.mkdtemp(prefix="hb-soak-"))
    soak = Soak(reactor, directory, reports, days)
    soaking = Deferred.fromCoroutine(soak.soak(seconds, every))
    # A signal stops the reactor without ending the soak's coroutine: a
    # finally of its would never run, and harbour, its redis-server and the
    # worker would run on, the directory left behind.  The reactor waits
    # for this trigger's Deferred before it stops.
    reactor.addSystemEventTrigger("before", "shutdown", soak.interrupt, soaking)
    # Kept unless the soak passes, or a signal ends it: an error of the
    # soak's own leaves what it saw to be looked into.
    soak.keep = True
    try:
        outcome, requests, met, audit = await soaking
        ok = passed(soak, outcome, audit, met)
        soak.keep = not ok
    except CancelledError:
        if soak.interrupted:
            raise SystemExit(f"soak interrupted: no verdict; harbour stopped, {directory} removed") from None
        raise
    except (Stuck, DidNotEnd) as e:
        # A hang is a failure, said as such, not a wait for ever.
        print(f"\nsoak FAILED: {e}", flush=True)
        return 1
    finally:
        await soak.clean_up()
        for failure in soak.stop_failures:
            print(f"\nsoak FAILED: {failure}", flush=True)
    states = outcome["states"]
    lost = outcome["lost"]
    beyond = sum(w.beyond or 0 for w in soak.watches)
    unlanded = sum(1 for w in soak.watches if not w.landed)
    print("\nfaults injected")
    table([(name, str(count)) for name, count in sorted(soak.injected.items())])
    if soak.not_exercised:
        print("\nfaults NOT exercised (must be none)")
        table([(name, "") for name in soak.not_exercised])
    if soak.redis_replies:
        print("\nredis error replies (last_error of harbour's store after each; NOT seen fails the soak)")
        table([(name, str(count)) for name, count in sorted(soak.redis_replies.items())])
    print("\nresult")
    table(
        [
            ("tasks the final configuration asks for", str(outcome["total"])),
            ("of those, not in harbour's manifest (must be 0)", str(outcome["unplanned"])),
            ("requests in harbour's manifest beyond those (must be 0)", str(outcome["beyond"])),
            ("tasks completed", ", ".join(f"{states.get(s, 0)} {s}" for s in FINAL_STATES)),
            ("tasks lost (must be 0)", str(lost)),
            ("tasks of removed reports not retired (must be 0)", str(outcome["unretired"])),
            (
                "requests once disabled or removed, beyond those under way (must be 0)",
                f"{beyond} ({len(soak.watches)} changes watched, {unlanded} never landed)",
            ),
            (
                "files on disk fetched again when their report came back (must be 0)",
                f"{outcome['fetched_again']} of {len(soak.taken_up)}",
            ),
            ("files asked for but missing (must be 0)", str(audit.get("missing", 0))),
            (
                "files deleted from disk, downloaded again (must be all)",
                f"{outcome['deleted_back']} of {outcome['deleted']}",
            ),
            ("stray files (must be 0)", str(audit.get("strays", 0))),
            ("partial or wrong files under final names (must be 0)", str(audit.get("wrong", 0))),
            ("temporary files left (must be 0)", str(audit.get("temporary_left", 0))),
            (
                "temporary files of removed reports' killed downloads, the janitor's",
                str(audit.get("temporary_janitor", 0)),
            ),
            ("files outside the data directory (must be 0)", str(audit.get("outside", 0))),
            ("files unparsable (must be 0)", str(outcome["unparsable"])),
            (
                "reports with a window whose tables do not hold its zip's rows (must be 0)",
                str(audit.get("tables_wrong", 0)),
            ),
            ("table files of removed reports (must be 0)", str(audit.get("removed_tables", 0))),
            ("harbourctl tables --check failed (must be 0)", str(audit.get("tables_check_failed", 0))),
            ("rows in the tables", f"{audit.get('table_rows', 0):,}"),
            ("revisions kept (.revN.zip, checked)", str(audit.get("revisions_kept", 0))),
            ("files of removed reports (kept, checked)", str(audit.get("removed_kept", 0))),
            ("requests to the simulator", str(requests)),
            (
                "hostile answers met: 503s whose body never ends, heads over 64 KiB",
                f"{met['endless'] + met['endless, read on']}, {met['flood']}",
            ),
            ("never-ending bodies read past 1 MiB (must be 0)", str(met["endless, read on"])),
            ("files seen downloading on the worker (must not be 0)", str(len(soak.worker_downloads))),
            (
                "pauses or resumes that did not reach every process (must be 0)",
                f"{soak.pauses.count(False)} of {len(soak.pauses)}",
            ),
            ("worker ends the soak did not cause (must be 0)", str(len(soak.worker_deaths))),
            ("faults that did not take effect (must be 0)", str(len(soak.not_exercised))),
            (
                "redis error replies not seen where injected (must be 0)",
                str(sum(n for reply, n in soak.redis_replies.items() if "NOT seen" in reply)),
            ),
            ("processes killed for not ending when stopped (must be 0)", str(len(soak.stop_failures))),
            ("bad inputs taken, that must be refused (must be 0)", str(len(soak.bad_inputs_taken))),
        ]
    )
    for death in soak.worker_deaths:
        print(f"\nthe worker ended: {death}")
    for failure in soak.strangers_failed:
        print(f"\nstrangers: {failure}")
    print("\nbad inputs tried")
    tried = Counter(soak.bad_inputs)
    table([(f"{name} (x{count})", outcome) for (name, outcome), count in tried.items()])
    for taken in soak.bad_inputs_taken:
        print(f"\nbad input taken: {taken}")
    # What did not end when stopped is known only now, after clean_up.
    ok = ok and not soak.stop_failures
    print("\nsoak " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--every", type=float, default=15.0, help="seconds between faults")
    parser.add_argument("--reports", type=int, default=4, help="reports at the start; one more per fault")
    parser.add_argument("--days", type=int, default=120)
    arguments = parser.parse_args()

    async def run(reactor: IBenchReactor) -> None:
        code = await main(reactor, arguments.seconds, arguments.every, arguments.reports, arguments.days)
        if code:
            raise SystemExit(code)

    react(lambda reactor: ensureDeferred(run(reactor)))
