"""
System test of a large configuration: a real C{twistd harbour} configured
with 2,000 reports, whose configuration, status and manifest are each far
larger than one AMP value (65,535 bytes).
"""

from __future__ import annotations

import json
import socket

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.amp.client import all_requests, connect, status
from harbour.amp.server import read_token
from harbour.test.helpers import short_directory
from tests.processes import control_endpoint, program, save, spawn, start_harbour, stop_harbour, task_states

#: How many reports the configuration declares.
REPORTS = 2000


def reports_toml(names: list[str]) -> str:
    """
    @return: A C{[[reports]]} table for each name: a day-ahead load
        forecast, one request each over the one-day range.
    """
    return "".join(
        f'[[reports]]\nname = "{name}"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n' for name in names
    )


def closed_port() -> int:
    """
    @return: A local TCP port nothing listens on (it was free a moment ago).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class ScaleTests(TestCase):
    """
    Two thousand reports, end to end.
    """

    timeout = 120

    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.directory = short_directory(self)
        (self.directory / "config").mkdir()
        # No OASIS: this test is about the configuration, the tasks and the
        # answers, so downloads only fail, slowly, against a closed port.
        self.write(
            "manifest.toml",
            f'[manifest]\nbase_url = "http://127.0.0.1:{closed_port()}/oasisapi"\n'
            'start = "2025-01-01"\nend = "2025-01-01"\nfollow_publications = false\n'
            "[download]\nconcurrency = 1\nmin_request_interval = 5\n",
        )
        self.names = [f"r{i:04d}" for i in range(REPORTS)]
        self.write("reports.toml", reports_toml(self.names))
        self.daemon = start_harbour(reactor, self.directory)
        self.client = None
        self.addCleanup(lambda: stop_harbour(self.daemon, self.client))
        await self.daemon.wait_for("control port listening")
        token = read_token(self.directory / "data" / "amp.token")
        self.client = await connect(reactor, control_endpoint(self.directory), token)

    def write(self, name: str, text: str) -> None:
        save(self.directory / "config" / name, text)

    async def until_tasks(self, names: list[str], timeout: float = 40.0) -> dict:
        """
        Read C{Status} until every report of C{names} has its task.

        @return: That status document.
        """
        deadline = self.reactor.seconds() + timeout
        while True:
            document = await status(self.client)
            tasks = document["services"]["work"]["tasks"]
            if isinstance(tasks, dict) and all(sum(tasks.get(n, {}).values()) == 1 for n in names):
                return document
            if self.reactor.seconds() > deadline:
                counted = len(tasks) if isinstance(tasks, dict) else tasks
                raise AssertionError(f"{counted} reports with tasks\n" + self.daemon.output()[-3000:])
            await deferLater(self.reactor, 0.2, lambda: None)

    async def harbourctl(self, *args: str) -> str:
        """
        Run C{harbourctl} against the daemon; it must exit 0.

        @return: What it printed.
        """
        ctl = [
            program("harbourctl"),
            "--connect",
            control_endpoint(self.directory),
            "--token-file",
            str(self.directory / "data" / "amp.token"),
            *args,
        ]
        process = spawn(self.reactor, ctl, self.directory)
        self.assertEqual(await process.ended, 0, process.output()[-3000:])
        return process.output()

    async def test_twoThousandReports(self) -> None:
        """
        Every report's task is created; C{harbourctl status} and C{status
        --json} show all of them; C{Reports} pages through every request,
        the same as C{harbourctl manifest} computes offline; a saved change
        reaches the daemon; and nothing was refused on the way.
        """
        document = await self.until_tasks(self.names)
        self.assertEqual(task_states(document)[0], REPORTS)
        self.assertEqual(document["services"]["manifest"]["reports"], REPORTS)
        self.assertEqual(document["services"]["config"]["errors"], [])

        printed = json.loads(await self.harbourctl("status", "--json"))
        self.assertEqual(sorted(printed["services"]["work"]["tasks"]), self.names)
        table = [line.split() for line in (await self.harbourctl("status")).splitlines()]
        self.assertEqual(sorted(row[0] for row in table if row and row[0] in self.names), self.names)

        requests = await all_requests(self.client)
        self.assertEqual(sorted(r["report"] for r in requests), self.names)
        offline = await self.harbourctl("manifest", "--config-dir", str(self.directory / "config"))
        self.assertEqual(sorted(offline.split()), sorted(r["url"] for r in requests))

        # One report replaced: the daemon follows the paged topic.
        changed = self.names[:-1] + ["added"]
        self.write("reports.toml", reports_toml(changed))
        await self.until_tasks(["added"])
        self.assertIn("nothing changed", await self.harbourctl("reload"))

        output = self.daemon.output()
        self.assertNotIn("Traceback", output)
        self.assertNotIn("config error", output)
        self.assertIn(f"{REPORTS} reports in", output)
