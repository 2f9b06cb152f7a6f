"""
Tests for L{harbour.amp.wire}, and for the client's reading of boxes
through it.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from harbour.amp import commands
from harbour.amp.client import HarbourClientProtocol, RemoteBus
from harbour.amp.wire import KeyTooLong, read_boxes
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


class ReadBoxesTests(SynchronousTestCase):
    """
    L{read_boxes} reads what AMP's parser reads.
    """

    def test_sameAsAMP(self) -> None:
        """
        The boxes of a stream, including an empty box, an empty value and
        a key and a value of the longest lengths AMP allows, are read as
        AMP's parser reads them, each with the offset just past it.
        """
        recorder = Recorder()
        parser = amp.BinaryBoxProtocol(recorder)
        parser.makeConnection(StringTransport())
        parser.dataReceived(STREAM)
        read = list(read_boxes(STREAM))
        self.assertEqual([box for box, end in read], recorder.boxes)
        self.assertEqual(len(read), len(BOXES))
        ends = [end for box, end in read]
        self.assertEqual(ends[-1], len(STREAM))
        self.assertEqual(
            [STREAM[start:end] for start, end in zip([0] + ends, ends)],
            [box.serialize() for box in BOXES],
        )

    def test_wholeBoxesOnly(self) -> None:
        """
        Of a stream cut anywhere, only the boxes wholly before the cut are
        read.
        """
        stream = b"".join(box.serialize() for box in BOXES[:3] + BOXES[4:])
        boundaries = [end for box, end in read_boxes(stream)]
        for cut in range(len(stream)):
            with self.subTest(cut=cut):
                self.assertEqual(
                    [end for box, end in read_boxes(stream[:cut])],
                    [end for end in boundaries if end <= cut],
                )

    def test_keyTooLong(self) -> None:
        """
        A key longer than AMP allows raises L{KeyTooLong}, after the boxes
        before it.
        """
        first = BOXES[0].serialize()
        boxes = read_boxes(first + b"\x01\x00" + b"k" * 256 + b"\x00\x01v\x00\x00")
        self.assertEqual(next(boxes), (BOXES[0], len(first)))
        with self.assertRaises(KeyTooLong) as raised:
            next(boxes)
        self.assertEqual(raised.exception.length, 256)


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
                self.assertEqual(protocol._unprocessed, b"")

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
        self.assertEqual(protocol._unprocessed, b"")
