"""
Tests of L{harbour.web.resources}, through L{treq.testing.StubTreq}: the
health checks, the metrics, the page, its updates and its token.
"""

from __future__ import annotations

import datetime
import gzip
import json
import re
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Site

from harbour import __version__
from harbour.services.workers import WorkersService
from harbour.test.helpers import capture_log
from harbour.web import resources
from harbour.web.metrics import registry
from harbour.web.monitor import INTERVAL
from harbour.web.resources import COOKIE, session, site_root
from harbour.web.service import DEFAULT_HTTP, HttpService
from harbour.web.test.helpers import FakeDaemon, day_requests, healthy_services, started_monitor, stepwise

TOKEN = "s3cret-token"


class Fixture:
    """
    A started monitor of a fake daemon with two reports, and a stub client
    of the site.
    """

    def __init__(self, testcase: SynchronousTestCase, token: str | None = None, **options: Any) -> None:
        """
        @param options: The monitor's keyword arguments.
        """
        self.clock = Clock()
        self.clock.advance(1_750_000_000)
        self.daemon = FakeDaemon(self.clock)
        self.daemon.services = healthy_services(
            work={"tasks": {"lmp": {"pending": 3}, "load": {"downloaded": 2}}},
            workers={"host:1": {"in_flight": [], "concurrency": 2, "seen_seconds_ago": 1.5}},
        )
        # Days up to today's, so that no report is behind.
        self.daemon.asked = day_requests("lmp", datetime.date(2025, 6, 13), 3) + day_requests(
            "load", datetime.date(2025, 6, 14), 2
        )
        self.monitor, self.bus = started_monitor(self.clock, self.daemon, **options)
        testcase.addCleanup(self.monitor.stopService)
        root = site_root(self.monitor, registry(lambda: self.monitor.current), token)
        # Any: StubTreq copies HTTPClient's methods onto itself at run time.
        self.client: Any = StubTreq(root)

    def get(self, path: str, **kwargs: Any) -> tuple[int, bytes, Any]:
        """
        @return: The code, body and headers of a GET of C{path}.
        """
        return self.request("GET", path, **kwargs)

    def request(
        self, method: str, path: str, scheme: str = "http", host: str = "localhost", **kwargs: Any
    ) -> tuple[int, bytes, Any]:
        """
        @param scheme: C{https} to make it over TLS.
        @param host: The host asked for, as the C{Host} header gives it.
        @return: The code, body and headers of a request.
        """
        d = self.client.request(method, f"{scheme}://{host}{path}", allow_redirects=False, **kwargs)
        self.client.flush()
        responses: list[Any] = []
        d.addCallback(responses.append)
        [response] = responses
        bodies: list[bytes] = []
        self.client.content(response).addCallback(bodies.append)
        self.client.flush()
        return response.code, bodies[0], response.headers


class OpenResourceTests(SynchronousTestCase):
    """
    The resources that never need a token.
    """

    def setUp(self) -> None:
        self.fixture = Fixture(self, TOKEN)

    def test_healthz(self) -> None:
        """
        C{/healthz} answers 200.
        """
        self.assertEqual(self.fixture.get("/healthz")[:2], (200, b"ok\n"))

    def test_readyz(self) -> None:
        """
        C{/readyz} is 503 with the reason until the configuration is
        loaded, then 200; 503 again while Redis is away.
        """
        self.assertEqual(self.fixture.get("/readyz")[:2], (503, b"configuration not loaded\n"))
        self.fixture.bus.publish("work", {}, retain=True)
        self.fixture.clock.advance(0)
        self.assertEqual(self.fixture.get("/readyz")[:2], (200, b"ready\n"))
        self.fixture.bus.publish("store.disconnected", {})
        self.fixture.clock.advance(0)
        self.assertEqual(self.fixture.get("/readyz")[:2], (503, b"Redis is not reachable\n"))

    def test_favicon(self) -> None:
        """
        C{/favicon.ico}, which browsers ask for whatever the page says,
        answers 204 with no icon instead of 404 (an error in the browser's
        console), to any host and without the token: it shows nothing.  As
        a 204 must, the answer has no C{Content-Length} (Twisted's client
        hides that header, so the answer is read as it was sent).
        """
        site = Site(site_root(self.fixture.monitor, registry(lambda: self.fixture.monitor.current), TOKEN))
        for host in (b"localhost", b"attacker.example"):
            channel = site.buildProtocol(IPv4Address("TCP", "10.0.0.8", 40000))
            assert channel is not None
            transport = StringTransport()
            channel.makeConnection(transport)
            self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
            channel.dataReceived(b"GET /favicon.ico HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            head, ignored, body = transport.value().partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            self.assertEqual((lines[0], body), (b"http/1.1 204 no content", b""), host)
            self.assertIn(b"cache-control: max-age=86400", lines)
            self.assertEqual([line for line in lines if line.startswith(b"content-length")], [])

    def test_metrics(self) -> None:
        """
        C{/metrics} is Prometheus text, open even where the page needs the
        token.
        """
        code, body, headers = self.fixture.get("/metrics")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), [CONTENT_TYPE_LATEST])
        names = {family.name for family in text_string_to_metric_families(body.decode())}
        self.assertIn("harbour_tasks", names)
        self.assertIn("harbour_requests", names)


