"""Token authentication with a small per-process cache for the event hot path.

Used by every API view that takes service tokens (DRF's AUTHENTICATION of the
pipelines' APIs) and by the telemetry ASGI hot path. `connect_signals()` is called
once from console/urls.py.

A token is checked against the database once per API_TOKEN_CACHE_SECONDS per
web process; the cached entry holds the user with its permissions loaded, so
the ASGI fast path decides in memory. A deleted token is forgotten at once in
the process that deleted it; everywhere else a revoked token, a deactivated
user or a changed permission takes effect after at most
API_TOKEN_CACHE_SECONDS (docs/SECURITY.md).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

_MAX_ENTRIES = 10000


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>`, remembering valid keys for
    API_TOKEN_CACHE_SECONDS so a busy client costs no query per request.
    Unknown keys are never cached (each is checked against the database)."""

    _cache: dict[str, tuple[float, object, object]] = {}
    _lock = threading.Lock()

    @classmethod
    def cached(cls, key: str):
        """(user, token) if `key` was found valid less than API_TOKEN_CACHE_SECONDS ago, else None."""
        if settings.API_TOKEN_CACHE_SECONDS <= 0:
            return None
        hit = cls._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        return None

    def authenticate_credentials(self, key: str):
        hit = self.cached(key)
        if hit is not None:
            return hit
        ttl = settings.API_TOKEN_CACHE_SECONDS
        now = time.monotonic()
        user, token = super().authenticate_credentials(key)
        # Load the permissions now (a query or two, in this thread), so every
        # check while the entry lives is a lookup in memory: the ASGI fast path
        # asks has_perm on the event loop, where a query is not allowed.
        user.get_all_permissions()
        if ttl > 0:
            with self._lock:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = (now + ttl, user, token)
        return user, token

    @classmethod
    def forget(cls, key: str | None = None) -> None:
        with cls._lock:
            if key is None:
                cls._cache.clear()
            else:
                cls._cache.pop(key, None)


def _forget_deleted_token(sender, instance, **kwargs) -> None:
    CachedTokenAuthentication.forget(instance.key)


def connect_signals() -> None:
    from django.db.models.signals import post_delete
    from rest_framework.authtoken.models import Token

    post_delete.connect(_forget_deleted_token, sender=Token, dispatch_uid="api_token_cache_forget")
