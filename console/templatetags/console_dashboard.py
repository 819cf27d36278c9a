"""`{% console_dashboard %}`: the operations dashboard on the admin index (templates/admin/index.html).

The admin's index view stays Django's own (its URL name, its app list); the tag adds
the dashboard for staff holding console.view_operations and nothing for the others.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def console_dashboard(context) -> SafeString:
    request = context.get("request")
    user = getattr(request, "user", None)
    from console.ops.pages import VIEW_OPERATIONS

    if user is None or not user.has_perm(VIEW_OPERATIONS):
        return mark_safe("")
    from console.ops.dashboard import dashboard_overview

    return mark_safe(render_to_string("ops/dashboard_fragment.html", {"overview": dashboard_overview()},
                                      request=request))


@register.filter
def per_second(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


@register.simple_tag
def console_dashboard_refresh_ms() -> int:
    from django.conf import settings

    return int(settings.CONSOLE_DASHBOARD_REFRESH_SECONDS * 1000)
