"""
Assembles C{twistd harbour}: the command-line options and the one
L{HarbourService} whose named children are the seed's servers.

Children start in a deliberate order (the store first, the control port
last, so a client never meets a half-started daemon) and stop one at a
time in reverse, each waited for.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import attr
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, maybeDeferred
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads, IReactorTCP, IReactorTime
from twisted.logger import Logger, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.logfile import BaseLogFile
from zope.interface import implementer

from harbour import __version__
from harbour.amp.hub import HubLink
from harbour.amp.server import ControlService, check_listen_endpoint, read_token
from harbour.bus import Bus
from harbour.collector import tune_collector
from harbour.config.watcher import ConfigService
from harbour.errors import BadRequest, ConfigurationError
from harbour.holding import hold
from harbour.interfaces import (
    IBus,
    IConfigSource,
    IDaemon,
    IManifest,
    IPausable,
    IStatusSource,
    ITaskStore,
    StatusDocument,
)
from harbour.oasis.client import OasisClient, described
from harbour.oasis.requests import ReportURL
from harbour.services.download import DownloadService
from harbour.services.manifest import ManifestService
from harbour.services.pausing import PauseAnnouncer, PauseFollower
from harbour.services.publications import PublicationsFollower
from harbour.services.sweeping import LeaseSweeper
from harbour.services.tables import TablesService
from harbour.services.work import WorkService
from harbour.services.workers import WorkersService
from harbour.store.address import RedisAddress
from harbour.store.connection import StoreService
from harbour.store.politeness import RedisLimiter
from harbour.store.tasks import RedisTaskStore
from harbour.web.service import DEFAULT_HTTP, web_services

if TYPE_CHECKING:
    from harbour.testing.simulator import SimulatorService

    class IDaemonReactor(IReactorCore, IReactorTime, IReactorTCP, IReactorFromThreads):
        """
        The reactor a daemon runs on, as its services use it: to stop, to
        keep time, to connect and listen, and to run disk work in threads.
        (Twisted's reactors provide all of these; no one interface names
        them together.)
        """


T = TypeVar("T")

DEFAULT_AMP = "tcp:7750:interface=127.0.0.1"


class Options(usage.Options):
    """
    The options of C{twistd harbour}.
    """

    synopsis = "[options]"
    longdesc = (
        "Keep a verified local mirror of CAISO OASIS reports. The reports are "
        "declared in TOML files in --config-dir; saving one reconfigures the "
        "running daemon. Operators connect to --amp with harbourctl."
    )
    optFlags: list[list[str | None]] = [
        [
            "demo",
            None,
            "Also run the OASIS simulator in-process and point the default manifest base_url at it.",
        ],
    ]
    optParameters: list[list[str | None]] = [
        ["config-dir", "c", "config", "Directory of *.toml configuration files."],
        ["data-dir", "d", "data", "Directory for downloads, the embedded Redis and the token."],
        [
            "redis",
            "r",
            None,
            (
                "Redis URL: redis://[[user]:password@]host:port/db, "
                "rediss://[[user]:password@]host:port/db?ca=CA.pem[&cert=CERT.pem&key=KEY.pem] (TLS) "
                "unix://[[user]:password@]/path.sock?db=N "
                "or redis+sentinel://[[user]:password@]host:port[,host:port...]/service/db (Sentinel); "
                "default: an embedded redis-server in <data-dir>/redis."
            ),
        ],
        [
            "redis-password-file",
            None,
            None,
            (
                "File holding the --redis password (its first line), to keep it off the command "
                "line; a password in the URL wins over it, and it over HARBOUR_REDIS_PASSWORD."
            ),
        ],
        [
            "prefix",
            None,
            "harbour",
            (
                "Redis keys start with {NAME}: (a hash tag: all of one harbour's keys in one Redis "
                "Cluster slot), so harbours can share a Redis; keys an older harbour wrote under "
                "NAME: are moved there once, at start."
            ),
        ],
        ["amp", "a", DEFAULT_AMP, "Twisted endpoint of the AMP control port."],
        ["token-file", "t", None, "Token file for the control port (default <data-dir>/amp.token)."],
        ["http", None, DEFAULT_HTTP, "Twisted endpoint of the status page, /metrics and /healthz, or none."],
        ["role", None, "all", "all: every service; worker: downloads and their tables, for a --hub."],
        [
            "hub",
            None,
            None,
            (
                "A worker's hub: the endpoint of its control port, tls:HOST:7750:trustRoots=DIR "
                "(or tcp:127.0.0.1:7750 on the hub's own host)."
            ),
        ],
    ]

    #: Where C{HARBOUR_REDIS_PASSWORD} is read from (tests replace it).
    environ: Mapping[str, str] = os.environ

    def opt_version(self) -> None:
        """
        Display harbour's version, and Twisted's, and exit.
        """
        from twisted import copyright

        print(f"harbour {__version__} (Twisted {copyright.version})")
        sys.exit(0)

    def postOptions(self) -> None:
        """
        Check everything that can be checked before start, so that a
        mistake is a usage message rather than a traceback.

        C{--redis} is left parsed, as a L{RedisAddress} with its password
        (from the URL, else C{--redis-password-file}, else
        C{HARBOUR_REDIS_PASSWORD}); the directories and files named
        absolute, against the directory harbour is started in (not
        twistd's C{--rundir}).
        """
        for option in ("config-dir", "data-dir"):
            if not self[option]:
                raise usage.UsageError(f"--{option} is empty: name a directory")
        config_dir, data_dir = Path(self["config-dir"]), Path(self["data-dir"])
        if self["role"] == "all" and not config_dir.is_dir():
            if config_dir.exists():
                raise usage.UsageError(f"--config-dir {config_dir} is not a directory")
            raise usage.UsageError(
                f"configuration directory {config_dir} does not exist: create it or pass --config-dir"
            )
        if data_dir.exists() and not data_dir.is_dir():
            raise usage.UsageError(f"--data-dir {data_dir} is not a directory")
        try:
            check_listen_endpoint(self["amp"])
            if self["http"] != "none":
                check_listen_endpoint(self["http"])
            if self["redis"]:
                self["redis"] = self._redis_address(self["redis"])
            elif self["redis-password-file"]:
                raise ConfigurationError("--redis-password-file is for a --redis server")
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None
        # twistd changes to its --rundir only after the daemon is made: the
        # lock, the embedded Redis's directory and the token, made before,
        # and the tables and configuration, read after, are in one place.
        for option in ("config-dir", "data-dir", "token-file", "redis-password-file"):
            if self[option]:
                self[option] = os.path.abspath(self[option])
        if self["token-file"] is None:
            self["token-file"] = str(Path(self["data-dir"]) / "amp.token")
        if self["role"] not in ("all", "worker"):
            raise usage.UsageError(f"--role must be all or worker, not {self['role']!r}")
        if self["role"] == "worker" and not (self["hub"] and self["redis"]):
            raise usage.UsageError(
                "a worker needs --hub (the hub's control port) and --redis (the hub's Redis)"
            )

    def _redis_address(self, url: str) -> RedisAddress:
        """
        Parse C{url}, fill in the password from elsewhere if it has none,
        and check its TLS files.

        @raise ConfigurationError: if any of it is wrong.
        """
        address = RedisAddress.parse(url)
        if self["redis-password-file"]:
            path = Path(self["redis-password-file"])
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigurationError(f"cannot read --redis-password-file {path}: {e}") from None
            if not lines or not lines[0]:
                raise ConfigurationError(f"--redis-password-file {path} has no password on its first line")
            address = address.with_password(lines[0])
        address = address.with_password(self.environ.get("HARBOUR_REDIS_PASSWORD") or None)
        if address.tls:
            address.client_tls()
        return address


@attr.s(eq=False)
class HarbourService(MultiService):
    """
    The root of one harbour process.
    """

    log = Logger()

    reactor: IReactorCore = attr.ib()
    started: float = attr.ib(factory=time.time, init=False)
    #: Whether a part could not start (see L{fatal}): the process then
    #: exits non-zero (see L{makeService}).
    failed: bool = attr.ib(default=False, init=False)
    #: Locked file descriptors (see L{lock_data_dir}), closed at stop.
    locks: list[int] = attr.ib(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        MultiService.__init__(self)

    def fatal(self, failure: Failure, name: str = "store") -> None:
        """
        An essential part could not start: say why, once, and stop the
        process (which stops every part that started).

        @param name: The part's name.
        """
        if failure.check(CancelledError):
            return  # stopped before it was ready
        if self.failed:
            # What failed first is the cause: the rest is its consequence
            # (the services waiting for a store that will not come).
            self.log.debug("{name} cannot start either: {error}", name=name, error=_said(failure))
            return
        self.failed = True
        self.log.critical(
            "harbour cannot run: {name}: {error}", name=name, error=_said(failure), service="harbour"
        )
        if self.reactor.running:
            self.reactor.stop()
        else:
            # Failed during start-up, before the reactor runs.
            self.reactor.callWhenRunning(self.reactor.stop)

    def privilegedStartService(self) -> None:
        """
        Let each child listen on its ports.  One that cannot is fatal
        before anything else starts: the others' ports are closed, the
        error logged, and L{StartupFailed} raised, which twistd reports
        (daemonizing, to the launcher, which exits 1), removing its pid
        file.
        """
        Service.privilegedStartService(self)
        listening: list[IService] = []
        for child in self:
            try:
                child.privilegedStartService()
            except Exception:
                failure = Failure()
                self.fatal(failure, child.name)
                for other in reversed(listening):
                    # Each closes its port in its stopService, running or not.
                    maybeDeferred(other.stopService).addErrback(
                        lambda failure: self.log.failure("cannot close a port", failure, service="harbour")
                    )
                # An Exception, not SystemExit: twistd then removes its pid
                # file and, daemonizing, tells the waiting launcher, which
                # says why and exits 1 rather than waiting for ever.
                raise StartupFailed(
                    _briefly(child.name, _said(failure), getattr(child, "endpoint", None))
                ) from None
            listening.append(child)

    def startService(self) -> None:
        """
        Start the children in order.  One that raises, or whose start
        fails later, is fatal: the reactor stops, and with it every child
        started (the children after one that raised are not started).
        """
        Service.startService(self)
        for child in self:
            name: str = child.name
            starting = maybeDeferred(child.startService)
            starting.addErrback(self.fatal, name)
            if self.failed:
                break

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop the children one at a time, last started first, each
        completely (connections closed, processes gone) before the next;
        the C{http} site last of all.  One whose stop fails is logged, and
        the next still stopped.  Then the data directory's lock goes,
        whether the service ran or not.
        """
        if self.running:
            self.running = 0
            children = list(reversed(list(self)))
            # While the rest stops, /readyz answers "stopping" (the monitor
            # says so as it stops), rather than refusing connections.
            children.sort(key=lambda child: child.name == "http")
            for child in children:
                if child.running:
                    try:
                        yield maybeDeferred(child.stopService)
                    except Exception:
                        self.log.failure("{name} did not stop cleanly", name=child.name, service="harbour")
        # Made but never started, it holds the lock all the same.
        self.unlock()

    def unlock(self) -> None:
        """
        Let go of the locks this process holds (it is done with its
        directory).
        """
        while self.locks:
            os.close(self.locks.pop())

    @inlineCallbacks
    def status(self) -> Generator[Deferred[Any], Any, StatusDocument]:
        """
        The C{Status} document: one entry per service that reports one.
        """
        # The name is read before the check: past it, the type checker sees
        # the child only as the status source it also is.
        reporting: list[tuple[str, IStatusSource]] = []
        for child in self:
            name: str = child.name
            if IStatusSource.providedBy(child):
                reporting.append((name, child))
        states = yield gatherResults([maybeDeferred(source.status) for ignored, source in reporting])
        return {
            "harbour": __version__,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 3),
            "services": {name: state for (name, ignored), state in zip(reporting, states)},
        }


