"""
C{harbourctl}'s exit codes.
"""

#: Success.
OK = 0
#: The command failed (a refusal, a bad configuration, a failed check), or
#: the daemon could not answer it: it does not know the command (an older
#: harbour), or failed while answering (its log says why); or it was
#: interrupted (Ctrl-C, SIGTERM) before its answer, but for C{watch} and
#: C{subscribe}, whose usual end that is.
FAILED = 1
#: The command line is wrong.
USAGE = 2
#: The daemon cannot be reached, or refused the token; for C{status
#: --check}, its status could not be had (UNKNOWN, to monitoring).
UNREACHABLE = 3

DEFAULT_CONNECT = "tcp:127.0.0.1:7750"
