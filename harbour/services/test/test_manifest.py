"""
Tests for L{harbour.services.manifest}, the C{Reports} command and C{harbourctl
manifest}.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import io
import json
from pathlib import Path
from typing import cast

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from harbour.amp import commands
from harbour.bus import Bus
from harbour.config.watcher import ConfigService
from harbour.ctl import FAILED, OK, print_manifest
from harbour.errors import BadRequest
from harbour.interfaces import IManifest, IPublications
from harbour.oasis.publications import Publication
from harbour.oasis.requests import current_only_past, report_urls
from harbour.services.manifest import ManifestService
from harbour.services.work import WorkService
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import DOWNLOADED, PENDING, RETIRED, task_id
from harbour.test.helpers import TOKEN, call, connected, control_service

#: 2026-01-15 12:00 in California.
NOON = datetime.datetime(2026, 1, 15, 20, 0, tzinfo=datetime.UTC).timestamp()

REPORTS = """\
[manifest]
start = "-2d"

[[reports]]
name = "lmp"
queryname = "PRC_LMP"
market_run_id = "DAM"
params = { grp_type = "ALL_APNODES" }
"""


class CappedPublications:
    """
    Publications whose log shows each report published through a day:
    only what the manifest asks of them.
    """

    def __init__(self, caps: dict[str, datetime.date]) -> None:
        self.caps = caps

    def published_through(self) -> dict[str, datetime.date]:
        """
        See L{IPublications.published_through}.
        """
        return dict(self.caps)


class ManifestServiceTests(SynchronousTestCase):
    """
    The service follows the configuration published on the bus.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        (self.directory / "r.toml").write_text(REPORTS)
        self.clock = Clock()
        self.clock.advance(NOON)
        self.bus = Bus()
        self.config = ConfigService(self.clock, self.directory, self.bus)
        self.manifest = ManifestService(self.clock, self.bus)
        self.manifest.startService()
        self.successResultOf(self.config.reload())

    def test_interface(self) -> None:
        """
        The service provides L{IManifest}.
        """
        verifyObject(IManifest, self.manifest)

    def test_reports(self) -> None:
        """
        C{reports()} lists the configured report's days, newest first.
        """
        self.assertEqual(
            [r.filename for r in self.manifest.reports()],
            ["lmp/2026-01-15.zip", "lmp/2026-01-14.zip", "lmp/2026-01-13.zip"],
        )

    def test_configChangeWithoutRestart(self) -> None:
        """
        A change to the C{reports} topic shows in C{reports()} at once.
        """
        self.manifest.reports()
        (self.directory / "r.toml").write_text(
            REPORTS
            + '\n[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "3d"\n'
        )
        self.successResultOf(self.config.reload())
        self.assertEqual([r.filename for r in self.manifest.reports()][-1], "load/2026-01-11_2026-01-13.zip")

    def test_newDay(self) -> None:
        """
        When the trading day turns, today's window appears.
        """
        self.clock.advance(24 * 3600)
        self.assertEqual(self.manifest.reports()[0].filename, "lmp/2026-01-16.zip")

    def test_heldBack(self) -> None:
        """
        The days after a report's publication cap are left out of
        C{reports()} and listed by C{held_back()}; without a cap, nothing
        is held back.
        """
        self.assertEqual(self.manifest.held_back(), [])
        publications = CappedPublications({"lmp": datetime.date(2026, 1, 13)})
        self.manifest.publications = cast(IPublications, publications)
        self.assertEqual([r.filename for r in self.manifest.reports()], ["lmp/2026-01-13.zip"])
        self.assertEqual(
            [r.filename for r in self.manifest.held_back()], ["lmp/2026-01-15.zip", "lmp/2026-01-14.zip"]
        )
        publications.caps = {"lmp": datetime.date(2026, 1, 10)}
        self.assertEqual(
            [r.filename for r in self.manifest.held_back()],
            ["lmp/2026-01-15.zip", "lmp/2026-01-14.zip", "lmp/2026-01-13.zip"],
        )

    def test_revisedHour(self) -> None:
        """
        An entry of the log naming an hour concerns the windows that hold
        that hour (a day's window, and the one of that hour); one naming no
        hour concerns every window of its day.
        """
        (self.directory / "r.toml").write_text(
            REPORTS + '\n[[reports]]\nname = "lmp-h"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\n'
            'params = { node = "A" }\nwindow = "1h"\n'
        )
        self.successResultOf(self.config.reload())
        day = datetime.date(2026, 1, 14)
        hour = Publication("PRC_LMP", "DAM", day, NOON, 1, hour=12)
        self.assertEqual(
            sorted(request.filename for request, entry in self.manifest.revised([hour])),
            ["lmp-h/2026-01-14_H12.zip", "lmp/2026-01-14.zip"],
        )
        whole = Publication("PRC_LMP", "DAM", day, NOON, 2)
        found = [request.filename for request, entry in self.manifest.revised([whole])]
        self.assertEqual(len(found), 1 + 24)
        self.assertIn("lmp-h/2026-01-14_H01.zip", found)

    def test_revisedNotAskedFor(self) -> None:
        """
        An entry concerns the windows of its reports that are not asked for
        now too (a report disabled, a day out of range), whose tasks may be
        retired and come back; a window asked for now is named once, by its
        request, and not for a day it no longer holds.
        """
        (self.directory / "r.toml").write_text(
            REPORTS + '\n[[reports]]\nname = "week"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\n'
            'params = { node = "A" }\nwindow = "7d"\n'
        )
        self.successResultOf(self.config.reload())
        # Thursday: the week's block from Monday the 12th is cut to the range.
        [week] = [r for r in self.manifest.reports() if r.report == "week"]
        self.assertEqual(week.filename, "week/2026-01-12_2026-01-18.zip")

        def revised(day: int) -> list[tuple[str, str]]:
            entry = Publication("PRC_LMP", "DAM", datetime.date(2026, 1, day), NOON, 2)
            return sorted((request.filename, request.url) for request, _ in self.manifest.revised([entry]))

        self.assertEqual(
            revised(14),
            sorted([("lmp/2026-01-14.zip", self.manifest.reports()[1].url), (week.filename, week.url)]),
        )
        self.assertEqual(
            [name for name, url in revised(10)], ["lmp/2026-01-10.zip", "week/2026-01-05_2026-01-11.zip"]
        )
        self.assertEqual([name for name, url in revised(12)], ["lmp/2026-01-12.zip"])
        (self.directory / "r.toml").write_text(
            REPORTS.replace('market_run_id = "DAM"', 'market_run_id = "DAM"\nenabled = false')
        )
        self.successResultOf(self.config.reload())
        self.assertEqual([name for name, url in revised(14)], ["lmp/2026-01-14.zip"])

    def test_revisedCurrentOnly(self) -> None:
        """
        An entry of a report OASIS serves only current data of concerns
        none of its windows: asked again once over, a window would hold
        the interval current then, not its own, and one of a day already
        past would lose the answer fetched on it.
        """
        (self.directory / "r.toml").write_text(
            REPORTS + '\n[[reports]]\nname = "usage"\nqueryname = "TRNS_CURR_USAGE"\n'
            'params = { ti_id = "ALL", ti_direction = "ALL" }\nstart = "-3d"\n'
        )
        self.successResultOf(self.config.reload())
        self.assertIn("usage", {request.report for request in self.manifest.reports()})
        for day in (12, 15, 17):
            entry = Publication("TRNS_CURR_USAGE", "", datetime.date(2026, 1, day), NOON, 2)
            self.assertEqual(self.manifest.revised([entry]), [])

    def test_revisedMarketInAnyCase(self) -> None:
        """
        A report whose market is written in lower case is matched with the
        log's entries, written in upper case; its URLs keep its market as
        written.
        """
        (self.directory / "r.toml").write_text(REPORTS.replace('"DAM"', '"dam"'))
        self.successResultOf(self.config.reload())
        entry = Publication("PRC_LMP", "DAM", datetime.date(2026, 1, 14), NOON, 2)
        found = self.manifest.revised([entry])
        self.assertEqual([(request.filename, e) for request, e in found], [("lmp/2026-01-14.zip", entry)])
        self.assertIn("market_run_id=dam&", found[0][0].url)

    def test_revisedOtherZone(self) -> None:
        """
        The log's days and hours are Pacific whatever the manifest's zone:
        with days of UTC, an entry of an hour concerns the UTC hour it is,
        and one of a whole day the two UTC days it spans.
        """
        (self.directory / "r.toml").write_text(
            REPORTS.replace("[manifest]", '[manifest]\ntimezone = "UTC"')
            + '\n[[reports]]\nname = "lmp-h"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\n'
            'params = { node = "A" }\nwindow = "1h"\n'
        )
        self.successResultOf(self.config.reload())
        day = datetime.date(2026, 1, 14)
        hour = Publication("PRC_LMP", "DAM", day, NOON, 2, hour=1)
        found = sorted((r.filename, r.window_start.isoformat()) for r, e in self.manifest.revised([hour]))
        self.assertEqual(
            found,
            [
                ("lmp-h/2026-01-14_H09.zip", "2026-01-14T08:00:00+00:00"),
                ("lmp/2026-01-14.zip", "2026-01-14T00:00:00+00:00"),
            ],
        )
        whole = Publication("PRC_LMP", "DAM", day, NOON, 2)
        names = sorted(r.filename for r, e in self.manifest.revised([whole]))
        hours = [f"lmp-h/2026-01-14_H{n:02d}.zip" for n in range(9, 25)]
        hours += [f"lmp-h/2026-01-15_H{n:02d}.zip" for n in range(1, 9)]
        self.assertEqual(names, sorted(hours + ["lmp/2026-01-14.zip", "lmp/2026-01-15.zip"]))

    def test_capsOtherZone(self) -> None:
        """
        A cap is a Pacific trading day: the manifest's days of another zone
        are asked for once that day has ended, as an instant.  A UTC day
        ends before the Pacific day of its date does, a day of Honolulu
        after; today in Honolulu, which ends two hours into a trading day
        whose day-ahead prices are not out at noon in California, is not
        even held back.
        """
        publications = CappedPublications({"lmp": datetime.date(2026, 1, 13)})
        self.manifest.publications = cast(IPublications, publications)
        for zone, asked, held in [
            ("UTC", ["lmp/2026-01-13.zip"], ["lmp/2026-01-15.zip", "lmp/2026-01-14.zip"]),
            ("Pacific/Honolulu", [], ["lmp/2026-01-14.zip", "lmp/2026-01-13.zip"]),
        ]:
            (self.directory / "r.toml").write_text(
                REPORTS.replace("[manifest]", f'[manifest]\ntimezone = "{zone}"')
            )
            self.successResultOf(self.config.reload())
            self.assertEqual([r.filename for r in self.manifest.reports()], asked, zone)
            self.assertEqual([r.filename for r in self.manifest.held_back()], held, zone)

    def test_capsOfPacificDays(self) -> None:
        """
        A group asked for its trading days by C{startdatetime} alone has
        them whatever the zone of the manifest's days: a cap given for it
        is its own last day, asked for and held back as such (in Honolulu
        too, where the manifest's days end two hours later).
        """
        (self.directory / "r.toml").write_text(
            '[manifest]\nstart = "-2d"\ntimezone = "Pacific/Honolulu"\n\n'
            '[[reports]]\nname = "grp"\ngroupid = "DAM_LMP_GRP"\n'
        )
        self.successResultOf(self.config.reload())
        publications = CappedPublications({"grp": datetime.date(2026, 1, 13)})
        self.manifest.publications = cast(IPublications, publications)
        self.assertEqual([r.filename for r in self.manifest.reports()], ["grp/2026-01-13.zip"])
        self.assertEqual(
            [r.filename for r in self.manifest.held_back()], ["grp/2026-01-15.zip", "grp/2026-01-14.zip"]
        )

    def test_capsRetireNothing(self) -> None:
        """
        Tasks created while there was no cap (the log unreadable) are not
        retired when one comes back: their days are held back, not out of
        range.
        """
        store = MemoryTaskStore(self.clock)
        work = WorkService(self.clock, store, self.manifest, self.bus)
        self.successResultOf(work.refresh())
        self.manifest.publications = cast(
            IPublications, CappedPublications({"lmp": datetime.date(2026, 1, 13)})
        )
        self.successResultOf(work.refresh())
        self.assertEqual(self.successResultOf(store.counts()), {"lmp": {PENDING: 3}})

    def test_oldestWindowNotFetchedAgain(self) -> None:
        """
        As a relative start passes the oldest multi-day window's first
        day, the window is cut and its request changes; once downloaded,
        it is not fetched again for that (its file holds every day still
        asked for), while a window that grows with the new day is.
        """
        (self.directory / "r.toml").write_text(
            '[manifest]\nstart = "-5d"\n[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\n'
            'market_run_id = "DAM"\nwindow = "7d"\n'
        )
        self.successResultOf(self.config.reload())
        store = MemoryTaskStore(self.clock)
        work = WorkService(self.clock, store, self.manifest, self.bus)
        self.successResultOf(work.refresh())
        while (task := self.successResultOf(store.claim("w", 60))) is not None:
            self.successResultOf(store.finish(task.id, "w", DOWNLOADED, 10, "sha"))
        oldest, newest = self.manifest.reports()[-1], self.manifest.reports()[0]
        self.clock.advance(24 * 3600)
        trimmed = self.manifest.reports()[-1]
        self.assertEqual(trimmed.filename, oldest.filename)
        self.assertNotEqual(trimmed.url, oldest.url)
        self.successResultOf(work.refresh())
        [again], total = self.successResultOf(store.tasks(PENDING, None, 0, 10))
        self.assertEqual(again.filename, newest.filename)
        downloaded, total = self.successResultOf(store.tasks(DOWNLOADED, None, 0, 10))
        self.assertIn(oldest.url, [task.url for task in downloaded])

    def test_reportsCommandPages(self) -> None:
        """
        C{Reports} pages the list; a bad page is a clear error.
        """
        service = control_service(self.bus, manifest=self.manifest)
        client, server, pump = connected(service)
        call(client, pump, commands.Authenticate, token=TOKEN)
        answer = self.successResultOf(call(client, pump, commands.Reports, offset=1, limit=1))
        self.assertEqual(answer["total"], 3)
        [entry] = json.loads(answer["urls"])
        self.assertEqual(entry["filename"], "lmp/2026-01-14.zip")
        for offset, limit in [(-1, 1), (0, 0), (0, 501)]:
            self.failureResultOf(call(client, pump, commands.Reports, offset=offset, limit=limit), BadRequest)

    def test_pageFitsOneValue(self) -> None:
        """
        A page never exceeds one AMP value, however many entries it may hold.
        """
        text, count = commands.json_page({"url": "x" * 300} for i in range(500))
        self.assertLessEqual(len(text.encode()), 0xFFFF)
        self.assertEqual(len(json.loads(text)), count)
        self.assertLess(count, 500)


