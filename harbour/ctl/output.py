"""
C{harbourctl}'s standard output: tables of data, and what becomes of the
output when its reader goes away early (C{harbourctl manifest | head}).
"""

from __future__ import annotations

import errno
import os
from typing import IO, TextIO

from rich.console import Console


def discard_output(out: IO[str]) -> None:
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


class PipeConsole(Console):
    """
    A console whose reader gone away (a C{BrokenPipeError}) is left to the
    caller, rather than pointing the process's own standard output at
    C{/dev/null} and exiting with an error as rich does: within the
    reactor, rich's C{SystemExit} would end in a traceback.
    """

    def on_broken_pipe(self) -> None:
        """
        @raise BrokenPipeError: Always.
        """
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class DataConsole(PipeConsole):
    """
    A console for tables of data: their text is printed as it is (an error
    that holds C{[/x]} or C{[link=...]} is not rich markup), and a reader
    gone away is left to the caller (L{PipeConsole}).
    """

    def __init__(self, file: TextIO, width: int) -> None:
        super().__init__(file=file, width=width, markup=False, emoji=False)


def is_terminal(out: TextIO) -> bool:
    """
    @return: Whether C{out} is a terminal, where output may be drawn over
        again; not a pipe, a file, or one closed.
    """
    try:
        return out.isatty()
    except (AttributeError, OSError, ValueError):
        return False
