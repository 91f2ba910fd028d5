"""The exclusive mode of ``aio.AsyncConnection`` under its former name.

Transitional: ``dedicated.adedicated`` still builds it here; once that function takes the
loop's exclusive connection from ``loops`` (``loop_state().exclusive``), this module goes.
"""

from __future__ import annotations

from djredis._config.server import ServerConfig
from djredis._io.aio import AsyncConnection

__all__ = ["AsyncDedicatedConnection"]


class AsyncDedicatedConnection(AsyncConnection):
    """``AsyncConnection(config, exclusive=True)``."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config, exclusive=True)
