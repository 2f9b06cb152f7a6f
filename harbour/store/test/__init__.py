"""
Tests for L{harbour.store}.
"""
