"""
Tests of L{harbour.web.coverage}: the day states, the rows, what changed,
and the first load from a task store.
"""

from __future__ import annotations

import datetime
import gc
import tracemalloc
from zoneinfo import ZoneInfo

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.requests import ReportURL
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import DOWNLOADED, EMPTY, FAILED
from harbour.web.coverage import Coverage, DayCounts
from harbour.web.test.helpers import day_requests

FIRST = datetime.date(2025, 3, 8)


class DayStateTests(SynchronousTestCase):
    """
    L{DayCounts.state}.
    """

    def test_states(self) -> None:
        """
        Failed wins, then pending, partly, empty, revised, downloaded.
        """
        self.assertEqual(DayCounts(downloaded=3, failed=1).state, "F")
        self.assertEqual(DayCounts(pending=2).state, "W")
        self.assertEqual(DayCounts(downloaded=1, pending=1).state, "P")
        self.assertEqual(DayCounts(empty=2).state, "E")
        self.assertEqual(DayCounts(downloaded=1, empty=1).state, "D")
        self.assertEqual(DayCounts(downloaded=2, revised=1).state, "R")
        self.assertEqual(DayCounts().state, "-")


class CoverageTests(SynchronousTestCase):
    """
    L{Coverage} laid out from requests and moved by events.
    """

    def setUp(self) -> None:
        self.coverage = Coverage()
        self.requests = day_requests("lmp", FIRST, 4) + day_requests("load", FIRST, 2)
        self.coverage.set_requests(self.requests)

    def test_layout(self) -> None:
        """
        One row per report, one pending day per requested trading day (the
        days of a daylight-saving change included).
        """
        rows = {row.report: row for row in self.coverage.rows()}
        self.assertEqual(sorted(rows), ["lmp", "load"])
        self.assertEqual((rows["lmp"].first, rows["lmp"].states), (FIRST, "WWWW"))
        self.assertEqual(rows["load"].states, "WW")
        self.assertEqual(rows["lmp"].counts, {})

    def test_events(self) -> None:
        """
        Outcomes and revisions on the bus change their days' states: a
        day revised by OASIS stays revised once fetched again.
        """
        names = [r.filename for r in self.requests]
        self.coverage.apply("task.done", {"filename": names[0], "revision": 0})
        self.coverage.apply("task.empty", {"filename": names[1]})
        self.coverage.apply("task.failed", {"filename": names[2]})
        self.coverage.apply("task.revised", {"filename": names[3], "revision": 1, "revised": 1})
        self.coverage.apply("task.done", {"filename": names[3], "revision": 1})
        self.assertEqual(self.coverage.row("lmp").states, "DEFR")
        self.coverage.apply("task.revised", {"filename": names[0], "revision": 1, "revised": 1})
        self.assertEqual(self.coverage.row("lmp").states, "WEFR")
        self.coverage.apply("task.done", {"filename": names[0], "revision": 1})
        self.assertEqual(self.coverage.row("lmp").states, "REFR")
        self.coverage.apply("task.done", {"filename": 7})
        self.coverage.apply("task.done", {"filename": "other/unknown.zip"})
        self.assertEqual(self.coverage.row("lmp").states, "REFR")

    def test_daysCounted(self) -> None:
        """
        L{Coverage.days} counts a row's days by state, and counts them
        again only once the row changed: a snapshot of a large map counts
        the days of the rows that changed only.
        """
        lmp = self.coverage.days("lmp")
        load = self.coverage.days("load")
        self.assertEqual((lmp, load), ({"W": 4}, {"W": 2}))
        self.assertIs(self.coverage.days("lmp"), lmp)
        self.coverage.record(f"lmp/{FIRST.isoformat()}.zip", DOWNLOADED)
        self.assertEqual(self.coverage.days("lmp"), {"D": 1, "W": 3})
        self.assertIs(self.coverage.days("load"), load)
        self.assertEqual((self.coverage.shows("load"), self.coverage.shows("other")), (True, False))

    def test_changedSince(self) -> None:
        """
        Only the rows changed after a version are handed out.
        """
        version = self.coverage.version
        self.assertEqual(self.coverage.changed_since(version), [])
        self.coverage.record(self.requests[-1].filename, DOWNLOADED)
        changed = self.coverage.changed_since(version)
        assert changed is not None
        self.assertEqual([(row.report, row.states) for row in changed], [("load", "WD")])
        self.assertIsNone(self.coverage.changed_since(self.coverage.version + 5))

    def test_newWindowRelaysOneRow(self) -> None:
        """
        A report that gains a window has only its own row laid out again,
        handed out as a changed row (the page redraws rows whole); the
        other rows are kept as they were.
        """
        self.coverage.record(self.requests[0].filename, DOWNLOADED)
        load = self.coverage.row("load")
        version = self.coverage.version
        later = day_requests("lmp", FIRST + datetime.timedelta(days=4), 1)
        self.coverage.set_requests(self.requests + later)
        changed = self.coverage.changed_since(version)
        assert changed is not None
        self.assertEqual([(row.report, row.states) for row in changed], [("lmp", "DWWWW")])
        self.assertIs(self.coverage.row("load"), load)
        self.coverage.record(later[0].filename, DOWNLOADED)
        self.assertEqual(self.coverage.row("lmp").states, "DWWWD")

    def test_statesOfMapOnly(self) -> None:
        """
        Only the task states of files on the map are kept: one heard of
        before its file is laid out, or whose window or report left the
        map, counts as pending once (back) on it, until it is read again.
        """
        early = day_requests("lmp", FIRST + datetime.timedelta(days=4), 1)
        self.coverage.record(early[0].filename, DOWNLOADED)
        for request in self.requests:
            self.coverage.record(request.filename, DOWNLOADED)
        self.coverage.set_requests(self.requests[:4] + early)
        self.assertEqual(self.coverage.row("lmp").states, "DDDDW")
        self.coverage.set_requests(self.requests[1:4])
        self.coverage.set_requests(self.requests)
        self.assertEqual(self.coverage.row("lmp").states, "WDDD")
        self.assertEqual(self.coverage.row("load").states, "WW")

    def test_strangersNotKept(self) -> None:
        """
        The outcomes of files never on the map (retired windows, removed
        reports, anyone's events) take no memory.
        """
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20_000):
            self.coverage.apply("task.done", {"filename": f"gone/{n:08d}.zip", "revision": 0})
        self.coverage.set_requests([])
        self.assertLess(tracemalloc.get_traced_memory()[0] - before, 100_000)

    def test_reportsComeAndGo(self) -> None:
        """
        A report added or removed asks for every row again; a removed
        report's files no longer count anywhere.
        """
        version = self.coverage.version
        self.coverage.set_requests(self.requests + day_requests("ghg", FIRST, 1))
        self.assertIsNone(self.coverage.changed_since(version))
        self.assertEqual(self.coverage.reports(), ["ghg", "lmp", "load"])
        version = self.coverage.version
        self.coverage.set_requests(self.requests[:4])
        self.assertIsNone(self.coverage.changed_since(version))
        self.assertEqual(self.coverage.reports(), ["lmp"])
        version = self.coverage.version
        self.coverage.record(self.requests[-1].filename, DOWNLOADED)
        self.assertEqual((self.coverage.version, self.coverage.changed_since(version)), (version, []))

    def test_windowDropped(self) -> None:
        """
        A window no longer asked for leaves its report's row, and its task's
        outcome changes nothing.
        """
        self.coverage.set_requests(self.requests[1:])
        self.assertEqual(self.coverage.row("lmp").states, "WWW")
        version = self.coverage.version
        self.coverage.record(self.requests[0].filename, DOWNLOADED)
        self.assertEqual(self.coverage.version, version)

    def test_sameRequestsKeepLayout(self) -> None:
        """
        The manifest's same list again, or an equal one made anew, changes
        nothing.
        """
        version = self.coverage.version
        self.coverage.set_requests(self.requests)
        self.coverage.set_requests(day_requests("lmp", FIRST, 4) + day_requests("load", FIRST, 2))
        self.assertEqual(self.coverage.version, version)

    def test_multiDayWindow(self) -> None:
        """
        A request spanning several days colours each of them, and its
        counts are given for days with other than one request.
        """
        days = day_requests("load", FIRST, 3)
        spanning = ReportURL(days[0].url, "load/week.zip", "load", days[0].window_start, days[-1].window_end)
        coverage = Coverage()
        coverage.set_requests([spanning, *day_requests("load", FIRST, 1)])
        coverage.record("load/week.zip", DOWNLOADED)
        row = coverage.row("load")
        self.assertEqual(row.states, "PDD")
        self.assertEqual(row.counts, {0: [1, 0, 1, 0]})

    def test_newestUnmirrored(self) -> None:
        """
        The newest day asked for, until it is mirrored, with when it ends.
        """
        newest = self.requests[3]
        self.assertEqual(
            self.coverage.newest_unmirrored("lmp"), ("2025-03-11", newest.window_end.timestamp())
        )
        self.coverage.record(newest.filename, EMPTY)
        self.assertIsNone(self.coverage.newest_unmirrored("lmp"))
        self.assertIsNone(self.coverage.newest_unmirrored("nonesuch"))

    def test_load(self) -> None:
        """
        The task states are read from the store, page by page.
        """
        clock = Clock()
        store = MemoryTaskStore(clock)
        self.successResultOf(store.create(self.requests))
        for expected, state in ((0, DOWNLOADED), (1, FAILED)):
            task = self.successResultOf(store.claim("me", 60))
            assert task is not None
            self.assertEqual(task.filename, self.requests[3 - expected].filename)
            self.successResultOf(store.finish(task.id, "me", state))
        read = self.successResultOf(self.coverage.load(store, page=2))
        self.assertEqual(read, 6)
        self.assertEqual(self.coverage.row("lmp").states, "WWFD")

    def test_fetchedAgainNotRevised(self) -> None:
        """
        Only OASIS's revisions make a day revised: a day ahead fetched
        again (its C{revision} raised, to keep the file it replaces) is
        downloaded, read from the store or told by its outcome.
        """
        clock = Clock()
        store = MemoryTaskStore(clock)
        self.successResultOf(store.create(self.requests))
        names = [r.filename for r in self.requests[:4]]
        first: dict[str, str] = {}
        for ignored in range(2):
            task = self.successResultOf(store.claim("me", 60))
            assert task is not None
            first[task.filename] = task.id
            self.successResultOf(store.finish(task.id, "me", DOWNLOADED, 10, "old"))
        ahead, revised = first[names[3]], first[names[2]]
        self.assertEqual(self.successResultOf(store.refetch_ahead([ahead], clock.seconds() + 1)), [ahead])
        clock.advance(10)
        [entry] = self.successResultOf(store.revise([(revised, clock.seconds() - 1, 2)]))
        for ignored in range(2):
            task = self.successResultOf(store.claim("me", 60))
            assert task is not None
            self.successResultOf(store.finish(task.id, "me", DOWNLOADED, 12, "new"))
        again = self.successResultOf(store.get(ahead))
        assert again is not None
        self.assertEqual(again.revision, 1)
        self.successResultOf(self.coverage.load(store))
        self.assertEqual(self.coverage.row("lmp").states, "WWRD")
        self.assertEqual(self.coverage.days("lmp"), {"W": 2, "R": 1, "D": 1})
        # As the bus tells it to a map laid out anew.
        told = Coverage()
        told.set_requests(self.requests)
        told.apply("task.revised", entry)
        for name in names[2:]:
            told.apply("task.done", {"filename": name, "revision": 1})
        self.assertEqual(told.row("lmp").states, "WWRD")


