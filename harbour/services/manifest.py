"""
The C{manifest} service (the seed's MANIFEST SERVER).

It follows the C{manifest} and C{reports} topics on the bus and answers
L{reports} with every request of the enabled reports, from their first day
to their last.  The list is computed once per configuration, trading day
and state of the publications, then reused.

With C{follow_publications} it reads OASIS's Publications and Revisions log
(C{ATL_PUB}) every C{publications_interval}, and soon after each
publication the Publication Schedule (C{ATL_PUB_SCHED}) announces, through
the politeness limiter the downloads use:

- the newest day the log shows published caps each report's requests, so
  no request is spent on a day OASIS has not published yet; when the cap
  moves, C{publications.updated} tells the work service to refresh;
- an entry newer than a task's fetch puts the task back to C{pending}
  (L{ITaskStore.revise}) and publishes C{task.revised};
- what it learned (the days, and how far the log has been read) is kept in
  Redis, so a restart reads on from there rather than from the start.

When the log cannot be read for a whole C{publications_interval} (or was
never read), the requests fall back to plain date ranges until it can;
C{Status} and the log say so.  Reports the log does not mention (group
zips, other sources) always use date ranges.
"""

from __future__ import annotations

import datetime
import time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import attr
import treq
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from zope.interface import implementer

from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, ILimiter, IManifest, IRedis, IStatusSource, ITaskStore
from harbour.oasis.requests import ReportURL, gmt, market_today, report_urls, trading_day
from harbour.oasis.publications import LogUnreadable, Publication, parse_log, parse_schedule
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic
from harbour.store.tasks import pairs, task_id

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


