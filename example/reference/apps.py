"""The reference site's app."""

from __future__ import annotations

from django.apps import AppConfig


class ReferenceConfig(AppConfig):
    """Connect the cache-invalidation signals once the models are loaded."""

    name = "reference"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
