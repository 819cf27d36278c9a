"""The two ways to sign in with a form or a provider, as Django authentication backends
(AUTHENTICATION_BACKENDS, after django-axes):

* `LocalLoginBackend`: username and password, as Django's ModelBackend; with
  LOCAL_LOGIN off only superusers pass (break-glass, `createsuperuser`), and
  the sessions of everybody else end at their next request.
* `SsoBackend`: mozilla-django-oidc's backend, answering only the provider's
  callback (console/sso/views.py). On top of the library (code exchange, ID
  token signature against the provider's JWKS, nonce): the token's issuer and
  audience are checked, the account is found by the provider's (issuer, sub),
  never by email, and its roles are set from the roles claim at each login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .models import SsoIdentity
from .provider import Endpoints, provider_endpoints, sso_enabled
from .roles import RoleChange, claim_groups, roles_apply, roles_from_groups

logger = logging.getLogger(__name__)


def axes_ignores_sso_callback(request, credentials=None) -> bool:
    """AXES_WHITELIST_CALLABLE: django-axes guards passwords; the provider's callback
    carries none (its state and the provider's own lockout guard it), and counting
    its refusals, which have no username, would lock a whole address (an office
    behind one NAT) out of single sign-on."""
    return getattr(request, "path_info", "") == reverse("oidc_authentication_callback")


class LocalLoginBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return settings.LOCAL_LOGIN or bool(getattr(user, "is_superuser", False))


@dataclass(frozen=True)
class SsoOutcome:
    """What the last callback decided, for the audit entry (console/sso/views.py)."""

    subject: str
    groups: list[str]
    change: RoleChange | None
    refused: str = ""


class SsoBackend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs) -> None:
        # The library reads the endpoints here; this backend is built for every login
        # (passwords too) and every request of an SSO session, so they are read only
        # when a provider's callback arrives (authenticate).
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.endpoints: Endpoints | None = None
        self.outcome: SsoOutcome | None = None

    def authenticate(self, request, **kwargs):
        if request is None or not sso_enabled() or "code" not in request.GET or "state" not in request.GET:
            return None
        self.endpoints = provider_endpoints()
        self.OIDC_OP_TOKEN_ENDPOINT = self.endpoints.token
        self.OIDC_OP_USER_ENDPOINT = self.endpoints.userinfo
        self.OIDC_OP_JWKS_ENDPOINT = self.endpoints.jwks
        user = super().authenticate(request, **kwargs)
        request.sso_outcome = self.outcome
        return user

    def get_user(self, user_id):
        # The library's get_user ignores is_active; a deactivated account's session ends.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def retrieve_matching_jwk(self, token):
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        # A provider with one signing key may leave `kid` out (RFC 7515, 4.1.4): then
        # its key set must hold exactly one signing key for the algorithm.
        answer = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT)
        answer.raise_for_status()
        keys = [key for key in answer.json().get("keys", [])
                if key.get("use", "sig") == "sig" and key.get("alg", self.OIDC_RP_SIGN_ALGO) == self.OIDC_RP_SIGN_ALGO]
        if len(keys) != 1:
            raise SuspiciousOperation("ID token without a key id, and not exactly one signing key at the provider")
        return jwt.PyJWK(keys[0], algorithm=self.OIDC_RP_SIGN_ALGO)

    def _verify_jws(self, payload, key):
        claims = super()._verify_jws(payload, key)
        # The library checks the signature and the nonce; an ID token must also come
        # from this issuer and be meant for this client (OpenID Connect Core 3.1.3.7).
        if claims.get("iss") != self.endpoints.issuer:
            raise SuspiciousOperation(f"ID token from another issuer: {claims.get('iss')!r}")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token meant for another client")
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo endpoint answered for another subject")
        claims = {**payload, **userinfo}
        subject = str(payload["sub"])
        groups = claim_groups(claims, settings.OIDC_ROLES_CLAIM)
        roles = roles_from_groups(groups, settings.OIDC_ROLE_MAP)
        with transaction.atomic():
            identity = (SsoIdentity.objects.select_for_update().select_related("user")
                        .filter(issuer=self.endpoints.issuer, subject=subject).first())
            if identity is None and not roles:
                self.outcome = SsoOutcome(subject, groups, None, refused="no console role")
                return None
            if identity is None:
                identity = SsoIdentity(issuer=self.endpoints.issuer, subject=subject,
                                       user=self._new_user(claims, subject))
            user = identity.user
            if not user.is_active:
                self.outcome = SsoOutcome(subject, groups, None, refused="account deactivated")
                return None
            self._update_profile(user, claims)
            change = roles_apply(user=user, roles=roles)
            identity.last_login_at = timezone.now()
            identity.last_groups = groups
            identity.last_roles = roles
            identity.save()
        if not roles:
            self.outcome = SsoOutcome(subject, groups, change, refused="no console role")
            return None
        self.outcome = SsoOutcome(subject, groups, change)
        return user

    def _new_user(self, claims: dict, subject: str):
        base = str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or subject)[:140]
        username, n = base, 1
        while self.UserModel.objects.filter(username=username).exists():
            n += 1
            username = f"{base}-{n}"
        # No usable password: this account signs in at the provider only.
        return self.UserModel.objects.create_user(username, email=str(claims.get("email") or ""))

    @staticmethod
    def _update_profile(user, claims: dict) -> None:
        user.email = str(claims.get("email") or user.email)[:254]
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["email", "first_name", "last_name"])