@implementer(IManifest, IStatusSource)
@attr.s(eq=False)
class ManifestService(Service):
    """
    Computes the report requests of the current configuration, following
    OASIS's publications when it has a store to keep what it learns.

    @ivar redis: Where what was learned from the log is kept; L{None}
        follows nothing (plain date ranges).
    @ivar client: The HTTP client of the log reads (treq's interface); one
        is made at start if none is given.
    """

    log = Logger()

    reactor = attr.ib()
    bus: IBus = attr.ib()
    manifest: ManifestTopic = attr.ib(factory=ManifestTopic)
    definitions: list = attr.ib(factory=list)
    redis: IRedis | None = attr.ib(default=None)
    limiter: ILimiter | None = attr.ib(default=None)
    tasks: ITaskStore | None = attr.ib(default=None)
    prefix: str = attr.ib(default="harbour:")
    download: DownloadTopic = attr.ib(factory=DownloadTopic)
    client = attr.ib(default=None)
    ready = attr.ib(default=lambda: succeed(None))
    _version: int = attr.ib(default=0, init=False)
    _cache: tuple | None = attr.ib(default=None, init=False)
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
    _timer = attr.ib(default=None, init=False)
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
        return self.redis is not None and self.manifest.follow_publications

    @inlineCallbacks
    def startService(self):
        """
        Follow the configuration.
        """
        super().startService()
        if self.client is None and self.redis is not None:
            agent = Agent(self.reactor, pool=HTTPConnectionPool(self.reactor, persistent=False))
            self.client = treq.client.HTTPClient(agent)
        self._subscriptions = yield gatherResults([
            self.bus.subscribe("manifest", self._manifest_changed),
            self.bus.subscribe("reports", self._reports_changed),
            self.bus.subscribe("download", self._download_changed),
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
        self._changed()
        if self.following:
            self._read_soon(0)
        else:
            self._mode = OFF
            self._release_waiters()

    def _reports_changed(self, event) -> None:
        self.definitions = [ReportTopic(**report) for report in event.payload]
        self._changed()

    def _download_changed(self, event) -> None:
        self.download = DownloadTopic(**event.payload)

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
            urls = report_urls(self.manifest, self.definitions, today, published=self.published_through())
            self._cache = (self._version, today, urls)
        return self._cache[2]

    def published_through(self) -> dict[str, datetime.date]:
        """
        @return: The last published day of each enabled report the log
            follows (none while falling back to date ranges).
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
            self.log.failure("following publications failed", result, service="manifest")
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
            self.log.warn("cannot follow publications: {error}", error=str(e), service="manifest")
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
            self._changed()
            yield self.bus.publish("publications.updated", {"mode": after[0], "published": after[1]})
        if entries is None:
            return
        try:
            yield self._apply(entries)
        except StoreUnavailable as e:
            self.log.warn("cannot apply revisions: {error}", error=str(e), service="manifest")

    def _published_days(self) -> dict[str, str]:
        return {name: day.isoformat() for name, day in sorted(self.published_through().items())}

    def _read_succeeded(self) -> None:
        self._reads += 1
        self._last_success = self.reactor.seconds()
        self._error = ""
        if self._mode == DATE_RANGES:
            self.log.info("publications log readable again: following it", service="manifest")
        self._mode = FOLLOWING

    def _read_failed(self, error: Exception) -> None:
        self._failures += 1
        self._error = str(error) or type(error).__name__
        now = self.reactor.seconds()
        stale = self._last_success is None or now - self._last_success >= self.manifest.publications_interval
        if stale and self._mode != DATE_RANGES:
            self._mode = DATE_RANGES
            self.log.warn("cannot read the publications log ({error}): using plain date ranges until it can",
                          error=self._error, service="manifest")
        else:
            self.log.warn("cannot read the publications log: {error}", error=self._error, service="manifest")

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
                          service="manifest")
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
                          days=(end - start) / 86400, most=CATCH_UP / 86400, service="manifest")
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

    @inlineCallbacks
    def _get(self, url: str):
        """
        Fetch a publications answer on a politeness slot, within the
        download settings' deadlines.

        @return: A L{Deferred} firing with its bytes.
        """
        if not self.running:
            raise CancelledError()
        wait = yield self.limiter.reserve(urlsplit(url).netloc, self.download.min_request_interval)
        if wait > 0:
            yield self._interrupt(deferLater(self.reactor, wait, lambda: None))
        deadline = self.download.connect_timeout + 2 * self.download.idle_timeout
        return (yield self._interrupt(self._fetch(url).addTimeout(deadline, self.reactor)))

    @inlineCallbacks
    def _fetch(self, url: str):
        response = yield self.client.get(url)
        if response.code != 200:
            yield treq.content(response)
            raise LogUnreadable(f"HTTP {response.code}")
        chunks: list[bytes] = []
        size = [0]

        def collect(data: bytes) -> None:
            size[0] += len(data)
            if size[0] > MAX_ANSWER:
                raise LogUnreadable(f"answer larger than {MAX_ANSWER:,} bytes")
            chunks.append(data)

        yield treq.collect(response, collect)
        return b"".join(chunks)

    @inlineCallbacks
    def _apply(self, entries: list[Publication]):
        """
        Put back to C{pending} the tasks whose data changed after they were
        fetched, and announce each with C{task.revised}.
        """
        if self.tasks is None:
            return
        reports: dict[tuple[str, str], list[str]] = {}
        for report in self.definitions:
            if report.enabled and report.queryname:
                reports.setdefault(_key(report), []).append(report.name)
        relevant = [entry for entry in entries if entry.key in reports]
        by_report: dict[str, list[ReportURL]] = {name: [] for e in relevant for name in reports[e.key]}
        for request in self.reports() if by_report else ():
            if request.report in by_report:
                by_report[request.report].append(request)
        zone = ZoneInfo(self.manifest.timezone)
        revisions, requests = [], {}
        for entry in relevant:
            low, high = trading_day(entry.day, zone)
            for name in reports[entry.key]:
                for request in by_report[name]:  # newest window first
                    if request.window_end <= low:
                        break
                    if request.window_start < high:
                        identifier = task_id(request.url)
                        requests[identifier] = request
                        revisions.append((identifier, entry.published, entry.version))
        changed = yield self.tasks.revise(revisions)
        for task in changed:
            request = requests.get(task["id"])
            self.log.info("{report}: {filename} changed in OASIS after it was fetched: fetching it again",
                          report=task["report"], filename=request.filename if request else task["id"],
                          service="manifest")
            yield self.bus.publish("task.revised", {
                **task, "url": request.url if request else "", "filename": request.filename if request else "",
            })

    @inlineCallbacks
    def status(self):
        """
        See L{IStatusSource.status}.
        """
        document = {
            "reports": sum(1 for r in self.definitions if r.enabled),
            "requests": len(self._cache[2]) if self._cache else None,
            "base_url": self.manifest.base_url,
        }
        if not self.following:
            document["publications"] = {"mode": OFF}
            return document
        try:
            revisions = (yield self.tasks.revision_counts()) if self.tasks is not None else {}
        except StoreUnavailable as e:
            revisions = {"error": str(e)}
        published = self._published_days()
        document["publications"] = {
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
            "revisions": revisions,
        }
        return document


def _key(report: ReportTopic) -> tuple[str, str]:
    return report.queryname or "", report.market_run_id or ""

