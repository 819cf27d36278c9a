"""Filters shared by the API's list endpoints.

`IsoDateTimeFilter`: django-filter's ISO 8601 filter, with the value turned into
UTC before it reaches the database. PostgreSQL refuses UTC offsets beyond
±15:59 that Python accepts (`2026-01-01T00:00:00-21:01` was an HTTP 500); in
UTC every offset is fine, and a moment that does not exist in UTC (year 1
with a positive offset) is a 400 with the field named.
"""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    def clean(self, value):
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("is outside the representable range of dates", code="range") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
