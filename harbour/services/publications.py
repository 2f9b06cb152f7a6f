"""
The C{publications} service: follows OASIS's Publications and Revisions log.

With C{follow_publications} it reads the log (C{ATL_PUB}) every
C{publications_interval}, and soon after each publication the Publication
Schedule (C{ATL_PUB_SCHED}) announces, through the shared L{OasisClient}:

- the newest day the log shows published caps each report's requests
  (L{published_through}, which the manifest asks), so no request is spent
  on a day OASIS has not published yet; when the caps move,
  C{publications.updated} tells the work service to refresh;
- every entry read is handed to the observers (the work service, which
  puts revised tasks back to C{pending});
- what it learned (the days, and how far the log has been read) is kept in
  Redis, so a restart reads on from there rather than from the start.

When the log cannot be read for a whole C{publications_interval} (or was
never read), the caps are dropped (plain date ranges) until it can;
C{Status} and the log say so.  Reports the log does not mention (group
zips, other sources) always use date ranges.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IPublications, IRedis, IStatusSource
from harbour.oasis.client import OasisClient
from harbour.oasis.publications import Publication, parse_log, parse_schedule
from harbour.oasis.requests import gmt
from harbour.store.tasks import pairs

#: Each read starts this much before where the last one ended: an entry can
#: appear in the log a little after the time it carries.
OVERLAP = 3600.0
#: How far back the first read looks, with nothing known yet.
LOOKBACK = 7 * 86400.0
#: The longest span read after a long stop (three requests).
CATCH_UP = 93 * 86400.0
#: The longest span of one request (OASIS refuses more than 31 days).
SPAN = 31 * 86400.0
#: How often the publication schedule is read.
SCHEDULE_EVERY = 86400.0
#: How long after a scheduled publication the log is read.
AFTER_PUBLICATION = 60.0
#: The longest wait before reading again after a failed read.
RETRY = 60.0
#: The largest publications answer accepted.
MAX_ANSWER = 64 << 20

LEARNING = "learning"
FOLLOWING = "following"
DATE_RANGES = "date ranges"
OFF = "off"




def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


@implementer(IPublications, IStatusSource)
@attr.s(eq=False)
class PublicationsFollower(Service):
    """
    Follows OASIS's publications log, keeping what it learns in Redis.

    @ivar ready: Called before each read; fires once Redis can be used.
    """

    log = Logger()

    reactor: Any = attr.ib()
    bus: IBus = attr.ib()
    redis: IRedis = attr.ib()
    client: OasisClient = attr.ib()
    prefix: str = attr.ib(default="harbour:")
    ready: Callable[[], Deferred] = attr.ib(default=lambda: succeed(None))
    manifest: ManifestTopic = attr.ib(factory=ManifestTopic)
    definitions: list[ReportTopic] = attr.ib(factory=list)
    _observers: list = attr.ib(factory=list, init=False)
    _subscriptions: list = attr.ib(factory=list, init=False)
    _published: dict = attr.ib(factory=dict, init=False)
    _read_through: float | None = attr.ib(default=None, init=False)
    _loaded: bool = attr.ib(default=False, init=False)
    _schedule: list = attr.ib(factory=list, init=False)
    _schedule_read: float = attr.ib(default=float("-inf"), init=False)
    _mode: str = attr.ib(default=LEARNING, init=False)
    _error: str = attr.ib(default="", init=False)
    _last_success: float | None = attr.ib(default=None, init=False)
    _reads: int = attr.ib(default=0, init=False)
    _failures: int = attr.ib(default=0, init=False)
    _timer: Any = attr.ib(default=None, init=False)
    _reading: Deferred | None = attr.ib(default=None, init=False)
    _again: bool = attr.ib(default=False, init=False)
    _waiters: list = attr.ib(factory=list, init=False)
    _interruptible: Deferred | None = attr.ib(default=None, init=False)
    _attempted: bool = attr.ib(default=False, init=False)

    @property
    def following(self) -> bool:
        """
        Whether the publications log is followed.
        """
        return self.manifest.follow_publications

    def observe(self, observer: Callable[[list[Publication]], Any]) -> None:
        """
        See L{IPublications.observe}.
        """
        self._observers.append(observer)

    @inlineCallbacks
    def startService(self):
        """
        Follow the configuration, and with it the log.
        """
        super().startService()
        self._subscriptions = yield gatherResults([
            self.bus.subscribe("manifest", self._manifest_changed),
            self.bus.subscribe("reports", self._reports_changed),
        ])

    @inlineCallbacks
    def stopService(self):
        """
        Stop following the configuration and the log.
        """
        super().stopService()
        subscriptions, self._subscriptions = self._subscriptions, []
        yield gatherResults([self.bus.unsubscribe(s) for s in subscriptions])
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._interruptible is not None:
            self._interruptible.cancel()
        if self._reading is not None:
            yield self._reading
        self._release_waiters()

    def _manifest_changed(self, event) -> None:
        old, self.manifest = self.manifest, ManifestTopic(**event.payload)
        if old.base_url != self.manifest.base_url:
            self._published, self._read_through, self._loaded = {}, None, False
            self._schedule, self._schedule_read = [], float("-inf")
        if self.following:
            self._read_soon(0)
        else:
            self._mode = OFF
            self._release_waiters()

    def _reports_changed(self, event) -> None:
        self.definitions = [ReportTopic(**report) for report in event.payload]

    def published_through(self) -> dict[str, datetime.date]:
        """
        See L{IPublications.published_through}: none while falling back to
        date ranges.
        """
        if not self.following or self._mode == DATE_RANGES:
            return {}
        caps = {}
        for report in self.definitions:
            day = self._published.get(_key(report))
            if report.enabled and day is not None:
                caps[report.name] = day
        return caps

    def when_known(self) -> Deferred:
        """
        @return: A L{Deferred} firing once the first read of the log has
            been tried (at once if the log is not followed), so that the
            first refresh already leaves out unpublished days.
        """
        if self._attempted or not self.following:
            return succeed(None)
        d: Deferred = Deferred()
        self._waiters.append(d)
        return d

    def _release_waiters(self) -> None:
        """
        Fire everything waiting for a read: it is over (or will not come).
        """
        self._attempted = True
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def _read_soon(self, delay: float) -> None:
        if not self.running:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._reading is not None:
            self._again = True
            return
        self._timer = self.reactor.callLater(delay, self._read)

    def read_publications(self) -> Deferred:
        """
        Read the publications log now, or wait for the read under way.

        @return: A L{Deferred} firing when that read is over (its failures
            are reported in C{Status}, not here).
        """
        if self._reading is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._read()
        if self._reading is None:  # over at once
            return succeed(None)
        d: Deferred = Deferred()
        self._waiters.append(d)
        return d

    def _read(self) -> None:
        self._again = False
        self._reading = reading = self._follow()
        reading.addBoth(self._read_over, reading)

    def _read_over(self, result, reading: Deferred) -> None:
        if isinstance(result, Failure) and not result.check(CancelledError):
            self.log.failure("following publications failed", result, service="publications")
        if self._reading is reading:
            self._reading = None
        self._release_waiters()
        if self.running and self.following:
            self._read_soon(0 if self._again else self._next_delay())

    @inlineCallbacks
    def _follow(self):
        """
        One read of the log (and of the schedule when due), and what
        follows from it.
        """
        before = (self._mode, self._published_days())
        entries: list[Publication] | None = None
        try:
            yield self._interrupt(self.ready())
            if not self._loaded:
                yield self._load()
            yield self._read_schedule()
            entries = yield self._read_log()
        except StoreUnavailable as e:
            self.log.warn("cannot follow publications: {error}", error=str(e), service="publications")
        except CancelledError:
            if not self.running:
                return  # stopped mid-read
            raise
        except Exception as e:
            self._read_failed(e)
            entries = []
        else:
            self._read_succeeded()
        after = (self._mode, self._published_days())
        if after != before:
            yield self.bus.publish("publications.updated", {"mode": after[0], "published": after[1]})
        if entries:
            for observer in self._observers:
                yield observer(entries)

    def _published_days(self) -> dict[str, str]:
        return {name: day.isoformat() for name, day in sorted(self.published_through().items())}

    def _read_succeeded(self) -> None:
        self._reads += 1
        self._last_success = self.reactor.seconds()
        self._error = ""
        if self._mode == DATE_RANGES:
            self.log.info("publications log readable again: following it", service="publications")
        self._mode = FOLLOWING

    def _read_failed(self, error: Exception) -> None:
        self._failures += 1
        self._error = str(error) or type(error).__name__
        now = self.reactor.seconds()
        stale = self._last_success is None or now - self._last_success >= self.manifest.publications_interval
        if stale and self._mode != DATE_RANGES:
            self._mode = DATE_RANGES
            self.log.warn("cannot read the publications log ({error}): using plain date ranges until it can",
                          error=self._error, service="publications")
        else:
            self.log.warn("cannot read the publications log: {error}", error=self._error, service="publications")

    def _next_delay(self) -> float:
        """
        @return: Seconds to the next read: the interval, or sooner just
            after a scheduled publication, or soon after a failure.
        """
        delay = self.manifest.publications_interval
        if self._error:
            delay = min(delay, RETRY)
        followed = {_key(r) for r in self.definitions if r.enabled}
        now = self.reactor.seconds()
        zone = ZoneInfo(self.manifest.timezone)
        local = datetime.datetime.fromtimestamp(now, zone)
        for entry in self._schedule:
            if entry.key not in followed:
                continue
            moment = datetime.datetime.combine(local.date(), entry.time, zone)
            if moment <= local:
                moment = datetime.datetime.combine(local.date() + datetime.timedelta(days=1), entry.time, zone)
            delay = min(delay, moment.timestamp() - now + AFTER_PUBLICATION)
        return max(1.0, delay)

    @inlineCallbacks
    def _load(self):
        """
        Take up what an earlier run learned from the same source.
        """
        key = self.prefix + "pub"
        state = pairs((yield self.redis.execute("HGETALL", key)))
        if state.get("base_url") == self.manifest.base_url:
            # Knowledge as fresh as the last read counts as a success: a
            # restart meeting an unreadable log keeps following it a while.
            self._read_through = self._last_success = float(state["read_through"])
            self._mode = FOLLOWING
            days = pairs((yield self.redis.execute("HGETALL", key + ":days")))
            for field, day in days.items():
                queryname, _, market = field.partition("|")
                self._published[(queryname, market)] = datetime.date.fromisoformat(day)
        else:
            yield self.redis.execute("DEL", key, key + ":days")
        self._loaded = True

    @inlineCallbacks
    def _save(self):
        key = self.prefix + "pub"
        yield self.redis.execute("HSET", key, "base_url", self.manifest.base_url,
                                 "read_through", repr(self._read_through))
        if self._published:
            fields = []
            for (queryname, market), day in self._published.items():
                fields += [f"{queryname}|{market}", day.isoformat()]
            yield self.redis.execute("HSET", key + ":days", *fields)

    @inlineCallbacks
    def _read_schedule(self):
        now = self.reactor.seconds()
        if now - self._schedule_read < SCHEDULE_EVERY:
            return
        try:
            body = yield self._get(self._url("ATL_PUB_SCHED", now - 86400, now, "&publication_type=ALL"))
            self._schedule = parse_schedule(body)
        except (StoreUnavailable, CancelledError):
            raise
        except Exception as e:
            # The log alone is enough: the schedule only brings reads forward.
            self.log.info("no publication schedule ({error}): reading the log every {interval:g} s",
                          error=str(e) or type(e).__name__, interval=self.manifest.publications_interval,
                          service="publications")
            self._schedule_read = now - SCHEDULE_EVERY + 3600
            return
        self._schedule_read = now

    @inlineCallbacks
    def _read_log(self):
        """
        Read the log from where the last read ended to now, a span of at
        most 31 days per request, saving progress after each.

        @return: The entries read.
        """
        now = self.reactor.seconds()
        # OASIS times are whole minutes: round up, since the log holds
        # nothing later than now anyway.
        end = now - now % 60 + 60
        if self._read_through is None:
            start = end - LOOKBACK
        else:
            start = self._read_through - OVERLAP
        if start < end - CATCH_UP:
            self.log.warn("the publications log was last read {days:.0f} days ago: reading the last {most:.0f}",
                          days=(end - start) / 86400, most=CATCH_UP / 86400, service="publications")
            start = end - CATCH_UP
        start -= start % 60
        entries: list[Publication] = []
        while start < end:
            stop = min(end, start + SPAN)
            found = parse_log((yield self._get(self._url("ATL_PUB", start, stop, "&oasis_section=ALL"
                                                                                   "&status=ALL&atlpubversion=ALL"))))
            entries += found
            self._learn(found)
            self._read_through = stop
            yield self._save()
            start = stop
        return entries

    def _learn(self, entries: list[Publication]) -> None:
        """
        Note each report's newest published day.
        """
        for entry in entries:
            known = self._published.get(entry.key)
            if known is None or entry.day > known:
                self._published[entry.key] = entry.day

    def _url(self, queryname: str, start: float, end: float, extra: str) -> str:
        utc = datetime.timezone.utc
        return (f"{self.manifest.base_url}/SingleZip?queryname={queryname}"
                f"&startdatetime={gmt(datetime.datetime.fromtimestamp(start, utc))}"
                f"&enddatetime={gmt(datetime.datetime.fromtimestamp(end, utc))}"
                f"&market_run_id=ALL{extra}&version=1&resultformat=6")

    def _interrupt(self, d: Deferred) -> Deferred:
        """
        Mark C{d} as what a stop may cancel: only waits and HTTP, never a
        Redis command, whose reply would then go to the next command.
        """
        self._interruptible = d

        def over(result):
            if self._interruptible is d:
                self._interruptible = None
            return result

        return d.addBoth(over)

    def _get(self, url: str) -> Deferred:
        """
        Fetch a publications answer through the client.

        @return: A L{Deferred} firing with its bytes.
        """
        if not self.running:
            raise CancelledError()
        return self._interrupt(self.client.get(url, MAX_ANSWER, "the publications log's cap"))

    def status(self) -> dict[str, Any]:
        """
        See L{IStatusSource.status}.
        """
        if not self.following:
            return {"mode": OFF}
        published = self._published_days()
        return {
            "mode": self._mode,
            "error": self._error,
            "reads": self._reads,
            "failures": self._failures,
            "last_read": _iso(self._last_success),
            "read_through": _iso(self._read_through),
            "next_read": _iso(self._timer.getTime()) if self._timer is not None and self._timer.active() else None,
            "published": published,
            "date_ranges": sorted(r.name for r in self.definitions if r.enabled and r.name not in published),
            "scheduled": len(self._schedule),
        }


def _key(report: ReportTopic) -> tuple[str, str]:
    return report.queryname or "", report.market_run_id or ""

