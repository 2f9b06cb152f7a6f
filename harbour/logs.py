"""
Log observers for C{twistd --logger}.

C{twistd -n --logger harbour.logs.json_stdout harbour} writes one JSON
object per event, with harbour's structured fields (service, topic, file)
as keys, for log shippers.
"""

import sys

from twisted.logger import ILogObserver, jsonFileLogObserver


def json_stdout() -> ILogObserver:
    """
    @return: An observer writing JSON lines to standard output: one
        object per line, with no record separator (RFC 7464) before it.
    """
    return jsonFileLogObserver(sys.stdout, recordSeparator="")
