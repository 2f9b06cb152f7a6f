"""
Redis's wire protocol as harbour's store speaks it: txredisapi's, with each
command built in one pass.

Every script harbour runs names its eleven fixed keys and a few arguments
(a claim's, a finish's: one batch of each per few downloaded files);
txredisapi encodes each of them, and each of their lengths, through a
general converter, which took a third of a small file's Redis time.
"""

from __future__ import annotations

import txredisapi


class StoreProtocol(txredisapi.RedisProtocol):
    """
    txredisapi's protocol, building commands faster.
    """

    def _build_command(self, *args: object, **kwargs: object) -> bytes:
        """
        @return: The command C{args} in Redis's protocol: a text is encoded
            with the connection's charset; anything else but bytes as
            txredisapi encodes it.
        """
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is bytes:
                value = arg
            elif type(arg) is str and self.charset is not None:
                try:
                    value = arg.encode(self.charset, self.errors)
                except UnicodeEncodeError:
                    value = self._encode_value(arg)  # raises txredisapi's InvalidData
            else:
                value = self._encode_value(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
        return b"".join(parts)


class StoreFactory(txredisapi.RedisFactory):
    """
    txredisapi's connection pool, speaking L{StoreProtocol}.
    """

    protocol = StoreProtocol
