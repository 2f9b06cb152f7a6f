"""
Tests for L{harbour.oasis.classify} on every real OASIS sample and on the shapes
of answer harbour must survive.
"""

from __future__ import annotations

import datetime
import io
import random
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path
from xml.etree.ElementTree import ParseError

from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.classify import (
    BAD_REQUEST,
    CHUNK,
    DATA,
    EMPTY,
    ERROR,
    FIELD_TEXT_KEPT,
    MAX_DIRECTORY,
    MAX_INFLATED,
    MAX_RATIO,
    RATIO_FLOOR,
    REFUSED,
    RETRY_LATER,
    ErrorFinder,
    classify,
    throttle_pause,
)
from harbour.testing.simulator import THROTTLE_PAGE, error_document
from harbour.testing.simulator.formats import MESSAGES

SAMPLES = Path(__file__).parents[2] / "test" / "samples"


def zipped(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """
    @return: A zip of the given members, compressed with C{method}.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def sample_zip(name: str) -> bytes:
    """
    @return: A sample file as the single member of a zip, as OASIS sends it.
    """
    return zipped((name, (SAMPLES / name).read_bytes()))


class SampleTests(SynchronousTestCase):
    """
    Every real sample classifies as what it is.
    """

    def test_csvZip(self) -> None:
        """
        The real PRC_LMP CSV zip is data, with its original member name.
        """
        verdict = classify(
            SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        )
        self.assertEqual(verdict.kind, DATA)
        self.assertEqual(verdict.members, ("20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1.csv",))

    def test_errorZip(self) -> None:
        """
        The real 1000 error zip means no data: empty, with its description.
        """
        verdict = classify(SAMPLES / "error_1000_no_data_repacked.zip")
        self.assertEqual((verdict.kind, verdict.code), (EMPTY, 1000))
        self.assertIn("No data returned", verdict.description)

    def test_wellFormedData(self) -> None:
        """
        The real CSV and XML data samples, zipped, are data.
        """
        for name in [
            "csv_PRC_LMP_DAM_v1_20200101_hubs.csv",
            "csv_SLD_FCST_ACTUAL_20251102_dst_fallback_erw.csv",
            "xml_SLD_FCST_RTM_RTPD_20140508_pyiso.xml",
            "xml_SLD_REN_FCST_DAM_20130919_pyiso.xml",
        ]:
            self.assertEqual(classify(sample_zip(name)).kind, DATA, name)

    def test_malformedXML(self) -> None:
        """
        The sample whose trimming broke its XML is a corrupt answer, to be
        fetched again, and the description names the member and line.
        """
        verdict = classify(sample_zip("xml_ENE_SLRS_DAM_20130919_pyiso.xml"))
        self.assertEqual(verdict.kind, RETRY_LATER)
        self.assertIn("line 78", verdict.description)

    def test_unknownEncoding(self) -> None:
        """
        An XML member declaring an encoding nobody knows is a corrupt
        answer, to be fetched again, not an exception.
        """
        verdict = classify(zipped(("e.xml", b'<?xml version="1.0" encoding="UTust8"?><a/>')))
        self.assertEqual(verdict.kind, RETRY_LATER)
        self.assertIn("e.xml", verdict.description)

    def test_throttlePageRecorded(self) -> None:
        """
        The recorded throttle page asks for 5 s; sent with HTTP 200, as some
        clients report, it is an answer to fetch again later.
        """
        page = (SAMPLES / "http_429_acceptable_use_policy.html").read_bytes()
        self.assertEqual(throttle_pause(page), 5.0)
        verdict = classify(page)
        self.assertEqual(verdict.kind, RETRY_LATER)
        self.assertIn("HTML", verdict.description)

    def test_prefixedErrorXML(self) -> None:
        """
        The real error XML (C{m:} prefix) is recognised by local names.
        """
        verdict = classify(sample_zip("xml_error_1000_no_data_SLD_REN_FCST_erw.xml"))
        self.assertEqual((verdict.kind, verdict.code), (EMPTY, 1000))


class ShapeTests(SynchronousTestCase):
    """
    Answers that are not what they should be.
    """

    def test_throttlePage(self) -> None:
        """
        OASIS's HTML page sent with HTTP 200 means: come back later.
        """
        verdict = classify(THROTTLE_PAGE)
        self.assertEqual(verdict.kind, RETRY_LATER)
        self.assertIn("HTML", verdict.description)

    def test_throttlePause(self) -> None:
        """
        A throttle page's wait is read from its words, whatever their case
        and spacing, but never less than OASIS's 5 s nor more than an hour;
        a page naming none means 5 s.
        """
        for page, pause in [
            (b"Please retry your request after 30 seconds.", 30.0),
            (b"please RETRY your request\nafter 7.5 sec", 7.5),
            (b"Please retry your request after 1 seconds.", 5.0),
            (b"Please retry your request after 999999 seconds.", 3600.0),
            (b"Please wait before submitting another request.", 5.0),
            (b"", 5.0),
        ]:
            self.assertEqual(throttle_pause(page), pause, page)

    def test_notAZip(self) -> None:
        """
        Bytes that are not a zip, or nothing at all, mean: try again.
        """
        self.assertEqual(classify(b"garbage").kind, RETRY_LATER)
        self.assertEqual(classify(b"").kind, RETRY_LATER)

    def test_cutShort(self) -> None:
        """
        A zip cut short at any point is caught.
        """
        data = (
            SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        ).read_bytes()
        for length in [10, len(data) // 2, len(data) - 1]:
            self.assertEqual(classify(data[:length]).kind, RETRY_LATER, length)

    def test_corruptMember(self) -> None:
        """
        A member whose bytes were damaged fails its CRC: try again.
        """
        data = bytearray(zipped(("a.csv", b"A,B\n" + b"1,2\n" * 1000)))
        data[60] ^= 0xFF
        self.assertEqual(classify(bytes(data)).kind, RETRY_LATER)

    def test_errorCodes(self) -> None:
        """
        Each code maps to its verdict: 1015 later, definition errors are
        bad requests, others are errors to retry with backoff.
        """
        stamp = datetime.datetime(2026, 1, 1)
        for code, kind in [
            (1000, EMPTY),
            (1015, RETRY_LATER),
            (1001, BAD_REQUEST),
            (1002, BAD_REQUEST),
            (1004, BAD_REQUEST),
            (1005, BAD_REQUEST),
            (1011, BAD_REQUEST),
            (1014, BAD_REQUEST),
            (1016, BAD_REQUEST),
            (1017, BAD_REQUEST),
            (1018, BAD_REQUEST),
            (1020, BAD_REQUEST),
        ]:
            verdict = classify(zipped(("e.xml", error_document(code, stamp))))
            self.assertEqual((verdict.kind, verdict.code), (kind, code))
        unknown = (
            b"<OASISReport><ERROR><ERR_CODE>1010</ERR_CODE>"
            b"<ERR_DESC>System Error</ERR_DESC></ERROR></OASISReport>"
        )
        verdict = classify(zipped(("e.xml", unknown)))
        self.assertEqual(
            (verdict.kind, verdict.code, verdict.description), (ERROR, 1010, "OASIS error 1010: System Error")
        )


def patched(answer: bytes, offset: int, layout: str, value: int) -> bytes:
    """
    @return: C{answer} with C{value}, packed as C{layout}, written at
        C{offset}.
    """
    damaged = bytearray(answer)
    struct.pack_into(layout, damaged, offset, value)
    return bytes(damaged)


def central_entry(answer: bytes) -> int:
    """
    @return: Where the first entry of C{answer}'s central directory starts.
    """
    end = answer.rfind(b"PK\x05\x06")
    return int(struct.unpack_from("<L", answer, end + 16)[0])


class DamageTests(SynchronousTestCase):
    """
    A zip damaged anywhere, as one bad byte on the way or on disk leaves
    it, is cut short or corrupt: try again.  C{zipfile} says so with many
    exceptions besides L{zipfile.BadZipFile}, one per place the damage
    hits.
    """

    def test_eachWay(self) -> None:
        """
        A deflate stream that does not inflate, a directory offset before
        the file's start, the encryption flag, and a name that is not the
        UTF-8 its flag claims each classify as cut short or corrupt.  (A
        compression method changed to another is refused: see
        L{CompressionMethodTests}.)
        """
        answer = zipped(("a.csv", b"A,B\n" + b"1,2\n" * 1000))
        entry = central_entry(answer)
        end = answer.rfind(b"PK\x05\x06")
        unnamed = bytearray(patched(answer, entry + 8, "<H", 0x800))
        unnamed[entry + 46] = 0xFF
        for damage, damaged in [
            ("deflate stream", patched(answer, 40, "<B", answer[40] ^ 0xFF)),
            ("directory offset", patched(answer, end + 16, "<L", entry + 1000)),
            ("encryption flag", patched(answer, entry + 8, "<H", 1)),
            ("UTF-8 name", bytes(unnamed)),
        ]:
            verdict = classify(damaged)
            self.assertEqual(verdict.kind, RETRY_LATER, damage)
            self.assertIn("cut short or corrupt", verdict.description, damage)

    def test_anyByte(self) -> None:
        """
        The real sample zip with any one byte damaged (each bit inverted,
        or only the lowest) is classified, never raises: data where the
        byte did not matter (a timestamp), else try again or refused.
        """
        answer = (
            SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        ).read_bytes()
        kinds = set()
        for offset in range(len(answer)):
            for flip in (0xFF, 0x01):
                kinds.add(classify(patched(answer, offset, "<B", answer[offset] ^ flip)).kind)
        self.assertEqual(kinds, {DATA, RETRY_LATER, REFUSED})


class DuplicateNameTests(SynchronousTestCase):
    """
    Members that share a name are each read as themselves.
    """

    def test_eachMemberRead(self) -> None:
        """
        An error document followed by a data member of the same name is
        judged by the error document, the first member, as the stream
        judges it; not by the second, read twice.
        """
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a.xml", error_document(1000, datetime.datetime(2026, 1, 1)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns of the duplicate
                archive.writestr("a.xml", b"<OASISReport><ROW>1</ROW></OASISReport>")
        verdict = classify(out.getvalue())
        self.assertEqual((verdict.kind, verdict.code), (EMPTY, 1000))


def lying(answer: bytes, member_size: int) -> bytes:
    """
    @return: C{answer}, a zip of one member, with that member's headers
        claiming it inflates to C{member_size} bytes.
    """
    data = bytearray(answer)
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, member_size)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, member_size)
    return bytes(data)


def repeated(answer: bytes, times: int) -> bytes:
    """
    @return: C{answer}, a zip of one member, with its central directory
        listing that member C{times} times, every entry naming the same
        bytes.
    """
    start = central_entry(answer)
    end = answer.rfind(b"PK\x05\x06")
    entry = answer[start:end]
    record = bytearray(answer[end:])
    struct.pack_into("<HHL", record, 8, times, times, len(entry) * times)
    return answer[:start] + entry * times + bytes(record)


def nested(outer: str, inner: str, data: bytes) -> bytes:
    """
    @return: A zip of two members whose bytes overlap: member C{outer},
        stored, holds member C{inner} whole (its local header and
        C{data}, deflated), and the central directory lists both.
    """
    one = zipped((inner, data))
    start = central_entry(one)
    end = one.rfind(b"PK\x05\x06")
    local, entry = one[:start], one[start:end]
    answer = zipped((outer, local), method=zipfile.ZIP_STORED)
    start = central_entry(answer)
    end = answer.rfind(b"PK\x05\x06")
    inside = 30 + len(outer)  # where the outer member's data starts
    directory = answer[start:end] + patched(entry, 42, "<L", inside)
    record = bytearray(answer[end:])
    struct.pack_into("<HHL", record, 8, 2, 2, len(directory))
    return answer[:start] + directory + bytes(record)


def well_compressed(size: int) -> bytes:
    """
    @return: C{size} bytes that deflate about 120 times, as the worst of
        real data never does, but within L{MAX_RATIO}.
    """
    rng = random.Random(3)
    blocks = [rng.randbytes(256) for ignored in range(8)]
    return b"".join(rng.choice(blocks) for ignored in range(size // 256))


class OverlapTests(SynchronousTestCase):
    """
    A zip whose members share bytes is refused before any is read: each
    would be read, and counted against the caps, once per entry.
    """

    def test_repeatedMember(self) -> None:
        """
        One member listed three times, each entry within the caps on its
        own (about 120 times its compressed size, past L{RATIO_FLOOR}),
        though together the answer inflates 360 times its size, is
        refused, saying why; the same member listed once is data.
        """
        once = zipped(("PRC_LMP.csv", well_compressed(2 << 20)))
        self.assertEqual(classify(once).kind, DATA)
        answer = repeated(once, 3)
        self.assertGreater(3 * (2 << 20), MAX_RATIO * len(answer))
        verdict = classify(answer)
        self.assertEqual(
            (verdict.kind, verdict.description),
            (REFUSED, "members PRC_LMP.csv and PRC_LMP.csv overlap: their bytes would be read twice"),
        )

    def test_memberWithinMember(self) -> None:
        """
        A member whose bytes lie within another's (a stored member
        holding a whole deflated one, both listed) is refused.
        """
        answer = nested("a.csv", "b.csv", b"OPR_DT,MW\n2025-06-01,1\n" * 100)
        with zipfile.ZipFile(io.BytesIO(answer)) as archive:
            self.assertEqual([info.filename for info in archive.infolist()], ["a.csv", "b.csv"])
            self.assertEqual(archive.testzip(), None, "each member reads well")
        verdict = classify(answer)
        self.assertEqual(
            (verdict.kind, verdict.description),
            (REFUSED, "members a.csv and b.csv overlap: their bytes would be read twice"),
        )

    def test_apartMembersRead(self) -> None:
        """
        Members that lie apart, however many, of any size, stored or
        deflated, are read.
        """
        members = [(f"{n}.csv", b"x,y\n1,2\n" * n) for n in range(1, 51)]
        for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            verdict = classify(zipped(*members, method=method))
            self.assertEqual(verdict.kind, DATA, method)
            self.assertEqual(len(verdict.members), 50)

    def test_localHeaderMissing(self) -> None:
        """
        An entry whose local header is not where it says is a zip cut
        short or corrupt, as C{zipfile} would find reading it: try again.
        """
        answer = zipped(("a.csv", b"x,y\n1,2\n"), ("b.csv", b"x,y\n3,4\n"))
        second = answer.index(b"PK\x03\x04", 1)
        verdict = classify(patched(answer, second, "<B", ord("X")))
        self.assertEqual(verdict.kind, RETRY_LATER)
        self.assertIn("cut short or corrupt", verdict.description)


class DirectoryCapTests(SynchronousTestCase):
    """
    A zip whose central directory is larger than an answer's is refused
    before C{zipfile} reads it: it makes an object of every entry.
    """

    def test_manyMembers(self) -> None:
        """
        A directory of tens of thousands of entries is refused, saying
        why; one of a few hundred is read.
        """
        many = zipped(*((f"{n:05d}.csv", b"") for n in range(25_000)))
        verdict = classify(many)
        self.assertEqual(verdict.kind, REFUSED)
        self.assertRegex(verdict.description, r"^its central directory is [\d,]+ bytes, more than 1,048,576$")
        self.assertEqual(classify(zipped(*((f"{n:05d}.csv", b"x") for n in range(300)))).kind, DATA)

    def test_declaredSize(self) -> None:
        """
        The size the end record declares is what counts, as C{zipfile}
        reads that many bytes of directory: a record naming more is
        refused before anything is read.
        """
        answer = bytearray(zipped(("a.csv", b"OPR_DT,MW\n2025-06-01,1\n")))
        struct.pack_into("<I", answer, len(answer) - 22 + 12, MAX_DIRECTORY + 1)
        self.assertEqual(classify(bytes(answer)).kind, REFUSED)


class DecompressionCapTests(SynchronousTestCase):
    """
    A zip bomb is refused quickly, as L{REFUSED} (no retry can mend it)
    that says why, by the
    inflated size of the answer and by the compression ratio of a member.
    """

    def setUp(self) -> None:
        # 20 MB of zeros deflate to about 20 KB: 1,000 times, far beyond
        # MAX_RATIO, yet quick to build.
        self.bomb = zipped(("PRC_LMP.csv", bytes(20 << 20)))
        self.assertLess(len(self.bomb), 100_000)

    def test_defaults(self) -> None:
        """
        The defaults are those documented: 4 GiB, 200 times, enforced from
        1 MiB on.
        """
        self.assertEqual((MAX_INFLATED, MAX_RATIO, RATIO_FLOOR), (4 << 30, 200, 1 << 20))

    def test_lyingHeaderMatchingCRC(self) -> None:
        """
        A member whose headers understate its size, with the CRC of the
        bytes they declare, is refused, not taken for those bytes.
        """
        answer = bytearray(lying(self.bomb, 1000))
        crc = zlib.crc32(bytes(1000))
        struct.pack_into("<I", answer, answer.index(b"PK\x03\x04") + 14, crc)
        struct.pack_into("<I", answer, answer.index(b"PK\x01\x02") + 16, crc)
        self.assertEqual(classify(bytes(answer)).kind, REFUSED)

    def test_ratio(self) -> None:
        """
        A member that inflates beyond L{MAX_RATIO} times its compressed size
        is an error naming the member.
        """
        verdict = classify(self.bomb)
        self.assertEqual(verdict.kind, REFUSED)
        self.assertIn("member PRC_LMP.csv inflates beyond 200 times its compressed size", verdict.description)

    def test_inflatedSize(self) -> None:
        """
        Members that inflate beyond C{max_inflated} together are an error,
        whatever their ratio.
        """
        varied = random.Random(1).randbytes(1 << 20)  # 1 MiB, incompressible
        answer = zipped(("a.csv", varied), ("b.csv", varied))
        self.assertEqual(classify(answer, max_inflated=3 << 20).kind, DATA)
        verdict = classify(answer, max_inflated=(3 << 20) // 2)
        self.assertEqual(verdict.kind, REFUSED)
        self.assertEqual(
            verdict.description, "member b.csv inflates beyond 1.5 MiB, the most an answer may inflate to"
        )

    def test_lyingHeader(self) -> None:
        """
        A member whose header understates its size is inflated no further
        than the header says, and is refused: no retry can mend it.
        """
        verdict = classify(lying(self.bomb, 1000))
        self.assertEqual(
            (verdict.kind, verdict.description),
            (REFUSED, "member PRC_LMP.csv inflates beyond the 1000 bytes its header declares"),
        )

    def test_manySmallMembers(self) -> None:
        """
        Members each under L{RATIO_FLOOR}, which together inflate beyond
        L{MAX_RATIO} times their compressed size, are refused once they
        pass the floor together, naming the member that does; members of
        real data, however many, are not.
        """
        answer = zipped(*((f"{n}.csv", bytes(RATIO_FLOOR // 2)) for n in range(40)))
        verdict = classify(answer)
        self.assertEqual(verdict.kind, REFUSED)
        self.assertRegex(
            verdict.description,
            r"^member 2\.csv inflates beyond 200 times the compressed size of the members so far"
            r" \([\d.]+ KiB\): no real report does$",
        )
        sample = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        with zipfile.ZipFile(sample) as archive:
            [member] = archive.infolist()
            rows = archive.read(member)
        self.assertEqual(classify(zipped(*((f"{n}.csv", rows) for n in range(40)))).kind, DATA)

    def test_slightlyBeyondDeclaredSize(self) -> None:
        """
        A member that inflates a little beyond the size its headers
        declare (what C{zipfile} cuts from its last read, unseen) is
        refused as one that inflates far beyond it, not retried as damage
        for its CRC; so is one whose CRC is that of the bytes declared.
        """
        rows = b"".join(
            b"2025-06-%02d,NODE_%d,%d.%02d\n" % (n % 28 + 1, n % 97, n % 1000, n % 100) for n in range(20_000)
        )
        answer = zipped(("a.csv", rows))
        for excess in (1, 100, 10_000):
            declared = len(rows) - excess
            expected = (
                REFUSED,
                f"member a.csv inflates beyond the {declared / 1024:g} KiB its header declares",
            )
            lie = bytearray(lying(answer, declared))
            verdict = classify(bytes(lie))
            self.assertEqual((verdict.kind, verdict.description), expected, excess)
            crc = zlib.crc32(rows[:declared])
            struct.pack_into("<I", lie, lie.index(b"PK\x03\x04") + 14, crc)
            struct.pack_into("<I", lie, lie.index(b"PK\x01\x02") + 16, crc)
            verdict = classify(bytes(lie))
            self.assertEqual((verdict.kind, verdict.description), expected, excess)

    def test_beyondDeclaredSizeUnread(self) -> None:
        """
        A member whose declared size ends where one of C{zipfile}'s reads
        ends, leaving compressed bytes it never reads (here at 69,622
        bytes, deflated at level 0), is refused too, though its CRC is
        that of the bytes declared: what was left unread inflates.
        """
        data = random.Random(0).randbytes(100_000)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=0) as archive:
            archive.writestr("a.csv", data)
        lie = bytearray(lying(out.getvalue(), 69_622))
        crc = zlib.crc32(data[:69_622])
        struct.pack_into("<I", lie, lie.index(b"PK\x03\x04") + 14, crc)
        struct.pack_into("<I", lie, lie.index(b"PK\x01\x02") + 16, crc)
        self.assertEqual(classify(bytes(lie)).kind, REFUSED)
        self.assertEqual(classify(out.getvalue()).kind, DATA)

    def test_smallMembersCompressWell(self) -> None:
        """
        A member under L{RATIO_FLOOR} may compress as well as it likes.
        """
        self.assertEqual(classify(zipped(("a.csv", bytes(RATIO_FLOOR)))).kind, DATA)

    def test_realSampleWithinCaps(self) -> None:
        """
        The real CSV sample is well within the ratio.
        """
        path = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
        self.assertEqual(classify(path, max_ratio=30).kind, DATA)


#: One row of a real XML report (SLD_FCST), as many rows share one parent.
XML_ROW = (
    b"<REPORT_DATA><DATA_ITEM>SYS_FCST_5MIN_MW</DATA_ITEM><RESOURCE_NAME>PGE-TAC</RESOURCE_NAME>"
    b"<OPR_DATE>2014-05-08</OPR_DATE><INTERVAL_NUM>146</INTERVAL_NUM><VALUE>11530</VALUE></REPORT_DATA>\n"
)


class CompressionMethodTests(SynchronousTestCase):
    """
    OASIS only deflates: a member compressed otherwise is refused unread,
    as L{REFUSED} (no retry can mend it), since C{zipfile} inflates bzip2
    and LZMA without bound in a single read.
    """

    def test_bzip2BombRefusedUnread(self) -> None:
        """
        A bzip2 member whose headers declare 1,000 bytes, and which holds
        4 MiB of zeros in under 200 bytes (a few KB hold GBs), is refused
        without a byte of it inflated.  (Read, C{zipfile} inflated the 4
        MiB in one read, a peak of near 10 MB, and the answer was retried
        as corrupt, its CRC failing.)
        """
        bomb = lying(zipped(("PRC_LMP.csv", bytes(4 << 20)), method=zipfile.ZIP_BZIP2), 1000)
        self.assertLess(len(bomb), 1000)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        verdict = classify(bomb)
        ignored, peak = tracemalloc.get_traced_memory()
        self.assertEqual(
            (verdict.kind, verdict.description),
            (REFUSED, "member PRC_LMP.csv uses compression method 12, which OASIS never sends"),
        )
        self.assertLess(peak, 1 << 20)

    def test_otherMethodsRefused(self) -> None:
        """
        An honest member compressed with bzip2 or LZMA, or whose method is
        one C{zipfile} does not know, is refused, naming the method.
        """
        plain = zipped(("a.csv", b"A,B\n1,2\n"))
        for method, answer in [
            (zipfile.ZIP_BZIP2, zipped(("a.csv", b"A,B\n1,2\n"), method=zipfile.ZIP_BZIP2)),
            (zipfile.ZIP_LZMA, zipped(("a.csv", b"A,B\n1,2\n"), method=zipfile.ZIP_LZMA)),
            (99, patched(plain, central_entry(plain) + 10, "<H", 99)),
        ]:
            verdict = classify(answer)
            self.assertEqual(
                (verdict.kind, verdict.description),
                (REFUSED, f"member a.csv uses compression method {method}, which OASIS never sends"),
            )

    def test_storedAndDeflatedRead(self) -> None:
        """
        Stored and deflated members are read as ever.
        """
        for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self.assertEqual(classify(zipped(("a.csv", b"A,B\n1,2\n"), method=method)).kind, DATA)

    def test_laterMember(self) -> None:
        """
        A member whose method is bzip2 after a deflated data member is
        refused as well; after an error document, which decides the
        answer first, it is not read at all.
        """
        for first, kind in [
            (("a.csv", b"A,B\n1,2\n"), REFUSED),
            (("e.xml", error_document(1000, datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))), EMPTY),
        ]:
            answer = zipped(first, ("b.csv", b"1,2\n"))
            second = answer.index(b"PK\x01\x02", central_entry(answer) + 1)
            self.assertEqual(classify(patched(answer, second + 10, "<H", zipfile.ZIP_BZIP2)).kind, kind)


class ErrorFinderTests(SynchronousTestCase):
    """
    L{ErrorFinder} finds an error document's code and description as
    ElementTree would, in memory that does not grow with the document.
    """

    def found(self, *pieces: bytes) -> tuple[int | None, str]:
        """
        @return: The code and description found in the document made of
            C{pieces}, fed one by one.
        """
        finder = ErrorFinder()
        for piece in pieces:
            finder.feed(piece)
        finder.close()
        return finder.code, finder.description

    def test_memoryBounded(self) -> None:
        """
        A member of 20,000 rows under one parent, fed a L{CHUNK} at a
        time, is parsed within a few chunks' memory, however many rows it
        has: nothing of a row is kept once it is parsed.  (Parsed into a
        tree whose finished elements stayed with their parent, it took
        2 MB, about 85 bytes a row.)
        """
        piece = XML_ROW * (CHUNK // len(XML_ROW))
        finder = ErrorFinder()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        finder.feed(b'<?xml version="1.0"?><OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd">')
        finder.feed(b"<MessagePayload><RTO><REPORT_ITEM>")
        for ignored in range(20_000 // (CHUNK // len(XML_ROW))):
            finder.feed(piece)
        finder.feed(b"</REPORT_ITEM></RTO></MessagePayload></OASISReport>")
        finder.close()
        ignored, peak = tracemalloc.get_traced_memory()
        self.assertLess(peak, 4 * CHUNK)
        self.assertEqual((finder.code, finder.description), (None, ""))

    def test_fieldTextBounded(self) -> None:
        """
        A description of 8 MiB, fed a L{CHUNK} at a time, is kept to its
        first L{FIELD_TEXT_KEPT} characters, marked as cut, within a few
        chunks' memory; its leading white space takes no room, and a
        description that fits is kept whole.  So is an answer's verdict's.
        """
        finder = ErrorFinder()
        piece = b"abcdefgh" * (CHUNK // 8)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        finder.feed(b"<a><ERR_CODE>1004</ERR_CODE><ERR_DESC>" + b" " * (2 * FIELD_TEXT_KEPT))
        for ignored in range((8 << 20) // CHUNK):
            finder.feed(piece)
        finder.feed(b"</ERR_DESC></a>")
        finder.close()
        ignored, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.assertLess(peak, 4 * CHUNK)
        self.assertEqual(finder.description, "abcdefgh" * (FIELD_TEXT_KEPT // 8) + "\u2026")
        fits = b"x" * FIELD_TEXT_KEPT
        self.assertEqual(self.found(b"<a><ERR_DESC> " + fits + b" </ERR_DESC></a>"), (None, fits.decode()))
        answer = zipped(("e.xml", b"<a><ERR_CODE>1004</ERR_CODE><ERR_DESC>" + piece * 8 + b"</ERR_DESC></a>"))
        verdict = classify(answer)
        self.assertEqual((verdict.kind, len(verdict.description)), (BAD_REQUEST, FIELD_TEXT_KEPT + 19))

    def test_pieces(self) -> None:
        """
        The fields are found however the document is cut, a code's
        surrounding space ignored.
        """
        document = error_document(1000, datetime.datetime(2025, 3, 10))
        for size in (1, 2, 7, 64):
            pieces = [document[i : i + size] for i in range(0, len(document), size)]
            code, description = self.found(*pieces)
            self.assertEqual(code, 1000, size)
            self.assertEqual(description, MESSAGES[1000], size)

    def test_textBeforeChildren(self) -> None:
        """
        A field's text is what comes before its first child, as
        ElementTree's C{Element.text}; the last field to end is the one
        kept; a code that is not a number is -1.
        """
        self.assertEqual(
            self.found(b"<a><ERR_CODE>10<b>x</b>00</ERR_CODE><ERR_DESC>d<![CDATA[&e]]>f&amp;</ERR_DESC></a>"),
            (10, "d&ef&"),
        )
        self.assertEqual(self.found(b"<a><ERR_CODE><ERR_CODE>5</ERR_CODE>7</ERR_CODE></a>"), (-1, ""))
        self.assertEqual(self.found(b"<a><ERR_CODE>x</ERR_CODE></a>"), (-1, ""))

    def test_undefinedEntity(self) -> None:
        """
        An entity a document type leaves undefined (expat lets it pass)
        makes the document not well-formed, as ElementTree's parser has it;
        entities it defines, and character references, are text.
        """
        with self.assertRaises(ParseError) as caught:
            self.found(b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "a.dtd"><a>&undefined;</a>')
        self.assertEqual(str(caught.exception), "undefined entity &undefined;: line 1, column 51")
        defined = (
            b'<!DOCTYPE a [<!ENTITY e "1000">]><a><ERR_CODE>&e;</ERR_CODE><ERR_DESC>&#65;&amp;</ERR_DESC></a>'
        )
        self.assertEqual(self.found(defined), (1000, "A&"))

    def test_notWellFormed(self) -> None:
        """
        A document that is not well-formed raises L{ParseError} saying
        where, as ElementTree's parser does; an unknown encoding raises
        L{LookupError}.
        """
        with self.assertRaises(ParseError) as caught:
            self.found(b"<a><ERR_CODE>1000</ERR_CODE>", b"</b>")
        self.assertEqual(str(caught.exception), "mismatched tag: line 1, column 30")
        with self.assertRaises(ParseError) as caught:
            self.found(b"<m:a><m:ERR_CODE>1000</m:ERR_CODE></m:a>")
        self.assertEqual(str(caught.exception), "unbound prefix: line 1, column 0")
        with self.assertRaises(LookupError):
            self.found(b'<?xml version="1.0" encoding="UTust8"?><a/>')
