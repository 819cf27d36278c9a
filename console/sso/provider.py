"""The OpenID provider as the console sees it: on or off, and its endpoints.

The endpoints come from the issuer's discovery document
(`<OIDC_ISSUER>/.well-known/openid-configuration`), fetched when a login needs
them (never at start-up, so a provider that is away stops SSO logins only) and
kept OIDC_DISCOVERY_CACHE_SECONDS in the process; an OIDC_*_ENDPOINT setting
wins over discovery. Called by the views and the backend of console/sso.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    userinfo: str
    jwks: str


class ProviderUnavailable(Exception):
    """The discovery document could not be read: the login cannot start or finish."""


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_ENABLED", False))


def provider_endpoints() -> Endpoints:
    """The provider's endpoints: the settings that name them, discovery for the rest."""
    configured = {
        "authorization_endpoint": settings.OIDC_OP_AUTHORIZATION_ENDPOINT,
        "token_endpoint": settings.OIDC_OP_TOKEN_ENDPOINT,
        "userinfo_endpoint": settings.OIDC_OP_USER_ENDPOINT,
        "jwks_uri": settings.OIDC_OP_JWKS_ENDPOINT,
    }
    document: dict = {}
    if not all(configured.values()):
        if not settings.OIDC_ISSUER:
            raise ImproperlyConfigured("OIDC_ISSUER (or every OIDC_*_ENDPOINT) is needed for single sign-on")
        document = _discovery(settings.OIDC_ISSUER)
    found = {key: value or document.get(key, "") for key, value in configured.items()}
    missing = [key for key, value in found.items() if not value]
    if missing:
        raise ProviderUnavailable(f"the provider's discovery document names no {', '.join(missing)}")
    return Endpoints(
        issuer=document.get("issuer") or settings.OIDC_ISSUER,
        authorization=found["authorization_endpoint"], token=found["token_endpoint"],
        userinfo=found["userinfo_endpoint"], jwks=found["jwks_uri"],
    )


def discovery_forget() -> None:
    """Drop the cached documents (a test that starts its own provider; a changed issuer)."""
    with _lock:
        _cache.clear()


def _discovery(issuer: str) -> dict:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer)
        if cached and cached[0] > now:
            return cached[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=True)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"cannot read {url}: {exc}") from exc
    # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was asked for.
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
        raise ProviderUnavailable(f"{url} names another issuer: {document.get('issuer')!r}"
                                  if isinstance(document, dict) else f"{url} is not a JSON object")
    with _lock:
        _cache[issuer] = (now + settings.OIDC_DISCOVERY_CACHE_SECONDS, document)
    return document
