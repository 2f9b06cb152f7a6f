"""
Tests for logging in to Redis (C{AUTH} with a password and an ACL user) and
reaching it over TLS, against real redis-servers started privately on
127.0.0.1 and on unix sockets.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.protocols.portforward import ProxyFactory
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.errors import ConfigurationError
from harbour.service import Options
from harbour.store.address import RedisAddress
from harbour.store.connection import StoreService
from harbour.store.server import START_TIMEOUT, _ServerOutput, find_redis_server
from harbour.test.helpers import self_signed, short_directory

PASSWORD = "s3cret/with:odd@chars"
USER, USER_PASSWORD = "alice", "alice-pw"


def free_port() -> int:
    """
    @return: A TCP port on 127.0.0.1 that was free a moment ago
        (redis-server cannot listen on port 0 and say which it got).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def secured_redis(testcase: SynchronousTestCase) -> tuple[int, Path]:
    """
    Start a redis-server for one test, stopped after it: the C{default}
    user's password is L{PASSWORD}, and the ACL user L{USER} logs in with
    L{USER_PASSWORD}.

    @return: Its TCP port on 127.0.0.1 and its unix socket.
    """
    from twisted.internet import reactor

    directory = short_directory(testcase)
    port, path = free_port(), directory / "redis.sock"
    executable = find_redis_server()
    # An ACL rule is a line of words; redis-server joins the arguments
    # following --user into one.
    args = [executable, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(path)]
    args += ["--requirepass", PASSWORD, "--user", USER, "on", ">" + USER_PASSWORD, "~*", "&*", "+@all"]
    args += [
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
        "--dir",
        str(directory),
    ]
    output = _ServerOutput()
    process = reactor.spawnProcess(output, executable, args, env=None, path=str(directory))

    def stop() -> Deferred[Any]:
        if not output.ended.called:
            process.signalProcess("KILL")
        return output.ended

    testcase.addCleanup(stop)
    timer = reactor.callLater(START_TIMEOUT, output.ready.cancel)
    await output.ready
    timer.cancel()
    return port, path


async def started(testcase: SynchronousTestCase, address: RedisAddress | str) -> StoreService:
    """
    Start a store on C{address}, stopped after the test.

    @return: The store, once C{when_ready} has fired (or failed: raised).
    """
    from twisted.internet import reactor

    store = StoreService.from_config(reactor, address, short_directory(testcase), "t")
    store.reply_timeout = 2.0
    store.connect_timeout = 2.0
    store.startService()
    testcase.addCleanup(store.stopService)
    await store.when_ready()
    return store


