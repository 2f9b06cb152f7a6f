"""
Tests for L{harbour.service} and L{harbour.logs}.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, globalLogPublisher, jsonFileLogObserver, textFileLogObserver
from twisted.python import usage
from twisted.python.logfile import LogFile
from twisted.scripts._twistd_unix import UnixApplicationRunner
from twisted.trial.unittest import SynchronousTestCase

from harbour import __version__
from harbour.errors import ConfigurationError
from harbour.service import (
    DATA_DIR_LOCK,
    HangupService,
    HarbourService,
    Options,
    StartupFailed,
    build,
    exit_if_failed,
    lock_data_dir,
    options_from_environment,
    twistd_log_files,
)
from harbour.services.sweeping import LeaseSweeper
from harbour.test.helpers import capture_log
from twisted import copyright


class OptionsTests(SynchronousTestCase):
    """
    Tests for C{twistd harbour}'s options.
    """

    def setUp(self) -> None:
        self.config = Path(self.mktemp())
        self.config.mkdir()

    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(["--config-dir", str(self.config), *args])
        return options

    def test_defaults(self) -> None:
        """
        The token file defaults to the data directory; the control port to
        loopback.
        """
        options = self.parse("--data-dir", "/srv/harbour")
        self.assertEqual(options["token-file"], "/srv/harbour/amp.token")
        self.assertEqual(options["amp"], "tcp:7750:interface=127.0.0.1")

    def test_mistakes(self) -> None:
        """
        A missing or empty config directory, a file given for a directory,
        a public plain-text port and a bad Redis URL are usage errors with a
        clear message.
        """
        a_file = Path(self.mktemp())
        a_file.write_text("")
        for args, text in [
            (["--config-dir", "/nonexistent/harbour"], "does not exist"),
            (["--config-dir", ""], "--config-dir is empty"),
            (["--config-dir", str(a_file)], f"--config-dir {a_file} is not a directory"),
            (["--data-dir", ""], "--data-dir is empty"),
            (["--data-dir", str(a_file)], f"--data-dir {a_file} is not a directory"),
            (["--redis", "redis://:6379/0"], "names no host"),
            (["--amp", "tcp:7750"], "ssl:"),
            (["--redis", "localhost:6379"], "redis://host:port/db"),
        ]:
            error = self.assertRaises(usage.UsageError, self.parse, *args)
            self.assertIn(text, str(error))

    def test_hubNotAnEndpoint(self) -> None:
        """
        A worker's C{--hub} that Twisted cannot parse is refused when the
        daemon is made, naming the option, before anything connects.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        reactor = MemoryReactorClock()
        for hub, text in [
            ("garbage", "Unknown endpoint type: 'garbage'"),
            ("tcp:hub.example:notaport", "cannot use endpoint 'tcp:hub.example:notaport'"),
            ("ssl:hub.example:7750", "caCertsDir"),
        ]:
            options = self.parse(
                "--role=worker",
                f"--hub={hub}",
                "--redis=redis://127.0.0.1:1/0",
                f"--token-file={token}",
                f"--data-dir={self.mktemp()}",
            )
            error = self.assertRaises(ConfigurationError, build, reactor, options)
            self.assertTrue(str(error).startswith("--hub: "), str(error))
            self.assertIn(text, str(error))
        self.assertEqual((reactor.tcpClients, reactor.sslClients, reactor.unixClients), ([], [], []))

    def test_prefixToldAndCompared(self) -> None:
        """
        A worker's downloads tell its C{--prefix} in their heartbeats, and
        a hub's workers service compares them with its own.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        common = ["--redis=redis://127.0.0.1:1/0", f"--token-file={token}", "--prefix=fleet"]
        # The Redis connection and the hub link are made only at start.
        reactor: Any = MemoryReactorClock()
        worker = build(
            reactor,
            self.parse("--role=worker", "--hub=tcp:127.0.0.1:1", f"--data-dir={self.mktemp()}", *common),
        )
        hub = build(reactor, self.parse(f"--data-dir={self.mktemp()}", *common))
        self.addCleanup(hub.unlock)
        self.assertEqual(
            (worker.getServiceNamed("download").prefix, hub.getServiceNamed("download").prefix),
            ("fleet", "fleet"),
        )
        self.assertEqual(hub.getServiceNamed("workers").prefix, "fleet")

    def test_workerSweeps(self) -> None:
        """
        A worker sweeps expired leases on its own store, with its hub's
        lease (followed over the hub's bus), so that a dead worker's claims
        come back while the hub is away.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        reactor: Any = MemoryReactorClock()
        worker = build(
            reactor,
            self.parse(
                "--role=worker",
                "--hub=tcp:127.0.0.1:1",
                f"--data-dir={self.mktemp()}",
                "--redis=redis://127.0.0.1:1/0",
                f"--token-file={token}",
            ),
        )
        sweeper = worker.getServiceNamed("sweeper")
        self.assertIsInstance(sweeper, LeaseSweeper)
        self.assertIs(sweeper.bus, worker.getServiceNamed("hub"))
        self.assertIs(sweeper.store, worker.getServiceNamed("download").store)

    def test_claimersWaitForConfiguration(self) -> None:
        """
        The downloads and parses of a hub, and of a worker (which hears its
        hub's configuration over the hub's bus), claim nothing until the
        first configuration is in force: the defaults may not be it.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        common = ["--redis=redis://127.0.0.1:1/0", f"--token-file={token}"]
        reactor: Any = MemoryReactorClock()
        worker = build(
            reactor,
            self.parse("--role=worker", "--hub=tcp:127.0.0.1:1", f"--data-dir={self.mktemp()}", *common),
        )
        hub = build(reactor, self.parse(f"--data-dir={self.mktemp()}", *common))
        self.addCleanup(hub.unlock)
        for root in (worker, hub):
            self.assertFalse(root.getServiceNamed("download").configured)
            self.assertFalse(root.getServiceNamed("tables").configured)

    def test_hubSweeps(self) -> None:
        """
        The hub sweeps expired leases with the same service, on its own bus
        and store.
        """
        reactor: Any = MemoryReactorClock()
        hub = build(reactor, self.parse(f"--data-dir={self.mktemp()}", "--redis=redis://127.0.0.1:1/0"))
        self.addCleanup(hub.unlock)
        sweeper = hub.getServiceNamed("sweeper")
        self.assertIsInstance(sweeper, LeaseSweeper)
        self.assertIs(sweeper.bus, hub.getServiceNamed("bus"))
        self.assertIs(sweeper.store, hub.getServiceNamed("download").store)

    def test_onlyHubLeases(self) -> None:
        """
        A hub's store on an external Redis holds the lease on its Redis and
        prefix; a worker's does not, nor does a hub's on its embedded
        Redis (its data directory's lock keeps others out).
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        reactor: Any = MemoryReactorClock()
        common = ["--redis=redis://127.0.0.1:1/0", f"--token-file={token}"]
        hub = build(reactor, self.parse(f"--data-dir={self.mktemp()}", *common))
        self.addCleanup(hub.unlock)
        worker = build(
            reactor,
            self.parse("--role=worker", "--hub=tcp:127.0.0.1:1", f"--data-dir={self.mktemp()}", *common),
        )
        embedded = build(reactor, self.parse(f"--data-dir={self.mktemp()}"))
        self.addCleanup(embedded.unlock)
        self.assertIsNotNone(hub.getServiceNamed("store").lease)
        self.assertIsNone(worker.getServiceNamed("store").lease)
        self.assertIsNone(embedded.getServiceNamed("store").lease)

    def test_leaseLostStops(self) -> None:
        """
        A hub whose lease another hub took stops, saying why.
        """
        reactor: Any = MemoryReactorClock()
        hub = build(reactor, self.parse(f"--data-dir={self.mktemp()}", "--redis=redis://127.0.0.1:1/0"))
        self.addCleanup(hub.unlock)
        lease = hub.getServiceNamed("store").lease

        class Taken:
            """
            A Redis where another hub holds the lease.
            """

            def eval(self, *args: object) -> Deferred[list[object]]:
                """
                The other hub's name, and its lease's time left.
                """
                return succeed(["other hub", 30000])

        lease.redis = Taken()
        logged = capture_log(self)
        lease._renew()
        self.assertIn("harbour cannot run: store: another harbour hub (other hub)", "\n".join(logged))
        self.assertEqual(len(reactor.whenRunningHooks), 1)

    def test_hubLocksDataDir(self) -> None:
        """
        A hub locks its data directory as it is made, whichever Redis it
        uses: a second hub on the directory is refused, naming it, until
        the first stops; a worker may share it.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        data = self.mktemp()
        reactor: Any = MemoryReactorClock()
        common = [f"--data-dir={data}", f"--token-file={token}"]
        first = build(reactor, self.parse(*common, "--redis=redis://127.0.0.1:1/0", "--prefix=p1"))
        self.addCleanup(first.unlock)
        for redis in ["--redis=redis://127.0.0.1:1/0", "--redis=redis://127.0.0.1:1/1"]:
            error = self.assertRaises(
                ConfigurationError, build, reactor, self.parse(*common, redis, "--prefix=p2")
            )
            self.assertEqual(
                str(error),
                f"--data-dir {os.path.abspath(data)} is in use by another harbour hub"
                " (its lock harbour.lock is held)",
            )
        self.assertRaises(ConfigurationError, build, reactor, self.parse(*common))
        worker = self.parse(
            *common, "--role=worker", "--hub=tcp:127.0.0.1:1", "--redis=redis://127.0.0.1:1/0"
        )
        self.assertEqual(build(reactor, worker).locks, [])
        first.unlock()
        second = build(reactor, self.parse(*common, "--redis=redis://127.0.0.1:1/0"))
        self.addCleanup(second.unlock)

    def test_lockLetGoAtStop(self) -> None:
        """
        A stopped daemon lets go of its data directory's lock.
        """
        data = Path(self.mktemp())
        data.mkdir()
        root = HarbourService(MemoryReactorClock())
        root.locks.append(lock_data_dir(data))
        root.startService()
        self.successResultOf(root.stopService())
        self.assertEqual(root.locks, [])
        self.addCleanup(os.close, lock_data_dir(data))

    def test_builtNeverStartedLetsGo(self) -> None:
        """
        A daemon made but never started lets go of its data directory's
        lock when it is stopped.
        """
        data = self.mktemp()
        reactor: Any = MemoryReactorClock()
        hub = build(reactor, self.parse(f"--data-dir={data}", "--redis=redis://127.0.0.1:1/0"))
        self.addCleanup(hub.unlock)
        self.successResultOf(hub.stopService())
        self.assertEqual(hub.locks, [])
        self.addCleanup(os.close, lock_data_dir(Path(data)))

    def test_failedBuildLetsGo(self) -> None:
        """
        A hub that cannot be made once its data directory is locked (its
        embedded Redis's directory unusable, its token file unusable) lets
        go of the lock: no descriptor of it is left open, and another hub
        may take the directory.
        """
        data = Path(self.mktemp()).absolute()
        data.mkdir()
        a_file = Path(self.mktemp())
        a_file.write_text("")
        reactor: Any = MemoryReactorClock()
        (data / "redis").write_text("")
        for args in [[], ["--redis=redis://127.0.0.1:1/0", f"--token-file={a_file}/amp.token"]]:
            self.assertRaises(ConfigurationError, build, reactor, self.parse(f"--data-dir={data}", *args))
            self.assertEqual(lock_descriptors(data), 0)
        self.addCleanup(os.close, lock_data_dir(data))

    def test_embeddedRedisDirectoryUnusable(self) -> None:
        """
        A hub that cannot make or write its embedded Redis's directory (here
        a file stands in its place, which no user can write into) is
        refused as it is made (before twistd forks), in one line.
        """
        data = Path(self.mktemp())
        data.mkdir()
        (data / "redis").write_text("")
        error = self.assertRaises(
            ConfigurationError, build, MemoryReactorClock(), self.parse(f"--data-dir={data}")
        )
        self.assertEqual(
            str(error), f"cannot use {data.absolute() / 'redis'} for the embedded Redis: File exists"
        )

    def test_dataDirCannotBeMade(self) -> None:
        """
        A data directory that cannot be made (here under a file) is one
        line naming it.
        """
        a_file = Path(self.mktemp())
        a_file.write_text("")
        error = self.assertRaises(
            ConfigurationError, build, MemoryReactorClock(), self.parse(f"--data-dir={a_file}/sub")
        )
        self.assertEqual(str(error), f"cannot create --data-dir {a_file.absolute()}/sub: Not a directory")

    def test_pathsAbsolute(self) -> None:
        """
        Directories and files named relative are taken from the directory
        harbour is started in, before twistd changes to its C{--rundir}:
        the lock, the embedded Redis's directory and the token, made
        before, and the configuration and tables, read after, are in the
        one directory named.  The same holds for C{harbour.tac}'s
        variables.
        """
        started, rundir = Path(self.mktemp()).absolute(), Path(self.mktemp()).absolute()
        for directory in (started / "config", started / "data", rundir):
            directory.mkdir(parents=True)
        (started / "password").write_text("secret\n")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(started)
        args = [
            "--config-dir=config",
            "--data-dir=data",
            "--token-file=amp.token",
            "--redis=redis://127.0.0.1:1/0",
            "--redis-password-file=password",
        ]
        options = Options()
        options.parseOptions(args)
        environ = {
            "HARBOUR_" + name[2:].upper().replace("-", "_"): value
            for name, ignored, value in (arg.partition("=") for arg in args)
        }
        from_environment = Options()
        from_environment.parseOptions(options_from_environment(environ))
        for parsed in (options, from_environment):
            self.assertEqual(
                [parsed[name] for name in ("config-dir", "data-dir", "token-file", "redis-password-file")],
                [str(started / name) for name in ("config", "data", "amp.token", "password")],
            )
        embedded = Options()
        embedded.parseOptions(["--config-dir=config", "--data-dir=data"])
        self.assertEqual(embedded["token-file"], str(started / "data" / "amp.token"))
        os.chdir(rundir)
        reactor: Any = MemoryReactorClock()
        hub = build(reactor, embedded)
        self.addCleanup(hub.unlock)
        self.assertEqual(hub.getServiceNamed("config").directory, started / "config")
        self.assertEqual(hub.getServiceNamed("tables").data_dir, started / "data")
        self.assertEqual(
            sorted(path.name for path in (started / "data").iterdir()), ["amp.token", "harbour.lock", "redis"]
        )
        self.assertEqual(list(rundir.iterdir()), [])

    def test_version(self) -> None:
        """
        C{twistd harbour --version} says harbour's version (and Twisted's)
        rather than only Twisted's, and exits 0.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        exited = self.assertRaises(SystemExit, self.parse, "--version")
        self.assertEqual(exited.code, 0)
        self.assertEqual(out.getvalue(), f"harbour {__version__} (Twisted {copyright.version})\n")

    def test_environment(self) -> None:
        """
        C{HARBOUR_*} variables become options for C{harbour.tac}.
        """
        args = options_from_environment({"HARBOUR_DATA_DIR": "/d", "HARBOUR_TOKEN_FILE": "/t", "OTHER": "x"})
        self.assertEqual(sorted(args), ["--data-dir=/d", "--token-file=/t"])


def lock_descriptors(data_dir: Path) -> int:
    """
    @return: How many of this process's file descriptors are open on
        C{data_dir}'s lock file.
    """
    lock = data_dir / DATA_DIR_LOCK
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # the descriptor of the listing itself, closed since
        count += target == str(lock)
    return count


class Child(Service):
    """
    A service whose stop completes when the test says so.
    """

    def __init__(self, name: str, log: list) -> None:
        self.setName(name)
        self.log = log
        self.stopping: Deferred | None = None

    def startService(self) -> None:
        super().startService()
        self.log.append(("start", self.name))

    def stopService(self) -> Deferred:
        super().stopService()
        self.log.append(("stop", self.name))
        self.stopping = Deferred()
        return self.stopping

    def stopped(self) -> None:
        """
        Finish the stop in progress.
        """
        if self.stopping is None:
            raise RuntimeError(f"{self.name} is not stopping")
        self.stopping.callback(None)


class Broken(Service):
    """
    A service that raises as it starts, and as it stops.
    """

    def __init__(self, name: str, error: Exception, privileged: bool = False) -> None:
        self.setName(name)
        self.error = error
        self.privileged = privileged

    def privilegedStartService(self) -> None:
        if self.privileged:
            raise self.error

    def startService(self) -> None:
        super().startService()
        raise self.error

    def stopService(self) -> None:
        super().stopService()
        raise RuntimeError("half started")


class Late(Service):
    """
    A service whose start completes when the test says so.
    """

    def __init__(self, name: str) -> None:
        self.setName(name)
        self.starting: Deferred = Deferred()

    def startService(self) -> Deferred:
        super().startService()
        return self.starting


class HarbourServiceTests(SynchronousTestCase):
    """
    Tests for the root service.
    """

    def test_stopInReverseOneAtATime(self) -> None:
        """
        Children start in order and stop in reverse, each only after the
        previous one finished stopping; the root's stop waits for all.
        """
        log: list = []
        root = HarbourService(MemoryReactorClock())
        children = [Child(name, log) for name in ["store", "bus", "amp"]]
        for child in children:
            child.setServiceParent(root)
        root.startService()
        stopped = root.stopService()
        self.assertEqual(log, [("start", "store"), ("start", "bus"), ("start", "amp"), ("stop", "amp")])
        children[2].stopped()
        self.assertEqual(log[-1], ("stop", "bus"))
        children[1].stopped()
        self.assertNoResult(stopped)
        children[0].stopped()
        self.successResultOf(stopped)

    def test_childRaisesOnStart(self) -> None:
        """
        A child that raises as it starts is fatal: the error is logged
        once, naming it, the children after it are not started, the
        reactor is stopped once it runs, and the root's stop stops those
        that started, even past one whose stop fails; the process is to
        exit 1.
        """
        log: list = []
        reactor = MemoryReactorClock()
        root = HarbourService(reactor)
        store = Child("store", log)
        store.setServiceParent(root)
        Broken("tables", ValueError("no threads")).setServiceParent(root)
        Child("amp", log).setServiceParent(root)
        logged = capture_log(self)
        root.startService()
        self.assertEqual(log, [("start", "store")])
        cannot = [line for line in logged if "harbour cannot run" in line]
        self.assertEqual(cannot, ["harbour cannot run: tables: no threads"])
        self.assertEqual(len(reactor.whenRunningHooks), 1)
        stopped = root.stopService()
        store.stopped()
        self.successResultOf(stopped)
        self.assertEqual(log, [("start", "store"), ("stop", "store")])
        self.assertIn("tables did not stop cleanly", "\n".join(logged))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        exits: list[int] = []
        exit_if_failed(root, exits.append)
        self.assertEqual(exits, [1])

    def test_childFailsLater(self) -> None:
        """
        A child whose start fails later (its Deferred) is fatal as well,
        and only the first failure is the cause told: the others that
        follow from it are not.
        """
        reactor = MemoryReactorClock()
        reactor.running = True
        root = HarbourService(reactor)
        starts = [Late("work"), Late("tables")]
        for child in starts:
            child.setServiceParent(root)
        logged = capture_log(self)
        root.startService()
        self.assertFalse(reactor.hasStopped)
        starts[0].starting.errback(ConfigurationError("store gone"))
        starts[1].starting.errback(ConfigurationError("store gone too"))
        cannot = [line for line in logged if "harbour cannot run" in line]
        self.assertEqual(cannot, ["harbour cannot run: work: store gone"])
        self.assertTrue(reactor.hasStopped)

    def test_startedExitsZero(self) -> None:
        """
        A daemon that started is left to exit as twistd does.
        """
        root = HarbourService(MemoryReactorClock())
        Child("store", []).setServiceParent(root)
        root.startService()
        exits: list[int] = []
        exit_if_failed(root, exits.append)
        self.assertEqual(exits, [])

    def test_cannotListen(self) -> None:
        """
        A child that cannot listen (in C{privilegedStartService}) stops
        start-up with one clear line and L{StartupFailed} (an L{Exception},
        which twistd reports to a launcher waiting for a daemon to start,
        and for which it removes its pid file), after the ports of those
        before it are closed; no child starts.
        """
        log: list = []
        root = HarbourService(MemoryReactorClock())
        listener = Child("sim", log)
        listener.setServiceParent(root)
        Broken(
            "amp", ConfigurationError("cannot listen on tcp:7750: in use"), privileged=True
        ).setServiceParent(root)
        logged = capture_log(self)
        with self.assertRaises(StartupFailed) as raised:
            root.privilegedStartService()
        self.assertEqual(str(raised.exception), "amp: cannot listen on tcp:7750: in use")
        self.assertEqual(log, [("stop", "sim")])
        cannot = [line for line in logged if "harbour cannot run" in line]
        self.assertEqual(cannot, ["harbour cannot run: amp: cannot listen on tcp:7750: in use"])

    def test_cannotListenReasonFirst(self) -> None:
        """
        L{StartupFailed} says why a part cannot listen first and then on
        what, so that the 100 bytes of it twistd tells a launcher keep the
        reason; the log line keeps Twisted's words.
        """
        root = HarbourService(MemoryReactorClock())
        endpoint = "tcp:27750:interface=127.0.0.1"
        broken = Broken(
            "amp",
            ConfigurationError(
                f"cannot listen on {endpoint}: Couldn't listen on 127.0.0.1:27750: "
                "[Errno 98] Address already in use."
            ),
            privileged=True,
        )
        broken.endpoint = endpoint  # type: ignore[attr-defined]
        broken.setServiceParent(root)
        logged = capture_log(self)
        with self.assertRaises(StartupFailed) as raised:
            root.privilegedStartService()
        self.assertEqual(str(raised.exception), f"amp: Address already in use, on {endpoint}")
        told = UnixApplicationRunner({})._formatChildException(raised.exception)
        self.assertTrue(told.endswith(endpoint.encode("ascii")), told)
        self.assertIn("Couldn't listen on 127.0.0.1:27750", "\n".join(logged))

    def test_status(self) -> None:
        """
        The status document has an entry per child that reports one.
        """
        from harbour.bus import Bus

        root = HarbourService(MemoryReactorClock())
        bus = Bus()
        bus.setName("bus")
        bus.setServiceParent(root)
        Child("quiet", []).setServiceParent(root)
        status = self.successResultOf(root.status())
        self.assertEqual(list(status["services"]), ["bus"])
        self.assertIn("pid", status)


class JSONLogTests(SynchronousTestCase):
    """
    Structured fields reach JSON log output.
    """

    def test_fields(self) -> None:
        """
        A harbour log event written as JSON keeps its C{service} and
        C{topic} fields.
        """
        out = io.StringIO()
        log = Logger(observer=jsonFileLogObserver(out, recordSeparator=""))
        log.info("publishing {topic}", topic="work", service="config")
        event = json.loads(out.getvalue())
        self.assertEqual((event["service"], event["topic"]), ("config", "work"))


class Immediately:
    """
    A reactor whose calls from other threads (or signal handlers) run at
    once.
    """

    def callFromThread(self, f: Any, *args: Any) -> None:
        """
        Call C{f} now.
        """
        f(*args)


class HangupTests(SynchronousTestCase):
    """
    Tests for L{HangupService}: what SIGHUP does.
    """

    def setUp(self) -> None:
        self.reactor: Any = Immediately()
        self.handlers: dict[int, Any] = {signal.SIGHUP: "before"}
        self.reloads: list[Deferred[tuple[list[str], list[str]]]] = []

    def install(self, signum: int, handler: Any) -> Any:
        previous, self.handlers[signum] = self.handlers.get(signum), handler
        return previous

    def reload(self) -> Deferred[tuple[list[str], list[str]]]:
        d: Deferred[tuple[list[str], list[str]]] = Deferred()
        self.reloads.append(d)
        return d

    def logging_to_file(self) -> tuple[Path, LogFile]:
        """
        Log to a file, as twistd's C{--logfile} does, until the test ends.

        @return: The file's directory, and the file (C{harbour.log}).
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        log_file = LogFile("harbour.log", str(directory))
        self.addCleanup(log_file.close)
        observer = textFileLogObserver(cast(IO[Any], log_file))
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return directory, log_file

    def test_handledWhileRunning(self) -> None:
        """
        The service handles SIGHUP while it runs, and puts the handler it
        found back when it stops.
        """
        service = HangupService(self.reactor, self.reload, list, self.install)
        service.startService()
        self.assertEqual(self.handlers[signal.SIGHUP], service._received)
        service.stopService()
        self.assertEqual(self.handlers[signal.SIGHUP], "before")

    def test_reopensThenReloads(self) -> None:
        """
        SIGHUP reopens twistd's log file at its path (moved away by
        logrotate, it starts a new one there, where the next lines go),
        then reads the configuration again, logging what came of it.
        """
        directory, log_file = self.logging_to_file()
        self.assertIn(log_file, twistd_log_files())
        logged = capture_log(self)
        service = HangupService(self.reactor, self.reload, lambda: [log_file], self.install)
        service.startService()
        os.rename(directory / "harbour.log", directory / "harbour.log.1")
        self.handlers[signal.SIGHUP](signal.SIGHUP, None)
        self.assertIn("Received SIGHUP: 1 log file(s) reopened", (directory / "harbour.log").read_text())
        self.assertEqual(len(self.reloads), 1)
        self.reloads[0].callback((["work"], []))
        self.assertIn("configuration reloaded on SIGHUP: 1 topic(s) republished, 0 problem(s)", logged)

    def test_reopenFails(self) -> None:
        """
        A log file that cannot be opened again at its path (here its
        directory, moved away, has a file in its place) keeps the file it
        had, where the error and what follows are written; a later SIGHUP,
        the directory back, starts the new file, and twistd's rotation
        (SIGUSR1) still works.  A log left closed is opened again.
        """
        directory, log_file = self.logging_to_file()
        service = HangupService(self.reactor, None, lambda: [log_file], self.install)
        away = directory.with_name("away")
        directory.rename(away)
        directory.write_text("")
        service.hangup()
        Logger().info("still logging")
        written = (away / "harbour.log").read_text()
        self.assertIn(f"cannot reopen the log file {directory / 'harbour.log'}: ", written)
        self.assertIn("Received SIGHUP: 0 log file(s) reopened", written)
        self.assertIn("still logging", written)
        directory.unlink()
        directory.mkdir()
        service.hangup()
        self.assertIn("Received SIGHUP: 1 log file(s) reopened", (directory / "harbour.log").read_text())
        log_file.rotate()
        Logger().info("rotated")
        self.assertIn("rotated", (directory / "harbour.log").read_text())
        self.assertNotIn("rotated", (away / "harbour.log").read_text())
        # As Twisted's own reopen, or a rotation, leaves it when the new
        # file cannot be opened: SIGHUP brings the log back.
        log_file.close()
        service.hangup()
        Logger().info("back")
        self.assertIn("back", (directory / "harbour.log").read_text())

    def test_workerReopensOnly(self) -> None:
        """
        A worker, whose configuration is its hub's, only reopens its log
        files on SIGHUP.
        """
        logged = capture_log(self)
        service = HangupService(self.reactor, None, list, self.install)
        self.assertIsNone(service.hangup())
        self.assertEqual(logged, ["Received SIGHUP: 0 log file(s) reopened"])

    def test_hubAndWorkerHandleHangup(self) -> None:
        """
        Hubs and workers alike have a service handling SIGHUP; a hub's
        reloads its configuration.
        """
        token = Path(self.mktemp())
        token.write_text("secret\n")
        config = Path(self.mktemp())
        config.mkdir()
        common = ["--redis=redis://127.0.0.1:1/0", f"--token-file={token}", f"--config-dir={config}"]
        reactor: Any = MemoryReactorClock()
        hub_options, worker_options = Options(), Options()
        hub_options.parseOptions([f"--data-dir={self.mktemp()}", *common])
        worker_options.parseOptions(
            ["--role=worker", "--hub=tcp:127.0.0.1:1", f"--data-dir={self.mktemp()}", *common]
        )
        hub, worker = build(reactor, hub_options), build(reactor, worker_options)
        self.addCleanup(hub.unlock)
        self.assertIsNotNone(hub.getServiceNamed("signals").reload)
        self.assertIsNone(worker.getServiceNamed("signals").reload)
