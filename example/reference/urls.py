"""Map the reference site's demo pages."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("", views.home, name="home"),
    path("cache-page/", views.cache_page_demo, name="cache-page"),
    path("fragment/", views.fragment_demo, name="fragment"),
    path("fragment/invalidate/", views.fragment_invalidate, name="fragment-invalidate"),
    path("counter/", views.counter_demo, name="counter"),
    path("leaderboard/", views.leaderboard_demo, name="leaderboard"),
]
