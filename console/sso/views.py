"""The two steps of a single sign-on login, on mozilla-django-oidc's views:

* `SsoLoginView` (/oidc/authenticate/?next=...): sends the browser to the
  provider with a fresh state, nonce and PKCE challenge kept in the session;
  `next` is kept only if it is a page of the console (no open redirect).
* `SsoCallbackView` (/oidc/callback/): the provider's answer. A state that is
  not this session's is refused (400); the code is exchanged and the ID token
  checked by console/sso/backends.py. A refused login says why on the login
  page and is audited when it named a provider's user; a session lasts at
  most OIDC_SESSION_HOURS.

Both answer 404 while single sign-on is off. Mounted by console/sso/urls.py.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from console.audit import Outcome, audit_record

from .provider import ProviderUnavailable, provider_endpoints, sso_enabled

logger = logging.getLogger(__name__)


class SsoLoginView(OIDCAuthenticationRequestView):
    def __init__(self, **kwargs) -> None:
        # The library reads the endpoints here, at every request: discovery does, in get().
        View.__init__(self, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("single sign-on is off")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_endpoints().authorization
        except ProviderUnavailable as exc:
            logger.warning("sso_provider_unavailable error=%s", exc)
            messages.error(request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached; try again later.")
            return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL_FAILURE)
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("single sign-on is off")
        try:
            response = super().get(request)
        except SuspiciousOperation as exc:
            # A state this session never sent, a token from elsewhere, a replayed nonce.
            logger.warning("sso_login_refused reason=%s", exc)
            raise
        except (ProviderUnavailable, requests.RequestException) as exc:
            logger.warning("sso_login_failed error=%s", exc)
            messages.error(request, f"Signing in with {settings.OIDC_PROVIDER_NAME} failed; try again later.")
            return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL_FAILURE)
        outcome = getattr(request, "sso_outcome", None)
        if outcome is not None:
            _audit(outcome, user=getattr(self, "user", None))
        return response

    def login_failure(self) -> HttpResponse:
        outcome = getattr(self.request, "sso_outcome", None)
        if outcome is not None and outcome.refused == "no console role":
            messages.error(self.request, f"Your {settings.OIDC_PROVIDER_NAME} account has no role in the console: "
                                         f"ask to be added to one of its groups.")
        elif outcome is not None and outcome.refused:
            messages.error(self.request, f"Signing in with {settings.OIDC_PROVIDER_NAME} was refused: "
                                         f"{outcome.refused}.")
        else:
            messages.error(self.request, f"Signing in with {settings.OIDC_PROVIDER_NAME} did not complete.")
        return HttpResponseRedirect(self.failure_url)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        self.request.session.set_expiry(int(settings.OIDC_SESSION_HOURS * 3600))
        return response


def _audit(outcome, *, user) -> None:
    """One `sso_login` entry per login the provider vouched for: who, the provider's
    groups, and the roles given, added and removed (or why it was refused)."""
    change = outcome.change
    detail = {"subject": outcome.subject, "groups": outcome.groups, "roles": change.roles if change else [],
              "added": change.added if change else [], "removed": change.removed if change else []}
    target = f"oidc:{settings.OIDC_ISSUER}"[:255]
    if outcome.refused:
        audit_record(by=f"sso:{outcome.subject}"[:150], action="sso_login", outcome=Outcome.REFUSED,
                     target=target, reason=outcome.refused, detail=detail)
    else:
        audit_record(by=user, action="sso_login", outcome=Outcome.SUCCEEDED, target=target, detail=detail)
