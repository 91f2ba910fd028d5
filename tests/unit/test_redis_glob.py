"""The member glob of ``sscan(match=...)`` cannot be made to backtrack without bound by
a pattern a user typed (its agreement with Redis is in tests/contract/test_member_glob.py)."""

from __future__ import annotations

import pytest

from djredis.cache.members import redis_glob


@pytest.mark.timeout(20)
def test_many_stars_on_a_long_text_answer_without_backtracking() -> None:
    # One regex with a ".*" per star would take O(len ** stars) steps to say no.
    glob = redis_glob("*a" * 12 + "*b")
    assert glob.fullmatch("a" * 20_000) is False
    assert glob.fullmatch("a" * 20_000 + "b") is True


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("*", "", True),  # SCAN's MATCH "*" does not run the glob at all
        ("**", "", False),  # Redis' glob matches "" only with the empty pattern
        ("", "", True),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("a*a", "a", False),  # the pieces may not overlap
        ("?*?", "x", False),
        ("?*?", "xy", True),
        ("[a-c]*[^x]", "bzz", True),
        ("h\\*llo", "h*llo", True),
        ("h\\*llo", "hello", False),
    ],
)
def test_glob_cases(pattern: str, text: str, expected: bool) -> None:
    assert redis_glob(pattern).fullmatch(text) is expected
