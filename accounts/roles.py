"""Roles and the Django groups behind them.

`role` decides who reaches `/admin/` (`is_staff`) and who is a superuser (`admin`). What a staff
member may see and change there comes from the **Staff** group's model permissions; admins have
every permission. `sync_role_groups` keeps a user's groups in line with their role (services call
it whenever a role is set).

Other apps give the Staff group permissions on their models by declaring them in their
`AppConfig.ready`; they are granted after every `migrate` (post_migrate), which also covers the
test database that pytest builds without migrations::

    def ready(self) -> None:
        from accounts.roles import declare_staff_permissions

        declare_staff_permissions("inventory")  # every permission of the app
        declare_staff_permissions("orders", ["view_order", "change_order"])

A data migration can grant them as well (on `migrate` only, not in the test database)::

    def grant(apps, schema_editor):
        from accounts.roles import grant_staff_permissions

        grant_staff_permissions(apps, app_label="inventory", codenames=["view_product"])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

if TYPE_CHECKING:
    from django.apps.registry import Apps

    from .models import User

STAFF_GROUP = "Staff"
# Which roles belong to which groups. Admins are superusers; they are in the Staff group too so
# their console does not change shape if superuser rights are ever narrowed.
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "customer": (),
    "staff": (STAFF_GROUP,),
    "admin": (STAFF_GROUP,),
}
MANAGED_GROUPS = frozenset(name for names in ROLE_GROUPS.values() for name in names)


def grant_staff_permissions(
    apps: Apps | None = None, *, app_label: str, codenames: Iterable[str] | None = None
) -> None:
    """Give the Staff group the permissions `codenames` of `app_label` (all of them by default).

    Safe to call from a data migration (pass the migration's `apps`) on a fresh database: the
    permissions are created first if Django's post-migrate hook has not made them yet.
    """
    registry: Any = apps or global_apps
    app_config = registry.get_app_config(app_label)
    # Historical app configs have no models module; create_permissions skips such apps.
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, apps=registry, verbosity=0)
    finally:
        app_config.models_module = models_module

    group_model = registry.get_model("auth", "Group")
    permission_model = registry.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=STAFF_GROUP)
    permissions = permission_model.objects.filter(content_type__app_label=app_label)
    if codenames is not None:
        wanted = set(codenames)
        permissions = permissions.filter(codename__in=wanted)
        found = set(permissions.values_list("codename", flat=True))
        if missing := wanted - found:
            raise LookupError(f"No such permissions in {app_label}: {sorted(missing)}")
    group.permissions.add(*permissions)


_declared: dict[str, set[str] | None] = {}


def declare_staff_permissions(app_label: str, codenames: Iterable[str] | None = None) -> None:
    """Staff get these permissions of `app_label` (all of them when `codenames` is None)."""
    if codenames is None or _declared.get(app_label, set()) is None:
        _declared[app_label] = None
    else:
        current = _declared.setdefault(app_label, set())
        assert current is not None
        current.update(codenames)


def grant_declared_staff_permissions(sender: AppConfig, apps: Apps | None = None, **_: Any) -> None:
    """post_migrate receiver: grant what was declared for the app that was just migrated."""
    if sender.label in _declared:
        codenames = _declared[sender.label]
        grant_staff_permissions(apps, app_label=sender.label, codenames=codenames)


def sync_role_groups(user: User) -> None:
    """Put the user in exactly the managed groups of their role (other groups are left alone)."""
    from django.contrib.auth.models import Group

    wanted = set(ROLE_GROUPS[user.role])
    for name in wanted:
        Group.objects.get_or_create(name=name)
    current = set(user.groups.filter(name__in=MANAGED_GROUPS).values_list("name", flat=True))
    if extra := current - wanted:
        user.groups.remove(*Group.objects.filter(name__in=extra))
    if missing := wanted - current:
        user.groups.add(*Group.objects.filter(name__in=missing))