def _said(failure: Failure) -> str:
    """
    @return: C{failure} in words, as a task's last error says it.
    """
    return described(cast(BaseException, failure.value))


def _briefly(name: str, error: str, endpoint: object) -> str:
    """
    @return: Why part C{name} cannot listen, reason first: twistd tells a
        waiting launcher only the first 100 bytes of the exception, and
        "cannot listen on ENDPOINT: Couldn't listen on ADDRESS: [Errno 98]
        Address already in use" loses its point there.
    """
    preamble = f"cannot listen on {endpoint}: "
    if not isinstance(endpoint, str) or not error.startswith(preamble):
        return f"{name}: {error}"
    # Twisted's CannotListenError: "Couldn't listen on ADDRESS: REASON."
    reason = error.removeprefix(preamble).rsplit(": ", 1)[-1]
    reason = re.sub(r"^\[Errno \d+\] ", "", reason).rstrip(".")
    return f"{name}: {reason}, on {endpoint}"


class StartupFailed(Exception):
    """
    A part of the daemon could not listen on its port: the daemon does
    not start.
    """


def twistd_log_files() -> list[BaseLogFile]:
    """
    @return: The log files twistd writes to (its C{--logfile}), if any.
    """
    # twistd keeps its LogFile to itself (its SIGUSR1 handler holds it): it
    # is found as the file of a log observer, the one twistd made for it.
    observers = getattr(globalLogPublisher, "_observers", [])
    return [
        outFile
        for observer in observers
        if isinstance(outFile := getattr(observer, "_outFile", None), BaseLogFile)
    ]