class PageTests(SynchronousTestCase):
    """
    The page on a loopback listener: no token needed.
    """

    def setUp(self) -> None:
        self.fixture = Fixture(self)

    def test_page(self) -> None:
        """
        The page shows each report's health and counts, the legend, the
        map's rows and the workers, and loads only its own assets.
        """
        code, body, headers = self.fixture.get("/")
        self.assertEqual(code, 200)
        html = body.decode()
        self.assertIn('data-report="lmp"', html)
        self.assertIn('<span class="badge ok">ok</span>', html)
        for name in ("downloaded", "revised", "partly", "empty", "pending", "failed"):
            self.assertIn(f"</i>{name}</li>", html)
        self.assertIn("host:1", html)
        loaded = re.findall(r'<(?:script|link|img|iframe|object|embed)\b[^>]*?\b(?:src|href)="([^"]*)"', html)
        self.assertEqual(sorted(loaded), ["assets/page.css", "assets/page.js"])
        for asset in ("/assets/page.js", "/assets/page.css"):
            self.assertEqual(self.fixture.get(asset)[0], 200)

    def test_live(self) -> None:
        """
        C{/live} gives every row after a new layout, then only the rows
        changed since the version it gave.
        """
        code, body, ignored = self.fixture.get("/live?since=0")
        answer = json.loads(body)
        self.assertEqual((code, answer["reset"]), (200, True))
        self.assertEqual([row["states"] for row in answer["rows"]], ["WWW", "WW"])
        self.assertEqual(sorted(answer["parts"]), ["details", "map-heading", "reports", "summary"])
        self.assertIn("HARBOUR", answer["parts"]["summary"])
        self.assertIn('data-report="lmp"', answer["parts"]["reports"])
        version = answer["version"]
        again = json.loads(self.fixture.get(f"/live?since={version}")[1])
        self.assertEqual((again["reset"], again["rows"]), (False, []))
        filename = self.fixture.daemon.asked[0].filename
        self.fixture.bus.publish("task.done", {"report": "lmp", "filename": filename, "bytes": 5})
        self.fixture.clock.advance(0)
        changed = json.loads(self.fixture.get(f"/live?since={version}")[1])
        self.assertEqual([(row["report"], row["states"]) for row in changed["rows"]], [("lmp", "DWW")])

    def test_renderedOncePerSnapshot(self) -> None:
        """
        The page, C{/live}'s parts and C{/metrics} are rendered once per
        snapshot and version of the map, however often they are asked for
        (every open page polls): the same answer is given again until
        either is replaced.
        """
        rendered: list[str] = []

        def counted(name: str, render: Any) -> Any:
            def counting(*args: Any) -> Any:
                rendered.append(name)
                return render(*args)

            return counting

        self.patch(resources, "page", counted("page", resources.page))
        self.patch(resources, "parts", counted("parts", resources.parts))
        self.patch(resources, "generate_latest", counted("metrics", resources.generate_latest))
        paths = ("/", "/live?since=0", "/metrics")
        first = [self.fixture.get(path)[1] for path in paths]
        self.assertEqual([self.fixture.get(path)[1] for path in paths], first)
        self.assertEqual(rendered, ["page", "parts", "metrics"])
        # A tick: a new snapshot.
        self.fixture.clock.advance(INTERVAL)
        for path in paths:
            self.fixture.get(path)
        self.assertEqual(rendered, ["page", "parts", "metrics"] * 2)
        # A change of the map alone (before the snapshot that follows it).
        filename = self.fixture.daemon.asked[0].filename
        self.fixture.monitor.coverage.apply("task.done", {"filename": filename})
        answer = json.loads(self.fixture.get("/live?since=0")[1])
        self.assertEqual(answer["rows"][0]["states"], "DWW")
        self.assertEqual(rendered[-1], "parts")

    def test_liveHeading(self) -> None:
        """
        The map's heading, naming its first and last days, is among the
        parts C{/live} redraws: when the range changes (the configuration
        asks for other days, or a new day begins), a page left open shows
        the new one, as its rows do.
        """
        code, body, ignored = self.fixture.get("/")
        heading = '<h2 id="part-map-heading">Coverage by trading day, 2025-06-13 to 2025-06-15</h2>'
        self.assertIn(heading, body.decode())
        answer = json.loads(self.fixture.get("/live?since=0")[1])
        self.assertEqual(answer["parts"]["map-heading"], "Coverage by trading day, 2025-06-13 to 2025-06-15")
        self.fixture.daemon.asked = day_requests("lmp", datetime.date(2025, 6, 14), 3) + day_requests(
            "load", datetime.date(2025, 6, 14), 4
        )
        self.fixture.clock.advance(INTERVAL)
        again = json.loads(self.fixture.get(f"/live?since={answer['version']}")[1])
        self.assertEqual(again["parts"]["map-heading"], "Coverage by trading day, 2025-06-14 to 2025-06-17")
        self.assertEqual([row["first"] for row in again["rows"]], ["2025-06-14", "2025-06-14"])

    def test_whileLaidOut(self) -> None:
        """
        While the map is laid out a step at a time, the page and C{live}
        answer at every turn, with no row (never part of the map) and a
        heading saying so; once it is laid out, C{live} gives every row.
        """
        turns = Clock()
        fixture = Fixture(self, cooperator=stepwise(turns), at_once=1)
        title = "Coverage by trading day (being laid out)"
        fixture.clock.advance(0)
        turned = 0
        while not fixture.monitor.coverage.rows():
            code, body, ignored = fixture.get("/")
            self.assertEqual(code, 200)
            self.assertIn(f'<h2 id="part-map-heading">{title}</h2>', body.decode())
            self.assertIn('data-rows="[]"', body.decode())
            answer = json.loads(fixture.get("/live?since=0")[1])
            self.assertEqual((answer["rows"], answer["parts"]["map-heading"]), ([], title))
            turns.advance(1)
            fixture.clock.advance(0)
            turned += 1
        self.assertGreater(turned, 3)
        again = json.loads(fixture.get(f"/live?since={answer['version']}")[1])
        self.assertEqual(
            (again["reset"], [row["report"] for row in again["rows"]], again["parts"]["map-heading"]),
            (True, ["lmp", "load"], "Coverage by trading day, 2025-06-13 to 2025-06-15"),
        )

    def test_renderFailureLogged(self) -> None:
        """
        A page or update that cannot be rendered answers 500, and why is
        logged.
        """

        def broken(tree: object) -> Deferred[bytes]:
            return fail(RuntimeError("cannot flatten"))

        self.patch(resources, "render", broken)
        self.patch(resources, "fragment", broken)
        for path in ("/", "/live?since=0"):
            code, body, headers = self.fixture.get(path)
            self.assertEqual((code, body), (500, b"cannot render the page\n"))
            self.assertEqual(headers.getRawHeaders("content-type"), ["text/plain; charset=utf-8"])
            self.assertEqual(headers.getRawHeaders("cache-control"), ["no-store"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_buildFailureLogged(self) -> None:
        """
        A page or update that cannot even be built answers 500 as one that
        cannot be rendered does, and why is logged.
        """

        def broken(*args: object) -> object:
            raise TypeError("cannot build")

        self.patch(resources, "page", broken)
        self.patch(resources, "parts", broken)
        for path in ("/", "/live?since=0"):
            self.assertEqual(self.fixture.get(path)[:2], (500, b"cannot render the page\n"))
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 2)

    def test_badHeartbeat(self) -> None:
        """
        A worker's heartbeat with fields of the wrong type leaves the page
        and its updates whole: the fields are dropped as it is heard.
        """
        fixture = self.fixture
        workers = WorkersService(fixture.clock, fixture.bus)
        workers.startService()
        self.addCleanup(workers.stopService)
        fixture.bus.publish("worker.status", {"owner": "w2", "in_flight": 2, "seen_seconds_ago": "now"})
        fixture.clock.advance(3)
        fixture.daemon.services = healthy_services(workers=workers.status())
        fixture.clock.advance(INTERVAL)
        code, body, ignored = fixture.get("/")
        self.assertEqual(code, 200)
        self.assertIn(b'<td>w2</td><td class="n">0 / ?</td>', body)
        self.assertIn(b"3 s ago", body)
        self.assertEqual(fixture.get("/live?since=0")[0], 200)

    def test_workerOfAnotherPrefix(self) -> None:
        """
        A worker claiming from another C{--prefix} than the hub's shows its
        problem, escaped, in place of its state.
        """
        fixture = self.fixture
        workers = WorkersService(fixture.clock, fixture.bus, prefix="harbour")
        workers.startService()
        self.addCleanup(workers.stopService)
        fixture.bus.publish("worker.status", {"owner": "w3", "prefix": "<b>"})
        fixture.daemon.services = healthy_services(workers=workers.status())
        fixture.clock.advance(INTERVAL)
        body = fixture.get("/")[1]
        self.assertIn(b"<span class=\"problems\">its --prefix '&lt;b&gt;' is not this hub", body)
        self.assertNotIn(b"running", body.split(b'id="workers"')[1].split(b"</section>")[0])

    def test_workerWaiting(self) -> None:
        """
        A worker waiting for its first valid configuration says so in place
        of its state.
        """
        fixture = self.fixture
        workers = WorkersService(fixture.clock, fixture.bus)
        workers.startService()
        self.addCleanup(workers.stopService)
        fixture.bus.publish(
            "worker.status",
            {"owner": "w4", "version": __version__, "paused": False, "waiting": "a valid configuration"},
        )
        fixture.daemon.services = healthy_services(workers=workers.status())
        fixture.clock.advance(INTERVAL)
        shown = fixture.get("/")[1].split(b'id="workers"')[1].split(b"</section>")[0]
        self.assertIn(b"<td>waiting for a valid configuration</td>", shown)
        self.assertNotIn(b"running", shown)

    def test_configReloadFailed(self) -> None:
        """
        The page says the configuration is not loaded until it is; after a
        reload that failed, that the previous one is in force.
        """
        fixture = self.fixture
        self.assertIn(b"config <b>not loaded</b>", fixture.get("/")[1])
        fixture.bus.publish("work", {}, retain=True)
        fixture.clock.advance(INTERVAL)
        self.assertIn(b"config <b>loaded</b>", fixture.get("/")[1])
        fixture.bus.publish("config.error", {"file": "reports.toml", "line": 3, "errors": ["bad"]})
        fixture.clock.advance(INTERVAL)
        self.assertIn(b"config <b>last reload failed</b>, the previous one in force", fixture.get("/")[1])
        fixture.bus.publish("config.loaded", {"reloads": 2, "warnings": []})
        fixture.clock.advance(INTERVAL)
        self.assertIn(b"config <b>loaded</b>", fixture.get("/")[1])

    def test_escaped(self) -> None:
        """
        A report's name and an error that hold markup come out as text, on
        the page and in its updates.
        """
        evil = "<script>alert(1)</script>"
        escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        fixture = self.fixture
        fixture.daemon.services = healthy_services(work={"tasks": {evil: {"pending": 1}}})
        fixture.daemon.asked = fixture.daemon.asked + day_requests(evil, datetime.date(2025, 6, 14), 1)
        fixture.bus.publish("task.failed", {"report": evil, "filename": "x.zip", "error": evil})
        fixture.clock.advance(5)
        self.assertIn(evil, [view.name for view in fixture.monitor.current.reports])
        page = fixture.get("/")[1].decode()
        live = json.loads(fixture.get("/live?since=0")[1])
        self.assertIn(evil, [row["report"] for row in live["rows"]])
        for html in (page, live["parts"]["summary"], live["parts"]["reports"]):
            self.assertNotIn("<script>alert", html)
            self.assertIn(escaped, html)
        # The name, the row's attribute, the error; and the map's data.
        self.assertEqual(live["parts"]["reports"].count(escaped), 3)
        self.assertIn("&quot;report&quot;:&quot;&lt;script&gt;", page)

    def test_liveOtherVersion(self) -> None:
        """
        A version this process did not give (a page left open while the
        daemon restarted, or none) has every row drawn again.
        """
        version = json.loads(self.fixture.get("/live?since=0")[1])["version"]
        self.assertEqual(json.loads(self.fixture.get(f"/live?since={version}")[1])["reset"], False)
        epoch, ignored, number = version.rpartition(".")
        for since in (f"0{epoch}.{number}", number, "x", ""):
            code, body, ignored = self.fixture.get(f"/live?since={since}")
            answer = json.loads(body)
            self.assertEqual((code, answer["reset"], len(answer["rows"])), (200, True, 2), since)
        self.assertEqual(json.loads(self.fixture.get("/live")[1])["reset"], True)

    def test_localNamesOnly(self) -> None:
        """
        Without a token, the page and its updates answer only to a local
        name or an address: any other name may be a web site's, rebound to
        loopback, read through the operator's browser.  The open resources
        answer to any.
        """
        for host in ("localhost", "LOCALHOST.", "harbour.localhost", "127.0.0.1", "10.1.2.3"):
            for path in ("/", "/live?since=0"):
                self.assertEqual(self.fixture.get(path, host=host)[0], 200, (host, path))
        self.assertEqual(self.fixture.get("/", headers={"Host": "[::1]:7752"})[0], 200)
        self.assertEqual(self.fixture.get("/", headers={"Host": "attacker.example:7752"})[0], 421)
        for host in ("attacker.example", "localhost.example", "127.0.0.1.nip.io"):
            for path in ("/", "/live?since=0"):
                code, body, headers = self.fixture.get(path, host=host)
                self.assertEqual(code, 421, (host, path))
                self.assertIn(f"not to '{host}'".encode(), body)
                self.assertNotIn(b"lmp", body)
            for path in ("/metrics", "/healthz", "/assets/page.js"):
                self.assertEqual(self.fixture.get(path, host=host)[0], 200, (host, path))


class WithoutHostTests(SynchronousTestCase):
    """
    The site as a client without a C{Host} header meets it, and the status
    line of a refusal for a C{Host}, over a channel of the daemon's site.
    """

    def ask(self, request: bytes, host: IAddress) -> bytes:
        """
        @return: The answer to C{request} on a connection to C{host}.
        """
        fixture = Fixture(self)
        site = HttpService(fixture.clock, DEFAULT_HTTP, fixture.monitor).site()  # type: ignore[arg-type]
        channel = site.buildProtocol(host)
        assert channel is not None
        transport = StringTransport(hostAddress=host, peerAddress=host)
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        channel.dataReceived(request)
        return transport.value()

    def test_unixSocket(self) -> None:
        """
        On a C{unix:} listener, a request without C{Host} gets the page
        (it got 500, and a traceback in the log).
        """
        answer = self.ask(b"GET / HTTP/1.0\r\n\r\n", UNIXAddress(b"/run/harbour/http.sock"))
        self.assertTrue(answer.startswith(b"HTTP/1.0 200 OK\r\n"), answer[:100])
        self.assertIn(b'data-report="lmp"', answer)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_loopback(self) -> None:
        """
        On a loopback listener too.
        """
        answer = self.ask(b"GET / HTTP/1.0\r\n\r\n", IPv4Address("TCP", "127.0.0.1", 7752))
        self.assertTrue(answer.startswith(b"HTTP/1.0 200 OK\r\n"), answer[:100])

    def test_misdirected(self) -> None:
        """
        A refusal for the C{Host} says C{421 Misdirected Request}.
        """
        answer = self.ask(
            b"GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n", UNIXAddress(b"/run/harbour/http.sock")
        )
        self.assertTrue(answer.startswith(b"HTTP/1.1 421 Misdirected Request\r\n"), answer[:100])


class HeadTests(SynchronousTestCase):
    """
    C{HEAD}, which uptime checkers and load balancers probe with, on every
    path the daemon's site serves, with a token or without: the status
    and headers a C{GET} gets, no body, and nothing in the log.  (Twisted,
    handed a body for a C{HEAD}, logs a warning with the resource's
    C{repr}: for C{/readyz}, the monitor and the whole daemon behind it.)
    """

    def paths(self, resource: Any, prefix: bytes = b"") -> list[bytes]:
        """
        @return: The path of each resource in the tree under C{resource}
            and of each folder, and a path under each that nothing answers.
        """
        found = []
        for name, child in getattr(resource, "children", {}).items():
            found.append(prefix + b"/" + name)
            found.extend(self.paths(child, prefix + b"/" + name))
        return [*found, prefix + b"/nothing-here"]

    def ask(
        self, site: Site, method: bytes, path: bytes, headers: list[bytes]
    ) -> tuple[bytes, list[bytes], bytes]:
        """
        @return: The status line, the headers (but C{Date}, and
            C{Transfer-Encoding}, the framing of a body a C{HEAD} has not)
            and the body of the answer to C{method} C{path}.
        """
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"\r\n".join([method + b" " + path + b" HTTP/1.1", *headers, b"", b""]))
        # Closed at once (every answer here is whole by now): the site
        # answers only so many open connections of one host, and shuts the
        # others without a word.
        channel.connectionLost(Failure(ConnectionDone()))
        head, ignored, body = transport.value().partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        kept = sorted(
            line for line in lines if not line.lower().startswith((b"date:", b"transfer-encoding:"))
        )
        return status, kept, body

    def test_everyPath(self) -> None:
        """
        Every path, asked for as C{GET} and then C{HEAD}, from a local name
        and another, with the token, without it, and accepting gzip: the
        C{HEAD} is answered as the C{GET}, without a body, and logs
        nothing.  (C{/readyz} is asked for not ready and ready.)
        """
        for token in (None, TOKEN):
            fixture = Fixture(self)
            site = HttpService(fixture.clock, DEFAULT_HTTP, fixture.monitor, token).site()  # type: ignore[arg-type]
            paths = [*self.paths(site.resource), b"/live?since=x", b"/healthz/extra"]
            self.assertIn(b"/readyz", paths)
            for ready in (False, True):
                if ready:
                    fixture.bus.publish("work", {}, retain=True)
                    fixture.clock.advance(0)
                for path in paths:
                    for headers in (
                        [b"Host: localhost"],
                        [b"Host: attacker.example", b"Accept-Encoding: gzip"],
                        [b"Host: localhost", f"Authorization: Bearer {TOKEN}".encode()],
                    ):
                        get = self.ask(site, b"GET", path, headers)
                        self.assertTrue(get[0].startswith(b"HTTP/1.1 "), (token, path, headers))
                        logged = capture_log(self)
                        status, lines, body = self.ask(site, b"HEAD", path, headers)
                        self.assertEqual(logged, [], (token, path, headers))
                        self.assertEqual((status, lines, body), (get[0], get[1], b""), (token, path, headers))

    def test_underLeaves(self) -> None:
        """
        A path under one that answers (a leaf of the tree, which Twisted
        hands every path under it) is answered 404 C{no such page}, as any
        other path nothing answers, to C{GET} and (without its body, and
        logging nothing) to C{HEAD}; with the token or without it.
        """
        under = [
            b"//metrics",
            b"/live/",
            b"/live/x",
            b"/metrics/x",
            b"/healthz/x",
            b"/readyz/x",
            b"/favicon.ico/x",
            b"/assets/page.css/x",
            b"/assets/page.js/x/y",
        ]
        for token in (None, TOKEN):
            fixture = Fixture(self)
            site = HttpService(fixture.clock, DEFAULT_HTTP, fixture.monitor, token).site()  # type: ignore[arg-type]
            paths = [*under, b"/login/x"] if token else under
            headers = [b"Host: localhost", f"Authorization: Bearer {TOKEN}".encode()]
            for path in paths:
                status, lines, body = self.ask(site, b"GET", path, headers)
                self.assertEqual(
                    (status, body), (b"HTTP/1.1 404 Not Found", b"no such page\n"), (token, path)
                )
                self.assertIn(b"Content-Type: text/plain; charset=utf-8", lines, (token, path))
                logged = capture_log(self)
                status, lines, body = self.ask(site, b"HEAD", path, headers)
                self.assertEqual((status, body, logged), (b"HTTP/1.1 404 Not Found", b"", []), (token, path))

    def test_smallReprs(self) -> None:
        """
        No resource of the tree, nor the C{http} service, has the monitor,
        its snapshot or an answer remembered in its C{repr}, which some of
        Twisted's paths log, once every path has been asked for.
        """
        fixture = Fixture(self, TOKEN)
        service = HttpService(fixture.clock, DEFAULT_HTTP, fixture.monitor, TOKEN)  # type: ignore[arg-type]
        site = service.site()
        for path in self.paths(site.resource):
            self.ask(site, b"GET", path, [b"Host: localhost", f"Authorization: Bearer {TOKEN}".encode()])

        def reached(resource: Any) -> list[Any]:
            inner = [
                getattr(resource, name)
                for name in ("_wrappedResource", "resource")
                if hasattr(resource, name)
            ]
            children = list(getattr(resource, "children", {}).values())
            return [resource, *(found for each in inner + children for found in reached(each))]

        tree = reached(site.resource)
        self.assertIn("Readyz", {type(resource).__name__ for resource in tree})
        for each in [service, *tree]:
            self.assertLess(len(repr(each)), 300, repr(each)[:300])
        remembered = resources.Remembered()
        remembered.get_now(fixture.monitor.current, 0, lambda: b"x" * 10_000)
        self.assertLess(len(repr(remembered)), 300)