def spanning(report: str, first: datetime.date, days: int) -> ReportURL:
    """
    @return: One request of C{report} whose window spans C{days} trading
        days from C{first}.
    """
    each = day_requests(report, first, days)
    name = f"{report}/{first.isoformat()}+{days}.zip"
    return ReportURL(each[0].url + "+", name, report, each[0].window_start, each[-1].window_end)


class MovedRowTests(SynchronousTestCase):
    """
    A row whose requests lost their first windows and gained new ones
    after their last, as every row's do when a trading day passes, changed
    in place: the same as if laid out anew.
    """

    def moved_and_anew(
        self, before: list[ReportURL], after: list[ReportURL], states: dict[str, str]
    ) -> tuple[Coverage, Coverage]:
        """
        @param states: The task state of files, known before the change.
        @return: A map laid out for C{before}, the states recorded, then
            given C{after}; and one laid out for C{after} only, the states
            of C{before}'s files recorded (the first map keeps the states
            of its own files only).
        """
        moved, anew = Coverage(), Coverage()
        moved.set_requests(before)
        for filename, state in states.items():
            moved.record(filename, state)
        moved.set_requests(after)
        anew.set_requests(after)
        kept = {request.filename for request in before}
        for filename, state in states.items():
            if filename in kept:
                anew.record(filename, state)
        return moved, anew

    def assertSameMap(self, moved: Coverage, anew: Coverage, names: list[str]) -> None:
        """
        C{moved} and C{anew} have the same rows, newest days to mirror and
        files, and stay the same when each of C{names} is downloaded.
        """
        for name in [None, *names]:
            if name is not None:
                moved.record(name, DOWNLOADED)
                anew.record(name, DOWNLOADED)
            self.assertEqual(moved.rows(), anew.rows(), name)
            for report in anew.reports():
                self.assertEqual(moved.newest_unmirrored(report), anew.newest_unmirrored(report), name)
            self.assertEqual([moved.knows(n) for n in names], [anew.knows(n) for n in names])

    def test_dayPasses(self) -> None:
        """
        A day passes under a start relative to today: the row loses its
        first day and gains one, keeps its other days' states, is handed out
        as changed, and is not laid out again.
        """
        days = day_requests("lmp", FIRST, 6)
        coverage = Coverage()
        coverage.set_requests(days[:5] + day_requests("load", FIRST, 2))
        for request in days[:3]:
            coverage.record(request.filename, DOWNLOADED)
        load = coverage.row("load")
        version = coverage.version
        laid_out: list[str] = []
        lay_out = coverage._lay_out

        def counted(report: str, *args: object) -> object:
            laid_out.append(report)
            return lay_out(report, *args)  # type: ignore[arg-type]

        coverage._lay_out = counted  # type: ignore[method-assign, assignment]
        coverage.set_requests(days[1:] + day_requests("load", FIRST, 2))
        self.assertEqual(laid_out, [])
        changed = coverage.changed_since(version)
        assert changed is not None
        self.assertEqual(
            [(row.report, row.first, row.states) for row in changed],
            [("lmp", FIRST + datetime.timedelta(days=1), "DDWWW")],
        )
        self.assertIs(coverage.row("load"), load)
        self.assertFalse(coverage.knows(days[0].filename))
        coverage.record(days[5].filename, FAILED)
        self.assertEqual(coverage.row("lmp").states, "DDWWF")

    def test_sameAsLaidOutAnew(self) -> None:
        """
        Windows appended (after a gap too), first ones dropped, a dropped
        window that spanned the others' days (before and after them), and
        a window before the row's first day: the map is the one laid out
        anew for the same requests, also as tasks move afterwards.
        """
        days = day_requests("lmp", FIRST, 12)
        week = spanning("lmp", FIRST, 7)
        states = {
            days[n].filename: state for n, state in enumerate([DOWNLOADED, EMPTY, FAILED, DOWNLOADED] * 3)
        }
        states[week.filename] = DOWNLOADED
        cases = [
            (days[:4], days[:5]),
            (days[:4], days[2:7]),
            (days[:4], days[:4] + days[8:10]),
            ([week, *days[2:5]], days[2:6]),
            ([week, days[3]], [days[3], days[9]]),
            (days[3:6], [*days[3:6], days[1]]),
            (days[:3], [*days[:3], week]),
        ]
        names = [request.filename for request in [*days, week]]
        for before, after in cases:
            moved, anew = self.moved_and_anew(before + day_requests("load", FIRST, 1), after, states)
            self.assertSameMap(moved, anew, names)


