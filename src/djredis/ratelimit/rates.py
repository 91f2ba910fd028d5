"""Parse rates: ``"100/m"``, ``"10/5s"``, ``"1000/h"``, ``"5/d"`` or ``(count, seconds)``.

The grammar is django-ratelimit's (``count/[multiplier]unit`` with units ``s``, ``m``,
``h``, ``d``; a unit may be spelt out, ``"5/minute"``), plus tuples. A rate is validated
when the decorator or rule is built, so a bad one fails at import time with a message
naming it, and again by the system check ``djredis.ratelimit.E001``. A count of 0
(``"0/m"``, ``(0, 60)``) is django-ratelimit's "disallow all requests".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Rate", "parse_rate"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(
    r"\s*(\d+)\s*/\s*(\d*)\s*"
    r"(?:(s)(?:ec|econd|econds)?|(m)(?:in|inute|inutes)?|(h)(?:our|ours)?|(d)(?:ay|ays)?)?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` hits per ``seconds`` (a count >= 0, a positive period; 0 refuses all)."""

    count: int
    seconds: float

    @property
    def period_us(self) -> int:
        """The period in whole microseconds (what the Lua scripts count in)."""
        return max(1, round(self.seconds * 1_000_000))

    def __str__(self) -> str:
        seconds = int(self.seconds) if float(self.seconds).is_integer() else self.seconds
        return f"{self.count}/{seconds}s"


def parse_rate(rate: Any) -> Rate:
    """Return the ``Rate`` that ``rate`` describes; ``ValueError``/``TypeError`` if none."""
    if isinstance(rate, Rate):
        return rate
    if isinstance(rate, str):
        match = _RATE.fullmatch(rate)
        if match is None:
            raise ValueError(
                f"rate {rate!r} is not 'count/period' (e.g. '100/m', '10/5s', '1000/h', '5/d')"
            )
        count, multiplier, *units = match.groups()
        unit = next((u for u in units if u), None)
        # django-ratelimit: no unit means seconds ("10/5" = 10 per 5 s).
        seconds = int(multiplier or 1) * _UNITS[(unit or "s").lower()]
        if seconds < 1:
            raise ValueError(f"rate {rate!r} needs a period of at least 1")
        return Rate(int(count), seconds)
    if isinstance(rate, tuple | list) and len(rate) == 2:
        count, seconds = rate
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"rate {rate!r}: the count must be an int, not {type(count).__name__}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(
                f"rate {rate!r}: the period must be a number of seconds, "
                f"not {type(seconds).__name__}"
            )
        if count < 0 or not seconds > 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError(f"rate {rate!r} needs a count >= 0 and a finite period > 0")
        return Rate(count, seconds)
    raise TypeError(
        f"a rate is a string such as '100/m' or a (count, seconds) tuple, not {type(rate).__name__}"
    )
