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
  Redis, so a restart reads on from there rather than from the start.  The
  log counts as read past a span only once the observers have taken its
  entries: a read stopped part-way, a process killed, an observer that
  could not apply them, each leaves them to be read again.

When the log cannot be read for a whole C{publications_interval} (or was
never read), the caps are dropped (plain date ranges) until it can;
C{Status} and the log say so.  Reports the log does not mention (group
zips, other sources) always use date ranges, and so does a report whose
newest day in the log trails its date range by more than two days
(L{harbour.services.knowledge.Knowledge.lagging}) until the log catches up:
a log that reads but has lost a report must not stop its new days.
C{Status} names those reports and why, and the log says when one starts
and stops lagging.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Generator
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from harbour.bus import Subscription
from harbour.config.paging import follow_reports
from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import IBus, IEvent, IPublications, IRedis, IStatusSource, StatusDocument
from harbour.oasis.client import OasisClient
from harbour.oasis.publications import Publication, Scheduled, parse_log, parse_schedule
from harbour.services.cycle import Cycle
from harbour.services.knowledge import (
    CATCH_UP,
    FOLLOWING,
    LEARNING,
    LOOKBACK,
    OFF,
    RETRY,
    SPAN,
    Knowledge,
    log_url,
)
from harbour.services.knowledge_store import KnowledgeStore

#: How often the publication schedule is read.
SCHEDULE_EVERY = 86400.0
#: The largest publications answer accepted.
MAX_ANSWER = 64 << 20

#: What an observer of the entries read is: a L{Deferred} it returns is
#: waited for (its result is not used).
Observer = Callable[[list[Publication]], Deferred[Any] | None]


class NotHandedOn(Exception):
    """
    An observer failed to take the entries of a span of the log.
    """


