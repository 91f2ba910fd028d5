"""The guide's Celery app: settings come from Django's, every name prefixed ``CELERY_``.

Start a worker and the beat scheduler from example/ (``run.py`` does both)::

    celery -A reference worker --loglevel=info
    celery -A reference beat --loglevel=info
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reference.settings")

app = Celery("reference")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_problem() -> str | None:
    """Return why Celery cannot use its Redis broker with the installed packages, or None.

    kombu >= 5.6 refuses redis-py < 6.1 (djredis itself supports redis-py 5); the tasks page
    and run.py then say so instead of failing.
    """
    from kombu.exceptions import VersionMismatch

    try:
        with app.connection_for_read() as connection:
            connection.default_channel  # noqa: B018  (opening the channel runs kombu's check)
    except VersionMismatch as exc:
        return str(exc)
    except ImportError as exc:  # the transport's own imports (kombu[redis] pulls them in)
        return f"kombu's Redis transport cannot be imported ({exc})"
    return None
