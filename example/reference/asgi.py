"""Expose the reference site as an ASGI application (uvicorn, daphne, gunicorn -k uvicorn)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reference.settings")

application = get_asgi_application()
