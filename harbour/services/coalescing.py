"""
Work that runs one at a time, however often it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks


@attr.s(eq=False)
class Coalesced:
    """
    Runs C{work} one run at a time: asked while a run is under way, it
    runs once more after it, however many times it was asked meanwhile.

    @ivar work: One run; it must never fail (it logs its own failures).
    """

    work: Callable[[], Deferred[Any]] = attr.ib()
    #: While a run is under way: who waits for the runs to end.
    _waiting: list[Deferred[None]] | None = attr.ib(default=None, init=False)
    _again: bool = attr.ib(default=False, init=False)

    def __call__(self) -> Deferred[None]:
        """
        Run now, or once more after the run under way.

        @return: A L{Deferred} firing once a run that started after this
            call has ended.
        """
        self._again = True
        if self._waiting is None:
            self._waiting = []
            self._loop()
        return self.idle()

    def idle(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once no run is under way.
        """
        d: Deferred[None] = Deferred()
        if self._waiting is None:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    @inlineCallbacks
    def _loop(self) -> Generator[Deferred[Any], Any, None]:
        try:
            while self._again:
                self._again = False
                yield self.work()
        finally:
            waiting, self._waiting = self._waiting or [], None
            for d in waiting:
                d.callback(None)
