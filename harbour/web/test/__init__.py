"""
Tests of L{harbour.web}.
"""
