"""Topology tests: replicas, Sentinel, Cluster and TLS started by the suite, and the test servers
themselves (ports that cannot collide).
"""
