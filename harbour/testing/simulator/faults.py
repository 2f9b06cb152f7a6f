"""
What can go wrong with a request besides an OASIS error: the fault knobs,
the fate each request meets, and throttling of requests that come too
soon.
"""

from __future__ import annotations

import random
from typing import Any

import attr
from twisted.internet.interfaces import IReactorTime

#: The bytes of an endless answer's body, should a client read it all.
ENDLESS_MOST = 64 << 20

#: The extra header lines of a flooded answer's head, of 70 bytes each.
FLOOD_LINES = 1_500

#: The faults a request can meet, in the order their rates are stacked (new
#: ones last, so that a seed's fates for the earlier ones stay as they were).
FAULTS = ("error", "reset", "truncate", "trickle", "endless", "flood")


@attr.s(frozen=True, auto_attribs=True)
class Faults:
    """
    Fault knobs: each C{*_rate} is the chance that a request meets that
    fault (decided per URL and attempt, from the seed).

    @ivar latency: Seconds added before every answer.
    @ivar retry_after: The C{Retry-After} of a 5xx, in seconds (C{inf}
        is sent as C{inf}, as a hostile server might).
    @ivar trickle_bytes: Bytes per step of a trickle (one step per 10 ms).
    @ivar endless_rate: The chance of a 503 whose body goes on (64 KiB
        every 10 ms, up to L{ENDLESS_MOST}) until the client goes away; a
        client still connected after 1 MiB is recorded as reading on.
    @ivar flood_rate: The chance of an answer whose head holds
        L{FLOOD_LINES} extra header lines (over 64 KiB).
    """

    latency: float = 0.0
    error_rate: float = 0.0
    retry_after: float = 1.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    trickle_rate: float = 0.0
    trickle_bytes: int = 512
    endless_rate: float = 0.0
    flood_rate: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """
        Parse C{"latency=0.1,error_rate=0.2,..."}.

        @raise ValueError: for an unknown name or a bad number.
        """
        fields = {f.name: f for f in attr.fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            if name not in fields:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(fields)}")
            values[name] = int(value) if fields[name].type in (int, "int") else float(value)
        return cls(**values)


@attr.s(eq=False, auto_attribs=True)
class Fates:
    """
    Decides the fault each request meets: the same for the same URL and
    attempt number under the same seed, so that a retried request meets a
    repeatable sequence of fates.
    """

    _attempts: dict[str, int] = attr.ib(factory=dict, init=False)

    def fate(self, url: str, seed: int, faults: Faults) -> str:
        """
        @param url: The request, its arguments sorted.
        @param seed: The simulator's seed.
        @param faults: The knobs in force.
        @return: The fault this request meets: one of L{FAULTS}, or C{""}
            for none.
        """
        attempt = self._attempts[url] = self._attempts.get(url, 0) + 1
        roll = random.Random(f"{seed}|{url}|{attempt}").random()
        for name in FAULTS:
            rate = getattr(faults, name + "_rate")
            if roll < rate:
                return name
            roll -= rate
        return ""


@attr.s(eq=False, auto_attribs=True)
class Throttle:
    """
    Refuses requests that start less than a minimum interval after the last
    accepted one, as OASIS's acceptable use policy does.
    """

    _last_start: float | None = attr.ib(default=None, init=False)

    def throttled(self, clock: IReactorTime, min_interval: float) -> bool:
        """
        @return: Whether a request starting now comes too soon after the
            last accepted one (which it then does not replace).
        """
        now = clock.seconds()
        if self._last_start is not None and now - self._last_start < min_interval:
            return True
        self._last_start = now
        return False
