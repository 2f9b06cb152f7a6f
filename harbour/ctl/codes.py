"""
C{harbourctl}'s exit codes.
"""

#: Success.
OK = 0
#: The command failed (a refusal, a bad configuration, a failed check).
FAILED = 1
#: The command line is wrong.
USAGE = 2
#: The daemon cannot be reached, or refused the token.
UNREACHABLE = 3

DEFAULT_CONNECT = "tcp:127.0.0.1:7750"
