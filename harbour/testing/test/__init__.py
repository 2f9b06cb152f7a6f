"""
Tests for L{harbour.testing}.
"""
