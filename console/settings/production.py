"""The production profile, `DJANGO_SETTINGS_MODULE=console.settings.production`.

The shared settings with what `manage.py check --deploy` asks for: DEBUG off
whatever the environment says, HTTPS only behind a TLS-terminating proxy that
sets X-Forwarded-Proto (SSL redirect, HSTS, secure cookies), and ALLOWED_HOSTS
and CSRF_TRUSTED_ORIGINS required rather than defaulted, and password login
for superusers only (break-glass) once single sign-on is on. docker-compose.yml
runs it; docs/SECURITY.md lists its environment.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import OIDC_ENABLED, _required, env

DEBUG = False

ALLOWED_HOSTS = [host for host in _required("ALLOWED_HOSTS").split(",") if host.strip()]
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the console's hosts in production, not '*'")
# Unset or empty (docker-compose.yml passes it through): https:// and each host.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[]) or [
    f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS if not host.startswith(".")]

# TLS ends at the proxy, which tells Django the original scheme; only trust the
# header when the proxy always sets (or strips) it, as it must in front of this.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers and the container healthcheck probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a promise to browsers that the domain stays HTTPS-only; set
# SECURE_HSTS_PRELOAD=false for a domain you cannot promise that for (check
# --deploy then warns, W021, which is the honest answer).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Behind the proxy the client's address is in X-Forwarded-For: one proxy by default.
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=1) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# With single sign-on, people sign in at the provider: a password works only for
# superusers (break-glass, docs/SECURITY.md) unless LOCAL_LOGIN=true says otherwise.
LOCAL_LOGIN = env.bool("LOCAL_LOGIN") if env.str("LOCAL_LOGIN", default="") else not OIDC_ENABLED
