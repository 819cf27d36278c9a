"""Which account a provider's user is: (issuer, subject) -> user, written at the first
single sign-on login (console/sso/backends.py) and read at every later one."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    """An account's identity at the OpenID provider. The subject (`sub`) is the one
    claim the provider promises never to reuse or change, so an account is found by
    it, never by its username or email: a provider's user can never take over a
    local account (a break-glass superuser, a service account) that shares a name."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    # The provider's groups and the roles they gave at the last login.
    last_groups = models.JSONField(default=list, blank=True)
    last_roles = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
