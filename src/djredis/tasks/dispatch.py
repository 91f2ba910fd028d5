"""Send ``task_enqueued`` from ``aenqueue`` without a thread when no receiver needs one.

``Signal.asend`` runs every sync receiver through ``sync_to_async``: a hop to a thread and
back for each enqueue, even when the only receiver is Django's own, which just logs. That
receiver (``log_task_enqueued`` in ``django.tasks.signals``, or the backport's) is run on
the loop instead; any other sync receiver keeps ``asend``'s thread, since it may use the
database (SynchronousOnlyOperation on the loop), and async receivers are awaited by
``asend`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.dispatch import Signal

__all__ = ["asend"]

# Django's own receivers of the task signals: they only log, so they may run on the loop.
INLINE_MODULES = frozenset({"django.tasks.signals", "django_tasks.signals"})


def _split(signal: Signal, sender: Any) -> tuple[Sequence[Callable[..., Any]], Sequence[Any]]:
    """Return the live (sync, async) receivers of ``signal`` for ``sender``."""
    live = signal._live_receivers(sender)
    if isinstance(live, tuple):  # Django >= 5.0: (sync receivers, async receivers)
        return live[0], live[1]
    return live, ()  # Django 4.2: one list, all sync


async def asend(signal: Signal, sender: Any, **named: Any) -> None:
    """Send ``signal`` as ``Signal.asend`` does, calling Django's own receivers inline."""
    if not signal.receivers:
        return
    sync_receivers, async_receivers = _split(signal, sender)
    inline = all(getattr(r, "__module__", None) in INLINE_MODULES for r in sync_receivers)
    if inline and not async_receivers:
        for receiver in sync_receivers:
            receiver(signal=signal, sender=sender, **named)
        return
    send_async = getattr(signal, "asend", None)  # Django >= 5.0
    if send_async is not None:
        await send_async(sender, **named)
    else:
        await sync_to_async(signal.send)(sender, **named)
