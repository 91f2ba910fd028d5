"""The one reader of component settings: every key checked, every error naming the setting."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from djredis._config.component import boolean, option, read_component, whole


@dataclasses.dataclass(frozen=True)
class Example:
    size: int = option("SIZE", "OLD_SIZE", default=10, parse=whole(1))
    enabled: bool = option("ENABLED", default=False, parse=boolean)
    name: Any = option("NAME")
    source: str = "unset"  # not read from the mapping


SETTING = "CACHES['x']['OPTIONS']['EXAMPLE']"


def read(raw: Any, **kwargs: Any) -> Example:
    return read_component(Example, raw, SETTING, noun="test setting", **kwargs)


def test_keys_become_converted_fields_and_the_rest_keep_their_defaults() -> None:
    assert read({"SIZE": 3, "NAME": "n"}, source="given") == Example(3, False, "n", "given")
    assert read({}) == Example()
    with pytest.raises(dataclasses.FrozenInstanceError):
        read({}).size = 2  # type: ignore[misc]


def test_an_unknown_key_is_named_with_its_setting_and_the_closest_key() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        read({"SIZ": 3})
    assert str(error.value).startswith(
        f"{SETTING}['SIZ'] is not a test setting (did you mean 'SIZE'?). Accepted: "
    )


def test_several_unknown_keys_are_all_named() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['A'\], .*\['B'\] are not test settings"):
        read({"A": 1, "B": 2})


@given(st.text(min_size=1).filter(lambda key: key not in {"SIZE", "OLD_SIZE", "ENABLED", "NAME"}))
def test_any_unknown_key_is_refused_by_name(key: str) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        read({key: 1})
    assert f"{SETTING}[{key!r}]" in str(error.value)


def test_a_bad_value_names_the_key_as_the_user_spelled_it() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['OLD_SIZE'\] must be a whole number >= 1"):
        read({"OLD_SIZE": 0})
    with pytest.raises(ImproperlyConfigured, match=r"\['ENABLED'\] must be True or False, got 1"):
        read({"ENABLED": 1})


def test_two_spellings_must_agree() -> None:
    assert read({"SIZE": 4, "OLD_SIZE": 4}).size == 4
    with pytest.raises(ImproperlyConfigured, match="sets 'SIZE' and 'OLD_SIZE' to different"):
        read({"SIZE": 4, "OLD_SIZE": 5})


def test_any_case_takes_either_case_and_suggests_in_the_users_case() -> None:
    assert read({"size": 5, "Enabled": True}, any_case=True) == Example(5, True)
    with pytest.raises(ImproperlyConfigured, match=r"did you mean 'NAME'\?\)\. Accepted \(lower"):
        read({"NAMES": 1}, any_case=True)
    with pytest.raises(ImproperlyConfigured, match="not a test setting"):
        read({"size": 5})  # exact case unless any_case


def test_not_strict_leaves_unknown_keys_to_another_reader() -> None:
    assert read({"SIZE": 2, "SOCKET_TIMEOUT": 1}, strict=False).size == 2


def test_flat_settings_are_named_by_where() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^EXAMPLE_SIZ is not .* mean EXAMPLE_SIZE"):
        read({"SIZ": 1}, where=lambda key: f"EXAMPLE_{key}")
    with pytest.raises(ImproperlyConfigured, match=r"^EXAMPLE_SIZE must be a whole number"):
        read({"SIZE": "big"}, where=lambda key: f"EXAMPLE_{key}")


def test_a_setting_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"OPTIONS'\]\['EXAMPLE'\] must be a dict"):
        read(["SIZE", 3])
