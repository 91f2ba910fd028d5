"""What the set, hash and sorted-set methods share: members encoded like cache values.

django-redis 7.0 stores set members, hash values and sorted-set members with the cache's
serializer and compressor, so ``cache.sadd("s", {"a": 1})`` and ``cache.smembers("s")``
round-trip any picklable value. djredis does the same with its own codec (an ``int`` is
stored as its digits, anything else as header + payload), so equal values always encode
to equal bytes and Redis' set semantics hold. A member this process cannot decode is left
out of a reply and logged, never raised: garbage in Redis is a miss.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from djredis._routing.cluster_plan import slot_of
from djredis.cache.base import CacheBase
from djredis.cache.codec import UndecodableValue

__all__ = ["CrossSlotError", "Glob", "MemberCodec", "redis_glob"]


class CrossSlotError(ValueError):
    """A multi-key set command whose keys live in different Redis Cluster hash slots."""


class MemberCodec(CacheBase):
    """Encode and decode members, and keep multi-key commands inside one Cluster slot."""

    def _member(self, raw: bytes, key: str) -> Any:
        """Return the decoded member, or ``None`` (logged) when it cannot be decoded."""
        try:
            return self._codec.decode(raw)
        except UndecodableValue as exc:
            self._log_garbage(key, exc)
            return None

    def _members(self, raws: Iterable[bytes], key: str) -> list[Any]:
        """Return the decoded members, leaving out (and logging) undecodable ones."""
        decode = self._codec.decode
        out = []
        for raw in raws:
            try:
                out.append(decode(raw))
            except UndecodableValue as exc:
                self._log_garbage(key, exc)
        return out

    def _scored(self, flat: list[Any], key: str, cast: Any = float) -> list[tuple[Any, Any]]:
        """Turn a RESP2 ``member, score, member, score...`` reply into decoded pairs."""
        decode = self._codec.decode
        out = []
        for i in range(0, len(flat), 2):
            try:
                member = decode(flat[i])
            except UndecodableValue as exc:
                self._log_garbage(key, exc)
                continue
            out.append((member, cast(flat[i + 1])))
        return out

    def _keys(self, method: str, keys: Iterable[tuple[Any, int | None]]) -> list[str]:
        """Return the Redis keys of a multi-key command; in a Cluster, refuse keys that
        do not share one hash slot (Redis would answer CROSSSLOT) with an error naming them.
        """
        pairs = [(key, self._key(key, version=version)) for key, version in keys]
        if self._tag_keys and pairs:
            first_key, first_full = pairs[0]
            slot = slot_of(first_full)
            for key, full in pairs[1:]:
                if slot_of(full) != slot:
                    raise CrossSlotError(
                        f"{method}() on Redis Cluster needs all its keys in one hash slot, "
                        f"but {first_key!r} and {key!r} are in different slots. Give the keys "
                        f"a common hash tag at their start, e.g. '{{group}}a' and '{{group}}b'."
                    )
        return [full for _, full in pairs]


class Glob:
    """A compiled Redis glob: ``fullmatch(text)`` says whether ``text`` matches.

    Every token but ``*`` matches exactly one character, so the pattern is cut at its
    stars into fixed-length pieces, each a regex without quantifiers, and the pieces are
    placed leftmost-first: O(len(text) x len(pattern)) whatever the pattern, where one
    regex with a ``.*`` per star backtracks without bound (``*a*a*a*a*b`` on a long run
    of "a"s), and a pattern can come from a user.
    """

    __slots__ = ("_everything", "_pieces", "_sizes")

    def __init__(self, pieces: list[list[str]], everything: bool = False) -> None:
        self._everything = everything
        self._sizes = [len(piece) for piece in pieces]
        self._pieces = [re.compile("".join(piece), re.DOTALL) for piece in pieces]

    def fullmatch(self, text: str) -> bool:
        pieces, sizes = self._pieces, self._sizes
        if not text:
            # Redis' glob never matches an empty string (bar the empty pattern); SCAN's
            # MATCH "*" skips the glob altogether, so that one keeps it.
            return self._everything or (len(pieces) == 1 and not sizes[0])
        if len(pieces) == 1:  # no star
            return pieces[0].fullmatch(text) is not None
        end = len(text) - sizes[-1]
        if end < sizes[0] or not pieces[0].match(text) or not pieces[-1].fullmatch(text, end):
            return False
        pos = sizes[0]
        for piece in pieces[1:-1]:
            found = piece.search(text, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True


def redis_glob(pattern: str) -> Glob:
    """Compile a Redis glob (``*``, ``?``, ``[abc]``, ``[^a-z]``, ``\\x``) that matches
    what Redis' MATCH would (on ASCII; a non-ASCII ``str`` is matched by character, not by
    UTF-8 byte), odd corners included (``[]`` matches nothing, ``[^]`` any character, an
    unclosed ``[`` runs to the end of the pattern).

    Used to filter decoded members client-side: Redis' own MATCH would compare the glob
    with the *serialized* bytes, which is meaningless for pickled members.
    """
    pieces: list[list[str]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            pieces.append([])
        elif char == "?":
            pieces[-1].append(".")
        elif char == "[":
            i, klass = _char_class(pattern, i + 1)
            pieces[-1].append(klass)
        elif char == "\\" and i + 1 < n:
            i += 1
            pieces[-1].append(re.escape(pattern[i]))
        else:
            pieces[-1].append(re.escape(char))
        i += 1
    return Glob(pieces, everything=pattern == "*")


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """Parse a class starting after its ``[``; return where it ends and its regex."""
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    if negate:
        i += 1
    items: list[str] = []
    while i < n and pattern[i] != "]":
        if pattern[i] == "\\" and i + 1 < n:
            i += 1
            items.append(re.escape(pattern[i]))
        elif i + 2 < n and pattern[i + 1] == "-":
            low, high = sorted((pattern[i], pattern[i + 2]))  # Redis accepts z-a too
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 2
        else:
            items.append(re.escape(pattern[i]))
        i += 1
    if not items:
        return i, "[\\s\\S]" if negate else "[^\\s\\S]"
    return i, f"[{'^' if negate else ''}{''.join(items)}]"
