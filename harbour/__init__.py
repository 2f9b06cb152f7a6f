"""
harbour: a Twisted daemon that keeps a verified local mirror of CAISO OASIS
market reports.

Run it with C{twistd harbour}; steer it with C{harbourctl}.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
