"""
The status page in a real browser: headless Chromium driven through
chromedriver's W3C WebDriver HTTP API.

Skipped, saying why, where Debian's C{chromium} and C{chromium-driver} are
not installed (C{.ci/run} installs them when it can).
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import treq
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.server import Site

from harbour.amp import commands
from harbour.bus import Bus
from harbour.oasis.requests import ReportURL
from harbour.test.helpers import short_directory
from harbour.web.metrics import registry
from harbour.web.monitor import Monitor
from harbour.web.resources import site_root
from harbour.web.test.helpers import FakeDaemon, day_requests, healthy_services
from tests.processes import PATIENCE, spawn
from tests.test_http import HttpMirror
from tests.test_mirror import LMP, LOAD

#: What draws the page: the window of a laptop.
WINDOW = "1280,1000"


def browser() -> tuple[str, str]:
    """
    @return: The paths of chromium and chromedriver.
    @raise SkipTest: if either is missing.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise SkipTest(
            "no headless browser: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver) to run the status page in one"
        )
    return chromium, driver


def free_port() -> int:
    """
    @return: A loopback port free a moment ago, for chromedriver (which
        cannot be told to choose one and say which).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class WebDriver:
    """
    A session of chromedriver's W3C WebDriver API, over treq.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = ""

    async def call(self, method: str, path: str, body: object = None) -> Any:
        """
        @return: The C{value} of a WebDriver command's answer.
        @raise AssertionError: if the command failed.
        """
        response = await treq.request(
            method,
            f"{self.url}{path}",
            data=json.dumps(body if body is not None else {}).encode() if method == "POST" else None,
            headers={"Content-Type": "application/json"},
            persistent=False,
        )
        answer = json.loads(await treq.content(response))
        assert response.code == 200, f"{method} {path}: {answer}"
        return answer["value"]

    async def start(self, chromium: str) -> None:
        """
        Open a headless Chromium.
        """
        options = {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW}"],
        }
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        value = await self.call("POST", "/session", {"capabilities": capabilities})
        self.session = value["sessionId"]

    async def go(self, url: str) -> None:
        """
        Load C{url}.
        """
        await self.call("POST", f"/session/{self.session}/url", {"url": url})

    async def run(self, script: str, *args: object) -> Any:
        """
        @return: What C{script} (a function body) returns in the page.
        """
        return await self.call(
            "POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)}
        )

    async def screenshot(self, path: Path) -> None:
        """
        Save what the window shows as a PNG.
        """
        png = await self.call("GET", f"/session/{self.session}/screenshot")
        path.write_bytes(base64.b64decode(png))

    async def quit(self) -> None:
        """
        Close the browser.
        """
        if self.session:
            await self.call("DELETE", f"/session/{self.session}")


#: The page's facts, as the test reads them from the DOM.
READ_PAGE = """
var rows = document.querySelectorAll("#map .cells");
var result = {cells: {}, legend: [], counts: {}, colours: {}};
rows.forEach(function (row) {
  var report = row.getAttribute("data-report");
  result.cells[report] = row.children.length;
  result.colours[report] = Array.prototype.map.call(
    row.children, function (cell) { return getComputedStyle(cell).backgroundColor; });
});
document.querySelectorAll("#legend li").forEach(function (item) { result.legend.push(item.textContent); });
document.querySelectorAll("#reports tbody tr").forEach(function (tr) {
  result.counts[tr.getAttribute("data-report")] = Array.prototype.map.call(
    tr.querySelectorAll("td.n"), function (td) { return td.textContent; });
});
result.milliseconds = window.harbourMapMilliseconds;
return result;
"""


#: The map's cells by class (that is, by day state), as the page has them.
COUNT_CELLS = """
var found = {};
document.querySelectorAll("#map .cells i").forEach(function (cell) {
  found[cell.className] = (found[cell.className] || 0) + 1;
});
return found;
"""


