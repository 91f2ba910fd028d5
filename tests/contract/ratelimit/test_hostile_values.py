"""What a client controls (the values rules count by) cannot cost the server memory or
reach another rule's counter."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from django.http import HttpRequest
from django.test import RequestFactory

from djredis.ratelimit import Rule
from tests._topologies import Topology


def test_megabyte_values_are_not_kept_in_memory(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """Forty 1 MB usernames leave (nearly) nothing behind: keys are remembered for short
    values only."""
    factory = RequestFactory()
    rule = Rule(key="post:username", rate="5/m", method="POST", group="huge")
    rule.check(factory.post("/", {"username": "warm-up"}, REMOTE_ADDR="203.0.113.9"))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(40):
            attempt = factory.post(
                "/", {"username": f"{n:02}" * 500_000}, REMOTE_ADDR="203.0.113.9"
            )
            result = rule.check(attempt)
            assert result is not None
            assert result.allowed
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 4_000_000


def test_no_value_makes_two_rules_share_a_counter(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    """A rule for every method and a GET-only rule, same group, key and rate: a value
    crafted to look like the other rule's key ("victim\\0GET") does not reach its counter."""
    every = Rule(key="get:u", rate="1/m", group="g")
    get_only = Rule(key="get:u", rate="1/m", method="GET", group="g")
    crafted = every.check(make_request("/?u=victim%00GET"))
    victim = get_only.check(make_request("/?u=victim"))
    assert crafted is not None
    assert victim is not None
    assert (crafted.allowed, victim.allowed) == (True, True)
