"""
Tests of C{examples/monitoring}: the Grafana dashboard is JSON, and it and
the alert rules name only metrics harbour exposes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from harbour.web.health import OK, Health
from harbour.web.metrics import registry
from harbour.web.snapshot import ReportView, Snapshot

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "monitoring"


def exposed() -> set[str]:
    """
    @return: The name of every sample harbour exposes for one busy report.
    """
    shot = Snapshot(
        1.0,
        "1",
        reports=[ReportView("lmp", Health(OK), last_success=1.0)],
        requests={"lmp": {"downloaded": 1}},
        fetched_bytes={"lmp": 1},
        retries={"lmp": {"timeout": 1}},
        rows_written={"lmp": 1},
        table_failures={"lmp": 1},
        config_success_at=1.0,
    )
    text = generate_latest(registry(lambda: shot)).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


class ExampleTests(SynchronousTestCase):
    """
    The monitoring examples against the metrics.
    """

    def setUp(self) -> None:
        if not EXAMPLES.is_dir():
            raise SkipTest("examples/monitoring is not beside this installation")

    def test_namesExist(self) -> None:
        """
        Every C{harbour_} name in the dashboard and the rules is exposed.
        """
        dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
        expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
        rules = (EXAMPLES / "alerts.yml").read_text()
        used = set(re.findall(r"harbour_[a-z_]+", " ".join(expressions) + rules))
        self.assertGreater(len(used), 10)
        self.assertEqual(used - exposed(), set())
