"""
The knobs of a simulator that its parts read as they answer: tests change
some of them (C{faults}, C{broken_log}) between requests.
"""

from __future__ import annotations

import datetime
from typing import Protocol

from twisted.internet.interfaces import IReactorTime

from harbour.testing.simulator.faults import Faults


class Settings(Protocol):
    """
    What L{harbour.testing.simulator.OasisSimulator} is configured with;
    see there for each attribute.
    """

    clock: IReactorTime
    seed: int
    nodes: int
    min_interval: float
    throttle_page: bool
    faults: Faults
    first_day: datetime.date
    last_day: datetime.date | None
    publish_offset: float
    broken_log: bool
