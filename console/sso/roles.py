"""From the provider's groups to the console's roles, and onto an account.

The roles single sign-on gives (docs/SECURITY.md, "Single sign-on"):

* `viewer`: the `viewers` group (every read of the pipelines' tables) and staff;
* `operator`: the `operators` group (console/roles.py) and staff;
* `admin`: superuser and staff.

OIDC_ROLE_MAP says which provider group gives which role, OIDC_ROLES_CLAIM
which claim lists the user's groups. The provider is the source of truth for
these roles: each login adds the roles the claim gives and removes the others,
so a user taken out of a group at the provider loses its role at the next
login. Groups outside the mapping (given by hand in the admin) are left alone.

Called by console/sso/backends.py at every single sign-on login.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from console.roles import OPERATORS_GROUP, VIEWERS_GROUP

ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "viewer": (VIEWERS_GROUP,),
    "operator": (OPERATORS_GROUP,),
    "admin": (),
}
SUPERUSER_ROLES = {"admin"}


@dataclass(frozen=True)
class RoleChange:
    roles: list[str]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def claim_groups(claims: Mapping[str, object], claim: str) -> list[str]:
    """The provider's groups in `claims[claim]`: a list of names, or one name."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    return []


def roles_from_groups(groups: Iterable[str], role_map: Mapping[str, str]) -> list[str]:
    """The console roles the provider groups give, in ROLE_GROUPS order."""
    unknown = sorted(set(role_map.values()) - ROLE_GROUPS.keys())
    if unknown:
        raise ImproperlyConfigured(f"OIDC_ROLE_MAP names unknown roles {unknown}; the roles are "
                                   f"{', '.join(ROLE_GROUPS)}")
    given = {role_map[group] for group in groups if group in role_map}
    return [role for role in ROLE_GROUPS if role in given]


def roles_apply(*, user, roles: list[str]) -> RoleChange:
    """Make `user`'s console roles exactly `roles` (groups, staff, superuser); saves the user."""
    from django.contrib.auth.models import Group

    before = roles_held(user)
    managed = {name for names in ROLE_GROUPS.values() for name in names}
    wanted = {name for role in roles for name in ROLE_GROUPS[role]}
    groups = {group.name: group for group in Group.objects.filter(name__in=managed)}
    missing = wanted - groups.keys()
    if missing:
        raise ImproperlyConfigured(f"the groups {sorted(missing)} are missing: run `manage.py migrate`")
    user.groups.remove(*[groups[name] for name in managed - wanted if name in groups])
    user.groups.add(*[groups[name] for name in wanted])
    user.is_superuser = bool(SUPERUSER_ROLES & set(roles))
    # The admin lets in staff only; every role is for the admin.
    user.is_staff = bool(roles)
    user.save(update_fields=["is_superuser", "is_staff"])
    return RoleChange(roles=list(roles), added=[r for r in roles if r not in before],
                      removed=[r for r in before if r not in roles])


def roles_held(user) -> list[str]:
    """The console roles `user` holds now, as this module gives them."""
    if not user.pk:
        return []
    names = set(user.groups.values_list("name", flat=True))
    held = [role for role, groups in ROLE_GROUPS.items() if groups and set(groups) <= names]
    if user.is_superuser:
        held.append("admin")
    return [role for role in ROLE_GROUPS if role in held]
