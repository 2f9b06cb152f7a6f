"""
System tests of reports whose definition changes while harbour mirrors
them: a real C{twistd harbour} with its embedded redis-server follows
configuration saves (a report's parameters changed, a report disabled and
enabled again, a report removed, its range moved on by a day) while it
downloads from the OASIS simulator running in the test process.

Every wait is on what the daemon says (C{Status}, the manifest it pages
out) or on what the simulator recorded, each bounded; the simulator's
answers are deterministic per URL, so a file is checked against the answer
to the URL its task now has.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import attr
import treq
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol
from harbour.oasis.classify import DATA, classify
from harbour.services.files import is_bookkeeping, record_path
from harbour.testing.simulator import Faults
from tests.processes import WatchedProcess, control_endpoint, program, spawn
from tests.test_mirror import Mirror

#: Day-ahead prices for all APNodes, one trading day per request (the
#: catalogue's publication delay: -10h).
LMP = (
    '[[reports]]\nname = "lmp"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\nresultformat = "csv"\n'
    'params = {{ grp_type = "{group}" }}\nenabled = {enabled}\n'
)
#: Day-ahead load forecasts (catalogue delay -12h), one day per request
#: unless told otherwise.
LOAD = (
    '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "{window}"\n{extra}'
)

#: Seconds the simulator holds every answer: long enough that a
#: configuration saved mid-run meets downloads under way.
LATENCY = 0.4

#: Seconds the simulator holds every answer when a test makes two changes
#: while the same downloads are under way.
SLOW = 2.0


def lmp(group: str = "ALL_APNODES", enabled: bool = True) -> str:
    """
    @return: The C{lmp} report's definition.
    """
    return LMP.format(group=group, enabled="true" if enabled else "false")


def load(window: str = "1d", extra: str = "") -> str:
    """
    @return: The C{load} report's definition.
    """
    return LOAD.format(window=window, extra=extra)


def client_of(mirror: Mirror) -> HarbourClientProtocol:
    """
    @return: The mirror's control connection (it is started).
    """
    return cast(HarbourClientProtocol, mirror.client)


def daemon_of(mirror: Mirror) -> WatchedProcess:
    """
    @return: The mirror's daemon (it is started).
    """
    return cast(WatchedProcess, mirror.daemon)


def tasks(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    """
    @return: The per-report task counts of a C{Status} document.
    """
    counts: dict[str, dict[str, int]] = status["services"]["work"]["tasks"]
    return counts


def count(status: dict[str, Any], report: str, state: str) -> int:
    """
    @return: How many tasks of C{report} are in C{state}.
    """
    return tasks(status).get(report, {}).get(state, 0)


def in_flight(status: dict[str, Any], report: str) -> list[dict[str, Any]]:
    """
    @return: The downloads of C{report} under way.
    """
    return [f for f in status["services"]["download"]["in_flight"] if f["report"] == report]


async def until_manifest(
    mirror: Mirror, predicate: Callable[[dict[str, str]], bool], timeout: float = 30.0
) -> dict[str, str]:
    """
    Read the daemon's manifest until C{predicate(manifest)} holds (failing
    after C{timeout} seconds); return that manifest.
    """
    deadline = mirror.reactor.seconds() + timeout
    while True:
        urls = await manifest(mirror)
        if predicate(urls):
            return urls
        if mirror.reactor.seconds() > deadline:
            raise AssertionError(f"manifest not reached in {timeout} s: {json.dumps(urls)}")
        await deferLater(mirror.reactor, 0.05, lambda: None)


async def manifest(mirror: Mirror) -> dict[str, str]:
    """
    @return: The daemon's manifest as it stands: file name -> URL.
    """
    urls: dict[str, str] = {}
    while True:
        answer = await client_of(mirror).callRemote(commands.Reports, offset=len(urls), limit=500)
        page = json.loads(answer["urls"])
        urls.update({entry["filename"]: entry["url"] for entry in page})
        if not page or len(urls) >= answer["total"]:
            return urls


def query(url: str) -> dict[str, str]:
    """
    @return: A URL's query arguments, as the simulator records them.
    """
    return dict(parse_qsl(urlsplit(url).query))


def requests_for(mirror: Mirror, url: str) -> list[list[Any]]:
    """
    @return: The simulator's requests for exactly C{url}.
    """
    wanted = (urlsplit(url).path, query(url))
    return [r for r in mirror.simulator.requests if (r[1], r[2]) == wanted]


def report_requests(mirror: Mirror, queryname: str) -> int:
    """
    @return: How many requests the simulator had for report C{queryname}.
    """
    return len([r for r in mirror.simulator.requests if r[2].get("queryname") == queryname])


def root(mirror: Mirror) -> Path:
    """
    @return: The download directory.
    """
    return mirror.directory / "data" / "reports"


def recorded(path: Path) -> dict[str, str]:
    """
    @return: The record beside a downloaded file (C{{}} if it has none).
    """
    try:
        found: dict[str, str] = json.loads(record_path(path).read_text())
    except FileNotFoundError:
        return {}
    return found


def fetched_for(mirror: Mirror, urls: dict[str, str]) -> dict[str, bytes]:
    """
    @return: The files on disk whose record names the URL C{urls} gives
        their name: file name -> bytes.
    """
    found = {}
    for name, url in urls.items():
        path = root(mirror) / name
        if path.exists() and recorded(path).get("url") == url:
            found[name] = path.read_bytes()
    return found


def all_recorded(mirror: Mirror, urls: dict[str, str]) -> bool:
    """
    @return: Whether every file of C{urls} is on disk with a record naming
        its URL there.
    """
    return len(fetched_for(mirror, urls)) == len(urls)


def leftovers(mirror: Mirror) -> list[str]:
    """
    @return: Hidden files that are not harbour's bookkeeping (records, the
        storage id): temporary files left over.
    """
    return sorted(
        str(p.relative_to(root(mirror)))
        for p in root(mirror).rglob(".*")
        if p.is_file() and not is_bookkeeping(p)
    )


async def answer(url: str) -> bytes:
    """
    @return: The simulator's answer to C{url} (asked only once the test
        has stopped counting requests: this is one too).
    """
    body: bytes = await treq.content(await treq.get(url, persistent=False))
    return body


@attr.s(auto_attribs=True, frozen=True)
class Disabled:
    """
    What L{LifecycleTests.disable_mid_run} saw.

    @ivar urls: C{lmp}'s manifest (file name -> URL) before it was disabled.
    @ivar landed: The C{Status} document once the change landed.
    @ivar requested: The simulator's requests per C{queryname} then.
    @ivar status: The last C{Status} document: C{load} finished, nothing of
        C{lmp} under way.
    """

    urls: dict[str, str]
    landed: dict[str, Any]
    requested: dict[str, int]
    status: dict[str, Any]


class LifecycleTests(TestCase):
    """
    harbour follows a report's definition as it changes.
    """

    timeout = 90

    async def check_files(self, mirror: Mirror, urls: dict[str, str]) -> None:
        """
        Each file of C{urls} is whole data, the simulator's answer to its
        URL there, with a record naming that URL and the file's hash; no
        temporary file is left.
        """
        mirror.simulator.faults = Faults()
        for name, url in sorted(urls.items()):
            path = root(mirror) / name
            self.assertEqual(classify(path).kind, DATA, name)
            body = path.read_bytes()
            self.assertEqual(body, await answer(url), name)
            self.assertEqual(recorded(path), {"url": url, "sha256": hashlib.sha256(body).hexdigest()}, name)
        self.assertEqual(leftovers(mirror), [])

    async def test_paramsChangedMidRun(self) -> None:
        """
        A report whose C{params} change while its windows are being
        downloaded ends with every file holding the simulator's answer to
        the new URL, its record naming that URL; every file fetched for the
        old definition (those done before the save, and those under way at
        it) is kept as C{.rev0.zip} with the old answer, and nothing else
        is kept.
        """
        mirror = Mirror(self, Faults(latency=LATENCY), days=("2025-01-01", "2025-01-12"))
        mirror.write("reports.toml", lmp("ALL_APNODES"))
        await mirror.start()
        await mirror.until(lambda s: count(s, "lmp", "downloaded") >= 3 and in_flight(s, "lmp"))
        old = await manifest(mirror)
        self.assertEqual(len(old), 12)
        before = fetched_for(mirror, old)

        mirror.write("reports.toml", lmp("ALL"))
        new = await until_manifest(mirror, lambda m: all(query(u)["grp_type"] == "ALL" for u in m.values()))
        self.assertEqual(sorted(new), sorted(old), "the same file names")
        status = await mirror.until(
            lambda s: tasks(s) == {"lmp": {"downloaded": 12}} and all_recorded(mirror, new)
        )
        self.assertTrue(before, "nothing was downloaded before the save")
        self.assertLess(len(before), 12, "everything was downloaded before the save")

        kept = {
            str(p.relative_to(root(mirror))): p.read_bytes()
            for p in root(mirror).rglob("*.rev*.zip")
            if not p.name.startswith(".")
        }
        self.assertTrue(all(name.endswith(".rev0.zip") for name in kept), sorted(kept))
        for name, body in before.items():
            self.assertEqual(kept.get(name.replace(".zip", ".rev0.zip")), body, f"{name} not kept")
        self.assertEqual(status["services"]["work"]["tasks"], {"lmp": {"downloaded": 12}})
        await self.check_files(mirror, new)
        for name, body in kept.items():
            original = name.replace(".rev0.zip", ".zip")
            self.assertEqual(body, await answer(old[original]), name)
            self.assertNotEqual(body, (root(mirror) / original).read_bytes(), name)

    async def disable_mid_run(self, mirror: Mirror) -> Disabled:
        """
        Mirror C{lmp} and C{load} over twelve days, and disable C{lmp} while
        some of its windows are downloaded and others under way; wait until
        the change has landed (some of its tasks retired), then until the
        other report has finished and nothing of C{lmp} is under way.
        """
        mirror.write("reports.toml", lmp() + load())
        await mirror.start()
        await mirror.until(lambda s: count(s, "lmp", "downloaded") >= 2 and in_flight(s, "lmp"))
        urls = {n: u for n, u in (await manifest(mirror)).items() if n.startswith("lmp/")}
        self.assertEqual(len(urls), 12)
        mirror.write("reports.toml", lmp(enabled=False) + load())
        landed = await mirror.until(lambda s: count(s, "lmp", "retired") > 0)
        requested = {q: report_requests(mirror, q) for q in ("PRC_LMP", "SLD_FCST")}
        status = await mirror.until(
            lambda s: count(s, "load", "downloaded") == 12 and count(s, "lmp", "downloading") == 0
        )
        return Disabled(urls, landed, requested, status)

    async def test_disabledMidRunGetsNoRequest(self) -> None:
        """
        A report disabled while it is being downloaded gets no new request
        once the change has landed (its downloads under way at that moment
        may finish, but one that fails is not tried again), while the other
        report goes on to finish; all its tasks end C{retired}, and the
        manifest no longer has it.

        Most answers are cut short (the same ones every run: a fault is
        decided by URL and attempt), so that downloads under way at the
        change fail and would be retried.
        """
        mirror = Mirror(self, Faults(latency=LATENCY, truncate_rate=0.6), days=("2025-01-01", "2025-01-12"))
        disabled = await self.disable_mid_run(mirror)
        # Claimed at that moment: their requests may still reach the simulator.
        under_way = count(disabled.landed, "lmp", "downloading")
        self.assertGreater(
            report_requests(mirror, "SLD_FCST"), disabled.requested["SLD_FCST"], "no work went on meanwhile"
        )
        self.assertEqual(disabled.status["services"]["manifest"]["reports"], 1)
        self.assertEqual({name.split("/")[0] for name in await manifest(mirror)}, {"load"})
        beyond = report_requests(mirror, "PRC_LMP") - disabled.requested["PRC_LMP"] - under_way
        self.assertEqual(
            {"requests once retired": max(0, beyond), "tasks": tasks(disabled.status)["lmp"]},
            {"requests once retired": 0, "tasks": {"retired": 12}},
        )

    async def test_enabledAgainFinishes(self) -> None:
        """
        A report disabled mid-run and enabled again finishes: every task
        downloaded, the files already fetched for the same URLs taken up
        without a request, only the others fetched; every file is the
        simulator's answer to its URL.
        """
        mirror = Mirror(self, Faults(latency=LATENCY), days=("2025-01-01", "2025-01-12"))
        lmp_urls = (await self.disable_mid_run(mirror)).urls
        already = fetched_for(mirror, lmp_urls)
        self.assertTrue(already)
        self.assertLess(len(already), 12)
        before = report_requests(mirror, "PRC_LMP")

        mirror.write("reports.toml", lmp() + load())
        await mirror.until(lambda s: tasks(s) == {"lmp": {"downloaded": 12}, "load": {"downloaded": 12}})
        urls = await manifest(mirror)
        self.assertEqual({n: u for n, u in urls.items() if n.startswith("lmp/")}, lmp_urls)
        refetched = sorted(name for name in already if len(requests_for(mirror, lmp_urls[name])) > 1)
        self.assertEqual(refetched, [], "files already fetched for the same URL fetched again")
        self.assertEqual(report_requests(mirror, "PRC_LMP") - before, 12 - len(already))
        await self.check_files(mirror, urls)

    async def test_enabledAgainMidDownload(self) -> None:
        """
        A report disabled and enabled again while its first downloads are
        still under way ends with every task downloaded, each URL asked
        for once: the downloads that were under way through both changes
        count, and are not left retired.
        """
        mirror = Mirror(self, Faults(latency=SLOW), days=("2025-01-01", "2025-01-06"))
        mirror.write("reports.toml", lmp())
        await mirror.start()
        await mirror.until(lambda s: len(in_flight(s, "lmp")) == 3)
        urls = await manifest(mirror)
        mirror.write("reports.toml", lmp(enabled=False))
        landed = await mirror.until(lambda s: count(s, "lmp", "retired") > 0)
        self.assertEqual(count(landed, "lmp", "downloading"), 3, "the downloads ended before the change")

        mirror.write("reports.toml", lmp())
        await until_manifest(mirror, lambda m: m == urls)
        again = await mirror.until(lambda s: count(s, "lmp", "retired") == 0)
        self.assertEqual(
            tasks(again),
            {"lmp": {"downloading": 3, "pending": 3}},
            "the downloads ended before the second change",
        )
        status = await mirror.until(
            lambda s: not {"pending", "downloading"} & set(tasks(s).get("lmp", {"pending": 1}))
        )
        self.assertEqual(tasks(status), {"lmp": {"downloaded": 6}})
        self.assertEqual(
            {name: len(requests_for(mirror, url)) for name, url in urls.items()}, dict.fromkeys(urls, 1)
        )
        await self.check_files(mirror, urls)

    async def test_removedReportLeavesStatus(self) -> None:
        """
        A report removed from the configuration leaves C{Status} and
        C{harbourctl status --json}; its tasks are kept, retired, for the
        retention; the other report's counts stay as they were.
        """
        mirror = Mirror(self, days=("2025-01-01", "2025-01-03"))
        mirror.write("reports.toml", lmp() + load())
        await mirror.start()
        await mirror.until_finished(6)

        mirror.write("reports.toml", load())
        status = await mirror.until(lambda s: "lmp" not in tasks(s))
        self.assertEqual(tasks(status), {"load": {"downloaded": 3}})
        listed = await client_of(mirror).callRemote(
            commands.ListTasks, state="retired", report="lmp", offset=0, limit=10
        )
        self.assertEqual(listed["total"], 3)
        ctl = spawn(
            mirror.reactor,
            [
                program("harbourctl"),
                "--connect",
                control_endpoint(mirror.directory),
                "--token-file",
                str(mirror.directory / "data" / "amp.token"),
                "status",
                "--json",
            ],
            mirror.directory,
        )
        self.assertEqual(await ctl.ended, 0, ctl.output())
        document = json.loads(ctl.output())
        self.assertEqual(document["services"]["work"]["tasks"], {"load": {"downloaded": 3}})
        self.assertNotIn("Traceback", daemon_of(mirror).output())

    async def test_trailingWindowGrows(self) -> None:
        """
        The newest seven-day window of a report whose range ends inside it
        grows under the same file name when the range moves on a day (as
        it does when a trading day passes): it is fetched again for its
        longer URL and its file replaced, no revision kept; the full window
        before it is not asked for again.
        """
        mirror = Mirror(self, days=("2025-01-06", "2025-01-31"))
        mirror.write("reports.toml", load("7d", "start = 2025-01-06\nend = 2025-01-15\n"))
        await mirror.start()
        await mirror.until_finished(2)
        first = await manifest(mirror)
        self.assertEqual(sorted(first), ["load/2025-01-06_2025-01-12.zip", "load/2025-01-13_2025-01-19.zip"])
        newest = "load/2025-01-13_2025-01-19.zip"
        old_body = (root(mirror) / newest).read_bytes()

        mirror.write("reports.toml", load("7d", "start = 2025-01-06\nend = 2025-01-16\n"))
        second = await until_manifest(mirror, lambda m: m[newest] != first[newest])
        self.assertEqual(sorted(second), sorted(first), "the same file names")
        self.assertEqual(second["load/2025-01-06_2025-01-12.zip"], first["load/2025-01-06_2025-01-12.zip"])
        self.assertEqual(query(second[newest])["enddatetime"], "20250117T08:00-0000")
        status = await mirror.until(
            lambda s: tasks(s) == {"load": {"downloaded": 2}} and all_recorded(mirror, second)
        )
        self.assertEqual(status["services"]["work"]["revisions"], {})
        self.assertEqual(len(requests_for(mirror, first["load/2025-01-06_2025-01-12.zip"])), 1)
        self.assertEqual(len(requests_for(mirror, first[newest])), 1)
        self.assertEqual(len(requests_for(mirror, second[newest])), 1)
        self.assertNotEqual((root(mirror) / newest).read_bytes(), old_body)
        self.assertEqual(list(root(mirror).rglob("*.rev*")), [])
        await self.check_files(mirror, second)
