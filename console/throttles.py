"""Request rates of the API, per scope, from settings.API_THROTTLE_RATES.

DRF's throttles read their rates once, at import; these read the setting on
each request (so the environment and tests set them), and let a request
through when the cache (Redis) is away: a counter is not worth refusing the
API over, and /healthz reports Redis anyway.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)


class _SettingsRate:
    scope: str

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        # The rate is read per request (the parent reads it once, in __init__).
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache is down: fail open, say so
            logger.warning("api_throttle_unavailable scope=%s error=%s", self.scope, type(exc).__name__)
            return True


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    """Anonymous callers, per client address (THROTTLE_ANON_RATE)."""

    scope = "anon"


class UserThrottle(_SettingsRate, UserRateThrottle):
    """Authenticated callers, per user (THROTTLE_USER_RATE)."""

    scope = "user"


class TelemetryThrottle(_SettingsRate, UserRateThrottle):
    """The telemetry POSTs, per account (THROTTLE_TELEMETRY_RATE; none by default)."""

    scope = "telemetry"


def telemetry_rate_limited() -> bool:
    """Whether telemetry POSTs are counted: then the fast paths leave them to DRF."""
    return bool(settings.API_THROTTLE_RATES.get("telemetry"))
