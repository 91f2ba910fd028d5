"""Helpers the demo pages share: the clock, slow work, and showing a page's own code."""

from __future__ import annotations

import inspect
import pprint
import textwrap
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def now() -> str:
    """Return the current time as HH:MM:SS.mmm (UTC)."""
    return datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def slow_work(seconds: float = 0.4) -> None:
    """Pretend to run an expensive query."""
    time.sleep(seconds)


def source_of(objects: Iterable[Any]) -> str:
    """Return the source code of ``objects`` (views, classes, functions), one after another."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)) for obj in objects)


def settings_of(names: Iterable[str]) -> str:
    """Return ``NAME = value`` lines for the settings ``names``, as settings.py has them."""
    return "\n".join(
        f"{name} = {pprint.pformat(getattr(settings, name), sort_dicts=False, width=88)}"
        for name in names
    )


def render_demo(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    guide: str,
    code: Iterable[Any] = (),
    settings_names: Iterable[str] = (),
) -> HttpResponse:
    """Render a demo page with the guide section it shows, its code and its settings."""
    context = {
        **context,
        "guide": guide,
        "code": source_of(code),
        "settings_code": settings_of(settings_names),
    }
    return render(request, template, context)
