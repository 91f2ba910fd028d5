"""URLs used by view-level cache tests."""

from django.urls import path

urlpatterns: list = []  # type: ignore[type-arg]
