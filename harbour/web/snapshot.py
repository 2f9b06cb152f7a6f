"""
The picture of a running harbour that the metrics, the health checks and
the status page are drawn from.

A L{Snapshot} is immutable and replaced whole, so a Prometheus scrape in
another thread reads a consistent picture without touching the reactor's
state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attr

from harbour.web.health import Health


@attr.s(frozen=True, auto_attribs=True)
class ReportView:
    """
    One report as the page shows it.

    @ivar counts: Its tasks by state.
    @ivar last_success: POSIX time of its last download or empty answer.
    @ivar last_error: (POSIX time, error) of its last failure.
    @ivar days: Its trading days by day state (a L{harbour.web.coverage}
        code).
    """

    name: str
    health: Health
    counts: Mapping[str, int] = attr.ib(factory=dict)
    last_success: float | None = None
    last_error: tuple[float, str] | None = None
    days: Mapping[str, int] = attr.ib(factory=dict)


@attr.s(frozen=True, auto_attribs=True)
class Snapshot:
    """
    Everything the HTTP side shows, at one moment.

    @ivar taken: POSIX time it was taken.
    @ivar version: harbour's version.
    @ivar requests: C{{report: {outcome: count}}} since start.
    @ivar retries: C{{report: {reason: count}}} since start.
    @ivar ready: Why the daemon is not ready, or C{""} if it is.
    @ivar workers: The C{workers} service's status: C{{owner: heartbeat}}.
    @ivar publications: The C{publications} service's status.
    @ivar download: The C{download} service's status.
    @ivar config_errors: The configuration's current problems.
    @ivar redis_connected: Whether the store is connected to Redis.
    @ivar redis_failing: While the store is connected but an outage is
        under way, the last error of it; C{""} otherwise.
    @ivar redis_error: The store's last error as C{Status} last said it
        (kept after the outage it ended, so of use while Redis is not up
        only).
    @ivar refresh_error: While the refreshes of the tasks fail, C{{"since":
        ISO time of the first failure of the run, "error": the last one's
        message}}, as the C{work} service's C{Status} says; L{None}
        otherwise.
    @ivar laying_out: Whether the coverage map is being laid out anew
        (the map shown meanwhile is the one laid out before, if any).
    """

    taken: float
    version: str
    reports: Sequence[ReportView] = ()
    requests: Mapping[str, Mapping[str, int]] = attr.ib(factory=dict)
    fetched_bytes: Mapping[str, int] = attr.ib(factory=dict)
    retries: Mapping[str, Mapping[str, int]] = attr.ib(factory=dict)
    rows_written: Mapping[str, int] = attr.ib(factory=dict)
    table_failures: Mapping[str, int] = attr.ib(factory=dict)
    config_successful: bool | None = None
    config_success_at: float | None = None
    config_errors: Sequence[str] = ()
    redis_connected: bool = False
    redis_failing: str = ""
    redis_error: str = ""
    refresh_error: Mapping[str, str] | None = None
    laying_out: bool = False
    redis: str = ""
    ready: str = "starting"
    workers: Mapping[str, Mapping[str, Any]] = attr.ib(factory=dict)
    publications: Mapping[str, Any] = attr.ib(factory=dict)
    download: Mapping[str, Any] = attr.ib(factory=dict)
    uptime: float = 0.0

    @property
    def redis_up(self) -> bool:
        """
        Whether Redis answers: the store is connected and no outage is
        under way (a Redis that refuses writes, C{OOM} or C{MISCONF}, is
        connected and answers nothing that matters).
        """
        return self.redis_connected and not self.redis_failing

    @property
    def publications_mode(self) -> str:
        """
        How the publications log is followed (C{off} when it is not).
        """
        mode = self.publications.get("mode")
        return mode if isinstance(mode, str) else "off"
