"""Unit tests: one module at a time (RESP, codec, config, layout), with at most the standalone
test server behind them.
"""
