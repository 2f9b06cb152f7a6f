"""
System test of C{twistd oasis-sim}: the stand-alone simulator as a process,
fetched over real HTTP.
"""

from __future__ import annotations

import treq
from twisted.trial.unittest import TestCase

from harbour.oasis.classify import DATA, EMPTY, classify
from harbour.test.helpers import short_directory
from tests.processes import program, spawn


class SimulatorProcessTests(TestCase):
    """
    The simulator plugin in its own process.
    """

    async def test_serves(self) -> None:
        """
        It logs its URL, serves data for an available day and 1000 for a
        day beyond its range, and stops on SIGTERM.
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        sim = spawn(
            reactor,
            [
                program("twistd"),
                "--nodaemon",
                "--pidfile=",
                "oasis-sim",
                "--port",
                "0",
                "--min-interval",
                "0",
                "--last-day",
                "2025-12-31",
            ],
            directory,
        )
        self.addCleanup(lambda: sim.ended.called or (sim.signal("TERM"), sim.ended)[1])
        line = await sim.wait_for("OASIS simulator at ")
        base = line.split("OASIS simulator at ")[1].strip()
        query = "queryname=PRC_LMP&market_run_id=DAM&version=1&resultformat=6"
        good = await treq.get(
            f"{base}/SingleZip?{query}&startdatetime=20251102T07:00-0000&enddatetime=20251103T08:00-0000",
            persistent=False,
        )
        self.assertEqual(classify(await treq.content(good)).kind, DATA)
        later = await treq.get(
            f"{base}/SingleZip?{query}&startdatetime=20260102T08:00-0000&enddatetime=20260103T08:00-0000",
            persistent=False,
        )
        self.assertEqual(classify(await treq.content(later)).kind, EMPTY)
        sim.signal("TERM")
        await sim.ended
        self.assertIn("Server Shut Down", sim.output())
