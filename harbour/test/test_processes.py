"""
Tests of L{harbour.processes}: the name a process goes by.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from harbour import processes


class ProcessNameTests(SynchronousTestCase):
    """
    L{processes.process_name}, a process's name on its claims, heartbeats
    and events.
    """

    def setUp(self) -> None:
        """
        Name pid 1 of host C{vm}, of a pid namespace, a start and a boot
        each test sets.
        """
        self.mark, self.boot = "vm~4026531836.1.100", "boot-a"
        self.patch(processes, "host_name", lambda: "vm")
        self.patch(os, "getpid", lambda: 1)
        self.patch(processes, "process_mark", lambda: self.mark)
        self.patch(processes, "boot_id", lambda: self.boot)

    def test_containers(self) -> None:
        """
        Two processes of one host name and one pid, in pid namespaces of
        their own (pid 1 of two containers sharing the host's network),
        have names of their own, each its host and pid first.
        """
        first = processes.process_name()
        self.mark = "vm~4026532179.1.100"
        second = processes.process_name()
        self.assertNotEqual(first, second)
        self.assertTrue(first.startswith("vm:1~"), first)
        self.assertTrue(second.startswith("vm:1~"), second)

    def test_hostsOfOneName(self) -> None:
        """
        Two machines of one host name, whose processes share a pid, the
        initial pid namespace and a start, name them apart: their boots
        differ.
        """
        first = processes.process_name()
        self.boot = "boot-b"
        self.assertNotEqual(first, processes.process_name())

    def test_sameEachTime(self) -> None:
        """
        A process is named alike each time it asks: its download and tables
        services, which ask in turn, go by one name.
        """
        self.assertEqual(processes.process_name(), processes.process_name())

    def test_restarted(self) -> None:
        """
        A process that got the same pid later (a container restarted) has
        another name: its start differs.
        """
        first = processes.process_name()
        self.mark = "vm~4026531836.1.900"
        self.assertNotEqual(first, processes.process_name())


class RealProcessNameTests(SynchronousTestCase):
    """
    L{processes.process_name} of this very process.
    """

    def test_real(self) -> None:
        """
        The name is this host and pid, then eight hex digits, the same
        each time.
        """
        name = processes.process_name()
        host, ignored, rest = name.rpartition(":")
        pid, tilde, word = rest.partition("~")
        self.assertEqual((host, pid, tilde), (processes.host_name(), str(os.getpid()), "~"))
        self.assertEqual(len(word), 8)
        self.assertEqual(word, format(int(word, 16), "08x"))
        self.assertEqual(name, processes.process_name())
