"""
Errors that cross harbour's interfaces.

Each has a short wire code so that the AMP commands in
L{harbour.amp.commands} can carry it to a remote client unchanged.
"""


class HarbourError(Exception):
    """
    Base class of harbour's own errors.
    """


class Unauthorized(HarbourError):
    """
    The AMP peer has not presented the right token.
    """


class BadRequest(HarbourError):
    """
    An argument is malformed: the message says which and why.
    """


class PayloadTooLarge(BadRequest):
    """
    A payload would not fit in one AMP value (65,535 bytes).
    """


class StoreUnavailable(HarbourError):
    """
    Redis did not answer in time (it is away or overloaded).
    """


class StoreRefused(HarbourError):
    """
    A store script refused its arguments before writing anything: the
    caller's mistake, not an outage, so trying again cannot help.
    """


class ConfigurationError(HarbourError):
    """
    A command-line option or environment setting is unusable.
    """
