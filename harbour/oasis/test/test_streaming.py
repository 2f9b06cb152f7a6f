"""
Tests for L{harbour.oasis.streaming}: on every shape of answer, the verdict
judged while streaming is L{classify}'s, or none (the file is then
classified).
"""

from __future__ import annotations

import datetime
import io
import struct
import zipfile
import zlib
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.classify import DATA, EMPTY, REFUSED, RETRY_LATER, Verdict, classify
from harbour.oasis.streaming import MAX_MEMBERS, MAX_STREAMED_XML, ZipStream
from harbour.oasis.test.test_classify import lying, nested, repeated, well_compressed
from harbour.testing.simulator import THROTTLE_PAGE, error_document
from harbour.testing.simulator.formats import MESSAGES

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
DATA_SAMPLE = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
NO_DATA_SAMPLE = SAMPLES / "error_1000_no_data_repacked.zip"
CREATED = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def zipped(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """
    @return: A zip of the given members.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def streamed(answer: bytes, step: int = 1000, **caps: float) -> Verdict | None:
    """
    @return: The verdict of a L{ZipStream} fed C{answer} C{step} bytes at
        a time.
    """
    stream = ZipStream(**caps)  # type: ignore[arg-type]
    for start in range(0, len(answer), step):
        stream.feed(answer[start : start + step])
    return stream.verdict()


class Endless(BaseException):
    """
    Stops a loop that would not end.  Not an L{Exception}: the stream
    takes any exception for an answer to leave to L{classify}.
    """


class AgreesWithClassifyTests(SynchronousTestCase):
    """
    Where the stream judges, it judges as L{classify}.
    """

    def assertAgrees(self, answer: bytes) -> Verdict:
        """
        The stream, fed in steps of several sizes, judges C{answer} as
        L{classify} does.

        @return: The verdict.
        """
        expected = classify(answer)
        for step in (1, 7, 1000, len(answer)):
            self.assertEqual(streamed(answer, step), expected, f"in steps of {step}")
        return expected

    def test_realData(self) -> None:
        """
        A real answer holding data is data, with its member's name.
        """
        verdict = self.assertAgrees(DATA_SAMPLE.read_bytes())
        self.assertEqual(verdict.kind, DATA)
        self.assertEqual(len(verdict.members), 1)

    def test_realNoData(self) -> None:
        """
        A real "no data" answer (code 1000) is empty.
        """
        self.assertEqual(self.assertAgrees(NO_DATA_SAMPLE.read_bytes()).kind, EMPTY)

    def test_errorCodes(self) -> None:
        """
        Error documents decide as their codes say, stored or deflated.
        """
        for code in sorted(MESSAGES):
            for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self.assertAgrees(zipped(("error.xml", error_document(code, CREATED)), method=method))

    def test_unknownEncoding(self) -> None:
        """
        An XML member declaring an encoding nobody knows is to be retried.
        """
        answer = zipped(("e.xml", b'<?xml version="1.0" encoding="UTust8"?><a/>'))
        self.assertEqual(self.assertAgrees(answer).kind, RETRY_LATER)

    def test_emptyMember(self) -> None:
        """
        A data member that is empty is to be retried, as L{classify} says.
        """
        answer = zipped(("a.csv", b"x,y\n"), ("b.csv", b""))
        self.assertEqual(self.assertAgrees(answer).kind, RETRY_LATER)

    def test_badXML(self) -> None:
        """
        An XML member that is not well-formed is to be retried.
        """
        self.assertEqual(self.assertAgrees(zipped(("a.xml", b"<a><b></a>"))).kind, RETRY_LATER)

    def test_otherCompressionRefused(self) -> None:
        """
        A member compressed otherwise than stored or deflated is refused at
        its local header, as L{classify} refuses it, and none of it is
        inflated: here a bzip2 member whose headers declare 1,000 bytes and
        which holds 4 MiB of zeros, and an honest LZMA member.  (The stream
        left them to L{classify}, which inflated the bzip2 one in one read
        and retried it as corrupt.)
        """
        bomb = lying(zipped(("a.csv", bytes(4 << 20)), method=zipfile.ZIP_BZIP2), 1000)
        for answer in (bomb, zipped(("a.csv", b"x,y\n1,2\n"), method=zipfile.ZIP_LZMA)):
            verdict = self.assertAgrees(answer)
            self.assertEqual(verdict.kind, REFUSED)
            self.assertIn("uses compression method", verdict.description)
            stream = ZipStream()
            stream.feed(answer)
            self.assertEqual(stream._inflated, 0)

    def test_otherCompressionAfterOthers(self) -> None:
        """
        A bzip2 member, first or after a deflated data member, is refused;
        after an error document it is not read, the document deciding
        first.
        """
        for members, kind in [
            ([("a.csv", b"x,y\n")], REFUSED),
            ([("e.xml", error_document(1000, CREATED))], EMPTY),
            ([], REFUSED),
        ]:
            answer = io.BytesIO()
            with zipfile.ZipFile(answer, "w") as archive:
                for name, data in members:
                    archive.writestr(name, data, zipfile.ZIP_DEFLATED)
                archive.writestr("b.xml", b"<a/>", zipfile.ZIP_BZIP2)
                archive.writestr("c.csv", b"x,y\n", zipfile.ZIP_DEFLATED)
            self.assertEqual(self.assertAgrees(answer.getvalue()).kind, kind)


class LeavesToClassifyTests(SynchronousTestCase):
    """
    What the stream alone cannot judge, it leaves to L{classify}.
    """

    def test_notAZip(self) -> None:
        """
        A throttle page or an empty answer is not judged.
        """
        self.assertIsNone(streamed(THROTTLE_PAGE))
        self.assertIsNone(streamed(b""))

    def test_cutShort(self) -> None:
        """
        A zip cut short anywhere is not judged.
        """
        answer = DATA_SAMPLE.read_bytes()
        for length in (10, 100, len(answer) // 2, len(answer) - 1):
            self.assertIsNone(streamed(answer[:length]))

    def test_corruptByte(self) -> None:
        """
        A zip with a changed byte in its data is not judged (a deflate
        error or a CRC that does not match).
        """
        answer = bytearray(zipped(("a.csv", b"0123456789" * 1000), method=zipfile.ZIP_STORED))
        answer[100] ^= 0xFF
        self.assertIsNone(streamed(bytes(answer)))
        self.assertEqual(classify(bytes(answer)).kind, RETRY_LATER)

    def test_dataDescriptor(self) -> None:
        """
        A member sized only by a data descriptor after it (a zip written
        to a stream) is not judged.
        """

        class Unseekable(io.RawIOBase):
            """
            A stream to write to, as a socket is: no seeking back.
            """

            def __init__(self) -> None:
                self.written = bytearray()

            def writable(self) -> bool:
                """
                @return: C{True}: it takes writes.
                """
                return True

            def write(self, data: object) -> int:
                """
                Keep C{data}.
                """
                chunk = bytes(data)  # type: ignore[call-overload]
                self.written += chunk
                return len(chunk)

        out = Unseekable()
        with zipfile.ZipFile(out, "w") as archive, archive.open("a.csv", "w") as member:
            member.write(b"x,y\n1,2\n")
        self.assertIsNone(streamed(bytes(out.written)))
        self.assertEqual(classify(bytes(out.written)).kind, DATA)

    def test_bomb(self) -> None:
        """
        A member inflating far beyond its compressed size is left to
        L{classify}, which refuses it.
        """
        answer = zipped(("a.csv", bytes(50 << 20)))
        self.assertIsNone(streamed(answer, 1 << 16))
        self.assertEqual(classify(answer).kind, REFUSED)

    def test_overlappingMembers(self) -> None:
        """
        Members that share bytes (one listed three times, or one within
        another) are left to L{classify}, which refuses them: the stream
        reads each member's bytes once, and the directory lists others.
        """
        for answer in (
            repeated(zipped(("a.csv", well_compressed(2 << 20))), 3),
            nested("a.csv", "b.csv", b"x,y\n1,2\n" * 100),
        ):
            for step in (1000, len(answer)):
                self.assertIsNone(streamed(answer, step))
            self.assertEqual(classify(answer).kind, REFUSED)

    def test_inflatedCap(self) -> None:
        """
        Members that inflate beyond C{max_inflated} together are left to
        L{classify}, which refuses them.
        """
        answer = zipped(("a.csv", b"x" * 5000), ("b.csv", b"y" * 5000))
        self.assertIsNone(streamed(answer, max_inflated=8000))
        self.assertEqual(classify(answer, max_inflated=8000).kind, REFUSED)

    def test_manySmallMembersBomb(self) -> None:
        """
        Members each under the ratio's floor that together inflate beyond
        the ratio are left to L{classify}, which refuses them, and are
        inflated no further than the member that passes it.
        """
        answer = zipped(*((f"{n}.csv", bytes(1 << 19)) for n in range(40)))
        stream = ZipStream()
        stream.feed(answer)
        self.assertIsNone(stream.verdict())
        self.assertEqual(len(stream._members), 3)
        self.assertEqual(classify(answer).kind, REFUSED)

    def test_inflatingStops(self) -> None:
        """
        Once a member breaks a cap, nothing more is inflated.
        """
        stream = ZipStream()
        answer = zipped(("a.csv", bytes(50 << 20)))
        stream.feed(answer[:2000])
        stream.feed(answer[2000:])
        self.assertIsNone(stream.verdict())
        self.assertLess(stream._inflated, 1 << 20)

    def test_largeXMLLeftToClassify(self) -> None:
        """
        An XML member declared larger than L{MAX_STREAMED_XML} is data, not
        an error document: it is not parsed as it streams (that would hold
        the reactor), but left to L{classify}.
        """
        rows = b"".join(b"<ROW><VALUE>%d</VALUE></ROW>" % i for i in range(MAX_STREAMED_XML // 20))
        document = b"<OASISReport>" + rows + b"</OASISReport>"
        self.assertGreater(len(document), MAX_STREAMED_XML)
        answer = zipped(("PRC_LMP.xml", document))
        stream = ZipStream()
        stream.feed(answer[:200])
        self.assertIsNone(stream._parser)
        stream.feed(answer[200:])
        self.assertIsNone(stream.verdict())
        self.assertEqual(classify(answer).kind, DATA)

    def test_smallXMLStillJudged(self) -> None:
        """
        An error document, well under L{MAX_STREAMED_XML}, is still judged
        as it streams.
        """
        answer = zipped(("e.xml", error_document(1000, CREATED)))
        verdict = streamed(answer)
        self.assertIsNotNone(verdict)
        self.assertEqual(verdict, classify(answer))

    def test_lyingLocalHeader(self) -> None:
        """
        A member whose local header declares fewer bytes than it inflates to
        is inflated no further than one byte past its declared size, and
        left to L{classify}.
        """
        answer = bytearray(zipped(("a.csv", bytes(900_000))))
        struct.pack_into("<I", answer, answer.index(b"PK\x03\x04") + 22, 1000)
        stream = ZipStream()
        stream.feed(bytes(answer))
        self.assertIsNone(stream.verdict())
        self.assertLessEqual(stream._inflated, 1001)

    def test_slightlyBeyondDeclaredSize(self) -> None:
        """
        A member whose headers (local and central) declare a few bytes
        less than it inflates to is left to L{classify}, which refuses it.
        """
        rows = b"".join(b"2025-06-%02d,NODE_%d,%d\n" % (n % 28 + 1, n % 97, n % 1000) for n in range(20_000))
        for excess in (1, 100, 10_000):
            answer = bytearray(zipped(("a.csv", rows)))
            struct.pack_into("<I", answer, answer.index(b"PK\x03\x04") + 22, len(rows) - excess)
            struct.pack_into("<I", answer, answer.index(b"PK\x01\x02") + 24, len(rows) - excess)
            self.assertIsNone(streamed(bytes(answer)), excess)
            self.assertEqual(classify(bytes(answer)).kind, REFUSED, excess)

    def test_bytesPastDeflateEnd(self) -> None:
        """
        A member whose compressed bytes go on past the end of its deflate
        stream, found in a step that inflates as much as a step may, is
        left to L{classify}: the stream stops inflating (zlib would keep
        the bytes past the end and answer nothing, however often asked).
        """
        content = b"x,y\n" + b"1,2\n" * 50_000
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = compressor.compress(content) + compressor.flush() + b"past the end" * 10
        name = b"a.csv"
        crc = zlib.crc32(content)
        local = struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), len(content), len(name), 0
        )
        central = struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(data),
            len(content),
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        directory = central + name
        end = struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(local) + len(name) + len(data), 0
        )
        answer = local + name + data + directory + end
        inflate = ZipStream._inflate
        steps: list[int] = []

        def counted(stream: ZipStream, data: bytes | memoryview) -> None:
            steps.append(len(data))
            if len(steps) > 100:
                raise Endless(f"{len(steps)} steps inflating a member of {len(content):,} bytes")
            inflate(stream, data)

        self.patch(ZipStream, "_inflate", counted)
        self.assertIsNone(streamed(answer, len(answer)))
        self.assertEqual(classify(answer).kind, DATA)

    def test_trailingBytes(self) -> None:
        """
        Bytes after the end of the central directory are not judged.
        """
        self.assertIsNone(streamed(DATA_SAMPLE.read_bytes() + b"extra"))

    def test_commentLeftToClassify(self) -> None:
        """
        A zip with a comment is left to L{classify}: a reader looks for the
        end record from the end of the file, so an end record and central
        directory hidden in the comment would be what it reads, another
        zip than the one checked as it streamed.
        """
        hidden = zipped(("b.csv", bytes(10_000)))
        checked = bytearray(zipped(("a.csv", b"OPR_DT,MW\n2025-06-01,1\n")))
        # The comment holds a second directory, of another zip's members.
        comment = hidden[hidden.index(b"PK\x01\x02") :]
        struct.pack_into("<H", checked, len(checked) - 2, len(comment))
        answer = bytes(checked) + comment
        self.assertIsNone(streamed(answer))
        self.assertIsNone(streamed(DATA_SAMPLE.read_bytes()[:-2] + b"\x01\x00x"))

    def test_nulInNameLeftToClassify(self) -> None:
        """
        A member whose name holds a NUL byte is left to L{classify}: a zip
        reader cuts the name there, so an error document named
        C{a.xml\\0.csv} is XML to it, and would have been CSV data to the
        stream.
        """
        # zipfile cuts a name at its NUL when writing too: put it in after.
        answer = zipped(("a.xmlX.csv", error_document(1000, CREATED))).replace(b"a.xmlX.csv", b"a.xml\0.csv")
        self.assertEqual(classify(answer).kind, EMPTY)
        self.assertIsNone(streamed(answer))

    def test_manyMembersLeftToClassify(self) -> None:
        """
        A zip of more members than an answer holds is left to L{classify}
        once they pass L{MAX_MEMBERS}: each is remembered until the
        directory comes.
        """
        answer = zipped(*((f"{n}.csv", b"") for n in range(MAX_MEMBERS + 1)), method=zipfile.ZIP_STORED)
        stream = ZipStream()
        stream.feed(answer)
        self.assertIsNone(stream.verdict())
        self.assertEqual(len(stream._members), MAX_MEMBERS)
        verdict = streamed(zipped(*((f"{n}.csv", b"x") for n in range(MAX_MEMBERS))))
        assert verdict is not None
        self.assertEqual(verdict.kind, DATA)

    def test_damagedAgreesOrAbstains(self) -> None:
        """
        Whatever is cut from an answer, or whichever byte of it is changed
        (three ways), fed a byte at a time or in larger pieces, the stream
        either judges it as L{classify} does or leaves it to L{classify};
        and it does judge some of them (a changed name, a changed flag),
        so that the comparison is made.
        """
        whole = zipped(("a.csv", b"x,y\n1,2\n" * 50), ("b.xml", error_document(1000, CREATED)))
        damaged = [(f"cut at {end}", whole[:end]) for end in range(len(whole))]
        for position in range(len(whole)):
            for mask in (0x01, 0x55, 0xFF):
                changed = bytearray(whole)
                changed[position] ^= mask
                damaged.append((f"byte {position} ^ {mask:#x}", bytes(changed)))
        judged = 0
        for damage, answer in damaged:
            for step in (1, 400):
                verdict = streamed(answer, step)
                if verdict is not None:
                    judged += 1
                    self.assertEqual(verdict, classify(answer), f"{damage}, fed {step} at a time")
        self.assertGreater(judged, 50)
