"""The guide's Django task: ``email_users``, run by a Celery worker through
``djredis.tasks.CeleryBackend`` (TASKS in settings.py).

No Celery decorator: Django's ``@task`` is enough. The worker (``celery -A reference
worker``) runs it through djredis's one Celery task, ``djredis.tasks.run``.
"""

from __future__ import annotations

from django.core.mail import send_mail

try:  # Django >= 6.0
    from django.tasks import task
except ImportError:  # Django 4.2/5.2: the django-tasks backport (pip install django-tasks)
    from django_tasks import task


@task
def email_users(emails: list[str], subject: str, message: str) -> int:
    """Send one email to ``emails``; return how many were sent (send_mail's answer)."""
    return send_mail(subject=subject, message=message, from_email=None, recipient_list=emails)
