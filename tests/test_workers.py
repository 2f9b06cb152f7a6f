"""
System test of download workers: a hub and two workers as separate
processes, one simulator, one Redis (the hub's embedded one, reached by the
workers through its socket).
"""

from __future__ import annotations

import json

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.amp.client import connect
from harbour.amp.server import read_token
from harbour.services.storage import STORAGE_FILE
from harbour.store.server import find_redis_server
from harbour.test.helpers import short_directory
from harbour.testing.simulator import Faults
from tests.processes import control_endpoint, harbour_command, spawn, start_harbour
from tests.test_mirror import LMP, Mirror, report_requests


class WorkerTests(TestCase):
    """
    Workers on other "hosts" share the hub's Redis and follow its bus.
    """

    timeout = 180

    def start_worker(self, mirror: Mirror, redis: str | None = None):
        """
        Start a worker of C{mirror}'s daemon on a "host" of its own, on the
        hub's embedded Redis unless given another's URL, C{redis}.
        """
        directory = short_directory(self)
        (directory / "data").mkdir()
        (directory / "data" / "amp.token").write_text((mirror.directory / "data" / "amp.token").read_text())
        worker = spawn(
            mirror.reactor,
            harbour_command(
                "--role",
                "worker",
                "--hub",
                f"unix:{mirror.directory / 'amp.sock'}",
                "--redis",
                redis or f"unix://{mirror.directory / 'data' / 'redis' / 'redis.sock'}?db=0",
                "--data-dir",
                str(directory / "data"),
            ),
            directory,
        )
        self.addCleanup(lambda: worker.ended.called or (worker.signal("TERM"), worker.ended)[1])
        return worker, directory

    async def test_hubAndTwoWorkers(self) -> None:
        """
        The mirror finishes with every file downloaded exactly once across
        the hub and both workers, which the hub's status lists with their
        tasks in flight; killing one worker mid-run loses nothing; a config
        saved on the hub reaches the surviving worker.
        """
        mirror = Mirror(self, Faults(latency=0.3), days=("2025-01-01", "2025-01-18"))
        await mirror.start()
        workers = [self.start_worker(mirror) for i in range(2)]
        for worker, ignored in workers:
            await worker.wait_for("connected to hub")
            await worker.wait_for("store ready")
        mirror.write("reports.toml", LMP)
        status = await mirror.until(lambda s: len(s["services"]["workers"]) == 3)
        self.assertTrue(all("in_flight" in w for w in status["services"]["workers"].values()))
        await mirror.until(
            lambda s: any(
                w["in_flight"]
                for name, w in s["services"]["workers"].items()
                if name != s["services"]["download"]["owner"]
            )
        )
        workers[0][0].signal("KILL")
        await workers[0][0].ended
        tasks = await mirror.until_finished(18, timeout=120)
        self.assertEqual(tasks, {"lmp": {"downloaded": 18}})
        fetched = [tuple(sorted(r[2].items())) for r in report_requests(mirror.simulator) if r[3] == "data"]
        self.assertEqual(len(set(fetched)), 18)
        self.assertLessEqual(len(fetched) - 18, 3, "only the killed worker's claims are fetched again")
        hosts = [mirror.directory / "data" / "reports"] + [d / "data" / "reports" for ignored, d in workers]
        files = [str(p.relative_to(root)) for root in hosts if root.exists() for p in root.rglob("*.zip")]
        self.assertEqual(len(files), 18, "each file downloaded and kept exactly once, on one host")
        self.assertEqual(len(set(files)), 18)
        self.assertTrue(
            any((workers[1][1] / "data" / "reports").rglob("*.zip")),
            "the surviving worker downloaded some of the files",
        )
        # A config saved on the hub reaches the worker over the hub's bus.
        manifest = (mirror.directory / "config" / "manifest.toml").read_text()
        mirror.write("manifest.toml", manifest.replace("concurrency = 3", "concurrency = 2"))
        await mirror.until(
            lambda s: sum(w["concurrency"] == 2 for w in s["services"]["workers"].values()) >= 2
        )

    async def test_killedWorkerWithoutHub(self) -> None:
        """
        With the hub stopped (its Redis, a server of its own, stays up), a
        worker killed mid-download loses nothing: the other worker sweeps
        its expired leases and downloads its files.
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        redis = spawn(
            reactor,
            [find_redis_server(), "--port", "0", "--unixsocket", str(directory / "redis.sock"), "--save", ""],
            directory,
        )
        self.addCleanup(lambda: redis.ended.called or (redis.signal("KILL"), redis.ended)[1])
        await redis.wait_for("ready to accept connections")
        url = f"unix://{directory / 'redis.sock'}?db=0"
        # Slow answers: the doomed worker is still downloading when killed.
        mirror = Mirror(self, Faults(latency=3.0), days=("2025-01-01", "2025-01-24"))
        mirror.daemon = start_harbour(mirror.reactor, mirror.directory, "--redis", url)
        await mirror.daemon.wait_for("control port listening")
        mirror.client = await connect(
            reactor, control_endpoint(mirror.directory), read_token(mirror.directory / "data" / "amp.token")
        )
        # The hub downloads nothing: only the workers do.
        await mirror.client.callRemote(commands.Pause, service="download")
        (doomed, ignored), (survivor, survivor_directory) = workers = [
            self.start_worker(mirror, url) for i in range(2)
        ]
        for worker, ignored in workers:
            await worker.wait_for("connected to hub")
        await survivor.wait_for("download paused, as on the hub")
        mirror.write("reports.toml", LMP)
        await mirror.until(lambda s: s["services"]["work"]["tasks"].get("lmp", {}).get("pending") == 24)
        await mirror.client.callRemote(commands.Resume, service="download")
        await survivor.wait_for("download resumed, as on the hub")
        await mirror.stop()
        mirror.daemon = None
        doomed.signal("KILL")
        await doomed.ended
        await survivor.wait_for("expired leases returned to pending")

        def files() -> set[str]:
            roots = [mirror.directory / "data" / "reports"] + [
                d / "data" / "reports" for ignored, d in workers
            ]
            return {str(p.relative_to(r)) for r in roots if r.exists() for p in r.rglob("*.zip")}

        for ignored in range(600):
            if len(files()) == 24:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(len(files()), 24, "every file downloaded, the dead worker's by the survivor")
        self.assertTrue(any((survivor_directory / "data" / "reports").rglob("*.zip")))

    async def test_pauseReachesWorkers(self) -> None:
        """
        C{harbourctl pause download} on the hub pauses the workers'
        downloads too, a worker that connects while the hub is paused
        starts paused, and C{resume} resumes them all: an operator steers
        the fleet from the hub.
        """
        mirror = Mirror(self, Faults(latency=0.3), days=("2025-01-01", "2025-01-04"))
        await mirror.start()
        await mirror.client.callRemote(commands.Pause, service="download")
        worker, ignored = self.start_worker(mirror)
        await worker.wait_for("connected to hub")
        mirror.write("reports.toml", LMP)

        def everyone(paused: bool):
            def check(status: dict) -> bool:
                workers = status["services"]["workers"].values()
                return len(workers) == 2 and all(w["paused"] is paused for w in workers)

            return check

        # The tasks are made as the configuration is read, which the
        # heartbeats need not wait for: both are waited for, and no task
        # may have been claimed meanwhile.
        status = await mirror.until(
            lambda s: everyone(paused=True)(s) and bool(s["services"]["work"]["tasks"])
        )
        self.assertEqual(status["services"]["work"]["tasks"], {"lmp": {"pending": 4}})
        await worker.wait_for("download paused, as on the hub")
        await mirror.client.callRemote(commands.Resume, service="download")
        await mirror.until(everyone(paused=False))
        self.assertEqual(await mirror.until_finished(4), {"lmp": {"downloaded": 4}})

    async def test_eachHostParsesItsOwnFiles(self) -> None:
        """
        With download directories of their own, the hub and a worker each
        parse the files they downloaded, at once: every file is parsed
        soon after the last download, none is taken by a host that does
        not have it (and given back for ten minutes), and each host's
        tables are those of its own files.
        """
        mirror = Mirror(self, Faults(latency=0.1), days=("2025-01-01", "2025-01-20"))
        await mirror.start()
        worker, directory = self.start_worker(mirror)
        await worker.wait_for("connected to hub")
        await worker.wait_for("store ready")
        mirror.write("reports.toml", LMP)
        await mirror.until_finished(20, timeout=120)
        await mirror.until(lambda s: s["services"]["tables"]["reports"]["lmp"]["parsed"] == 20)
        answer = await mirror.client.callRemote(commands.ListTasks, state="downloaded", offset=0, limit=100)
        tasks = json.loads(answer["tasks"])
        self.assertEqual([t["filename"] for t in tasks if t["parse_error"]], [])
        hosts = [mirror.directory / "data", directory / "data"]
        for data in hosts:
            storage = (data / "reports" / STORAGE_FILE).read_text().strip()
            zips = {str(p.relative_to(data / "reports")) for p in (data / "reports").rglob("*.zip")}
            self.assertEqual({t["filename"] for t in tasks if t["storage"] == storage}, zips)
            tables = {p.name for p in (data / "tables").rglob("*.parquet")}
            self.assertEqual(
                tables, {f"part-{name.split('/')[1].removesuffix('.zip')}.parquet" for name in zips}
            )
        self.assertTrue(any((directory / "data" / "reports").rglob("*.zip")), "the worker downloaded some")