class ManifestCommandTests(SynchronousTestCase):
    """
    Tests for C{harbourctl manifest}.
    """

    def test_prints(self) -> None:
        """
        It prints one URL a line for the given days.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "r.toml").write_text(REPORTS)
        out = io.StringIO()
        args = argparse.Namespace(
            config_dir=directory,
            start=datetime.date(2025, 3, 9),
            end=datetime.date(2025, 3, 10),
            today=datetime.date(2026, 1, 15),
        )
        self.assertEqual(print_manifest(args, out), OK)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn("startdatetime=20250309T08:00-0000&enddatetime=20250310T07:00-0000", lines[1])

    def test_badConfig(self) -> None:
        """
        A bad configuration exits 1 and prints nothing on standard output.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "r.toml").write_text("[[reports]]\nname = 1\n")
        out = io.StringIO()
        args = argparse.Namespace(config_dir=directory, start=None, end=None, today=None)
        self.assertEqual(print_manifest(args, out), FAILED)
        self.assertEqual(out.getvalue(), "")


class RevisedWhileRetiredTests(SynchronousTestCase):
    """
    A revision logged while a window is retired is not lost: the window
    comes back pending, not with the data from before the revision.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.clock = Clock()
        self.clock.advance(NOON)
        self.bus = Bus()
        self.config = ConfigService(self.clock, self.directory, self.bus)
        self.manifest = ManifestService(self.clock, self.bus)
        self.manifest.startService()
        self.configure(REPORTS)
        self.store = MemoryTaskStore(self.clock)
        self.work = WorkService(self.clock, self.store, self.manifest, self.bus)
        self.successResultOf(self.work.refresh())
        while (task := self.successResultOf(self.store.claim("w", 60))) is not None:
            self.successResultOf(self.store.finish(task.id, "w", DOWNLOADED, 10, "old"))

    def configure(self, text: str) -> None:
        """
        Make C{text} the configuration.
        """
        (self.directory / "r.toml").write_text(text)
        self.successResultOf(self.config.reload())

    def revised_while(self, away: str) -> None:
        """
        With the configuration C{away}, which retires C{lmp/2026-01-14.zip},
        apply a revision of that day (nothing is announced: nothing is
        fetched yet); then go back to the first configuration: the window
        is pending, its revision counted, its old file's hash kept.
        """
        self.configure(away)
        self.successResultOf(self.work.refresh())
        retired = self.successResultOf(self.store.get(task_id("lmp/2026-01-14.zip")))
        self.assertEqual(retired.state if retired else None, RETIRED)
        self.clock.advance(3600)
        entry = Publication("PRC_LMP", "DAM", datetime.date(2026, 1, 14), self.clock.seconds(), 2)
        announced: list[str] = []
        self.bus.subscribe("task.revised", lambda event: announced.append(event.payload["filename"]))
        self.successResultOf(self.work.revise([entry]))
        self.assertEqual(announced, [], "nothing is fetched while it is retired")
        self.configure(REPORTS)
        self.successResultOf(self.work.refresh())
        pending, total = self.successResultOf(self.store.tasks(PENDING, None, 0, 10))
        self.assertEqual(
            [(task.filename, task.revision, task.sha256) for task in pending],
            [("lmp/2026-01-14.zip", 1, "old")],
        )
        self.assertEqual(self.successResultOf(self.store.revision_counts()), {"lmp": 1})

    def test_disabled(self) -> None:
        """
        A revision while its report is disabled.
        """
        self.revised_while(REPORTS.replace('market_run_id = "DAM"', 'market_run_id = "DAM"\nenabled = false'))

    def test_outOfRange(self) -> None:
        """
        A revision while its day is out of the range.
        """
        self.revised_while(REPORTS.replace('start = "-2d"', 'start = "2026-01-15"'))


#: A report OASIS serves only current data of, published six days ahead.
AHEAD = """\
[manifest]
start = "-40d"
end = "+6d"

