"""Real time: the guide's WebSocket chat on djredis.channels.RedisChannelLayer.

``/chat/`` lists a few rooms and takes a room name; ``/chat/<room>/`` opens a WebSocket on
``/ws/chat/<room>/`` (reference/routing.py), served by the guide's ChatConsumer
(reference/consumers.py) through the guide's asgi.py.
"""

from __future__ import annotations

import re

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .. import asgi, consumers, routing
from ._common import render_demo

GUIDE_CHANNELS = "How to Use Redis with Django > Django Channels with Redis"
ROOMS = ["lobby", "redis", "django"]
CHAT_SETTINGS = ["ASGI_APPLICATION", "CHANNEL_LAYERS"]


class RoomForm(forms.Form):
    """A room name, as the guide's routing accepts it (``\\w+``)."""

    room = forms.RegexField(
        regex=re.compile(r"^\w{1,40}$"),
        label="Room",
        error_messages={
            "invalid": "Use letters, digits and underscores only (the routing's \\w+), "
            "at most 40 of them.",
        },
    )


def chat_rooms(request: HttpRequest) -> HttpResponse:
    """List the rooms; a room name typed in the form opens that room."""
    form = RoomForm(request.GET or None)
    if form.is_valid():
        return redirect("chat-room", room_name=form.cleaned_data["room"])
    context = {"form": form, "rooms": ROOMS}
    return render_demo(
        request,
        "reference/chat_rooms.html",
        context,
        guide=GUIDE_CHANNELS,
        code=[routing],
        settings_names=CHAT_SETTINGS,
    )


def chat_room(request: HttpRequest, room_name: str) -> HttpResponse:
    """Show one room: the page's script opens /ws/chat/<room_name>/ and shows each message."""
    context = {"room_name": room_name, "group": f"chat_{room_name}", "rooms": ROOMS}
    return render_demo(
        request,
        "reference/chat_room.html",
        context,
        guide=GUIDE_CHANNELS,
        code=[consumers, routing, asgi],
        settings_names=CHAT_SETTINGS,
    )
