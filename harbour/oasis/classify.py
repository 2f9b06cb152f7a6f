"""
What an OASIS answer means.

OASIS answers HTTP 200 with a zip whatever happened: data, or one XML
member whose C{ERR_CODE} says why there is none.  Sometimes it sends an
HTML "Acceptable Use Policy" page instead, with 200 too.  L{classify} reads
an answer (bytes, a path or a file) and says which of these it is; every
member is read through, so a zip cut short or a corrupt member is caught
here rather than by the analyst.  Reading stops, and the answer is
L{REFUSED}, once the members inflate beyond L{MAX_INFLATED} bytes, or a member
or the members so far together beyond L{MAX_RATIO} times their compressed
size: a zip bomb is refused in moments instead of filling the disk's or
the CPU's time.  A member compressed otherwise than OASIS compresses
(L{METHODS}) is refused unread, and so are members that overlap (the same
bytes listed twice: L{overlapping}).

When requests come too fast OASIS answers HTTP 429 with that page, and no
C{Retry-After}: the page says how long to wait (L{throttle_pause}).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.parsers import expat

import attr

#: The answer holds data.
DATA = "data"
#: OASIS has no data for this selection (code 1000): the task is done, empty.
EMPTY = "empty"
#: Try again later: a group zip in preparation (1015), asked for again
#: without using an attempt for a while (see
#: L{harbour.services.outcomes.Outcomes.in_preparation}); or the throttle
#: page, or an answer that is not a whole zip, retried with backoff as
#: other errors are.
RETRY_LATER = "retry_later"
#: The report definition is wrong: retrying cannot help.
BAD_REQUEST = "bad_request"
#: Any other OASIS error: retry with backoff.
ERROR = "error"
#: The answer breaks a decompression cap (a zip bomb, a member inflating
#: past the size its header declares, one compressed otherwise than
#: OASIS compresses, or members that overlap): no retry can mend it.
REFUSED = "refused"

NO_DATA = 1000
IN_PREPARATION = 1015

#: Codes that mean the request itself is wrong (SPEC section 7, plus 1011
#: "Empty Query", 1014 "Start Date is beyond the limit": a window older
#: than OASIS keeps only grows older, 1016 "GROUPID does not exist" and
#: 1019 "market_term=ALL not supported").
BAD_REQUEST_CODES = frozenset({1001, 1002, 1004, 1005, 1011, 1014, 1016, 1017, 1018, 1019, 1020})

#: How much of a member is read per step.
CHUNK = 1 << 16

#: The most bytes the members of one answer may inflate to, all together.
#: The largest real answer, a day of real-time prices for every node, is
#: about 1.8 GB of CSV; twice that leaves room for growth.
MAX_INFLATED = 4 << 30

#: The most times a member may inflate over its compressed size.  Real
#: OASIS CSV zips inflate about 10 to 25 times (XML a little more); a
#: member of one repeated byte inflates about 1,000 times.
MAX_RATIO = 200

#: A member, or the members so far together, are not held to L{MAX_RATIO}
#: until they have inflated this far: a small member (an error document,
#: a day with few rows) may compress very well and costs nothing to read.
RATIO_FLOOR = 1 << 20

#: The compression methods a member may use: OASIS deflates (storing
#: costs nothing to read).  Any other is refused unread: C{zipfile}
#: inflates bzip2 and LZMA with no bound on what one read makes, so a few
#: KB of bzip2 whose header declares a small size inflate to GBs at once,
#: before any cap can count them.
METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

#: The wait OASIS's Acceptable Use Policy asks between requests, and so the
#: least a throttled request waits.
THROTTLE_PAUSE = 5.0
#: The longest wait a throttle page is believed for: it is free text, and
#: a misprint must not hold every worker off OASIS for days.
THROTTLE_PAUSE_MOST = 3600.0
#: How much of a throttle page is read for its wait: the recorded page is
#: 114 bytes.
THROTTLE_PAGE_BYTES = 1 << 14

_RETRY_AFTER_TEXT = re.compile(rb"retry\s+your\s+request\s+after\s+(\d+(?:\.\d+)?)\s*sec", re.IGNORECASE)


@attr.s(frozen=True, auto_attribs=True)
class Verdict:
    """
    What an answer means.

    @ivar kind: One of L{DATA}, L{EMPTY}, L{RETRY_LATER}, L{BAD_REQUEST},
        L{ERROR}, L{REFUSED}.
    @ivar members: The zip's member names (for data).
    @ivar code: The OASIS error code, if the answer carried one.
    @ivar description: Why, in words fit for C{last_error}.
    """

    kind: str
    members: tuple[str, ...] = ()
    code: int | None = None
    description: str = ""


def classify(
    answer: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
    max_inflated: int = MAX_INFLATED,
    max_ratio: float = MAX_RATIO,
) -> Verdict:
    """
    Classify one OASIS answer.

    @param answer: Its bytes, the path of a file holding it, or a seekable
        binary file.
    @param max_inflated: See L{MAX_INFLATED}.
    @param max_ratio: See L{MAX_RATIO}.
    @return: The verdict; L{REFUSED} for members that inflate beyond the
        caps or beyond the size their header declares, that are
        compressed otherwise than L{METHODS}, or that overlap.
    """
    source: BinaryIO
    if isinstance(answer, (bytes, bytearray, memoryview)):
        source = io.BytesIO(answer)
    elif isinstance(answer, (str, os.PathLike)):
        with open(answer, "rb") as f:
            return classify(f, max_inflated, max_ratio)
    else:
        source = answer
    head = source.read(512)
    source.seek(0)
    if not head.startswith(b"PK"):
        if b"<html" in head.lower() or b"<!doctype html" in head.lower():
            return Verdict(RETRY_LATER, description="OASIS sent an HTML page (throttled)")
        if not head:
            return Verdict(RETRY_LATER, description="empty answer")
        return Verdict(RETRY_LATER, description="answer is not a zip")
    directory = _directory_size(source)
    if directory > MAX_DIRECTORY:
        return Verdict(
            REFUSED, description=f"its central directory is {directory:,} bytes, more than {MAX_DIRECTORY:,}"
        )
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            if not members:
                return Verdict(RETRY_LATER, description="zip has no members")
            # Before any is read: the caps count each entry's compressed
            # size, and the same bytes listed N times would pass them N-fold.
            overlap = overlapping(archive)
            if overlap is not None:
                return Verdict(REFUSED, description=overlap)
            caps = Caps(max_inflated, max_ratio)
            # Each entry is opened as itself: by name, a second member of
            # the same name would be read in place of the first.
            for info in members:
                verdict = _read_member(archive, info, caps)
                if verdict is not None:
                    return verdict
            names = tuple(info.filename for info in members)
    except DAMAGE as e:
        return Verdict(RETRY_LATER, description=f"zip cut short or corrupt: {e}")
    return Verdict(DATA, members=names)


#: A member's local header: its signature, then (past versions, flags,
#: method, time, date, CRC and sizes) the lengths of its name and extra
#: field, which come after it.
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def overlapping(archive: zipfile.ZipFile) -> str | None:
    """
    Whether the entries of C{archive}'s central directory share bytes: the
    same member listed twice, or one whose bytes lie within another's.  No
    zip writer makes such a zip, and every reader would read those bytes
    once per entry: a few hundred KB listed many times inflate to GBs,
    each entry within the caps on its own, and their rows would be taken
    as many times.  (Bytes between members, or after the last, are not
    looked at.)

    @param archive: An open zip, read from a seekable file.
    @return: Which members overlap, in words fit for C{last_error}, or
        L{None} if each lies apart from the others.
    @raise zipfile.BadZipFile: if a member's local header is not where its
        entry says: the zip is damaged (as C{zipfile} would find on
        reading that member).
    """
    source = archive.fp
    assert source is not None, "the archive is open"
    entries = sorted(archive.infolist(), key=lambda info: info.header_offset)
    for info, following in zip(entries, entries[1:]):
        source.seek(info.header_offset)
        header = source.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or not header.startswith(_LOCAL_SIGNATURE):
            raise zipfile.BadZipFile(f"no local header for member {info.filename} at {info.header_offset}")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size
        if end > following.header_offset:
            return (
                f"members {info.filename} and {following.filename} overlap: their bytes would be read twice"
            )
    return None


#: What C{zipfile} raises reading a zip cut short or damaged, whichever
#: byte the damage hit: a stream that does not inflate (C{zlib.error}), an
#: offset before the file's start (C{ValueError}: "negative seek value"),
#: a name that is not the UTF-8 its flags claim (C{UnicodeDecodeError}, a
#: C{ValueError}), or the encryption flag set (C{RuntimeError}); and
#: C{OSError}, the disk failing to read the file, which is fetched again
#: as well.  (A damaged header naming another compression is refused
#: before C{zipfile} reads the member: see L{METHODS}.)
DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    NotImplementedError,
    zlib.error,
    OSError,
    ValueError,
    RuntimeError,
)

#: The largest central directory read, or kept as an answer streams: one
#: entry is about 100 bytes, an answer holds a handful of members, and
#: C{zipfile} makes an object of every entry, however many there are.
MAX_DIRECTORY = 1 << 20

#: An end of central directory record: its signature, and its length
#: without the comment that may follow it.
_END_SIGNATURE = b"PK\x05\x06"
_END_LENGTH = 22


def _directory_size(source: BinaryIO) -> int:
    """
    @return: The size of the central directory named by the end record
        C{zipfile} takes, found as it finds it: a record without comment
        that ends the file, else the last signature in the file's last 64
        KiB and a record; 0 if there is none (C{zipfile} then refuses the
        file).
    """
    end = source.seek(0, os.SEEK_END)
    source.seek(max(0, end - _END_LENGTH - 0xFFFF))
    tail = source.read()
    source.seek(0)
    last = tail[-_END_LENGTH:]
    if len(last) == _END_LENGTH and last.startswith(_END_SIGNATURE) and last.endswith(b"\0\0"):
        record = last
    else:
        found = tail.rfind(_END_SIGNATURE)
        record = tail[found : found + _END_LENGTH] if found >= 0 else b""
    if len(record) != _END_LENGTH:
        return 0
    return int.from_bytes(record[12:16], "little")


def throttle_pause(page: bytes) -> float:
    """
    How long a throttle page asks us to wait.

    @param page: The start of the body of a 429 answer without
        C{Retry-After}, such as the recorded "CAISO Acceptable Use Policy
        Violation. Please retry your request after 5 seconds."
    @return: The seconds it names, but never less than L{THROTTLE_PAUSE}
        (OASIS's rule is one request every 5 seconds, whatever a page
        says) nor more than L{THROTTLE_PAUSE_MOST}; L{THROTTLE_PAUSE} when
        it names none.
    """
    found = _RETRY_AFTER_TEXT.search(page[:THROTTLE_PAGE_BYTES])
    if found is None:
        return THROTTLE_PAUSE
    return min(THROTTLE_PAUSE_MOST, max(THROTTLE_PAUSE, float(found.group(1))))


@attr.s(auto_attribs=True)
class Caps:
    """
    How far the members of one answer may inflate, and how far they have.

    The ratio is held for each member, and for the members so far
    together: a bomb of many members, each under L{RATIO_FLOOR}, passes
    the first and not the second.

    @ivar inflated: What the members read whole inflated to, together.
    @ivar compressed: Their compressed sizes, together.
    """

    max_inflated: int
    max_ratio: float
    inflated: int = 0
    compressed: int = 0

    def exceeded(self, name: str, size: int, compressed: int) -> Verdict | None:
        """
        @param size: What member C{name} inflates to (so far, or as its
            header says).
        @param compressed: Its compressed size.
        @return: A L{REFUSED} verdict if C{size} more bytes (on top of the members
            before) break a cap, else L{None}.
        """
        inflated = self.inflated + size
        if inflated > self.max_inflated:
            return Verdict(
                REFUSED,
                description=f"member {name} inflates beyond {_bytes(self.max_inflated)}, "
                f"the most an answer may inflate to",
            )
        if size > RATIO_FLOOR and size > self.max_ratio * max(compressed, 1):
            return Verdict(
                REFUSED,
                description=f"member {name} inflates beyond {self.max_ratio:g} times its "
                f"compressed size ({_bytes(compressed)}): no real report does",
            )
        if inflated > RATIO_FLOOR and inflated > self.max_ratio * max(self.compressed + compressed, 1):
            return Verdict(
                REFUSED,
                description=f"member {name} inflates beyond {self.max_ratio:g} times the compressed "
                f"size of the members so far ({_bytes(self.compressed + compressed)}): no real report does",
            )
        return None

    def read(self, size: int, compressed: int) -> None:
        """
        A member was read whole: it inflated to C{size} bytes, from
        C{compressed}.
        """
        self.inflated += size
        self.compressed += compressed


def unsent_method(name: str, method: int) -> Verdict | None:
    """
    @param name: A member's name.
    @param method: Its compression method, as its header names it.
    @return: A L{REFUSED} verdict if the method is not one of L{METHODS},
        else L{None}.
    """
    if method in METHODS:
        return None
    return Verdict(
        REFUSED, description=f"member {name} uses compression method {method}, which OASIS never sends"
    )


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, caps: Caps) -> Verdict | None:
    """
    Read one member through (checking its CRC), within C{caps} and within
    the size its header declares; for XML, parse it.

    @return: A verdict if the member decides the answer, else L{None}.
    """
    name = info.filename
    # Checked before reading, as no cap can bound what zipfile inflates
    # of those methods.
    verdict = unsent_method(name, info.compress_type)
    if verdict is not None:
        return verdict
    # The header's sizes refuse an honest bomb before a byte is inflated;
    # counting while reading refuses a lying one.
    verdict = caps.exceeded(name, info.file_size, info.compress_size)
    if verdict is not None:
        return verdict
    parser = ErrorFinder() if name.lower().endswith(".xml") else None
    try:
        return _read_open_member(archive, info, caps, parser)
    except _BeyondDeclaredSize:
        return Verdict(
            REFUSED,
            description=f"member {name} inflates beyond the {_bytes(info.file_size)} its header declares",
        )


def _read_open_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, caps: Caps, parser: ErrorFinder | None
) -> Verdict | None:
    """
    L{_read_member}'s reading.

    @raise _BeyondDeclaredSize: if the member inflates beyond its declared
        size.
    """
    name = info.filename
    xml = parser is not None
    inflated = 0
    with archive.open(info) as member:
        _count_inflated(member, info.file_size)
        first = _read_within(member)
        if not first and not xml:
            return Verdict(RETRY_LATER, description=f"member {name} is empty")
        chunk = first
        while chunk:
            inflated += len(chunk)
            verdict = caps.exceeded(name, inflated, info.compress_size)
            if verdict is not None:
                return verdict
            if parser is not None:
                try:
                    parser.feed(chunk)
                except (ParseError, LookupError) as e:
                    return Verdict(RETRY_LATER, description=f"member {name} is not well-formed XML: {e}")
            chunk = _read_within(member)
    caps.read(inflated, info.compress_size)
    if parser is None:
        return None
    try:
        parser.close()
    except (ParseError, LookupError) as e:
        return Verdict(RETRY_LATER, description=f"member {name} is not well-formed XML: {e}")
    if parser.code is None:
        return None
    return verdict_for(parser.code, parser.description)


def _read_within(member: IO[bytes]) -> bytes:
    """
    @return: The next bytes of C{member}, none past the size its header
        declares (see L{_inflated_through}).
    @raise _BeyondDeclaredSize: if it inflates past that size.
    @raise zipfile.BadZipFile: if its CRC fails, and not because it was
        cut at its declared size.
    """
    try:
        chunk = member.read(CHUNK)
    except zipfile.BadZipFile:
        # A CRC that fails because the member was cut at its declared
        # size is a lie about its size, not damage.
        if _inflated_through(member):
            raise
        raise _BeyondDeclaredSize() from None
    if not chunk and not _inflated_through(member):
        raise _BeyondDeclaredSize()
    return chunk


class _BeyondDeclaredSize(Exception):
    """
    A member inflates beyond the size its header declares.
    """


#: The type of zlib's inflaters, which C{zipfile} reads deflated members with.
_INFLATER = type(zlib.decompressobj())


class _Counted:
    """
    C{zipfile}'s inflater of one member, counting what it inflates:
    C{zipfile} cuts what a read inflates past the member's declared size,
    unseen, and its CRC then fails as if the member were damaged.

    @ivar inflater: The inflater.
    @ivar declared: The size the member's header declares.
    @ivar inflated: How many bytes it inflated.
    """

    def __init__(self, inflater: zlib._Decompress, declared: int) -> None:
        self.inflater = inflater
        self.declared = declared
        self.inflated = 0

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        """
        See C{zlib.Decompress.decompress}.
        """
        inflated = self.inflater.decompress(data, max_length)
        self.inflated += len(inflated)
        return inflated

    def flush(self, length: int = zlib.DEF_BUF_SIZE) -> bytes:
        """
        See C{zlib.Decompress.flush}.
        """
        inflated = self.inflater.flush(length)
        self.inflated += len(inflated)
        return inflated

    @property
    def eof(self) -> bool:
        """
        See C{zlib.Decompress.eof}.
        """
        return self.inflater.eof

    @property
    def unconsumed_tail(self) -> bytes:
        """
        See C{zlib.Decompress.unconsumed_tail}.
        """
        return self.inflater.unconsumed_tail

    @property
    def unused_data(self) -> bytes:
        """
        See C{zlib.Decompress.unused_data}.
        """
        return self.inflater.unused_data


def _count_inflated(member: IO[bytes], declared: int) -> None:
    """
    Have C{member}'s inflater, if it is deflated, count what it inflates
    (see L{_Counted}) against the size C{declared}.
    """
    # zipfile keeps its inflater private; a stored member has nothing past
    # its size to hide (other compressions are refused unread).
    inflater = getattr(member, "_decompressor", None)
    if isinstance(inflater, _INFLATER):
        cast(Any, member)._decompressor = _Counted(inflater, declared)


def _inflated_through(member: IO[bytes]) -> bool:
    """
    @param member: A deflated or stored member, read to the size its
        header declares (C{zipfile} reads no further), its inflater
        counting (L{_count_inflated}).
    @return: Whether it inflated to that size and no further, its deflate
        stream ending there too: if not, the member inflates beyond its
        declared size, and what lies past it was never read, nor checked.
    """
    counted = getattr(member, "_decompressor", None)
    if not isinstance(counted, _Counted):
        return True
    if counted.inflated > counted.declared:
        return False  # zipfile cut the last read's excess
    inflater = counted.inflater
    if inflater.eof:
        return True
    # An honest stream may stop short of its end marker when its last
    # bytes filled a read exactly: what it still holds, and what zipfile
    # left unread, inflates to nothing.
    rest = inflater.unconsumed_tail
    while True:
        if inflater.decompress(rest, 1):
            return False
        if inflater.eof:
            return True
        rest = inflater.unconsumed_tail + cast(Any, member)._read2(CHUNK)
        if not rest:
            return True


def verdict_for(code: int, description: str) -> Verdict:
    """
    @param code: An OASIS C{ERR_CODE}.
    @param description: Its C{ERR_DESC}.
    @return: What an answer carrying that code means.
    """
    text = f"OASIS error {code}: {description}".rstrip(": ")
    if code == NO_DATA:
        return Verdict(EMPTY, code=code, description=text)
    if code == IN_PREPARATION:
        return Verdict(RETRY_LATER, code=code, description=text)
    if code in BAD_REQUEST_CODES:
        return Verdict(BAD_REQUEST, code=code, description=text)
    return Verdict(ERROR, code=code, description=text)


def end_elements(parser: XMLPullParser[Element]) -> Iterator[Element]:
    """
    @return: The elements C{parser} has finished since last asked, for a
        parser made with C{events=("end",)}.
    """
    for event in parser.read_events():
        # Only "end" events were asked for, and they carry an element.
        if len(event) == 2 and isinstance(event[1], Element):
            yield event[1]


#: The elements whose text an error document carries, by local name.
_ERROR_FIELDS = frozenset({"ERR_CODE", "ERR_DESC"})

#: The most characters of an undefined entity's reference an error names,
#: as ElementTree's parser names it.
_ENTITY_SHOWN = 100

#: The most characters of an error field's text kept (real ones are under
#: 100): the description becomes a task's last error, a log line and an
#: event, and a document may make it as long as it likes.
FIELD_TEXT_KEPT = 4096


@attr.s(eq=False)
class _Field:
    """
    An C{ERR_CODE} or C{ERR_DESC} being read.

    @ivar name: Its local name.
    @ivar text: Its text so far: only what comes before its first child,
        as ElementTree's C{Element.text}.
    @ivar reading: Whether its text is still being read (no child yet).
    @ivar kept: How many characters of C{text} there are, at most
        L{FIELD_TEXT_KEPT}, leading white space not counted.
    @ivar cut: Whether more came than were kept.
    """

    name: str = attr.ib()
    text: list[str] = attr.ib(factory=list)
    reading: bool = attr.ib(default=True)
    kept: int = attr.ib(default=0)
    cut: bool = attr.ib(default=False)


class ErrorFinder:
    """
    Streams XML and notes C{ERR_CODE}/C{ERR_DESC} by local name, whatever
    the namespace prefix (errors use C{m:}).

    It parses with expat as ElementTree's parser does (the same namespace
    handling, encodings and errors, so the same verdicts), but builds no
    tree: a member of a million rows costs it no more memory than one of a
    few.  Of each field's text it keeps L{FIELD_TEXT_KEPT} characters, and
    marks a cut with an ellipsis.  Outside the error's fields only the
    start of each element is seen; inside them, the ends and the text too.
    """

    def __init__(self) -> None:
        parser = self._parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.StartDoctypeDeclHandler = self._doctype
        self.code: int | None = None
        self.description = ""
        # From the outermost field open in: each element open, a field or
        # None.
        self._open: list[_Field | None] = []
        # Whether the document has a type (see _doctype).
        self._typed = False

    def feed(self, data: bytes) -> None:
        """
        Parse the next bytes of the document.

        @raise ParseError: if they are not well-formed.
        @raise LookupError: if the document's encoding is unknown.
        """
        self._parse(data, False)

    def close(self) -> None:
        """
        The document is complete.

        @raise ParseError: if it ended early.
        """
        self._parse(b"", True)

    def _parse(self, data: bytes, final: bool) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as e:
            raise ParseError(str(e)) from None

    def _start(self, name: str, attributes: object) -> None:
        opened = self._open
        if opened:
            inner = opened[-1]
            if inner is not None:
                inner.reading = False  # what follows is a child's
        local = name.rpartition("}")[2]
        if local in _ERROR_FIELDS:
            if not opened:
                self._parser.EndElementHandler = self._end
                self._parser.CharacterDataHandler = self._text
            opened.append(_Field(local))
        elif opened:
            opened.append(None)

    def _text(self, text: str) -> None:
        if not self._open:
            return  # text outside the fields, after a document type
        inner = self._open[-1]
        if inner is not None and inner.reading:
            if not inner.kept:
                text = text.lstrip()  # stripped in the end: no room taken
            room = FIELD_TEXT_KEPT - inner.kept
            if len(text) > room:
                # White space past the room would be stripped: no cut.
                if not inner.cut and not text[room:].isspace():
                    inner.cut = True
                text = text[:room]
            if text:
                inner.text.append(text)
                inner.kept += len(text)

    def _end(self, name: str) -> None:
        if not self._open:
            return  # an end outside the fields, after a document type
        field = self._open.pop()
        if field is not None:
            text = "".join(field.text).strip() + ("…" if field.cut else "")
            if field.name == "ERR_CODE":
                try:
                    self.code = int(text)
                except ValueError:
                    self.code = -1
            else:
                self.description = text
        if not self._open and not self._typed:
            self._parser.EndElementHandler = None
            self._parser.CharacterDataHandler = None

    def _doctype(self, name: str, system: str | None, public: str | None, internal: bool) -> None:
        # Only a document type can leave an entity undefined without expat
        # failing the document; ElementTree's parser fails it then, and so
        # must this one.  Expat hands what has no handler of its own to the
        # default one, character references included, so every text is
        # taken from now on: a slower path that OASIS's answers never take.
        self._typed = True
        self._parser.CharacterDataHandler = self._text
        self._parser.DefaultHandlerExpand = self._default

    def _default(self, text: str) -> None:
        if text[:1] == "&" and len(text) >= 2:
            parser = self._parser
            raise ParseError(
                f"undefined entity {text[:_ENTITY_SHOWN]}: "
                f"line {parser.ErrorLineNumber}, column {parser.ErrorColumnNumber}"
            )
