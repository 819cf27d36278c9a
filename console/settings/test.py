"""The test profile, `console.settings.test` (pytest.ini; the consumers, workers
and web servers the tests start inherit it).

The shared settings against the same real services, with what keeps tests
apart and fast: a fast password hash, throttle counters in each process's
memory (not in the Redis other runs share) and rates no suite reaches, so only
the throttle tests, which set their own, see a 429.
"""

from .base import *  # noqa: F401,F403
from .base import API_THROTTLE_RATES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "console-test"}}

API_THROTTLE_RATES = {**API_THROTTLE_RATES, "anon": "100000/min", "user": "100000/min"}
