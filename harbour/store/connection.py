"""
The C{store} service (the seed's DB SERVER): harbour's Redis connection.

It connects a txredisapi pool to C{--redis URL}, or first starts an
embedded redis-server in C{<data-dir>/redis}.  The pool reconnects with
exponential backoff; a command fails at once with L{StoreUnavailable} while
no connection is up, and after C{reply_timeout} if Redis stops answering,
so nothing waits forever on a Redis that went away.

Every error reply is an outage too (C{BUSY}: a script ran past
C{lua-time-limit}; C{LOADING}; C{OOM}: C{maxmemory} reached; C{MISCONF};
C{READONLY}: a replica after a failover; ...): it fails as
L{StoreUnavailable}, with the reply in its message, for the callers to
retry with backoff as they do a lost connection.  (A script Redis answers
C{NOSCRIPT} for is loaded again, and is no outage.)  An outage is logged once,
when it begins, and once when it ends, however many commands fail
meanwhile; L{StoreService.status} counts them.

Before it is ready, the store asks Redis its version (C{INFO server}) and
refuses one older than harbour runs on (Redis 5, see
L{harbour.store.version}) with a L{ConfigurationError}: a fatal start-up
problem, as a refused password is.

With a C{redis+sentinel://} URL, every connection of the pool (and every
reconnection) first asks the Sentinels, in turn, where the master of the
service is now, so that after a failover the pool follows the new master: a
connection to the old one is lost, or answers C{READONLY} once it became a
replica, and the pool then drops it and connects again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, quote, unquote, urlsplit

import attr
import txredisapi
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL.crypto import FILETYPE_ASN1
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, ConnectionLost
from twisted.internet.interfaces import (
    IDelayedCall,
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import (
    Certificate,
    PrivateCertificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.interfaces import IBus, IRedis, IStatusSource
from harbour.store.keys import legacy_prefix, tagged_prefix
from harbour.store.migrate import KeyMigration
from harbour.store.server import RedisServerProcess
from harbour.store.version import MINIMUM_REDIS, redis_version, too_old
from harbour.store.wire import StoreFactory

#: The URL forms C{--redis} accepts, for error messages.
URL_FORMS = (
    "redis://host:port/db, rediss://host:port/db?ca=CA.pem[&cert=CERT.pem&key=KEY.pem] (TLS) "
    "unix:///path.sock?db=N or redis+sentinel://host:port[,host:port...]/service/db (Sentinel), "
    "with [user]:password@ after the // to log in"
)

#: Where a Sentinel listens unless its URL says otherwise.
SENTINEL_PORT = 26379


def _refused_command(message: str) -> bool:
    """
    @return: Whether an error reply says the command itself is refused
        (unknown or renamed, or not allowed to this ACL user), rather than
        that Redis cannot answer now.
    """
    return "unknown command" in message or "NOPERM" in message


def _mask(password: str | None) -> str:
    # A password is never shown, not even in reprs: they end up in logged
    # tracebacks.
    return "None" if password is None else "'***'"


@attr.s(frozen=True, auto_attribs=True)
class RedisAddress:
    """
    Where a Redis server listens (a TCP host and port, or a unix socket),
    and how to log in to it and trust it.

    @ivar username: The Redis 6 ACL user to C{AUTH} as, or L{None} for the
        C{default} user.
    @ivar password: The password to C{AUTH} with, or L{None} to send no
        C{AUTH}.  It never appears in L{str} or L{repr}.
    @ivar tls: Whether to speak TLS (C{rediss://}); the server is verified
        against the certificates in the C{ca} file.
    @ivar ca: A PEM file of the certificates trusted to sign the server's.
    @ivar cert: A PEM file of the client certificate, if the server asks
        for one (its key too, unless C{key} names another file).
    @ivar key: A PEM file of the client certificate's private key.
    @ivar sentinels: The C{(host, port)} of the Sentinels to ask, in turn,
        where the master of C{service} is (C{redis+sentinel://}); C{host}
        and C{port} are then unused.
    @ivar service: The name of the master the Sentinels monitor, or L{None}
        for a fixed address.
    """

    host: str | None = None
    port: int | None = None
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = attr.ib(default=None, repr=_mask)
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """
        Parse C{redis://[[user]:password@]host:port/db}, the same with
        C{rediss://} and C{?ca=CA.pem[&cert=CERT.pem&key=KEY.pem]} for TLS,
        C{unix://[[user]:password@]/path.sock?db=N}, or
        C{redis+sentinel://[[user]:password@]host:port[,host:port...]/service/db}
        (the user and password are the master's; the Sentinels are asked
        without).  The user and password are percent-decoded.

        @raise ConfigurationError: for anything else, without the password.
        """
        parts = urlsplit(url)
        try:
            query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
            # An empty password ("redis://user:@host") is no password.
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
            if parts.scheme in ("redis", "rediss"):
                db = int(parts.path.strip("/") or 0)
                tls = parts.scheme == "rediss"
                if tls and not query.get("ca"):
                    raise ConfigurationError(
                        "a rediss:// URL needs ?ca=FILE, the certificates that may sign the server's: "
                        "harbour does not connect over TLS to a server it cannot verify"
                    )
                if not tls and query.keys() & {"ca", "cert", "key"}:
                    raise ConfigurationError("ca, cert and key are for rediss:// (TLS) URLs only")
                if query.get("key") and not query.get("cert"):
                    raise ConfigurationError("a rediss:// URL with key= also needs cert=")
                return cls(
                    host=parts.hostname or "127.0.0.1",
                    port=parts.port or 6379,
                    db=db,
                    tls=tls,
                    ca=query.get("ca"),
                    cert=query.get("cert"),
                    key=query.get("key"),
                    username=username,
                    password=password,
                )
            if parts.scheme == "redis+sentinel":
                return cls._parse_sentinel(parts.netloc, parts.path, username, password)
            if parts.scheme == "unix" and parts.path:
                db = int(query.get("db", "0"))
                return cls(path=parts.path, db=db, username=username, password=password)
        except ValueError:
            pass
        raise ConfigurationError(f"bad Redis URL {cls._masked(url)!r}: use {URL_FORMS}")

    @classmethod
    def _parse_sentinel(
        cls, netloc: str, path: str, username: str | None, password: str | None
    ) -> RedisAddress:
        """
        Parse the part of a C{redis+sentinel://} URL after the scheme.

        @raise ValueError: if it is malformed.
        """
        # urlsplit cannot take several host:port pairs apart (its .port
        # raises on "h1:1,h2:2"): split them here.
        sentinels = []
        for item in netloc.rpartition("@")[2].split(","):
            host, colon, port = item.rpartition(":")
            if not colon:
                host, port = item, str(SENTINEL_PORT)
            if not host or not 0 < int(port) < 65536:
                raise ValueError(item)
            sentinels.append((host, int(port)))
        service, slash, db = path.strip("/").partition("/")
        if not service or "/" in db:
            raise ValueError(path)
        return cls(
            db=int(db or 0),
            username=username,
            password=password,
            sentinels=tuple(sentinels),
            service=unquote(service),
        )

    @staticmethod
    def _masked(url: str) -> str:
        """
        @return: C{url} with any password in it replaced by C{***}, to
            quote it in an error.
        """
        # Greedy up to the last "@": a password that should have been
        # percent-encoded may hold "/", ":", "?" or "@"; masking too much
        # is harmless.
        return re.sub(r"^([^:/]*://[^:/@]*:).*@", r"\1***@", url, flags=re.DOTALL)

    def with_password(self, password: str | None) -> RedisAddress:
        """
        @return: This address with C{password}, unless it has one already:
            a password in the URL wins over one from elsewhere.
        """
        if self.password is not None or password is None:
            return self
        return attr.evolve(self, password=password)

    def client_tls(self) -> IOpenSSLClientConnectionCreator:
        """
        @return: The TLS options of a C{rediss://} address: the server's
            certificate must be signed by one in the C{ca} file and name
            the host, and the client certificate is presented if any.

        @raise ConfigurationError: if a file cannot be read or holds no
            certificate (or key).
        """
        if not self.ca:
            raise ConfigurationError("a rediss:// URL needs ?ca=FILE: no TLS without trust roots")
        host = self.host or "127.0.0.1"
        try:
            with open(self.ca, "rb") as f:
                roots = [
                    Certificate.load(c.public_bytes(Encoding.DER), FILETYPE_ASN1)
                    for c in x509.load_pem_x509_certificates(f.read())
                ]
            client = None
            if self.cert:
                with open(self.cert, "rb") as f:
                    pem = f.read()
                if self.key:
                    with open(self.key, "rb") as f:
                        pem += b"\n" + f.read()
                client = PrivateCertificate.loadPEM(pem)
        except (OSError, ValueError, SSL.Error) as e:
            raise ConfigurationError(f"cannot load the TLS files of Redis at {self}: {e}") from None
        return optionsForClientTLS(host, trustRoot=trustRootFromCertificates(roots), clientCertificate=client)

    def endpoint(self, reactor: IReactorTime, timeout: float) -> IStreamClientEndpoint:
        """
        @param reactor: Also an L{twisted.internet.interfaces.IReactorTCP}
            or L{twisted.internet.interfaces.IReactorUNIX}, as this address
            needs.

        @return: A client endpoint reaching this address, through TLS for
            C{rediss://}.
        """
        if self.path is not None:
            return UNIXClientEndpoint(reactor, self.path, timeout=timeout)
        if self.service is not None:
            return SentinelEndpoint(reactor, self, timeout)
        if self.host is None or self.port is None:
            raise ConfigurationError("a Redis address needs a host and port, or a path")
        tcp = TCP4ClientEndpoint(reactor, self.host, self.port, timeout=timeout)
        if self.tls:
            return wrapClientTLS(self.client_tls(), tcp)
        return tcp

    def __str__(self) -> str:
        login = ""
        if self.password is not None:
            login = f"{quote(self.username or '', safe='')}:***@"
        elif self.username is not None:
            login = f"{quote(self.username, safe='')}@"
        if self.path is not None:
            return f"unix://{login}{self.path}?db={self.db}"
        if self.service is not None:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"redis+sentinel://{login}{hosts}/{quote(self.service, safe='')}/{self.db}"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{login}{self.host}:{self.port}/{self.db}"


class SentinelError(Exception):
    """
    A Sentinel answered with an error, or with something that is not a
    master's address.
    """


def _command(*words: str) -> bytes:
    """
    @return: C{words} as a RESP command (an array of bulk strings).
    """
    encoded = [w.encode("utf-8") for w in words]
    return b"".join([b"*%d\r\n" % len(encoded)] + [b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded])


def parse_master_reply(data: bytes) -> tuple[bool, tuple[str, int] | None]:
    """
    Parse a Sentinel's reply to C{SENTINEL get-master-addr-by-name}.

    @param data: What the Sentinel sent so far.

    @return: C{(False, None)} if the reply is not complete yet, C{(True,
        None)} if the Sentinel knows no such master (a null reply), or
        C{(True, (host, port))}.

    @raise SentinelError: for an error reply or a malformed one.
    """
    lines = data.split(b"\r\n")
    if len(lines) < 2:
        return False, None
    first = lines[0]
    if first.startswith(b"-"):
        raise SentinelError(first[1:].decode("utf-8", "replace"))
    # A null array (RESP2), null bulk string (older Sentinels) or null
    # (RESP3).
    if first in (b"*-1", b"$-1", b"_"):
        return True, None
    if first != b"*2":
        raise SentinelError(f"unexpected reply {data[:80]!r}")
    if len(lines) < 6:
        return False, None
    try:
        host, port = lines[2].decode("ascii"), int(lines[4])
        if lines[1] != b"$%d" % len(lines[2]) or lines[3] != b"$%d" % len(lines[4]):
            raise ValueError("bad lengths")
    except ValueError:
        raise SentinelError(f"unexpected reply {data[:80]!r}") from None
    return True, (host, port)


class _SentinelQuery(Protocol):
    """
    Asks a Sentinel once where a master is, then hangs up.

    @ivar reply: Fires with the master's C{(host, port)}, or L{None} if the
        Sentinel does not know the service; fails with L{SentinelError} or
        L{ConnectionLost}.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.reply: Deferred[tuple[str, int] | None] = Deferred()
        self._buffer = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(_command("SENTINEL", "get-master-addr-by-name", self.service))

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        try:
            complete, master = parse_master_reply(self._buffer)
        except SentinelError as e:
            self._answer(Failure(e))
        else:
            if complete:
                self._answer(master)

    def _answer(self, result: tuple[str, int] | None | Failure) -> None:
        assert self.transport is not None
        self.transport.loseConnection()
        if not self.reply.called:
            if isinstance(result, Failure):
                self.reply.errback(result)
            else:
                self.reply.callback(result)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.reply.called:
            self.reply.errback(ConnectionLost("the Sentinel hung up before it answered"))


@implementer(IStreamClientEndpoint)
@attr.s(eq=False)
class SentinelEndpoint:
    """
    Connects to the master of a C{redis+sentinel://} address: before every
    connection, the Sentinels are asked in turn where it is now, so that
    reconnections follow a failover.

    @ivar master: The master's C{(host, port)} as last found, or L{None}.
    @ivar master_changed: Called with the new C{(host, port)} when a
        Sentinel names another master than the one before.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    address: RedisAddress = attr.ib()
    timeout: float = attr.ib()
    master: tuple[str, int] | None = attr.ib(default=None, init=False)
    master_changed: Callable[[tuple[str, int]], object] | None = attr.ib(default=None, init=False)
    _last_failure: str | None = attr.ib(default=None, init=False)

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Find the master, then connect C{protocolFactory} to it.

        @return: A L{Deferred} firing with the protocol connected, or failing
            with L{ConnectError} if no Sentinel named the master.
        """
        return self.find_master().addCallback(self._connect_master, protocolFactory)

    def _connect_master(
        self, master: tuple[str, int], protocolFactory: IProtocolFactory
    ) -> Deferred[IProtocol]:
        host, port = master
        return TCP4ClientEndpoint(self.reactor, host, port, timeout=self.timeout).connect(protocolFactory)

    @inlineCallbacks
    def find_master(self) -> Generator[Deferred[Any], Any, tuple[str, int]]:
        """
        Ask the Sentinels in turn where the master is, until one knows.

        @return: A L{Deferred} firing with the master's C{(host, port)}.

        @raise ConnectError: if none knew (each one's error in the message).
        """
        service = self.address.service
        assert service is not None, "only a Sentinel address has a service"
        errors = []
        for host, port in self.address.sentinels:
            try:
                master = yield self._ask(host, port, service)
            except CancelledError:
                raise
            except Exception as e:
                errors.append(f"{host}:{port}: {e}")
                continue
            if master is None:
                errors.append(f"{host}:{port}: no master named {service!r}")
                continue
            self._last_failure = None
            if master != self.master:
                previous, self.master = self.master, master
                self.log.info(
                    "Redis Sentinel: the master of {name} is at {host}:{port}",
                    name=service,
                    host=master[0],
                    port=master[1],
                    service="store",
                )
                if previous is not None and self.master_changed is not None:
                    self.master_changed(master)
            return master
        message = f"no Sentinel named the master of {service!r} ({'; '.join(errors)})"
        # Every slot of the pool retries with backoff: log a failure once,
        # not at each attempt.
        if message != self._last_failure:
            self._last_failure = message
            self.log.warn("Redis Sentinel: {message}", message=message, service="store")
        raise ConnectError(string=message)

    @inlineCallbacks
    def _ask(
        self, host: str, port: int, service: str
    ) -> Generator[Deferred[Any], Any, tuple[str, int] | None]:
        """
        Ask one Sentinel, over a connection of its own closed after the
        reply, within C{timeout} seconds.
        """
        endpoint = TCP4ClientEndpoint(self.reactor, host, port, timeout=self.timeout)
        query: _SentinelQuery = yield endpoint.connect(Factory.forProtocol(lambda: _SentinelQuery(service)))
        try:
            master: tuple[str, int] | None = yield query.reply.addTimeout(self.timeout, self.reactor)
        finally:
            if query.transport is not None:
                query.transport.loseConnection()
        return master

    def describe(self) -> str:
        """
        @return: The current master as C{host:port}, or C{unknown}.
        """
        return "unknown" if self.master is None else f"{self.master[0]}:{self.master[1]}"


@implementer(IRedis, IStatusSource)
@attr.s(eq=False)
class StoreService(Service):
    """
    A pool of Redis connections, and the embedded server behind it if any.

    @ivar prefix: Prepended to every key harbour writes, so that several
        harbours can share one Redis; it carries a hash tag (see
        L{harbour.store.keys.tagged_prefix}).
    @ivar legacy_prefix: The prefix of this harbour's keys before hash
        tags, moved under C{prefix} as the store starts (see
        L{harbour.store.migrate}); L{None}: nothing to move.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    address: RedisAddress | None = attr.ib()
    server: RedisServerProcess | None = attr.ib(default=None)
    prefix: str = attr.ib(default="{harbour}:")
    legacy_prefix: str | None = attr.ib(default=None, kw_only=True)
    reply_timeout: float = attr.ib(default=5.0)
    connect_timeout: float = attr.ib(default=5.0)
    poolsize: int = attr.ib(default=4)
    restart_delay: float = attr.ib(default=1.0)
    bus: IBus | None = attr.ib(default=None)
    watch_interval: float = attr.ib(default=0.5)
    _factory: txredisapi.RedisFactory | None = attr.ib(default=None, init=False)
    # Each script's SHA1, by its text: a few scripts, known in advance.
    _script_shas: dict[str, str] = attr.ib(factory=dict, init=False)
    _sentinel: SentinelEndpoint | None = attr.ib(default=None, init=False)
    _starting: Deferred[None] | None = attr.ib(default=None, init=False)
    _outcome: Failure | bool | None = attr.ib(default=None, init=False)
    _waiting: list[Deferred[None]] = attr.ib(factory=list, init=False)
    _restart: IDelayedCall | None = attr.ib(default=None, init=False)
    _watch: LoopingCall | None = attr.ib(default=None, init=False)
    _was_connected: bool = attr.ib(default=False, init=False)
    #: Commands issued so far: a reply ends an outage only if its command
    #: was issued after the outage began (older ones may still succeed).
    _issued: int = attr.ib(default=0, init=False)
    _outage_from: int | None = attr.ib(default=None, init=False)
    _outage_since: float | None = attr.ib(default=None, init=False)
    outages: int = attr.ib(default=0, init=False)
    last_error: str = attr.ib(default="", init=False)

    @classmethod
    def from_config(
        cls,
        reactor: IReactorTime,
        redis_url: str | RedisAddress | None,
        data_dir: Path,
        prefix: str = "harbour",
        bus: IBus | None = None,
    ) -> StoreService:
        """
        Use C{redis_url}, or an embedded server in C{<data_dir>/redis}.

        @param redis_url: A C{--redis} URL, or an address already parsed
            (as L{harbour.service.Options} leaves it, with the password
            from a file or the environment).
        @param prefix: The C{--prefix} name: keys are under C{{prefix}:}
            (see L{harbour.store.keys.tagged_prefix}); those of an older
            version, under C{prefix:}, are moved there as the store starts.
        @param bus: Where to announce the connection lost and back.
        @raise ValueError: for a prefix that cannot carry a hash tag.
        """
        tagged, legacy = tagged_prefix(prefix), legacy_prefix(prefix)
        options: dict[str, Any] = {"prefix": tagged, "bus": bus, "legacy_prefix": legacy}
        if isinstance(redis_url, RedisAddress):
            return cls(reactor, redis_url, **options)
        if redis_url:
            return cls(reactor, RedisAddress.parse(redis_url), **options)
        server = RedisServerProcess(reactor, Path(data_dir) / "redis")
        return cls(reactor, None, server, **options)

    def startService(self) -> None:
        """
        Start the embedded server if any, then the pool.
        """
        super().startService()
        self._starting = self._start().addBoth(self._started)

    @inlineCallbacks
    def _start(self) -> Generator[Deferred[Any], Any, None]:
        if self.server is not None:
            yield self._start_server()
            self.address = RedisAddress(path=str(self.server.socket))
        address = self.address
        if address is None:
            raise ConfigurationError("a store needs a Redis address or an embedded server")
        factory = self._factory = StoreFactory(
            str(address),
            address.db,
            self.poolsize,
            isLazy=True,
            replyTimeout=self.reply_timeout,
            convertNumbers=False,
            # Each connection of the pool sends AUTH (then SELECT) first,
            # every time it connects again too.
            username=address.username,
            password=address.password,
        )
        connected = factory.deferred
        endpoint = address.endpoint(self.reactor, self.connect_timeout)
        if isinstance(endpoint, SentinelEndpoint):
            self._sentinel = endpoint
            endpoint.master_changed = self._master_changed
        factory.startConnecting(endpoint)
        try:
            yield connected
        except ValueError as e:
            raise self._login_error(address, str(e)) from None
        yield self._ride_out(self._check_version)
        if self.legacy_prefix is not None:
            legacy = self.legacy_prefix
            yield self._ride_out(lambda: KeyMigration(self, legacy, self.prefix).run())
        self.log.info("store ready: Redis at {address}", address=self._describe(), service="store")
        self._was_connected = True
        self._watch = LoopingCall(self._check_connection)
        self._watch.clock = self.reactor
        self._watch.start(self.watch_interval, now=False)

    @inlineCallbacks
    def _ride_out(self, step: Callable[[], Deferred[Any]]) -> Generator[Deferred[Any], Any, None]:
        """
        Run a start-up step (safe to begin again) until Redis answers it,
        trying again, less and less often, through outages.
        """
        delay = 1.0
        while True:
            try:
                yield step()
                return
            except StoreUnavailable:
                # Logged once by the outage.
                yield deferLater(self.reactor, delay, lambda: None)
                delay = min(delay * 2, 30.0)

    @inlineCallbacks
    def _check_version(self) -> Generator[Deferred[Any], Any, None]:
        """
        Refuse a Redis older than harbour runs on (see
        L{harbour.store.version}).

        @raise ConfigurationError: if Redis is too old.
        """
        try:
            info = yield self.execute("INFO", "server")
        except StoreUnavailable as e:
            if not _refused_command(str(e)):
                raise
            # A managed Redis may rename INFO, or an ACL user lack it: not
            # a reason to refuse a Redis that may well be recent enough.
            self.log.warn(
                "cannot check the version of Redis at {address} ({error}): it must be Redis "
                "{minimum} or later",
                address=self._describe(),
                error=str(e),
                minimum=MINIMUM_REDIS[0],
                service="store",
            )
            return
        version = redis_version(info if isinstance(info, str) else info.decode("utf-8", "replace"))
        if version is None:
            self.log.warn(
                "Redis at {address} does not say its version: it must be Redis {minimum} or later",
                address=self._describe(),
                minimum=MINIMUM_REDIS[0],
                service="store",
            )
            return
        problem = too_old(version)
        if problem is not None:
            raise ConfigurationError(f"Redis at {self._describe()}: {problem}")

    @staticmethod
    def _login_error(address: RedisAddress, message: str) -> Exception:
        """
        Explain why Redis refused to let the pool in.

        @param message: txredisapi's error: C{"Redis error: could not auth:
            <reply>"} when C{AUTH} failed, C{"... could not set dbid=N:
            <reply>"} when C{SELECT} did (C{NOAUTH} there: a password is
            needed).  Replies never quote the password.

        @return: A L{ConfigurationError} saying so, or a L{ValueError}
            with C{message} for anything else.
        """
        reply = message.split(": ", 2)[-1]
        if reply == "Lost connection":
            # Not an answer: the connection closed before AUTH or SELECT was
            # answered (over TLS, most likely a failed verification).
            hint = " (is its certificate signed by one in the ca file?)" if address.tls else ""
            return ConfigurationError(f"Redis at {address} closed the connection as harbour logged in{hint}")
        if "could not auth" in message:
            user = address.username or "default"
            return ConfigurationError(f"Redis at {address} refused the password for user {user}: {reply}")
        if "NOAUTH" in message:
            return ConfigurationError(
                f"Redis at {address} requires a password: put it in the URL, "
                f"--redis-password-file or HARBOUR_REDIS_PASSWORD ({reply})"
            )
        if "could not set dbid" in message:
            return ConfigurationError(f"Redis at {address} refused database {address.db}: {reply}")
        return ValueError(message)

    def _check_connection(self) -> None:
        """
        Announce on the bus when the connection to Redis is lost or back
        (after an outage, recent writes may be lost: listeners re-check).
        """
        connected = self.connected
        if connected == self._was_connected:
            return
        self._was_connected = connected
        topic = "store.connected" if connected else "store.disconnected"
        log = self.log.info if connected else self.log.warn
        log("{topic}: Redis at {address}", topic=topic, address=self._describe(), service="store")
        if self.bus is not None:
            payload = {"redis": str(self.address)}
            if self._sentinel is not None:
                payload["master"] = self._sentinel.describe()
            self.bus.publish(topic, payload)

    def _describe(self) -> str:
        """
        @return: The address, masked, with the current master's if it is
            found through Sentinels.
        """
        if self._sentinel is None:
            return str(self.address)
        return f"{self.address} (master {self._sentinel.describe()})"

    def _master_changed(self, master: tuple[str, int]) -> None:
        """
        A Sentinel named a new master: close the connections still open to
        another server (the old master, now a replica or gone), so that they
        reconnect to the new one instead of answering C{READONLY}.
        """
        self.log.warn(
            "Redis Sentinel: the master moved to {host}:{port}; reconnecting",
            host=master[0],
            port=master[1],
            service="store",
        )
        self._drop_connections(keep=master)

    def _drop_connections(self, keep: tuple[str, int] | None = None) -> None:
        """
        Close the pool's connections (but those to C{keep}): the pool
        reconnects them, asking the Sentinels again.
        """
        if self._factory is None:
            return
        for connection in list(self._factory.pool):
            transport = connection.transport
            if transport is None:
                continue
            peer = transport.getPeer()
            if keep is not None and (getattr(peer, "host", None), getattr(peer, "port", None)) == keep:
                continue
            transport.loseConnection()

    @inlineCallbacks
    def _start_server(self) -> Generator[Deferred[Any], Any, None]:
        server = self.server
        assert server is not None, "only a store with an embedded server starts one"
        yield server.start()
        server.ended.addCallback(self._server_ended)

    def _server_ended(self, reason: BaseException) -> BaseException:
        if not self.running:
            return reason
        self.log.error(
            "embedded redis-server exited ({reason}); restarting in {delay}s",
            reason=str(reason),
            delay=self.restart_delay,
            service="store",
        )
        self._restart = self.reactor.callLater(self.restart_delay, self._restart_server)
        return reason

    def _restart_server(self) -> None:
        self._restart = None
        self._start_server().addErrback(
            lambda f: self.log.failure("could not restart redis-server", f, service="store")
        )

    def _started(self, outcome: object) -> None:
        if isinstance(outcome, Failure) and not outcome.check(CancelledError):
            self.log.failure("Redis store did not start", outcome, service="store")
        self._outcome = outcome if isinstance(outcome, Failure) else True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            self._notify(d)

    def _notify(self, d: Deferred) -> None:
        if isinstance(self._outcome, Failure):
            d.errback(self._outcome)
        else:
            d.callback(None)

    def when_ready(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once the pool is first connected, or
            failing if the embedded server could not start.
        """
        d: Deferred[None] = Deferred()
        if self._outcome is None:
            self._waiting.append(d)
        else:
            self._notify(d)
        return d

    @property
    def connected(self) -> bool:
        """
        Whether a connection to Redis is up now.
        """
        return self._factory is not None and self._factory.size > 0

    def key(self, *parts: str) -> str:
        """
        @return: A key under this harbour's prefix.
        """
        return self.prefix + ":".join(parts)

    # A reply's type depends on the command (RESP is dynamically typed).
    def execute(self, *args: object) -> Deferred[Any]:
        """
        See L{IRedis.execute}.
        """
        return self._send(lambda handler: handler.execute_command(*args))

    def eval(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        See L{IRedis.eval}: by its SHA1, loading the script again if Redis
        answers C{NOSCRIPT} (after a restart, a failover or C{SCRIPT FLUSH}).
        """
        # txredisapi would hash the script's text again on every call.
        sha = self._script_shas.get(script)
        if sha is None:
            sha = self._script_shas[script] = hashlib.sha1(script.encode()).hexdigest()

        def load(failure: Failure, handler: Any) -> Deferred[Any]:
            failure.trap(txredisapi.ScriptDoesNotExist)
            return handler.eval(script, keys, args)

        return self._send(lambda handler: handler.evalsha(sha, keys, args).addErrback(load, handler))

    def _send(self, command: Callable[[Any], Deferred[Any]]) -> Deferred[Any]:
        """
        Run C{command} on the pool's handler, turning every Redis error into
        L{StoreUnavailable} and keeping track of outages.
        """
        self._issued += 1
        issued = self._issued
        if self._factory is None or not self.connected:
            return fail(self._failed(f"not connected to Redis at {self.address}"))
        try:
            d = command(self._factory.handler)
        except Exception as e:  # txredisapi raises some errors at once
            return fail(self._failed(f"Redis at {self.address}: {e}"))
        return d.addCallbacks(self._answered, self._unavailable, callbackArgs=(issued,))

    def _answered(self, reply: object, issued: int) -> object:
        if self._outage_from is not None and issued > self._outage_from:
            self.log.info(
                "store outage over after {seconds:.1f} s: Redis at {address} answers again",
                seconds=self.reactor.seconds() - (self._outage_since or 0.0),
                address=str(self.address),
                service="store",
            )
            self._outage_from = self._outage_since = None
        return reply

    def _unavailable(self, failure: Failure) -> NoReturn:
        # Anything Redis or the connection can fail with: an error reply
        # (BUSY, LOADING, OOM, MISCONF, READONLY...) is ridden out as a
        # lost connection is.  Other exceptions are bugs, and pass.
        failure.trap(txredisapi.RedisError, TimeoutError)
        message = failure.getErrorMessage()
        if self._sentinel is not None and message.startswith("READONLY"):
            # The master this pool connected to became a replica (a
            # failover the connections outlived): ask the Sentinels again.
            self._drop_connections()
        raise self._failed(f"Redis at {self._describe()}: {message}")

    def _failed(self, message: str) -> StoreUnavailable:
        """
        Note a failed command: the first failure of an outage is logged and
        counted, later ones only remembered.

        @return: The error to fail the command with.
        """
        self.last_error = message
        if self._outage_from is None:
            self._outage_from = self._issued
            self._outage_since = self.reactor.seconds()
            self.outages += 1
            self.log.warn("store outage: {error} (retrying until it answers)", error=message, service="store")
        return StoreUnavailable(message)

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Close the pool, then stop the embedded server, and fire when both
        are gone.
        """
        super().stopService()
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        if self._factory is not None:
            yield self._factory.disconnect()
        if self.server is not None:
            yield self.server.stop()

    def status(self) -> dict[str, object]:
        """
        See L{IStatusSource.status}.
        """
        return {
            "redis": str(self.address) if self.address else None,
            "master": self._sentinel.describe() if self._sentinel is not None else None,
            "embedded": self.server is not None,
            "connected": self.connected,
            "prefix": self.prefix,
            "outages": self.outages,
            "last_error": self.last_error,
            "outage_since": self._outage_since,
        }
