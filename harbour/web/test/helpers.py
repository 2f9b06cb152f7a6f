"""
A daemon for the HTTP side's tests: a real bus and in-memory task store,
a C{Status} document the test writes, and requests of whole trading days.
"""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock, Cooperator
from zope.interface import implementer

from harbour.bus import Bus
from harbour.config.watcher import is_configuration_topic
from harbour.errors import BadRequest
from harbour.interfaces import IDaemon, IPausable, ITaskStore, StatusDocument
from harbour.oasis.requests import ReportURL
from harbour.store.memory import MemoryTaskStore
from harbour.web.monitor import Monitor

PACIFIC = ZoneInfo("America/Los_Angeles")


def day_requests(report: str, first: datetime.date, days: int) -> list[ReportURL]:
    """
    @return: One request per trading day of C{report}, from C{first}.
    """
    found = []
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
        end = start + datetime.timedelta(days=1)
        name = f"{report}/{day.isoformat()}.zip"
        found.append(
            ReportURL(
                f"http://oasis.test/{name}",
                name,
                report,
                start.astimezone(datetime.UTC),
                end.astimezone(datetime.UTC),
            )
        )
    return found


@implementer(IDaemon)
@attr.s(eq=False)
class FakeDaemon:
    """
    An L{IDaemon} whose C{Status} services and requests the test sets.
    """

    clock: Clock = attr.ib()
    services: StatusDocument = attr.ib(factory=dict)
    asked: list[ReportURL] = attr.ib(factory=list)
    store: MemoryTaskStore = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self.store = MemoryTaskStore(self.clock)

    def status(self) -> Deferred[StatusDocument]:
        """
        @return: The document, with C{services} as set.
        """
        return succeed({"harbour": "test", "pid": 1, "uptime": 12.0, "services": self.services})

    def reload(self) -> Deferred[tuple[list[str], list[str]]]:
        """
        @raise BadRequest: always.
        """
        raise BadRequest("no config here")

    def refresh(self) -> Deferred[int]:
        """
        @raise BadRequest: always.
        """
        raise BadRequest("no work here")

    def requests(self) -> list[ReportURL]:
        """
        @return: The requests set.
        """
        return self.asked

    def task_store(self) -> ITaskStore:
        """
        @return: The in-memory store.
        """
        return self.store

    def owns(self, topic: str) -> bool:
        """
        @return: Whether C{topic} is a configuration topic, as for a daemon
            with a configuration service.
        """
        return is_configuration_topic(topic)

    def pausable(self, name: str | None) -> dict[str, IPausable]:
        """
        @return: Nothing: no pausable service here.
        """
        return {}


def stepwise(turns: Clock) -> Cooperator:
    """
    @return: A L{Cooperator} that runs one step each second of C{turns}:
        C{turns.advance(1)} stands for a turn of the reactor that runs a
        slice of a layout.
    """
    return Cooperator(
        terminationPredicateFactory=lambda: lambda: True, scheduler=lambda step: turns.callLater(1, step)
    )


def healthy_services(**changes: Any) -> StatusDocument:
    """
    @return: C{Status} services of a daemon with Redis up and no errors.
    """
    services: StatusDocument = {
        "store": {"connected": True, "redis": "redis://127.0.0.1:6379/0"},
        "config": {"errors": [], "reloads": 1},
        "work": {"tasks": {}},
        "workers": {},
        "publications": {"mode": "off"},
        "download": {"paused": False, "bytes_per_second": 0},
    }
    services.update(changes)
    return services


def started_monitor(
    clock: Clock, daemon: FakeDaemon, bus: Bus | None = None, **options: Any
) -> tuple[Monitor, Bus]:
    """
    @param options: L{Monitor}'s keyword arguments.
    @return: A started L{Monitor} of C{daemon} on C{clock}, and its bus.
    """
    bus = bus or Bus()
    monitor = Monitor(clock, bus, daemon, **options)
    monitor.startService()
    return monitor, bus
