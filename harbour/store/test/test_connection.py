"""
Tests for L{harbour.store.connection}, L{harbour.store.address} and
L{harbour.store.server} against a real redis-server started privately on
a unix socket in the test's directory.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import txredisapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessTerminated
from twisted.internet.task import Clock, deferLater
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IRedis, IStatusSource
from harbour.store.address import RedisAddress
from harbour.store.connection import RESTART_MOST, STAYED_UP, StoreService
from harbour.store.server import RedisServerProcess, find_redis_server
from harbour.store.test.test_auth import free_port
from harbour.test.helpers import capture_log, private_redis, short_directory


def logged_once(testcase: SynchronousTestCase, source: object, words: str) -> Deferred[None]:
    """
    @return: A L{Deferred} firing (in the next turn of the reactor) once
        C{source} logs an event whose text holds C{words}.
    """
    from twisted.internet import reactor

    seen: Deferred[None] = Deferred()

    def observe(event: LogEvent) -> None:
        if event.get("log_source") is source and words in formatEvent(event) and not seen.called:
            reactor.callLater(0, seen.callback, None)

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    testcase.addCleanup(globalLogPublisher.removeObserver, observer)
    return seen


class RedisAddressTests(SynchronousTestCase):
    """
    Tests for L{RedisAddress.parse}.
    """

    def test_forms(self) -> None:
        """
        TCP and unix URLs parse, with their database numbers.
        """
        self.assertEqual(RedisAddress.parse("redis://h:7000/2"), RedisAddress("h", 7000, None, 2))
        self.assertEqual(RedisAddress.parse("redis://h"), RedisAddress("h", 6379, None, 0))
        self.assertEqual(
            RedisAddress.parse("unix:///tmp/r.sock?db=3"), RedisAddress(path="/tmp/r.sock", db=3)
        )

    def test_ipv6(self) -> None:
        """
        A host that is an IPv6 literal is shown in brackets again, as the
        URL wrote it.
        """
        address = RedisAddress.parse("redis://[::1]:7000/1")
        self.assertEqual((address.host, str(address)), ("::1", "redis://[::1]:7000/1"))

    def test_bad(self) -> None:
        """
        Anything else is a configuration error naming the accepted forms,
        a URL that Python's own parser refuses and a negative database
        among them.
        """
        for url in ["http://h", "redis://h/x", "unix://", "h:6379", "redis://[::1", "redis://h:6379/-1"]:
            error = self.assertRaises(ConfigurationError, RedisAddress.parse, url)
            self.assertIn("redis://host:port/db", str(error))

    def test_noHost(self) -> None:
        """
        A C{redis://} or C{rediss://} URL naming no host (a host variable
        left empty, say) is an error, not this host's port 6379.
        """
        for url in ["redis://", "redis://:6379/0", "redis://:pw@:6379", "rediss://:6379?ca=c.pem"]:
            error = self.assertRaises(ConfigurationError, RedisAddress.parse, url)
            self.assertIn("names no host", str(error))
            self.assertNotIn("pw", str(error))


class BeforeStartTests(SynchronousTestCase):
    """
    Commands issued before the store has first connected.
    """

    def test_embeddedStartingIsNoOutage(self) -> None:
        """
        While the embedded redis-server has not answered yet, a command
        fails with L{StoreUnavailable} saying so, and no outage is logged
        or counted: every start of the daemon used to log one (and its end
        0.0 s later), for the status page's first reading.
        """
        store = StoreService.from_config(Clock(), None, Path(self.mktemp()), "t")
        failure = self.failureResultOf(store.execute("PING"), StoreUnavailable)
        self.assertEqual(str(failure.value), "the embedded redis-server is starting")
        self.assertEqual(store.outages, 0)

    def test_externalNotYetConnectedIsNoOutage(self) -> None:
        """
        Before an external Redis has first been connected, a command fails
        with L{StoreUnavailable} saying so, and no outage is logged or
        counted: a Status read as the daemon started counted one on every
        healthy start (and logged its end 0.0 s later).
        """
        store = StoreService.from_config(Clock(), "redis://127.0.0.1:1/0", Path(self.mktemp()), "t")
        failure = self.failureResultOf(store.execute("PING"), StoreUnavailable)
        self.assertEqual(str(failure.value), "not connected to Redis at redis://127.0.0.1:1/0 yet")
        self.assertEqual(store.outages, 0)


class CrashingServer:
    """
    Stands for an embedded redis-server: each start succeeds at once, and
    the test ends the server when it likes.

    @ivar starts: How many times it was started.
    """

    def __init__(self) -> None:
        self.starts = 0
        self.ended: Deferred[BaseException] = Deferred()

    def start(self) -> Deferred[None]:
        """
        Start at once.
        """
        self.starts += 1
        self.ended = Deferred()
        return succeed(None)


class RestartTests(SynchronousTestCase):
    """
    How soon L{StoreService} restarts an embedded server that ended.
    """

    def test_crashLoopBacksOff(self) -> None:
        """
        A server that ends soon after each start is restarted after
        C{restart_delay}, then twice as long each time up to
        L{RESTART_MOST}; once one has stayed up L{STAYED_UP} seconds, its
        end is restarted after C{restart_delay} again.  Every restart
        waited C{restart_delay}: a server that dies at each start was
        restarted, and logged, every second forever.
        """
        clock = Clock()
        server = CrashingServer()
        store = StoreService(clock, None, cast(RedisServerProcess, server))
        store.running = True
        self.successResultOf(store._start_server())
        waits = []
        for ignored in range(9):
            clock.advance(0.2)
            server.ended.callback(ProcessTerminated(signal=9))
            [restart] = clock.getDelayedCalls()
            waits.append(round(restart.getTime() - clock.seconds(), 6))
            clock.advance(waits[-1])
        self.assertEqual(waits, [1, 2, 4, 8, 16, 32, RESTART_MOST, RESTART_MOST, RESTART_MOST])
        self.assertEqual(server.starts, 10)
        clock.advance(STAYED_UP)
        server.ended.callback(ProcessTerminated(signal=9))
        [restart] = clock.getDelayedCalls()
        self.assertEqual(round(restart.getTime() - clock.seconds(), 6), 1)
        self.flushLoggedErrors()


class StoreTests(TestCase):
    """
    L{StoreService} with its embedded redis-server.
    """

    # trial waits for the Deferred a setUp returns.
    def setUp(self) -> Deferred[None]:  # type: ignore[override]
        from twisted.internet import reactor

        self.reactor = reactor
        self.data = short_directory(self)
        self.store = StoreService.from_config(reactor, None, self.data, "test")
        self.store.reply_timeout = 2.0
        self.store.startService()
        self.addCleanup(self.stop)
        return self.store.when_ready()

    def stop(self) -> Deferred[None] | None:
        if self.store.running:
            return self.store.stopService()
        return None

    @property
    def server(self) -> RedisServerProcess:
        """
        The store's embedded server.
        """
        server = self.store.server
        assert server is not None
        return server

    async def test_interface(self) -> None:
        """
        The store provides L{IRedis} and L{IStatusSource}.
        """
        verifyObject(IRedis, self.store)
        verifyObject(IStatusSource, self.store)
        self.assertTrue(self.store.status()["connected"])

    async def test_commands(self) -> None:
        """
        Commands and Lua scripts run; replies are strings, not converted
        numbers; keys carry the prefix, a hash tag.
        """
        key = self.store.key("n")
        self.assertEqual(key, "{test}:n")
        await self.store.execute("SET", key, "0007")
        self.assertEqual(await self.store.execute("GET", key), "0007")
        await self.store.execute("SET", key, "7")
        script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
        self.assertEqual(await self.store.eval(script, [key], [3]), 10)

    async def test_scriptFlushed(self) -> None:
        """
        A script Redis has forgotten (C{SCRIPT FLUSH}, as after a restart
        or a failover) is loaded again, and the same call answers.
        """
        key = self.store.key("n")
        script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
        self.assertEqual(await self.store.eval(script, [key], [3]), 3)
        await self.store.execute("SCRIPT", "FLUSH")
        self.assertEqual(await self.store.eval(script, [key], [4]), 7)
        self.assertEqual(self.store.status()["outages"], 0)

    async def test_privateSocketOnly(self) -> None:
        """
        The embedded server listens on a unix socket in the data directory
        and on no TCP port.
        """
        self.assertTrue(self.server.socket.exists())
        self.assertEqual(await self.store.execute("CONFIG", "GET", "port"), ["port", "0"])
        self.assertEqual((await self.store.execute("CONFIG", "GET", "appendonly"))[1], "yes")

    async def test_redisGoneFailsFast(self) -> None:
        """
        While Redis is away, commands fail with L{StoreUnavailable} instead
        of hanging; the embedded server is restarted and the pool
        reconnects by itself.
        """
        server = self.server
        first = server.pid
        self.store.restart_delay = 0.1
        server.kill()
        await server.ended
        with self.assertRaises(StoreUnavailable):
            await self.store.execute("PING")
        for _attempt in range(400):
            if self.store.connected and server.pid not in (None, first):
                break
            await deferLater(self.reactor, 0.05)
        self.assertEqual(await self.store.execute("PING"), "PONG")
        self.flushLoggedErrors()

    async def test_restartTriedAgain(self) -> None:
        """
        An embedded server that cannot start again at once (here its
        binary exits at once) is tried again, later and later, until it
        starts, keeping the data directory's lock meanwhile; the store then
        answers again.
        """
        server = self.server
        binary = server.executable
        self.store.restart_delay = 0.1
        failed: Deferred[float] = Deferred()
        restart_failed = self.store._restart_failed

        def noted(failure: Failure, delay: float) -> None:
            restart_failed(failure, delay)
            if not failed.called:
                failed.callback(delay)

        self.store._restart_failed = noted  # type: ignore[method-assign]
        server.executable = "/bin/false"
        server.kill()
        self.assertEqual(await failed, 0.2)
        # The directory is still this harbour's meanwhile.
        with open(server.directory / "harbour.lock", "rb") as other, self.assertRaises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        server.executable = binary
        for _attempt in range(400):
            if self.store.connected:
                break
            await deferLater(self.reactor, 0.05)
        self.assertEqual(await self.store.execute("PING"), "PONG")
        self.flushLoggedErrors()

    async def test_errorReplyIsOutage(self) -> None:
        """
        An error reply (here C{OOM}, past C{maxmemory}) fails as
        L{StoreUnavailable} naming the reply, from a command or a script; an
        outage is counted once however many commands fail in it, and a
        command that succeeds at once after does not end it (over only once
        nothing has failed for a while: see L{harbour.store.outages}).
        """
        key = self.store.key("k")
        self.addCleanup(self.store.execute, "CONFIG", "SET", "maxmemory", "0")
        await self.store.execute("CONFIG", "SET", "maxmemory", "1")
        for _attempt in range(3):
            with self.assertRaises(StoreUnavailable) as caught:
                await self.store.execute("SET", key, "1")
            self.assertIn("OOM", str(caught.exception))
        with self.assertRaises(StoreUnavailable):
            await self.store.eval("return redis.call('SET', KEYS[1], '1')", [key], [])
        status = self.store.status()
        self.assertEqual(status["outages"], 1)
        self.assertIn("OOM", status["last_error"])
        self.assertIsNotNone(status["outage_since"])
        await self.store.execute("CONFIG", "SET", "maxmemory", "0")
        await self.store.execute("SET", key, "1")
        self.assertEqual(self.store.status()["outages"], 1)
        self.assertIsNotNone(self.store.status()["outage_since"])

    async def test_unencodableIsNoOutage(self) -> None:
        """
        A text that cannot be encoded (a lone surrogate, as a file name
        read with C{surrogateescape} holds) fails with txredisapi's
        C{InvalidData}, the bug it is, and is no outage: as one, it was
        retried forever.
        """
        with self.assertRaises(txredisapi.InvalidData):
            await self.store.execute("SET", self.store.key("k"), "/data/\udcff/x")
        self.assertEqual(self.store.status()["outages"], 0)
        self.assertEqual(await self.store.execute("PING"), "PONG")

    async def test_stopRemovesServer(self) -> None:
        """
        Stopping the store stops redis-server and waits until it is gone.
        """
        pid = self.server.pid
        await self.store.stopService()
        self.assertRaises(ProcessLookupError, os.kill, pid, 0)


class BusyStartTests(TestCase):
    """
    A store starting on a Redis that answers its login with an error that
    passes.
    """

    async def test_busyAtStart(self) -> None:
        """
        A Redis running a script past C{lua-time-limit} answers C{BUSY} to
        the store's login: an outage, counted once, that the pool waits out,
        ready once the script is killed.  The store stopped for good, and
        the daemon with it.
        """
        from twisted.internet import reactor

        redis = await private_redis(self)
        assert redis.address is not None and redis.address.path is not None
        path = redis.address.path
        script: Any = await txredisapi.UnixConnection(path, reconnect=False)
        self.addCleanup(script.disconnect)
        side: Any = await txredisapi.UnixConnection(path, reconnect=False)
        self.addCleanup(side.disconnect)
        await side.execute_command("CONFIG", "SET", "lua-time-limit", "10")
        running = script.eval("while true do end", [], [])
        running.addErrback(lambda failure: None)
        # Bounded: 500 tries 20 ms apart, ten seconds in all.
        for ignored in range(500):
            try:
                await side.ping()
            except txredisapi.ResponseError as e:
                self.assertIn("BUSY", str(e))
                break
            await deferLater(reactor, 0.02)
        store = StoreService.from_config(reactor, f"unix://{path}?db=0", short_directory(self), "busy")
        refused = logged_once(self, store, "refused a login")
        store.startService()
        self.addCleanup(store.stopService)
        await refused
        await side.execute_command("SCRIPT", "KILL")
        await store.when_ready()
        self.assertEqual(await store.execute("PING"), "PONG")
        self.assertEqual(store.outages, 1)
        self.assertIn("BUSY", store.last_error)


class ExternalStartTests(TestCase):
    """
    A store starting on an external Redis.
    """

    async def test_healthyStartNoOutage(self) -> None:
        """
        A command issued as the store starts (as a Status reading at the
        daemon's start does) fails, and the store, once ready, has known no
        outage.
        """
        from twisted.internet import reactor

        redis = await private_redis(self)
        assert redis.address is not None
        logged = capture_log(self)
        store = StoreService.from_config(
            reactor, f"unix://{redis.address.path}?db=0", short_directory(self), "h"
        )
        store.startService()
        self.addCleanup(store.stopService)
        with self.assertRaises(StoreUnavailable):
            await store.execute("PING")
        await store.when_ready()
        self.assertEqual(await store.execute("PING"), "PONG")
        self.assertEqual((store.outages, store.status()["outage_since"]), (0, None))
        self.assertEqual([line for line in logged if "outage" in line], [])

    async def test_unreachableIsAnOutage(self) -> None:
        """
        An external Redis that cannot be reached as the store starts is an
        outage, logged and counted once, though no command has been issued:
        nothing else says it is down.
        """
        from twisted.internet import reactor

        store = StoreService.from_config(
            reactor, f"redis://127.0.0.1:{free_port()}/0", short_directory(self), "u"
        )
        logged = capture_log(self)
        outage = logged_once(self, store, "store outage")
        outage.addTimeout(10, reactor)
        store.startService()
        self.addCleanup(store.stopService)
        await outage
        self.assertEqual(store.outages, 1)
        self.assertIn("cannot connect to Redis at redis://127.0.0.1:", store.last_error)
        self.assertEqual(len([line for line in logged if "store outage" in line]), 1)
        self.assertFalse(store.connected)


class ServerProcessTests(TestCase):
    """
    Tests for L{RedisServerProcess}'s start-up rules.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.directory = short_directory(self) / "redis"

    async def orphan(self, directory: Path) -> subprocess.Popen[bytes]:
        """
        Start a redis-server in C{directory} as an embedded one is started,
        but not as this test's child in Twisted's eyes (as one left behind
        by a killed harbour is not), killed after the test.

        @return: The process, once it has written its pid file.
        """
        directory.mkdir(parents=True, exist_ok=True)
        orphan = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                "0",
                "--unixsocket",
                str(directory / "redis.sock"),
                "--pidfile",
                str(directory / "redis.pid"),
                "--dir",
                str(directory),
                "--daemonize",
                "no",
                "--logfile",
                str(directory / "orphan.log"),
            ],
        )

        def kill() -> None:
            if orphan.poll() is None:
                orphan.kill()
                orphan.wait()

        self.addCleanup(kill)
        # Bounded: 500 looks 20 ms apart, ten seconds in all.
        for ignored in range(500):
            if (directory / "redis.pid").exists():
                return orphan
            if orphan.poll() is not None:
                self.fail("the orphan redis-server did not start")
            await deferLater(self.reactor, 0.02)
        self.fail("the orphan redis-server wrote no pid file within 10 s")

    async def test_staleServerReplaced(self) -> None:
        """
        A redis-server left behind by a killed harbour (found through its
        pid file) is stopped before a new one starts: never two at once.
        """
        orphan = await self.orphan(self.directory)
        server = RedisServerProcess(self.reactor, self.directory)
        await server.start()
        self.addCleanup(server.stop)
        self.assertIsNotNone(orphan.wait(timeout=1))
        self.assertNotEqual(server.pid, orphan.pid)

    async def test_staleServerFoundByAnotherPath(self) -> None:
        """
        A redis-server left behind is stopped though the directory is now
        reached by another path (here, a link to it): its working
        directory tells, not the path its command line or title names.
        """
        real = self.directory.parent / "real"
        orphan = await self.orphan(real)
        self.directory.symlink_to(real)
        server = RedisServerProcess(self.reactor, self.directory)
        await server.start()
        self.addCleanup(server.stop)
        self.assertIsNotNone(orphan.wait(timeout=1))
        self.assertNotEqual(server.pid, orphan.pid)

    async def test_unrelatedServerSpared(self) -> None:
        """
        A pid file naming a redis-server that listens on another socket
        (the pid given to another harbour's server, or a system one, since
        the harbour that wrote the file went) leaves that server alone.
        """
        other = await self.orphan(self.directory.parent / "other")
        self.directory.mkdir()
        (self.directory / "redis.pid").write_text(f"{other.pid}\n")
        server = RedisServerProcess(self.reactor, self.directory)
        await server.start()
        self.addCleanup(server.stop)
        self.assertIsNone(other.poll())
        self.assertNotEqual(server.pid, other.pid)

    async def test_lockedDirectory(self) -> None:
        """
        A second server for a directory in use is refused, clearly.
        """
        first = RedisServerProcess(self.reactor, self.directory)
        await first.start()
        self.addCleanup(first.stop)
        second = RedisServerProcess(self.reactor, self.directory)
        with self.assertRaises(ConfigurationError) as caught:
            await second.start()
        self.assertIn("in use by another harbour", str(caught.exception))

    async def test_directoryUnusable(self) -> None:
        """
        A directory that cannot be made or locked is refused in words
        naming it, not with the OSError's traceback.
        """
        self.directory.write_text("")
        server = RedisServerProcess(self.reactor, self.directory / "redis")
        with self.assertRaises(ConfigurationError) as caught:
            await server.start()
        self.assertEqual(
            str(caught.exception), f"cannot use {self.directory / 'redis'} for redis-server: Not a directory"
        )

    async def test_socketPathTooLong(self) -> None:
        """
        A socket path longer than unix sockets allow is refused before
        anything starts, with advice.
        """
        server = RedisServerProcess(self.reactor, self.directory / ("x" * 100))
        with self.assertRaises(ConfigurationError) as caught:
            await server.start()
        self.assertIn("use a shorter --data-dir", str(caught.exception))

    async def test_cannotStart(self) -> None:
        """
        A server that exits at start fails with its own last words.
        """
        server = RedisServerProcess(self.reactor, self.directory)
        server.executable = "/bin/false"
        with self.assertRaises(ConfigurationError):
            await server.start()


