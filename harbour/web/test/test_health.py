"""
Tests of L{harbour.web.health}: each state at its thresholds, and the
monitoring plugin's verdict.
"""

from __future__ import annotations

import attr
from twisted.trial.unittest import SynchronousTestCase

from harbour.web.health import (
    BEHIND,
    FAILING,
    IDLE,
    OK,
    RETRYING,
    Health,
    ReportActivity,
    Thresholds,
    assess,
    verdict,
)

NOW = 1_750_000_000.0
HOUR = 3600.0


class AssessTests(SynchronousTestCase):
    """
    L{assess} with the default thresholds.
    """

    def test_ok(self) -> None:
        """
        A report with work in hand and nothing wrong is C{ok}.
        """
        activity = ReportActivity(counts={"pending": 3, "downloaded": 5}, ended_recently=5, last_success=NOW)
        self.assertEqual(assess(activity, NOW), Health(OK, ""))

    def test_failingAtThreshold(self) -> None:
        """
        Three failures that are half of the hour's outcomes make C{failing};
        two do not.
        """
        failing = assess(ReportActivity(failed_recently=3, ended_recently=6), NOW)
        self.assertEqual(failing, Health(FAILING, "3 of 6 tasks failed in the last 1 h"))
        self.assertEqual(assess(ReportActivity(failed_recently=2, ended_recently=2), NOW).state, RETRYING)

    def test_failingNeedsShare(self) -> None:
        """
        Failures that are under half of the hour's outcomes are C{retrying}.
        """
        activity = ReportActivity(counts={"pending": 1}, failed_recently=3, ended_recently=7)
        self.assertEqual(assess(activity, NOW), Health(RETRYING, "3 failed in the last 1 h"))

    def test_behindAfterThreshold(self) -> None:
        """
        The newest day unmirrored more than six hours after it ended is
        C{behind}; at six hours it is not yet.
        """
        activity = ReportActivity(
            counts={"pending": 1}, unmirrored_since=NOW - 7 * HOUR, newest_day="2025-06-14"
        )
        self.assertEqual(
            assess(activity, NOW), Health(BEHIND, "2025-06-14 not mirrored 7.0 h after it ended")
        )
        on_time = attr.evolve(activity, unmirrored_since=NOW - 6 * HOUR)
        self.assertEqual(assess(on_time, NOW).state, OK)

    def test_retrying(self) -> None:
        """
        A retry in the last hour, or failed tasks left to retry, make
        C{retrying}.
        """
        self.assertEqual(
            assess(ReportActivity(counts={"pending": 1}, retried_recently=2), NOW),
            Health(RETRYING, "2 retries in the last 1 h"),
        )
        self.assertEqual(
            assess(ReportActivity(counts={"failed": 4}), NOW), Health(RETRYING, "4 failed tasks to retry")
        )

    def test_idle(self) -> None:
        """
        Nothing to fetch and nothing fetched for a day is C{idle}; a fetch
        within the day is C{ok}.
        """
        done = {"downloaded": 10}
        self.assertEqual(assess(ReportActivity(counts=done), NOW), Health(IDLE, "nothing to fetch"))
        quiet = ReportActivity(counts=done, last_success=NOW - 25 * HOUR)
        self.assertEqual(assess(quiet, NOW), Health(IDLE, "nothing to fetch; last fetch 25 h ago"))
        self.assertEqual(assess(ReportActivity(counts=done, last_success=NOW - HOUR), NOW).state, OK)

    def test_thresholdsChosen(self) -> None:
        """
        Other thresholds move the boundaries.
        """
        strict = Thresholds(failing_min=1, behind_after=60.0)
        self.assertEqual(
            assess(ReportActivity(failed_recently=1, ended_recently=1), NOW, strict).state, FAILING
        )
        late = ReportActivity(counts={"pending": 1}, unmirrored_since=NOW - 61.0, newest_day="2025-06-14")
        self.assertEqual(assess(late, NOW, strict).state, BEHIND)

    def test_badThresholds(self) -> None:
        """
        Thresholds that make no sense are refused when built.
        """
        self.assertRaises(ValueError, Thresholds, failing_share=0.0)
        self.assertRaises(ValueError, Thresholds, failing_min=0)
        self.assertRaises(ValueError, Health, "sleepy")


class VerdictTests(SynchronousTestCase):
    """
    L{verdict}: a C{Status} document as a monitoring plugin's exit code
    and line.
    """

    def services(self, **reports: str) -> dict[str, object]:
        """
        @return: C{Status} services with Redis up, no configuration errors
            and C{reports}' health states.
        """
        return {
            "store": {"connected": True},
            "config": {"errors": []},
            "monitor": {"reports": {name: {"health": state, "why": ""} for name, state in reports.items()}},
        }

    def test_ok(self) -> None:
        """
        Every report ok or idle: 0.
        """
        judged = verdict(self.services(lmp=OK, load=IDLE))
        self.assertEqual((judged.code, judged.summary), (0, "HARBOUR OK - 2 reports: 1 idle, 1 ok"))

    def test_warning(self) -> None:
        """
        A report behind: 1, naming it.
        """
        judged = verdict(self.services(lmp=BEHIND, load=OK))
        self.assertEqual(judged.code, 1)
        self.assertEqual(judged.summary, "HARBOUR WARNING - lmp behind; 2 reports: 1 behind, 1 ok")

    def test_critical(self) -> None:
        """
        A failing report or Redis down: 2, the worst named first.
        """
        services = self.services(lmp=RETRYING, load=FAILING)
        services["store"] = {"connected": False, "last_error": "Connection refused"}
        judged = verdict(services)
        self.assertEqual(judged.code, 2)
        self.assertTrue(
            judged.summary.startswith(
                "HARBOUR CRITICAL - Redis not connected (Connection refused); load failing; lmp retrying"
            ),
            judged.summary,
        )

    def test_redisFailing(self) -> None:
        """
        A store connected while its outage is under way (a Redis refusing
        every write): 2, with the store's last error.
        """
        services = self.services(lmp=OK)
        services["store"] = {"connected": True, "outage_since": 1.0, "last_error": "OOM command not allowed"}
        judged = verdict(services)
        self.assertEqual(
            (judged.code, judged.summary),
            (2, "HARBOUR CRITICAL - Redis commands fail (OOM command not allowed); 1 reports: 1 ok"),
        )
        services["store"] = {"connected": True, "outage_since": None, "last_error": "OOM command not allowed"}
        self.assertEqual(verdict(services).code, 0)

    def test_configErrors(self) -> None:
        """
        Configuration errors are a warning.
        """
        services = self.services(lmp=OK)
        services["config"] = {"errors": ["work.toml:2: max_attempts: must be a whole number"]}
        self.assertEqual(verdict(services).code, 1)

    def test_refreshFailing(self) -> None:
        """
        Refreshes failing are a warning, saying since when and why; none
        failing says nothing of them.
        """
        services = self.services(lmp=OK)
        services["work"] = {"refresh_error": {"error": "ERR boom", "since": "2026-11-24T10:00:00Z"}}
        judged = verdict(services)
        self.assertEqual(
            (judged.code, judged.summary),
            (
                1,
                "HARBOUR WARNING - refreshes fail since 2026-11-24T10:00:00Z (ERR boom); 1 reports: 1 ok",
            ),
        )
        services["work"] = {"refresh_error": None}
        self.assertEqual(verdict(services).code, 0)
