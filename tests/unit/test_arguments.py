"""The canonical encoding behind memoize's keys (djredis.cache.arguments), by property."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from djredis.cache.arguments import canonical, digest

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=6)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=12,
)


def structure(value: Any) -> Any:
    """What two values must share to be the same call: types all the way down."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(structure(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((structure(k), structure(v)) for k, v in value.items()))
    if isinstance(value, frozenset | set):
        return ("set", frozenset(structure(v) for v in value))
    return (type(value).__name__, value)


def shuffled(value: Any, rng: random.Random) -> Any:
    """Rebuild ``value`` with every dict's insertion order shuffled."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    if isinstance(value, tuple):
        return tuple(shuffled(v, rng) for v in value)
    return value


@given(values, st.randoms())
def test_dict_order_never_changes_the_encoding(value: Any, rng: random.Random) -> None:
    assert canonical(shuffled(value, rng)) == canonical(value)


@given(values, values)
def test_equal_encodings_mean_the_same_typed_value(one: Any, other: Any) -> None:
    if canonical(one) == canonical(other):
        assert structure(one) == structure(other)
    else:
        assert structure(one) != structure(other)


@given(values)
def test_digest_is_a_128_bit_hex_string(value: Any) -> None:
    assert len(digest(value)) == 32
    int(digest(value), 16)


def test_plain_objects_are_refused_with_their_type_named() -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError, match="Opaque"):
        canonical({"k": Opaque()})
