"""``manage.py djredis_sessions``: list and revoke a user's sessions (djredis.sessions).

manage.py djredis_sessions list alice
manage.py djredis_sessions revoke alice 3f2a9c0d4e5b6a71
manage.py djredis_sessions revoke-all alice
manage.py djredis_sessions list --id 42        # by primary key instead of username
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djredis.sessions import revoke_all_sessions, revoke_session, user_sessions


class Command(BaseCommand):
    help = "List or revoke a user's sessions stored by SESSION_ENGINE 'djredis.sessions'."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "revoke", "revoke-all"])
        parser.add_argument("user", help="the username (or the primary key, with --id)")
        parser.add_argument("session_id", nargs="?", help="for 'revoke': the id shown by 'list'")
        parser.add_argument("--id", action="store_true", dest="by_id", help="USER is a primary key")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._user(options["user"], options["by_id"])
        action = options["action"]
        if action == "list":
            sessions = user_sessions(user)
            for info in sessions:
                self.stdout.write(
                    f"{info.id}  created {info.created:%Y-%m-%d %H:%M:%S}  "
                    f"last active {info.last_activity:%Y-%m-%d %H:%M:%S}  "
                    f"expires {info.expires:%Y-%m-%d %H:%M:%S}  "
                    f"ip {info.ip or '-'}  agent {info.user_agent or '-'}"
                )
            self.stdout.write(f"{len(sessions)} session(s)")
        elif action == "revoke":
            if not options["session_id"]:
                raise CommandError("revoke needs the session id shown by 'list'.")
            if not revoke_session(user, options["session_id"]):
                raise CommandError(f"{options['user']} has no session {options['session_id']}.")
            self.stdout.write(f"revoked session {options['session_id']}")
        else:
            self.stdout.write(f"revoked {revoke_all_sessions(user)} session(s)")

    def _user(self, value: str, by_id: bool) -> Any:
        if by_id:
            return value
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(value)
        except model.DoesNotExist:
            raise CommandError(f"no user with {model.USERNAME_FIELD} {value!r}.") from None
