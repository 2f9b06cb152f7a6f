"""
Tests for L{harbour.oasis}.
"""
