"""`sso` in every template's context (a context processor, settings TEMPLATES): what
the login pages need to offer "Sign in with <provider>" and to say whether the
password form is for everyone or for break-glass superusers only
(templates/admin/login.html, templates/rest_framework/login.html)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from .provider import sso_enabled


def sso(request: HttpRequest) -> dict:
    return {"sso": {
        "enabled": sso_enabled(),
        "provider_name": settings.OIDC_PROVIDER_NAME,
        "local_login": settings.LOCAL_LOGIN,
    }}
