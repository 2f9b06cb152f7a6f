"""
C{make soak}: mirror the OASIS simulator for a fixed time while faults are
injected on a schedule, then audit the result.

    python -m benchmarks.soak --seconds 600 --every 15

Faults, in turn: C{kill -9} of harbour (then a restart), a kill of its
redis-server (harbour restarts it), the simulator's fault modes switched on
or off, a malformed configuration save (then the good one back), bad AMP
commands and a wrong token.  With each, a configuration save adds a report,
so that new work keeps arriving.  After the time is up, faults stop, the mirror
is left to finish, and the table reports what was injected and whether
anything was lost: every task must be final, every file under a final name
must be the simulator's bytes for its URL, and no file may exist twice.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import treq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater, react

from harbour.amp import commands
from harbour.amp.client import connect
from harbour.amp.server import read_token
from harbour.errors import BadRequest, Unauthorized
from harbour.oasis.classify import DATA, classify
from harbour.services.files import is_record
from harbour.store.tasks import FINAL_STATES
from harbour.testing.simulator import Faults, OasisSimulator
from tests.processes import control_endpoint, redis_started, save, start_harbour, stop_harbour

FAULTY = Faults(
    latency=0.05,
    error_rate=0.1,
    reset_rate=0.05,
    truncate_rate=0.05,
    trickle_rate=0.05,
    retry_after=0,
    trickle_bytes=4096,
)
CALM = Faults(latency=0.05)


class Soak:
    """
    One soak run: a simulator, a configuration, a daemon, and the log of
    what was done to them.
    """

    def __init__(self, reactor, directory: Path, reports: int, days: int) -> None:
        self.reactor = reactor
        self.directory = directory
        self.simulator = OasisSimulator(reactor, seed=7, faults=CALM, last_day=datetime.date(2025, 12, 31))
        self.port = reactor.listenTCP(0, self.simulator.site(), interface="127.0.0.1")
        (directory / "config").mkdir(parents=True)
        last = datetime.date(2025, 12, 31)
        self.manifest = (
            f'[manifest]\nbase_url = "http://127.0.0.1:{self.port.getHost().port}/oasisapi"\n'
            f"start = {last - datetime.timedelta(days=days - 1)}\nend = {last}\n"
            "[work]\nlease_seconds = 5\nretry_base = 0.2\nretry_cap = 2\nmax_attempts = 30\n"
            "[download]\nconcurrency = 4\nmin_request_interval = 0\nidle_timeout = 5\n"
        )
        save(directory / "config" / "manifest.toml", self.manifest)
        self.reports = reports
        self.save_reports()
        self.injected: Counter = Counter()
        self.bad_inputs: list[tuple[str, str]] = []
        self.daemon = None
        self.client = None

    def save_reports(self) -> None:
        save(
            self.directory / "config" / "reports.toml",
            "".join(
                f'[[reports]]\nname = "r{i:02d}"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\n'
                f'resultformat = "csv"\nwindow = "1d"\nparams = {{ node = "N{i}" }}\n'
                for i in range(self.reports)
            ),
        )

    async def start(self) -> None:
        self.daemon = start_harbour(self.reactor, self.directory)
        self.redis_pid = await redis_started(self.daemon)
        await self.daemon.wait_for("store ready")
        await self.daemon.wait_for("control port listening")
        self.client = await connect(self.reactor, control_endpoint(self.directory), self.token())

    def token(self) -> str:
        return read_token(self.directory / "data" / "amp.token")

    async def status(self) -> dict:
        return json.loads((await self.client.callRemote(commands.Status))["status"])

    async def kill_harbour(self) -> None:
        self.client.transport.loseConnection()
        self.daemon.signal("KILL")
        await self.daemon.ended
        await self.start()

    async def kill_redis(self) -> None:
        after = len(self.daemon.lines)
        os.kill(self.redis_pid, 9)
        line = await self.daemon.wait_for(" ready on ", after=after)
        self.redis_pid = int(line.split("redis-server ")[1].split()[0])

    async def toggle_faults(self) -> None:
        self.simulator.faults = CALM if self.simulator.faults == FAULTY else FAULTY

    async def malformed_config(self) -> None:
        after = len(self.daemon.lines)
        save(
            self.directory / "config" / "manifest.toml",
            self.manifest.replace("concurrency = 4", "concurrency = ["),
        )
        await self.daemon.wait_for("config error", after=after)
        kept = (await self.status())["services"]["download"]["concurrency"] == 4
        self.bad_inputs.append(
            ("malformed TOML save", "config.error, old config kept" if kept else "CHANGED")
        )
        save(self.directory / "config" / "manifest.toml", self.manifest)

    async def bad_commands(self) -> None:
        for name, call, expected in [
            (
                "ListTasks state=bogus",
                lambda: self.client.callRemote(commands.ListTasks, state="bogus", offset=0, limit=1),
                BadRequest,
            ),
            (
                "ListTasks limit=10000",
                lambda: self.client.callRemote(commands.ListTasks, state="failed", offset=0, limit=10_000),
                BadRequest,
            ),
            (
                "Publish of bad JSON",
                lambda: self.client.callRemote(commands.Publish, topic="x", payload="{"),
                BadRequest,
            ),
        ]:
            try:
                await call()
                outcome = "ACCEPTED"
            except expected as e:
                outcome = f"refused: {e}"
            self.bad_inputs.append((name, outcome[:60]))
        try:
            stranger = await connect(self.reactor, control_endpoint(self.directory), "wrong-token")
            stranger.transport.loseConnection()
            self.bad_inputs.append(("wrong token", "ACCEPTED"))
        except Unauthorized:
            self.bad_inputs.append(("wrong token", "refused: UNAUTHORIZED"))

    async def run(self, seconds: float, every: float) -> None:
        faults = itertools.cycle(
            [
                ("kill -9 harbour", self.kill_harbour),
                ("simulator faults switched", self.toggle_faults),
                ("redis-server killed", self.kill_redis),
                ("malformed config saved", self.malformed_config),
                ("bad commands and token", self.bad_commands),
            ]
        )
        deadline = self.reactor.seconds() + seconds
        while self.reactor.seconds() + every < deadline:
            await deferLater(self.reactor, every, lambda: None)
            name, inject = next(faults)
            await inject()
            self.injected[name] += 1
            # New work keeps arriving, as new trading days do.
            self.reports += 1
            self.save_reports()
            self.injected["config saved adding a report"] += 1
            print(f"  {int(deadline - self.reactor.seconds()):>5d} s left: {name}", flush=True)
        self.simulator.faults = CALM

    async def finish(self, patience: float) -> dict:
        deadline = self.reactor.seconds() + patience
        while True:
            tasks = (await self.status())["services"]["work"]["tasks"]
            states = Counter()
            for per_report in tasks.values():
                states.update(per_report)
            total = (await self.client.callRemote(commands.Reports, offset=0, limit=1))["total"]
            if sum(states.values()) == total and sum(states[s] for s in FINAL_STATES) == total:
                return {"total": total, "states": dict(states)}
            if self.reactor.seconds() > deadline:
                return {"total": total, "states": dict(states), "unfinished": True}
            await deferLater(self.reactor, 1, lambda: None)

    async def audit(self) -> dict:
        """
        Compare the files on disk with the manifest and the simulator.
        """
        self.simulator.faults = Faults()
        urls: dict[str, str] = {}
        offset = 0
        while True:
            answer = await self.client.callRemote(commands.Reports, offset=offset, limit=500)
            page = json.loads(answer["urls"])
            urls.update({entry["filename"]: entry["url"] for entry in page})
            offset += len(page)
            if not page or offset >= answer["total"]:
                break
        root = self.directory / "data" / "reports"
        files = [p for p in root.rglob("*") if p.is_file() and not is_record(p)]
        final = [p for p in files if not p.name.startswith(".")]
        names = [str(p.relative_to(root)) for p in final]
        partial = 0
        for path, name in zip(final, names):
            if classify(path).kind != DATA or name not in urls:
                partial += 1
                continue
            expected = await treq.content(await treq.get(urls[name], persistent=False))
            partial += path.read_bytes() != expected
        return {
            "files": len(final),
            "duplicates": len(names) - len(set(names)) + sum(1 for n in names if n not in urls),
            "partial": partial,
            "temporary_left": len(files) - len(final),
        }

    async def stop(self) -> None:
        await stop_harbour(self.daemon, self.client)
        await self.port.stopListening()


def table(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


async def main(reactor, seconds: float, every: float, reports: int, days: int) -> int:
    directory = Path(tempfile.mkdtemp(prefix="hb-soak-"))
    soak = Soak(reactor, directory, reports, days)
    try:
        await soak.start()
        print(
            f"soak: {reports} reports x {days} days for {seconds:g} s, a fault every {every:g} s", flush=True
        )
        await soak.run(seconds, every)
        outcome = await soak.finish(patience=max(120.0, seconds))
        requests = len(soak.simulator.requests)
        audit = await soak.audit()
    finally:
        await soak.stop()
        shutil.rmtree(directory, ignore_errors=True)
    states = outcome["states"]
    lost = outcome["total"] - sum(states.get(s, 0) for s in FINAL_STATES)
    print("\nfaults injected")
    table([(name, str(count)) for name, count in sorted(soak.injected.items())])
    print("\nresult")
    table(
        [
            ("tasks", str(outcome["total"])),
            ("tasks completed", ", ".join(f"{states.get(s, 0)} {s}" for s in FINAL_STATES)),
            ("tasks lost (must be 0)", str(lost)),
            ("duplicate or stray files (must be 0)", str(audit["duplicates"])),
            ("partial or wrong files under final names (must be 0)", str(audit["partial"])),
            ("temporary files left", str(audit["temporary_left"])),
            ("requests to the simulator", str(requests)),
        ]
    )
    print("\nbad inputs tried")
    tried = Counter(soak.bad_inputs)
    table([(f"{name} (x{count})", outcome) for (name, outcome), count in tried.items()] or [("(none)", "")])
    ok = lost == 0 and audit["duplicates"] == 0 and audit["partial"] == 0 and not outcome.get("unfinished")
    print("\nsoak " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--every", type=float, default=15.0, help="seconds between faults")
    parser.add_argument("--reports", type=int, default=4, help="reports at the start; one more per fault")
    parser.add_argument("--days", type=int, default=120)
    arguments = parser.parse_args()

    async def run(reactor):
        code = await main(reactor, arguments.seconds, arguments.every, arguments.reports, arguments.days)
        if code:
            raise SystemExit(code)

    react(lambda reactor: ensureDeferred(run(reactor)))
