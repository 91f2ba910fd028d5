"""Map the reference site's demo pages."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import URLPattern, path, re_path

from djredis.health import health

from .views import (
    accounts,
    asynchronous,
    caching,
    chat,
    dashboard,
    helpers,
    home,
    ratelimit,
    structures,
    task_framework,
    tasks,
)
from .views.dashboard import metrics_view

urlpatterns: list[URLPattern] = [
    path("", home.home, name="home"),
    path("favicon.ico", home.favicon, name="favicon"),
    # caching
    path("caches/", caching.caches_demo, name="caches"),
    path("cache-page/", caching.cache_page_demo, name="cache-page"),
    path("cache-class/", caching.cached_class_view, name="cache-class"),
    path("fragment/", caching.fragment_demo, name="fragment"),
    path("fragment/invalidate/", caching.fragment_invalidate, name="fragment-invalidate"),
    path("counter/", caching.counter_demo, name="counter"),
    path("api-tour/", caching.api_tour, name="api-tour"),
    path("articles/", caching.articles_demo, name="articles"),
    path("articles/<int:pk>/edit/", caching.article_edit, name="article-edit"),
    path("async/", asynchronous.async_demo, name="async"),
    path("async/clear/", asynchronous.async_clear, name="async-clear"),
    path("memoize/", helpers.memoize_demo, name="memoize"),
    path("per-user/", helpers.per_user_demo, name="per-user"),
    # sessions
    path("login/", accounts.DemoLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("account/sessions/", accounts.sessions_demo, name="sessions"),
    # Redis structures
    path("leaderboard/", structures.leaderboard_demo, name="leaderboard"),
    path("leaderboard/top.json", structures.leaderboard_json, name="leaderboard-json"),
    path("notifications/", structures.notifications_demo, name="notifications"),
    path("notifications/stream/", structures.notifications_stream, name="notifications-stream"),
    path("lock/", structures.lock_demo, name="lock"),
    path("lock/run/", structures.lock_run, name="lock-run"),
    path("account/profile/", structures.profile_demo, name="profile"),
    path("account/profile/clear/", structures.profile_clear, name="profile-clear"),
    # operations
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/data.json", dashboard.dashboard_json, name="dashboard-json"),
    path("health/", health, name="health"),
    # djredis.metrics' scrape endpoint: a bearer token (DJREDIS_METRICS_TOKEN) or a staff user.
    path("metrics", metrics_view, name="metrics"),
    # rate limiting
    path("ratelimit/", ratelimit.ratelimit_demo, name="ratelimit"),
    path("api/hello/", ratelimit.api_hello, name="api-hello"),
    # real time (the WebSocket itself is /ws/chat/<room>/, in reference/routing.py)
    path("chat/", chat.chat_rooms, name="chat"),
    re_path(r"^chat/(?P<room_name>\w+)/$", chat.chat_room, name="chat-room"),
    # Celery
    path("tasks/", tasks.tasks_demo, name="tasks"),
    path("tasks/<str:task_id>/", tasks.task_status, name="task-status"),
    # Django's task framework on Celery (djredis.tasks.CeleryBackend)
    path("django-tasks/", task_framework.django_tasks_demo, name="django-tasks"),
    path(
        "django-tasks/<str:result_id>.json",
        task_framework.django_task_result,
        name="django-task-result",
    ),
]
