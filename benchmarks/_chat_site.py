"""The ASGI chat the channel layer benchmark serves: the guide's ChatConsumer, with the
layer picked by ``DJREDIS_BENCH_LAYER`` (``benchmarks.channels.LAYERS``) on
``DJREDIS_BENCH_REDIS``. Run as ``uvicorn benchmarks._chat_site:app``.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

LAYERS = {
    "djredis": "djredis.channels.RedisChannelLayer",
    "channels_redis core": "channels_redis.core.RedisChannelLayer",
    "channels_redis pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def configure(layer: str, redis_url: str) -> None:
    """Configure Django with the guide's CHANNEL_LAYERS, BACKEND = ``layer``."""
    config: dict[str, Any] = {"hosts": [redis_url]}
    if layer != "djredis":  # the channels_redis#422 workaround (see benchmarks.channels)
        config["hosts"] = [{"address": redis_url, "socket_timeout": None}]
    if layer != "channels_redis pubsub":  # it takes neither key
        config.update(capacity=1500, expiry=10)
    settings.configure(
        SECRET_KEY="benchmark",
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {"BACKEND": LAYERS[layer], "CONFIG": config}},
    )
    django.setup()


class _Guest:
    username = "guest"


def _application() -> Any:
    from channels.routing import URLRouter

    from tests.channels_app.routing import websocket_urlpatterns

    router = URLRouter(websocket_urlpatterns)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The guide wraps the router in AuthMiddlewareStack; the consumer only reads
        # scope["user"].username, so a guest stands in (no session database needed).
        await router({**scope, "user": _Guest()}, receive, send)

    return app


if os.environ.get("DJREDIS_BENCH_LAYER"):
    configure(os.environ["DJREDIS_BENCH_LAYER"], os.environ["DJREDIS_BENCH_REDIS"])
    app = _application()
