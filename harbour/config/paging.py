"""
The C{reports} topic in pages, so that no event grows with the configuration.

Every event on the bus is one AMP value: at most 65,535 bytes
(L{harbour.bus.MAX_VALUE_BYTES}, which is Twisted's
L{amp.MAX_VALUE_LENGTH}).  The list of reports grows with the
configuration, so the config service publishes it in pages, each retained:

  - C{reports.0} to C{reports.<P-1>}: C{{"version": V, "page": i,
    "reports": [...]}}, as many reports each as fit in one value;
  - then C{reports}: C{{"version": V, "pages": P, "count": N}}, once every
    page has been published.

C{V} is a digest of the whole list: equal versions are equal lists, even
across restarts of the daemon, so pages of two configurations are never
mistaken for each other.  A page left over from a longer configuration is
replaced by an empty page of no version, which no index names.

Subscribers follow the list with L{follow_reports}, which reassembles the
pages, in whatever order they arrive (a late subscriber gets the retained
index before pages it has not seen), and calls back once with each complete
version: never with a partial list, nor one mixing two versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from twisted.protocols.amp import MAX_VALUE_LENGTH

from harbour.config.topics import ReportTopic, TopicError, to_payload
from harbour.errors import PayloadTooLarge
from harbour.interfaces import IBus, IEvent

if TYPE_CHECKING:
    # Only named in annotations; the config package does not import the bus.
    from harbour.bus import Subscription

#: The topic of the index of the reports' pages.
REPORTS = "reports"

#: The pattern that selects the index and every page (and, harmlessly,
#: any other topic starting with C{reports}: those are ignored).
REPORTS_PATTERN = REPORTS + "*"

#: The most bytes one event may hold: one AMP value.
LIMIT = MAX_VALUE_LENGTH

#: Room kept in each page for its wrapper: the version, a page number of
#: up to 20 digits and the keys.
_WRAPPER_ROOM = len(b'{"page":,"reports":[],"version":""}') + 20 + 64

#: The most bytes one report may encode to: a page holds it beside its own
#: keys.
MOST_REPORT_BYTES = LIMIT - _WRAPPER_ROOM

log = Logger()


def encode(payload: object) -> bytes:
    """
    @return: C{payload} as the bus encodes it (L{harbour.bus.Event.create}),
        whose length is what must fit in one AMP value.
    """
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


class ItemTooLarge(PayloadTooLarge):
    """
    One item alone is larger than a page may be.

    @ivar index: Its position in the list being paged.
    @ivar size: Its size, encoded, in bytes.
    """

    def __init__(self, index: int, size: int, limit: int) -> None:
        """
        @param index: See L{ItemTooLarge.index}.
        @param size: See L{ItemTooLarge.size}.
        @param limit: The most bytes one item may have, beside its page's
            wrapper.
        """
        super().__init__(f"item {index} alone is {size:,} bytes; the limit is {limit:,} (one AMP value)")
        self.index = index
        self.size = size


def pack(items: Sequence[object], room: int, limit: int = LIMIT) -> list[list[object]]:
    """
    Split C{items} into runs, in order, each of which encodes, as a JSON
    list inside a wrapper of C{room} bytes, in at most C{limit} bytes.

    @return: The runs; one empty run if there are no items.
    @raise ItemTooLarge: if an item does not fit on its own.
    """
    runs: list[list[object]] = [[]]
    size = room
    for index, item in enumerate(items):
        length = len(encode(item))
        if room + length > limit:
            raise ItemTooLarge(index, length, limit - room)
        # Each item after the first of a run costs a comma as well.
        cost = length + (1 if runs[-1] else 0)
        if size + cost > limit:
            runs.append([])
            size, cost = room, length
        runs[-1].append(item)
        size += cost
    return runs


def version_of(reports: Sequence[object]) -> str:
    """
    @return: The version of a list of report payloads: a digest of all of
        them, the same for equal lists whichever process computes it.
    """
    return hashlib.sha256(encode(list(reports))).hexdigest()[:20]


def page_topic(index: int) -> str:
    """
    @return: The topic of page C{index} of the reports.
    """
    return f"{REPORTS}.{index}"


def page_number(topic: str) -> int | None:
    """
    @return: The page a topic carries, or L{None} if it is not a page topic.
    """
    prefix = REPORTS + "."
    if not topic.startswith(prefix):
        return None
    digits = topic[len(prefix) :]
    if not digits.isdigit() or not digits.isascii() or (len(digits) > 1 and digits[0] == "0"):
        return None
    return int(digits)


def blank_page(index: int) -> dict[str, object]:
    """
    @return: What replaces a page no configuration uses any more: empty,
        and of no version, so that no index can name it.
    """
    return {"version": None, "page": index, "reports": []}


@attr.s(frozen=True, auto_attribs=True)
class ReportPages:
    """
    One list of reports as the events that carry it.

    @ivar index: The payload of C{reports}.
    @ivar pages: The payloads of C{reports.0}, C{reports.1}, ...
    """

    index: dict[str, object]
    pages: list[dict[str, object]]

    def messages(self, stale: Iterable[int] = ()) -> list[tuple[str, dict[str, object]]]:
        """
        @param stale: Pages published for an earlier, longer list; those at
            or past this list's last are blanked.
        @return: The C{(topic, payload)} events to publish, in order: every
            page, the blanked pages, and the index last, so that the index
            only ever names pages already published.
        """
        events = [(page_topic(i), page) for i, page in enumerate(self.pages)]
        events += [(page_topic(i), blank_page(i)) for i in sorted(set(stale)) if i >= len(self.pages)]
        events.append((REPORTS, self.index))
        return events


def paginate(reports: Sequence[object], limit: int = LIMIT) -> ReportPages:
    """
    Page a list of reports.

    @param reports: Report payloads (L{to_payload} of each L{ReportTopic}).
    @return: The index and pages, each encoding in at most C{limit} bytes.
    @raise ItemTooLarge: if one report alone does not fit in a page; its
        C{index} says which.
    """
    version = version_of(reports)
    runs = pack(reports, _WRAPPER_ROOM, limit)
    pages: list[dict[str, object]] = [
        {"version": version, "page": i, "reports": run} for i, run in enumerate(runs)
    ]
    # The room kept is generous; this only guards the arithmetic above.
    for page in pages:
        if len(encode(page)) > limit:
            raise PayloadTooLarge(f"page {page['page']} of the reports exceeds {limit:,} bytes")
    return ReportPages({"version": version, "pages": len(pages), "count": len(reports)}, pages)


@inlineCallbacks
def publish_reports(
    bus: IBus, reports: Sequence[ReportTopic | Mapping[str, Any]], limit: int = LIMIT
) -> Generator[Deferred[Any], Any, None]:
    """
    Publish a list of reports as L{follow_reports} reads it: every page,
    then the index, each retained.  (The config service publishes through
    its own bookkeeping; this is for tests and tools.)

    @param reports: Topics, or their payloads.
    @return: A L{Deferred} firing with L{None} once the index is published,
        or failing with the first error (L{ItemTooLarge}, or the bus's).
    """
    payloads = [to_payload(r) if isinstance(r, ReportTopic) else dict(r) for r in reports]
    for topic, payload in paginate(payloads, limit).messages():
        yield bus.publish(topic, payload, retain=True)


def _index(payload: object) -> tuple[str, int, int] | None:
    if not isinstance(payload, dict):
        return None
    version, pages, count = payload.get("version"), payload.get("pages"), payload.get("count")
    if not isinstance(version, str) or not isinstance(pages, int) or not isinstance(count, int):
        return None
    if isinstance(pages, bool) or pages < 1 or count < 0:
        return None
    return version, pages, count


def _page(payload: object) -> tuple[str | None, list[object]] | None:
    if not isinstance(payload, dict):
        return None
    version, reports = payload.get("version"), payload.get("reports")
    if not (version is None or isinstance(version, str)) or not isinstance(reports, list):
        return None
    return version, reports


class ReportsAssembly:
    """
    Reassembles the paged C{reports} topic from its events.

    It keeps the latest index and the latest payload of each page, and
    answers a list when, and only when, the index and every page it names
    agree on one version it has not answered yet.
    """

    def __init__(self) -> None:
        self._index: tuple[str, int, int] | None = None
        self._pages: dict[int, tuple[str | None, list[object]]] = {}
        self._answered: str | None = None

    def receive(self, topic: str, payload: object) -> list[ReportTopic] | None:
        """
        Take one event of C{reports} or one of its pages.

        @return: The complete list of reports, if this event completes a
            version not answered before; otherwise L{None}.
        """
        if topic == REPORTS:
            index = _index(payload)
            if index is None:
                log.warn("ignored a malformed reports index: {payload!r:.200}", payload=payload)
                return None
            self._index = index
        else:
            number = page_number(topic)
            if number is None:
                return None  # another topic that happens to start with "reports"
            page = _page(payload)
            if page is None:
                log.warn("ignored a malformed page {topic}", topic=topic)
                return None
            self._pages[number] = page
        return self._complete()

    def _complete(self) -> list[ReportTopic] | None:
        if self._index is None:
            return None
        version, pages, count = self._index
        if version == self._answered:
            return None
        payloads: list[object] = []
        for number in range(pages):
            page = self._pages.get(number)
            if page is None or page[0] != version:
                return None
            payloads.extend(page[1])
        if len(payloads) != count:
            return None
        # Answered or refused, this version is done with.
        self._answered = version
        try:
            return [ReportTopic.from_payload(p) for p in payloads]
        except TopicError as e:
            log.error("refused reports version {version}: {error}", version=version, error=str(e))
            return None


def follow_reports(bus: IBus, callback: Callable[[list[ReportTopic]], object]) -> Deferred[Subscription]:
    """
    Follow the configured reports: call C{callback} with the complete list
    now if it is already published (retained), and again each time it
    changes; never with a partial list or one mixing two configurations.

    @param callback: Called with the list; if it returns a L{Deferred},
        later events wait for it, as with L{IBus.subscribe}.
    @return: The subscription, as from L{IBus.subscribe}: one, so that it
        is ended with L{IBus.unsubscribe} like any other.
    """
    assembly = ReportsAssembly()

    def received(event: IEvent) -> object:
        reports = assembly.receive(event.topic, event.payload)
        return None if reports is None else callback(reports)

    return bus.subscribe(REPORTS_PATTERN, received)
