"""
C{harbourctl}'s standard output when its reader goes away early
(C{harbourctl manifest | head}).
"""

from __future__ import annotations

import os
from typing import TextIO


def discard_output(out: TextIO) -> None:
    """
    The reader of C{out} went away: point its descriptor, if any, at
    C{/dev/null}, so that the output still buffered is dropped rather than
    failing again at exit.
    """
    try:
        descriptor = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)
