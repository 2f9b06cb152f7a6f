"""
Claims whose answers were lost, given back.

A claim is one script: if its reply is lost (the connection drops, or the
reply times out while Redis is stalled), Redis may have run it, and the
tasks it claimed are held by nobody until their leases run out, each
having used an attempt (or, for a parse, counting as a parse cut off: a
file cut off so three times is left unparsable).  Redis stalled for 12 s
ran nearly every command whose reply timed out meanwhile.

So each claim call carries a nonce of its own, which the script keeps on
every task it claims.  A call that fails is remembered, and the next claim
of the same kind and owner first gives back (C{lua/unclaim.lua}) whatever
is held under the nonces remembered: due again at once, the attempt not
counted.  A nonce is forgotten once found (the call ran, and will not run
again) or once its lease would have run out (the tasks are back anyway);
until then, as a call sent on a dropped connection may yet be run after
the next, each claim looks again.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.errors import StoreUnavailable
from harbour.store.scripts import load_script

UNCLAIM = load_script("unclaim")

#: The kinds of claim, as C{lua/unclaim.lua} names them.
DOWNLOAD = "download"
PARSE = "parse"

#: The most lost calls remembered per kind and owner (the oldest go first:
#: an outage fails a claim every few seconds, each of them cheap to look
#: for, but not without end).
MOST_REMEMBERED = 1_000


@attr.s(eq=False)
class LostClaims:
    """
    The claim calls whose answers were lost, and their giving back.

    @ivar clock: Tells when a remembered call's lease would have run out.
    @ivar run: Runs one of the store's scripts (L{RedisTaskStore._run}).
    """

    log = Logger()

    clock: IReactorTime = attr.ib()
    run: Callable[..., Deferred[Any]] = attr.ib()
    # (kind, owner) -> nonce -> when its lease would have run out.
    _lost: dict[tuple[str, str], dict[str, float]] = attr.ib(factory=dict, init=False)
    # A nonce is this store's own random part and a count: unique across
    # processes, with no system call per claim.
    _nonces: Iterator[str] = attr.ib(
        factory=lambda: map(f"{secrets.token_hex(8)}-{{}}".format, itertools.count()), init=False
    )

    def claim(self, kind: str, owner: str, lease_seconds: float, script: str, *args: object) -> Deferred[Any]:
        """
        Run a claim C{script} with C{args} and a nonce of its own (its last
        argument), once the claims of C{kind} by C{owner} whose answers
        were lost are given back.

        @return: A L{Deferred} firing with the script's reply, or failing as
            the giving back or the claim failed.
        """
        nonce = next(self._nonces)

        def lost(failure: Failure) -> Failure:
            failure.trap(StoreUnavailable)
            self._remember(kind, owner, nonce, lease_seconds)
            return failure

        def claim(ignored: object = None) -> Deferred[Any]:
            return self.run(script, *args, nonce).addErrback(lost)

        remembered = self._remembered(kind, owner)
        if not remembered:
            return claim()
        return (
            self.run(UNCLAIM, kind, owner, *remembered)
            .addCallback(self._found, kind, owner)
            .addCallback(claim)
        )

    def _remember(self, kind: str, owner: str, nonce: str, lease_seconds: float) -> None:
        lost = self._lost.setdefault((kind, owner), {})
        lost[nonce] = self.clock.seconds() + lease_seconds
        if len(lost) > MOST_REMEMBERED:
            del lost[next(iter(lost))]

    def _remembered(self, kind: str, owner: str) -> list[str]:
        """
        @return: The nonces of C{owner}'s lost calls of C{kind} whose
            leases may still run, the others forgotten.
        """
        lost = self._lost.get((kind, owner))
        if not lost:
            return []
        now = self.clock.seconds()
        for nonce in [nonce for nonce, until in lost.items() if until <= now]:
            del lost[nonce]
        if not lost:
            del self._lost[kind, owner]
        return list(lost)

    def _found(self, reply: list[Any], kind: str, owner: str) -> None:
        given, *found = reply
        lost = self._lost.get((kind, owner), {})
        for nonce in found:
            lost.pop(nonce, None)
        if given:
            self.log.info(
                "gave back {count} {kind} claims of {owner} whose answers were lost",
                count=given,
                kind=kind,
                owner=owner,
                service="store",
            )
