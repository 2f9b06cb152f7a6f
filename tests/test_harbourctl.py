"""
C{harbourctl} as a real process, where what surrounds it matters: the
pipe its output goes into.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from twisted.trial.unittest import TestCase

from harbour.ctl.codes import FAILED
from tests.processes import PATIENCE, program

#: Twenty years of one report a day at a time: a manifest of about 1.2 MB,
#: far more than a pipe holds.
CONFIGURATION = """
[manifest]
start = "2000-01-01"
end = "2019-12-31"

[[reports]]
name = "lmp"
queryname = "PRC_LMP"
market_run_id = "DAM"
params = { node = "TH_NP15_GEN-APND" }
window = "1d"
"""


class ClosedPipeTests(TestCase):
    """
    A reader that stops reading (C{harbourctl manifest | head -1}).
    """

    def test_readerGone(self) -> None:
        """
        C{harbourctl} stops quietly with status 1 when its reader closes
        the pipe: no C{BrokenPipeError} traceback, no complaint at exit.
        """
        config = Path(self.mktemp())
        config.mkdir()
        (config / "harbour.toml").write_text(CONFIGURATION)
        ctl = subprocess.Popen(
            [program("harbourctl"), "manifest", "--config-dir", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert ctl.stdout is not None and ctl.stderr is not None
        self.assertTrue(ctl.stdout.readline())
        ctl.stdout.close()
        self.assertEqual(ctl.wait(timeout=PATIENCE), FAILED)
        self.assertEqual(ctl.stderr.read(), b"")
        ctl.stderr.close()
