"""Fixtures for cache_page_per_user's tests: the per-user app with sessions and auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def site(settings: Any, django_caches: Any, db: None) -> Callable[[str], Client]:
    """Sessions in the Redis cache, auth; return a factory of logged-in clients."""
    from django.contrib.auth.models import User

    settings.ROOT_URLCONF = "tests.per_user_app.urls"
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]

    def logged_in(username: str) -> Client:
        client = Client()
        client.force_login(User.objects.create_user(username))
        return client

    return logged_in
