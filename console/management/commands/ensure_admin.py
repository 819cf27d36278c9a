from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser for `make run` if it does not exist, printing its password once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin", help="Superuser name (default admin).")
        parser.add_argument("--password", default=None, help="Password to set (default: random, printed once).")

    def handle(self, *args, username: str, password: str | None, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"superuser {username!r} exists (forgot the password? "
                f"`.venv/bin/python manage.py changepassword {username}`)"
            )
            return
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(
            f"created superuser  username: {username}  password: {password}  (shown once)"
        ))
