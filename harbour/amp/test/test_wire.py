"""
Tests for L{harbour.amp.wire}, and for the client's reading of boxes
through it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from unittest import mock

from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, RemoteBus
from harbour.amp.wire import BoxReader, KeyTooLong
from harbour.interfaces import IEvent

BOXES = [
    amp.AmpBox({b"_command": b"Event", b"topic": b"task.done", b"payload": b'{"id":"a"}'}),
    amp.AmpBox(),
    amp.AmpBox({b"empty": b""}),
    amp.AmpBox({b"k" * amp.MAX_KEY_LENGTH: b"v" * amp.MAX_VALUE_LENGTH}),
    amp.AmpBox({b"_answer": b"7", b"delivered": b"3"}),
]

STREAM = b"".join(box.serialize() for box in BOXES)


class Recorder:
    """
    A box receiver that keeps the boxes AMP's own parser reads.
    """

    def __init__(self) -> None:
        self.boxes: list[amp.AmpBox] = []

    def startReceivingBoxes(self, sender: object) -> None:
        """
        Nothing to set up.
        """

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        """
        Keep C{box}.
        """
        self.boxes.append(box)

    def stopReceivingBoxes(self, reason: object) -> None:
        """
        Nothing to tear down.
        """


def read(*pieces: bytes) -> list[list[amp.AmpBox]]:
    """
    @return: The boxes a new L{BoxReader} reads after each of C{pieces}.
    """
    reader = BoxReader()
    read = []
    for piece in pieces:
        reader.receive(piece)
        read.append(list(reader.boxes()))
    return read


class BoxReaderTests(SynchronousTestCase):
    """
    L{BoxReader} reads what AMP's parser reads.
    """

    def test_sameAsAMP(self) -> None:
        """
        The boxes of a stream, including an empty box, an empty value and
        a key and a value of the longest lengths AMP allows, are read as
        AMP's parser reads them.
        """
        recorder = Recorder()
        parser = amp.BinaryBoxProtocol(recorder)
        parser.makeConnection(StringTransport())
        parser.dataReceived(STREAM)
        self.assertEqual(read(STREAM), [recorder.boxes])
        self.assertEqual(len(recorder.boxes), len(BOXES))

    def test_cutAnywhere(self) -> None:
        """
        Of a stream cut anywhere, the boxes wholly before the cut are read
        first, and the others once the rest arrives.
        """
        boxes = BOXES[:3] + BOXES[4:]
        stream = b"".join(box.serialize() for box in boxes)
        ends = list(itertools.accumulate(len(box.serialize()) for box in boxes))
        for cut in range(len(stream) + 1):
            with self.subTest(cut=cut):
                before = sum(1 for end in ends if end <= cut)
                self.assertEqual(read(stream[:cut], stream[cut:]), [boxes[:before], boxes[before:]])

    def test_keepsOnePair(self) -> None:
        """
        Of a box not yet ended, only the bytes of the key and value not
        yet whole are kept between reads, however long the box.
        """
        pair = amp.AmpBox({b"k" * amp.MAX_KEY_LENGTH: b"v" * amp.MAX_VALUE_LENGTH}).serialize()[:-2]
        longest = len(pair)
        box = b"".join(
            amp.AmpBox({str(n).encode(): b"v" * amp.MAX_VALUE_LENGTH}).serialize()[:-2] for n in range(50)
        )
        box += b"\x00\x00"
        reader = BoxReader()
        waiting = []
        for start in range(0, len(box), 40_000):
            reader.receive(box[start : start + 40_000])
            self.assertEqual(list(reader.boxes()), [] if start + 40_000 < len(box) else [mock.ANY])
            waiting.append(reader.waiting)
        self.assertLess(max(waiting), longest)
        self.assertEqual(reader.waiting, 0)

    def test_stoppedEarly(self) -> None:
        """
        The boxes a reader did not take, having stopped iterating, are
        read at its next call, with nothing more received.
        """
        reader = BoxReader()
        reader.receive(STREAM)
        self.assertEqual(next(reader.boxes()), BOXES[0])
        reader.receive(b"")
        self.assertEqual(list(reader.boxes()), BOXES[1:])

    def test_keyTooLong(self) -> None:
        """
        A key longer than AMP allows raises L{KeyTooLong}, after the boxes
        before it, and again at every read after it, which keeps nothing.
        """
        first = BOXES[0].serialize()
        reader = BoxReader()
        reader.receive(first + b"\x01\x00" + b"k" * 256 + b"\x00\x01v\x00\x00")
        boxes = reader.boxes()
        self.assertEqual(next(boxes), BOXES[0])
        with self.assertRaises(KeyTooLong) as raised:
            next(boxes)
        self.assertEqual(raised.exception.length, 256)
        reader.receive(first)
        self.assertEqual(reader.waiting, 0)
        with self.assertRaises(KeyTooLong):
            list(reader.boxes())


class ClientReadingTests(SynchronousTestCase):
    """
    L{HarbourClientProtocol} reads boxes however its reads cut them.
    """

    def subscribed(
        self, then: Callable[[HarbourClientProtocol], object] = lambda protocol: None
    ) -> tuple[HarbourClientProtocol, list[IEvent]]:
        """
        @param then: Called with the client after each event it receives.
        @return: A client subscribed to C{t}, and the events it receives.
        """
        protocol = HarbourClientProtocol()
        protocol.makeConnection(StringTransport())
        received: list[IEvent] = []

        def receive(event: IEvent) -> None:
            received.append(event)
            then(protocol)

        subscribing = RemoteBus(protocol).subscribe("t", receive)
        protocol.dataReceived(amp.AmpBox({b"_answer": b"1"}).serialize())
        self.successResultOf(subscribing)
        return protocol, received

    def test_cutAnywhere(self) -> None:
        """
        Events read in pieces of any size each reach the subscriber once,
        in order.
        """
        stream = b"".join(commands.encode_event("t", f'{{"n":{n}}}') for n in range(20))
        for size in range(1, 60):
            with self.subTest(size=size):
                protocol, received = self.subscribed()
                for start in range(0, len(stream), size):
                    protocol.dataReceived(stream[start : start + size])
                self.assertEqual([event.payload for event in received], [{"n": n} for n in range(20)])
                self.assertEqual(protocol._reader.waiting, 0)

    def test_keyTooLongEnds(self) -> None:
        """
        A key longer than AMP allows ends the connection, and nothing read
        after it reaches a subscriber.
        """
        protocol, received = self.subscribed()
        event = commands.encode_event("t", "1")
        protocol.dataReceived(event + b"\x01\x00" + b"k" * 256 + event)
        protocol.dataReceived(event)
        self.assertEqual(len(received), 1)
        transport = protocol.transport
        assert isinstance(transport, StringTransport)
        self.assertTrue(transport.disconnecting)

    def test_pausedWaits(self) -> None:
        """
        Boxes read while the client is paused wait until it resumes.
        """
        protocol, received = self.subscribed(then=lambda protocol: protocol.pauseProducing())
        protocol.dataReceived(b"".join(commands.encode_event("t", str(n)) for n in range(3)))
        self.assertEqual([event.payload for event in received], [0])
        protocol.resumeProducing()
        self.assertEqual([event.payload for event in received], [0, 1])
        protocol.resumeProducing()
        self.assertEqual([event.payload for event in received], [0, 1, 2])
        self.assertEqual(protocol._reader.waiting, 0)

    def test_resumedMeanwhile(self) -> None:
        """
        A subscriber that pauses and resumes the client while it takes an
        event (resuming reads on at once) receives each event once, in
        order.
        """

        def pause_and_resume(protocol: HarbourClientProtocol) -> None:
            protocol.pauseProducing()
            protocol.resumeProducing()

        protocol, received = self.subscribed(then=pause_and_resume)
        protocol.dataReceived(b"".join(commands.encode_event("t", str(n)) for n in range(3)))
        self.assertEqual([event.payload for event in received], [0, 1, 2])
        self.assertEqual(protocol._reader.waiting, 0)
