"""
Side-by-side benchmarks of harbour (C{make bench}); figures, not tests.
"""