@implementer(IPublications, IStatusSource)
@attr.s(eq=False)
class PublicationsFollower(Service):
    """
    Follows OASIS's publications log, keeping what it learns in Redis.

    @ivar ready: Called before each read; fires once Redis can be used.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    bus: IBus = attr.ib()
    redis: IRedis = attr.ib()
    client: OasisClient = attr.ib()
    prefix: str = attr.ib(default="harbour:")
    # Deferred[Any]: what it fires with is not used.
    ready: Callable[[], Deferred[Any]] = attr.ib(default=lambda: succeed(None))
    manifest: ManifestTopic = attr.ib(factory=ManifestTopic)
    definitions: list[ReportTopic] = attr.ib(factory=list)
    _observers: list[Observer] = attr.ib(factory=list, init=False)
    _subscriptions: list[Subscription] = attr.ib(factory=list, init=False)
    _known: Knowledge = attr.ib(factory=Knowledge, init=False)
    _loaded: bool = attr.ib(default=False, init=False)
    _reads: Cycle = attr.ib(init=False)
    _memory: KnowledgeStore = attr.ib(init=False)
    # What publications.updated last said (mode, caps), and which reports
    # the log was last said to lag behind, and why.
    _announced: tuple[str, dict[str, str]] = attr.ib(factory=lambda: (LEARNING, {}), init=False)
    _lagging: dict[str, str] = attr.ib(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._memory = KnowledgeStore(self.redis, self.prefix)
        self._reads = Cycle(
            self.reactor,
            self._follow,
            lambda: self._known.next_delay(self.reactor.seconds(), self.manifest, self.definitions),
            lambda: bool(self.running) and self.following,
            "following publications",
        )

    @property
    def following(self) -> bool:
        """
        Whether the publications log is followed.
        """
        return self.manifest.follow_publications

    def observe(self, observer: Observer) -> None:
        """
        See L{IPublications.observe}.
        """
        self._observers.append(observer)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Follow the configuration, and with it the log.
        """
        super().startService()
        self._subscriptions = yield gatherResults(
            [
                self.bus.subscribe("manifest", self._manifest_changed),
                follow_reports(self.bus, self._reports_changed),
            ]
        )

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop following the configuration and the log.
        """
        super().stopService()
        subscriptions, self._subscriptions = self._subscriptions, []
        yield gatherResults([self.bus.unsubscribe(s) for s in subscriptions])
        yield self._reads.stop()

    def _manifest_changed(self, event: IEvent) -> None:
        old, self.manifest = self.manifest, ManifestTopic.from_payload(event.payload)
        if old.base_url != self.manifest.base_url:
            self._known.forget()
            self._loaded = False
        if self.following:
            self._reads.soon(0)
        else:
            self._known.mode = OFF
            self._reads.release()

    def _reports_changed(self, reports: list[ReportTopic]) -> None:
        self.definitions = reports

    def published_through(self) -> dict[str, datetime.date]:
        """
        See L{IPublications.published_through}: none while falling back to
        date ranges, and none for a report the log lags behind.
        """
        if not self.following:
            return {}
        return self._known.published_through(self.definitions, self.manifest, self.reactor.seconds())

    def when_known(self) -> Deferred[None]:
        """
        See L{IPublications.when_known}.
        """
        return self._reads.when_attempted() if self.following else succeed(None)

    def read_publications(self) -> Deferred[None]:
        """
        Read the publications log now, or wait for the read under way.

        @return: A L{Deferred} firing when that read is over (its failures
            are reported in C{Status}, not here).
        """
        return self._reads.now()

    @inlineCallbacks
    def _follow(self) -> Generator[Deferred[Any], Any, None]:
        """
        One read of the log (and of the schedule when due), and what
        follows from it.
        """
        try:
            yield self._reads.interruptible(self.ready())
            if not self._loaded:
                yield self._memory.load(self._known, self.manifest.base_url)
                self._loaded = True
            yield self._read_schedule()
            yield self._read_log()
        except StoreUnavailable as e:
            self.log.warn("cannot follow publications: {error}", error=str(e), service="publications")
        except CancelledError:
            if not self.running:
                return  # stopped mid-read
            raise
        except NotHandedOn:
            pass  # logged, and read again next time
        except Exception as e:
            self._read_failed(e)
        else:
            self._read_succeeded()
        self._note_lagging()
        # Compared with what was last said rather than with the caps before
        # this read: caps also move between reads, as days pass (a report
        # starts lagging when today moves on).
        after = (self._known.mode, self._published_days())
        if after != self._announced:
            self._announced = after
            # The caps themselves grow with the reports: Status has them; the
            # event says only that they moved, in a value of fixed size.
            digest = hashlib.sha256(json.dumps(after[1], sort_keys=True).encode()).hexdigest()[:16]
            yield self.bus.publish(
                "publications.updated", {"mode": after[0], "capped": len(after[1]), "version": digest}
            )

    def _published_days(self) -> dict[str, str]:
        return {name: day.isoformat() for name, day in sorted(self.published_through().items())}

    def _note_lagging(self) -> None:
        """
        Say once when the log starts to lag behind a report's date range,
        and once when it catches up.
        """
        if self._known.mode != FOLLOWING:
            return  # every report is on date ranges: nothing to say per report
        now = self.reactor.seconds()
        lagging = self._known.lagging(self.definitions, self.manifest, now)
        for name, why in sorted(lagging.items()):
            if name not in self._lagging:
                self.log.warn(
                    "{report}: {why}: requesting its days by date range until the publications log "
                    "catches up",
                    report=name,
                    why=why,
                    service="publications",
                )
        # A report no longer lagging because it was removed, or the log no
        # longer mentions it, has not caught up: only a capped one has.
        capped = self._known.published_through(self.definitions, self.manifest, now)
        for name in sorted((self._lagging.keys() - lagging.keys()) & capped.keys()):
            self.log.info(
                "{report}: the publications log has caught up: following it again",
                report=name,
                service="publications",
            )
        self._lagging = lagging

    def _read_succeeded(self) -> None:
        if self._known.succeeded(self.reactor.seconds()):
            self.log.info("publications log readable again: following it", service="publications")

    def _read_failed(self, error: Exception) -> None:
        """
        Note a failed read.  A warning says when the log stops reading,
        when its error changes and when it falls back to date ranges; a
        failure repeating the last is only a debug message, as the reads
        are retried (less and less often) for as long as it lasts.
        """
        message = str(error) or type(error).__name__
        repeated = self._known.failing > 0 and message == self._known.error
        if self._known.failed(message, self.reactor.seconds(), self.manifest.publications_interval):
            self.log.warn(
                "cannot read the publications log ({error}): using plain date ranges until it can",
                error=message,
                service="publications",
            )
        elif repeated:
            self.log.debug(
                "still cannot read the publications log: {error}", error=message, service="publications"
            )
        else:
            self.log.warn("cannot read the publications log: {error}", error=message, service="publications")

    @inlineCallbacks
    def _read_schedule(self) -> Generator[Deferred[Any], Any, None]:
        now = self.reactor.seconds()
        if now - self._known.schedule_read < SCHEDULE_EVERY:
            return
        try:
            self._known.schedule = yield self._reader().schedule(now)
        except (StoreUnavailable, CancelledError):
            raise
        except Exception as e:
            # The log alone is enough: the schedule only brings reads forward.
            self.log.info(
                "no publication schedule ({error}): reading the log every {interval:g} s; after a "
                "failed read, in {retry:g} s, twice as late after each further one up to {interval:g} s",
                error=str(e) or type(e).__name__,
                interval=self.manifest.publications_interval,
                retry=min(RETRY, self.manifest.publications_interval),
                service="publications",
            )
            self._known.schedule_read = now - SCHEDULE_EVERY + 3600
            return
        self._known.schedule_read = now

    @inlineCallbacks
    def _read_log(self) -> Generator[Deferred[Any], Any, None]:
        """
        Read the log from where the last read ended to now, a span of at
        most 31 days per request, handing each span's entries on and then
        saving the progress past it.
        """
        now = self.reactor.seconds()
        ahead = self._known.distrust_future(now)
        if ahead:
            self.log.warn(
                "the publications log was saved as read {hours:.1f} h ahead of this host's clock (a clock "
                "that ran fast?): reading the last {days:.0f} days again",
                hours=ahead / 3600,
                days=LOOKBACK / 86400,
                service="publications",
            )
        start, end, cut = self._known.span(now)
        if cut:
            self.log.warn(
                "the publications log was last read long ago: reading the last {most:.0f} days",
                most=CATCH_UP / 86400,
                service="publications",
            )
        while start < end:
            stop = min(end, start + SPAN)
            found = yield self._reader().log(start, stop)
            self._known.learn(found)
            # Even none: the observers then look again at revisions they
            # noted for windows downloading at an earlier read.
            yield self._hand_on(found)
            self._known.read_through = stop
            yield self._memory.save(self._known, self.manifest.base_url)
            start = stop

    @inlineCallbacks
    def _hand_on(self, entries: list[Publication]) -> Generator[Deferred[Any], Any, None]:
        """
        Hand C{entries} to every observer, waiting for each.

        @raise NotHandedOn: if an observer failed (which is logged); a
            store outage or a stop is raised as it is.
        """
        for observer in self._observers:
            try:
                waited = observer(entries)
                if waited is not None:
                    yield waited
            except (StoreUnavailable, CancelledError):
                raise
            except Exception:
                self.log.failure(
                    "cannot apply {count} entries of the publications log: they are read again "
                    "at the next read",
                    count=len(entries),
                    service="publications",
                )
                raise NotHandedOn() from None

    def _reader(self) -> LogReader:
        """
        @return: A reader of the log of the source configured now, whose
            requests a stop interrupts.
        """
        if not self.running:
            raise CancelledError()
        return LogReader(self.client, self.manifest.base_url, self._reads.interruptible)

    def status(self) -> StatusDocument:
        """
        See L{IStatusSource.status}.
        """
        if not self.following:
            return {"mode": OFF}
        return self._known.status(
            self.definitions, self.manifest, self.reactor.seconds(), self._reads.next_run()
        )


@attr.s(frozen=True, eq=False)
class LogReader:
    """
    Reads OASIS's publications log and schedule from one source.

    An answer is parsed in a thread: it is a zip of up to L{MAX_ANSWER}
    bytes that may inflate up to L{harbour.oasis.classify.MAX_INFLATED}
    (which, with L{harbour.oasis.classify.MAX_RATIO}, refuses a zip bomb),
    and reading it must not stall the reactor.

    @ivar interruptible: Marks a request as what a stop may cancel.
    @ivar in_thread: Runs a parser on an answer and fires with its result:
        L{deferToThread} unless a test runs it otherwise.
    """

    client: OasisClient = attr.ib()
    base_url: str = attr.ib()
    interruptible: Callable[[Deferred[bytes]], Deferred[bytes]] = attr.ib()
    in_thread: Callable[[Callable[[bytes], Any], bytes], Deferred[Any]] = attr.ib(default=deferToThread)

    def _get(self, queryname: str, start: float, end: float, extra: str) -> Deferred[bytes]:
        url = log_url(self.base_url, queryname, start, end, extra)
        return self.interruptible(self.client.get(url, MAX_ANSWER, "the publications log's cap"))

    def log(self, start: float, end: float) -> Deferred[list[Publication]]:
        """
        @return: A L{Deferred} firing with the entries of the log from
            C{start} to C{end} (at most 31 days).
        """
        return self._get(
            "ATL_PUB", start, end, "&oasis_section=ALL&status=ALL&atlpubversion=ALL"
        ).addCallback(lambda answer: self.in_thread(parse_log, answer))

    def schedule(self, now: float) -> Deferred[list[Scheduled]]:
        """
        @return: A L{Deferred} firing with the publication schedule.
        """
        return self._get(
            "ATL_PUB_SCHED", now - 86400, now, "&oasis_section=ALL&publication_type=ALL"
        ).addCallback(lambda answer: self.in_thread(parse_schedule, answer))
