"""
Tests of L{harbour.dataset}.
"""
