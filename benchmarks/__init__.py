"""
Side-by-side benchmarks of harbour (C{make bench}); figures, not tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IListeningPort

if TYPE_CHECKING:
    from twisted.internet.interfaces import (
        IReactorCore,
        IReactorFromThreads,
        IReactorProcess,
        IReactorTCP,
        IReactorTime,
        IReactorUNIX,
    )

    from harbour.store.connection import StoreService

    class IBenchReactor(
        IReactorCore, IReactorTime, IReactorTCP, IReactorUNIX, IReactorProcess, IReactorFromThreads
    ):
        """
        The reactor the benchmarks run on, as they use it: to keep time, to
        listen and connect, to start processes, and to run harbour's disk
        work in threads.  (Twisted's reactors provide all of these; no one
        interface names them together.)
        """


def port_number(port: IListeningPort) -> int:
    """
    @param port: A port listening on TCP over IPv4 (C{127.0.0.1}).
    @return: The number it listens on.
    """
    address = port.getHost()
    assert isinstance(address, IPv4Address), address
    return address.port


def embedded_socket(store: StoreService) -> Path:
    """
    @param store: A store on an embedded redis-server (made with no
        C{redis_url}).
    @return: The unix socket of its redis-server.
    """
    assert store.server is not None, "a store on a redis-server of its own"
    return store.server.socket
