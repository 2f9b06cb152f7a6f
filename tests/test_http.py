"""
System tests of the HTTP side of a real C{twistd harbour}: C{/metrics}
read with Prometheus's own parser, and C{/readyz} following a Redis the
test stops and starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.store.server import find_redis_server
from harbour.test.helpers import short_directory
from tests.processes import PATIENCE, WatchedProcess, spawn, start_harbour, stop_harbour
from tests.test_mirror import LMP, Mirror

#: A loopback listener on a port the system chooses.
ANY_PORT = "tcp:0:interface=127.0.0.1"


async def site_url(daemon: WatchedProcess) -> str:
    """
    @return: The URL of the site a daemon started with C{--http} says it
        listens on.
    """
    line = await daemon.wait_for("http listening on ")
    found = re.search(r"http://[\d.]+:\d+/", line)
    assert found is not None, line
    return found.group(0)


async def get(url: str) -> tuple[int, str]:
    """
    @return: The code and text of a GET of C{url}.
    """
    response = await treq.get(url, persistent=False)
    return response.code, (await treq.text_content(response))


async def until_answer(testcase: TestCase, url: str, code: int) -> str:
    """
    GET C{url} until it answers C{code}, failing after L{PATIENCE} seconds.

    @return: The text of that answer.
    """
    from twisted.internet import reactor

    deadline = reactor.seconds() + PATIENCE
    while True:
        answer = await get(url)
        if answer[0] == code:
            return answer[1]
        if reactor.seconds() > deadline:
            testcase.fail(f"{url} still answers {answer} after {PATIENCE} s")
        await deferLater(reactor, 0.1, lambda: None)


class HttpMirror(Mirror):
    """
    L{Mirror}, with the site on a port of the system's choosing.
    """

    async def start(self) -> None:
        """
        Start the daemon with C{--http}, and note its site's URL.
        """
        self.daemon = start_harbour(self.reactor, self.directory, "--http", ANY_PORT)
        self.url = await site_url(self.daemon)
        await self.daemon.wait_for("store ready")


class MetricsTests(TestCase):
    """
    C{/metrics}, C{/healthz} and C{/readyz} of a daemon mirroring a report.
    """

    timeout = 120

    async def test_metricsParse(self) -> None:
        """
        Once a report is mirrored, C{/metrics} parses with
        C{prometheus_client}'s parser and counts its tasks and fetches; the
        health checks answer 200 and the page shows the report.
        """
        mirror = HttpMirror(self, days=("2025-01-01", "2025-01-03"))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        self.assertEqual(await until_answer(self, mirror.url + "readyz", 200), "ready\n")
        self.assertEqual(await get(mirror.url + "healthz"), (200, "ok\n"))
        deadline = mirror.reactor.seconds() + 60
        while True:
            code, text = await get(mirror.url + "metrics")
            self.assertEqual(code, 200)
            samples = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            if samples.get(("harbour_tasks", (("report", "lmp"), ("state", "downloaded")))) == 3:
                break
            self.assertLess(mirror.reactor.seconds(), deadline, text)
            await deferLater(mirror.reactor, 0.2, lambda: None)
        self.assertEqual(
            samples[("harbour_requests_total", (("outcome", "downloaded"), ("report", "lmp")))], 3
        )
        self.assertGreater(samples[("harbour_fetched_bytes_total", (("report", "lmp"),))], 0)
        self.assertEqual(samples[("harbour_config_last_reload_successful", ())], 1)
        self.assertEqual(samples[("harbour_redis_up", ())], 1)
        self.assertEqual(samples[("harbour_coverage_days", (("report", "lmp"), ("state", "downloaded")))], 3)
        code, page = await get(mirror.url)
        self.assertEqual(code, 200)
        self.assertIn('data-report="lmp"', page)
        self.assertNotIn("Traceback", mirror.daemon.output())


class ReadinessTests(TestCase):
    """
    C{/readyz} of a daemon on a Redis the test controls.
    """

    timeout = 120

    def start_redis(self, directory: Path) -> WatchedProcess:
        """
        Start a redis-server listening only on a socket in C{directory}.
        """
        redis = spawn(
            self.reactor,
            [
                find_redis_server(),
                "--port",
                "0",
                "--unixsocket",
                str(directory / "redis.sock"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            directory,
        )
        self.addCleanup(lambda: redis.ended.called or (redis.signal("KILL"), redis.ended)[1])
        return redis

    async def test_readyFollowsRedis(self) -> None:
        """
        C{/readyz} answers 200 with Redis up, 503 saying why while it is
        down, and 200 again once it is back; C{/healthz} stays 200.
        """
        from twisted.internet import reactor

        self.reactor = reactor
        directory = short_directory(self)
        (directory / "config").mkdir()
        redis = self.start_redis(directory)
        await redis.wait_for("ready to accept connections")
        daemon = start_harbour(
            reactor, directory, "--http", ANY_PORT, "--redis", f"unix://{directory / 'redis.sock'}?db=0"
        )
        self.addCleanup(stop_harbour, daemon)
        url = await site_url(daemon)
        await until_answer(self, url + "readyz", 200)
        redis.signal("TERM")
        await redis.ended
        self.assertEqual(await until_answer(self, url + "readyz", 503), "Redis is not reachable\n")
        self.assertEqual(await get(url + "healthz"), (200, "ok\n"))
        again = self.start_redis(directory)
        await again.wait_for("ready to accept connections")
        self.assertEqual(await until_answer(self, url + "readyz", 200), "ready\n")
        self.assertNotIn("Traceback", daemon.output())