class BrowserTests(TestCase):
    """
    The page as an operator's browser shows it.
    """

    timeout = 180

    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        chromium, driver = browser()
        port = free_port()
        # Chromium leaves a directory of its own in TMPDIR per session
        # (its singleton socket, so the path must be short): one of ours.
        scratch = short_directory(self)
        process = spawn(reactor, [driver, f"--port={port}"], Path.cwd(), env={"TMPDIR": str(scratch)})
        self.addCleanup(lambda: process.ended.called or (process.signal("TERM"), process.ended)[1])
        await process.wait_for("started successfully")
        self.driver = WebDriver(f"http://127.0.0.1:{port}")
        await self.driver.start(chromium)
        self.addCleanup(self.driver.quit)
        self.shots = Path(self.mktemp())
        self.shots.mkdir()

    async def until(self, script: str, what: str) -> Any:
        """
        Run C{script} in the page until it returns something true, failing
        after L{PATIENCE} seconds.
        """
        deadline = self.reactor.seconds() + PATIENCE
        while True:
            value = await self.driver.run(script)
            if value:
                return value
            if self.reactor.seconds() > deadline:
                self.fail(f"the page never showed {what}")
            await deferLater(self.reactor, 0.2, lambda: None)

    async def test_liveMap(self) -> None:
        """
        The page of a real daemon has one coverage cell per report and day,
        the legend and the counts; a cell turns from pending to downloaded
        when its task finishes, without reloading the page.
        """
        mirror = HttpMirror(self, days=("2025-01-01", "2025-01-06"))
        await mirror.start()
        await mirror.daemon.wait_for("control port listening")
        from harbour.amp.client import connect
        from harbour.amp.server import read_token
        from tests.processes import control_endpoint

        token = read_token(mirror.directory / "data" / "amp.token")
        mirror.client = await connect(self.reactor, control_endpoint(mirror.directory), token)
        await mirror.client.callRemote(commands.Pause, service="download")
        mirror.write("reports.toml", LMP + LOAD)
        await mirror.until(
            lambda s: sum(sum(c.values()) for c in s["services"]["work"]["tasks"].values()) == 12
        )
        await self.driver.go(mirror.url)
        await self.until(
            "var td = document.querySelector('#reports td.n'); return td !== null && td.textContent === '6';",
            "the pending counts",
        )
        page = await self.driver.run(READ_PAGE)
        self.assertEqual(page["cells"], {"lmp": 6, "load": 6})
        self.assertEqual(
            [item.strip() for item in page["legend"]],
            ["downloaded", "revised", "partly", "empty", "pending", "failed"],
        )
        self.assertEqual(page["counts"]["lmp"][:3], ["6", "0", "0"])
        pending = page["colours"]["lmp"][0]
        self.assertEqual(len(set(page["colours"]["lmp"])), 1, "every day pending, one colour")
        await self.driver.screenshot(self.shots / "pending.png")
        await mirror.client.callRemote(commands.Resume, service="download")
        await self.until(
            "var cells = document.querySelectorAll('#map .cells i');"
            "return Array.prototype.some.call(cells, function (cell) {"
            f"  return getComputedStyle(cell).backgroundColor !== {json.dumps(pending)}; }});",
            "a cell change colour",
        )
        await mirror.until_finished(12)
        await self.until(
            "return document.querySelectorAll('#map .cells i.cD').length === 12", "every day downloaded"
        )
        page = await self.driver.run(READ_PAGE)
        self.assertNotIn(pending, page["colours"]["lmp"])
        await self.driver.run(
            "var cell = document.querySelector('#map .cells i');"
            "cell.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
        )
        hover = await self.driver.run("return document.getElementById('hover').textContent;")
        self.assertEqual(hover, "lmp \u00b7 2025-01-01 \u00b7 downloaded \u2014 1 file")
        await self.driver.screenshot(self.shots / "downloaded.png")
        self.assertGreater((self.shots / "downloaded.png").stat().st_size, 10_000)

    async def serve(self, reports: int, days: int, names: list[str] | None = None) -> tuple[Monitor, str]:
        """
        Serve the page of a daemon with C{reports} reports of C{days} days
        each, most of them mirrored, as a year or more of running leaves
        them.

        @param names: The reports' names, if not made up.
        @return: The monitor, and the page's URL.
        """
        daemon = FakeDaemon(self.reactor)  # type: ignore[arg-type]
        monitor = Monitor(self.reactor, Bus(), daemon)
        first = datetime.date.today() - datetime.timedelta(days=days - 1)
        if names is None:
            names = [
                f"{kind}-{n:02d}" for n, kind in zip(range(reports), NAMES * (reports // len(NAMES) + 1))
            ]
        for name in names:
            daemon.asked += day_requests(name, first, days)
        daemon.services = healthy_services(
            work={"tasks": {name: {"pending": 3, "downloaded": days - 3} for name in names}},
            publications={"mode": "following", "last_read": "2025-06-15T12:00:00Z"},
            workers={"hub:4242": {"in_flight": [{}, {}], "concurrency": 3, "seen_seconds_ago": 0.4}},
        )
        monitor.startService()
        self.addCleanup(monitor.stopService)
        await until_loaded(self.reactor, monitor)
        paint(monitor, daemon.asked, days)
        monitor.bus.publish("work", {"max_attempts": 5}, retain=True)
        for name in names:
            monitor.bus.publish("task.done", {"report": name, "bytes": 250_000})
        monitor.rebuild()
        root = site_root(monitor, registry(lambda: monitor.current), None)
        port = self.reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return monitor, f"http://127.0.0.1:{port.getHost().port}/"

    async def test_largeMap(self) -> None:
        """
        A map of 100 reports × 1,200 days is drawn, one cell per report and
        day, each of its day's state; how long the drawing took is saved
        beside the screenshot.
        """
        monitor, url = await self.serve(100, 1200)
        await self.driver.go(url)
        # Once, on a loaded machine, the navigation was answered before the
        # page's script had drawn the map (no cells): wait for the drawing.
        await self.until("return window.harbourMapMilliseconds !== undefined;", "the map drawn")
        cells = await self.driver.run("return document.querySelectorAll('#map .cells i').length;")
        self.assertEqual(cells, 120_000)
        drawn = await self.driver.run(COUNT_CELLS)
        states = Counter("".join(row.states for row in monitor.coverage.rows()))
        self.assertEqual(drawn, {f"c{code}": n for code, n in states.items()})
        milliseconds = await self.driver.run("return window.harbourMapMilliseconds;")
        (self.shots / "large.txt").write_text(f"{milliseconds:.0f} ms to draw 120,000 cells\n")
        await self.driver.screenshot(self.shots / "large.png")

    async def test_headingFollowsRange(self) -> None:
        """
        When the days the map covers change (a new configuration, or a new
        trading day), a page left open redraws the map's heading with the
        new first and last days, as it redraws the cells, without being
        reloaded.
        """
        monitor, url = await self.serve(2, 10)
        await self.driver.go(url)
        heading = "return document.querySelector('#coverage h2').textContent;"
        today = datetime.date.today()
        first = today - datetime.timedelta(days=9)
        self.assertEqual(await self.driver.run(heading), f"Coverage by trading day, {first} to {today}")
        daemon = monitor.daemon
        assert isinstance(daemon, FakeDaemon)
        later = first + datetime.timedelta(days=5)
        daemon.asked = [
            request for report in monitor.coverage.reports() for request in day_requests(report, later, 12)
        ]
        await monitor.tick()
        last = later + datetime.timedelta(days=11)
        await self.until(
            f"return document.querySelectorAll('#map .cells i').length === 24 && "
            f"document.querySelector('#coverage h2').textContent === "
            f"{json.dumps(f'Coverage by trading day, {later} to {last}')};",
            "the new range in the heading",
        )

    async def test_namesOfObjectProperties(self) -> None:
        """
        Reports named as properties every JavaScript object has (valid
        report names) are drawn and updated as any other, and the page
        goes on following the daemon: its script kept its rows in a plain
        object, where C{constructor} was found before any row was drawn.
        """
        names = ["constructor", "__proto__", "toString", "hasOwnProperty", "lmp"]
        monitor, url = await self.serve(len(names), 5, names)
        await self.driver.go(url)
        await self.until(
            "return document.getElementById('updated').textContent.indexOf('live') === 0", "an update"
        )
        # Pairs, not an object: WebDriver would not return one keyed __proto__.
        drawn = await self.driver.run(
            "return Array.prototype.map.call(document.querySelectorAll('#map .cells'), function (row) {"
            "  return [row.getAttribute('data-report'), row.children.length]; });"
        )
        self.assertEqual(sorted(drawn), sorted([name, 5] for name in names))
        await self.driver.run(
            "var cell = document.querySelector('#map .cells[data-report=constructor] i');"
            "cell.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
        )
        hover = await self.driver.run("return document.getElementById('hover').textContent;")
        self.assertTrue(hover.startswith("constructor \u00b7 "), hover)

    async def test_showcase(self) -> None:
        """
        A page an operator keeps open: a dozen reports over eighteen months,
        one failing, one retrying; saved as C{showcase.png}.
        """
        monitor, url = await self.serve(12, 540)
        for n in range(4):
            monitor.bus.publish(
                "task.failed", {"report": "lmp-rtm-07", "filename": f"f{n}", "error": "HTTP 400"}
            )
        monitor.bus.publish("task.retried", {"report": "as-results-03", "error": "HTTP 503"})
        await self.driver.go(url)
        await self.until("return document.querySelector('.badge.failing') !== null", "the failing report")
        await self.driver.screenshot(self.shots / "showcase.png")
        self.assertGreater((self.shots / "showcase.png").stat().st_size, 10_000)


#: Report names, as a configuration might have them.
NAMES = ("lmp-dam", "lmp-rtm", "load-forecast", "as-results", "ren-forecast", "ghg-allowance")


def paint(monitor: Monitor, requests: list[ReportURL], days: int) -> None:
    """
    Give the days of C{requests} the states a long-running mirror has:
    the last few pending, a few empty, failed or revised, the rest
    downloaded.
    """
    for index, request in enumerate(requests):
        day = index % days
        report = index // days
        if day >= days - 3:
            continue
        if day % 173 == 17:
            topic, revision = "task.empty", 0
        elif report % 4 == 3 and day % 211 == 100:
            topic, revision = "task.failed", 0
        else:
            topic, revision = "task.done", 1 if day % 97 == 5 else 0
        monitor.coverage.apply(topic, {"filename": request.filename, "revision": revision})


async def until_loaded(reactor: Any, monitor: Monitor) -> None:
    """
    Wait until C{monitor} has laid out its map.
    """
    deadline = reactor.seconds() + PATIENCE
    while not monitor.coverage.reports():
        assert reactor.seconds() < deadline, "the map was never laid out"
        await deferLater(reactor, 0.1, lambda: None)
