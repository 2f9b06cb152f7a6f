"""
What a download service is doing, as its heartbeat and C{Status} show it:
the downloads under way, the recent byte rate, what finished, and each
report's last success.
"""

from __future__ import annotations

import time
from typing import Any

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from harbour.oasis.client import Transfer
from harbour.store.tasks import Task

#: Seconds the rate figure averages over.
RATE_WINDOW = 10.0


@attr.s(auto_attribs=True, eq=False)
class Flight:
    """
    A download under way.

    @ivar request: The client's request, which a stop cancels.
    """

    task: Task
    transfer: Transfer
    request: Deferred[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """
        @return: What C{Status} shows of it.
        """
        return {
            "id": self.task.id,
            "report": self.task.report,
            "filename": self.task.filename,
            "bytes": self.transfer.received,
            "started": self.transfer.started,
            "attempt": self.task.attempts,
        }


@attr.s(eq=False)
class DownloadActivity:
    """
    The running record of one download service.
    """

    clock: IReactorTime = attr.ib()
    #: Each download under way, by its task and claim: two claims of one
    #: task (a lease lost, the task claimed again by a sibling worker) may
    #: both be downloading for a while.
    in_flight: dict[tuple[str, int], Flight] = attr.ib(factory=dict, init=False)
    finished: dict[str, int] = attr.ib(factory=dict, init=False)
    last_success: dict[str, float] = attr.ib(factory=dict, init=False)
    _per_second: dict[int, int] = attr.ib(factory=dict, init=False)

    def start(self, task: Task) -> Flight:
        """
        @return: The record of a download of C{task} starting now.
        """
        flight = self.in_flight[task.id, task.claim] = Flight(task, Transfer(task.url))
        return flight

    def end(self, task: Task) -> None:
        """
        The download of C{task} is over, whatever became of it.
        """
        self.in_flight.pop((task.id, task.claim), None)

    def concluded(self, task: Task, state: str, success: bool) -> None:
        """
        C{task} ended in C{state}; a C{success} is its report's latest.
        """
        if success:
            self.last_success[task.report] = self.clock.seconds()
        self.finished[state] = self.finished.get(state, 0) + 1

    def count_bytes(self, size: int) -> None:
        """
        C{size} bytes arrived now.
        """
        second = int(self.clock.seconds())
        self._per_second[second] = self._per_second.get(second, 0) + size
        if len(self._per_second) > RATE_WINDOW + 1:
            for old in [s for s in self._per_second if s < second - RATE_WINDOW]:
                del self._per_second[old]

    def bytes_per_second(self) -> float:
        """
        @return: The download rate over the last few seconds.
        """
        horizon = self.clock.seconds() - RATE_WINDOW
        return sum(n for second, n in self._per_second.items() if second >= horizon) / RATE_WINDOW

    def heartbeat(self) -> dict[str, Any]:
        """
        @return: The part of the status a heartbeat carries.
        """
        return {
            "bytes_per_second": round(self.bytes_per_second()),
            "in_flight": [flight.to_json() for flight in self.in_flight.values()],
        }

    def status(self) -> dict[str, Any]:
        """
        @return: What C{Status} adds to the heartbeat.
        """
        return {
            "finished": dict(self.finished),
            "last_success": {
                report: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
                for report, moment in self.last_success.items()
            },
        }
