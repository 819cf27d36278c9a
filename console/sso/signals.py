"""The audit of break-glass sign-ins (console/audit.py, Admin › Console › Audit
entries): every password login while LOCAL_LOGIN is off, which only superusers
can make. Connected by console/sso/apps.py; single sign-on logins, signed in or
refused, are audited by console/sso/views.py, which knows the roles they changed.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in

from console.audit import Outcome, audit_record

SSO_BACKEND = "console.sso.backends.SsoBackend"


def connect() -> None:
    user_logged_in.connect(_audit_break_glass, dispatch_uid="console_sso_audit_break_glass")


def _audit_break_glass(sender, request, user, **kwargs) -> None:
    if settings.LOCAL_LOGIN or getattr(user, "backend", "") == SSO_BACKEND:
        return
    audit_record(by=user, action="break_glass_login", outcome=Outcome.SUCCEEDED, target="local-password",
                 reason="password login while LOCAL_LOGIN is off (superusers only)")
