"""Create the demo user (settings.DEMO_USERNAME / DEMO_PASSWORD) and three articles."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations

ARTICLES = [
    ("Caching a whole page", "cache_page stores the response in Redis."),
    ("Caching a fragment", "{% cache %} stores one block of a template."),
    ("Sessions in Redis", "djredis.sessions: one round trip per operation."),
]


def create_demo_data(apps: Any, schema_editor: Any) -> None:
    """Add the demo user and the articles (historical models: no signals fire here)."""
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    user_model.objects.get_or_create(
        username=settings.DEMO_USERNAME,
        defaults={
            "password": make_password(settings.DEMO_PASSWORD),
            "email": "demo@example.com",
        },
    )
    article = apps.get_model("reference", "Article")
    for title, body in ARTICLES:
        article.objects.get_or_create(title=title, defaults={"body": body})


class Migration(migrations.Migration):
    dependencies = [  # noqa: RUF012
        ("reference", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [  # noqa: RUF012
        migrations.RunPython(create_demo_data, migrations.RunPython.noop)
    ]
