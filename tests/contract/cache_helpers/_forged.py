"""A pickle an attacker would write into Redis: loading it calls ``mark_unpickled``."""

from __future__ import annotations

import pickle
from typing import Any

UNPICKLED: list[str] = []


def mark_unpickled(label: str) -> str:
    """What the forged pickle calls when it is loaded (an attacker's ``os.system``)."""
    UNPICKLED.append(label)
    return label


class Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (mark_unpickled, ("pwned",))


# A valid djredis pickle header (0xC8: pickle, not compressed) and the payload.
FORGED = b"\xc8" + pickle.dumps(Payload())
