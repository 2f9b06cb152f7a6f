"""
The C{manifest} service (the seed's MANIFEST SERVER).

It follows the C{manifest} and C{reports} topics on the bus and answers
L{reports} with every request of the enabled reports, from their first day
to their last.  The list is computed once per configuration and trading
day, then reused.
"""

from __future__ import annotations

import datetime

import attr
from twisted.application.service import Service
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

from harbour.interfaces import IBus, IManifest, IStatusSource
from harbour.oasis import ReportURL, market_today, report_urls
from harbour.schema import ManifestTopic, ReportTopic


@implementer(IManifest, IStatusSource)
@attr.s(eq=False)
class ManifestService(Service):
    """
    Computes the report requests of the current configuration.
    """

    log = Logger()

    reactor = attr.ib()
    bus: IBus = attr.ib()
    manifest: ManifestTopic = attr.ib(factory=ManifestTopic)
    definitions: list = attr.ib(factory=list)
    _version: int = attr.ib(default=0, init=False)
    _cache: tuple | None = attr.ib(default=None, init=False)
    _subscriptions: list = attr.ib(factory=list, init=False)

    @inlineCallbacks
    def startService(self):
        """
        Follow the configuration.
        """
        super().startService()
        self._subscriptions = yield gatherResults([
            self.bus.subscribe("manifest", self._manifest_changed),
            self.bus.subscribe("reports", self._reports_changed),
        ])

    def stopService(self):
        """
        Stop following the configuration.
        """
        super().stopService()
        subscriptions, self._subscriptions = self._subscriptions, []
        return gatherResults([self.bus.unsubscribe(s) for s in subscriptions])

    def _manifest_changed(self, event) -> None:
        self.manifest = ManifestTopic(**event.payload)
        self._changed()

    def _reports_changed(self, event) -> None:
        self.definitions = [ReportTopic(**report) for report in event.payload]
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._cache = None

    def today(self) -> datetime.date:
        """
        @return: The current trading day.
        """
        return market_today(self.manifest, self.reactor.seconds())

    def reports(self) -> list[ReportURL]:
        """
        See L{IManifest.reports}.
        """
        today = self.today()
        if self._cache is None or self._cache[:2] != (self._version, today):
            urls = report_urls(self.manifest, self.definitions, today)
            self._cache = (self._version, today, urls)
        return self._cache[2]

    def status(self) -> dict:
        """
        See L{IStatusSource.status}.
        """
        return {
            "reports": sum(1 for r in self.definitions if r.enabled),
            "requests": len(self._cache[2]) if self._cache else None,
            "base_url": self.manifest.base_url,
        }