def utc_days(report: str, first: datetime.date, days: int) -> list[ReportURL]:
    """
    @return: One request per UTC day of C{report}, from C{first}.
    """
    found = []
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
        name = f"{report}/{day.isoformat()}.zip"
        found.append(
            ReportURL(f"http://oasis.test/{name}", name, report, start, start + datetime.timedelta(days=1))
        )
    return found


class TrackedTests(SynchronousTestCase):
    """
    What a laid-out map leaves the garbage collector to go over.
    """

    def test_nonePerDay(self) -> None:
        """
        A map holds no object per day that the garbage collector tracks:
        a million of them (a list of file names per day, and one of counts
        per day of two windows) made each full collection that laying them
        out set off hold the reactor a third of a second.
        """
        # UTC days seen in the Pacific's: two windows a day.
        requests = utc_days("r", FIRST, 2_000)
        coverage = Coverage()
        gc.collect()
        before = len(gc.get_objects())
        coverage.set_requests(requests)
        self.assertEqual(len(coverage.row("r").counts), 1_999)
        gc.collect()
        self.assertLess(len(gc.get_objects()) - before, 100)


class StampTests(SynchronousTestCase):
    """
    L{Coverage.stamp} and L{Coverage.changed_since_stamp}: versions told
    apart from those of a map made before, in a process since restarted.
    """

    def test_ownStamp(self) -> None:
        """
        A stamp the map gave answers as its version does.
        """
        coverage = Coverage(epoch="e1")
        coverage.set_requests(day_requests("lmp", FIRST, 2))
        stamp = coverage.stamp()
        self.assertEqual(stamp, f"e1.{coverage.version}")
        self.assertEqual(coverage.changed_since_stamp(stamp), [])
        coverage.record(f"lmp/{FIRST.isoformat()}.zip", DOWNLOADED)
        changed = coverage.changed_since_stamp(stamp)
        assert changed is not None
        self.assertEqual([row.states for row in changed], ["DW"])

    def test_restarted(self) -> None:
        """
        A stamp of the map of the daemon before it restarted asks for every
        row again, though the new map's versions have passed its own (one
        of its reports gone meanwhile).
        """
        old = Coverage()
        old.set_requests(day_requests("a", FIRST, 30) + day_requests("b", FIRST, 30))
        for day in range(30):
            old.record(f"a/{FIRST + datetime.timedelta(days=day)}.zip", DOWNLOADED)
        stamp = old.stamp()
        new = Coverage()
        self.assertNotEqual(new.epoch, old.epoch)
        new.set_requests(day_requests("a", FIRST - datetime.timedelta(days=60), 91))
        for day in range(-60, 31):
            new.record(f"a/{FIRST + datetime.timedelta(days=day)}.zip", DOWNLOADED)
        self.assertGreater(new.version, old.version)
        self.assertIsNone(new.changed_since_stamp(stamp))

    def test_notAStamp(self) -> None:
        """
        Anything that is not a stamp of the map asks for every row again.
        """
        coverage = Coverage(epoch="e1")
        coverage.set_requests(day_requests("lmp", FIRST, 2))
        for given in (
            "",
            "x",
            str(coverage.version),
            "e1.",
            "e1.x",
            "e1.-1",
            "e2.1",
            ".1",
            "e1.\u00b2",
            "e1.\u0661",
            "e1." + "1" * 5000,
        ):
            self.assertIsNone(coverage.changed_since_stamp(given), given)


