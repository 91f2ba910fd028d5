"""Prove the built-in serializers' contracts and every SERIALIZER spelling we accept."""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

import orjson
import pytest
from django.core.cache.backends.redis import RedisSerializer
from django.core.exceptions import ImproperlyConfigured

from djredis.serializers import (
    JSONSerializer,
    MsgPackSerializer,
    PickleSerializer,
    Serializer,
    resolve_accepted_serializers,
    resolve_serializer,
)

SETTING = "CACHES['default']['OPTIONS']['SERIALIZER']"


class UpperSerializer:
    """A custom serializer importable by dotted path."""

    def dumps(self, obj: Any) -> bytes:
        return str(obj).upper().encode()

    def loads(self, data: bytes | memoryview) -> Any:
        return bytes(data).decode()


class OptionsSerializer:
    """Shaped like a django-redis serializer: the constructor takes the OPTIONS dict."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj)

    def loads(self, data: bytes | memoryview) -> Any:
        return pickle.loads(data)


class NeedsTwoArguments:
    def __init__(self, a: int, b: int) -> None: ...

    def dumps(self, obj: Any) -> bytes:
        return b""

    def loads(self, data: bytes | memoryview) -> Any:
        return None


class NotASerializer:
    pass


SHARED_INSTANCE = UpperSerializer()


def test_builtin_format_ids_are_stable() -> None:
    # These numbers are written into every stored value; changing one strands data.
    assert (PickleSerializer.format_id, JSONSerializer.format_id, MsgPackSerializer.format_id) == (
        1,
        2,
        3,
    )


def test_pickle_uses_highest_protocol_by_default() -> None:
    assert PickleSerializer().dumps("x")[1] == pickle.HIGHEST_PROTOCOL


def test_pickle_protocol_can_be_chosen() -> None:
    data = PickleSerializer(protocol=2).dumps({"a": 1})
    assert data[:2] == b"\x80\x02"
    assert PickleSerializer().loads(data) == {"a": 1}


@pytest.mark.parametrize("cls", [PickleSerializer, JSONSerializer, MsgPackSerializer])
def test_builtin_serializers_read_from_memoryview(cls: type[Serializer]) -> None:
    serializer = cls()
    data = b"#" + serializer.dumps({"k": [1, 2, "three"]})
    assert serializer.loads(memoryview(data)[1:]) == {"k": [1, 2, "three"]}


def test_json_turns_non_string_keys_into_strings() -> None:
    serializer = JSONSerializer()
    assert serializer.loads(serializer.dumps({1: "a", None: "b"})) == {"1": "a", "null": "b"}


def test_json_keeps_integers_beyond_64_bits_exact() -> None:
    serializer = JSONSerializer()
    value = {"big": 2**100, "small": -(2**70), "list": [2**64, 1]}
    assert serializer.loads(serializer.dumps(value)) == value


def test_json_output_is_standard_json_either_parser_reads() -> None:
    serializer = JSONSerializer()
    value = {"a": [1, "é", None, True, 1.5]}
    assert json.loads(serializer.dumps(value)) == value
    assert orjson.loads(serializer.dumps(value)) == value
    # The stdlib fallback's output parses with orjson too (which rounds the big int).
    big = serializer.dumps({"big": 2**100})
    assert json.loads(big) == {"big": 2**100}
    assert orjson.loads(big) == {"big": float(2**100)}


def test_json_without_orjson_uses_the_stdlib_and_stays_compatible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_orjson = JSONSerializer()
    monkeypatch.setitem(sys.modules, "orjson", None)
    stdlib_only = JSONSerializer()
    value = {"text": "héllo", "n": [1, 2.5, None], "big": 2**80}
    assert stdlib_only.loads(stdlib_only.dumps(value)) == value
    assert with_orjson.loads(stdlib_only.dumps(value)) == value
    assert stdlib_only.loads(with_orjson.dumps({"a": 1})) == {"a": 1}


def test_json_refuses_what_json_cannot_represent() -> None:
    serializer = JSONSerializer()
    with pytest.raises(TypeError, match="set"):
        serializer.dumps({1, 2})
    with pytest.raises(TypeError, match="bytes"):
        serializer.dumps(b"raw")


def test_msgpack_keeps_bytes_and_str_apart() -> None:
    serializer = MsgPackSerializer()
    value = {"s": "text", "b": b"\x00\xff", 1: "int key"}
    assert serializer.loads(serializer.dumps(value)) == value


RESOLVES_TO = [
    (None, PickleSerializer),
    ("pickle", PickleSerializer),
    ("PICKLE", PickleSerializer),
    ("json", JSONSerializer),
    ("Json", JSONSerializer),
    ("msgpack", MsgPackSerializer),
    ("MsgPack", MsgPackSerializer),
    ("djredis.serializers.PickleSerializer", PickleSerializer),
    ("djredis.serializers.JSONSerializer", JSONSerializer),
    ("djredis.serializers.MsgPackSerializer", MsgPackSerializer),
    ("django_redis.serializers.pickle.PickleSerializer", PickleSerializer),
    ("django_redis.serializers.json.JSONSerializer", JSONSerializer),
    ("django_redis.serializers.msgpack.MSGPackSerializer", MsgPackSerializer),
    ("django.core.cache.backends.redis.RedisSerializer", PickleSerializer),
    (PickleSerializer, PickleSerializer),
    (MsgPackSerializer, MsgPackSerializer),
    ("tests.unit.test_serializers.UpperSerializer", UpperSerializer),
    (UpperSerializer, UpperSerializer),
]


@pytest.mark.parametrize(("spec", "expected"), RESOLVES_TO)
def test_resolve_serializer_accepts_every_documented_spelling(
    spec: object, expected: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # django_redis paths must map without importing django_redis (it may not be installed).
    monkeypatch.setitem(sys.modules, "django_redis", None)
    assert type(resolve_serializer(spec, setting=SETTING)) is expected


def test_resolve_serializer_maps_djangos_serializer_class_to_ours() -> None:
    # Django's RedisSerializer returns ints as ints, which cannot follow a header byte.
    resolved = resolve_serializer(RedisSerializer, setting=SETTING)
    assert type(resolved) is PickleSerializer


def test_resolve_serializer_returns_an_instance_as_given() -> None:
    instance = PickleSerializer(protocol=3)
    assert resolve_serializer(instance, setting=SETTING) is instance


def test_resolve_serializer_accepts_a_dotted_path_to_an_instance() -> None:
    resolved = resolve_serializer("tests.unit.test_serializers.SHARED_INSTANCE", setting=SETTING)
    assert resolved is SHARED_INSTANCE


def test_resolve_serializer_passes_options_to_django_redis_style_classes() -> None:
    resolved = resolve_serializer(OptionsSerializer, setting=SETTING)
    assert isinstance(resolved, OptionsSerializer)
    assert resolved.options == {}


BAD_SPECS = [
    pytest.param("picke", "did you mean 'pickle'", id="typo-short-name"),
    pytest.param(
        "django_redis.serializers.pickle.PickleSerialiser",
        "did you mean 'django_redis.serializers.pickle.PickleSerializer'",
        id="typo-django-redis-path",
    ),
    pytest.param(
        "tests.unit.test_serializers.Nope", "could not be imported", id="missing-attribute"
    ),
    pytest.param("no_such_module.Serializer", "could not be imported", id="missing-module"),
    pytest.param(
        "tests.unit.test_serializers.NotASerializer", "no dumps()", id="class-without-methods"
    ),
    pytest.param("tests.unit.test_serializers.SETTING", "not a serializer", id="path-to-a-string"),
    pytest.param(NeedsTwoArguments, "could not be instantiated", id="constructor-needs-args"),
    pytest.param(NotASerializer(), "not a serializer", id="instance-without-methods"),
    pytest.param(42, "not a serializer", id="number"),
    pytest.param("", "not a known serializer", id="empty-string"),
]


@pytest.mark.parametrize(("spec", "reason"), BAD_SPECS)
def test_resolve_serializer_names_the_setting_when_the_value_is_wrong(
    spec: object, reason: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        resolve_serializer(spec, setting=SETTING)
    message = str(caught.value)
    assert SETTING in message
    assert repr(spec) in message
    assert reason in message


def test_resolve_serializer_lists_what_is_accepted() -> None:
    with pytest.raises(ImproperlyConfigured, match="'pickle', 'json', 'msgpack'"):
        resolve_serializer("yaml", setting=SETTING)


@pytest.mark.parametrize(
    "spec", ["msgpack", "django_redis.serializers.msgpack.MSGPackSerializer", MsgPackSerializer]
)
def test_missing_msgpack_names_the_extra_to_install(
    spec: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'djredis\[msgpack\]'") as caught:
        resolve_serializer(spec, setting=SETTING)
    assert SETTING in str(caught.value)


ACCEPT = "CACHES['default']['OPTIONS']['ACCEPT_SERIALIZERS']"


def test_accepted_serializers_are_builtins_named_in_a_list() -> None:
    accepted = resolve_accepted_serializers(["pickle", "JSON", "msgpack"], setting=ACCEPT)
    assert [type(s) for s in accepted] == [PickleSerializer, JSONSerializer, MsgPackSerializer]
    assert resolve_accepted_serializers(None, setting=ACCEPT) == []
    assert resolve_accepted_serializers((), setting=ACCEPT) == []


@pytest.mark.parametrize(
    "spec",
    ["pickle", ["pikle"], [1], ["djredis.serializers.PickleSerializer"], {"pickle": True}],
)
def test_accepting_anything_but_builtin_names_is_improperly_configured(spec: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"ACCEPT_SERIALIZERS.*'json', 'msgpack'"):
        resolve_accepted_serializers(spec, setting=ACCEPT)


def test_a_misspelt_accepted_serializer_gets_a_suggestion() -> None:
    with pytest.raises(ImproperlyConfigured, match="did you mean 'pickle'"):
        resolve_accepted_serializers(["pikle"], setting=ACCEPT)


def test_accepting_msgpack_without_msgpack_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(ImproperlyConfigured, match=r"djredis\[msgpack\]"):
        resolve_accepted_serializers(["msgpack"], setting=ACCEPT)
