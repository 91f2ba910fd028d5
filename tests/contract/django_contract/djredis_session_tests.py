# ruff: noqa: PT009  (unittest assertions: this module runs inside Django's unittest suite)
"""Django's own session tests against djredis.sessions and djredis.cache.

Copied at run time into Django's test tree as ``sessions_tests/djredis_session_tests.py``
and run by Django's runtests.py with the label ``sessions_tests.djredis_session_tests``.
The settings (``django_settings.py``) make ``CACHES['default']`` a djredis cache, which is
also where ``djredis.sessions`` keeps sessions when no ``SESSION_REDIS`` is set.

- ``DjredisSessionTests``: ``SessionTestsMixin`` (the contract every session engine
  passes) on ``djredis.sessions.SessionStore``, plus the ``clearsessions`` command.
- ``DjredisSessionMiddlewareTests``: Django's ``SessionMiddlewareTests`` with
  ``SESSION_ENGINE = "djredis.sessions"``. ``test_empty_session_saved`` reads the stored
  session through the engine instead of the database model, which this engine does not use.
- ``DjredisCacheSessionTests`` / ``DjredisCacheDBSessionTests``: Django's ``cache`` and
  ``cached_db`` engines (the guides' other two ways) on a djredis cache.

Django's test classes are reached through the module (``tests.X``), never imported by
name: a TestCase imported here would be collected and run a second time.
"""

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import management
from django.http import HttpResponse
from django.test import SimpleTestCase, override_settings

from djredis.sessions import SessionStore as RedisSession

from . import tests

DJREDIS_BACKEND = "djredis.cache.RedisCache"
if settings.CACHES["default"].get("BACKEND") != DJREDIS_BACKEND:
    raise RuntimeError(f"CACHES['default'] must use {DJREDIS_BACKEND}")


class DjredisSessionTests(tests.SessionTestsMixin, SimpleTestCase):
    backend = RedisSession

    def test_clearsessions_command_succeeds_and_keeps_live_sessions(self):
        self.session["foo"] = "bar"
        self.session.save()
        with override_settings(SESSION_ENGINE="djredis.sessions"):
            management.call_command("clearsessions")
        self.assertEqual(self.backend(self.session.session_key).load(), {"foo": "bar"})


@override_settings(SESSION_ENGINE="djredis.sessions")
class DjredisSessionMiddlewareTests(tests.SessionMiddlewareTests):
    def test_empty_session_saved(self):
        def response_set_session(request):
            request.session["foo"] = "bar"
            return HttpResponse("Session test")

        request = self.request_factory.get("/")
        middleware = SessionMiddleware(response_set_session)
        response = middleware(request)
        self.assertEqual(tuple(request.session.items()), (("foo", "bar"),))
        self.assertIn(f"Set-Cookie: sessionid={request.session.session_key}", str(response.cookies))
        del request.session["foo"]
        response = middleware.process_response(request, HttpResponse("Session test"))
        self.assertEqual(dict(request.session.values()), {})
        self.assertEqual(RedisSession(request.session.session_key).load(), {})
        self.assertGreater(len(request.session.session_key), 8)
        self.assertIn(f"Set-Cookie: sessionid={request.session.session_key}", str(response.cookies))
        self.assertEqual(response.headers["Vary"], "Cookie")


class DjredisCacheSessionTests(tests.CacheSessionTests):
    pass


class DjredisCacheDBSessionTests(tests.CacheDBSessionTests):
    pass
