"""Route tests/per_user_app's views for the Django test client."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("sync-vary-outside/", views.sync_vary_outside),
    path("sync-vary-inside/", views.sync_vary_inside),
    path("async-vary-outside/", views.async_vary_outside),
    path("async-vary-inside/", views.async_vary_inside),
    path("async-plain/", views.async_plain),
    path("template/", views.template_page),
    path("sets-cookie/", views.sets_cookie),
    path("not-found/", views.not_found),
    path("cart/", views.cart),
    path("under-cache-page/", views.under_cache_page),
    path("guide-order/", views.guide_order),
    path("form/", views.form),
    path("starts-session/", views.starts_session),
]