def reopen(log_file: BaseLogFile) -> None:
    """
    Open C{log_file} again at its path, then close the file it wrote to
    until now.  Twisted's C{reopen} closes first: a file that cannot be
    opened (its directory gone or replaced, a new file logrotate made
    under another owner, no descriptor left) would leave the log with no
    file at all, every later line lost and every later reopen or
    rotation failing.  Here the old file stays in use, the error can be
    logged to it, and a later SIGHUP tries again.

    @raise OSError: If the file cannot be opened; C{log_file} then writes
        where it did.
    """
    # Not there if an earlier rotation (twistd's, on SIGUSR1) failed as it
    # opened its new file: this opening then brings the log back.
    old: BinaryIO | None = getattr(log_file, "_file", None)
    try:
        # Twisted's own opening (its modes and permissions), which sets
        # _file only once the file is open.
        log_file._openFile()
    except BaseException:
        if old is not None:
            log_file._file = old
            log_file.closed = False
        raise
    if old is not None:
        with suppress(OSError):
            old.close()


@attr.s(eq=False)
class HangupService(Service):
    """
    SIGHUP, as daemons take it rather than dying of it: reopen twistd's
    C{--logfile} at its path (so that C{kill -HUP} after logrotate moved
    it away starts a new file; twistd's own rotation stays on SIGUSR1),
    then read the configuration directory again, as C{harbourctl reload}
    does.  The handler is installed while the service runs, and the one
    before it put back at stop.
    """

    log = Logger()

    reactor: IReactorFromThreads = attr.ib()
    #: Reads the configuration again (L{IDaemon.reload}); L{None} for a
    #: worker, whose configuration is its hub's.
    reload: Callable[[], Deferred[tuple[list[str], list[str]]]] | None = attr.ib()
    log_files: Callable[[], Iterable[BaseLogFile]] = attr.ib(default=twistd_log_files)
    #: Installs a signal handler, returning the one before (tests replace it).
    install: Callable[[int, Any], Any] = attr.ib(default=signal.signal)
    _previous: Any = attr.ib(default=None, init=False)
    _installed: bool = attr.ib(default=False, init=False)

    def startService(self) -> None:
        """
        Handle SIGHUP from now on.
        """
        super().startService()
        self._previous = self.install(signal.SIGHUP, self._received)
        self._installed = True

    def stopService(self) -> Deferred[None] | None:
        """
        Put back the SIGHUP handler found at start.
        """
        if self._installed:
            # None: a handler not set from Python, which cannot be put back.
            self.install(signal.SIGHUP, signal.SIG_DFL if self._previous is None else self._previous)
            self._installed = False
        return super().stopService()

    def _received(self, signum: int, frame: object) -> None:
        # A handler runs between any two bytecodes of the main thread: the
        # work waits for the reactor, as twistd's SIGUSR1 handler's does.
        self.reactor.callFromThread(self.hangup)

    def hangup(self) -> Deferred[None] | None:
        """
        Reopen the log files, then reload the configuration, logging what
        came of it.

        @return: A L{Deferred} firing once the configuration is read (or
            L{None} if there is none to read).
        """
        reopened = 0
        for log_file in self.log_files():
            try:
                reopen(log_file)
            except OSError as e:
                self.log.error(
                    "cannot reopen the log file {path}: {error}",
                    path=log_file.path,
                    error=e,
                    service="harbour",
                )
            else:
                reopened += 1
        self.log.info(
            "Received SIGHUP: {reopened} log file(s) reopened{then}",
            reopened=reopened,
            then="" if self.reload is None else ", reloading the configuration",
            service="harbour",
        )
        if self.reload is None:
            return None
        return self.reload().addCallbacks(self._reloaded, self._failed)

    def _reloaded(self, outcome: tuple[list[str], list[str]]) -> None:
        topics, errors = outcome
        self.log.info(
            "configuration reloaded on SIGHUP: {topics} topic(s) republished, {errors} problem(s)",
            topics=len(topics),
            errors=len(errors),
            service="harbour",
        )

    def _failed(self, failure: Failure) -> None:
        self.log.failure("cannot reload the configuration on SIGHUP", failure, service="harbour")


