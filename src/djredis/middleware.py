"""``djredis.middleware.SessionMiddleware``: Django's SessionMiddleware, natively async.

A drop-in replacement for ``django.contrib.sessions.middleware.SessionMiddleware`` (same
cookie, expiry and ``SessionInterrupted`` behaviour; it subclasses it). Two differences:

- Under ASGI it saves the session with ``await session.asave()`` on the event loop instead
  of running ``process_response`` in Django's single sync thread, so with
  ``SESSION_ENGINE = "djredis.sessions"`` a request's session I/O never leaves the loop.
- With ``SESSION_REDIS['record_client'] = True`` it hands the request's ``REMOTE_ADDR`` and
  ``User-Agent`` to the djredis session, which stores them with every write of a logged-in
  user's session, for ``djredis.sessions.user_sessions()`` to show.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date

from djredis.sessions import SessionStore as RedisSessionStore

__all__ = ["SessionMiddleware"]

# Enough of a User-Agent to recognise a browser; the header has no length limit.
USER_AGENT_MAX_LENGTH = 512


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's SessionMiddleware that saves natively under ASGI and records the client."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        session = request.session
        if isinstance(session, RedisSessionStore):
            agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH]
            session.client = (request.META.get("REMOTE_ADDR") or "", agent)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        """Handle an async request: nothing here blocks the event loop."""
        self.process_request(request)  # no I/O: sessions load lazily
        response = await cast("Awaitable[HttpResponseBase]", self.get_response(request))
        return await self.aprocess_response(request, response)

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """``process_response`` with ``asave()``: the same decisions, made on the loop."""
        session = getattr(request, "session", None)
        if not isinstance(session, RedisSessionStore):
            # Another engine (or none): Django's own path, in its sync thread.
            process = sync_to_async(self.process_response, thread_sensitive=True)
            return await process(request, response)  # type: ignore[arg-type]
        accessed = session.accessed
        modified = session.modified
        empty = session.is_empty()
        if settings.SESSION_COOKIE_NAME in request.COOKIES and empty:
            response.delete_cookie(
                settings.SESSION_COOKIE_NAME,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            need_vary_cookie = True
        else:
            need_vary_cookie = accessed
            if (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty:
                # Load (asynchronously) before the sync expiry getters read the data.
                data = await session._adata()
                expiry = data.get("_session_expiry")
                if session.get_expire_at_browser_close():
                    max_age = None
                    expires = None
                else:
                    max_age = session.get_expiry_age(expiry=expiry)
                    expires = http_date(time.time() + max_age)
                if response.status_code < 500:
                    try:
                        await session.asave()
                    except UpdateError:
                        raise SessionInterrupted(
                            "The request's session was deleted before the "
                            "request completed. The user may have logged "
                            "out in a concurrent request, for example."
                        ) from None
                    response.set_cookie(
                        settings.SESSION_COOKIE_NAME,
                        session.session_key or "",
                        max_age=max_age,
                        expires=expires,
                        domain=settings.SESSION_COOKIE_DOMAIN,
                        path=settings.SESSION_COOKIE_PATH,
                        secure=bool(settings.SESSION_COOKIE_SECURE),
                        httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
                        samesite=settings.SESSION_COOKIE_SAMESITE,
                    )
                    need_vary_cookie = True
        if need_vary_cookie:
            patch_vary_headers(response, ("Cookie",))
        return response
