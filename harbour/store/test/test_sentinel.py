"""
Tests for finding the Redis master through Sentinels (C{redis+sentinel://})
and following it through a failover, against a real master, replica and
Sentinel started privately on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import txredisapi
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.bus import Bus
from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.store.address import RedisAddress
from harbour.store.connection import StoreService
from harbour.store.sentinel import SentinelEndpoint, SentinelError, _command, parse_master_reply
from harbour.store.server import START_TIMEOUT, _ServerOutput, find_redis_server
from harbour.store.test.test_auth import free_port
from harbour.store.wire import StoreFactory
from harbour.test.helpers import short_directory

PASSWORD = "master-pw"

#: How long a failover may take before the test gives up: Sentinel needs a
#: few seconds to promote the replica and announce it.
FAILOVER_TIMEOUT = 45.0


class AddressTests(SynchronousTestCase):
    """
    Tests for C{redis+sentinel://} addresses.
    """

    def test_parse(self) -> None:
        """
        Several Sentinels (the port defaulting to 26379), a service and a
        database; the login is the master's.
        """
        self.assertEqual(
            RedisAddress.parse("redis+sentinel://bob:p%40w@s1:5000,s2/mymaster/3"),
            RedisAddress(
                db=3,
                username="bob",
                password="p@w",
                sentinels=(("s1", 5000), ("s2", 26379)),
                service="mymaster",
            ),
        )
        self.assertEqual(RedisAddress.parse("redis+sentinel://s1:5000/svc").db, 0)

    def test_ipv6(self) -> None:
        """
        A Sentinel at an IPv6 literal is written in brackets, with its port
        or without; the host is the address within them, as a connection
        needs it, and L{str} puts the brackets back.
        """
        address = RedisAddress.parse("redis+sentinel://[::1]:5000,[fe80::2]/svc/0")
        self.assertEqual(address.sentinels, (("::1", 5000), ("fe80::2", 26379)))
        self.assertEqual(str(address), "redis+sentinel://[::1]:5000,[fe80::2]:26379/svc/0")
        for url in (
            "redis+sentinel://[::1/svc/0",
            "redis+sentinel://[::1]x/svc/0",
            "redis+sentinel://[]/svc/0",
        ):
            self.assertRaises(ConfigurationError, RedisAddress.parse, url)

    def test_str(self) -> None:
        """
        The password is masked, as in the other URL forms.
        """
        address = RedisAddress.parse("redis+sentinel://:secret@s1:5000,s2:5001/svc/2")
        self.assertEqual(str(address), "redis+sentinel://:***@s1:5000,s2:5001/svc/2")
        self.assertNotIn("secret", repr(address))

    def test_bad(self) -> None:
        """
        A URL without a service, with a bad port or a bad database is a
        configuration error that does not quote the password.
        """
        for url in (
            "redis+sentinel://:secret@s1:5000",
            "redis+sentinel://:secret@s1:x/svc/0",
            "redis+sentinel://:secret@s1:5000/svc/x",
            "redis+sentinel://:secret@s1:5000,/svc/0",
            "redis+sentinel://:secret@s1:5000/svc/0/1",
        ):
            with self.assertRaises(ConfigurationError) as caught:
                RedisAddress.parse(url)
            self.assertNotIn("secret", str(caught.exception))

    def test_endpoint(self) -> None:
        """
        A Sentinel address connects through a L{SentinelEndpoint}.
        """
        from twisted.internet import reactor

        endpoint = RedisAddress.parse("redis+sentinel://s1:5000/svc/0").endpoint(reactor, 1.0)
        self.assertIsInstance(endpoint, SentinelEndpoint)


class ReplyTests(SynchronousTestCase):
    """
    Tests for L{parse_master_reply} and L{_command}.
    """

    def test_command(self) -> None:
        """
        A command is an array of bulk strings.
        """
        self.assertEqual(_command("SENTINEL", "x"), b"*2\r\n$8\r\nSENTINEL\r\n$1\r\nx\r\n")

    def test_master(self) -> None:
        """
        A two-element array is the master's host and port; until all of it
        arrived, the reply is incomplete.
        """
        reply = b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n"
        self.assertEqual(parse_master_reply(reply), (True, ("127.0.0.1", 6380)))
        for end in range(len(reply)):
            self.assertEqual(parse_master_reply(reply[:end]), (False, None))

    def test_unknown(self) -> None:
        """
        A null reply means the Sentinel knows no such master.
        """
        for reply in (b"*-1\r\n", b"$-1\r\n", b"_\r\n"):
            self.assertEqual(parse_master_reply(reply), (True, None))

    def test_errors(self) -> None:
        """
        An error reply, or anything but a host and port, is a
        L{SentinelError}.
        """
        for reply in (
            b"-ERR no\r\n",
            b"+OK\r\n",
            b"*2\r\n$3\r\nabc\r\n$1\r\nx\r\n",
            b"*2\r\n$2\r\nabc\r\n$1\r\n1\r\n",
        ):
            self.assertRaises(SentinelError, parse_master_reply, reply)


class PooledConnection:
    """
    One connection of a store's pool, to C{host}:C{port}.
    """

    def __init__(self, host: str, port: int) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))


class Pool:
    """
    Stands for a store's pool of connections.
    """

    def __init__(self, *connections: PooledConnection) -> None:
        self.pool = list(connections)


class ReconnectTests(SynchronousTestCase):
    """
    A store on a Sentinel's master closes its connections to anything but
    the master, for the pool to connect to the master again: when a
    Sentinel names another master, and when a connection answers that
    its server is a replica now.  (A real failover also disconnects every
    client of the old master, which hides both.)
    """

    def store(self) -> tuple[StoreService, PooledConnection, PooledConnection]:
        """
        @return: A store on a Sentinel's master, whose pool holds a
            connection to the old master, 10.0.0.1:6379, and one to the
            new, 10.0.0.2:6379.
        """
        store = StoreService.from_config(
            Clock(), "redis+sentinel://127.0.0.1:1/svc/0", Path(self.mktemp()), "t"
        )
        old, new = PooledConnection("10.0.0.1", 6379), PooledConnection("10.0.0.2", 6379)
        store._factory = cast(StoreFactory, Pool(old, new))
        return store, old, new

    def test_masterChanged(self) -> None:
        """
        A Sentinel naming another master closes the connections to others.
        """
        store, old, new = self.store()
        store._master_changed(("10.0.0.2", 6379))
        self.assertEqual((old.transport.disconnecting, new.transport.disconnecting), (True, False))

    def read_only(self, store: StoreService) -> list[Deferred[tuple[str, int]]]:
        """
        Have a connection of C{store} answer C{READONLY}; it fails as an
        outage.

        @return: The Sentinels' answers the store waits for, one per
            question it asked (a Sentinel endpoint standing for them).
        """
        questions: list[Deferred[tuple[str, int]]] = []

        class Sentinels:
            """
            Stands for the store's Sentinel endpoint.
            """

            def find_master(self) -> Deferred[tuple[str, int]]:
                """
                A question the test answers.
                """
                questions.append(Deferred())
                return questions[-1]

            def describe(self) -> str:
                """
                The old master.
                """
                return "10.0.0.1:6379"

        store._sentinel = cast(SentinelEndpoint, Sentinels())
        error = txredisapi.ResponseError("READONLY You can't write against a read only replica.")
        with self.assertRaises(StoreUnavailable):
            store._unavailable(Failure(error), 1)
        return questions

    def test_readOnlyMasterElsewhere(self) -> None:
        """
        A C{READONLY} answer (the server is a replica now) fails as an
        outage, and has the store ask the Sentinels where the master is;
        the connections to other servers are closed, for each to connect
        to the master.
        """
        store, old, new = self.store()
        [question] = self.read_only(store)
        self.assertEqual((old.transport.disconnecting, new.transport.disconnecting), (False, False))
        question.callback(("10.0.0.2", 6379))
        self.assertEqual((old.transport.disconnecting, new.transport.disconnecting), (True, False))

    def test_readOnlyMasterSame(self) -> None:
        """
        If the Sentinels name, as the master, the server that answered
        C{READONLY} (one they take a replica for), no connection is closed:
        the outage is waited out.  Each connection was closed, to log in
        again at once and meet C{READONLY} again, dozens of times a minute;
        the Sentinels are asked once at a time however many commands meet
        C{READONLY} meanwhile.
        """
        store, old, new = self.store()
        store._factory = cast(StoreFactory, Pool(old))
        [question] = self.read_only(store)
        error = txredisapi.ResponseError("READONLY You can't write against a read only replica.")
        with self.assertRaises(StoreUnavailable):
            store._unavailable(Failure(error), 2)
        question.callback(("10.0.0.1", 6379))
        self.assertFalse(old.transport.disconnecting)
        self.assertEqual(store.outages, 1)

    def test_readOnlyMasterUnknown(self) -> None:
        """
        If no Sentinel names a master, no connection is closed, and the
        Sentinels are asked again at the next C{READONLY}.
        """
        store, old, new = self.store()
        [question] = self.read_only(store)
        question.errback(ConnectError(string="no Sentinel named the master"))
        self.assertEqual((old.transport.disconnecting, new.transport.disconnecting), (False, False))
        self.assertEqual(len(self.read_only(store)), 1)


class RecordingBus(Bus):
    """
    A bus remembering the topics published on it.
    """

    topics: list[str]

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        Remember C{topic}, then publish.
        """
        self.topics.append(topic)
        return super().publish(topic, payload, retain)


async def spawn(testcase: SynchronousTestCase, directory: Path, args: list[str], wait: bool = True) -> None:
    """
    Start a redis-server with C{args} in C{directory} for one test, killed
    after it.

    @param wait: Whether to wait until it says it is ready (a Sentinel
        never says so).
    """
    from twisted.internet import reactor

    directory.mkdir(parents=True, exist_ok=True)
    executable = find_redis_server()
    args = [executable, *args, "--daemonize", "no", "--logfile", "", "--dir", str(directory)]
    output = _ServerOutput()
    process = reactor.spawnProcess(output, executable, args, env=None, path=str(directory))

    def stop() -> Deferred[Any]:
        if not output.ended.called:
            process.signalProcess("KILL")
        return output.ended

    testcase.addCleanup(stop)
    if not wait:
        # Its end, killed, would fail this unawaited Deferred.
        output.ready.addErrback(lambda failure: None)
        return
    timer = reactor.callLater(START_TIMEOUT, output.ready.cancel)
    await output.ready
    timer.cancel()


async def ask(port: int, *command: str, password: str | None = None) -> Any:
    """
    Send one command to the server on C{port}, over a connection of its
    own.
    """
    import txredisapi

    connection = await txredisapi.Connection("127.0.0.1", port, reconnect=False, password=password)
    try:
        return await connection.execute_command(*command)
    finally:
        await connection.disconnect()


async def eventually(condition: Any, timeout: float = FAILOVER_TIMEOUT) -> None:
    """
    Call C{condition} (returning an awaitable of a bool) every 0.2 s until it
    is true, failing after C{timeout} seconds.
    """
    from twisted.internet import reactor

    deadline = reactor.seconds() + timeout
    while not await condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"still false after {timeout} s: {condition.__doc__}")
        await deferLater(reactor, 0.2)


