"""Rate strings and tuples: what parses, to what, and what is refused with which error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from djredis.ratelimit.rates import Rate, parse_rate

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNIT_SPELLINGS = {
    "s": ["s", "sec", "second", "seconds", "S"],
    "m": ["m", "min", "minute", "minutes", "M"],
    "h": ["h", "hour", "hours", "H"],
    "d": ["d", "day", "days", "D"],
}


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("100/m", 100, 60), ("10/5s", 10, 5), ("1000/h", 1000, 3600), ("5/d", 5, 86400)],
)
def test_the_documented_rates_parse(text: str, count: int, seconds: int) -> None:
    assert parse_rate(text) == Rate(count, seconds)


@given(
    count=st.integers(min_value=1, max_value=10**9),
    multiplier=st.one_of(st.none(), st.integers(min_value=1, max_value=10**4)),
    unit=st.sampled_from(sorted(UNIT_SECONDS)),
    spelling=st.integers(min_value=0, max_value=4),
)
def test_any_count_multiplier_and_unit_spelling_parses_to_count_per_seconds(
    count: int, multiplier: int | None, unit: str, spelling: int
) -> None:
    spellings = UNIT_SPELLINGS[unit]
    text = (
        f"{count}/{'' if multiplier is None else multiplier}{spellings[spelling % len(spellings)]}"
    )
    assert parse_rate(text) == Rate(count, (multiplier or 1) * UNIT_SECONDS[unit])


@given(count=st.integers(min_value=1, max_value=10**6), seconds=st.integers(1, 10**6))
def test_a_rate_printed_parses_back_to_itself(count: int, seconds: int) -> None:
    rate = parse_rate((count, seconds))
    assert parse_rate(str(rate)) == rate


@given(
    count=st.integers(min_value=1, max_value=10**6),
    seconds=st.floats(min_value=0.001, max_value=10**6, allow_nan=False),
)
def test_tuples_take_fractional_periods(count: int, seconds: float) -> None:
    rate = parse_rate((count, seconds))
    assert rate.count == count
    assert rate.seconds == seconds
    assert rate.period_us >= 1


def test_no_unit_means_seconds_as_in_django_ratelimit() -> None:
    assert parse_rate("7/") == Rate(7, 1)
    assert parse_rate("7/5") == Rate(7, 5)


@given(st.text(max_size=12))
def test_any_text_parses_or_raises_value_error_naming_it(text: str) -> None:
    outcome: Rate | str
    try:
        outcome = parse_rate(text)
    except ValueError as exc:
        outcome = str(exc)
    if isinstance(outcome, str):
        assert repr(text) in outcome
    else:
        assert outcome.count >= 0  # 0 = django-ratelimit's "disallow all"
        assert outcome.seconds >= 1


@pytest.mark.parametrize("text", ["5/mxyz", "x/m", "5/0m", "", "-1/m", "5/w", "5"])
def test_bad_rate_strings_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (5, TypeError),
        (None, TypeError),
        ((5,), TypeError),
        (("5", 60), TypeError),
        ((5, "60"), TypeError),
        ((True, 60), TypeError),
        ((-1, 60), ValueError),
        ((5, 0), ValueError),
        ((5, float("nan")), ValueError),
        ((5, float("inf")), ValueError),
    ],
)
def test_bad_rate_values_raise_the_right_error(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_rate(value)
