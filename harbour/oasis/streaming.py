"""
Judge an OASIS answer while it streams in, so that nothing is read back.

L{ZipStream} reads a zip front to back as its bytes arrive: each member's
local header, then its data, inflated and CRC-checked on the way (and
parsed for C{ERR_CODE} when it is XML), then the central directory, which
must list exactly the members seen, in order, at the offsets seen, with the
same sizes and CRCs, and end the answer.  Its verdict is then the one
L{classify} gives the same bytes.

A member compressed otherwise than stored or deflated decides the answer
at its local header: refused, as L{classify} refuses it, and passed over
unread (see L{harbour.oasis.classify.METHODS}).

What it cannot judge from the stream alone (an answer that is not a zip, a
member sized only by a data descriptor after it, Zip64, encryption, a zip
cut short or corrupt) it leaves to L{classify}, which reads the whole
file and has the last word: those
answers are rare, and their verdicts then come from one place.  So it does
with a member that breaks the caps of L{harbour.oasis.classify}, whether
its header says so or its inflated bytes do: inflating stops there, and
L{classify} refuses it as promptly; and with a member that inflates
beyond the size its header declares, and an XML member too large to be an
error document (L{MAX_STREAMED_XML}): parsing it is a thread's work.
"""

from __future__ import annotations

import struct
import zlib
from xml.etree.ElementTree import ParseError

import attr

from harbour.oasis.classify import (
    CHUNK,
    DATA,
    MAX_DIRECTORY,
    MAX_INFLATED,
    MAX_RATIO,
    RETRY_LATER,
    Caps,
    ErrorFinder,
    Verdict,
    unsent_method,
    verdict_for,
)

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"
#: signature, version, flags, method, time, date, crc, sizes, name and
#: extra lengths.
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
#: signature, versions, flags, method, time, date, crc, sizes, name, extra
#: and comment lengths, disk, attributes, the local header's offset.
_CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
#: signature, disks, entries (this disk and all), size, offset, comment length.
_END_RECORD = struct.Struct("<4s4H2LH")

_DEFLATED = 8
_UTF8 = 0x800
#: The flags a member may carry here: deflate's speed options and UTF-8
#: names (not encryption, data descriptors, patches...).
_PLAIN_FLAGS = 0x6 | _UTF8
#: The latest zip version a member may need (as C{zipfile} reads).
MAX_VERSION = 63
#: A size or offset of this value is really in a Zip64 record.
_ZIP64 = 0xFFFFFFFF

#: The largest XML member parsed as it streams (by its declared size):
#: OASIS's error documents are well under a kilobyte, while parsing a
#: large XML report would hold the reactor for seconds; larger XML is
#: judged by L{classify}, in a thread.
MAX_STREAMED_XML = 1 << 16

#: The most members followed as they stream: each is remembered until the
#: central directory is checked, and a group's answer holds a few dozen.
MAX_MEMBERS = 1000


@attr.s(auto_attribs=True, frozen=True)
class _Member:
    """
    A member as its local header describes it.
    """

    name: str
    raw_name: bytes
    offset: int
    flags: int
    method: int
    crc: int
    compressed: int
    size: int


class _Undecidable(Exception):
    """
    The stream alone cannot judge this answer: L{classify} must.
    """


