"""The first guide's "Custom Cache Key Generation" snippet, with djredis as the cache."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache


def generate_cache_key(*args: Any, **kwargs: Any) -> str:
    """Generate consistent cache key from arguments"""
    key_data = f"{args}:{sorted(kwargs.items())}"
    return hashlib.md5(key_data.encode()).hexdigest()


def cached_function(func: Callable[..., Any]) -> Callable[..., Any]:
    """Cache the results of ``func`` for 5 minutes (the guide's decorator)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cache_key = f"func:{func.__name__}:{generate_cache_key(*args, **kwargs)}"
        result = cache.get(cache_key)

        if result is None:
            result = func(*args, **kwargs)
            cache.set(cache_key, result, timeout=300)

        return result

    return wrapper


@cached_function
def expensive_query(user_id: int, include_details: bool = False) -> User:
    """Fetch a User (the guide's "expensive database query")."""
    # Expensive database query
    return User.objects.get(id=user_id)
