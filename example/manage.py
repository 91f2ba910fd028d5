#!/usr/bin/env python3
"""Run Django management commands for the djredis reference site."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the command line given in sys.argv with the reference settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reference.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