class RecountAtStartTests(TestCase):
    """
    A hub's store sets the task counts to what the tasks' listings hold
    before it is ready; a worker's leaves them.
    """

    async def test_hubRecounts(self) -> None:
        """
        Counts left wrong (as by a script that failed halfway) are right
        once a hub's store is ready, and the log says which were wrong; a
        worker's store, started first, changed nothing.
        """
        from twisted.internet import reactor

        from harbour.oasis.requests import ReportURL
        from harbour.store.tasks import RedisTaskStore

        redis = await private_redis(self)
        assert redis.address is not None
        request = ReportURL(
            "http://oasis/a",
            "a/1.zip",
            "a",
            datetime(2025, 1, 1, tzinfo=UTC),
            datetime(2025, 1, 2, tzinfo=UTC),
        )
        await RedisTaskStore(redis, Clock(), redis.prefix).create([request])
        await redis.execute("HINCRBY", redis.prefix + "c:a", "pending", 2)
        logged = capture_log(self)
        for hub in (False, True):
            store = StoreService.from_config(
                reactor, f"unix://{redis.address.path}?db=0", short_directory(self), "t", hub=hub
            )
            store.startService()
            self.addCleanup(store.stopService)
            await store.when_ready()
            counted = await redis.execute("HGET", redis.prefix + "c:a", "pending")
            self.assertEqual(counted, "1" if hub else "3")
        self.assertEqual(
            [line for line in logged if "recounted" in line],
            ["task or parse counts did not follow the tasks; recounted: a: pending 1 (was 3)"],
        )
