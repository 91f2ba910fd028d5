"""A Channels layer on Redis: ``djredis.channels.RedisChannelLayer``.

``CHANNEL_LAYERS = {"default": {"BACKEND": "djredis.channels.RedisChannelLayer",
"CONFIG": {"hosts": ["redis://localhost:6379"]}}}``; see docs/channels.md.
"""

from djredis.channels.layer import RedisChannelLayer

__all__ = ["RedisChannelLayer"]