class ZoneTests(SynchronousTestCase):
    """
    L{Coverage.set_zone}: the trading days of another zone.
    """

    def test_otherZone(self) -> None:
        """
        A zone set anew lays every row out in its days again, keeping the
        task states known, and asks the page for the whole map again;
        the same zone again changes nothing.
        """
        coverage = Coverage()
        coverage.set_requests(utc_days("r", FIRST, 3))
        coverage.record(f"r/{FIRST.isoformat()}.zip", DOWNLOADED)
        # A UTC day is two days of Pacific's: the previous evening, and its own.
        self.assertEqual(
            (coverage.row("r").first, coverage.row("r").states), (FIRST - datetime.timedelta(1), "DPWW")
        )
        version = coverage.version
        coverage.set_zone(ZoneInfo("UTC"))
        self.assertEqual((coverage.row("r").first, coverage.row("r").states), (FIRST, "DWW"))
        self.assertIsNone(coverage.changed_since(version))
        version = coverage.version
        coverage.set_zone(ZoneInfo("UTC"))
        self.assertEqual(coverage.version, version)

    def test_zoneBeforeRequests(self) -> None:
        """
        A zone set before any request is the one the first layout uses.
        """
        coverage = Coverage()
        coverage.set_zone(ZoneInfo("UTC"))
        coverage.set_requests(utc_days("r", FIRST, 2))
        self.assertEqual((coverage.row("r").first, coverage.row("r").states), (FIRST, "WW"))


