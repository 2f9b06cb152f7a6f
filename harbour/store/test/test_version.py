"""
Tests for L{harbour.store.version} and the store's refusal of a Redis too
old for harbour as it starts.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.errors import ConfigurationError, StoreUnavailable
from harbour.store.connection import StoreService
from harbour.store.version import MINIMUM_REDIS, redis_version, too_old
from harbour.test.helpers import capture_log, short_directory

#: The start of a real C{INFO server} reply, with the version left out.
INFO = "# Server\r\nredis_version:{version}\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"


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
            "Redis 4.0.14 is too old: harbour needs Redis 5 or later "
            "(ZPOPMIN, and scripts replicated by their effects)",
        )
        self.assertEqual([too_old(v) for v in (MINIMUM_REDIS, (6, 2, 14), (7, 4, 0))], [None, None, None])


class StartTests(TestCase):
    """
    L{StoreService} checks the version of the Redis it connects to before
    it is ready: its embedded redis-server, whose C{INFO} is replaced here.
    """

    def started(self, info: Deferred[Any]) -> Deferred[None]:
        """
        Start a store whose C{INFO server} answers C{info}.

        @return: Its L{StoreService.when_ready}.
        """
        from twisted.internet import reactor

        store = StoreService.from_config(reactor, None, short_directory(self), "t")
        real = store.execute

        def execute(*args: object) -> Deferred[Any]:
            return info if args == ("INFO", "server") else real(*args)

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
        self.assertEqual(len(self.flushLoggedErrors(ConfigurationError)), 1)

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
