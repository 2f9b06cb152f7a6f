"""
Tests for L{harbour.amp}.
"""
