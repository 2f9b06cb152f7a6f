"""
C{harbourctl}'s standard output: tables of data, and what becomes of the
output when its reader goes away early (C{harbourctl manifest | head}).
"""

from __future__ import annotations

import errno
import os
from typing import TextIO

from rich.console import Console


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


class DataConsole(Console):
    """
    A console for tables of data: their text is printed as it is (an error
    that holds C{[/x]} or C{[link=...]} is not rich markup), and a reader
    gone away (a C{BrokenPipeError}) is left to the caller, rather than
    pointing the process's own standard output at C{/dev/null} and exiting
    with an error as rich does.
    """

    def __init__(self, file: TextIO, width: int) -> None:
        super().__init__(file=file, width=width, markup=False, emoji=False)

    def on_broken_pipe(self) -> None:
        """
        @raise BrokenPipeError: Always.
        """
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