@implementer(IDaemon)
@attr.s(frozen=True, eq=False)
class DaemonControls:
    """
    The daemon as its control port sees it: the parts an operator steers,
    each optional (a part this daemon does not run is refused).
    """

    status: Callable[[], Deferred[StatusDocument]] = attr.ib()
    config: IConfigSource | None = attr.ib(default=None)
    manifest: IManifest | None = attr.ib(default=None)
    work: WorkService | None = attr.ib(default=None)
    tasks: ITaskStore | None = attr.ib(default=None)
    pausables: dict[str, IPausable] = attr.ib(factory=dict)

    def _part(self, part: T | None, name: str) -> T:
        if part is None:
            raise BadRequest(f"this harbour has no {name} service")
        return part

    def reload(self) -> Deferred[tuple[list[str], list[str]]]:
        """
        See L{IDaemon.reload}.
        """
        return self._part(self.config, "config").reload()

    def refresh(self) -> Deferred[int]:
        """
        See L{IDaemon.refresh}.
        """
        return self._part(self.work, "work").refresh()

    def requests(self) -> list[ReportURL]:
        """
        See L{IDaemon.requests}.
        """
        return self._part(self.manifest, "manifest").reports()

    def task_store(self) -> ITaskStore:
        """
        See L{IDaemon.task_store}.
        """
        return self._part(self.tasks, "tasks")

    def owns(self, topic: str) -> bool:
        """
        See L{IDaemon.owns}.
        """
        return self.config is not None and self.config.owns(topic)

    def pausable(self, name: str | None) -> dict[str, IPausable]:
        """
        See L{IDaemon.pausable}.
        """
        if name is None:
            return dict(self.pausables)
        if name not in self.pausables:
            known = ", ".join(sorted(self.pausables)) or "none"
            raise BadRequest(f"cannot pause or resume {name!r}: pausable services are {known}")
        return {name: self.pausables[name]}


