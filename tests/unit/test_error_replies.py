"""Error replies become the exceptions redis-py's own clients raise for them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers import BaseParser
from redis.exceptions import ResponseError

from djredis._core.errors import error_from_reply
from djredis._routing.cluster_plan import redirect_target

pytestmark = pytest.mark.unit

REPLIES = [
    "ERR unknown command 'FOO', with args beginning with: ",
    "ERR invalid password",
    "ERR wrong number of arguments for 'auth' command",
    "ERR Client sent AUTH, but no password is set",
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "WRONGPASS invalid username-password pair or user is disabled.",
    "NOAUTH Authentication required.",
    "NOPERM this user has no permissions to run the 'get' command",
    "NOSCRIPT No matching script. Please use EVAL.",
    "READONLY You can't write against a read only replica.",
    "LOADING Redis is loading the dataset in memory",
    "EXECABORT Transaction discarded because of previous errors.",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "MOVED 3999 127.0.0.1:6381",
    "ASK 3999 127.0.0.1:6381",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "CROSSSLOT Keys in request don't hash to the same slot",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "BUSYGROUP Consumer Group name already exists",
    "Syntax error at offset 3",
    "",
]


# redis-py < 8's base parser leaves the Cluster codes to its Cluster client; djredis's
# connections serve every topology, so they raise the Cluster client's classes everywhere.
CLUSTER_ERRORS = {
    "MOVED": "MovedError",
    "ASK": "AskError",
    "TRYAGAIN": "TryAgainError",
    "CLUSTERDOWN": "ClusterDownError",
    "CROSSSLOT": "ClusterCrossSlotError",
    "MASTERDOWN": "MasterDownError",
}


def _same(ours: Exception, theirs: Exception) -> None:
    if type(theirs) is ResponseError and type(ours) is not ResponseError:  # redis-py < 8
        code = str(theirs.args[0]).split(" ")[0]
        assert type(ours).__name__ == CLUSTER_ERRORS[code]
        assert ours.args == (theirs.args[0].split(" ", 1)[1],)
        return
    assert type(ours) is type(theirs)
    assert ours.args == theirs.args
    # redis-py 7 sets the code only for the classes of its table, redis-py 8 for every
    # error: djredis sets it as redis-py 8 does, on every version.
    if getattr(theirs, "status_code", None) is not None:
        assert ours.status_code == theirs.status_code  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", REPLIES)
def test_an_error_reply_raises_the_class_redis_py_raises(text: str) -> None:
    _same(error_from_reply(Exception(text)), BaseParser.parse_error(text))


@given(st.text(alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ_ 0123456789abc'")))
def test_any_error_text_gets_redis_pys_class_message_and_code(text: str) -> None:
    if text.startswith("ERR max number of clients reached"):
        return  # the connection decides what a maxclients refusal means (test_errors)
    try:
        theirs = BaseParser.parse_error(text)
    except (ValueError, IndexError):  # redis-py crashes on a malformed MOVED/ASK
        ours = error_from_reply(Exception(text))
        assert type(ours) is ResponseError
        assert ours.args == (text,)
        return
    _same(error_from_reply(Exception(text)), theirs)


@pytest.mark.parametrize("text", ["ASK", "MOVED", "MOVED 12", "ASK x y", "MOVED 1 host"])
def test_a_malformed_redirection_from_the_server_is_a_plain_error_not_a_crash(text: str) -> None:
    error = error_from_reply(Exception(text))
    assert type(error) is ResponseError
    assert str(error) == text
    assert redirect_target(error) is None  # Cluster routing does not follow it either


def test_a_well_formed_redirection_names_its_slot_and_node() -> None:
    error = error_from_reply(Exception("MOVED 3999 127.0.0.1:6381"))
    assert redirect_target(error) == ("MOVED", 3999, "127.0.0.1", 6381)
