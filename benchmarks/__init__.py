"""Benchmarks for djredis against the other ways of using Redis from Django.

Each module is one benchmark run as ``python -m benchmarks.<name>`` from the project root;
it prints a table and rewrites its own section of ``docs/benchmarks.md``.
"""
