"""
What a user of harbour's API needs to test against it, without OASIS.

L{OasisSimulator} (a C{twisted.web} resource answering like OASIS, with
faults on demand), its service, and in-memory fakes of the store that pass
the same behaviour suites as the real things.

Imported only by tests, benchmarks, C{--demo} and the C{oasis-sim} plugin.
"""

from harbour.store.memory import MemoryTaskStore
from harbour.store.politeness import MemoryLimiter
from harbour.testing.simulator import Faults, OasisSimulator, SimulatorService

__all__ = ["Faults", "MemoryLimiter", "MemoryTaskStore", "OasisSimulator", "SimulatorService"]
