"""
Whether the configuration a claiming service works by is in force yet.

Until the first C{download} and C{work} topics are heard, a service's
settings are the schema's defaults, which may not be the operator's: a
configuration with errors at start publishes nothing (nor does a hub's,
for its workers), and the defaults would stay in force.  Files would then
go into C{<data-dir>/reports} rather than the configured directory, at
the default pace, and once the configuration was put right its directory
would be the first one set, so the files downloaded meanwhile would be
neither found nor fetched again.  So the download and tables services
claim nothing until L{FirstConfiguration.arrives} fires.
"""

from __future__ import annotations

import attr
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

#: The topics a claiming service needs in force before it claims: the
#: download directory, pace and concurrency; the leases' length.
NEEDED = frozenset({"download", "work"})

#: What such a service says, in C{Status}, that it waits for.
WAITING = "a valid configuration"


@attr.s(eq=False)
class FirstConfiguration:
    """
    The topics still to be heard before a service's settings are the
    configuration's.

    @ivar missing: The topics not heard yet.
    """

    missing: set[str] = attr.ib(factory=lambda: set(NEEDED))
    _waiting: list[Deferred[None]] = attr.ib(factory=list, init=False)

    @classmethod
    def given(cls, configured: bool) -> FirstConfiguration:
        """
        @param configured: Whether the settings a service was made with are
            the configuration in force (tests give them so).
        @return: One missing nothing if so, else every L{NEEDED} topic.
        """
        return cls(set() if configured else set(NEEDED))

    @property
    def arrived(self) -> bool:
        """
        Whether every needed topic has been heard.
        """
        return not self.missing

    def heard(self, topic: str) -> None:
        """
        C{topic}'s value, a valid one, is now in force: once every needed
        topic's is, whoever waits goes on.
        """
        self.missing.discard(topic)
        if self.missing:
            return
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def wait(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once every needed topic has been
            heard (at once if it has); cancelled, it fails with
            L{twisted.internet.defer.CancelledError}.
        """
        d: Deferred[None] = Deferred(canceller=self._waiting.remove)
        if self.arrived:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    def arrives(self, log: Logger, message: str, **fields: object) -> Deferred[bool]:
        """
        Wait as L{wait} does, for a service's start: logging C{message}
        (with C{fields}) once, at C{info}, if there is anything to wait for.

        @return: A L{Deferred} firing with C{True} once every needed topic
            has been heard (at once if it has), or C{False} if L{stop} came
            first: the service stopped meanwhile and starts nothing.
        """
        if not self.arrived:
            log.info(message, **fields)

        def stopped(failure: Failure) -> bool:
            failure.trap(CancelledError)
            return False

        return self.wait().addCallbacks(lambda ignored: True, stopped)

    def stop(self) -> None:
        """
        Cancel every wait: the service stops.
        """
        for d in list(self._waiting):
            d.cancel()

    def status(self) -> dict[str, str]:
        """
        @return: C{{"waiting": WAITING}} while a needed topic is missing,
            else nothing: the part of C{Status} saying why nothing runs.
        """
        return {} if self.arrived else {"waiting": WAITING}