class AddressLoginTests(SynchronousTestCase):
    """
    Tests for the users, passwords and TLS files of L{RedisAddress}.
    """

    def test_login(self) -> None:
        """
        A user and a password, or a password alone, come before the host or
        the socket path; they are percent-decoded.
        """
        self.assertEqual(
            RedisAddress.parse("redis://bob:p%40ss%2Fw@h:7000/2"),
            RedisAddress("h", 7000, None, 2, username="bob", password="p@ss/w"),
        )
        self.assertEqual(
            RedisAddress.parse("redis://:pw@h/1"), RedisAddress("h", 6379, None, 1, password="pw")
        )
        self.assertEqual(
            RedisAddress.parse("unix://bob:pw@/tmp/r.sock?db=3"),
            RedisAddress(path="/tmp/r.sock", db=3, username="bob", password="pw"),
        )
        self.assertEqual(
            RedisAddress.parse("unix://:pw@/tmp/r.sock"), RedisAddress(path="/tmp/r.sock", password="pw")
        )

    def test_masked(self) -> None:
        """
        Neither L{str} (shown in logs and C{Status}) nor L{repr} (in
        tracebacks) shows the password.
        """
        for url, shown in [
            ("redis://bob:pw@h:7000/2", "redis://bob:***@h:7000/2"),
            ("redis://:pw@h:7000/2", "redis://:***@h:7000/2"),
            ("unix://bob:pw@/tmp/r.sock?db=1", "unix://bob:***@/tmp/r.sock?db=1"),
            ("rediss://:pw@h:7000/0?ca=/ca.pem", "rediss://:***@h:7000/0"),
        ]:
            address = RedisAddress.parse(url)
            self.assertEqual(str(address), shown)
            self.assertNotIn("pw", repr(address).replace("path", ""))

    def test_badURLMasked(self) -> None:
        """
        A URL that does not parse is quoted in the error without its
        password.
        """
        error = self.assertRaises(ConfigurationError, RedisAddress.parse, "redis://bob:hunter2@h/x")
        self.assertNotIn("hunter2", str(error))
        self.assertIn("redis://bob:***@h/x", str(error))
        # Not percent-encoded as it should be, so not parsed: still masked.
        error = self.assertRaises(ConfigurationError, RedisAddress.parse, f"redis://:{PASSWORD}@h:1/0")
        self.assertNotIn("s3cret", str(error))

    def test_tlsNeedsTrustRoots(self) -> None:
        """
        C{rediss://} needs a C{ca} file; the TLS files are for TLS URLs
        only; a client key needs its certificate.
        """
        for url, words in [
            ("rediss://h:6380/0", "needs ?ca=FILE"),
            ("redis://h:6379/0?ca=/ca.pem", "rediss:// (TLS) URLs only"),
            ("rediss://h/0?ca=/ca.pem&key=/k.pem", "also needs cert="),
        ]:
            error = self.assertRaises(ConfigurationError, RedisAddress.parse, url)
            self.assertIn(words, str(error))

    def test_tlsFilesUnreadable(self) -> None:
        """
        A CA file that cannot be read, or holds no certificate, is a
        configuration error naming the address.
        """
        missing = RedisAddress.parse("rediss://h/0?ca=/nonexistent/ca.pem")
        self.assertIn(
            "cannot load the TLS files", str(self.assertRaises(ConfigurationError, missing.client_tls))
        )
        empty = Path(self.mktemp())
        empty.write_text("no certificate here")
        garbage = RedisAddress.parse(f"rediss://h/0?ca={empty}")
        self.assertRaises(ConfigurationError, garbage.client_tls)

    def test_tlsEndpoint(self) -> None:
        """
        A C{rediss://} address connects through TLS, presenting the client
        certificate if any.
        """
        from twisted.internet import reactor

        cert, key = self_signed(Path(self.mktemp()) / "ca")
        address = RedisAddress.parse(f"rediss://127.0.0.1:6380/0?ca={cert}&cert={cert}&key={key}")
        endpoint = address.endpoint(reactor, 1.0)
        self.assertNotIsInstance(endpoint, TCP4ClientEndpoint)
        self.assertIsNotNone(address.client_tls())

    def test_withPassword(self) -> None:
        """
        A password from elsewhere fills in a URL without one, and never
        replaces the URL's own.
        """
        bare = RedisAddress.parse("redis://h/0")
        self.assertEqual(bare.with_password("x").password, "x")
        self.assertIs(bare.with_password(None), bare)
        self.assertEqual(RedisAddress.parse("redis://:u@h/0").with_password("x").password, "u")


class PasswordOptionTests(SynchronousTestCase):
    """
    Tests for C{--redis-password-file} and C{HARBOUR_REDIS_PASSWORD}.
    """

    def parse(self, environ: dict[str, str], *args: str) -> Options:
        """
        @return: L{Options} parsed from C{args}, seeing C{environ}.
        """
        config = Path(self.mktemp())
        config.mkdir()
        options = Options()
        options.environ = environ
        options.parseOptions(["--config-dir", str(config), *args])
        return options

    def password_file(self, text: str) -> str:
        """
        @return: The path of a new file holding C{text}.
        """
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_precedence(self) -> None:
        """
        The URL's password wins over the file's, which wins over the
        environment's; the file's first line is the password.
        """
        env = {"HARBOUR_REDIS_PASSWORD": "from-env"}
        pw_file = self.password_file("from-file\n")
        self.assertEqual(self.parse(env, "--redis", "redis://h/0")["redis"].password, "from-env")
        options = self.parse(env, "--redis", "redis://h/0", "--redis-password-file", pw_file)
        self.assertEqual(options["redis"].password, "from-file")
        options = self.parse(env, "--redis", "redis://:url@h/0", "--redis-password-file", pw_file)
        self.assertEqual(options["redis"].password, "url")
        self.assertIsNone(self.parse({}, "--redis", "redis://h/0")["redis"].password)

    def test_badPasswordFile(self) -> None:
        """
        A password file that is missing or empty, or without C{--redis}, is
        a usage error.
        """
        for args in [
            ["--redis", "redis://h/0", "--redis-password-file", "/nonexistent/pw"],
            ["--redis", "redis://h/0", "--redis-password-file", self.password_file("\n")],
            ["--redis-password-file", self.password_file("pw")],
        ]:
            self.assertRaises(usage.UsageError, self.parse, {}, *args)

    def test_tlsFilesChecked(self) -> None:
        """
        The TLS files of a C{rediss://} URL are loaded while the options
        are parsed, so a mistake is a usage error.
        """
        error = self.assertRaises(
            usage.UsageError, self.parse, {}, "--redis", "rediss://h/0?ca=/nonexistent/ca.pem"
        )
        self.assertIn("cannot load the TLS files", str(error))


