"""The guide's WebSocket routing, exactly as the guide writes it ("Routing").

docs/channels.md walks through it."""

# fmt: off
# routing.py
from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r'ws/chat/(?P<room_name>\w+)/$', consumers.ChatConsumer.as_asgi()),
]
