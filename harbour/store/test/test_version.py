"""
Tests for L{harbour.store.version} and the store's refusal, as it starts,
of a Redis too old for harbour or one that evicts keys.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.store.connection import StoreService
from harbour.store.version import MINIMUM_REDIS, eviction_policy, evicts, redis_version, too_old
from harbour.test.helpers import capture_log, short_directory

#: The start of a real C{INFO server} reply, with the version left out.
INFO = "# Server\r\nredis_version:{version}\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"

#: The end of a real C{INFO memory} reply, with the policy left out.
MEMORY = "maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:1.00\r\n"


class VersionTests(SynchronousTestCase):
    """
    L{redis_version} reads C{INFO server}; L{too_old} says why a version
    will not do.
    """

    def test_read(self) -> None:
        """
        The version is read from its line, wherever it is.
        """
        self.assertEqual(redis_version(INFO.format(version="6.2.14")), (6, 2, 14))
        self.assertEqual(redis_version("# Server\nos:Linux\nredis_version:10.0.1\n"), (10, 0, 1))

    def test_unsaid(self) -> None:
        """
        A reply without a version line gives none.
        """
        self.assertIsNone(redis_version("# Server\r\nos:Linux\r\n"))

    def test_tooOld(self) -> None:
        """
        A version before 5 is refused with the reason; 5 and later pass.
        """
        problem = too_old((4, 0, 14))
        self.assertEqual(
            problem,
            "Redis 4.0.14 is too old: harbour needs Redis 5 or later (scripts replicated by their effects)",
        )
        self.assertEqual([too_old(v) for v in (MINIMUM_REDIS, (6, 2, 14), (7, 4, 0))], [None, None, None])


class EvictionTests(SynchronousTestCase):
    """
    L{eviction_policy} reads C{INFO memory}; L{evicts} says why a policy
    will not do.
    """

    def test_read(self) -> None:
        """
        The policy is read from its line; a reply without one gives none.
        """
        self.assertEqual(eviction_policy(MEMORY.format(policy="allkeys-lru")), "allkeys-lru")
        self.assertIsNone(eviction_policy("# Memory\r\nused_memory:1\r\n"))

    def test_evicts(self) -> None:
        """
        C{noeviction} passes, and the C{volatile-*} policies, which never
        evict a task (tasks have no time to live); a policy that evicts any
        key is refused with the reason.
        """
        for policy in ("noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
            self.assertIsNone(evicts(policy), policy)
        self.assertEqual(
            evicts("allkeys-lru"),
            "its maxmemory-policy is allkeys-lru: harbour needs noeviction (a full Redis that evicts "
            "keys loses tasks; under noeviction it refuses writes, an outage harbour waits out)",
        )
        for policy in ("allkeys-lfu", "allkeys-random"):
            self.assertIsNotNone(evicts(policy))


class StartTests(TestCase):
    """
    L{StoreService} checks the version of the Redis it connects to before
    it is ready: its embedded redis-server, whose C{INFO} is replaced here.
    """

    def started(self, info: Deferred[Any], memory: Deferred[Any] | None = None) -> Deferred[None]:
        """
        Start a store whose C{INFO server} answers C{info}, and C{INFO
        memory} C{memory} (or the server's own answer).

        @return: Its L{StoreService.when_ready}.
        """
        from twisted.internet import reactor

        store = StoreService.from_config(reactor, None, short_directory(self), "t")
        real = store.execute
        faked = {("INFO", "server"): info}
        if memory is not None:
            faked["INFO", "memory"] = memory

        def execute(*args: object) -> Deferred[Any]:
            return faked[args] if args in faked else real(*args)

        # An instance attribute, so that only this store's INFO is replaced.
        store.execute = execute  # type: ignore[method-assign]
        store.startService()
        self.addCleanup(store.stopService)
        return store.when_ready()

    async def test_tooOldRefused(self) -> None:
        """
        A Redis before 5 stops the start with a configuration error (a
        fatal start-up problem) naming the version and what is needed.
        """
        with self.assertRaises(ConfigurationError) as caught:
            await self.started(succeed(INFO.format(version="4.0.14")))
        message = str(caught.exception)
        self.assertIn("Redis 4.0.14 is too old: harbour needs Redis 5 or later", message)
        # Said by whoever waits for the store (a daemon, in one line): not logged here.
        self.assertEqual(self.flushLoggedErrors(ConfigurationError), [])

    async def test_recentAccepted(self) -> None:
        """
        Redis 5 and later starts.
        """
        await self.started(succeed(INFO.format(version="5.0.0")))

    async def test_infoRefused(self) -> None:
        """
        A Redis that refuses C{INFO} to this user (or renamed it) is used,
        with a warning that it must be recent enough.
        """
        refusal = "Redis at x: NOPERM this user has no permissions to run the 'info' command"
        logged = capture_log(self)
        await self.started(fail(StoreUnavailable(refusal)))
        self.assertIn("cannot check the version of Redis at unix://", "\n".join(logged))
        self.assertIn("NOPERM", "\n".join(logged))

    async def test_evictingRefused(self) -> None:
        """
        A Redis that evicts keys when full stops the start with a
        configuration error naming its policy and the one needed.
        """
        version = succeed(INFO.format(version="6.2.14"))
        with self.assertRaises(ConfigurationError) as caught:
            await self.started(version, succeed(MEMORY.format(policy="allkeys-lru")))
        self.assertIn("its maxmemory-policy is allkeys-lru: harbour needs noeviction", str(caught.exception))
        # Said by whoever waits for the store (a daemon, in one line): not logged here.
        self.assertEqual(self.flushLoggedErrors(ConfigurationError), [])

    async def test_volatileWarned(self) -> None:
        """
        A Redis that evicts only keys with a time to live (the default of
        many managed services), none of them a task, starts, with a
        warning that names its policy.
        """
        logged = capture_log(self)
        await self.started(
            succeed(INFO.format(version="7.2.4")), succeed(MEMORY.format(policy="volatile-lru"))
        )
        self.assertIn("evicts keys with a time to live when full (volatile-lru)", "\n".join(logged))

    async def test_noEvictionAccepted(self) -> None:
        """
        The embedded redis-server, which keeps Redis's default policy,
        C{noeviction}, starts, with no warning.
        """
        logged = capture_log(self)
        await self.started(succeed(INFO.format(version="6.2.14")))
        self.assertNotIn("maxmemory", "\n".join(logged))

    async def test_policyUnsaid(self) -> None:
        """
        A Redis that refuses C{INFO memory} to this user, or whose reply
        does not say its policy, is used, with a warning that it must be
        C{noeviction}.
        """
        version = INFO.format(version="6.2.14")
        refusal = "Redis at x: NOPERM this user has no permissions to run the 'info' command"
        logged = capture_log(self)
        await self.started(succeed(version), fail(StoreUnavailable(refusal)))
        await self.started(succeed(version), succeed("# Memory\r\nused_memory:1\r\n"))
        self.assertIn("cannot check the maxmemory-policy of Redis at unix://", "\n".join(logged))
        self.assertIn("does not say its maxmemory-policy: it must be noeviction", "\n".join(logged))
