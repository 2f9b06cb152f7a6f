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
when it begins, and once when it ends (nothing having failed for a few
seconds), however many commands fail meanwhile, and however many succeed
between them (L{harbour.store.outages}); L{StoreService.status} counts
them.

Before it is ready, the store asks Redis its version (C{INFO server}) and
its C{maxmemory-policy} (C{INFO memory}), and refuses one older than
harbour runs on (Redis 5) or one that evicts any key when full (an
C{allkeys-*} policy: see L{harbour.store.version}) with a
L{ConfigurationError}: a fatal start-up problem, as a refused password is.
A hub's store on an external Redis also takes the lease on its Redis and
prefix first (L{harbour.store.lease}): a second hub there refuses to start.
A hub's store then sets the task counts to what its tasks' listings hold
(L{harbour.store.recount}), putting right any a fault left wrong.

Where Redis is comes from L{harbour.store.address}.  With a
C{redis+sentinel://} URL, every connection of the pool (and every
reconnection) first asks the Sentinels where the master of the service is
now (L{harbour.store.sentinel}): a connection to the old master is lost, or
answers C{READONLY} once it became a replica; the store then asks the
Sentinels where the master is, and drops the connections to any other
server, for the pool to connect them again.  (If the Sentinels name the
very server that answered C{READONLY}, nothing is dropped: reconnecting
would only meet the same answer, and the outage is waited out.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attr
import txredisapi
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.errors import ConfigurationError, HarbourError, StoreRefused, StoreUnavailable
from harbour.interfaces import IBus, IRedis, IStatusSource
from harbour.store.address import RedisAddress
from harbour.store.cluster import check_cluster
from harbour.store.keys import legacy_prefix, tagged_prefix
from harbour.store.lease import HubLease
from harbour.store.migrate import KeyMigration
from harbour.store.outages import Outages
from harbour.store.recount import described, recount
from harbour.store.scripts import REFUSED
from harbour.store.sentinel import SentinelEndpoint
from harbour.store.server import RedisServerProcess
from harbour.store.version import check_eviction, check_version
from harbour.store.wire import StoreFactory

_R = TypeVar("_R")

#: The longest wait, in seconds, between tries to restart the embedded
#: redis-server.
RESTART_MOST = 60.0

#: How long, in seconds, the embedded redis-server must have stayed up for
#: its end to be restarted after C{restart_delay} again: one that ends
#: sooner waits twice as long as the last, up to L{RESTART_MOST}.
STAYED_UP = 60.0


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
    @ivar hub: Whether this is a hub's store, which holds the lease on its
        Redis and prefix (L{harbour.store.lease}), unless its Redis is
        embedded; a worker's is not.
    @ivar lease: The lease a hub's store on an external Redis holds.
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
    hub: bool = attr.ib(default=False, kw_only=True)
    lease: HubLease | None = attr.ib(default=None, init=False)
    _factory: txredisapi.RedisFactory | None = attr.ib(default=None, init=False)
    # Each script's SHA1, by its text: a few scripts, known in advance.
    _script_shas: dict[str, str] = attr.ib(factory=dict, init=False)
    _sentinel: SentinelEndpoint | None = attr.ib(default=None, init=False)
    # Whether the Sentinels are being asked where the master is, after a
    # READONLY.
    _finding_master: bool = attr.ib(default=False, init=False)
    _starting: Deferred[None] | None = attr.ib(default=None, init=False)
    _outcome: Failure | bool | None = attr.ib(default=None, init=False)
    _waiting: list[Deferred[None]] = attr.ib(factory=list, init=False)
    _restart: IDelayedCall | None = attr.ib(default=None, init=False)
    # When the embedded server last became ready, and the wait before
    # restarting it should it end before STAYED_UP (None: restart_delay).
    _server_up_at: float | None = attr.ib(default=None, init=False)
    _crash_delay: float | None = attr.ib(default=None, init=False)
    _watch: LoopingCall | None = attr.ib(default=None, init=False)
    _was_connected: bool = attr.ib(default=False, init=False)
    _outages: Outages = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._outages = Outages(self.reactor, lambda: str(self.address), self.log)
        if self.hub and self.server is None:
            self.lease = HubLease(
                self.reactor, self, self.prefix + "hub", self.prefix, self._describe, self.log
            )

    @property
    def outages(self) -> int:
        """
        How many outages there were so far.
        """
        return self._outages.count

    @property
    def last_error(self) -> str:
        """
        The last failed command's error.
        """
        return self._outages.last_error

    @classmethod
    def from_config(
        cls,
        reactor: IReactorTime,
        redis_url: str | RedisAddress | None,
        data_dir: Path,
        prefix: str = "harbour",
        bus: IBus | None = None,
        hub: bool = False,
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
        @param hub: Whether this is a hub's store (see L{StoreService.hub}).
        @raise ValueError: for a prefix that cannot carry a hash tag.
        """
        tagged, legacy = tagged_prefix(prefix), legacy_prefix(prefix)
        options: dict[str, Any] = {"prefix": tagged, "bus": bus, "legacy_prefix": legacy, "hub": hub}
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
            # SELECT even database 0: a server that wants a password says so
            # to the first command, so that a missing one is caught at start.
            address.db,
            self.poolsize,
            isLazy=True,
            replyTimeout=self.reply_timeout,
            convertNumbers=False,
            # Each connection of the pool sends AUTH (then SELECT) first,
            # every time it connects again too.
            username=address.username,
            password=address.password,
            refused=self._login_refused,
        )
        connected = factory.deferred
        endpoint = address.endpoint(self.reactor, self.connect_timeout)
        if isinstance(endpoint, SentinelEndpoint):
            self._sentinel = endpoint
            endpoint.master_changed = self._master_changed
        factory.startConnecting(_WatchedEndpoint(endpoint, self._connect_failed))
        try:
            yield connected
        except ValueError as e:
            raise address.refused_login(str(e)) from None
        yield self._ride_out(lambda: check_version(self, self._describe, self.log))
        yield self._ride_out(lambda: check_eviction(self, self._describe, self.log))
        clustered = yield self._ride_out(lambda: check_cluster(self, self.prefix, self._describe))
        # Keys without a tag lie in other slots of a cluster, where no
        # command may move them; nor could a harbour of before tags have
        # run on one.
        if self.legacy_prefix is not None and not clustered:
            legacy = self.legacy_prefix
            yield self._ride_out(lambda: KeyMigration(self, legacy, self.prefix).run())
        if self.lease is not None:
            # Before the store is ready: no service writes until this hub
            # is the only one.
            yield self.lease.acquire()
            self.lease.start()
        if self.hub:
            yield self._recount()
        self.log.info("store ready: Redis at {address}", address=self._describe(), service="store")
        self._was_connected = True
        self._watch = LoopingCall(self._check_connection)
        self._watch.clock = self.reactor
        self._watch.start(self.watch_interval, now=False)

    @inlineCallbacks
    def _recount(self) -> Generator[Deferred[Any], Any, None]:
        """
        Set the task counts to what the tasks' listings hold (see
        L{harbour.store.recount}), saying which were wrong.  A Redis that
        cannot answer now leaves them to the next start: no reason for the
        store not to be ready.
        """
        try:
            wrong = yield recount(self, self.prefix)
        except StoreUnavailable as e:
            self.log.warn(
                "task and parse counts not recounted ({error}): they are at the next start",
                error=str(e),
                service="store",
            )
            return
        if wrong:
            self.log.warn(
                "task or parse counts did not follow the tasks; recounted: {counts}",
                counts=described(wrong),
                service="store",
            )

    @inlineCallbacks
    def _ride_out(self, step: Callable[[], Deferred[_R]]) -> Generator[Deferred[Any], Any, _R]:
        """
        Run a start-up step (safe to begin again) until Redis answers it,
        trying again, less and less often, through outages.

        @return: A L{Deferred} firing with the step's result.
        """
        delay = 1.0
        while True:
            try:
                return (yield step())
            except StoreUnavailable:
                # Logged once by the outage.
                yield deferLater(self.reactor, delay, lambda: None)
                delay = min(delay * 2, 30.0)

    def _connect_failed(self, failure: Failure) -> None:
        """
        A connection of the pool could not be made: an outage (the one
        under way, if the pool is connecting again), whether or not any
        command has failed yet, so that a Redis unreachable as the store
        starts is said to be.
        """
        self._outages.failed(f"cannot connect to Redis at {self._describe()}: {failure.getErrorMessage()}")

    def _login_refused(self, error: str) -> None:
        """
        Redis refused a login for now (C{BUSY}, C{LOADING}, its client
        limit, no answer in time): an outage, which the pool rides out by
        connecting again.
        """
        self._outages.failed(f"Redis at {self._describe()} refused a login ({error})")

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

    def _find_master(self, sentinel: SentinelEndpoint) -> None:
        """
        A connection answered C{READONLY}: the server it reached is a replica
        now (a failover the connection outlived), or the Sentinels take a
        replica for the master.  Ask them where the master is, once at a
        time, and drop only the connections to any other server: dropping
        every connection had each one log in again (which also resets its
        backoff) to meet the same C{READONLY}, a storm of reconnections.
        """
        if self._finding_master:
            return
        self._finding_master = True

        def found(master: tuple[str, int]) -> None:
            self._drop_connections(keep=master)

        def unknown(failure: Failure) -> None:
            # No Sentinel named it: the endpoint logged so.
            failure.trap(ConnectError)

        def done(result: object) -> object:
            self._finding_master = False
            return result

        sentinel.find_master().addCallbacks(found, unknown).addBoth(done).addErrback(
            lambda failure: self.log.failure("cannot ask the Sentinels", failure, service="store")
        )

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
        self._server_up_at = self.reactor.seconds()
        server.ended.addCallback(self._server_ended)

    def _server_ended(self, reason: BaseException) -> BaseException:
        """
        Restart the embedded server that ended: after C{restart_delay} if it
        had stayed up L{STAYED_UP} seconds, else after twice the last wait
        (up to L{RESTART_MOST}), so that a server that dies at each start
        (its memory, its disk) is not restarted, and logged, every second.
        """
        if not self.running:
            return reason
        up_at = self._server_up_at
        if self._crash_delay is None or up_at is None or self.reactor.seconds() - up_at >= STAYED_UP:
            delay = self.restart_delay
        else:
            delay = self._crash_delay
        self._crash_delay = min(delay * 2, RESTART_MOST)
        self.log.error(
            "embedded redis-server exited ({reason}); restarting in {delay:g}s",
            reason=str(reason),
            delay=delay,
            service="store",
        )
        self._restart = self.reactor.callLater(delay, self._restart_server)
        return reason

    def _restart_server(self, delay: float | None = None) -> None:
        """
        Start the embedded server again; if it cannot start, try again
        C{delay} seconds on, twice as long each time, up to
        L{RESTART_MOST}: a server that cannot start now (its disk full, its
        binary being replaced) may well start later, and the daemon lives
        on meanwhile.
        """
        self._restart = None
        delay = self.restart_delay if delay is None else delay
        self._start_server().addErrback(self._restart_failed, min(delay * 2, RESTART_MOST))

    def _restart_failed(self, failure: Failure, delay: float) -> None:
        if not self.running:
            return
        self.log.error(
            "could not restart redis-server ({error}); trying again in {delay:g}s",
            error=failure.getErrorMessage(),
            delay=delay,
            service="store",
        )
        self._restart = self.reactor.callLater(delay, self._restart_server, delay)

    def _started(self, outcome: object) -> None:
        if isinstance(outcome, Failure) and not outcome.check(CancelledError):
            if outcome.check(HarbourError):
                # Expected (a refusal, a server that cannot start): those
                # waiting on when_ready say it (a daemon, in one line).
                self.log.debug(
                    "Redis store did not start: {error}", error=outcome.getErrorMessage(), service="store"
                )
            else:
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

    def when_lease_lost(self) -> Deferred[None]:
        """
        @return: A L{Deferred} failing with a L{ConfigurationError} if
            another hub takes this hub's lease (see L{harbour.store.lease});
            it never fires otherwise.
        """
        if self.lease is None:
            return Deferred()
        return self.lease.when_lost()

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
        outages = self._outages
        issued = outages.issue()
        if self._factory is None or not self.connected:
            if self._outcome is None:
                # Not an outage: the store has not connected yet (a Status
                # read as the daemon starts asks at once).  If the embedded
                # server cannot start, or the pool cannot connect, that is
                # logged as such.
                if self.server is not None:
                    return fail(StoreUnavailable("the embedded redis-server is starting"))
                return fail(StoreUnavailable(f"not connected to Redis at {self.address} yet"))
            return fail(outages.failed(f"not connected to Redis at {self.address}"))
        try:
            d = command(self._factory.handler)
        except Exception as e:  # txredisapi raises some errors at once
            return fail(outages.failed(f"Redis at {self.address}: {e}"))
        return d.addCallbacks(
            outages.answered, self._unavailable, callbackArgs=(issued,), errbackArgs=(issued,)
        )

    def _unavailable(self, failure: Failure, issued: int) -> NoReturn:
        # Anything Redis or the connection can fail with: an error reply
        # (BUSY, LOADING, OOM, MISCONF, READONLY...) is ridden out as a
        # lost connection is.  Other exceptions are bugs, and pass, as does
        # txredisapi's InvalidData: a value this side could not encode
        # (a lone surrogate in a text), which no retry would ever send.
        if failure.check(txredisapi.InvalidData):
            failure.raiseException()
        failure.trap(txredisapi.RedisError, TimeoutError)
        message = failure.getErrorMessage()
        if REFUSED in message:
            # A script checked its arguments and wrote nothing (see
            # lua/move.lua): Redis answered, and would answer the same again.
            self._outages.answered(None, issued)
            raise StoreRefused(message[message.index(REFUSED) :])
        if self._sentinel is not None and message.startswith("READONLY"):
            self._find_master(self._sentinel)
        raise self._outages.failed(f"Redis at {self._describe()}: {message}")

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
        if self.lease is not None:
            self.lease.stop()
            if self.connected:
                yield self.lease.give_up()
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
            "outages": self._outages.count,
            "last_error": self._outages.last_error,
            "outage_since": self._outages.since,
            "lease": self.lease.owner if self.lease is not None and self.lease.held else None,
        }


@implementer(IStreamClientEndpoint)
@attr.s(frozen=True)
class _WatchedEndpoint:
    """
    An endpoint telling C{failed} of each connection it could not make
    (but of those given up on, as the pool stops).
    """

    endpoint: IStreamClientEndpoint = attr.ib()
    failed: Callable[[Failure], object] = attr.ib()

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        See L{IStreamClientEndpoint.connect}.
        """
        return self.endpoint.connect(protocolFactory).addErrback(self._failed)

    def _failed(self, failure: Failure) -> Failure:
        if not failure.check(CancelledError):
            self.failed(failure)
        return failure
