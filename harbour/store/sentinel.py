"""
Finding the master of a C{redis+sentinel://} service: before every
connection of the store's pool (and every reconnection), the Sentinels are
asked, in turn, where the master is now, so that after a failover the pool
follows the new master.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import attr
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectError, ConnectionLost
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from harbour.store.address import RedisAddress


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
