"""Who may do what: one policy function that both doors and the tasks ask."""
from __future__ import annotations

from enum import Enum

from webapp.errors import Forbidden, Unauthenticated


class Permission(str, Enum):
    VIEW_USERS = "user:view"             # the directory, public views and profiles: anyone signed in
    VIEW_PRIVATE = "user:view-private"   # email, is_active, email_verified, updated_at
    EDIT_USER = "user:edit"
    DELETE_USER = "user:delete"
    MANAGE_USERS = "user:manage"         # change role / is_active, import and export users
    VIEW_DRAFT = "post:view-draft"
    EDIT_POST = "post:edit"
    CREATE_POST = "post:create"
    VIEW_JOB = "job:view"


def _owner_id(obj) -> int | None:
    for attr in ("author_id", "owner_id", "user_id"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    return getattr(obj, "id", None)


def can(actor, permission: Permission, obj=None) -> bool:
    if actor is None:
        return False
    if permission is Permission.VIEW_USERS:
        return True
    if actor.role == "admin":
        return True
    if permission is Permission.MANAGE_USERS:
        return False
    if permission is Permission.CREATE_POST:
        return actor.email_verified is not None
    return obj is not None and _owner_id(obj) == actor.id


def require(actor, permission: Permission, obj=None, message: str | None = None) -> None:
    """Raise Unauthenticated for no actor, Forbidden when the policy says no."""
    if actor is None:
        raise Unauthenticated()
    if not can(actor, permission, obj):
        raise Forbidden(message)
