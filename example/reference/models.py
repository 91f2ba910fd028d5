"""The one model of the reference site: articles, whose cached list a signal invalidates."""

from __future__ import annotations

from django.db import models


class Article(models.Model):
    """A short article; the article list page caches all of them in Redis."""

    title = models.CharField(max_length=120)
    body = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title


class Order(models.Model):
    """An order that process_order handles; ``fail_times`` makes the first attempts fail."""

    item = models.CharField(max_length=80)
    fail_times = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20, default="new")
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"order {self.pk} ({self.item}, {self.status})"
