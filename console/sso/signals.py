"""The audit of sign-ins that matter (console/audit.py, Admin › Console › Audit
entries): every single sign-on login with the roles it gave, added and removed,
and every break-glass password login while LOCAL_LOGIN is off. Connected by
console/sso/apps.py; refused single sign-on logins are audited by views.py.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in

from console.audit import Outcome, audit_record

SSO_BACKEND = "console.sso.backends.SsoBackend"


def connect() -> None:
    user_logged_in.connect(_audit_login, dispatch_uid="console_sso_audit_login")


def _audit_login(sender, request, user, **kwargs) -> None:
    backend = getattr(user, "backend", "")
    if backend == SSO_BACKEND:
        outcome = getattr(request, "sso_outcome", None)
        change = outcome.change if outcome else None
        audit_record(by=user, action="sso_login", outcome=Outcome.SUCCEEDED,
                     target=f"oidc:{settings.OIDC_ISSUER}"[:255],
                     detail={"subject": outcome.subject if outcome else "",
                             "groups": outcome.groups if outcome else [],
                             "roles": change.roles if change else [],
                             "added": change.added if change else [],
                             "removed": change.removed if change else []})
    elif not settings.LOCAL_LOGIN:
        audit_record(by=user, action="break_glass_login", outcome=Outcome.SUCCEEDED, target="local-password",
                     reason="password login while LOCAL_LOGIN is off (superusers only)")