class ZipStream:
    """
    Follows one answer's bytes as they arrive; see the module's docstring.

    Feed it every byte, in order, with L{feed}; then L{verdict} says what
    the answer means, or that the file must be classified.
    """

    def __init__(self, max_inflated: int = MAX_INFLATED, max_ratio: float = MAX_RATIO) -> None:
        """
        @param max_inflated: See L{harbour.oasis.classify.MAX_INFLATED}.
        @param max_ratio: See L{harbour.oasis.classify.MAX_RATIO}.
        """
        self._caps = Caps(max_inflated, max_ratio)
        self._offset = 0
        self._header = bytearray()
        self._directory: bytearray | None = None
        self._members: list[_Member] = []
        self._member: _Member | None = None
        self._remaining = 0
        self._undecidable = False
        # The first member that decides the answer, as classify would.
        self._decided: Verdict | None = None
        self._inflater: zlib._Decompress | None = None
        self._parser: ErrorFinder | None = None
        self._crc = 0
        self._inflated = 0
        self._not_xml: ParseError | LookupError | None = None

    def feed(self, data: bytes) -> None:
        """
        Follow the next bytes of the answer.
        """
        if self._undecidable:
            return
        try:
            if len(data) < self._remaining and self._inflater is None and self._parser is None:
                # The bulk of a large answer: a stored member's middle.
                self._remaining -= len(data)
                self._offset += len(data)
                if self._decided is None:
                    self._inflate(data)
                return
            self._feed(memoryview(data))
        except Exception:
            # Whatever stops the stream (an undecidable answer, a deflate
            # error, a surprise) leaves the answer to classify: judging
            # early must never cost a download.
            self._give_up()

    def _give_up(self) -> None:
        self._undecidable = True
        self._header = bytearray()
        self._directory = None
        self._inflater = None
        self._parser = None

    def _feed(self, pending: memoryview) -> None:
        while pending:
            if self._remaining:
                taken = pending[: self._remaining]
                pending = pending[len(taken) :]
                self._remaining -= len(taken)
                self._offset += len(taken)
                if self._decided is None:
                    self._member_bytes(taken)
                if not self._remaining:
                    self._member_end()
            elif self._directory is not None:
                self._directory += pending
                if len(self._directory) > MAX_DIRECTORY:
                    raise _Undecidable()
                return
            else:
                pending = self._next_header(pending)

    def _next_header(self, pending: memoryview) -> memoryview:
        """
        Read the header that starts with the bytes gathered so far and
        goes on with C{pending}, if whole; else gather C{pending} too.
        Only a header cut across reads is gathered: one read whole is read
        where it is, and the member's bytes after it are not copied.

        @return: The bytes past the header, which belong to what follows.
        """
        if self._header:
            self._header += pending
            header: bytearray | memoryview = self._header
        else:
            header = pending
        if len(header) < 4:
            return self._gathered(header)
        if header[:4] == _CENTRAL and self._members:
            self._directory, self._header = bytearray(header), bytearray()
            return memoryview(b"")
        if header[:4] != _LOCAL:
            raise _Undecidable()
        if len(header) < _LOCAL_HEADER.size:
            return self._gathered(header)
        (ignored, version, flags, method, time, date, crc, compressed, size, name_length, extra_length) = (
            _LOCAL_HEADER.unpack_from(header)
        )
        length = _LOCAL_HEADER.size + name_length + extra_length
        if len(header) < length:
            return self._gathered(header)
        if flags & ~_PLAIN_FLAGS:
            raise _Undecidable()
        if _ZIP64 in (compressed, size):
            raise _Undecidable()
        if len(self._members) >= MAX_MEMBERS:
            raise _Undecidable()
        raw_name = bytes(header[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_length])
        if b"\0" in raw_name:
            # A zip reader cuts the name there: the member would be another
            # kind to it than its whole name says.
            raise _Undecidable()
        name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437")
        member = _Member(name, raw_name, self._offset, flags, method, crc, compressed, size)
        self._offset += length
        # A view: gathered bytes are then left as they are, never resized
        # (the next header is gathered anew).
        rest = memoryview(header)[length:]
        self._header = bytearray()
        self._member_start(member)
        if not compressed:
            self._member_end()
        return rest

    def _gathered(self, header: bytearray | memoryview) -> memoryview:
        """
        Keep C{header}, a header's first bytes, until the rest comes.

        @return: No bytes: all were kept.
        """
        if header is not self._header:
            self._header = bytearray(header)
        return memoryview(b"")

    def _member_start(self, member: _Member) -> None:
        self._member = member
        self._members.append(member)
        self._remaining = member.compressed
        self._crc = 0
        self._inflated = 0
        self._inflater = None
        self._parser = None
        self._not_xml = None
        if self._decided is None:
            # Refused unread, and its bytes passed over: no cap bounds what
            # zipfile would inflate of it.
            self._decided = unsent_method(member.name, member.method)
        if self._decided is None:
            self._inflater = zlib.decompressobj(-15) if member.method == _DEFLATED else None
            xml = member.name.lower().endswith(".xml")
            self._parser = ErrorFinder() if xml else None
            if xml and member.size > MAX_STREAMED_XML:
                # Parsing it here would hold the reactor for seconds: it
                # is data, not an error document, and a thread judges it.
                raise _Undecidable()
            # The header's sizes refuse an honest bomb before a byte is
            # inflated; counting while inflating refuses a lying one.
            self._within_caps(member.size)

    def _member_bytes(self, data: memoryview) -> None:
        inflater = self._inflater
        if inflater is None:
            self._inflate(data)
            return
        if inflater.eof:
            raise _Undecidable()  # bytes past the end of the deflate stream
        # Inflate a step at a time, so that a bomb is caught within a step,
        # and never more than one byte past the member's declared size.
        self._inflate(inflater.decompress(data, self._step()))
        # Once the stream has ended, zlib leaves what follows it as the
        # unconsumed tail as well as unused: asked again, it inflates
        # nothing and keeps it, for ever.
        while inflater.unconsumed_tail and not inflater.eof:
            self._inflate(inflater.decompress(inflater.unconsumed_tail, self._step()))
        if inflater.eof and inflater.unconsumed_tail:
            raise _Undecidable()  # bytes past the end of the deflate stream

    def _step(self) -> int:
        """
        @return: How many bytes the next inflating step may make: one past
            the member's declared size is enough to know it lies.
        """
        member = self._member
        assert member is not None
        return max(1, min(CHUNK, member.size + 1 - self._inflated))

    def _within_caps(self, size: int) -> None:
        """
        @raise _Undecidable: if the member, at C{size} bytes, breaks a cap:
            inflating stops, and L{classify} words the refusal (it will
            stop as soon).
        """
        member = self._member
        assert member is not None
        if self._caps.exceeded(member.name, size, member.compressed) is not None:
            raise _Undecidable()

    def _inflate(self, data: bytes | memoryview) -> None:
        """
        Take C{data}, the next inflated bytes of the member.
        """
        if not data:
            return
        self._crc = zlib.crc32(data, self._crc)
        self._inflated += len(data)
        member = self._member
        assert member is not None
        if self._inflated > member.size:
            raise _Undecidable()  # beyond its declared size: classify refuses it
        self._within_caps(self._inflated)
        if self._parser is not None and self._not_xml is None:
            try:
                self._parser.feed(bytes(data))
            except (ParseError, LookupError) as e:
                # It counts once the member's CRC shows these are the bytes
                # sent, not bytes damaged on the way.
                self._not_xml = e

    def _member_end(self) -> None:
        member = self._member
        assert member is not None
        if self._decided is not None:
            self._member = None
            return
        if self._inflater is not None:
            self._inflate(self._inflater.flush())
            if not self._inflater.eof or self._inflater.unused_data:
                raise _Undecidable()  # cut short, or bytes past its end
        self._member = None
        if self._crc != member.crc or self._inflated != member.size:
            raise _Undecidable()  # corrupt: classify says how
        self._caps.read(self._inflated, member.compressed)
        if self._not_xml is not None:
            self._decided = _not_xml(member, self._not_xml)
            return
        if self._parser is None:
            if not self._inflated:
                self._decided = Verdict(RETRY_LATER, description=f"member {member.name} is empty")
            return
        try:
            self._parser.close()
        except (ParseError, LookupError) as e:
            self._decided = _not_xml(member, e)
            return
        if self._parser.code is not None:
            self._decided = verdict_for(self._parser.code, self._parser.description)

    def verdict(self) -> Verdict | None:
        """
        Judge the answer, once every byte has been fed.

        @return: The verdict L{classify} gives the same bytes, or L{None} if
            the file must be classified: the stream alone cannot judge it.
        """
        if self._undecidable or self._directory is None or self._remaining or self._header:
            return None
        try:
            self._check_directory(self._directory)
        except (_Undecidable, struct.error):
            return None
        if self._decided is not None:
            return self._decided
        return Verdict(DATA, members=tuple(member.name for member in self._members))

    def _check_directory(self, directory: bytearray) -> None:
        """
        The central directory must list exactly the members streamed, and
        end the answer.

        @raise _Undecidable: if it does not.
        """
        position = 0
        for member in self._members:
            (
                signature,
                made_by,
                version,
                flags,
                method,
                time,
                date,
                crc,
                compressed,
                size,
                name_length,
                extra_length,
                comment_length,
                disk,
                internal,
                external,
                offset,
            ) = _CENTRAL_HEADER.unpack_from(directory, position)
            name_at = position + _CENTRAL_HEADER.size
            name = bytes(directory[name_at : name_at + name_length])
            if (
                (signature, name, offset, method, crc, compressed, size, disk)
                != (
                    _CENTRAL,
                    member.raw_name,
                    member.offset,
                    member.method,
                    member.crc,
                    member.compressed,
                    member.size,
                    0,
                )
                or flags != member.flags
                or version > MAX_VERSION
            ):
                raise _Undecidable()
            position = name_at + name_length + extra_length + comment_length
        (signature, disk, directory_disk, here, entries, size, offset, comment_length) = (
            _END_RECORD.unpack_from(directory, position)
        )
        count = len(self._members)
        expected = (_END, 0, 0, count, count, position, self._offset)
        if (signature, disk, directory_disk, here, entries, size, offset) != expected:
            raise _Undecidable()
        # No comment either: a reader looks for the end record from the end
        # of the file, and one hidden in a comment would make it read
        # another zip than the one checked here.
        if comment_length or position + _END_RECORD.size != len(directory):
            raise _Undecidable()


def _not_xml(member: _Member, error: ParseError | LookupError) -> Verdict:
    return Verdict(RETRY_LATER, description=f"member {member.name} is not well-formed XML: {error}")
