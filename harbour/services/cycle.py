"""
A job run again and again, never twice at once: now on demand, or after a
delay it chooses; with waiters for the run under way, and a stop that
interrupts the run's waits (but never a Redis command).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attr
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

_T = TypeVar("_T")


def guarded(log: Logger, what: str, call: Callable[[], object], service: str) -> Callable[[], Deferred[None]]:
    """
    Wrap C{call}, a periodic job's run, so that it never fails: a
    L{twisted.internet.task.LoopingCall} stops for good on its first
    failure, and a job must outlive any one bad run.

    @param what: Names the job in the log.
    @param service: The service the job is part of, for the log.
    @return: A callable running C{call}, whose L{Deferred} (if it returns
        one) fires once it is over, with L{None}, whatever happened; a
        failure is logged.
    """

    def run() -> Deferred[None]:
        def failed(failure: Failure) -> None:
            log.failure("{what} failed (it runs again on schedule)", failure, what=what, service=service)

        return maybeDeferred(call).addCallbacks(lambda ignored: None, failed)

    return run


@attr.s(eq=False)
class Cycle:
    """
    Runs C{job} one run at a time.

    @ivar job: One run; it fails only on a bug (logged).
    @ivar next_delay: Seconds from the end of a run to the next.
    @ivar active: Whether runs should go on.
    """

    log = Logger()

    clock: IReactorTime = attr.ib()
    job: Callable[[], Deferred[None]] = attr.ib()
    next_delay: Callable[[], float] = attr.ib()
    active: Callable[[], bool] = attr.ib()
    name: str = attr.ib(default="job")
    _timer: IDelayedCall | None = attr.ib(default=None, init=False)
    _running: Deferred[None] | None = attr.ib(default=None, init=False)
    _again: bool = attr.ib(default=False, init=False)
    _waiters: list[Deferred[None]] = attr.ib(factory=list, init=False)
    # Deferred[Any]: whatever the run waits on that a stop may cut short.
    _interruptible: Deferred[Any] | None = attr.ib(default=None, init=False)
    _attempted: bool = attr.ib(default=False, init=False)

    def next_run(self) -> float | None:
        """
        @return: When the next run is due, if one is scheduled.
        """
        timer = self._timer
        return timer.getTime() if timer is not None and timer.active() else None

    def soon(self, delay: float) -> None:
        """
        Run after C{delay} seconds (once the run under way, if any, ends).
        """
        if not self.active():
            return
        self._cancel_timer()
        if self._running is not None:
            self._again = True
            return
        self._timer = self.clock.callLater(delay, self._run)

    def replan(self) -> None:
        """
        What C{next_delay} or C{active} say may have changed: plan the next
        run anew, C{next_delay} seconds from now, or none if runs should
        not go on.  A run under way is left alone: it plans the next as it
        ends, by what they say then.
        """
        if self._running is not None:
            return
        self._cancel_timer()
        if self.active():
            self._timer = self.clock.callLater(self.next_delay(), self._run)

    def now(self) -> Deferred[None]:
        """
        Run now, or wait for the run under way.

        @return: A L{Deferred} firing when that run is over.
        """
        if self._running is None:
            self._cancel_timer()
            self._run()
        if self._running is None:  # over at once
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def when_attempted(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once a first run has ended (or
            L{release} said none will come).
        """
        if self._attempted:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def release(self) -> None:
        """
        Fire everything waiting for a run: it is over, or will not come.
        """
        self._attempted = True
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def interruptible(self, d: Deferred[_T]) -> Deferred[_T]:
        """
        Mark C{d} as what a stop may cancel: only waits and HTTP, never a
        Redis command, whose reply would then go to the next command.
        """
        self._interruptible = d

        def over(result: _T | Failure) -> _T | Failure:
            if self._interruptible is d:
                self._interruptible = None
            return result

        return d.addBoth(over)

    def stop(self) -> Deferred[None]:
        """
        Schedule nothing more, interrupt the run's wait, and fire once the
        run under way (if any) is over.
        """
        self._cancel_timer()
        if self._interruptible is not None:
            self._interruptible.cancel()
        running = self._running if self._running is not None else succeed(None)
        return running.addBoth(lambda ignored: self.release())

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _run(self) -> None:
        self._again = False
        # maybeDeferred: a job that raises at once is a failed run too.
        self._running = running = maybeDeferred(self.job)
        running.addBoth(self._over, running)

    def _over(self, result: None | Failure, running: Deferred[None]) -> None:
        if isinstance(result, Failure) and not result.check(CancelledError):
            self.log.failure("{name} failed", result, name=self.name)
        if self._running is running:
            self._running = None
        self.release()
        if self.active():
            self.soon(0 if self._again else self.next_delay())
