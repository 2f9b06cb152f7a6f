"""
Unit and integration tests of harbour (C{trial harbour}).
"""
