"""
The C{workers} service: what every download worker sharing this hub is
doing, from the C{worker.status} heartbeats they publish on the bus.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from harbour import __version__
from harbour.bus import Subscription
from harbour.config.checks import Check, Invalid, boolean, integer, number, text
from harbour.interfaces import IBus, IEvent, IStatusSource, StatusDocument

#: Heartbeats a worker may miss before it is no longer listed.
MISSED = 3

#: The most workers listed at once: whoever may publish on the bus may
#: beat in the name of as many owners as it likes, and each worker's
#: restart is a new owner (C{host:pid~word}, see
#: L{harbour.processes.process_name}).  Past it, the worker heard from
#: longest ago is forgotten.
WORKERS_KEPT = 1_000


def _passes(check: Check) -> Callable[[object], bool]:
    """
    @return: Whether a value passes C{check}, a configuration value's.
    """

    def passes(value: object) -> bool:
        try:
            check(value)
        except Invalid:
            return False
        return True

    return passes


def _flights(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(flight, dict) for flight in value)


#: The fields a heartbeat carries (see C{DownloadService.beat}), each with
#: the test its value must pass to be kept.  Whoever may publish on the bus
#: may publish a heartbeat: what the page and C{Status} show of it must be
#: of the types they expect.
FIELDS: Mapping[str, Callable[[object], bool]] = MappingProxyType(
    {
        "paused": _passes(boolean()),
        "concurrency": _passes(integer(minimum=0)),
        "bytes_per_second": _passes(number(minimum=0)),
        "in_flight": _flights,
        "prefix": _passes(text()),
        # What a worker waits for before it claims (its first valid
        # configuration), as its download service's status says it.
        "waiting": _passes(text()),
        # The harbour it runs: hub and workers are upgraded together.
        "version": _passes(text()),
    }
)


@implementer(IStatusSource)
@attr.s(eq=False)
class WorkersService(Service):
    """
    Lists the download workers heard from recently.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    bus: IBus = attr.ib()
    interval: float = attr.ib(default=5.0)
    #: This hub's C{--prefix}, if known: a worker whose heartbeat names
    #: another claims from other keys than this hub's tasks.
    prefix: str | None = attr.ib(default=None)
    #: {owner: (when last heard, its last heartbeat)}, the owner heard
    #: from longest ago first.
    _seen: dict[str, tuple[float, dict[str, Any]]] = attr.ib(factory=dict, init=False)
    #: {owner: the fields of its last heartbeat that were dropped}, so that
    #: a worker beating the same wrong fields is logged once.
    _dropped: dict[str, list[str]] = attr.ib(factory=dict, init=False)
    _subscription: Subscription | None = attr.ib(default=None, init=False)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Listen to heartbeats.
        """
        super().startService()
        self._subscription = yield self.bus.subscribe("worker.status", self._heard)

    def _heard(self, event: IEvent) -> None:
        payload = event.payload
        owner = payload.get("owner") if isinstance(payload, dict) else None
        if not isinstance(owner, str) or not owner:
            self.log.warn("a heartbeat without its worker's name ignored", service="workers")
            return
        beat: dict[str, Any] = {"owner": owner}
        dropped = []
        for name, value in payload.items():
            check = FIELDS.get(name)
            if check is not None and check(value):
                beat[name] = value
            elif name != "owner":
                dropped.append(name)
        dropped.sort()
        if dropped and dropped != self._dropped.get(owner):
            self.log.warn(
                "worker {owner}: heartbeat fields ignored, unknown or of the wrong type: {fields}",
                owner=owner,
                fields=", ".join(dropped),
                service="workers",
            )
        self._dropped[owner] = dropped
        problems = [*self._prefix_problem(beat), *self._version_problem(beat)]
        if problems:
            beat["problem"] = "; ".join(problems)
            # Logged once while it lasts: its last beat says whether it was
            # (a worker's own beat has no "problem", which is not among the
            # fields kept).
            previous = self._seen.get(owner)
            if previous is None or previous[1].get("problem") != beat["problem"]:
                self.log.warn(
                    "worker {owner}: {problem}", owner=owner, problem=beat["problem"], service="workers"
                )
        now = self.reactor.seconds()
        # Moved to the end: the first is always the one heard longest ago.
        self._seen.pop(owner, None)
        self._seen[owner] = (now, beat)
        self._forget_silent(now)

    def _forget_silent(self, now: float) -> None:
        """
        Forget the workers not heard from within the last L{MISSED}
        heartbeats, and those past the L{WORKERS_KEPT} heard from last,
        whether or not anyone asks for L{status}: the owners heard from
        are not bounded otherwise.  Each beat forgets at most what has
        fallen silent since the last, taken from the front.
        """
        while self._seen:
            owner, (seen, ignored) = next(iter(self._seen.items()))
            if now - seen <= MISSED * self.interval and len(self._seen) <= WORKERS_KEPT:
                return
            del self._seen[owner]
            self._dropped.pop(owner, None)

    def _prefix_problem(self, beat: dict[str, Any]) -> list[str]:
        """
        A worker started with another C{--prefix} than this hub's claims
        none of its tasks, yet beats as any other.

        @return: The problem, in words, if it is one; else none.
        """
        theirs = beat.get("prefix")
        if self.prefix is None or theirs is None or theirs == self.prefix:
            return []
        problem = (
            f"its --prefix {theirs!r} is not this hub's {self.prefix!r}: it claims none of this "
            f"hub's tasks (start it with --prefix {self.prefix})"
        )
        return [problem]

    def _version_problem(self, beat: dict[str, Any]) -> list[str]:
        """
        A worker of another harbour than this hub's may read and write the
        store otherwise (its scripts, its keys): hub and workers are
        upgraded together.  One that does not say is of a harbour from
        before heartbeats told it.

        @return: The problem, in words, if it is one; else none.
        """
        theirs = beat.get("version", "an older version")
        if theirs == __version__:
            return []
        return [f"it runs harbour {theirs}, this hub {__version__}: upgrade hub and workers together"]

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}: each worker heard from within the last
        few heartbeats, with its tasks in flight.
        """
        now = self.reactor.seconds()
        self._forget_silent(now)
        return {
            owner: {**beat, "seen_seconds_ago": round(now - seen, 1)}
            for owner, (seen, beat) in sorted(self._seen.items())
        }

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        super().stopService()
        if self._subscription is not None:
            return self.bus.unsubscribe(self._subscription)
        return None