def build(reactor: IDaemonReactor, options: Options) -> HarbourService:
    """
    Build the service tree described by C{options}, in the order data
    flows: the store and the bus; the publications log, the manifest, the
    work that turns requests into tasks, the downloads, the tables; the configuration
    that drives them all; the control port.
    """
    if options["role"] == "worker":
        return build_worker(reactor, options)
    bus = Bus()
    root, data_dir, store, tasks = _foundation(reactor, options, bus)
    # The data directory is locked from here: let go of it if the rest fails.
    with _unlocked_if_failed(root):
        children: list[tuple[str, IService]] = []
        defaults: dict[str, dict[str, Any]] = {}
        if options["demo"]:
            simulator = demo_simulator(reactor)
            defaults["manifest"] = {"base_url": simulator.base_url()}
            children.append(("oasis-sim", simulator))
        client = OasisClient(reactor, RedisLimiter(store, reactor, store.prefix, server_time=True))
        publications = PublicationsFollower(reactor, bus, store, client, store.prefix, ready=store.when_ready)
        manifest = ManifestService(reactor, bus, publications)

        def known() -> Deferred[list[None]]:
            return gatherResults([store.when_ready(), publications.when_known()])

        work = WorkService(reactor, tasks, manifest, bus, publications=publications, ready=known)
        download = DownloadService(
            reactor, tasks, client, bus, data_dir, prefix=options["prefix"], ready=store.when_ready
        )
        tables = TablesService(reactor, tasks, bus, data_dir, ready=store.when_ready)
        config = ConfigService(reactor, Path(options["config-dir"]), bus, defaults)
        pausables: dict[str, IPausable] = {"work": work, "download": download, "tables": tables}
        daemon = DaemonControls(root.status, config, manifest, work, tasks, pausables)
        control = ControlService.from_config(
            reactor, options["amp"], Path(options["token-file"]), bus=bus, daemon=daemon
        )
        children += [
            ("signals", HangupService(reactor, daemon.reload)),
            ("store", store),
            ("bus", bus),
            ("workers", WorkersService(reactor, bus, prefix=options["prefix"])),
            ("publications", publications),
            ("manifest", manifest),
            ("work", work),
            ("sweeper", LeaseSweeper(reactor, tasks, bus, store.when_ready)),
            ("download", download),
            ("tables", tables),
            ("config", config),
            ("pauses", PauseAnnouncer(bus, pausables)),
            ("amp", control),
        ]
        children += web_services(reactor, options["http"], bus, daemon, Path(options["token-file"]))
        return _adopt(root, children, store)


