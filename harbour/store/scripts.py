"""
The task store's Lua scripts, and what reading their replies needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Any, TypeVar, cast

from twisted.internet.defer import Deferred, FirstError, fail, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from harbour.errors import StoreRefused

_T = TypeVar("_T")

#: How a script's error reply begins when it refused its arguments
#: (C{refuse} in C{lua/move.lua}).
REFUSED = "harbour: bad script argument"


def refused(**numbers: float) -> Deferred[Any] | None:
    """
    Check C{numbers} as the store's scripts check their arguments (see
    C{lua/move.lua}), before anything changes.

    @return: A failure with L{StoreRefused}, as Redis's answer would be, if
        one of C{numbers} is not a finite number; else L{None}.
    """
    for name, value in numbers.items():
        if not math.isfinite(value):
            return fail(StoreRefused(f"{REFUSED}: {name} is not a finite number: {value!r}"))
    return None


def load_script(name: str) -> str:
    """
    @return: The Lua script C{lua/<name>.lua}, after the helpers every
        script shares (C{lua/move.lua}).
    """
    scripts = resources.files("harbour.store") / "lua"
    return (scripts / "move.lua").read_text() + (scripts / f"{name}.lua").read_text()


def answers(replies: Sequence[Deferred[_T]]) -> Deferred[list[_T]]:
    """
    @return: A L{Deferred} firing with every reply, in order, or failing as
        the first that failed, with its own error (a L{StoreUnavailable},
        say, not L{twisted.internet.defer.FirstError}); the others'
        failures are consumed, not left unhandled.
    """
    d = gatherResults(list(replies), consumeErrors=True)

    def first(failure: Failure) -> Failure:
        failure.trap(FirstError)
        return cast(FirstError, failure.value).subFailure

    return d.addErrback(first)


def pairs(flat: Sequence[_T]) -> dict[_T, _T]:
    """
    @return: A flat Redis reply (key, value, key, value...) as a dict.
    """
    return dict(zip(flat[::2], flat[1::2]))


def clock_argument(seconds: float | None) -> str:
    """
    @param seconds: The time a script is to use, or L{None} for Redis's
        own C{TIME}.
    @return: The script's C{ARGV[2]}.
    """
    return "" if seconds is None else repr(seconds)


def follows_redis_time(clock: IReactorTime) -> bool:
    """
    @return: Whether a store given C{clock} takes its time from Redis: yes
        for a reactor; no for a test's L{Clock}, which it follows.
    """
    return not isinstance(clock, Clock)
