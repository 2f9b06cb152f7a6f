"""
The C{twistd oasis-sim} plugin: a stand-alone OASIS simulator.
"""

from twisted.application.service import ServiceMaker

oasis_sim = ServiceMaker(
    "oasis-sim",
    "harbour.testing.simulator",
    "A simulated CAISO OASIS API (SingleZip and GroupZip) for tests and demos.",
    "oasis-sim",
)
