"""
C{twistd oasis-sim}: its options, and the service that serves a simulator
on an endpoint.
"""

from __future__ import annotations

import datetime

import attr
from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from harbour.testing.simulator.faults import Faults
from harbour.testing.simulator.resource import OasisSimulator


class Options(usage.Options):
    """
    The options of C{twistd oasis-sim}.
    """

    optParameters = [
        ["port", "p", 8700, "TCP port to listen on.", int],
        ["interface", None, "127.0.0.1", "Address to listen on."],
        ["seed", "s", 0, "Seed of the generated data and faults.", int],
        ["min-interval", None, 5.0, "Seconds between accepted requests (OASIS: about 5).", float],
        ["faults", None, "", "Fault knobs, such as latency=0.1,error_rate=0.1,reset_rate=0.05."],
        ["nodes", None, 3, "Price nodes per answer (the size of the data).", int],
        ["first-day", None, "2020-01-01", "First trading day with data."],
        ["last-day", None, None, "Last trading day with data (default: the last one published)."],
        [
            "publish-offset",
            None,
            0.0,
            "Hours after its start at which a trading day is published (-11: 13:00 the day before).",
            float,
        ],
    ]
    optFlags = [
        ["throttle-page", None, "Answer throttled requests with OASIS's page under HTTP 200, not 429."],
        ["broken-log", None, "Answer ATL_PUB and ATL_PUB_SCHED with an error, as a source without them."],
    ]

    def postOptions(self) -> None:
        """
        Parse the fault spec and the days.
        """
        try:
            self["faults"] = Faults.parse(self["faults"])
            self["first-day"] = datetime.date.fromisoformat(self["first-day"])
            if self["last-day"]:
                self["last-day"] = datetime.date.fromisoformat(self["last-day"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


@attr.s(eq=False)
class SimulatorService(Service):
    """
    Serves a simulator on a Twisted endpoint and logs its base URL.
    """

    log = Logger()

    reactor: IReactorTCP = attr.ib()
    endpoint: str = attr.ib()
    simulator: OasisSimulator = attr.ib()
    _port: IListeningPort | None = attr.ib(default=None, init=False)

    def privilegedStartService(self) -> None:
        """
        Listen now (once), so that a port in use stops start-up.
        """
        super().privilegedStartService()
        if self._port is not None:
            return
        failures: list[Failure] = []
        serverFromString(self.reactor, self.endpoint).listen(self.simulator.site()).addCallbacks(
            self._listening, failures.append
        )
        if failures:
            failures[0].raiseException()

    def _listening(self, port: IListeningPort) -> None:
        self._port = port
        self.log.info("OASIS simulator at {url}", url=self.base_url())

    def base_url(self) -> str:
        """
        The C{base_url} of the simulated OASIS API (once listening).
        """
        assert self._port is not None, "base_url() before listening"
        address = self._port.getHost()
        assert isinstance(address, (IPv4Address, IPv6Address))
        return f"http://{address.host}:{address.port}/oasisapi"

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        super().stopService()
        if self._port is not None:
            return self._port.stopListening()
        return None


def makeService(options: Options) -> SimulatorService:
    """
    The C{twistd oasis-sim} entry point.
    """
    from twisted.internet import reactor

    simulator = OasisSimulator(
        reactor,
        seed=options["seed"],
        nodes=options["nodes"],
        min_interval=options["min-interval"],
        throttle_page=options["throttle-page"],
        faults=options["faults"],
        first_day=options["first-day"],
        last_day=options["last-day"],
        publish_offset=options["publish-offset"] * 3600,
        broken_log=options["broken-log"],
    )
    endpoint = f"tcp:{options['port']}:interface={options['interface']}"
    return SimulatorService(reactor, endpoint, simulator)
