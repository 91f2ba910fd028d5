"""Layer 2, the core: command descriptions, the error table and policy, Lua scripts.

Operations are written against these descriptions, so they import nothing of the transport.
"""
