"""Expose the reference site as an ASGI application (uvicorn, daphne, gunicorn -k uvicorn).

The guide's "ASGI Configuration": HTTP goes to Django, WebSockets to the chat consumer
through AuthMiddlewareStack (the session cookie gives ``scope["user"]``). Django's ASGI
application is built first, as Channels' docs advise, so that the apps are loaded before
the routing imports anything that needs them.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reference.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from reference import routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns)),
    }
)
