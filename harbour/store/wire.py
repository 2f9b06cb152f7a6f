"""
Redis's wire protocol as harbour's store speaks it: txredisapi's, with each
command built in one pass.

Every script harbour runs names its eleven fixed keys and a few arguments
(a claim's, a finish's: one batch of each per few downloaded files);
txredisapi encodes each of them, and each of their lengths, through a
general converter, which took a third of a small file's Redis time.

And a login refused once the pool has been connected is not the end of
it: txredisapi stops the whole pool from ever connecting again, while a
Redis stalled past the reply timeout, or at its client limit, refuses only
for a while.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger


class StoreProtocol(txredisapi.RedisProtocol):
    """
    txredisapi's protocol, building commands faster, and logging in again
    after an outage without giving up for good.
    """

    log = Logger()
    # txredisapi's own, typed: who waits for the login.
    _waiting_for_connect: list[Deferred[Any]]

    def connectionMade(self) -> Deferred[None]:
        """
        Log in: C{AUTH}, then C{SELECT}.  Refused on the pool's first
        connections, the configuration is at fault (a wrong password, a
        database Redis lacks), and the pool stops, as txredisapi has it;
        refused later, the connection is dropped and the pool connects
        again, as after any other loss.
        """
        if self.factory.deferred is not None:
            return super().connectionMade()
        return self._log_in_again()

    @inlineCallbacks
    def _log_in_again(self) -> Generator[Deferred[Any], Any, None]:
        try:
            if self.password is not None:
                answer = yield self.auth(self.password, self.username)
                if isinstance(answer, txredisapi.ResponseError):
                    raise answer
            if self.dbid is not None:
                answer = yield self.select(self.dbid)
                if isinstance(answer, txredisapi.ResponseError):
                    raise answer
        except Exception as e:
            self.log.warn("Redis refused a login, tried again later: {error}", error=str(e), service="store")
            self.transport.loseConnection()
            return
        # As txredisapi's own, once logged in.
        self.connected = 1
        self._ready = True
        waiting, self._waiting_for_connect = self._waiting_for_connect, []
        for d in waiting:
            d.callback(self)

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


class StoreFactory(txredisapi.RedisFactory):
    """
    txredisapi's connection pool, speaking L{StoreProtocol}.
    """

    protocol = StoreProtocol
