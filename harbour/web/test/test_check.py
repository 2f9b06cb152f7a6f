"""
Tests of the health in C{harbourctl status}: the column, and C{--check}'s
exit codes and line.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from harbour.test.helpers import run_status


def services(**health: dict[str, str]) -> dict[str, Any]:
    """
    @return: C{Status} services with Redis up and C{health} per report.
    """
    return {
        "store": {"connected": True, "redis": "unix:///r.sock"},
        "config": {"errors": []},
        "work": {"tasks": {name: {"pending": 1} for name in health}},
        "monitor": {"reports": health},
    }


class CheckTests(SynchronousTestCase):
    """
    C{harbourctl status --check}.
    """

    def test_ok(self) -> None:
        """
        All well: exit 0 and an OK line.
        """
        code, text = run_status(services(lmp={"health": "ok", "why": ""}), "--check")
        self.assertEqual((code, text), (0, "HARBOUR OK - 1 reports: 1 ok\n"))

    def test_warning(self) -> None:
        """
        A report behind: exit 1, saying which and why.
        """
        behind = {"health": "behind", "why": "2025-06-14 not mirrored 7.0 h after it ended"}
        code, text = run_status(services(lmp=behind, load={"health": "idle", "why": ""}), "--check")
        self.assertEqual(code, 1)
        self.assertEqual(
            text,
            "HARBOUR WARNING - lmp behind (2025-06-14 not mirrored 7.0 h after it ended); "
            "2 reports: 1 behind, 1 idle\n",
        )

    def test_critical(self) -> None:
        """
        A failing report: exit 2.
        """
        failing = {"health": "failing", "why": "5 of 5 tasks failed in the last 1 h"}
        code, text = run_status(services(lmp=failing), "--check")
        self.assertEqual(code, 2)
        self.assertTrue(text.startswith("HARBOUR CRITICAL - lmp failing"))


class ColumnTests(SynchronousTestCase):
    """
    The health column of C{harbourctl status}.
    """

    def test_column(self) -> None:
        """
        Each report's health is in its row, and why it is not ok below.
        """
        retrying = {"health": "retrying", "why": "2 retries in the last 1 h"}
        code, text = run_status(services(lmp=retrying, load={"health": "ok", "why": ""}))
        self.assertEqual(code, 0)
        rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
        self.assertEqual(rows["report"][:3], ["report", "health", "pending"])
        self.assertEqual(rows["lmp"][:3], ["lmp", "retrying", "1"])
        self.assertEqual(rows["load"][:2], ["load", "ok"])
        self.assertIn("lmp: retrying: 2 retries in the last 1 h", text)
