"""`manage.py create_service_token NAME`: a service account for machines, and its API token.

The account is put in one group, which is all its token may do: by default
`telemetry-publishers` (publish telemetry and product registrations; created
by console's migration 0002). `--group` picks another group, `--rotate`
replaces the token, `--revoke` deletes it (docs/SECURITY.md: the bound after
which every web process refuses it).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

DEFAULT_GROUP = "telemetry-publishers"


class Command(BaseCommand):
    help = ("Create (or reuse) a service-account user NAME for machines posting to the API and print "
            "its API token. The account has no password, cannot log in to the admin, and may do only "
            f"what its group allows (default {DEFAULT_GROUP!r}: publish telemetry and register products).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Username of the service account, e.g. telemetry-gateway.")
        parser.add_argument("--group", default=DEFAULT_GROUP,
                            help=f"The one group of the account (default {DEFAULT_GROUP}); it replaces any other.")
        parser.add_argument("--rotate", action="store_true",
                            help="Replace an existing token (the old one stops working).")
        parser.add_argument("--revoke", action="store_true",
                            help="Delete the account's token and print nothing else (no new token).")
        parser.add_argument("--quiet", action="store_true", help="Print only the token (for scripts).")

    def handle(self, *args, name: str, group: str, rotate: bool, revoke: bool, quiet: bool, **options) -> None:
        User = get_user_model()
        if revoke:
            deleted, _ = Token.objects.filter(user__username=name).delete()
            if not quiet:
                self.stdout.write(f"service account {name!r}: {'token revoked' if deleted else 'had no token'}")
            return
        staff = User.objects.filter(username=name, is_staff=True) | User.objects.filter(username=name, is_superuser=True)
        if staff.exists():
            raise CommandError(f"{name!r} is a staff account, not a service account; pick another name")
        scope = Group.objects.filter(name=group).first()
        if scope is None:
            raise CommandError(f"no group {group!r}; create it in the admin first (or run migrate)")
        user, created = User.objects.get_or_create(username=name, defaults={"is_active": True})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.set([scope])
        user.user_permissions.clear()  # the group is the whole scope of the token
        if rotate:
            Token.objects.filter(user=user).delete()
        token, token_created = Token.objects.get_or_create(user=user)
        if quiet:
            self.stdout.write(token.key)
            return
        state = "created" if token_created else "existing"
        self.stdout.write(self.style.SUCCESS(
            f"service account {name!r} ({'created' if created else 'exists'}, group {group!r}); "
            f"{state} token: {token.key}"
        ))
        self.stdout.write(f"use it as: Authorization: Token {token.key}")