def build_worker(reactor: IDaemonReactor, options: Options) -> HarbourService:
    """
    A download worker: the shared Redis, the link to the hub (whose bus
    brings the C{download} and C{work} configuration), and the download
    service.
    """
    token = read_token(Path(options["token-file"]))
    try:
        hub = HubLink(reactor, options["hub"], token)
    except ConfigurationError as e:
        raise ConfigurationError(f"--hub: {e}") from None
    root, data_dir, store, tasks = _foundation(reactor, options, hub)

    def ready() -> Deferred[list[None]]:
        return gatherResults([store.when_ready(), hub.when_connected()])

    client = OasisClient(reactor, RedisLimiter(store, reactor, store.prefix, server_time=True))
    download = DownloadService(reactor, tasks, client, hub, data_dir, prefix=options["prefix"], ready=ready)
    # A worker parses what it downloads; the hub keeps the views.
    tables = TablesService(reactor, tasks, hub, data_dir, keep_views=False, ready=ready)
    # Paused on the hub, paused here: an operator steers the whole fleet.
    pauses = PauseFollower(hub, {"download": download, "tables": tables})
    # The hub sweeps too, but may be away: a dead worker's claims must not
    # wait for it.  Only the store is needed (each lease's end is kept
    # there), so it starts without the hub.
    sweeper = LeaseSweeper(reactor, tasks, hub, store.when_ready)
    return _adopt(
        root,
        [
            ("signals", HangupService(reactor, None)),
            ("store", store),
            ("hub", hub),
            ("download", download),
            ("tables", tables),
            ("pauses", pauses),
            ("sweeper", sweeper),
        ],
        store,
    )


def _foundation(
    reactor: IDaemonReactor, options: Options, bus: IBus
) -> tuple[HarbourService, Path, StoreService, RedisTaskStore]:
    """
    What every role stands on: the root, the data directory, the store
    (announcing on C{bus}) and the task store on it.
    """
    data_dir = Path(options["data-dir"])
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigurationError(f"cannot create --data-dir {data_dir}: {e.strerror}") from None
    # Only a hub holds the lease on its Redis and prefix: workers share it.
    hub = options["role"] != "worker"
    root = HarbourService(reactor)
    if hub:
        # Taken as the daemon is made, before twistd forks: a refusal is
        # then the launcher's exit status, not only a line in the log.
        # Workers may share a hub's directory (see README, More hosts).
        root.locks.append(lock_data_dir(data_dir))
    with _unlocked_if_failed(root):
        if hub and options["redis"] is None:
            _check_writable(data_dir / "redis")
        store = StoreService.from_config(reactor, options["redis"], data_dir, options["prefix"], bus, hub)
        return (
            root,
            data_dir,
            store,
            RedisTaskStore(store, reactor, store.prefix, server_time=True),
        )


@contextmanager
def _unlocked_if_failed(root: HarbourService) -> Iterator[None]:
    """
    Let go of C{root}'s locks if what is done within raises: a daemon that
    is not made (C{twistd} exits, or a test goes on) holds no directory.
    """
    try:
        yield
    except BaseException:
        root.unlock()
        raise


