"""The guide's routing (seeds/002, "Routing"), plus the JSON and echo consumers."""

# fmt: off
# routing.py
from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r'ws/chat/(?P<room_name>\w+)/$', consumers.ChatConsumer.as_asgi()),
    re_path(r"ws/json/(?P<room_name>\w+)/$", consumers.JsonChatConsumer.as_asgi()),
    re_path(r"ws/echo/$", consumers.EchoToChannelConsumer.as_asgi()),
]
