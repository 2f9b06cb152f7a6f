"""
Tests of the C{monitor} service and the metrics collected from its
snapshot: names, labels and values after known events, health on a
L{Clock}, readiness.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.template import Tag, flattenString

from harbour import __version__
from harbour.bus import Bus
from harbour.config.watcher import ConfigService
from harbour.web.health import verdict
from harbour.web.metrics import registry
from harbour.web.monitor import Monitor
from harbour.web.page import overall, summary
from harbour.web.tally import SPAN, retry_reason
from harbour.web.test.helpers import FakeDaemon, day_requests, healthy_services, started_monitor

T0 = 1_750_000_000.0

Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(monitor: Monitor) -> dict[Sample, float]:
    """
    @return: C{{(name, sorted labels): value}} of every sample, as
        Prometheus's own parser reads the exposition.
    """
    text = generate_latest(registry(lambda: monitor.current)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def flatten(tag: Tag) -> str:
    """
    @return: C{tag} as HTML.
    """
    rendered: list[bytes] = []
    flattenString(None, tag).addCallback(rendered.append)
    return rendered[0].decode()


class MetricsTests(SynchronousTestCase):
    """
    The metrics after known events.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.daemon = FakeDaemon(self.clock)
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"pending": 2, "downloaded": 1}}})
        self.daemon.asked = day_requests("lmp", datetime.date(2025, 6, 1), 3)
        self.monitor, self.bus = started_monitor(self.clock, self.daemon)
        self.addCleanup(self.monitor.stopService)

    def publish(self, topic: str, **payload: object) -> None:
        """
        Publish an event, and let the monitor take its snapshot.
        """
        self.bus.publish(topic, payload)
        self.clock.advance(0)

    def test_afterEvents(self) -> None:
        """
        Outcomes, bytes, retries with their reasons, rows written, the
        configuration's reload and Redis's state are counted per report.
        """
        names = [r.filename for r in self.daemon.asked]
        self.bus.publish("work", {"max_attempts": 3}, retain=True)
        self.publish("task.done", report="lmp", filename=names[2], bytes=1000, revision=0, error="")
        self.clock.advance(10)
        self.publish("task.failed", report="lmp", filename=names[1], bytes=0, error="HTTP 400", revision=0)
        self.publish("task.retried", report="lmp", error="HTTP 429: throttled, retry after 5 s")
        self.publish("table.written", report="lmp", task="x", rows=24, files=1)
        self.publish("store.disconnected", redis="redis://127.0.0.1:6379/0")
        samples = scrape(self.monitor)
        lmp = (("report", "lmp"),)
        expected = {
            ("harbour_build_info", (("version", __version__),)): 1.0,
            ("harbour_requests_total", (("outcome", "downloaded"), *lmp)): 1.0,
            ("harbour_requests_total", (("outcome", "failed"), *lmp)): 1.0,
            ("harbour_requests_total", (("outcome", "retried"), *lmp)): 1.0,
            ("harbour_fetched_bytes_total", lmp): 1000.0,
            ("harbour_retries_total", (("reason", "throttled"), *lmp)): 1.0,
            ("harbour_report_last_success_timestamp_seconds", lmp): T0,
            ("harbour_config_last_reload_successful", ()): 1.0,
            ("harbour_config_last_reload_success_timestamp_seconds", ()): T0,
            ("harbour_redis_up", ()): 0.0,
            ("harbour_ready", ()): 0.0,
            ("harbour_dataset_rows_written_total", lmp): 24.0,
            ("harbour_tasks", (*lmp, ("state", "pending"))): 2.0,
            ("harbour_tasks", (*lmp, ("state", "downloaded"))): 1.0,
            ("harbour_coverage_days", (*lmp, ("state", "downloaded"))): 1.0,
            ("harbour_coverage_days", (*lmp, ("state", "failed"))): 1.0,
            ("harbour_coverage_days", (*lmp, ("state", "pending"))): 1.0,
            ("harbour_report_health", (*lmp, ("state", "retrying"))): 1.0,
            ("harbour_workers_connected", ()): 0.0,
            ("harbour_publications_log_mode", (("mode", "off"),)): 1.0,
        }
        self.assertEqual({key: samples.get(key) for key in expected}, expected)
        labels = {name for (ignored, pairs) in samples for name, ignored_value in pairs}
        self.assertEqual(labels - {"report", "state", "outcome", "reason", "mode", "version"}, set())

    def test_countersFromZero(self) -> None:
        """
        A configured report's counters are exposed at zero before anything
        happens to it, every outcome and retry reason of them, so that its
        first failure is an increase Prometheus sees; a report counted but
        not (or no longer) configured keeps its counts.
        """
        samples = scrape(self.monitor)
        lmp = (("report", "lmp"),)
        outcomes = ("downloaded", "empty", "failed", "retried")
        reasons = (
            "disk throttled server_error client_error timeout connection no_data_yet oasis_error"
            " bad_answer other"
        )
        zero = {
            *(("harbour_requests_total", (("outcome", outcome), *lmp)) for outcome in outcomes),
            *(("harbour_retries_total", (("reason", reason), *lmp)) for reason in reasons.split()),
            ("harbour_fetched_bytes_total", lmp),
            ("harbour_dataset_rows_written_total", lmp),
            ("harbour_dataset_failures_total", lmp),
        }
        counters = {key for key in samples if key[0].endswith("_total")}
        self.assertEqual(counters, zero)
        self.assertEqual({samples[key] for key in zero}, {0.0})
        names = [r.filename for r in self.daemon.asked]
        self.publish("task.failed", report="lmp", filename=names[0], bytes=0, error="HTTP 400", revision=0)
        self.publish("task.done", report="gone", filename="f", bytes=10, revision=0, error="")
        samples = scrape(self.monitor)
        self.assertEqual(samples[("harbour_requests_total", (("outcome", "failed"), *lmp))], 1.0)
        self.assertEqual(samples[("harbour_requests_total", (("outcome", "empty"), *lmp))], 0.0)
        gone = (("report", "gone"),)
        self.assertEqual(samples[("harbour_requests_total", (("outcome", "downloaded"), *gone))], 1.0)
        self.assertEqual(samples[("harbour_requests_total", (("outcome", "failed"), *gone))], 0.0)
        self.assertEqual(samples[("harbour_fetched_bytes_total", gone)], 10.0)

    def test_noDataYet(self) -> None:
        """
        A window asked again because OASIS had no data for it yet is
        counted among the retries, as C{no_data_yet}, but uses no attempt
        and is not among the retries that make a report's health
        C{retrying}.
        """
        self.publish(
            "task.retried",
            report="lmp",
            error="no data yet: OASIS error 1000: No data returned for the specified selection",
            counted=False,
        )
        samples = scrape(self.monitor)
        lmp = (("report", "lmp"),)
        self.assertEqual(samples.get(("harbour_retries_total", (("reason", "no_data_yet"), *lmp))), 1.0)
        self.assertEqual(samples.get(("harbour_requests_total", (("outcome", "retried"), *lmp))), 1.0)
        self.assertEqual(self.monitor.tally.within_window().get("lmp", {}).get("retried", 0), 0)
        self.publish("task.retried", report="lmp", error="HTTP 503", counted=True)
        self.assertEqual(self.monitor.tally.within_window()["lmp"]["retried"], 1)

    def test_reloadFailed(self) -> None:
        """
        A C{config.error} after a good load: unsuccessful, the success's
        time kept.
        """
        self.bus.publish("work", {"max_attempts": 3}, retain=True)
        self.clock.advance(30)
        self.publish("config.error", file="work.toml", errors=[])
        samples = scrape(self.monitor)
        self.assertEqual(samples[("harbour_config_last_reload_successful", ())], 0.0)
        self.assertEqual(samples[("harbour_config_last_reload_success_timestamp_seconds", ())], T0)

    def test_reloadPutRight(self) -> None:
        """
        A bad save, then the files put back as they were (a reload that
        changes no topic): the last reload is successful again, at its
        time.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        config = ConfigService(self.clock, directory, self.bus)
        good = "[work]\nmax_attempts = 3\n"
        (directory / "work.toml").write_text(good)
        self.successResultOf(config.reload())
        self.clock.advance(10)
        (directory / "work.toml").write_text("[work]\nmax_attempts = 0\n")
        self.successResultOf(config.reload())
        self.clock.advance(0)
        self.assertEqual(scrape(self.monitor)[("harbour_config_last_reload_successful", ())], 0.0)
        self.clock.advance(10)
        (directory / "work.toml").write_text(good)
        self.assertEqual(self.successResultOf(config.reload()), ([], []))
        self.clock.advance(0)
        samples = scrape(self.monitor)
        self.assertEqual(samples[("harbour_config_last_reload_successful", ())], 1.0)
        self.assertEqual(samples[("harbour_config_last_reload_success_timestamp_seconds", ())], T0 + 20)
        self.flushLoggedErrors()

    def test_followsOnlyItsTopics(self) -> None:
        """
        The monitor follows task, dataset, store and configuration topics,
        not every topic: one of nobody's still reaches nobody.
        """
        self.assertEqual(self.successResultOf(self.bus.publish("x", 1)), 0)
        self.assertEqual(self.successResultOf(self.bus.publish("task.done", {})), 1)
        self.assertEqual(self.successResultOf(self.bus.publish("reports.1", [])), 1)

    def test_ownRegistry(self) -> None:
        """
        Nothing of harbour's is registered in C{prometheus_client}'s global
        registry: its metrics are in a registry of their own.
        """
        own = registry(lambda: self.monitor.current)
        self.assertIn("harbour_tasks", {family.name for family in own.collect()})
        names = {sample.name for family in REGISTRY.collect() for sample in family.samples}
        self.assertEqual({name for name in names if name.startswith("harbour_")}, set())

    def test_retryReasons(self) -> None:
        """
        Errors are counted under a few reasons, whatever their text.
        """
        self.assertEqual(retry_reason("HTTP 503"), "server_error")
        self.assertEqual(retry_reason("no data for 30 s"), "timeout")
        self.assertEqual(retry_reason("connection lost mid-body: reset"), "connection")
        self.assertEqual(retry_reason("OASIS error 1015: GroupZip DownLoad is in Processing"), "oasis_error")
        self.assertEqual(retry_reason("something new"), "other")

    def test_downloadFaultReasons(self) -> None:
        """
        A head that never came is a timeout, and a fault of this host's
        disk is C{disk}, though its path names a zip or directory.
        """
        self.assertEqual(retry_reason("no answer within 60 s"), "timeout")
        self.assertEqual(
            retry_reason("cannot write data/reports/lmp/2025-01-01.zip: No space left on device"), "disk"
        )
        self.assertEqual(retry_reason("cannot write data/reports/lmp: Not a directory"), "disk")


class HealthOnClockTests(SynchronousTestCase):
    """
    The monitor's health states as time passes.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.daemon = FakeDaemon(self.clock)
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"pending": 5}}})
        self.monitor, self.bus = started_monitor(self.clock, self.daemon, Bus())
        self.addCleanup(self.monitor.stopService)

    def test_failingThenRetrying(self) -> None:
        """
        Three failures in the hour make C{failing}; an hour later (to the
        minute: outcomes are counted by the minute), with the failed tasks
        still waiting, the report is C{retrying}.
        """
        for n in range(3):
            self.bus.publish("task.failed", {"report": "lmp", "filename": f"f{n}", "error": "HTTP 400"})
        self.clock.advance(0)
        self.assertEqual(self.monitor.status()["reports"]["lmp"]["health"], "failing")
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"pending": 2, "failed": 3}}})
        self.clock.advance(3600 - SPAN)
        self.assertEqual(self.monitor.status()["reports"]["lmp"]["health"], "failing")
        self.clock.advance(2 * SPAN)
        self.assertEqual(
            self.monitor.status()["reports"]["lmp"], {"health": "retrying", "why": "3 failed tasks to retry"}
        )

    def test_failuresKeptUnderLoad(self) -> None:
        """
        Another report's many outcomes do not crowd a report's failures out
        of the window: a report with four failures is still C{failing} a
        minute after another fetched 20,000 files.
        """
        self.daemon.services = healthy_services(work={"tasks": {"lmp": {"failed": 4}, "load": {}}})
        for n in range(4):
            self.bus.publish("task.failed", {"report": "lmp", "filename": f"f{n}", "error": "HTTP 400"})
        self.clock.advance(1)
        self.assertEqual(self.monitor.status()["reports"]["lmp"]["health"], "failing")
        for n in range(20_000):
            self.bus.publish("task.done", {"report": "load", "filename": f"d{n}", "bytes": 10})
        self.clock.advance(SPAN)
        self.assertEqual(
            self.monitor.status()["reports"]["lmp"],
            {"health": "failing", "why": "4 of 4 tasks failed in the last 1 h"},
        )
        self.assertEqual(
            self.monitor.tally.within_window()["load"], {"ended": 20_000, "failed": 0, "retried": 0}
        )

    def test_behind(self) -> None:
        """
        The newest day still pending six hours after it ended is C{behind};
        once it is fetched the report is C{ok}.
        """
        requests = day_requests("lmp", datetime.date(2025, 6, 20), 2)
        self.daemon.asked = requests
        ended = requests[-1].window_end.timestamp()
        self.clock.advance(ended + 6 * 3600 + 60 - self.clock.seconds())
        self.clock.advance(5)
        self.assertEqual(self.monitor.status()["reports"]["lmp"]["health"], "behind")
        self.bus.publish("task.done", {"report": "lmp", "filename": requests[-1].filename, "bytes": 1})
        self.clock.advance(0)
        self.assertEqual(self.monitor.status()["reports"]["lmp"], {"health": "ok", "why": ""})

    def test_readiness(self) -> None:
        """
        Ready once the configuration is loaded and Redis answers; not
        while Redis is away.
        """
        self.assertEqual(self.monitor.current.ready, "configuration not loaded")
        self.bus.publish("work", {}, retain=True)
        self.clock.advance(0)
        self.assertEqual(self.monitor.status()["ready"], "ready")
        self.bus.publish("store.disconnected", {})
        self.clock.advance(0)
        self.assertEqual(self.monitor.current.ready, "Redis is not reachable")
        self.bus.publish("store.connected", {})
        self.clock.advance(0)
        self.assertEqual(self.monitor.current.ready, "")

    def test_redisFailing(self) -> None:
        """
        A store connected to a Redis that refuses every write has an outage
        under way: Redis is not up, the daemon not ready (saying why), the
        check critical and the page says so, until the outage is over.
        """
        self.bus.publish("work", {}, retain=True)
        refused = "OOM command not allowed when used memory > 'maxmemory'."
        store = {
            "connected": True,
            "redis": "redis://127.0.0.1:6379/0",
            "last_error": refused,
            "outage_since": T0,
        }
        self.daemon.services = healthy_services(store=store)
        self.clock.advance(5)
        self.assertEqual(self.monitor.current.ready, f"Redis commands fail: {refused}")
        self.assertEqual(self.monitor.status()["ready"], f"Redis commands fail: {refused}")
        samples = scrape(self.monitor)
        self.assertEqual((samples[("harbour_redis_up", ())], samples[("harbour_ready", ())]), (0.0, 0.0))
        code, line = overall(self.monitor.current)
        self.assertEqual((code, line), (2, f"HARBOUR CRITICAL - Redis commands fail ({refused}); 0 reports"))
        self.assertIn("Redis <b>FAILING</b>", flatten(summary(self.monitor.current)))
        self.daemon.services = healthy_services(store={**store, "outage_since": None})
        self.clock.advance(5)
        self.assertEqual(self.monitor.current.ready, "")
        self.assertEqual(scrape(self.monitor)[("harbour_redis_up", ())], 1.0)
        self.assertIn("Redis <b>up</b>", flatten(summary(self.monitor.current)))

    def test_refreshFailing(self) -> None:
        """
        While the refreshes of the tasks fail, the page's verdict is the
        check's warning, word for word, its problems say since when and
        why as C{harbourctl status} does, and C{harbour_refresh_failing}
        reads 1; once a refresh works, all of it is gone.
        """
        self.bus.publish("work", {}, retain=True)
        failure = {"since": "2026-11-24T20:00:00Z", "error": "cannot reach OASIS"}
        self.daemon.services = healthy_services(work={"tasks": {}, "refresh_error": failure})
        self.clock.advance(5)
        check = verdict(dict(self.daemon.services, monitor=self.monitor.status()))
        self.assertEqual(check.code, 1)
        self.assertEqual(overall(self.monitor.current), (check.code, check.summary))
        self.assertIn(
            "<li>refreshes fail since 2026-11-24T20:00:00Z: cannot reach OASIS</li>",
            flatten(summary(self.monitor.current)),
        )
        self.assertEqual(scrape(self.monitor)[("harbour_refresh_failing", ())], 1.0)
        self.daemon.services = healthy_services(work={"tasks": {}, "refresh_error": None})
        self.clock.advance(5)
        self.assertEqual(overall(self.monitor.current)[0], 0)
        self.assertNotIn("refreshes fail", flatten(summary(self.monitor.current)))
        self.assertEqual(scrape(self.monitor)[("harbour_refresh_failing", ())], 0.0)

    def test_redisDownLine(self) -> None:
        """
        With the store not connected, the page's verdict names the store's
        last error, as the check does, rather than Redis's address.
        """
        self.bus.publish("work", {}, retain=True)
        lost = "not connected to Redis at unix:///run/harbour/redis.sock?db=0"
        store = {"connected": False, "redis": "unix:///run/harbour/redis.sock?db=0", "last_error": lost}
        self.daemon.services = healthy_services(store=store)
        self.clock.advance(5)
        check = verdict(dict(self.daemon.services, monitor=self.monitor.status()))
        self.assertEqual(check.summary, f"HARBOUR CRITICAL - Redis not connected ({lost}); 0 reports")
        self.assertEqual(overall(self.monitor.current), (check.code, check.summary))

    def test_stopping(self) -> None:
        """
        Once the monitor is stopping, the daemon is not ready, whatever the
        last snapshot said: a scraper may still ask.
        """
        self.bus.publish("work", {}, retain=True)
        self.clock.advance(0)
        self.assertEqual(self.monitor.status()["ready"], "ready")
        self.monitor.stopService()
        self.assertEqual(self.monitor.current.ready, "stopping")
        self.assertEqual(scrape(self.monitor)[("harbour_ready", ())], 0.0)
        self.monitor.rebuild()
        self.assertEqual(self.monitor.status()["ready"], "stopping")

    def test_statusUnreadable(self) -> None:
        """
        A C{Status} that fails is logged, and the last snapshot kept.
        """
        before = self.monitor.current.reports

        def broken() -> object:
            raise RuntimeError("boom")

        self.daemon.status = broken  # type: ignore[method-assign, assignment]
        self.clock.advance(5)
        self.assertEqual(self.monitor.current.reports, before)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