class LoginTests(TestCase):
    """
    A store logging in to a redis-server that requires a password.
    """

    async def test_passwordTCP(self) -> None:
        """
        With the C{default} user's password, over TCP, commands run (in the
        URL's database); C{Status} masks the password.
        """
        port, ignored = await secured_redis(self)
        store = await started(self, f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/2")
        await store.execute("SET", "t:k", "v")
        self.assertEqual(await store.execute("GET", "t:k"), "v")
        # The key, and the mark that the store's keys are hash-tagged.
        self.assertEqual(await store.execute("DBSIZE"), 2)
        status = store.status()
        self.assertEqual(status["redis"], f"redis://:***@127.0.0.1:{port}/2")
        self.assertNotIn(PASSWORD, repr(status))

    async def test_aclUserUnix(self) -> None:
        """
        An ACL user logs in with its own password, over a unix socket.
        """
        ignored, path = await secured_redis(self)
        address = RedisAddress.parse(f"unix://{USER}@{path}?db=0").with_password(USER_PASSWORD)
        store = await started(self, address)
        self.assertEqual(await store.execute("ACL", "WHOAMI"), USER)
        self.assertEqual(store.status()["redis"], f"unix://{USER}:***@{path}?db=0")

    async def test_wrongPassword(self) -> None:
        """
        A wrong password is a clear configuration error naming the user,
        without the password.
        """
        port, path = await secured_redis(self)
        for url, user in [
            (f"redis://{USER}:nope@127.0.0.1:{port}/0", USER),
            (f"unix://:nope@{path}?db=0", "default"),
        ]:
            with self.assertRaises(ConfigurationError) as caught:
                await started(self, url)
            message = str(caught.exception)
            self.assertIn(f"refused the password for user {user}", message)
            self.assertNotIn("nope", message)
        self.flushLoggedErrors(ConfigurationError)

    async def test_noPassword(self) -> None:
        """
        Without a password, a server that needs one is a configuration
        error that says so.
        """
        port, ignored = await secured_redis(self)
        with self.assertRaises(ConfigurationError) as caught:
            await started(self, f"redis://127.0.0.1:{port}/0")
        self.assertIn("requires a password", str(caught.exception))
        self.flushLoggedErrors(ConfigurationError)


class TLSTests(TestCase):
    """
    A store reaching Redis over TLS.  The bundled redis-server is built
    without TLS, so a TLS-terminating proxy on 127.0.0.1 stands in front of
    it: the client side is what is tested.
    """

    async def proxy(self) -> tuple[int, Path]:
        """
        Start a password-protected redis-server and a TLS proxy to it
        serving a certificate made for 127.0.0.1.

        @return: The proxy's port and the certificate (its own CA).
        """
        from twisted.internet import reactor

        redis_port, ignored = await secured_redis(self)
        cert, key = self_signed(short_directory(self) / "ca")
        description = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        listening: IListeningPort = await serverFromString(reactor, description).listen(
            ProxyFactory("127.0.0.1", redis_port)
        )
        self.addCleanup(listening.stopListening)
        port: int = listening.getHost().port  # type: ignore[attr-defined]
        return port, cert

    async def test_verified(self) -> None:
        """
        Through a server whose certificate the C{ca} file trusts, commands
        run, after logging in.
        """
        port, cert = await self.proxy()
        store = await started(self, f"rediss://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0?ca={cert}")
        self.assertEqual(await store.execute("PING"), "PONG")
        self.assertEqual(store.status()["redis"], f"rediss://:***@127.0.0.1:{port}/0")

    async def test_untrusted(self) -> None:
        """
        A server whose certificate the C{ca} file does not trust is never
        talked to: the store does not start.
        """
        port, ignored = await self.proxy()
        other, ignored_key = self_signed(short_directory(self) / "other")
        with self.assertRaises(ConfigurationError) as caught:
            await started(self, f"rediss://:pw@127.0.0.1:{port}/0?ca={other}")
        self.assertIn("is its certificate signed by one in the ca file?", str(caught.exception))
        self.assertNotIn(":pw@", str(caught.exception))
        self.flushLoggedErrors()
