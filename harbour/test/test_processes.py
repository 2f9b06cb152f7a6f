"""
Tests of L{harbour.processes}: the name a process goes by.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from harbour import processes


class ProcessNameTests(SynchronousTestCase):
    """
    L{processes.process_name}, a process's name on its claims, heartbeats
    and events.
    """

    def test_containers(self) -> None:
        """
        Two processes of one host name and one pid (pid 1 of two containers
        sharing the host's network) have names of their own, each its host
        and pid first.
        """
        # Each named in a process of its own, started as that pid 1 is.
        program = (
            "import os, socket; os.getpid = lambda: 1; socket.gethostname = lambda: 'vm'; "
            "from harbour.processes import process_name; print(process_name())"
        )
        first, second = (
            subprocess.run(
                [sys.executable, "-c", program], capture_output=True, check=True, text=True
            ).stdout.strip()
            for ignored in range(2)
        )
        self.assertNotEqual(first, second)
        self.assertTrue(first.startswith("vm:1~"), first)
        self.assertTrue(second.startswith("vm:1~"), second)

    def test_sameEachTime(self) -> None:
        """
        A process is named alike each time it asks: its download and tables
        services, which ask in turn, go by one name.
        """
        self.assertEqual(processes.process_name(), processes.process_name())

    def test_forked(self) -> None:
        """
        A forked child, whose pid is another, names itself anew.
        """
        # This process's own name is left as it was.
        self.patch(processes, "_named", None)
        self.patch(processes.socket, "gethostname", lambda: "vm")
        pid = 1
        self.patch(os, "getpid", lambda: pid)
        parent = processes.process_name()
        pid = 2
        child = processes.process_name()
        self.assertTrue(child.startswith("vm:2~"), child)
        self.assertNotEqual(child.split("~")[1], parent.split("~")[1])
