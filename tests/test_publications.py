"""
System tests of following OASIS publications: a real C{twistd harbour}
reads the simulator's publications log, requests only published days, and
fetches revised ones again.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, cast

import treq
from twisted.internet.interfaces import IReactorTime
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol
from harbour.testing.simulator import PACIFIC, PUBLICATIONS_LOG, parse_gmt
from tests.processes import WatchedProcess
from tests.test_mirror import LMP, Mirror

ONE_DAY = datetime.timedelta(days=1)
INTERVAL = 2.0


def pacific_today(reactor: IReactorTime) -> datetime.date:
    """
    @return: The trading day (Pacific) C{reactor}'s clock is in.
    """
    return datetime.datetime.fromtimestamp(reactor.seconds(), PACIFIC).date()


def day_start(day: datetime.date) -> float:
    """
    @return: The POSIX time trading day C{day} starts (Pacific).
    """
    return datetime.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


def numbered(mirror: Mirror) -> list[tuple[int, list[Any]]]:
    """
    @return: Every request the simulator answered, each with its place in
        the order they came: (time, path, query, outcome) after the place.
    """
    return list(enumerate(mirror.simulator.requests))


def numbered_for(mirror: Mirror, day: datetime.date) -> list[tuple[int, list[Any]]]:
    """
    @return: The simulator's numbered data requests whose window starts on
        C{day}.
    """
    start = day_start(day)
    return [
        (place, record)
        for place, record in numbered(mirror)
        if record[2].get("queryname") != PUBLICATIONS_LOG
        and "startdatetime" in record[2]
        and parse_gmt(record[2]["startdatetime"]).timestamp() == start
    ]


def requests_for(mirror: Mirror, day: datetime.date) -> list[list[Any]]:
    """
    @return: The simulator's data requests whose window starts on C{day}.
    """
    return [record for place, record in numbered_for(mirror, day)]


def numbered_log_reads(mirror: Mirror) -> list[tuple[int, list[Any]]]:
    """
    @return: The simulator's numbered requests for its publications log.
    """
    return [
        (place, record)
        for place, record in numbered(mirror)
        if record[2].get("queryname") == PUBLICATIONS_LOG
    ]


def log_reads(mirror: Mirror) -> list[list[Any]]:
    """
    @return: The simulator's requests for its publications log.
    """
    return [record for place, record in numbered_log_reads(mirror)]


def publications(status: dict[str, Any]) -> dict[str, Any]:
    """
    @return: The part of a C{Status} document about following the log.
    """
    part: dict[str, Any] = status["services"]["publications"]
    return part


def downloaded(status: dict[str, Any]) -> int:
    """
    @return: How many C{lmp} tasks a C{Status} document counts downloaded.
    """
    count: int = status["services"]["work"]["tasks"].get("lmp", {}).get("downloaded", 0)
    return count


class PublicationTests(TestCase):
    """
    harbour follows the simulator's publications log.
    """

    timeout = 120

    async def test_unpublishedDayWaitsForPublication(self) -> None:
        """
        While the log does not show today published, harbour spends no
        request on it, however often it reads the log; once the log shows
        it, harbour fetches it once, after the first read that showed it
        and before the read after next.

        The test, not the wall clock, publishes today: the simulator has
        data and log entries up to yesterday (its C{last_day}) until the
        test moves C{last_day} to today.  Today's entry carries the time
        the test started, which every read from then on covers (each read
        goes back an hour), so the first read after the move is the first
        to show it.  What is asserted is the order of the simulator's
        requests, never their times.
        """
        from twisted.internet import reactor

        started = reactor.seconds()
        today = pacific_today(reactor)
        yesterday = today - ONE_DAY
        mirror = Mirror(
            self,
            days=((today - 2 * ONE_DAY).isoformat(), today.isoformat()),
            manifest=f"publications_interval = {INTERVAL}\n",
            last_day=yesterday,
            publish_offset=started - day_start(today),
        )
        mirror.write("reports.toml", LMP)
        await mirror.start()

        def quiet_reads() -> int:
            # Reads of the log since harbour last asked for data.
            data = [place for place, record in numbered(mirror) if record[2].get("queryname") == "PRC_LMP"]
            last = max(data, default=-1)
            return len([place for place, record in numbered_log_reads(mirror) if place > last])

        # Yesterday and the day before, then two more reads of the log in
        # which harbour could have asked for today.
        status = await mirror.until(lambda s: downloaded(s) == 2 and quiet_reads() >= 2)
        self.assertEqual(publications(status)["mode"], "following")
        self.assertEqual(publications(status)["published"], {"lmp": yesterday.isoformat()})
        self.assertEqual(requests_for(mirror, today), [], "requested before it was published")

        moved = len(mirror.simulator.requests)
        mirror.simulator.last_day = today
        status = await mirror.until(lambda s: downloaded(s) == 3)
        self.assertEqual(status["services"]["work"]["tasks"], {"lmp": {"downloaded": 3}})
        self.assertEqual(publications(status)["published"], {"lmp": today.isoformat()})

        reads = [place for place, record in numbered_log_reads(mirror) if place >= moved]
        for place in reads:
            query = mirror.simulator.requests[place][2]
            start, end = parse_gmt(query["startdatetime"]), parse_gmt(query["enddatetime"])
            self.assertTrue(start.timestamp() <= started < end.timestamp(), f"read {place} misses today")
        fetched = numbered_for(mirror, today)
        self.assertEqual([record[3] for place, record in fetched], ["data"], "fetched once, never 'no data'")
        [(request, ignored)] = fetched
        self.assertGreater(request, reads[0], "requested before the log showed it")
        self.assertLessEqual(
            len([place for place in reads if reads[0] < place < request]),
            1,
            "not requested within a read of the log showing it",
        )

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
        mirror = Mirror(
            self,
            days=(first.isoformat(), last.isoformat()),
            manifest=f"publications_interval = {INTERVAL}\n",
            last_day=None,
        )
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until_finished(3)
        revised_day = today - 2 * ONE_DAY
        path = mirror.directory / "data" / "reports" / "lmp" / f"{revised_day}.zip"
        old = path.read_bytes()

        mirror.simulator.revise("PRC_LMP", revised_day)
        status = await mirror.until(
            lambda s: (
                s["services"]["work"]["revisions"] == {"lmp": 1}
                and s["services"]["work"]["tasks"] == {"lmp": {"downloaded": 3}}
            )
        )
        self.assertEqual((path.with_name(f"{revised_day}.rev0.zip")).read_bytes(), old)
        client = cast(HarbourClientProtocol, mirror.client)
        page = json.loads((await client.callRemote(commands.Reports, offset=0, limit=10))["urls"])
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
        mirror = Mirror(
            self,
            days=((today - ONE_DAY).isoformat(), today.isoformat()),
            manifest=f"publications_interval = {INTERVAL}\n",
            last_day=None,
            broken_log=True,
        )
        mirror.write("reports.toml", LMP)
        await mirror.start()
        status = await mirror.until(lambda s: publications(s)["mode"] == "date ranges")
        self.assertIn("1005", publications(status)["error"])
        tasks = await mirror.until_finished(2)
        self.assertEqual(tasks, {"lmp": {"downloaded": 2}})
        await cast(WatchedProcess, mirror.daemon).wait_for("using plain date ranges")
