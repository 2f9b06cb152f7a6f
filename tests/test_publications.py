"""
System tests of following OASIS publications: a real C{twistd harbour}
reads the simulator's publications log, requests only published days, and
fetches revised ones again.
"""

from __future__ import annotations

import datetime
import json

import treq
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.testing.simulator import PACIFIC, parse_gmt
from tests.test_mirror import LMP, Mirror, report_requests

ONE_DAY = datetime.timedelta(days=1)
INTERVAL = 2.0


def pacific_today(reactor) -> datetime.date:
    return datetime.datetime.fromtimestamp(reactor.seconds(), PACIFIC).date()


def day_start(day: datetime.date) -> float:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


def requests_for(mirror: Mirror, day: datetime.date) -> list:
    """
    @return: The simulator's data requests whose window starts on C{day}.
    """
    start = day_start(day)
    return [r for r in report_requests(mirror.simulator)
            if "startdatetime" in r[2] and parse_gmt(r[2]["startdatetime"]).timestamp() == start]


def publications(status: dict) -> dict:
    return status["services"]["manifest"]["publications"]


def log_reads(mirror: Mirror) -> list:
    return [r for r in mirror.simulator.requests if r[2].get("queryname") == "ATL_PUB"]


class PublicationTests(TestCase):
    """
    harbour follows the simulator's publications log.
    """

    timeout = 120

    async def test_unpublishedDayWaitsForPublication(self) -> None:
        """
        Today is published a few seconds after start: until then no
        request is spent on it; once the log shows it, it is fetched within
        one C{publications_interval}.
        """
        from twisted.internet import reactor

        today = pacific_today(reactor)
        published = reactor.seconds() + 6
        mirror = Mirror(self, days=((today - 2 * ONE_DAY).isoformat(), today.isoformat()),
                        manifest=f"publications_interval = {INTERVAL}\n",
                        last_day=None, publish_offset=published - day_start(today))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        status = await mirror.until(lambda s: s["services"]["work"]["tasks"].get("lmp", {}).get("downloaded") == 2)
        self.assertEqual(publications(status)["mode"], "following")
        self.assertEqual(publications(status)["published"], {"lmp": (today - ONE_DAY).isoformat()})
        self.assertLess(reactor.seconds(), published, "the test machine was too slow to see the gap")
        self.assertEqual(requests_for(mirror, today), [])

        await mirror.until_finished(3)
        fetched = requests_for(mirror, today)
        self.assertEqual([r[3] for r in fetched], ["data"], "fetched once, never answered 'no data'")
        self.assertGreaterEqual(fetched[0][0], published)
        self.assertLessEqual(fetched[0][0] - published, INTERVAL + 1.0)

    async def test_revisedWindowFetchedAgain(self) -> None:
        """
        A window revised after it was downloaded is downloaded again: the
        new file holds the simulator's revised bytes and the old one is kept
        as C{.rev0.zip}; C{Status} counts the revision.  After a restart the
        log is read on from where it was, not from the start.
        """
        from twisted.internet import reactor

        today = pacific_today(reactor)
        first, last = today - 3 * ONE_DAY, today - ONE_DAY
        mirror = Mirror(self, days=(first.isoformat(), last.isoformat()),
                        manifest=f"publications_interval = {INTERVAL}\n", last_day=None)
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until_finished(3)
        revised_day = today - 2 * ONE_DAY
        path = mirror.directory / "data" / "reports" / "lmp" / f"{revised_day}.zip"
        old = path.read_bytes()

        mirror.simulator.revise("PRC_LMP", revised_day)
        status = await mirror.until(
            lambda s: publications(s)["revisions"] == {"lmp": 1}
            and s["services"]["work"]["tasks"] == {"lmp": {"downloaded": 3}})
        self.assertEqual((path.with_name(f"{revised_day}.rev0.zip")).read_bytes(), old)
        page = json.loads((await mirror.client.callRemote(commands.Reports, offset=0, limit=10))["urls"])
        url = next(entry["url"] for entry in page if entry["filename"] == f"lmp/{revised_day}.zip")
        answer = await treq.content(await treq.get(url, persistent=False))
        self.assertNotEqual(answer, old)
        self.assertEqual(path.read_bytes(), answer)
        self.assertEqual(len([p for p in mirror.files() if p.name.endswith(".zip")]), 4)
        self.assertEqual(len(requests_for(mirror, revised_day)), 3, "fetched, re-fetched, and compared")

        read_through = publications(status)["read_through"]
        reads = len(log_reads(mirror))
        await mirror.stop()
        await mirror.start()
        await mirror.until(lambda s: len(log_reads(mirror)) > reads)
        restarted = parse_gmt(log_reads(mirror)[reads][2]["startdatetime"])
        through = datetime.datetime.fromisoformat(read_through.replace("Z", "+00:00"))
        self.assertLessEqual(through - restarted, datetime.timedelta(hours=1, minutes=1))

    async def test_brokenLogFallsBack(self) -> None:
        """
        A source whose publications log answers with an error is mirrored
        by plain date ranges, and C{Status} and the log say why.
        """
        from twisted.internet import reactor

        today = pacific_today(reactor)
        mirror = Mirror(self, days=((today - ONE_DAY).isoformat(), today.isoformat()),
                        manifest=f"publications_interval = {INTERVAL}\n", last_day=None, broken_log=True)
        mirror.write("reports.toml", LMP)
        await mirror.start()
        status = await mirror.until(lambda s: publications(s)["mode"] == "date ranges")
        self.assertIn("1005", publications(status)["error"])
        tasks = await mirror.until_finished(2)
        self.assertEqual(tasks, {"lmp": {"downloaded": 2}})
        await mirror.daemon.wait_for("using plain date ranges")
