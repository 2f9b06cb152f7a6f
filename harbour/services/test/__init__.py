"""
Tests for L{harbour.services}.
"""
