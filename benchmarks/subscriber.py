"""
One remote subscriber for the fan-out benchmark, in its own process:
connects, subscribes, prints C{ready}, then prints the time the last of
C{count} events arrived.

    python -m benchmarks.subscriber ENDPOINT TOKEN TOPIC COUNT
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from harbour.amp.client import RemoteBus, connect

if TYPE_CHECKING:
    from benchmarks import IBenchReactor
    from harbour.interfaces import IEvent


async def main(reactor: IBenchReactor, endpoint: str, token: str, topic: str, count: str) -> None:
    """
    Count events until C{count} arrived.
    """
    expected = int(count)
    client = await connect(reactor, endpoint, token)
    seen = [0]
    finished: Deferred[float] = Deferred()

    def received(event: IEvent) -> None:
        seen[0] += 1
        if seen[0] == expected:
            finished.callback(time.time())

    await RemoteBus(client).subscribe(topic, received)
    print("ready", flush=True)
    print(f"last {await finished:.6f}", flush=True)
    if client.transport is not None:
        client.transport.loseConnection()


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor, *sys.argv[1:])))
