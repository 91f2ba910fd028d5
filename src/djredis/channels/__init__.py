"""A Channels layer on Redis: ``djredis.channels.RedisChannelLayer``.

``CHANNEL_LAYERS = {"default": {"BACKEND": "djredis.channels.RedisChannelLayer",
"CONFIG": {"hosts": ["redis://localhost:6379"]}}}``; see docs/channels.md.
"""

try:
    import channels  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by scripts/check_wheel.py
    raise ImportError(
        "djredis.channels needs Django Channels: pip install 'djredis[channels]'"
    ) from exc

from djredis.channels.layer import RedisChannelLayer

__all__ = ["RedisChannelLayer"]
