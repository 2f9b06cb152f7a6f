"""
AMP's wire format on the bus's hot path: each box a run of key and value
strings, each after its length in two bytes, ended by an empty key.

Twisted's parser reads a box one string at a time through a state machine
(a method looked up by name per string), which cost a subscriber more than
everything else it does with an event.  L{BoxReader} reads the same bytes
a box at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from struct import Struct

from twisted.protocols import amp

_LENGTH = Struct("!H")


class KeyTooLong(Exception):
    """
    A key longer than AMP allows (L{amp.MAX_KEY_LENGTH}); nothing after it
    can be read.

    @ivar length: The length the key claims.
    """

    def __init__(self, length: int) -> None:
        super().__init__(f"a key of {length} bytes")
        self.length = length


class BoxReader:
    """
    The boxes of a stream of bytes, read as the bytes arrive.

    Between reads it keeps only the bytes of the key and value it has not
    finished, never the whole of a box not yet ended: the pairs before them
    are kept read.  A box of many pairs thus costs its length once, however
    its reads cut it (re-reading an unfinished box from its start on every
    read made one box of 32 MB cost seconds).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._position = 0
        self._box = amp.AmpBox()
        self._too_long: KeyTooLong | None = None

    @property
    def waiting(self) -> int:
        """
        The number of bytes received but not yet read into a box.
        """
        return len(self._buffer) - self._position

    def receive(self, data: bytes) -> None:
        """
        Take C{data}, the bytes that follow those received before.  After
        a key longer than AMP allows, nothing more is taken.
        """
        if self._too_long is not None or not data:
            return
        if self._position == len(self._buffer):
            self._buffer = data
        else:
            self._buffer = self._buffer[self._position :] + data
        self._position = 0

    def boxes(self) -> Iterator[amp.AmpBox]:
        """
        Read each box ended in the bytes received so far, as AMP's parser
        would.  A reader that stops iterating early (it was paused) finds
        the boxes it did not take at its next call.

        @raise KeyTooLong: On reaching a key longer than AMP allows, and
            at every call after.
        """
        if self._too_long is not None:
            raise self._too_long
        buffer = self._buffer
        end = len(buffer)
        read_length = _LENGTH.unpack_from
        position = self._position
        box = self._box
        while position + 2 <= end:
            (key_length,) = read_length(buffer, position)
            if not key_length:
                position += 2
                self._position = position
                self._box = amp.AmpBox()
                yield box
                if self._position != position or self._buffer is not buffer:
                    # Whoever took the box read on meanwhile (a paused
                    # reader resumed); what is left is theirs.
                    return
                box = self._box
                continue
            if key_length > amp.MAX_KEY_LENGTH:
                self._too_long = KeyTooLong(key_length)
                self._buffer = b""
                self._position = 0
                raise self._too_long
            value_at = position + 2 + key_length
            if value_at + 2 > end:
                break
            (value_length,) = read_length(buffer, value_at)
            after = value_at + 2 + value_length
            if after > end:
                break
            box[buffer[position + 2 : value_at]] = buffer[value_at + 2 : after]
            position = after
        self._position = position
