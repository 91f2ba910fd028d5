"""Route the guide views (tests/guide_app/views.py) for the Django test client."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("my-view/", views.my_view),
    path("user-specific/", views.user_specific_view),
    path("class-view/", views.MyView.as_view()),
    path("user/", views.user_view),
    path("user-vary-inside/", views.user_view_vary_inside),
    path("site-page/", views.site_page),
    path("plain/", views.plain_view),
    path("fragments/", views.fragments),
    path("user-fragment/", views.user_fragment),
]