class TokenTests(SynchronousTestCase):
    """
    The page where other hosts may connect: the token as a bearer header
    or through the login form's cookie.
    """

    def setUp(self) -> None:
        self.fixture = Fixture(self, TOKEN)

    def test_refusedWithout(self) -> None:
        """
        Without the token the page and its updates answer 401 with the
        login form.
        """
        for path in ("/", "/live?since=0"):
            code, body, headers = self.fixture.get(path)
            self.assertEqual(code, 401)
            self.assertIn(b'name="token"', body)
            self.assertNotIn(b"lmp", body)

    def test_anyHost(self) -> None:
        """
        With the token, the page answers to any host name: it is reached
        by the names other hosts know this one by.
        """
        right = {"Authorization": f"Bearer {TOKEN}"}
        self.assertEqual(self.fixture.get("/", host="harbour.example", headers=right)[0], 200)

    def test_bearer(self) -> None:
        """
        The right bearer token shows the page; a wrong one does not.
        """
        right = {"Authorization": f"Bearer {TOKEN}"}
        self.assertEqual(self.fixture.get("/", headers=right)[0], 200)
        self.assertEqual(self.fixture.get("/", headers={"Authorization": "Bearer nope"})[0], 401)

    def test_login(self) -> None:
        """
        The login form sets a cookie (a digest of the token, not the token)
        that shows the page; a wrong token sets none.
        """
        code, body, headers = self.fixture.request("POST", "/login", data={"token": "wrong"})
        self.assertEqual(code, 401)
        self.assertIsNone(headers.getRawHeaders("set-cookie"))
        code, body, headers = self.fixture.request("POST", "/login", data={"token": TOKEN})
        self.assertEqual(code, 302)
        [cookie] = headers.getRawHeaders("set-cookie")
        self.assertIn(session(TOKEN).decode(), cookie)
        self.assertNotIn(TOKEN, cookie)
        self.assertIn("HttpOnly", cookie)
        with_cookie = {"Cookie": f"{COOKIE.decode()}={session(TOKEN).decode()}"}
        self.assertEqual(self.fixture.get("/", headers=with_cookie)[0], 200)

    def test_cookieSecureOverTLS(self) -> None:
        """
        The login cookie is marked C{Secure} when the form came over TLS,
        and not over plain HTTP (a listener systemd hands over, say), where
        browsers would never send it back.
        """
        for scheme, secure in (("https", True), ("http", False)):
            code, body, headers = self.fixture.request("POST", "/login", scheme, data={"token": TOKEN})
            self.assertEqual(code, 302)
            [cookie] = headers.getRawHeaders("set-cookie")
            self.assertEqual("Secure" in cookie.split("; "), secure, cookie)
            self.assertIn("SameSite=strict", cookie)


