"""
harbour's Prometheus metrics, collected from a L{Snapshot}.

The collector lives on its own L{CollectorRegistry} (never the process's
global one) and reads only the snapshot it is handed, an immutable value
replaced whole by the reactor: a scrape, generated on the reactor (once
per snapshot, L{harbour.web.resources.Metrics}), reads one moment.  Every
metric is labelled by report at most: never by URL or day, so the series
stay few.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import attr
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from harbour.services.knowledge import DATE_RANGES, FOLLOWING, LEARNING, OFF
from harbour.store.tasks import STATES
from harbour.web.coverage import LEGEND
from harbour.web.health import HEALTH_STATES
from harbour.web.snapshot import Snapshot
from harbour.web.tally import OUTCOMES, REASONS

#: The modes the publications log may be followed in, as
#: C{harbour_publications_log_mode}'s states.
PUBLICATION_MODES = (OFF, LEARNING, FOLLOWING, DATE_RANGES)

#: The outcomes C{harbour_requests_total} counts, each exposed from zero.
REQUEST_OUTCOMES = (*OUTCOMES.values(), "retried")

#: The reasons C{harbour_retries_total} counts, each exposed from zero.
RETRY_REASONS = (*(name for name, ignored in REASONS), "other")


@attr.s(frozen=True)
class SnapshotCollector(Collector):
    """
    Turns the current L{Snapshot} into metric families.

    @ivar snapshot: Returns the current snapshot.
    """

    snapshot: Callable[[], Snapshot] = attr.ib()

    def collect(self) -> Iterator[Metric]:
        """
        @return: Every metric family, from one snapshot.
        """
        shot = self.snapshot()
        info = InfoMetricFamily("harbour_build", "harbour's version.")
        info.add_metric([], {"version": shot.version})
        yield info
        yield from self._tasks(shot)
        yield from self._traffic(shot)
        yield from self._daemon(shot)
        yield from self._dataset(shot)

    def _tasks(self, shot: Snapshot) -> Iterator[Metric]:
        tasks = GaugeMetricFamily("harbour_tasks", "Tasks by report and state.", labels=["report", "state"])
        days = GaugeMetricFamily(
            "harbour_coverage_days", "Trading days by report and coverage state.", labels=["report", "state"]
        )
        health = GaugeMetricFamily(
            "harbour_report_health",
            "1 for each report's current health state (ok, idle, retrying, behind, failing).",
            labels=["report", "state"],
        )
        success = GaugeMetricFamily(
            "harbour_report_last_success_timestamp_seconds",
            "When a report last fetched a file or an empty answer (since harbour started).",
            labels=["report"],
        )
        for view in shot.reports:
            for state in STATES:
                tasks.add_metric([view.name, state], view.counts.get(state, 0))
            for _code, name, _meaning in LEGEND:
                days.add_metric([view.name, name], view.days.get(name, 0))
            for state in HEALTH_STATES:
                health.add_metric([view.name, state], 1.0 if view.health.state == state else 0.0)
            if view.last_success is not None:
                success.add_metric([view.name], view.last_success)
        yield from (tasks, days, health, success)

    def _traffic(self, shot: Snapshot) -> Iterator[Metric]:
        names = _reports(shot)
        requests = CounterMetricFamily(
            "harbour_requests",
            "Report requests ended, by report and outcome (downloaded, empty, failed, retried).",
            labels=["report", "outcome"],
        )
        for report in names:
            outcomes = shot.requests.get(report, {})
            for outcome in _with_known(outcomes, REQUEST_OUTCOMES):
                requests.add_metric([report, outcome], outcomes.get(outcome, 0))
        fetched = CounterMetricFamily(
            "harbour_fetched_bytes", "Bytes of report files fetched, by report.", labels=["report"]
        )
        for report in names:
            fetched.add_metric([report], shot.fetched_bytes.get(report, 0))
        retries = CounterMetricFamily(
            "harbour_retries", "Attempts retried, by report and reason.", labels=["report", "reason"]
        )
        for report in names:
            reasons = shot.retries.get(report, {})
            for reason in _with_known(reasons, RETRY_REASONS):
                retries.add_metric([report, reason], reasons.get(reason, 0))
        yield from (requests, fetched, retries)

    def _daemon(self, shot: Snapshot) -> Iterator[Metric]:
        reload_ok = GaugeMetricFamily(
            "harbour_config_last_reload_successful",
            "Whether the configuration's last reload succeeded (1) or found errors (0).",
        )
        reload_ok.add_metric([], 1.0 if shot.config_successful else 0.0)
        yield reload_ok
        reload_at = GaugeMetricFamily(
            "harbour_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
        )
        if shot.config_success_at is not None:
            reload_at.add_metric([], shot.config_success_at)
        yield reload_at
        redis = GaugeMetricFamily(
            "harbour_redis_up", "Whether Redis answers (1) or not (0): not connected, or its commands fail."
        )
        redis.add_metric([], 1.0 if shot.redis_up else 0.0)
        yield redis
        refresh = GaugeMetricFamily(
            "harbour_refresh_failing",
            "Whether the refreshes of the tasks fail (1) or not (0): new windows go unasked meanwhile.",
        )
        refresh.add_metric([], 1.0 if shot.refresh_error else 0.0)
        yield refresh
        ready = GaugeMetricFamily("harbour_ready", "Whether /readyz answers 200 (1) or 503 (0).")
        ready.add_metric([], 0.0 if shot.ready else 1.0)
        yield ready
        workers = GaugeMetricFamily("harbour_workers_connected", "Download workers heard from recently.")
        workers.add_metric([], len(shot.workers))
        yield workers
        mode = GaugeMetricFamily(
            "harbour_publications_log_mode",
            "1 for the mode the publications log is followed in.",
            labels=["mode"],
        )
        modes: tuple[str, ...] = PUBLICATION_MODES
        if shot.publications_mode not in modes:
            modes += (shot.publications_mode,)
        for name in modes:
            mode.add_metric([name], 1.0 if name == shot.publications_mode else 0.0)
        yield mode
        uptime = GaugeMetricFamily("harbour_uptime_seconds", "Seconds since harbour started.")
        uptime.add_metric([], shot.uptime)
        yield uptime

    def _dataset(self, shot: Snapshot) -> Iterator[Metric]:
        names = _reports(shot)
        rows = CounterMetricFamily(
            "harbour_dataset_rows_written", "Rows written to the dataset, by report.", labels=["report"]
        )
        for report in names:
            rows.add_metric([report], shot.rows_written.get(report, 0))
        failures = CounterMetricFamily(
            "harbour_dataset_failures", "Dataset writes that failed, by report.", labels=["report"]
        )
        for report in names:
            failures.add_metric([report], shot.table_failures.get(report, 0))
        yield from (rows, failures)


def _reports(shot: Snapshot) -> list[str]:
    """
    @return: The reports whose counters are exposed: every configured
        one, from zero until its first event (a series that appears only
        with its first event hides that event from C{increase()}), and any
        other counted since harbour started.
    """
    counted = (shot.requests, shot.fetched_bytes, shot.retries, shot.rows_written, shot.table_failures)
    return sorted({view.name for view in shot.reports}.union(*counted))


def _with_known(counted: Mapping[str, int], known: Sequence[str]) -> list[str]:
    """
    @return: The labels of C{known}, then any others C{counted} has.
    """
    return [*known, *sorted(set(counted) - set(known))]


def registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """
    @return: A registry of its own holding only harbour's collector.
    """
    own = CollectorRegistry(auto_describe=False)
    own.register(SnapshotCollector(snapshot))
    return own