def rows(coverage: Coverage) -> dict[str, tuple[datetime.date, str]]:
    """
    @return: C{{report: (first day, states)}} of C{coverage}'s rows.
    """
    return {row.report: (row.first, row.states) for row in coverage.rows()}


class LayingOutTests(SynchronousTestCase):
    """
    L{Coverage.laying_out}, L{Coverage.fresh} and L{Coverage.clearing}: a
    map laid out a step at a time beside the one shown.
    """

    def setUp(self) -> None:
        self.requests = [*day_requests("lmp", FIRST, 3), *day_requests("load", FIRST, 2)]

    def test_steps(self) -> None:
        """
        Laid out a step at a time (a row a step), a map ends as
        L{Coverage.set_requests} lays it out.
        """
        coverage, whole = Coverage(), Coverage()
        whole.set_requests(self.requests)
        steps = coverage.laying_out(self.requests)
        next(steps)
        self.assertEqual(coverage.requested, self.requests)
        # Planned and laid out row by row, their rows made, the states pruned.
        self.assertGreater(len(list(steps)), 4)
        self.assertEqual(rows(coverage), rows(whole))
        self.assertEqual(coverage.set_requests(self.requests), True)

    def test_statesMeanwhile(self) -> None:
        """
        While a map is laid out, the states of files it has not laid out yet
        are kept, and those of files it does not lay out are dropped at its
        end.
        """
        coverage = Coverage()
        steps = coverage.laying_out(self.requests)
        next(steps)
        coverage.record(f"load/{FIRST.isoformat()}.zip", DOWNLOADED)
        coverage.record("other/2025-03-08.zip", FAILED)
        list(steps)
        self.assertEqual(rows(coverage)["load"], (FIRST, "DW"))
        coverage.set_requests([*self.requests, *day_requests("other", FIRST, 1)])
        self.assertEqual(rows(coverage)["other"], (FIRST, "W"))

    def test_superseded(self) -> None:
        """
        A layout begun on a map while another is under way supersedes it:
        the other's further steps do nothing, and the newer goes on from
        the rows laid out so far.
        """
        coverage = Coverage()
        older = coverage.laying_out(self.requests)
        for ignored in range(5):
            next(older)
        newer = coverage.laying_out(self.requests[1:])
        next(newer)
        self.assertEqual(list(older), [])
        list(newer)
        self.assertEqual(
            rows(coverage), {"lmp": (FIRST + datetime.timedelta(1), "WW"), "load": (FIRST, "WW")}
        )

    def test_supersededInOrder(self) -> None:
        """
        A layout superseded once some rows are laid out, by one left with
        nothing more to lay out, still ends with its rows in order.
        """
        coverage = Coverage()
        requests = [
            *day_requests("wind", FIRST, 1),
            *day_requests("lmp", FIRST, 1),
            *day_requests("load", FIRST, 1),
        ]
        older = coverage.laying_out(requests)
        for ignored in range(100):
            if len(list(coverage.rows())) == 2:
                break
            next(older)
        list(coverage.laying_out(requests[:2]))
        self.assertEqual(list(older), [])
        self.assertEqual([row.report for row in coverage.rows()], ["lmp", "wind"])

    def test_fresh(self) -> None:
        """
        L{Coverage.fresh} makes an empty map of its own epoch, in another
        zone if asked, knowing the task states of the map it is made from:
        laid out, it is what L{Coverage.set_zone} makes of that map.
        """
        coverage = Coverage()
        coverage.set_requests(self.requests)
        coverage.record(f"lmp/{FIRST.isoformat()}.zip", DOWNLOADED)
        fresh = coverage.fresh(ZoneInfo("UTC"))
        self.assertEqual((fresh.rows(), fresh.requested, str(fresh.zone)), ([], None, "UTC"))
        self.assertNotEqual(fresh.epoch, coverage.epoch)
        list(fresh.laying_out(self.requests))
        coverage.set_zone(ZoneInfo("UTC"))
        self.assertEqual(rows(fresh), rows(coverage))
        self.assertEqual(rows(fresh)["lmp"], (FIRST, "DPWW"))
        self.assertEqual(coverage.fresh().zone, coverage.zone)

    def test_mostAtOnce(self) -> None:
        """
        L{Coverage.set_requests} given a C{most} changes nothing if more
        requests than that are laid out anew, and answers whether it laid
        the map out: a day passing moves rows and lays out none anew.
        """
        coverage = Coverage()
        self.assertFalse(coverage.set_requests(self.requests, most=4))
        self.assertEqual((coverage.rows(), coverage.requested), ([], None))
        self.assertTrue(coverage.set_requests(self.requests, most=5))
        version = coverage.version
        self.assertFalse(coverage.set_requests(day_requests("lmp", FIRST, 1), most=0))
        self.assertEqual(coverage.version, version)
        later = [*day_requests("lmp", FIRST + datetime.timedelta(1), 3), *day_requests("load", FIRST, 2)]
        self.assertTrue(coverage.set_requests(later, most=0))
        self.assertEqual(rows(coverage)["lmp"], (FIRST + datetime.timedelta(1), "WWW"))

    def test_clearing(self) -> None:
        """
        L{Coverage.clearing} takes a step per row and then per L{STEP}
        names, and leaves a map with nothing on it.
        """
        coverage = Coverage()
        coverage.set_requests(self.requests)
        coverage.record(f"lmp/{FIRST.isoformat()}.zip", DOWNLOADED)
        self.assertEqual(len(list(coverage.clearing())), 4)
        self.assertEqual((coverage.rows(), coverage.requested), ([], None))
        self.assertFalse(coverage.knows(f"lmp/{FIRST.isoformat()}.zip"))
