from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = ("Create (or reuse) a service-account user NAME for machines posting to the API and print "
            "its API token. The account has no password and cannot log in to the admin.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Username of the service account, e.g. telemetry-gateway.")
        parser.add_argument("--rotate", action="store_true",
                            help="Replace an existing token (the old one stops working).")
        parser.add_argument("--quiet", action="store_true", help="Print only the token (for scripts).")

    def handle(self, *args, name: str, rotate: bool, quiet: bool, **options) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(username=name, defaults={"is_active": True})
        if not created and (user.is_staff or user.is_superuser):
            raise CommandError(f"{name!r} is a staff account, not a service account; pick another name")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        if rotate:
            Token.objects.filter(user=user).delete()
        token, token_created = Token.objects.get_or_create(user=user)
        if quiet:
            self.stdout.write(token.key)
            return
        state = "created" if token_created else "existing"
        self.stdout.write(self.style.SUCCESS(
            f"service account {name!r} ({'created' if created else 'exists'}); {state} token: {token.key}"
        ))
        self.stdout.write(f"use it as: Authorization: Token {token.key}")
