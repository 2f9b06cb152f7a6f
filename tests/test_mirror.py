"""
System tests of the mirror: a real C{twistd harbour} with its embedded
redis-server downloads from the OASIS simulator (running in the test
process, on 127.0.0.1) through crashes and outages.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import treq
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.amp.client import connect
from harbour.amp.server import read_token
from harbour.oasis.classify import DATA, classify
from harbour.processes import process_alive
from harbour.services.files import is_bookkeeping
from harbour.test.helpers import short_directory
from harbour.testing.simulator import Faults, OasisSimulator
from tests.processes import control_endpoint, redis_started, save, start_harbour, stop_harbour, task_states

LMP = (
    '[[reports]]\nname = "lmp"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\nresultformat = "csv"\n'
    'params = { grp_type = "ALL_APNODES" }\n'
)
LOAD = '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\nwindow = "1d"\n'
GROUP = '[[reports]]\nname = "group"\ngroupid = "DAM_LMP_GRP"\n'


def report_requests(simulator: OasisSimulator) -> list:
    """
    @return: The simulator's requests for report data, leaving out those
        for the publications log and schedule.
    """
    return [r for r in simulator.requests if not r[2].get("queryname", "").startswith("ATL_PUB")]


class Mirror:
    """
    A simulator, a configuration directory and a daemon mirroring one into
    the other.
    """

    def __init__(
        self,
        testcase: TestCase,
        faults: Faults = Faults(),
        days=("2025-01-01", "2025-01-10"),
        lease: int = 5,
        manifest: str = "",
        **simulator,
    ) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.testcase = testcase
        simulator.setdefault("last_day", datetime.date(2025, 1, 31))
        self.simulator = OasisSimulator(reactor, seed=11, faults=faults, **simulator)
        port = reactor.listenTCP(0, self.simulator.site(), interface="127.0.0.1")
        testcase.addCleanup(port.stopListening)
        self.directory = short_directory(testcase)
        (self.directory / "config").mkdir()
        self.write(
            "manifest.toml",
            (
                f'[manifest]\nbase_url = "http://127.0.0.1:{port.getHost().port}/oasisapi"\n'
                f"start = {days[0]}\nend = {days[1]}\n{manifest}"
                f"[work]\nlease_seconds = {lease}\nretry_base = 0.05\nretry_cap = 0.5\nmax_attempts = 20\n"
                "[download]\nconcurrency = 3\nmin_request_interval = 0\nidle_timeout = 5\n"
            ),
        )
        self.daemon = None
        self.client = None
        testcase.addCleanup(self.stop)

    def write(self, name: str, text: str) -> None:
        save(self.directory / "config" / name, text)

    async def start(self) -> None:
        self.daemon = start_harbour(self.reactor, self.directory)
        self.redis_pid = await redis_started(self.daemon)
        await self.daemon.wait_for("store ready")
        await self.daemon.wait_for("control port listening")
        token = read_token(self.directory / "data" / "amp.token")
        self.client = await connect(self.reactor, control_endpoint(self.directory), token)

    async def kill(self) -> None:
        self.client.transport.loseConnection()
        self.daemon.signal("KILL")
        await self.daemon.ended

    async def stop(self) -> None:
        await stop_harbour(self.daemon, self.client)

    async def status(self) -> dict:
        return json.loads((await self.client.callRemote(commands.Status))["status"])

    async def until(self, predicate, timeout: float = 60.0) -> dict:
        """
        Read C{Status} until C{predicate(status)} holds (failing after
        C{timeout} seconds); return that status.
        """
        deadline = self.reactor.seconds() + timeout
        while True:
            status = await self.status()
            if predicate(status):
                return status
            if self.reactor.seconds() > deadline:
                raise AssertionError(
                    f"not reached in {timeout} s; status: {json.dumps(status)}\n"
                    + self.daemon.output()[-3000:]
                )
            await deferLater(self.reactor, 0.1, lambda: None)

    async def until_finished(self, expected: int, timeout: float = 60.0) -> dict:
        """
        Wait until C{expected} tasks exist and all are in a final state.
        """
        status = await self.until(lambda s: task_states(s) == (expected, expected), timeout)
        return status["services"]["work"]["tasks"]

    def files(self) -> list[Path]:
        root = self.directory / "data" / "reports"
        return sorted(p for p in root.rglob("*") if p.is_file() and not is_bookkeeping(p))

    async def check_files(self, testcase: TestCase, expected: int) -> None:
        """
        Exactly C{expected} files, all final names, each a valid zip equal
        to the simulator's answer for its URL.
        """
        files = self.files()
        testcase.assertEqual([p for p in files if p.name.startswith(".")], [])
        testcase.assertEqual(len(files), expected)
        self.simulator.faults = Faults()  # compare with the clean answer
        page = json.loads((await self.client.callRemote(commands.Reports, offset=0, limit=500))["urls"])
        by_name = {entry["filename"]: entry["url"] for entry in page}
        for path in files:
            testcase.assertEqual(classify(path).kind, DATA, path)
            relative = str(path.relative_to(self.directory / "data" / "reports"))
            answer = await treq.content(await treq.get(by_name[relative], persistent=False))
            testcase.assertEqual(path.read_bytes(), answer, relative)


class MirrorTests(TestCase):
    """
    The mirror, end to end.
    """

    timeout = 180

    async def test_threeReportsTenDays(self) -> None:
        """
        Three reports (CSV, XML, GroupZip) over ten days are mirrored to
        completion; every file is the simulator's bytes.
        """
        mirror = Mirror(self)
        mirror.write("reports.toml", LMP + LOAD + GROUP)
        await mirror.start()
        tasks = await mirror.until_finished(30)
        self.assertEqual(
            tasks, {"group": {"downloaded": 10}, "lmp": {"downloaded": 10}, "load": {"downloaded": 10}}
        )
        requested = [r for r in report_requests(mirror.simulator) if r[1].endswith("SingleZip")]
        self.assertEqual(len(requested), 20, "each SingleZip URL fetched once")
        await mirror.check_files(self, 30)

    async def test_savedConfigAddsReport(self) -> None:
        """
        Saving a config that adds a report makes its tasks appear and
        finish, with no restart.
        """
        mirror = Mirror(self, days=("2025-01-01", "2025-01-03"))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until_finished(3)
        mirror.write("reports.toml", LMP + LOAD)
        tasks = await mirror.until_finished(6)
        self.assertEqual(tasks["load"], {"downloaded": 3})
        self.assertNotIn("Traceback", mirror.daemon.output())

    async def test_killedMidDownload(self) -> None:
        """
        C{kill -9} at several points mid-download, then a restart: every
        task completes, none is lost or stuck in C{downloading}, and no
        partial file ever carries a final name.
        """
        mirror = Mirror(self, Faults(latency=0.3), days=("2025-01-01", "2025-01-12"))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        for _crash in range(2):
            await mirror.until(lambda s: s["services"]["download"]["in_flight"])
            for path in mirror.files():
                if not path.name.startswith("."):
                    self.assertEqual(classify(path).kind, DATA, path)
            await mirror.kill()
            await mirror.start()
        tasks = await mirror.until_finished(12, timeout=90)
        self.assertEqual(tasks, {"lmp": {"downloaded": 12}})
        await mirror.check_files(self, 12)

    async def test_redisRestartedMidRun(self) -> None:
        """
        The embedded redis-server killed mid-run is restarted, and the run
        completes.
        """
        mirror = Mirror(self, Faults(latency=0.2), days=("2025-01-01", "2025-01-12"))
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until(lambda s: s["services"]["download"]["in_flight"])
        os.kill(mirror.redis_pid, 9)
        await mirror.daemon.wait_for("restarting in")
        await mirror.daemon.wait_for("store.connected")
        self.assertFalse(process_alive(mirror.redis_pid))
        tasks = await mirror.until_finished(12, timeout=90)
        self.assertEqual(tasks, {"lmp": {"downloaded": 12}})
        await mirror.check_files(self, 12)

    async def test_faultsEndInTheRightState(self) -> None:
        """
        Under every simulator fault at once, good reports end downloaded
        (after retries), days without data end empty, and a wrong report
        fails with OASIS's own description.
        """
        faults = Faults(
            error_rate=0.2,
            reset_rate=0.2,
            truncate_rate=0.2,
            trickle_rate=0.2,
            retry_after=0,
            trickle_bytes=2048,
        )
        mirror = Mirror(self, faults, days=("2025-01-20", "2025-02-02"))
        mirror.write(
            "reports.toml",
            LMP + '[[reports]]\nname = "bad"\nqueryname = "NOPE"\n'
            'market_run_id = "DAM"\nstart = 2025-01-27\nend = 2025-01-27\n',
        )
        await mirror.start()
        tasks = await mirror.until_finished(15, timeout=90)
        self.assertEqual(tasks["lmp"], {"downloaded": 12, "empty": 2})
        self.assertEqual(tasks["bad"], {"failed": 1})
        outcomes = {r[3] for r in mirror.simulator.requests}
        self.assertTrue({"503", "reset", "truncated", "trickle"} <= outcomes, outcomes)
        self.assertIn("OASIS error 1005: Report name does not exist", mirror.daemon.output())
        await mirror.check_files(self, 12)

    async def test_badConfigurationAtStart(self) -> None:
        """
        Started with a configuration that has errors, the tasks of an
        earlier run still pending, harbour downloads nothing (the defaults
        would put files in C{reports}, not the configured directory) and
        says it waits for a valid configuration; saved right, the tasks are
        downloaded into the configured directory, and none anywhere else.
        """
        mirror = Mirror(self, Faults(latency=2.0), days=("2025-01-01", "2025-01-06"))
        manifest = mirror.directory / "config" / "manifest.toml"
        good = manifest.read_text().replace("[download]\n", '[download]\ndirectory = "mirror"\n')
        mirror.write("manifest.toml", good)
        mirror.write("reports.toml", LMP)
        await mirror.start()
        await mirror.until(lambda s: s["services"]["download"]["in_flight"])
        # Stopped mid-download: the downloads under way go back to pending.
        await mirror.stop()
        mirror.simulator.faults = Faults()
        mirror.write("manifest.toml", good.replace("lease_seconds", "lease_second"))
        asked = len(report_requests(mirror.simulator))
        await mirror.start()
        status = await mirror.until(lambda s: s["services"]["config"]["errors"])
        self.assertIn("work.lease_second", status["services"]["config"]["errors"][0])
        self.assertEqual(status["services"]["download"]["waiting"], "a valid configuration")
        self.assertEqual(len(report_requests(mirror.simulator)), asked)
        mirror.write("manifest.toml", good)
        tasks = await mirror.until_finished(6)
        self.assertEqual(tasks, {"lmp": {"downloaded": 6}})
        data = mirror.directory / "data"
        mirrored = sorted(p for p in (data / "mirror").rglob("*.zip") if not is_bookkeeping(p))
        self.assertEqual(len(mirrored), 6)
        self.assertEqual(sorted(p for p in data.rglob("*.zip") if not is_bookkeeping(p)), mirrored)
        self.assertFalse((data / "reports").exists())