[[reports]]
name = "usage"
queryname = "TRNS_CURR_USAGE"
params = { ti_id = "ALL", ti_direction = "ALL" }
"""


class PublishedAheadTests(SynchronousTestCase):
    """
    A report OASIS serves only current data of, published days ahead
    (C{TRNS_CURR_USAGE}, six days), through the daemon's refresh: each day
    its own window, fetched again every day until it is today.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        (self.directory / "r.toml").write_text(AHEAD)
        self.clock = Clock()
        self.bus = Bus()
        self.config = ConfigService(self.clock, self.directory, self.bus)
        self.manifest = ManifestService(self.clock, self.bus)
        self.manifest.startService()
        self.successResultOf(self.config.reload())
        self.store = MemoryTaskStore(self.clock)
        self.work = WorkService(self.clock, self.store, self.manifest, self.bus)
        self.fetched: dict[str, list[str]] = {}

    def _noon(self, day: datetime.date) -> None:
        """
        Move to noon of C{day} in California.
        """
        noon = datetime.datetime(day.year, day.month, day.day, 20, tzinfo=datetime.UTC).timestamp()
        self.clock.advance(noon - self.clock.seconds())

    def _day(self, day: datetime.date) -> None:
        """
        Move to noon of C{day}, refresh, and download whatever is pending,
        each file's hash naming the day it was fetched on.
        """
        self._noon(day)
        self.successResultOf(self.work.refresh())
        while (task := self.successResultOf(self.store.claim("w", 60))) is not None:
            self.fetched.setdefault(task.filename, []).append(str(day))
            self.successResultOf(self.store.finish(task.id, "w", DOWNLOADED, 10, f"sha {day}"))

    def test_eachDayFetchedOnItsDay(self) -> None:
        """
        Each day's window is fetched the day it is published, six days
        ahead, and again on each day after until it is today, never once
        it is past: its file is the one fetched on its day, and a day
        past is kept, not retired.  A fetch again is no revision of
        OASIS's.
        """
        first = datetime.date(2026, 2, 2)
        days = [first + datetime.timedelta(days=offset) for offset in range(9)]
        for day in days:
            self._day(day)
        self.assertEqual(self.fetched["usage/2026-02-08.zip"], [str(day) for day in days[:7]])
        self.assertEqual(self.fetched["usage/2026-02-02.zip"], ["2026-02-02"])
        for day in days:
            task = self.successResultOf(self.store.get(task_id(f"usage/{day}.zip")))
            assert task is not None
            self.assertEqual((task.state, task.sha256), (DOWNLOADED, f"sha {day}"))
        for filename, fetched in self.fetched.items():
            self.assertLessEqual(max(fetched), filename.removeprefix("usage/").removesuffix(".zip"))
        self.assertEqual(self.successResultOf(self.store.counts()), {"usage": {DOWNLOADED: 15}})
        self.assertEqual(self.successResultOf(self.store.revision_counts()), {})

    def test_notFetchedOnItsDayKept(self) -> None:
        """
        A day put back to be fetched again that is not fetched before it
        ends (OASIS away, no worker) is never fetched once past: it keeps
        the file fetched the day before, and its tables.
        """
        day = datetime.date(2026, 2, 2)
        after = day + datetime.timedelta(days=1)
        self._day(day)
        self._noon(after)
        self.successResultOf(self.work.refresh())
        reset = task_id(f"usage/{after}.zip")
        waiting = self.successResultOf(self.store.get(reset))
        assert waiting is not None
        self.assertEqual(waiting.state, PENDING)
        self._day(after + datetime.timedelta(days=1))
        self.assertEqual(self.fetched[f"usage/{after}.zip"], [str(day)])
        task = self.successResultOf(self.store.get(reset))
        assert task is not None
        self.assertEqual((task.state, task.sha256, task.revision), (DOWNLOADED, f"sha {day}", 0))
        self.assertEqual(self.successResultOf(self.store.retired_tables(10)).entries, ())

    def test_refreshedOnceADay(self) -> None:
        """
        Later refreshes of the same day fetch nothing again: each day
        ahead is fetched once a day.
        """
        day = datetime.date(2026, 2, 2)
        self._day(day)
        self._day(day + datetime.timedelta(days=1))
        self.clock.advance(3600)
        self.successResultOf(self.work.refresh())
        self.assertIsNone(self.successResultOf(self.store.claim("w", 60)))

    def test_upgradeFromBlocks(self) -> None:
        """
        Tasks made when the report was asked in blocks of 31 days (its
        former default window): the block holding today is retired, its
        tables listed to go, as its days from today on are asked a day at a
        time; the blocks over before it are kept with their tables, whose
        days no day's window holds.  Nothing else is retired.
        """
        today = datetime.date(2026, 1, 20)
        self._noon(today)
        [report] = self.manifest.definitions
        # As the former version built it: a window of blocks is refused now.
        blocks = copy.copy(report)
        object.__setattr__(blocks, "window", "31d")
        former = current_only_past(self.manifest.manifest, [blocks], today)
        former += report_urls(self.manifest.manifest, [blocks], today)
        self.assertEqual(
            sorted({request.filename for request in former}),
            ["usage/2025-12-11_2026-01-10.zip", "usage/2026-01-11_2026-02-10.zip"],
        )
        self.successResultOf(self.store.create(former))
        while (task := self.successResultOf(self.store.claim("w", 60))) is not None:
            self.successResultOf(self.store.finish(task.id, "w", DOWNLOADED, 10, "block"))
        self.successResultOf(self.work.refresh())
        past = self.successResultOf(self.store.get(task_id("usage/2025-12-11_2026-01-10.zip")))
        current = self.successResultOf(self.store.get(task_id("usage/2026-01-11_2026-02-10.zip")))
        assert past is not None and current is not None
        self.assertEqual((past.state, current.state), (DOWNLOADED, RETIRED))
        dropped = self.successResultOf(self.store.retired_tables(10))
        self.assertEqual(dropped.files, (("usage", "usage/2026-01-11_2026-02-10.zip"),))
        pending, total = self.successResultOf(self.store.tasks(PENDING, "usage", 0, 10))
        self.assertEqual(
            [task.filename for task in pending],
            [f"usage/2026-01-{day}.zip" for day in range(26, 19, -1)],
        )
