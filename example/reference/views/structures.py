"""Redis structures through get_redis_connection, as the guide's low-level section uses them:
a sorted-set leaderboard, pub/sub notifications, a lock and a hash per user profile."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from djredis import get_async_redis_connection, get_redis_connection

from ._common import now, render_demo

GUIDE_LOW_LEVEL = "How to Use Redis with Django > Low-Level Redis Access"
# Keys written through the raw redis-py client get no KEY_PREFIX: name them yourself.
LEADERBOARD_KEY = "example:leaderboard"
CHANNEL = "example:notifications"
LOCK_KEY = "example:lock:report"
REPORTS_KEY = "example:reports"
PROFILE_KEY = "example:profile:{}"
STREAM_SECONDS = 25  # the browser's EventSource reconnects after this, by itself


# -- leaderboard ---------------------------------------------------------------------------


class ScoreForm(forms.Form):
    """A player's name and score."""

    name = forms.CharField(max_length=40)
    score = forms.IntegerField(
        min_value=0,
        max_value=1_000_000,
        error_messages={
            "min_value": "A score cannot be negative: enter a whole number from 0 to 1,000,000.",
            "max_value": "Scores stop at 1,000,000: enter a whole number from 0 to 1,000,000.",
            "invalid": "Enter the score as a whole number, like 42.",
        },
    )


def _top_ten() -> list[tuple[int, str, int]]:
    """Return (rank, name, score) of the ten best scores."""
    redis_conn = get_redis_connection("default")
    top = redis_conn.zrevrange(LEADERBOARD_KEY, 0, 9, withscores=True)
    return [(rank, name.decode(), int(score)) for rank, (name, score) in enumerate(top, 1)]


def leaderboard_demo(request: HttpRequest) -> HttpResponse:
    """Add scores to a Redis sorted set, show the top ten and tell other pages."""
    form = ScoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name, score = form.cleaned_data["name"], form.cleaned_data["score"]
        redis_conn = get_redis_connection("default")
        redis_conn.zadd(LEADERBOARD_KEY, {name: score})
        redis_conn.publish(CHANNEL, json.dumps({"kind": "score", "text": f"{name}: {score}"}))
        return redirect("leaderboard")
    context = {"form": form, "rows": _top_ten(), "key": LEADERBOARD_KEY}
    return render_demo(
        request,
        "reference/leaderboard.html",
        context,
        guide=GUIDE_LOW_LEVEL + " (sorted sets)",
        code=[leaderboard_demo, _top_ten],
    )


def leaderboard_json(request: HttpRequest) -> JsonResponse:
    """Return the top ten as JSON (the page refreshes its table from it live)."""
    rows = [{"rank": r, "name": n, "score": s} for r, n, s in _top_ten()]
    return JsonResponse({"rows": rows})


# -- pub/sub notifications -----------------------------------------------------------------


class NotifyForm(forms.Form):
    """A notification to publish."""

    text = forms.CharField(max_length=200, label="Message")


def notifications_demo(request: HttpRequest) -> HttpResponse:
    """Publish a message to a Redis channel; every open page receives it live."""
    form = NotifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        message = {"kind": "message", "text": form.cleaned_data["text"], "at": now()}
        receivers = get_redis_connection("default").publish(CHANNEL, json.dumps(message))
        request.session["last_receivers"] = receivers
        return redirect("notifications")
    context = {"form": form, "channel": CHANNEL, "receivers": request.session.get("last_receivers")}
    return render_demo(
        request,
        "reference/notifications.html",
        context,
        guide=GUIDE_LOW_LEVEL + " (Pub/Sub)",
        code=[notifications_demo, _events],
    )


async def _events() -> AsyncIterator[str]:
    """Yield Server-Sent Events for each message published on CHANNEL."""
    redis_conn = get_async_redis_connection("default")
    pubsub = redis_conn.pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        yield "retry: 1000\n: subscribed\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                yield ": keep-alive\n\n"
                continue
            yield f"data: {message['data'].decode()}\n\n"
    finally:
        await pubsub.aclose()


async def notifications_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream CHANNEL's messages to the browser (text/event-stream, for EventSource)."""
    response = StreamingHttpResponse(_events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


# -- a lock-protected operation --------------------------------------------------------------


async def _run_report() -> dict[str, Any]:
    """Build the report unless another request holds the lock; never twice at once."""
    redis_conn = get_async_redis_connection("default")
    lock = redis_conn.lock(LOCK_KEY, timeout=10)
    if not await lock.acquire(blocking=False):
        return {"ran": False}
    try:
        await asyncio.sleep(1.0)  # the exclusive work
        count = await redis_conn.incr(REPORTS_KEY)
        return {"ran": True, "count": count}
    finally:
        await lock.release()


async def lock_run(request: HttpRequest) -> JsonResponse:
    """Try to run the report under the lock; say whether this request ran it."""
    if request.method != "POST":
        return JsonResponse({"error": "POST to run the report"}, status=405)
    return JsonResponse(await _run_report())


def lock_demo(request: HttpRequest) -> HttpResponse:
    """Explain the lock and show how many reports ran."""
    count = int(get_redis_connection("default").get(REPORTS_KEY) or 0)
    return render_demo(
        request,
        "reference/lock.html",
        {"count": count, "lock_key": LOCK_KEY},
        guide="How to Use Redis with Django > Custom Cache Backend Methods (Lock pattern)",
        code=[_run_report],
    )


# -- hashes: a user profile ------------------------------------------------------------------


class ProfileForm(forms.Form):
    """The profile fields kept in a Redis hash."""

    display_name = forms.CharField(max_length=60)
    city = forms.CharField(max_length=60, required=False)
    theme = forms.ChoiceField(choices=[("light", "light"), ("dark", "dark")])


@login_required
def profile_demo(request: HttpRequest) -> HttpResponse:
    """Keep the user's profile in the hash example:profile:<id> (HSET / HGETALL)."""
    redis_conn = get_redis_connection("default")
    key = PROFILE_KEY.format(request.user.pk)
    stored = {k.decode(): v.decode() for k, v in redis_conn.hgetall(key).items()}
    form = ProfileForm(request.POST or None, initial=stored)
    if request.method == "POST" and form.is_valid():
        redis_conn.hset(key, mapping=form.cleaned_data)
        return redirect("profile")
    return render_demo(
        request,
        "reference/profile.html",
        {"form": form, "stored": stored, "key": key},
        guide=GUIDE_LOW_LEVEL + " (Hash operations)",
        code=[profile_demo],
    )


@require_POST
def profile_clear(request: HttpRequest) -> HttpResponse:
    """Delete the profile hash."""
    if request.user.is_authenticated:
        get_redis_connection("default").delete(PROFILE_KEY.format(request.user.pk))
    return redirect("profile")
