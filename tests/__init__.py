"""
System tests: real twistd, redis-server and harbourctl processes.
"""
