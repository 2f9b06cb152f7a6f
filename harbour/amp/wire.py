"""
AMP's wire format on the bus's hot path: each box a run of key and value
strings, each after its length in two bytes, ended by an empty key.

Twisted's parser reads a box one string at a time through a state machine
(a method looked up by name per string), which cost a subscriber more than
everything else it does with an event.  L{read_boxes} reads the same bytes
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


def read_boxes(buffer: bytes) -> Iterator[tuple[amp.AmpBox, int]]:
    """
    Read the whole boxes at the front of C{buffer}, as AMP's parser would.

    @return: An iterator of each box with the offset just past it; it ends
        at the first box not wholly in C{buffer}.
    @raise KeyTooLong: On reaching a key longer than AMP allows.
    """
    end = len(buffer)
    read_length = _LENGTH.unpack_from
    position = 0
    while True:
        box = amp.AmpBox()
        while True:
            if position + 2 > end:
                return
            (key_length,) = read_length(buffer, position)
            if not key_length:
                position += 2
                break
            if key_length > amp.MAX_KEY_LENGTH:
                raise KeyTooLong(key_length)
            value_at = position + 2 + key_length
            if value_at + 2 > end:
                return
            (value_length,) = read_length(buffer, value_at)
            after = value_at + 2 + value_length
            if after > end:
                return
            box[buffer[position + 2 : value_at]] = buffer[value_at + 2 : after]
            position = after
        yield box, position
