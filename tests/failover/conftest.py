"""Failure tests: Redis killed, paused (SIGSTOP), restarted or misbehaving mid-traffic, and what
callers see: the resend rule, timeouts, protocol violations, cancellation.
"""
