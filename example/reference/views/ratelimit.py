"""Rate limiting with djredis.ratelimit: a JSON API limited per IP and per user."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from djredis.ratelimit import Rule, ratelimit

from ._common import now, render_demo

PER_IP = "10/m"
PER_USER = "20/m"
GROUP_IP = "demo-api-ip"
GROUP_USER = "demo-api-user"


@ratelimit(group=GROUP_IP, key="ip", rate=PER_IP)
@ratelimit(group=GROUP_USER, key="user_or_ip", rate=PER_USER)
def api_hello(request: HttpRequest) -> JsonResponse:
    """Answer a tiny JSON document; over either limit, 429 with Retry-After and RateLimit."""
    return JsonResponse({"hello": "world", "at": now()})


def ratelimit_demo(request: HttpRequest) -> HttpResponse:
    """Show this visitor's remaining quota (looked at, not counted) and a button to spend it."""
    ip = Rule(key="ip", rate=PER_IP).check(request, group=GROUP_IP, increment=False)
    user = Rule(key="user_or_ip", rate=PER_USER).check(request, group=GROUP_USER, increment=False)
    context = {"ip": ip, "user_quota": user, "per_ip": PER_IP, "per_user": PER_USER}
    return render_demo(
        request,
        "reference/ratelimit.html",
        context,
        guide="Rate limiting (djredis.ratelimit)",
        code=[api_hello, ratelimit_demo],
    )
