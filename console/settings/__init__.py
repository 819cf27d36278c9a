"""The development profile, `console.settings`: the shared settings as they are.

The default DJANGO_SETTINGS_MODULE of manage.py, Celery, the web process and
`make run`; production runs `console.settings.production`, pytest
`console.settings.test` (both in this package)."""

from .base import *  # noqa: F401,F403
