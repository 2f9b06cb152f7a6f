"""
Tests for L{harbour.config.paging}: the C{reports} topic in pages, and
reassembling them whatever the order, the versions or the subscriber's
lateness.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import MAX_VALUE_BYTES, Bus, Event, Subscription
from harbour.config.paging import (
    LIMIT,
    REPORTS,
    ItemTooLarge,
    ReportPages,
    ReportsAssembly,
    blank_page,
    encode,
    follow_reports,
    pack,
    page_number,
    page_topic,
    paginate,
    publish_reports,
    version_of,
)
from harbour.config.topics import ReportTopic, to_payload
from harbour.errors import PayloadTooLarge


def report_payloads(count: int, prefix: str = "r", **values: Any) -> list[dict[str, Any]]:
    """
    @return: The payloads of C{count} reports named C{<prefix>0000} on,
        each with C{values}.
    """
    return [
        to_payload(ReportTopic(name=f"{prefix}{i:04d}", queryname="SLD_FCST", market_run_id="DAM", **values))
        for i in range(count)
    ]


def names(reports: list[ReportTopic]) -> list[str]:
    """
    @return: The names of C{reports}, in order.
    """
    return [r.name for r in reports]


class PackTests(SynchronousTestCase):
    """
    Tests for L{pack}.
    """

    def test_runsWithinLimit(self) -> None:
        """
        Items are split, in order, into runs that each encode within the
        limit with their wrapper, and every run but the last is as full as
        it can be.
        """
        items = [f"item-{i}" for i in range(100)]
        runs = pack(items, room=10, limit=100)
        self.assertEqual([item for run in runs for item in run], items)
        for run in runs:
            self.assertLessEqual(10 + len(encode(run)) - 2, 100)
        for run, following in zip(runs, runs[1:]):
            self.assertGreater(10 + len(encode([*run, following[0]])) - 2, 100)

    def test_noItems(self) -> None:
        """
        No items make one empty run: an empty list still has a page.
        """
        self.assertEqual(pack([], room=10, limit=100), [[]])

    def test_itemTooLarge(self) -> None:
        """
        An item that does not fit on its own is refused, with its index.
        """
        error = self.assertRaises(ItemTooLarge, pack, ["a", "b" * 200, "c"], 10, 100)
        self.assertEqual(error.index, 1)
        self.assertIsInstance(error, PayloadTooLarge)


class PaginateTests(SynchronousTestCase):
    """
    Tests for L{paginate} and L{ReportPages}.
    """

    def test_limitIsOneAMPValue(self) -> None:
        """
        Pages are sized for the bus's own limit, measured as the bus
        encodes them.
        """
        self.assertEqual(LIMIT, MAX_VALUE_BYTES)
        payload = {"b": ["é", 1], "a": None}
        self.assertEqual(encode(payload), Event.create("t", payload).text.encode("utf-8"))

    def test_twoThousandReports(self) -> None:
        """
        Two thousand reports (about 400 kB) make pages that each fit in one
        value, hold every report in order, and share one version with the
        index, which counts them.
        """
        reports = report_payloads(2000)
        self.assertGreater(len(encode(reports)), 5 * LIMIT)
        paged = paginate(reports)
        self.assertGreater(len(paged.pages), 5)
        for number, page in enumerate(paged.pages):
            self.assertLess(len(encode(page)), LIMIT)
            self.assertEqual((page["page"], page["version"]), (number, paged.index["version"]))
        carried = []
        for page in paged.pages:
            assert isinstance(page["reports"], list)
            carried.extend(page["reports"])
        self.assertEqual(carried, reports)
        self.assertEqual(
            paged.index, {"version": version_of(reports), "pages": len(paged.pages), "count": 2000}
        )

    def test_versionFollowsContent(self) -> None:
        """
        The version is the same for equal lists and differs when any report
        does.
        """
        self.assertEqual(version_of(report_payloads(3)), version_of(report_payloads(3)))
        changed = report_payloads(3)
        changed[1]["enabled"] = False
        self.assertNotEqual(version_of(changed), version_of(report_payloads(3)))

    def test_noReports(self) -> None:
        """
        An empty list is one empty page.
        """
        paged = paginate([])
        self.assertEqual(paged.index["pages"], 1)
        self.assertEqual(paged.pages[0]["reports"], [])

    def test_reportTooLarge(self) -> None:
        """
        A report that alone exceeds a value is refused with its index.
        """
        reports = report_payloads(3)
        reports[2]["params"] = {"x": "y" * LIMIT}
        error = self.assertRaises(ItemTooLarge, paginate, reports)
        self.assertEqual(error.index, 2)

    def test_messagesIndexLast(self) -> None:
        """
        The events go out pages first, then pages left over from a longer
        list blanked, then the index.
        """
        paged = paginate(report_payloads(40), limit=2000)
        count = len(paged.pages)
        events = paged.messages(stale=[0, count + 1, count])
        self.assertEqual(
            [topic for topic, payload in events],
            [page_topic(i) for i in range(count)] + [page_topic(count), page_topic(count + 1), REPORTS],
        )
        self.assertEqual(events[count][1], blank_page(count))

    def test_pageNumber(self) -> None:
        """
        Only C{reports.<n>}, written as L{page_topic} writes it, is a page.
        """
        self.assertEqual(page_number(page_topic(12)), 12)
        for topic in ["reports", "reports.", "reports.x", "reports.01", "reports.1.2", "reportsx.1", "other"]:
            self.assertIsNone(page_number(topic), topic)


def events_of(paged: ReportPages) -> list[tuple[str, object]]:
    """
    @return: What the bus carries for C{paged}, JSON round-tripped as a
        subscriber in another process would see it.
    """
    return [(topic, json.loads(encode(payload))) for topic, payload in paged.messages()]


class AssemblyTests(SynchronousTestCase):
    """
    Tests for L{ReportsAssembly}.
    """

    def setUp(self) -> None:
        self.assembly = ReportsAssembly()
        self.first = paginate(report_payloads(30, "a"), limit=1500)
        self.second = paginate(report_payloads(20, "b"), limit=1500)
        self.assertGreater(len(self.first.pages), len(self.second.pages))
        self.assertGreater(len(self.second.pages), 1)

    def feed(self, events: list[tuple[str, object]]) -> list[list[str]]:
        """
        @return: The names of each list the assembly answered.
        """
        answers = []
        for topic, payload in events:
            reports = self.assembly.receive(topic, payload)
            if reports is not None:
                answers.append(names(reports))
        return answers

    def test_inOrder(self) -> None:
        """
        Pages then index, as published: one answer, at the index.
        """
        self.assertEqual(self.feed(events_of(self.first)), [[f"a{i:04d}" for i in range(30)]])

    def test_lateSubscriberOrder(self) -> None:
        """
        A late subscriber may get the retained index before the pages: the
        answer comes with the last page.
        """
        events = events_of(self.first)
        answers = self.feed([events[-1]] + events[:-2])
        self.assertEqual(answers, [])
        self.assertEqual(len(self.feed([events[-2]])), 1)

    def test_versionChangeMidStream(self) -> None:
        """
        Pages of a new version arriving while the old index is current
        answer nothing, even when their number matches: the new list is
        answered whole, at its index.
        """
        self.feed(events_of(self.first))
        new = events_of(self.second)
        self.assertEqual(self.feed(new[:-1]), [])
        self.assertEqual(self.feed(new[-1:]), [[f"b{i:04d}" for i in range(20)]])

    def test_shrinkingPageCount(self) -> None:
        """
        Pages left over from a longer list, with its version, are not part
        of a shorter one: a late subscriber that gets them and the new
        index answers only once the new pages arrive.
        """
        old = events_of(self.first)
        self.feed(old[:-1])  # retained pages of the old, longer list
        new = events_of(self.second)
        self.assertEqual(self.feed(new[-1:]), [])
        self.assertEqual(self.feed(new[:-1]), [[f"b{i:04d}" for i in range(20)]])

    def test_blankedPages(self) -> None:
        """
        Blanked pages never complete anything.
        """
        stale = range(len(self.second.pages), len(self.first.pages))
        events = [(t, json.loads(encode(p))) for t, p in self.second.messages(stale)]
        self.assertEqual(len(self.feed(events)), 1)
        self.assertEqual(self.feed(events), [])

    def test_sameVersionOnce(self) -> None:
        """
        A version already answered is not answered again (the index is
        published again only with a new version, but a reconnected remote
        subscriber gets every retained event again).
        """
        self.feed(events_of(self.first))
        self.assertEqual(self.feed(events_of(self.first)), [])

    def test_backToEarlierVersion(self) -> None:
        """
        A configuration put back as it was is answered again.
        """
        self.feed(events_of(self.first))
        self.feed(events_of(self.second))
        self.assertEqual(len(self.feed(events_of(self.first))), 1)

    def test_malformedIgnored(self) -> None:
        """
        Malformed indexes and pages, and other topics starting with
        C{reports}, change nothing.
        """
        events = events_of(self.first)
        junk: list[tuple[str, object]] = [
            (REPORTS, [1, 2]),
            (REPORTS, {"version": "v", "pages": 0, "count": 0}),
            (page_topic(0), "nope"),
            ("reports-old", {"version": "x"}),
        ]
        self.assertEqual(self.feed(junk + events + junk), [[f"a{i:04d}" for i in range(30)]])
        self.flushLoggedErrors()

    def test_countMismatch(self) -> None:
        """
        An index whose count disagrees with its pages answers nothing.
        """
        events = events_of(self.first)
        topic, index = events[-1]
        assert isinstance(index, dict)
        self.assertEqual(self.feed(events[:-1] + [(topic, {**index, "count": 29})]), [])

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_neverMixed(self, data: st.DataObject) -> None:
        """
        Whatever the order in which the events of two versions arrive (the
        bus keeps order per subscriber, but retained values and reconnects
        reorder what a subscriber sees), every answer is one whole version.
        """
        first, second = events_of(self.first), events_of(self.second)
        # Each version's events in publication order, interleaved at random,
        # after a random permutation of retained events of both.
        retained = data.draw(st.permutations(first[:3] + second[-2:]))
        merged = data.draw(st.permutations(first + second))
        whole = {tuple(f"a{i:04d}" for i in range(30)), tuple(f"b{i:04d}" for i in range(20))}
        for answer in ReportsAssemblyRun(list(retained) + list(merged)).answers:
            self.assertIn(tuple(answer), whole)


class ReportsAssemblyRun:
    """
    One L{ReportsAssembly} fed a list of events.

    @ivar answers: The names of each list it answered.
    """

    def __init__(self, events: list[tuple[str, object]]) -> None:
        assembly = ReportsAssembly()
        self.answers: list[list[str]] = []
        for topic, payload in events:
            reports = assembly.receive(topic, payload)
            if reports is not None:
                self.answers.append(names(reports))


class FollowTests(SynchronousTestCase):
    """
    Tests for L{follow_reports} and L{publish_reports} on a L{Bus}.
    """

    def setUp(self) -> None:
        self.bus = Bus()
        self.seen: list[list[str]] = []

    def follow(self) -> Subscription:
        """
        Follow the reports into C{self.seen}.
        """
        return self.successResultOf(
            follow_reports(self.bus, lambda reports: self.seen.append(names(reports)))
        )

    def publish(self, count: int, prefix: str = "r") -> None:
        """
        Publish C{count} reports in small pages.
        """
        reports = [ReportTopic.from_payload(p) for p in report_payloads(count, prefix)]
        self.successResultOf(publish_reports(self.bus, reports, limit=1500))

    def test_eachVersionOnce(self) -> None:
        """
        The follower is called once per published list, with all of it.
        """
        self.follow()
        self.publish(30)
        self.publish(5, "s")
        self.assertEqual(self.seen, [[f"r{i:04d}" for i in range(30)], [f"s{i:04d}" for i in range(5)]])

    def test_lateSubscriber(self) -> None:
        """
        A subscriber that comes after the pages were published is called
        at once with the current list, from the retained pages, even when
        a longer list was published before it.
        """
        self.publish(30)
        self.publish(12, "s")
        self.follow()
        self.assertEqual(self.seen, [[f"s{i:04d}" for i in range(12)]])

    def test_unsubscribe(self) -> None:
        """
        The one subscription returned ends the following.
        """
        subscription = self.follow()
        self.successResultOf(self.bus.unsubscribe(subscription))
        self.publish(3)
        self.assertEqual(self.seen, [])
        self.assertEqual(self.bus.status()["subscriptions"], 0)

    def test_publishTooLarge(self) -> None:
        """
        A list with a report that cannot fit publishes nothing.
        """
        reports = report_payloads(2)
        reports[1]["params"] = {"x": "y" * LIMIT}
        self.failureResultOf(publish_reports(self.bus, reports), ItemTooLarge)
        self.assertEqual(self.bus.status()["retained_topics"], [])
