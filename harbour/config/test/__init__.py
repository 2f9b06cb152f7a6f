"""
Tests for L{harbour.config}.
"""
