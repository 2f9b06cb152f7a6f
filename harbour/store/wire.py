"""
Redis's wire protocol as harbour's store speaks it: txredisapi's, with each
command built in one pass.

Every script harbour runs names its eleven fixed keys and a few arguments
(a claim's, a finish's: one batch of each per few downloaded files);
txredisapi encodes each of them, and each of their lengths, through a
general converter, which took a third of a small file's Redis time.

The pool is quiet through an outage: each of its connections tries again
and again, and Twisted's L{ClientService} logs every try at info, as
txredisapi logs every dead connection it meets (L{StoreFactory}); the store
logs the outage once instead.

And a login Redis refuses is the end of the pool only when no retry can
change the answer: a wrong or missing password, a user without the right,
a database Redis does not have (L{LOGIN_REFUSALS}), on the pool's first
connections.  txredisapi stopped the pool for any refusal, while a Redis
running a long script (C{BUSY}), loading its data (C{LOADING}), at its
client limit, or stalled past the reply timeout refuses only for a while.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import txredisapi
from OpenSSL import SSL
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import FilteringLogObserver, Logger, LogLevel, LogLevelFilterPredicate, globalLogPublisher
from twisted.python.failure import Failure

#: Words of the error replies to C{AUTH} or C{SELECT} that no retry changes:
#: a password refused (Redis 6 and later, and 5), a password needed, a
#: password given to a server without one (6 and later, and 5), a user
#: without the right, a database the server does not have.
LOGIN_REFUSALS = (
    "WRONGPASS",
    "invalid password",
    "NOAUTH",
    "called without any password configured",
    "no password is set",
    "NOPERM",
    "DB index is out of range",
    "invalid DB index",
    "SELECT is not allowed in cluster mode",
)


def refused_for_good(error: BaseException) -> bool:
    """
    @return: Whether C{error}, met logging in, is Redis refusing the
        configuration (L{LOGIN_REFUSALS}) rather than anything a retry
        may get past.
    """
    return isinstance(error, txredisapi.ResponseError) and any(
        words in str(error) for words in LOGIN_REFUSALS
    )


class StoreProtocol(txredisapi.RedisProtocol):
    """
    txredisapi's protocol, building commands faster, and giving up on a
    refused login only when it is the configuration's fault.
    """

    # txredisapi's own, typed: who waits for the login.
    _waiting_for_connect: list[Deferred[Any]]
    # Why the connection was lost, if it was.
    _lost: Failure | None = None

    def connectionMade(self) -> Deferred[None]:
        """
        Log in: C{AUTH}, then C{SELECT}.  Refused on the pool's first
        connections for a reason no retry changes (L{refused_for_good}, or
        a TLS handshake that failed), the configuration is at fault, and
        the pool stops; otherwise the connection is dropped and the pool
        connects again, as after any other loss.
        """
        return self._log_in()

    @inlineCallbacks
    def _log_in(self) -> Generator[Deferred[Any], Any, None]:
        step = "auth"
        try:
            if self.password is not None:
                answer = yield self.auth(self.password, self.username)
                if isinstance(answer, txredisapi.ResponseError):
                    raise answer
            step = f"set dbid={self.dbid}"
            if self.dbid is not None:
                answer = yield self.select(self.dbid)
                if isinstance(answer, txredisapi.ResponseError):
                    raise answer
        except Exception as e:
            self.transport.loseConnection()
            factory: StoreFactory = self.factory
            handshake_failed = self._lost is not None and self._lost.check(SSL.Error) is not None
            if factory.deferred is not None and (refused_for_good(e) or handshake_failed):
                # As txredisapi words it, for RedisAddress.refused_login.
                factory.stopTrying()
                factory.connectionError(f"Redis error: could not {step}: {e}")
            else:
                factory.refused(f"could not {step}: {e}")
            return
        # As txredisapi's own, once logged in.
        self.connected = 1
        self._ready = True
        waiting, self._waiting_for_connect = self._waiting_for_connect, []
        for d in waiting:
            d.callback(self)

    def connectionLost(self, why: Failure) -> None:
        """
        Remember why, for a login it cuts short.
        """
        self._lost = why
        super().connectionLost(why)

    def _build_command(self, *args: object, **kwargs: object) -> bytes:
        """
        @return: The command C{args} in Redis's protocol: a text is encoded
            with the connection's charset; anything else but bytes as
            txredisapi encodes it.
        """
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is bytes:
                value = arg
            elif type(arg) is str and self.charset is not None:
                try:
                    value = arg.encode(self.charset, self.errors)
                except UnicodeEncodeError:
                    value = self._encode_value(arg)  # raises txredisapi's InvalidData
            else:
                value = self._encode_value(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
        return b"".join(parts)


class QuietClientService(ClientService):
    """
    Twisted's L{ClientService}, logging its warnings and errors only: not
    each try to connect again, at info (four connections of a pool, a line
    each every few seconds of an outage, some 1,400 lines an hour).
    """

    _log = Logger(
        namespace="harbour.store.wire.QuietClientService",
        observer=FilteringLogObserver(globalLogPublisher, [LogLevelFilterPredicate(LogLevel.warn)]),
    )


class StoreFactory(txredisapi.RedisFactory):
    """
    txredisapi's connection pool, speaking L{StoreProtocol}.

    @ivar refused: Told of each login that failed but for which the pool
        connects again, with the error (L{StoreService} makes it an
        outage); by default, the first of a run of them, until a login
        succeeds, is logged.
    """

    protocol = StoreProtocol
    log = Logger()

    def __init__(self, *args: Any, refused: Callable[[str], object] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = self._log_refusal if refused is None else refused
        self._refusing = False

    def _log_refusal(self, error: str) -> None:
        if not self._refusing:
            self._refusing = True
            self.log.warn("Redis refused a login, tried again later: {error}", error=error, service="store")

    def addConnection(self, conn: StoreProtocol) -> None:
        """
        Add a connection logged in to the pool: a run of refusals is over.
        """
        self._refusing = False
        super().addConnection(conn)

    def delConnection(self, conn: StoreProtocol) -> None:
        """
        Take a lost connection out of the pool, and out of the queue
        commands take connections from too: there, txredisapi would find it
        dead and log so, once per lost connection.
        """
        super().delConnection(conn)
        while conn in self.connectionQueue.pending:
            self.connectionQueue.remove(conn)

    def startConnecting(self, endpoint: IStreamClientEndpoint) -> None:
        """
        Open and keep C{poolsize} connections to C{endpoint}, as txredisapi
        does, each through a L{QuietClientService}.
        """
        for ignored in range(self.poolsize):
            slot = txredisapi._PoolSlot(self, endpoint, self.reconnect)
            slot.service = QuietClientService(
                endpoint,
                txredisapi._SlotFactory(self, slot),
                retryPolicy=slot._retryDelay,
                prepareConnection=slot._prepareConnection,
            )
            self.slots.append(slot)
            slot.start()
