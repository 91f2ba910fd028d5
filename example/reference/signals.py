"""Invalidate cached data when the model it was built from changes (the guide's signals).

Connected in ``ReferenceConfig.ready()``: any save or delete of an Article, from a view,
the shell or a migration, deletes the cached list, so no page shows it stale.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Article

ARTICLE_LIST_KEY = "articles:list"


@receiver(post_save, sender=Article)
@receiver(post_delete, sender=Article)
def forget_article_list(sender: type[Article], instance: Article, **kwargs: Any) -> None:
    """Delete the cached article list after any article is saved or deleted."""
    cache.delete(ARTICLE_LIST_KEY)
