"""
Requests per useful file when mirroring up to a day not published yet,
with and without following the publications log.

A real C{twistd harbour} mirrors a daily report (C{PRC_LMP} DAM) and an
hourly one (C{PRC_INTVL_LMP} RTM) over the three trading days before today
from the simulator, which publishes the last of them an hour from now.
Every request the simulator sees is counted: report data, "no data"
answers, and reads of the log itself.  A useful file is one holding data.

The unpublished day is a whole one, so the count does not depend on the
time of day the benchmark runs (with today as the unpublished day, only
its hours gone by were asked for: none just after midnight, Pacific time).

C{python -m benchmarks.publications} prints one JSON line per mode.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import ensureDeferred, maybeDeferred
from twisted.internet.task import deferLater, react

from benchmarks import port_number
from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, connect
from harbour.amp.server import read_token
from harbour.testing.simulator import PACIFIC, OasisSimulator
from tests.processes import control_endpoint, save, start_harbour, stop_harbour, task_states

if TYPE_CHECKING:
    from benchmarks import IBenchReactor

REPORTS = """\
[[reports]]
name = "lmp"
queryname = "PRC_LMP"
market_run_id = "DAM"
params = { grp_type = "ALL_APNODES" }

[[reports]]
name = "intervals"
queryname = "PRC_INTVL_LMP"
market_run_id = "RTM"
params = { grp_type = "ALL" }
"""


async def mirror(reactor: IBenchReactor, directory: Path, follow: bool) -> dict[str, Any]:
    """
    Mirror the three days before today to the end, and count the
    simulator's requests.
    """
    now = reactor.seconds()
    yesterday = datetime.datetime.fromtimestamp(now, PACIFIC).date() - datetime.timedelta(days=1)
    start_of_yesterday = datetime.datetime(
        yesterday.year, yesterday.month, yesterday.day, tzinfo=PACIFIC
    ).timestamp()
    simulator = OasisSimulator(reactor, seed=3, last_day=None, publish_offset=now + 3600 - start_of_yesterday)
    # Twisted names listenTCP's factory ServerFactory[_ProtoWithFactory], a
    # type variable held invariant, which no Site matches.
    port = reactor.listenTCP(0, simulator.site(), interface="127.0.0.1")  # type: ignore[arg-type]
    (directory / "config").mkdir(parents=True)
    save(
        directory / "config" / "harbour.toml",
        (
            f'[manifest]\nbase_url = "http://127.0.0.1:{port_number(port)}/oasisapi"\n'
            f"start = {yesterday - datetime.timedelta(days=2)}\nend = {yesterday}\n"
            f"follow_publications = {'true' if follow else 'false'}\n"
            "[download]\nconcurrency = 4\nmin_request_interval = 0\n" + REPORTS
        ),
    )
    daemon = start_harbour(reactor, directory)
    client: HarbourClientProtocol | None = None
    try:
        await daemon.wait_for("store ready")
        await daemon.wait_for("control port listening")
        client = await connect(
            reactor, control_endpoint(directory), read_token(directory / "data" / "amp.token")
        )
        for ignored in range(1200):  # two minutes at most
            total, final = task_states(json.loads((await client.callRemote(commands.Status))["status"]))
            if total and (total == final or await only_waiting(client, total - final)):
                break
            await deferLater(reactor, 0.1, lambda: None)
        else:
            raise RuntimeError("the mirror did not finish")
    finally:
        await stop_harbour(daemon, client)
        await maybeDeferred(port.stopListening)
    log = [r for r in simulator.requests if r[2].get("queryname", "").startswith("ATL_PUB")]
    data = [r for r in simulator.requests if r not in log]
    useful = sum(1 for r in data if r[3] == "data")
    return {
        "follow": follow,
        "requests": len(simulator.requests),
        "log_requests": len(log),
        "useful_files": useful,
        "no_data_answers": sum(1 for r in data if r[3] == 1000),
        "requests_per_useful_file": len(simulator.requests) / useful,
    }


async def only_waiting(client: HarbourClientProtocol, unfinished: int) -> bool:
    """
    @return: Whether the C{unfinished} tasks are all pending because OASIS
        had no data yet for their recent windows: they are asked again
        hours later, so the mirror has done what it can for now.
    """
    answer = await client.callRemote(commands.ListTasks, state="pending", offset=0, limit=500)
    pending = json.loads(answer["tasks"])
    return len(pending) == unfinished and all(t["last_error"].startswith("no data yet") for t in pending)


async def main(reactor: IBenchReactor) -> None:
    """
    Print what each mode's mirror counted, following the publications log
    first.
    """
    for follow in (True, False):
        directory = Path(tempfile.mkdtemp(prefix="hb-pub-"))
        try:
            print(json.dumps(await mirror(reactor, directory, follow)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        sys.stdout.flush()


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor)))
