"""Sessions on djredis.sessions: log in, log out, and the user's active sessions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from djredis.sessions import revoke_all_sessions, revoke_session, user_sessions

from ._common import render_demo

GUIDE_SESSIONS = "How to Use Redis with Django > Session Storage with Redis"


class DemoLoginView(LoginView):
    """Django's LoginView; the login is stored by djredis.sessions."""

    template_name = "reference/login.html"
    extra_context = {  # noqa: RUF012  (Django's LoginView reads it as a class attribute)
        "demo_username": settings.DEMO_USERNAME,
        "demo_password": settings.DEMO_PASSWORD,
        "guide": GUIDE_SESSIONS,
    }


def _device(user_agent: str | None) -> str:
    """Return a short name for the browser behind ``user_agent``."""
    if not user_agent:
        return "unknown device"
    for marker, name in [
        ("Edg/", "Edge"),
        ("Chrome/", "Chrome"),
        ("Firefox/", "Firefox"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python", "Python"),
    ]:
        if marker in user_agent:
            systems = ["Windows", "Mac OS X", "Android", "iPhone", "Linux"]
            system = next((s for s in systems if s in user_agent), "")
            return f"{name} on {system}" if system else name
    return user_agent[:40]


@login_required
def sessions_demo(request: HttpRequest) -> HttpResponse:
    """List the user's sessions; log one out, or all but this one."""
    if request.method == "POST":
        if request.POST.get("action") == "others":
            revoke_all_sessions(request.user, keep=request.session.session_key)
        else:
            revoke_session(request.user, request.POST.get("id", ""))
        return redirect("sessions")
    sessions = user_sessions(request.user, current_session_key=request.session.session_key)
    rows = [(s, _device(s.user_agent)) for s in sessions]
    return render_demo(
        request,
        "reference/sessions.html",
        {"rows": rows},
        guide=GUIDE_SESSIONS,
        code=[sessions_demo],
        settings_names=["SESSION_ENGINE", "SESSION_REDIS", "SESSION_COOKIE_AGE"],
    )
