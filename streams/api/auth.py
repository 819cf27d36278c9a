"""Token authentication with a small per-process cache for the event hot path."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from rest_framework import exceptions
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


__all__ = ["CachedTokenAuthentication", "exceptions"]


def _forget_deleted_token(sender, instance, **kwargs) -> None:
    CachedTokenAuthentication.forget(instance.key)


def connect_signals() -> None:
    from django.db.models.signals import post_delete
    from rest_framework.authtoken.models import Token

    post_delete.connect(_forget_deleted_token, sender=Token, dispatch_uid="api_token_cache_forget")