class CompressionTests(TestCase):
    """
    The page, its updates and the metrics over a real socket, as the
    daemon's own site serves them: compressed for a client that accepts
    gzip, whichever guard stands in front of them.  (treq and L{StubTreq} decode gzip
    without saying so; L{Agent} alone leaves the answer as it came.)
    """

    def serve(self, token: str | None) -> str:
        """
        Serve the fixture's site on a loopback port of the system's choosing.

        @return: Its URL.
        """
        from twisted.internet import reactor

        fixture = Fixture(self, token)
        site = HttpService(reactor, "tcp:0:interface=127.0.0.1", fixture.monitor, token).site()
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        return f"http://127.0.0.1:{address.port}"

    async def get(self, url: str, **headers: str) -> tuple[int, list[bytes] | None, bytes]:
        """
        @return: The code, C{Content-Encoding} and body (as sent) of a GET
            of C{url}.
        """
        from twisted.internet import reactor

        sent = Headers({name.replace("_", "-"): [value] for name, value in headers.items()})
        response = await Agent(reactor).request(b"GET", url.encode(), sent)
        body = await readBody(response)
        return response.code, response.headers.getRawHeaders(b"content-encoding"), body

    async def test_gzipped(self) -> None:
        """
        On a loopback listener the page and C{/live} are gzipped when the
        client accepts it, and plain when it does not; an answer refused
        for its C{Host} is still refused.
        """
        url = self.serve(None)
        for path, expected in (("/", b'data-report="lmp"'), ("/live?since=0", b'"reset":true')):
            code, encoding, body = await self.get(url + path, Accept_Encoding="gzip")
            self.assertEqual((code, encoding), (200, [b"gzip"]), path)
            self.assertIn(expected, gzip.decompress(body))
            code, encoding, body = await self.get(url + path)
            self.assertEqual((code, encoding), (200, None), path)
            self.assertIn(expected, body)
        code, encoding, body = await self.get(url + "/", Accept_Encoding="gzip", Host="attacker.example")
        self.assertEqual(code, 421)
        self.assertNotIn(b"lmp", gzip.decompress(body) if encoding else body)

    async def test_metricsGzipped(self) -> None:
        """
        C{/metrics} is gzipped for a client that accepts it, as Prometheus
        does, and plain for one that does not, the same metrics either
        way; a path under it is 404 either way.
        """
        url = self.serve(TOKEN)
        code, encoding, body = await self.get(url + "/metrics", Accept_Encoding="gzip")
        self.assertEqual((code, encoding), (200, [b"gzip"]))
        gzipped = gzip.decompress(body)
        code, encoding, plain = await self.get(url + "/metrics")
        self.assertEqual((code, encoding), (200, None))
        self.assertEqual(gzipped, plain)
        self.assertIn(b"harbour_tasks", plain)
        for headers in ({"Accept_Encoding": "gzip"}, {}):
            code, encoding, body = await self.get(url + "/metrics/x", **headers)
            self.assertEqual((code, gzip.decompress(body) if encoding else body), (404, b"no such page\n"))

    async def test_gzippedWithToken(self) -> None:
        """
        Where the page needs the token, it is gzipped for a client giving
        the token, and still refused to one that does not.
        """
        url = self.serve(TOKEN)
        right = f"Bearer {TOKEN}"
        code, encoding, body = await self.get(url + "/", Accept_Encoding="gzip", Authorization=right)
        self.assertEqual((code, encoding), (200, [b"gzip"]))
        self.assertIn(b'data-report="lmp"', gzip.decompress(body))
        code, encoding, body = await self.get(url + "/live?since=0", Accept_Encoding="gzip")
        self.assertEqual(code, 401)
        self.assertNotIn(b"lmp", gzip.decompress(body) if encoding else body)