class FailoverTests(TestCase):
    """
    A store on a master found through a real Sentinel, before and after a
    failover.
    """

    timeout = 120

    async def cluster(self) -> tuple[int, int, int]:
        """
        Start a password-protected master, a replica of it and a Sentinel
        monitoring it as C{svc}, the replica known to the Sentinel.

        @return: The ports of the master, the replica and the Sentinel.
        """
        directory = short_directory(self)
        master, replica, sentinel = free_port(), free_port(), free_port()
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        common += ["--requirepass", PASSWORD, "--masterauth", PASSWORD]
        await spawn(self, directory / "m", ["--port", str(master), *common])
        await spawn(
            self, directory / "r", ["--port", str(replica), "--replicaof", "127.0.0.1", str(master), *common]
        )

        async def replicating() -> bool:
            """the replica is in sync"""
            info = await ask(replica, "INFO", "replication", password=PASSWORD)
            return "master_link_status:up" in info

        await eventually(replicating)
        config = directory / "s" / "sentinel.conf"
        config.parent.mkdir()
        config.write_text(
            f"port {sentinel}\n"
            "bind 127.0.0.1\n"
            f"sentinel monitor svc 127.0.0.1 {master} 1\n"
            f"sentinel auth-pass svc {PASSWORD}\n"
            "sentinel down-after-milliseconds svc 500\n"
            "sentinel failover-timeout svc 2000\n"
        )
        await spawn(self, config.parent, [str(config), "--sentinel"], wait=False)

        async def known() -> bool:
            """the Sentinel is up and knows the replica"""
            try:
                replicas = await ask(sentinel, "SENTINEL", "replicas", "svc")
            except ValueError:  # txredisapi's "could not connect"
                return False
            return len(replicas) == 1

        await eventually(known)
        return master, replica, sentinel

    async def test_failover(self) -> None:
        """
        The store connects to the master the Sentinel names; after a
        failover, it follows the new master: a write succeeds there and
        C{store.connected} is announced again.
        """
        from twisted.internet import reactor

        master, replica, sentinel = await self.cluster()
        bus = RecordingBus()
        bus.topics = []
        # A Sentinel that is down is skipped for the next one.
        url = f"redis+sentinel://:{PASSWORD}@127.0.0.1:{free_port()},127.0.0.1:{sentinel}/svc/0"
        store = StoreService.from_config(reactor, url, short_directory(self), "t", bus=bus)
        store.reply_timeout = store.connect_timeout = 2.0
        store.watch_interval = 0.1
        store.startService()
        self.addCleanup(store.stopService)
        await store.when_ready()
        await store.execute("SET", "k", "before")
        self.assertEqual(store.status()["master"], f"127.0.0.1:{master}")
        self.assertEqual(store.status()["redis"], url.replace(PASSWORD, "***"))
        self.assertNotIn(PASSWORD, str(store.status()))

        async def failing_over() -> bool:
            """the Sentinel takes the failover (NOGOODSLAVE until its link to the replica has reported)"""
            try:
                await ask(sentinel, "SENTINEL", "failover", "svc")
            except txredisapi.ResponseError as e:
                if "NOGOODSLAVE" not in str(e):
                    raise
                return False
            return True

        await eventually(failing_over)

        async def moved() -> bool:
            """a write reached the new master"""
            try:
                await store.execute("SET", "k", "after")
            except StoreUnavailable:
                return False
            return store.status()["master"] == f"127.0.0.1:{replica}"

        await eventually(moved)
        self.assertEqual(await ask(replica, "GET", "k", password=PASSWORD), "after")

        async def announced() -> bool:
            """store.connected was announced again"""
            return "store.disconnected" in bus.topics and bus.topics[-1] == "store.connected"

        await eventually(announced)
        self.flushLoggedErrors()
