"""``djredis.middleware.SessionMiddleware``: Django's SessionMiddleware, natively async.

A drop-in replacement for ``django.contrib.sessions.middleware.SessionMiddleware``: it
subclasses it, and Django's ``process_response`` decides everything (cookie, expiry, Vary,
``SessionInterrupted``). Two differences:

- Under ASGI, with ``SESSION_ENGINE = "djredis.sessions"``, the session's I/O stays on the
  event loop instead of Django's single sync thread: what ``process_response`` reads is
  loaded first with ``aload()``, and the save it asks for is written afterwards with
  ``asave()``.
- With ``SESSION_REDIS['record_client'] = True`` it hands the request's ``REMOTE_ADDR`` and
  ``User-Agent`` to the djredis session, which stores them with every write of a logged-in
  user's session, for ``djredis.sessions.user_sessions()`` to show.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponseBase

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
        session = getattr(request, "session", None)
        if not isinstance(session, RedisSessionStore):
            # Another engine (or none): Django's own path, in its sync thread.
            process = sync_to_async(self.process_response, thread_sensitive=True)
            return await process(request, response)  # type: ignore[arg-type]
        if session.modified or settings.SESSION_SAVE_EVERY_REQUEST:
            # process_response reads the expiry of a session it saves: load it here, on
            # the loop, without counting as an access (that decides Vary: Cookie).
            accessed = session.accessed
            await session._aget_session()
            session.accessed = accessed
        with session._saving_later():
            response = self.process_response(request, response)  # type: ignore[arg-type]
        cookie_key = session.session_key
        try:
            await session._asave_later()
        except UpdateError:
            # What Django's process_response raises when save() raises UpdateError.
            raise SessionInterrupted(
                "The request's session was deleted before the request completed. The "
                "user may have logged out in a concurrent request, for example."
            ) from None
        cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        key = session.session_key
        if cookie is not None and key is not None and key != cookie_key:
            # The key given to the cookie was taken meanwhile: create() picked another.
            cookie.set(settings.SESSION_COOKIE_NAME, key, key)
        return response
