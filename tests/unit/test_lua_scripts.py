"""The shipped Lua scripts: ``-- include: <name>`` lines are replaced by that script."""

from __future__ import annotations

from djredis._core.scripts import lua


def test_an_included_function_is_inlined_where_the_include_line_was() -> None:
    shared = lua("channels_expired").source
    for name in ("channels_send", "channels_deliver", "channels_group_send"):
        source = lua(name).source
        assert "-- include:" not in source
        assert shared in source
        assert source.index("local function drop_expired") < source.rindex("drop_expired(")


def test_scripts_that_include_the_same_code_keep_their_own_sha() -> None:
    shas = {lua(name).sha for name in ("channels_send", "channels_deliver", "channels_group_send")}
    assert len(shas) == 3
