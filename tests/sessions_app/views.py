"""The guides' session views (as written), plus the auth views the index tests drive."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone


class GuideUser:
    """The ``user`` the first guide's login_view refers to without defining it."""

    id = 7
    username = "alice"


user = GuideUser()


# -- "How to Use Redis with Django": Working with Sessions (verbatim but for ``user``) --


def login_view(request: HttpRequest) -> Any:
    # Store user data in session
    request.session["user_id"] = user.id
    request.session["username"] = user.username
    request.session["is_authenticated"] = True

    # Set session expiry
    request.session.set_expiry(3600)  # 1 hour

    return redirect("dashboard")


def dashboard_view(request: HttpRequest) -> Any:
    user_id = request.session.get("user_id")
    if not user_id:
        return redirect("login")

    return render(request, "dashboard.html")


def logout_view(request: HttpRequest) -> Any:
    # Clear session
    request.session.flush()
    return redirect("home")


# Custom session operations
def update_session(request: HttpRequest) -> HttpResponse:
    # Modify session data
    request.session["last_activity"] = timezone.now().isoformat()
    request.session.modified = True
    return HttpResponse("updated")


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


# -- authentication, for the per-user index ---------------------------------------------


def sign_in(request: HttpRequest) -> HttpResponse:
    found = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if found is None:
        return HttpResponse("bad credentials", status=403)
    login(request, found)
    return HttpResponse("signed in")


def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("signed out")


def whoami(request: HttpRequest) -> HttpResponse:
    who = request.user
    return HttpResponse(who.get_username() if who.is_authenticated else "anonymous")


def change_password(request: HttpRequest) -> HttpResponse:
    # What Django's PasswordChangeView does: save the new password, keep this session.
    request.user.set_password(request.POST["password"])
    request.user.save()
    update_session_auth_hash(request, request.user)
    return HttpResponse("changed")


def counter(request: HttpRequest) -> JsonResponse:
    """Read and write the session: the benchmark's view."""
    request.session["count"] = request.session.get("count", 0) + 1
    return JsonResponse({"count": request.session["count"]})


async def acounter(request: HttpRequest) -> JsonResponse:
    """``counter`` with the async session API (djredis's native ``aload``/``asave``)."""
    count = (await request.session.aget("count", 0)) + 1
    await request.session.aset("count", count)
    return JsonResponse({"count": count})


async def alogout(request: HttpRequest) -> HttpResponse:
    """``logout_view`` with the async session API: flush without reading first."""
    await request.session.aflush()
    return HttpResponse("flushed")


async def aconcurrent_logout(request: HttpRequest) -> HttpResponse:
    """Change the session after a concurrent request deleted it (SessionInterrupted)."""
    from djredis.sessions import SessionStore

    await request.session.aset("seen", True)
    await SessionStore().adelete(request.session.session_key)
    return HttpResponse("too late")
