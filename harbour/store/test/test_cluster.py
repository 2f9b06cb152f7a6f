"""
Tests for L{harbour.store.cluster}, and for a store on a real Redis
Cluster node.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.store.cluster import check_cluster
from harbour.store.connection import StoreService
from harbour.store.tasks import RedisTaskStore
from harbour.store.test.test_sentinel import ask, eventually, spawn
from harbour.store.test.test_tasks import request
from harbour.test.helpers import short_directory


class Answering:
    """
    A Redis that answers each command from a table, and notes them.
    """

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, ...]] = []

    def execute(self, *args: str) -> Deferred[Any]:
        """
        The answer to the command C{args[0]}: a value, or an exception to
        fail with.
        """
        self.asked.append(args)
        answer = self.answers[args[0]]
        return fail(answer) if isinstance(answer, Exception) else succeed(answer)


class CheckClusterTests(SynchronousTestCase):
    """
    L{check_cluster} tells a cluster's node from a plain Redis, and refuses
    a node that does not hold harbour's keys.
    """

    def check(self, redis: Answering) -> Deferred[bool]:
        return check_cluster(redis, "{h}:", lambda: "redis://node:7000/0")  # type: ignore[arg-type]

    def test_plain(self) -> None:
        """
        A Redis whose C{INFO cluster} says it is not a cluster is used as
        it is, asked nothing more.
        """
        redis = Answering({"INFO": "# Cluster\r\ncluster_enabled:0\r\n"})
        self.assertFalse(self.successResultOf(self.check(redis)))
        self.assertEqual(redis.asked, [("INFO", "cluster")])

    def test_infoRefused(self) -> None:
        """
        A Redis that refuses C{INFO} to this user is taken for a plain one.
        """
        refusal = StoreUnavailable(
            "Redis at x: NOPERM this user has no permissions to run the 'info' command"
        )
        self.assertFalse(self.successResultOf(self.check(Answering({"INFO": refusal}))))

    def test_holdsKeys(self) -> None:
        """
        A cluster's node that answers for harbour's keys is used.
        """
        redis = Answering({"INFO": "cluster_enabled:1\r\n", "EXISTS": 0})
        self.assertTrue(self.successResultOf(self.check(redis)))
        self.assertEqual(redis.asked[1], ("EXISTS", "{h}:ids"))

    def test_movedRefused(self) -> None:
        """
        A node that redirects harbour's keys to another is a configuration
        error naming the slot and the node that holds it.
        """
        moved = StoreUnavailable("Redis at redis://node:7000/0: MOVED 5592 10.0.0.2:7001")
        failure = self.failureResultOf(
            self.check(Answering({"INFO": "cluster_enabled:1\r\n", "EXISTS": moved})), ConfigurationError
        )
        self.assertEqual(
            str(failure.value),
            "Redis Cluster node at redis://node:7000/0 does not hold the keys of {h}: (slot 5592): "
            "connect harbour to the node that does, 10.0.0.2:7001 (harbour follows no redirection)",
        )

    def test_outage(self) -> None:
        """
        Any other failure is an outage, ridden out by the caller.
        """
        down = StoreUnavailable("Redis at x: CLUSTERDOWN The cluster is down")
        self.failureResultOf(
            self.check(Answering({"INFO": "cluster_enabled:1\r\n", "EXISTS": down})), StoreUnavailable
        )


def _free_port() -> int:
    """
    @return: A free TCP port on 127.0.0.1 whose cluster bus port (10,000
        more) is free too.
    """
    for ignored in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port + 10_000 > 65_535:
                continue
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10_000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports")


async def cluster_node(testcase: TestCase) -> int:
    """
    Start a redis-server as the one node of a Redis Cluster holding every
    slot, stopped after the test.

    @return: Its port on 127.0.0.1.
    """
    directory = short_directory(testcase)
    port = _free_port()
    await spawn(
        testcase,
        directory,
        ["--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
        + ["--cluster-config-file", str(directory / "nodes.conf"), "--save", "", "--appendonly", "no"],
    )
    await ask(port, "CLUSTER", "ADDSLOTS", *map(str, range(16384)))

    async def up() -> bool:
        """the cluster serves every slot"""
        return "cluster_state:ok" in await ask(port, "CLUSTER", "INFO")

    await eventually(up)
    return port


class ClusterStoreTests(TestCase):
    """
    A store on a real Redis Cluster node.
    """

    async def test_runsOnCluster(self) -> None:
        """
        The store starts on a cluster's node and its scripts run there
        (every key of one harbour in one slot); keys of an older harbour,
        without the tag, are left where they are, as no command may move
        them across slots.
        """
        from twisted.internet import reactor

        port = await cluster_node(self)
        self.assertEqual(await ask(port, "SADD", "t:ids", "x"), 1)
        service = StoreService.from_config(reactor, f"redis://127.0.0.1:{port}/0", short_directory(self), "t")
        service.startService()
        self.addCleanup(service.stopService)
        await service.when_ready()
        clock = Clock()
        clock.advance(1_700_000_000)
        store = RedisTaskStore(service, clock, service.prefix)
        await store.create([request("a", 1)])
        claimed = await store.claim("w", 60)
        assert claimed is not None
        self.assertEqual(claimed.filename, "a/2025-01-01.zip")
        self.assertEqual(await service.execute("SMEMBERS", "t:ids"), ["x"])
