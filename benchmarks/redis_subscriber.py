"""
One Redis pub/sub subscriber for the fan-out benchmark's peer, in its own
process, as L{benchmarks.subscriber} is for harbour's bus: connects to a
unix socket, subscribes, prints C{ready}, decodes each message's JSON (as a
bus subscriber decodes each event), then prints the time the last of
C{count} messages arrived.

    python -m benchmarks.redis_subscriber SOCKET CHANNEL COUNT
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any


def frames(buffer: bytearray) -> Iterator[list[Any]]:
    """
    Take whole replies off the front of C{buffer}: arrays of bulk strings
    and integers, as pub/sub sends.

    @return: An iterator of replies, each a list of L{bytes} and L{int}
        (typed L{Any}: the kind of reply, its first item, says which each
        item is, and checking each item's type would add a step to every
        message that the subscriber does not otherwise take).
    """
    while True:
        if not buffer.startswith(b"*"):
            return
        end = buffer.find(b"\r\n")
        if end < 0:
            return
        position = end + 2
        items: list[Any] = []
        for ignored in range(int(buffer[1:end])):
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return
            kind, value = buffer[position : position + 1], buffer[position + 1 : end]
            if kind == b":":
                items.append(int(value))
                position = end + 2
                continue
            length = int(value)
            if len(buffer) < end + 2 + length + 2:
                return
            items.append(bytes(buffer[end + 2 : end + 2 + length]))
            position = end + 2 + length + 2
        del buffer[:position]
        yield items


def main(path: str, channel: str, count: str) -> None:
    """
    Count messages on C{channel} until C{count} arrived.
    """
    expected = int(count)
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    client.sendall(f"SUBSCRIBE {channel}\r\n".encode())
    buffer = bytearray()
    seen = 0
    while seen < expected:
        data = client.recv(1 << 16)
        if not data:
            raise SystemExit("the server went away")
        buffer += data
        for reply in frames(buffer):
            if reply[0] == b"subscribe":
                print("ready", flush=True)
            elif reply[0] == b"message":
                json.loads(reply[2])
                seen += 1
    print(f"last {time.time():.6f}", flush=True)
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
