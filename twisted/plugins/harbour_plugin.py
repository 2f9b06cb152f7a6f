"""
The C{twistd harbour} plugin.
"""

from twisted.application.service import ServiceMaker

harbour = ServiceMaker(
    "harbour",
    "harbour.service",
    "Keep a verified local mirror of CAISO OASIS reports.",
    "harbour",
)
