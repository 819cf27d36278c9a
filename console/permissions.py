"""Who may call an API view: one Django permission per request, reads included.

`ModelPermissions` is the API's default (settings REST_FRAMEWORK): a read needs
`<app>.view_<model>` of the view's queryset, a write the matching add, change
or delete permission, and a logged-in, active user either way. A view names
other permissions for one of its actions in `action_permissions`
(`{"register": ["streams.register_product"]}`), for actions that are not a
plain add/change/delete (publishing, exports, queueing work).

The quarantine API keeps its own class (quarantine/api.py), which follows the
same rule with a permission per operator action.
"""

from __future__ import annotations

from rest_framework import permissions


def user_has_all(user, perms: list[str] | tuple[str, ...]) -> bool:
    """True for an authenticated, active user holding every one of `perms`."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perms(perms))


class ModelPermissions(permissions.DjangoModelPermissions):
    """DjangoModelPermissions with reads guarded too (GET/HEAD/OPTIONS need
    view_<model>) and per-action permissions (`view.action_permissions`)."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def required_permissions(self, request, view) -> list[str]:
        explicit = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if explicit is not None:
            return list(explicit)
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            # A view without a model (the API root): a login is all it needs.
            return []
        queryset = self._queryset(view)
        return self.get_required_permissions(request.method, queryset.model)

    def has_permission(self, request, view) -> bool:
        if getattr(view, "_ignore_model_permissions", False):  # DRF's own marker (schema views)
            return bool(request.user and request.user.is_authenticated)
        if request.method.lower() != "options" and not hasattr(view, request.method.lower()):
            # No such operation here: a logged-in caller learns that (405), not 403.
            return bool(request.user and request.user.is_authenticated)
        return user_has_all(request.user, self.required_permissions(request, view))