#: The file a hub locks in its data directory, whichever Redis it uses.
DATA_DIR_LOCK = "harbour.lock"


def lock_data_dir(data_dir: Path) -> int:
    """
    Lock C{data_dir} for this process (and the daemon twistd forks from
    it, which inherits the lock) until it exits.

    @return: The locked file descriptor.
    @raise ConfigurationError: if another harbour hub holds the lock, or
        the lock file cannot be opened.
    """
    path = data_dir / DATA_DIR_LOCK
    try:
        fd = hold(path)
    except OSError as e:
        raise ConfigurationError(f"cannot open the lock file {path}: {e.strerror}") from None
    if fd is None:
        raise ConfigurationError(
            f"--data-dir {data_dir} is in use by another harbour hub (its lock {DATA_DIR_LOCK} is held)"
        )
    return fd


def _check_writable(directory: Path) -> None:
    """
    Make the embedded Redis's C{directory} and check that harbour can
    create its lock file there (the server itself starts after the fork).

    @raise ConfigurationError: if it cannot.
    """
    try:
        directory.mkdir(exist_ok=True, mode=0o700)
        os.close(os.open(directory / "harbour.lock", os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as e:
        raise ConfigurationError(f"cannot use {directory} for the embedded Redis: {e.strerror}") from None


def _adopt(root: HarbourService, children: list[tuple[str, IService]], store: StoreService) -> HarbourService:
    """
    Name and add the children in start order; nothing works without the
    store, so the process stops if it cannot start, or if another hub
    takes this hub's lease on it.
    """
    for name, child in children:
        child.setName(name)
        child.setServiceParent(root)
    store.when_ready().addErrback(root.fatal, "store")
    store.when_lease_lost().addErrback(root.fatal, "store")
    return root


#: Where C{--demo} serves its simulator.  A fixed port keeps the report
#: URLs, and so the task ids, the same from one demo run to the next.
DEMO_SIMULATOR = "tcp:7751:interface=127.0.0.1"


def demo_simulator(reactor: IDaemonReactor) -> SimulatorService:
    """
    The in-process OASIS simulator of C{--demo}: listening on a loopback
    port at once, so that its URL can be the configuration's default.
    """
    # Only the demo needs the simulator: a daemon never loads it.
    from harbour.testing.simulator import OasisSimulator, SimulatorService

    simulator = OasisSimulator(reactor, seed=1, nodes=12, min_interval=0.0)
    service = SimulatorService(reactor, DEMO_SIMULATOR, simulator)
    try:
        service.privilegedStartService()
    except Exception as e:
        raise ConfigurationError(f"--demo cannot serve its simulator on {DEMO_SIMULATOR}: {e}") from None
    return service


def options_from_environment(environ: Mapping[str, str]) -> list[str]:
    """
    @return: C{twistd harbour} arguments from C{HARBOUR_*} variables, one
        per option (C{HARBOUR_CONFIG_DIR} is C{--config-dir}).
    """
    args = []
    for long_name, *ignored in Options.optParameters:
        # Every row of the table starts with the option's long name.
        value = environ.get("HARBOUR_" + cast(str, long_name).upper().replace("-", "_"))
        if value:
            args.append(f"--{long_name}={value}")
    return args


def makeService(options: Options) -> IService:
    """
    The C{twistd harbour} entry point.
    """
    from twisted.internet import reactor

    try:
        # The global reactor provides every interface the daemon uses,
        # though its declared type leaves out IReactorFromThreads.
        service = build(cast("IDaemonReactor", reactor), options)
    except ConfigurationError as e:
        raise SystemExit(f"harbour: {e}") from None
    tune_collector()
    atexit.register(exit_if_failed, service)
    return service


def exit_if_failed(service: HarbourService, exit: Callable[[int], object] = os._exit) -> None:
    """
    At the interpreter's exit: make it exit 1 if C{service} could not
    start.  twistd exits 0 whenever its reactor stops, however it came
    to; by now it has stopped every service and removed its pid file.

    @param exit: Ends the process at once with a status (tests replace it).
    """
    if service.failed:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        exit(1)
