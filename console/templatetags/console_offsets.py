"""`{% offset_reset_form spec %}`: the "Reset offsets" form on a consumer's page (templates/ops/consumer.html).

Rendered only for staff holding console.view_operations and console.reset_offsets (the
views check the same: console/ops/pages.py `urls()`); nothing for the others.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def offset_reset_form(context, spec) -> SafeString:
    from console.ops.offsets import RESET_OFFSETS, ResetForm, recent_resets

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perms(["console.view_operations", RESET_OFFSETS]):
        return mark_safe("")
    return mark_safe(render_to_string("ops/offsets_section.html", {
        "spec": spec, "form": ResetForm(spec=spec), "resets": recent_resets(spec.name),
    }, request=request))
